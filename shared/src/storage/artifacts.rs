//! Artifacts: where objects live, and the links that let a client fetch
//! one without a credential. Object paths are built here from the job id
//! and a file name, never taken raw from a caller; a path a caller names
//! (to sign or download) must already be in normal form. Links are
//! HMAC-SHA256 over method, bucket, path and expiry, checked in constant
//! time.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::http::body::{invalid, Body};
use crate::http::error::ApiError;
use crate::http::query::Query;
use crate::postgrest::sql_function;
use crate::storage::supabase::encode_path;

pub const MAX_PATH_BYTES: usize = 1024;
pub const MAX_NAME_CHARS: usize = 255;
/// The bucket artifacts live in (the clients' `bucket=artifacts`).
pub const BUCKET: &str = "artifacts";
/// How long an upload link stays valid.
pub const UPLOAD_LINK_SECONDS: u32 = 900;
pub const DEFAULT_LINK_SECONDS: u32 = 3600;
const DEFAULT_MIME: &str = "application/octet-stream";

/// The bucket the Figma plugin uploads whole documents to.
pub const FIGMA_BUCKET: &str = "figma";

/// 404 for a bucket this bundle does not serve.
pub fn check_bucket(bucket: &str) -> Result<&str, ApiError> {
    if bucket == BUCKET || bucket == FIGMA_BUCKET {
        Ok(bucket)
    } else {
        Err(ApiError::new(404, "bucket_not_found", format!("no bucket {bucket:?}; artifacts are in {BUCKET:?}")))
    }
}

/// A media type as `type/subtype`, token characters only (no parameters).
pub fn check_mime(mime: &str) -> Option<&str> {
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b));
    let (kind, sub) = mime.split_once('/')?;
    (mime.len() <= 255 && token(kind) && token(sub)).then_some(mime)
}

sql_function! {
    /// `cogo.artifact_upload_grant`: the job is running under this lease
    /// (and, for a scoped worker, is its executor's).
    pub struct ArtifactUploadGrant => "artifact_upload_grant" -> Value {
        pub job_id: String,
        pub lease_token: String,
        pub executor_id: Option<String>,
    }
}

sql_function! {
    /// `cogo.artifact_record`: an uploaded file's row, under the job's lease.
    pub struct ArtifactRecord => "artifact_record" -> Value {
        pub job_id: String,
        pub lease_token: String,
        pub bucket: String,
        pub path: String,
        pub name: String,
        pub size: u64,
        pub mime: String,
        pub sha256: String,
    }
}

sql_function! {
    /// `cogo.artifact_find`: the artifact at a bucket and path, if the caller
    /// may see its job.
    pub struct ArtifactFind => "artifact_find" -> Value {
        pub bucket: String,
        pub path: String,
    }
}

/// `POST artifact-upload-url` `{jobId, leaseToken, name, mime?, size?}`.
#[derive(Debug, PartialEq)]
pub struct UploadRequest {
    pub job_id: String,
    pub lease_token: String,
    pub path: String,
    pub mime: String,
}

pub fn upload_request(body: &Body, max_bytes: u64) -> Result<UploadRequest, ApiError> {
    let job_id = body.req_uuid("jobId")?;
    let lease_token = body.req_uuid("leaseToken")?;
    let path = object_path(&job_id, &body.req_str("name", MAX_NAME_CHARS)?)?;
    let mime = match body.opt_str(&["mime", "contentType"], 255)? {
        Some(m) => {
            check_mime(&m).map(str::to_string).ok_or_else(|| invalid("mime", "a media type such as image/png"))?
        }
        None => DEFAULT_MIME.to_string(),
    };
    if let Some(size) = body.opt_int(&["size"], 0, i64::MAX)? {
        if size as u64 > max_bytes {
            return Err(crate::http::body::too_large(max_bytes as usize));
        }
    }
    Ok(UploadRequest { job_id, lease_token, path, mime })
}

/// `GET sign-artifact?bucket&path&expires`: what to sign, for how long
/// (clamped to `max_seconds`).
#[derive(Debug, PartialEq)]
pub struct SignRequest {
    pub bucket: String,
    pub path: String,
    pub expires: u32,
}

pub fn sign_request(q: &Query, max_seconds: u32) -> Result<SignRequest, ApiError> {
    let bucket = q.opt_str(&["bucket"], 100)?.unwrap_or_else(|| BUCKET.to_string());
    check_bucket(&bucket)?;
    let path = q.raw(&["path"]).ok_or_else(|| crate::http::query::invalid("path", "an object path"))?;
    check_path(path)?;
    let expires = q.opt_int("expires", 1, i64::from(u32::MAX))?.map_or(DEFAULT_LINK_SECONDS, |e| e as u32);
    Ok(SignRequest { bucket, path: path.to_string(), expires: expires.min(max_seconds) })
}

