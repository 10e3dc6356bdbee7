//! CORS for the origins in `EDGE_CORS_ALLOW_ORIGINS` (`*`, exact origins, and
//! `null` for the Figma plugin's sandboxed iframe).

use crate::http::error::ApiError;
use crate::http::ApiResponse;

/// What the existing clients send (COGO_PROTOCOLS.md) plus our own headers.
pub const ALLOW_HEADERS: &str = "Authorization, apikey, x-api-key, Content-Type, Idempotency-Key, If-Match, \
If-None-Match, x-agent-id, x-ts, x-signature, x-timestamp, Last-Event-ID";
pub const ALLOW_METHODS: &str = "GET, POST, OPTIONS, HEAD";
const EXPOSE_HEADERS: &str = "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After, \
Idempotent-Replayed, Content-Range, Allow";

/// The value to send as `Access-Control-Allow-Origin` for `origin`, if allowed.
pub fn allowed_origin(allowed: &[String], origin: &str) -> Option<String> {
    if allowed.iter().any(|a| a == origin) {
        Some(origin.to_string())
    } else if allowed.iter().any(|a| a == "*") {
        Some("*".to_string())
    } else {
        None
    }
}

/// Headers for a normal response to a request from `origin`.
pub fn response_headers(allowed: &[String], origin: Option<&str>) -> Vec<(String, String)> {
    let Some(value) = origin.and_then(|o| allowed_origin(allowed, o)) else { return Vec::new() };
    vec![
        ("Access-Control-Allow-Origin".into(), value),
        ("Access-Control-Expose-Headers".into(), EXPOSE_HEADERS.into()),
        ("Vary".into(), "Origin".into()),
    ]
}

/// The answer to a preflight (`OPTIONS` with `Access-Control-Request-Method`).
pub fn preflight(allowed: &[String], origin: &str) -> Result<ApiResponse, ApiError> {
    let value = allowed_origin(allowed, origin)
        .ok_or_else(|| ApiError::new(403, "origin_not_allowed", format!("origin {origin} is not allowed")))?;
    Ok(ApiResponse {
        status: 204,
        headers: vec![
            ("Access-Control-Allow-Origin".into(), value),
            ("Access-Control-Allow-Methods".into(), ALLOW_METHODS.into()),
            ("Access-Control-Allow-Headers".into(), ALLOW_HEADERS.into()),
            ("Access-Control-Max-Age".into(), "86400".into()),
            ("Vary".into(), "Origin".into()),
        ],
        body: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exact_origins_are_echoed_and_null_is_an_origin() {
        let allowed = list(&["https://app.example", "null"]);
        assert_eq!(allowed_origin(&allowed, "https://app.example").as_deref(), Some("https://app.example"));
        assert_eq!(allowed_origin(&allowed, "null").as_deref(), Some("null"));
        assert_eq!(allowed_origin(&allowed, "https://evil.example"), None);
        assert_eq!(allowed_origin(&list(&["*"]), "https://any.example").as_deref(), Some("*"));
    }

    #[test]
    fn preflight_lists_the_clients_headers() {
        let r = preflight(&list(&["null"]), "null").unwrap();
        assert_eq!(r.status, 204);
        let headers = r.header("access-control-allow-headers").unwrap();
        for h in
            ["Authorization", "apikey", "Content-Type", "Idempotency-Key", "If-Match", "If-None-Match", "x-agent-id"]
        {
            assert!(headers.contains(h), "{h}");
        }
        assert_eq!(preflight(&list(&["null"]), "https://evil.example").unwrap_err().status, 403);
    }

    #[test]
    fn no_headers_for_unlisted_or_absent_origins() {
        assert!(response_headers(&list(&["https://a"]), Some("https://b")).is_empty());
        assert!(response_headers(&list(&["https://a"]), None).is_empty());
        assert_eq!(response_headers(&list(&["https://a"]), Some("https://a"))[0].1, "https://a");
    }
}
