//! Supabase Storage's REST API as the artifact backend: the requests, built
//! here so they are tested natively; the worker sends them (uploads with a
//! streamed body). Hosted projects sign links with their own key, so with
//! this backend a download link comes from Storage's sign endpoint.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};

use crate::http::{HttpRequest, Method};

/// Everything but unreserved characters and the separators we keep.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `path` with each segment percent-encoded and the slashes kept.
pub fn encode_path(path: &str) -> String {
    path.split('/').map(|s| utf8_percent_encode(s, SEGMENT).to_string()).collect::<Vec<_>>().join("/")
}

#[derive(Debug, Clone)]
pub struct SupabaseStorage {
    /// `https://<ref>.supabase.co/storage/v1`, no trailing slash.
    pub base_url: String,
    pub service_key: String,
}

impl SupabaseStorage {
    fn request(&self, method: Method, route: &str, bucket: &str, path: &str) -> HttpRequest {
        let url = format!("{}/object/{route}{}/{}", self.base_url, encode_path(bucket), encode_path(path));
        self.authorized(method, url)
    }

    fn authorized(&self, method: Method, url: String) -> HttpRequest {
        HttpRequest {
            method,
            url,
            headers: vec![
                ("Authorization".into(), format!("Bearer {}", self.service_key)),
                ("apikey".into(), self.service_key.clone()),
            ],
            body: None,
        }
    }

    /// The upload (the body is streamed by the caller): replaces an
    /// existing object, as a repeated upload to one path does with R2.
    pub fn upload(&self, bucket: &str, path: &str, mime: &str, size: u64) -> HttpRequest {
        let mut req = self.request(Method::Post, "", bucket, path);
        req.headers.push(("Content-Type".into(), mime.into()));
        req.headers.push(("Content-Length".into(), size.to_string()));
        req.headers.push(("x-upsert".into(), "true".into()));
        req
    }

    /// The object's bytes.
    pub fn download(&self, bucket: &str, path: &str) -> HttpRequest {
        self.request(Method::Get, "authenticated/", bucket, path)
    }

    /// Whether the object exists, and its size: `HEAD` answers its headers.
    pub fn head(&self, bucket: &str, path: &str) -> HttpRequest {
        self.request(Method::Head, "authenticated/", bucket, path)
    }

    /// Deletes `paths` (at most 1000) of `bucket` in one call, as
    /// supabase-js's `remove` does; paths that do not exist are ignored.
    pub fn delete(&self, bucket: &str, paths: &[String]) -> HttpRequest {
        let mut req = self.authorized(Method::Delete, format!("{}/object/{}", self.base_url, encode_path(bucket)));
        req.headers.push(("Content-Type".into(), "application/json".into()));
        req.body = Some(json!({ "prefixes": paths }).to_string().into_bytes());
        req
    }

    pub fn sign(&self, bucket: &str, path: &str, expires_in: u32) -> HttpRequest {
        let mut req = self.request(Method::Post, "sign/", bucket, path);
        req.headers.push(("Content-Type".into(), "application/json".into()));
        req.body = Some(json!({ "expiresIn": expires_in }).to_string().into_bytes());
        req
    }

    /// The absolute link from the sign endpoint's `{signedURL}` (a path
    /// relative to the Storage API).
    pub fn signed_url(&self, answer: &Value) -> Option<String> {
        let relative = answer.get("signedURL").or_else(|| answer.get("signedUrl"))?.as_str()?;
        Some(format!("{}/{}", self.base_url, relative.trim_start_matches('/')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage() -> SupabaseStorage {
        SupabaseStorage { base_url: "https://p.supabase.co/storage/v1".into(), service_key: "svc".into() }
    }

    #[test]
    fn requests_name_bucket_and_encoded_path() {
        let up = storage().upload("artifacts", "j/a b#.png", "image/png", 3);
        assert_eq!(up.method, Method::Post);
        assert_eq!(up.url, "https://p.supabase.co/storage/v1/object/artifacts/j/a%20b%23.png");
        assert_eq!(up.header("x-upsert"), Some("true"));
        assert_eq!(up.header("authorization"), Some("Bearer svc"));
        assert_eq!(up.header("content-length"), Some("3"));
        let head = storage().head("artifacts", "j/a.png");
        assert_eq!(
            (head.method, head.url.as_str()),
            (Method::Head, "https://p.supabase.co/storage/v1/object/authenticated/artifacts/j/a.png")
        );
        let sign = storage().sign("artifacts", "j/a.png", 60);
        assert_eq!(sign.url, "https://p.supabase.co/storage/v1/object/sign/artifacts/j/a.png");
        assert_eq!(serde_json::from_slice::<Value>(sign.body.as_deref().unwrap()).unwrap(), json!({"expiresIn": 60}));
    }

    #[test]
    fn delete_names_the_paths_in_the_body() {
        let delete = storage().delete("artifacts", &["j/a b.png".to_string(), "j/c.txt".to_string()]);
        assert_eq!(
            (delete.method, delete.url.as_str()),
            (Method::Delete, "https://p.supabase.co/storage/v1/object/artifacts")
        );
        assert_eq!(delete.header("authorization"), Some("Bearer svc"));
        assert_eq!(
            serde_json::from_slice::<Value>(delete.body.as_deref().unwrap()).unwrap(),
            json!({"prefixes": ["j/a b.png", "j/c.txt"]})
        );
    }

    #[test]
    fn signed_url_is_made_absolute() {
        let answer = json!({"signedURL": "/object/sign/artifacts/j/a.png?token=t"});
        assert_eq!(
            storage().signed_url(&answer).as_deref(),
            Some("https://p.supabase.co/storage/v1/object/sign/artifacts/j/a.png?token=t")
        );
        assert_eq!(storage().signed_url(&json!({})), None);
    }
}