/// The bundle's own link to an object: `<origin>/functions/v1/artifact/
/// <bucket>/<path>?exp=<unix seconds>&sig=<hex>`.
pub fn link_url(origin: &str, secret: &str, method: &str, bucket: &str, path: &str, expires_at: i64) -> String {
    let sig = link_signature(secret, method, bucket, path, expires_at);
    format!("{origin}/functions/v1/artifact/{}/{}?exp={expires_at}&sig={sig}", encode_path(bucket), encode_path(path))
}

/// The origin links are built on: the configured public URL; without one,
/// the request's own origin, but only when it is a loopback address (local
/// development), since elsewhere the `Host` header is the caller's to choose.
pub fn link_origin(public_url: Option<&str>, request_origin: &str) -> Result<String, ApiError> {
    if let Some(origin) = public_url {
        return Ok(origin.to_string());
    }
    // The origin is already normalised by the URL parser: `scheme://host[:port]`.
    let authority = request_origin.split_once("://").map_or("", |(_, rest)| rest);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    let loopback = host == "localhost"
        || host == "::1"
        || host.strip_prefix("127.").is_some_and(|rest| rest.split('.').all(|n| n.parse::<u8>().is_ok()));
    if loopback {
        Ok(request_origin.to_string())
    } else {
        Err(ApiError::new(500, "config_error", "missing configuration: PUBLIC_URL (the origin links are built on)"))
    }
}

/// A job artifact's upload link, bound to the lease it was granted under:
/// it works only while that lease is the job's current one.
pub fn upload_link_url(origin: &str, secret: &str, path: &str, expires_at: i64, lease_token: &str) -> String {
    let sig = crate::hex(&mac(secret, "PUT", BUCKET, path, expires_at, Some(lease_token)).finalize().into_bytes());
    format!(
        "{origin}/functions/v1/artifact/{BUCKET}/{}?exp={expires_at}&lease={lease_token}&sig={sig}",
        encode_path(path)
    )
}

fn bad_path(why: &str) -> ApiError {
    ApiError::bad_request("invalid_path", format!("path {why}")).with_details(json!({ "parameter": "path" }))
}

/// `path` if it is a relative object path in normal form: segments of
/// allowed characters separated by single slashes; no `.` or `..`, no
/// leading slash, no backslash, no `%` (it has been decoded once already,
/// so a `%` left means an encoded traversal or a double encoding), no NUL
/// or other control characters.
pub fn check_path(path: &str) -> Result<&str, ApiError> {
    if path.is_empty() {
        return Err(bad_path("is empty"));
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(bad_path(&format!("is longer than {MAX_PATH_BYTES} bytes")));
    }
    if path.starts_with('/') {
        return Err(bad_path("must be relative (no leading /)"));
    }
    if let Some(c) = path.chars().find(|c| c.is_control() || matches!(c, '\\' | '%')) {
        return Err(bad_path(&format!("may not contain {c:?}")));
    }
    if path.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(bad_path("may not contain empty, . or .. segments"));
    }
    Ok(path)
}

/// A file name: one path segment.
pub fn check_name(name: &str) -> Result<&str, ApiError> {
    let invalid = |why: &str| {
        ApiError::bad_request("invalid_field", format!("name {why}")).with_details(json!({ "field": "name" }))
    };
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(invalid(&format!("is longer than {MAX_NAME_CHARS} characters")));
    }
    if name.contains('/') {
        return Err(invalid("must be a file name, without /"));
    }
    check_path(name).map_err(|e| invalid(e.message.trim_start_matches("path ")))
}

/// Where a job's artifact is stored: `<job id>/<name>`.
pub fn object_path(job_id: &str, name: &str) -> Result<String, ApiError> {
    Ok(format!("{job_id}/{}", check_name(name)?))
}

/// The hex HMAC-SHA256 of a link: method, bucket, path and expiry (Unix
/// seconds), one per line.
pub fn link_signature(secret: &str, method: &str, bucket: &str, path: &str, expires_at: i64) -> String {
    crate::hex(&mac(secret, method, bucket, path, expires_at, None).finalize().into_bytes())
}

/// Method, bucket, path, expiry and, for upload links, the lease token, one
/// per line.
fn mac(secret: &str, method: &str, bucket: &str, path: &str, expires_at: i64, lease: Option<&str>) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{method}\n{bucket}\n{path}\n{expires_at}").as_bytes());
    if let Some(lease) = lease {
        mac.update(format!("\n{lease}").as_bytes());
    }
    mac
}

