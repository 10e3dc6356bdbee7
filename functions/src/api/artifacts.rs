//! Artifacts: an upload link for the worker holding a job's lease; the
//! upload itself, streamed into storage and sized and hashed on the way;
//! signed download links; and the download, with Range support.

use std::cell::RefCell;
use std::rc::Rc;

use cogo_shared::auth::Role;
use cogo_shared::http::body::parse_uuid;
use cogo_shared::http::routes::Endpoint;
use cogo_shared::http::ApiResponse;
use cogo_shared::storage::artifacts::{
    self, check_bucket, check_mime, check_path, link_url, parse_range, upload_link_url, ArtifactFind, ArtifactRecord,
    ArtifactUploadGrant, Range, BUCKET, FIGMA_BUCKET,
};
use cogo_shared::time::iso8601;
use cogo_shared::ApiError;
use futures::{stream, TryStreamExt};
use serde_json::json;
use sha2::{Digest, Sha256};
use worker::{FixedLengthStream, Headers, Response};

use crate::pipeline::{Reply, RequestContext};
use crate::runtime::storage::Storage;

/// Routes whose credential is the signature in their link.
pub fn is_signed_link(endpoint: Endpoint) -> bool {
    matches!(endpoint, Endpoint::ArtifactPut | Endpoint::ArtifactGet)
}

pub fn link_secret(ctx: &RequestContext) -> Result<&str, ApiError> {
    ctx.config
        .storage
        .link_secret
        .as_deref()
        .ok_or_else(|| ApiError::new(500, "config_error", "missing configuration: ARTIFACT_SIGNING_SECRET"))
}

fn now_secs(ctx: &RequestContext) -> i64 {
    ctx.now_ms() / 1000
}

/// `POST artifact-upload-url` -> `{ok, url, method: "PUT", bucket, path,
/// expiresAt, headers}`, for the worker holding the job's current lease.
pub async fn artifact_upload_url(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let request = artifacts::upload_request(&ctx.body()?, ctx.config.storage.max_artifact_bytes)?;
    let secret = link_secret(&ctx)?;
    ctx.call(ArtifactUploadGrant {
        job_id: request.job_id.clone(),
        lease_token: request.lease_token.clone(),
        executor_id: ctx.principal.executor_id.clone(),
    })
    .await?;
    let expires_at = now_secs(&ctx) + i64::from(artifacts::UPLOAD_LINK_SECONDS);
    let url = upload_link_url(&ctx.origin()?, secret, &request.path, expires_at, &request.lease_token);
    Ok(ApiResponse::json(
        200,
        &json!({
            "ok": true, "url": url, "method": "PUT", "bucket": BUCKET, "path": request.path,
            "expiresAt": iso8601(expires_at * 1000), "headers": { "Content-Type": request.mime },
        }),
    ))
}

/// The bucket, path and lease of a signed link, once the path is in normal
/// form (400) and the signature matches this method (and lease) and has not
/// expired (403).
fn signed_target(ctx: &RequestContext, method: &str) -> Result<(String, String, Option<String>), ApiError> {
    let bucket = ctx.param("bucket").unwrap_or_default().to_string();
    let path = check_path(ctx.param("path").unwrap_or_default())?.to_string();
    let query = ctx.query();
    let expires_at = query.raw(&["exp"]).and_then(|e| e.parse::<i64>().ok()).ok_or_else(invalid_link)?;
    let signature = query.raw(&["sig"]).ok_or_else(invalid_link)?;
    let lease = query.raw(&["lease"]);
    artifacts::verify_link(link_secret(ctx)?, method, &bucket, &path, expires_at, lease, signature, now_secs(ctx))?;
    check_bucket(&bucket)?;
    Ok((bucket, path, lease.map(str::to_string)))
}

fn invalid_link() -> ApiError {
    ApiError::new(403, "invalid_signature", "the link's signature does not match")
}

/// `PUT artifact/<bucket>/<path>?exp&sig` with the bytes. An artifact
/// (`artifacts/<job id>/<name>`) -> 201 `{ok, artifact}`, recorded with its
/// size and sha256; a Figma document (`figma/uploads/...`) -> 201 `{ok,
/// bucket, key, size, sha256}`.
pub async fn artifact_put(mut ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let (bucket, path, lease) = signed_target(&ctx, "PUT")?;
    let not_upload_path = || ApiError::bad_request("invalid_path", "not an upload path");
    let job = if bucket == FIGMA_BUCKET {
        None
    } else {
        let (job_id, name) = path.split_once('/').ok_or_else(not_upload_path)?;
        // Job uploads are bound to the lease they were granted under, and
        // die with it: checked before the bytes are stored and again when
        // they are recorded.
        let lease = lease.ok_or_else(invalid_link)?;
        let job_id = parse_uuid(job_id).ok_or_else(not_upload_path)?;
        ctx.call(ArtifactUploadGrant { job_id: job_id.clone(), lease_token: lease.clone(), executor_id: None }).await?;
        Some((job_id, name.to_string(), lease))
    };
    let (size, mime, sha256) = store_body(&mut ctx, &bucket, &path).await?;
    let Some((job_id, name, lease)) = job else {
        let stored = json!({ "ok": true, "bucket": bucket, "key": path, "size": size, "sha256": sha256 });
        return Ok(ApiResponse::json(201, &stored));
    };
    let record = ArtifactRecord { job_id, lease_token: lease, bucket, path, name, size, mime, sha256 };
    let artifact = ctx.call(record).await?;
    Ok(ApiResponse::json(201, &json!({ "ok": true, "artifact": artifact })))
}

