//! Where artifacts are stored: one interface, two backends. R2 through the
//! `ARTIFACTS` bucket binding (buckets are key prefixes in it), or Supabase
//! Storage through its REST API.

use cogo_shared::config::{Config, StorageBackend};
use cogo_shared::http::{ApiResponse, Transport};
use cogo_shared::storage::supabase::SupabaseStorage;
use cogo_shared::ApiError;
use worker::{Bucket, Env, FixedLengthStream, HttpMetadata, Range};

use crate::runtime::platform;

/// What is known of a stored object.
pub struct ObjectMeta {
    pub size: u64,
    pub etag: String,
    pub mime: Option<String>,
}

pub enum Storage {
    R2(Bucket),
    Supabase(SupabaseStorage),
}

fn unavailable(what: &str, why: impl std::fmt::Debug) -> ApiError {
    worker::console_error!("storage {what} failed: {why:?}");
    ApiError::new(503, "storage_unavailable", format!("the artifact store did not complete the {what}"))
        .with_retryable(true)
}

fn r2_key(bucket: &str, path: &str) -> String {
    format!("{bucket}/{path}")
}

impl Storage {
    pub fn open(env: &Env, config: &Config) -> Result<Storage, ApiError> {
        Storage::configured(env, config)
            .ok_or_else(|| ApiError::new(500, "config_error", "missing configuration: the ARTIFACTS R2 bucket binding"))
    }

    /// The store, or `None` when the R2 backend has no `ARTIFACTS` binding
    /// (for callers that can do without one).
    pub fn configured(env: &Env, config: &Config) -> Option<Storage> {
        match &config.storage.backend {
            StorageBackend::R2 => env.bucket("ARTIFACTS").ok().map(Storage::R2),
            StorageBackend::Supabase { url } => Some(Storage::Supabase(SupabaseStorage {
                base_url: url.clone(),
                service_key: config.service_role_key.clone(),
            })),
        }
    }

    /// Stores `body` (exactly `size` bytes) at `bucket/path`, replacing
    /// what was there.
    pub async fn put(
        &self,
        config: &Config,
        bucket: &str,
        path: &str,
        mime: &str,
        size: u64,
        body: FixedLengthStream,
    ) -> Result<(), ApiError> {
        match self {
            Storage::R2(r2) => {
                let metadata = HttpMetadata { content_type: Some(mime.to_string()), ..Default::default() };
                r2.put(r2_key(bucket, path), body)
                    .http_metadata(metadata)
                    .execute()
                    .await
                    .map_err(|e| unavailable("upload", e))?;
                Ok(())
            }
            Storage::Supabase(storage) => {
                let request = storage.upload(bucket, path, mime, size);
                let response = platform::transport(config)
                    .send_stream(&request, body)
                    .await
                    .map_err(|e| unavailable("upload", e))?;
                expect_success("upload", &response)
            }
        }
    }

    /// Stores `bytes` at `bucket/path`.
    pub async fn put_bytes(
        &self,
        config: &Config,
        bucket: &str,
        path: &str,
        mime: &str,
        bytes: Vec<u8>,
    ) -> Result<(), ApiError> {
        let size = bytes.len() as u64;
        let body = FixedLengthStream::wrap(futures::stream::once(async move { Ok(bytes) }), size);
        self.put(config, bucket, path, mime, size, body).await
    }

    /// The whole object; `None` when there is none.
    pub async fn get_bytes(&self, config: &Config, bucket: &str, path: &str) -> Result<Option<Vec<u8>>, ApiError> {
        match self {
            Storage::R2(r2) => {
                let object = r2.get(r2_key(bucket, path)).execute().await.map_err(|e| unavailable("download", e))?;
                let Some(object) = object else { return Ok(None) };
                let Some(body) = object.body() else { return Ok(None) };
                body.bytes().await.map(Some).map_err(|e| unavailable("download", e))
            }
            Storage::Supabase(storage) => {
                let response = platform::transport(config)
                    .send(storage.download(bucket, path))
                    .await
                    .map_err(|e| unavailable("download", e))?;
                if matches!(response.status, 400 | 404) {
                    return Ok(None);
                }
                expect_success("download", &response)?;
                Ok(Some(response.body))
            }
        }
    }

    /// The object's size, ETag and type; `None` when there is none.
    pub async fn head(&self, config: &Config, bucket: &str, path: &str) -> Result<Option<ObjectMeta>, ApiError> {
        match self {
            Storage::R2(r2) => {
                let object = r2.head(r2_key(bucket, path)).await.map_err(|e| unavailable("lookup", e))?;
                Ok(object.map(|o| ObjectMeta {
                    size: o.size(),
                    etag: o.http_etag(),
                    mime: o.http_metadata().content_type,
                }))
            }
            Storage::Supabase(storage) => {
                let response = platform::transport(config)
                    .send(storage.head(bucket, path))
                    .await
                    .map_err(|e| unavailable("lookup", e))?;
                // Storage answers a missing object with 400 or 404.
                if matches!(response.status, 400 | 404) {
                    return Ok(None);
                }
                expect_success("lookup", &response)?;
                let header = |name: &str| response.header(name).map(str::to_string);
                Ok(Some(ObjectMeta {
                    size: header("content-length").and_then(|l| l.parse().ok()).unwrap_or(0),
                    etag: header("etag").unwrap_or_default(),
                    mime: header("content-type"),
                }))
            }
        }
    }

    /// Deletes `paths` (at most 1000) of `bucket`; missing objects are no error.
    pub async fn delete(&self, config: &Config, bucket: &str, paths: &[String]) -> Result<(), ApiError> {
        match self {
            Storage::R2(r2) => {
                let keys = paths.iter().map(|path| r2_key(bucket, path)).collect::<Vec<_>>();
                r2.delete_multiple(keys).await.map_err(|e| unavailable("deletion", e))
            }
            Storage::Supabase(storage) => {
                let response = platform::transport(config)
                    .send(storage.delete(bucket, paths))
                    .await
                    .map_err(|e| unavailable("deletion", e))?;
                expect_success("deletion", &response)
            }
        }
    }

    /// A link to the object from Storage itself (Supabase), or `None` when
    /// the bundle serves the object and signs its own links (R2).
    pub async fn native_link(
        &self,
        config: &Config,
        bucket: &str,
        path: &str,
        expires_in: u32,
    ) -> Result<Option<String>, ApiError> {
        let Storage::Supabase(storage) = self else { return Ok(None) };
        let response = platform::transport(config)
            .send(storage.sign(bucket, path, expires_in))
            .await
            .map_err(|e| unavailable("signing", e))?;
        expect_success("signing", &response)?;
        let answer = serde_json::from_slice(&response.body).unwrap_or_default();
        storage.signed_url(&answer).map(Some).ok_or_else(|| unavailable("signing", "no signedURL in the answer"))
    }

    /// `length` bytes from `offset` (or all of it) of an R2 object.
    pub async fn r2_object(
        &self,
        bucket: &str,
        path: &str,
        range: Option<(u64, u64)>,
    ) -> Result<Option<worker::Object>, ApiError> {
        let Storage::R2(r2) = self else { return Ok(None) };
        let mut get = r2.get(r2_key(bucket, path));
        if let Some((offset, length)) = range {
            get = get.range(Range::OffsetWithLength { offset, length });
        }
        get.execute().await.map_err(|e| unavailable("download", e))
    }
}

fn expect_success(what: &str, response: &ApiResponse) -> Result<(), ApiError> {
    if (200..300).contains(&response.status) {
        Ok(())
    } else {
        Err(unavailable(what, format!("status {}", response.status)))
    }
}