/// Checks a link's signature (in constant time), including the lease it
/// is bound to if any, and then its expiry.
#[allow(clippy::too_many_arguments)]
pub fn verify_link(
    secret: &str,
    method: &str,
    bucket: &str,
    path: &str,
    expires_at: i64,
    lease: Option<&str>,
    signature: &str,
    now_secs: i64,
) -> Result<(), ApiError> {
    let forbidden = || ApiError::new(403, "invalid_signature", "the link's signature does not match");
    let tag = hex_decode(signature).ok_or_else(forbidden)?;
    mac(secret, method, bucket, path, expires_at, lease).verify_slice(&tag).map_err(|_| forbidden())?;
    if expires_at < now_secs {
        return Err(ApiError::new(403, "link_expired", "the link has expired; ask for a new one"));
    }
    Ok(())
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// What a `Range` header asks of an object of `size` bytes.
#[derive(Debug, PartialEq)]
pub enum Range {
    /// The whole object (no header, or one we do not serve partially).
    Full,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// Nothing of it can be served: 416.
    Unsatisfiable,
}

/// One `bytes=` range (`a-b`, `a-`, `-n`). Several ranges, or other
/// units, are answered with the whole object, as RFC 9110 allows.
pub fn parse_range(header: Option<&str>, size: u64) -> Range {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return Range::Full };
    if spec.contains(',') {
        return Range::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return Range::Full };
    let (first, last) = (first.trim(), last.trim());
    let parsed = match (first.is_empty(), last.is_empty()) {
        (true, false) => last.parse::<u64>().ok().map(|n| (size.saturating_sub(n), size.saturating_sub(1), n == 0)),
        (false, _) => {
            let start = first.parse::<u64>().ok();
            let end = if last.is_empty() { Some(u64::MAX) } else { last.parse::<u64>().ok() };
            start.zip(end).filter(|(s, e)| s <= e).map(|(s, e)| (s, e.min(size.saturating_sub(1)), s >= size))
        }
        (true, true) => None,
    };
    match parsed {
        None => Range::Full,
        Some((_, _, true)) => Range::Unsatisfiable,
        Some(_) if size == 0 => Range::Unsatisfiable,
        Some((start, end, false)) => Range::Part { start, end },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_in_normal_form_pass_and_everything_else_is_400() {
        for ok in ["a", "0f8fad5b-d9cb-469f-a165-70867728950e/shot 1.png", "a/b/c.tar.gz", "é/ü"] {
            assert_eq!(check_path(ok).unwrap(), ok);
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            "a//b",
            "a/",
            "a\\b",
            "a%2e%2e/b",
            "%252e",
            "a\0b",
            "a\nb",
            "a\u{7f}",
            "..",
        ] {
            let e = check_path(bad).unwrap_err();
            assert_eq!((e.status, e.code), (400, "invalid_path"), "{bad:?}");
        }
        assert!(check_path(&"a".repeat(MAX_PATH_BYTES + 1)).is_err());
    }

    #[test]
    fn object_paths_are_built_from_job_and_name() {
        assert_eq!(object_path("j", "out.png").unwrap(), "j/out.png");
        for bad in ["a/b", "..", "", "x\u{0}"] {
            assert_eq!(object_path("j", bad).unwrap_err().code, "invalid_field", "{bad:?}");
        }
    }

    #[test]
    fn links_verify_only_for_what_was_signed_and_until_expiry() {
        let sig = link_signature("k", "GET", "artifacts", "j/a.png", 2_000);
        assert_eq!(sig.len(), 64);
        assert!(verify_link("k", "GET", "artifacts", "j/a.png", 2_000, None, &sig, 1_999).is_ok());
        assert!(verify_link("k", "GET", "artifacts", "j/a.png", 2_000, None, &sig, 2_000).is_ok());
        for (method, bucket, path, exp, key) in [
            ("PUT", "artifacts", "j/a.png", 2_000, "k"),
            ("GET", "other", "j/a.png", 2_000, "k"),
            ("GET", "artifacts", "j/b.png", 2_000, "k"),
            ("GET", "artifacts", "j/a.png", 2_001, "k"),
            ("GET", "artifacts", "j/a.png", 2_000, "other key"),
        ] {
            let e = verify_link(key, method, bucket, path, exp, None, &sig, 0).unwrap_err();
            assert_eq!((e.status, e.code), (403, "invalid_signature"), "{method} {bucket} {path} {exp}");
        }
        assert_eq!(
            verify_link("k", "GET", "artifacts", "j/a.png", 2_000, None, "zz", 0).unwrap_err().code,
            "invalid_signature"
        );
        let e = verify_link("k", "GET", "artifacts", "j/a.png", 2_000, None, &sig, 2_001).unwrap_err();
        assert_eq!((e.status, e.code), (403, "link_expired"));
    }

    #[test]
    fn upload_and_sign_requests() {
        let body = |s: &str| Body::parse(s.as_bytes(), 1 << 20).unwrap();
        const JOB: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let ok = format!(r#"{{"jobId":"{JOB}","leaseToken":"{JOB}","name":"shot.png","mime":"image/png","size":3}}"#);
        let up = upload_request(&body(&ok), 10).unwrap();
        assert_eq!((up.path.as_str(), up.mime.as_str()), (&*format!("{JOB}/shot.png"), "image/png"));
        for (bad, status) in [
            (format!(r#"{{"jobId":"{JOB}","name":"a"}}"#), 400),
            (format!(r#"{{"jobId":"{JOB}","leaseToken":"{JOB}","name":"../a"}}"#), 400),
            (format!(r#"{{"jobId":"{JOB}","leaseToken":"{JOB}","name":"a","mime":"text"}}"#), 400),
            (format!(r#"{{"jobId":"{JOB}","leaseToken":"{JOB}","name":"a","size":11}}"#), 413),
        ] {
            assert_eq!(upload_request(&body(&bad), 10).unwrap_err().status, status, "{bad}");
        }
        let q = Query::parse(Some("bucket=artifacts&path=j%2Fa.png&expires=999999"));
        assert_eq!(
            sign_request(&q, 86_400).unwrap(),
            SignRequest { bucket: "artifacts".into(), path: "j/a.png".into(), expires: 86_400 }
        );
        assert_eq!(sign_request(&Query::parse(Some("path=j/a")), 86_400).unwrap().expires, DEFAULT_LINK_SECONDS);
        for (bad, status) in
            [("path=../etc", 400), ("bucket=secrets&path=a", 404), ("path=a&expires=0", 400), ("", 400)]
        {
            assert_eq!(sign_request(&Query::parse(Some(bad)), 60).unwrap_err().status, status, "{bad}");
        }
    }

    #[test]
    fn links_use_the_public_url_or_a_loopback_origin() {
        assert_eq!(link_origin(Some("https://edge.example"), "https://evil.example").unwrap(), "https://edge.example");
        for local in ["http://127.0.0.1:8787", "http://localhost:8787", "http://[::1]:8787", "http://127.1.2.3"] {
            assert_eq!(link_origin(None, local).unwrap(), local);
        }
        for remote in ["https://evil.example", "http://127.0.0.1.evil.example", "http://localhost.evil.example"] {
            assert_eq!(link_origin(None, remote).unwrap_err().code, "config_error", "{remote}");
        }
    }

    #[test]
    fn upload_links_are_bound_to_their_lease() {
        let url = upload_link_url("http://h", "k", "j/a.png", 7, "lease-1");
        let sig = url.rsplit_once("sig=").unwrap().1;
        assert!(url.contains("lease=lease-1&"));
        assert!(verify_link("k", "PUT", BUCKET, "j/a.png", 7, Some("lease-1"), sig, 0).is_ok());
        for lease in [Some("lease-2"), None] {
            assert_eq!(verify_link("k", "PUT", BUCKET, "j/a.png", 7, lease, sig, 0).unwrap_err().status, 403);
        }
    }

    #[test]
    fn link_urls_carry_expiry_and_signature() {
        let url = link_url("http://h", "k", "GET", "artifacts", "j/a b.png", 7);
        let sig = link_signature("k", "GET", "artifacts", "j/a b.png", 7);
        assert_eq!(url, format!("http://h/functions/v1/artifact/artifacts/j/a%20b.png?exp=7&sig={sig}"));
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Range::Full);
        assert_eq!(parse_range(Some("bytes=0-3"), 10), Range::Part { start: 0, end: 3 });
        assert_eq!(parse_range(Some("bytes=5-"), 10), Range::Part { start: 5, end: 9 });
        assert_eq!(parse_range(Some("bytes=-4"), 10), Range::Part { start: 6, end: 9 });
        assert_eq!(parse_range(Some("bytes=8-100"), 10), Range::Part { start: 8, end: 9 });
        assert_eq!(parse_range(Some("bytes=-100"), 10), Range::Part { start: 0, end: 9 });
        assert_eq!(parse_range(Some("bytes=10-"), 10), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-0"), 0), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), Range::Unsatisfiable);
        for full in ["bytes=3-1", "bytes=0-1,4-5", "items=0-1", "bytes=x-1", "bytes=-"] {
            assert_eq!(parse_range(Some(full), 10), Range::Full, "{full}");
        }
    }
}