/// Streams the request body into `bucket/path`, sizing and hashing it on
/// the way: `(size, mime, sha256)`.
async fn store_body(ctx: &mut RequestContext, bucket: &str, path: &str) -> Result<(u64, String, String), ApiError> {
    // The runtime drops `Content-Length: 0`: no body at all is an empty file.
    let size = match ctx.header("content-length") {
        Some(length) => length.parse::<u64>().ok(),
        None => ctx.request.inner().body().is_none().then_some(0),
    }
    .ok_or_else(|| ApiError::new(411, "length_required", "an upload needs a Content-Length"))?;
    // A Figma document is converted whole in memory later: it gets
    // figma-compat's cap, not the artifacts' one.
    let limit = if bucket == FIGMA_BUCKET {
        ctx.config.figma_max_body_bytes as u64
    } else {
        ctx.config.storage.max_artifact_bytes
    };
    if size > limit {
        return Err(cogo_shared::http::body::too_large(limit as usize));
    }
    let mime = ctx
        .header("content-type")
        .and_then(|t| check_mime(t.split(';').next().unwrap_or_default().trim()).map(str::to_string))
        .unwrap_or_else(|| "application/octet-stream".to_string());
    let hasher = Rc::new(RefCell::new(Sha256::new()));
    let body = if size == 0 {
        FixedLengthStream::wrap(stream::empty(), 0)
    } else {
        let seen = hasher.clone();
        let bytes = ctx.request.stream().map_err(|_| ApiError::bad_request("invalid_body", "no request body"))?;
        FixedLengthStream::wrap(bytes.inspect_ok(move |chunk| seen.borrow_mut().update(chunk)), size)
    };
    let storage = Storage::open(&ctx.env, &ctx.config)?;
    storage.put(&ctx.config, bucket, path, &mime, size, body).await?;
    let sha256 = cogo_shared::hex(&hasher.take().finalize());
    Ok((size, mime, sha256))
}

pub fn object_not_found(bucket: &str, path: &str) -> ApiError {
    ApiError::new(404, "object_not_found", format!("no object {bucket}/{path}"))
}

/// `GET sign-artifact?bucket&path&expires` -> `{url, bucket, path,
/// expires, expiresAt}`, for the job's owner or the platform; 404 when the
/// object does not exist.
pub async fn sign_artifact(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let request = artifacts::sign_request(&ctx.query(), ctx.config.storage.link_max_seconds)?;
    let (bucket, path) = (request.bucket.as_str(), request.path.as_str());
    // A user sees the artifacts of their own jobs (row level security).
    if ctx.principal.role != Role::Service {
        ctx.call_as_caller(ArtifactFind { bucket: bucket.to_string(), path: path.to_string() }).await?;
    }
    let storage = Storage::open(&ctx.env, &ctx.config)?;
    storage.head(&ctx.config, bucket, path).await?.ok_or_else(|| object_not_found(bucket, path))?;
    let expires_at = now_secs(&ctx) + i64::from(request.expires);
    let url = match storage.native_link(&ctx.config, bucket, path, request.expires).await? {
        Some(url) => url,
        None => link_url(&ctx.origin()?, link_secret(&ctx)?, "GET", bucket, path, expires_at),
    };
    Ok(ApiResponse::json(
        200,
        &json!({
            "url": url, "bucket": bucket, "path": path, "expires": request.expires,
            "expiresAt": iso8601(expires_at * 1000),
        }),
    ))
}

/// `GET artifact/<bucket>/<path>?exp&sig`: the object, streamed, with
/// Content-Type, Content-Length, ETag and single byte ranges.
pub async fn artifact_get(ctx: RequestContext) -> Result<Reply, ApiError> {
    let (bucket, path, _) = signed_target(&ctx, "GET")?;
    let storage = Storage::open(&ctx.env, &ctx.config)?;
    let meta = storage.head(&ctx.config, &bucket, &path).await?.ok_or_else(|| object_not_found(&bucket, &path))?;
    let headers = Headers::new();
    let set = |name: &str, value: &str| headers.set(name, value).map_err(|_| internal());
    set("ETag", &meta.etag)?;
    set("Accept-Ranges", "bytes")?;
    set("Content-Type", meta.mime.as_deref().unwrap_or("application/octet-stream"))?;
    if ctx.header("if-none-match").is_some_and(|tag| tag == meta.etag) {
        return Response::empty()
            .map(|r| Reply::Streamed(r.with_status(304).with_headers(headers)))
            .map_err(|_| internal());
    }
    let (status, range) = match parse_range(ctx.header("range").as_deref(), meta.size) {
        Range::Full => (200, None),
        Range::Part { start, end } => {
            set("Content-Range", &format!("bytes {start}-{end}/{}", meta.size))?;
            (206, Some((start, end - start + 1)))
        }
        Range::Unsatisfiable => {
            return Err(ApiError::new(416, "range_not_satisfiable", format!("the object has {} bytes", meta.size))
                .with_header("Content-Range", format!("bytes */{}", meta.size)));
        }
    };
    let length = range.map_or(meta.size, |(_, length)| length);
    set("Content-Length", &length.to_string())?;
    let object = storage.r2_object(&bucket, &path, range).await?.ok_or_else(|| object_not_found(&bucket, &path))?;
    let body = match object.body() {
        Some(body) => body.response_body().map_err(|_| internal())?,
        None => return Err(object_not_found(&bucket, &path)),
    };
    let response = Response::from_body(body).map_err(|_| internal())?;
    Ok(Reply::Streamed(response.with_status(status).with_headers(headers)))
}

fn internal() -> ApiError {
    ApiError::new(500, "internal_error", "could not build the response")
}
