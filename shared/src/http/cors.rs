//! CORS for the origins in `EDGE_CORS_ALLOW_ORIGINS`: `*`, exact origins,
//! `null` for the Figma plugin's sandboxed iframe, and, for local
//! development, a loopback origin on any port (`http://localhost:*`).

use crate::http::error::ApiError;
use crate::http::ApiResponse;

/// What the existing clients send (COGO_PROTOCOLS.md) plus our own headers.
pub const ALLOW_HEADERS: &str = "Authorization, apikey, x-api-key, Content-Type, Idempotency-Key, If-Match, \
If-None-Match, x-agent-id, x-ts, x-signature, x-timestamp, Last-Event-ID";
pub const ALLOW_METHODS: &str = "GET, POST, OPTIONS, HEAD";
const EXPOSE_HEADERS: &str = "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After, \
Idempotent-Replayed, Content-Range, Allow, x-request-id";

/// One entry of `EDGE_CORS_ALLOW_ORIGINS`.
#[derive(Debug, Clone, PartialEq)]
pub enum AllowedOrigin {
    Any,
    /// An origin as browsers send it (`https://app.example:8443`, `null`).
    Exact(String),
    /// `scheme://host` of a loopback host, on any port: dev servers pick theirs.
    LoopbackAnyPort(String),
}

impl AllowedOrigin {
    fn admits(&self, origin: &str) -> bool {
        match self {
            AllowedOrigin::Any => true,
            AllowedOrigin::Exact(o) => o == origin,
            AllowedOrigin::LoopbackAnyPort(base) => origin.strip_prefix(base.as_str()).is_some_and(|rest| {
                rest.is_empty()
                    || rest
                        .strip_prefix(':')
                        .is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
            }),
        }
    }
}

/// Parses the comma list of `EDGE_CORS_ALLOW_ORIGINS`. A port wildcard is
/// refused except on a loopback host, so it can never open a public origin.
pub fn parse_origins(list: &str) -> Result<Vec<AllowedOrigin>, String> {
    list.split(',').map(str::trim).filter(|o| !o.is_empty()).map(parse_origin).collect()
}

fn parse_origin(entry: &str) -> Result<AllowedOrigin, String> {
    match entry {
        "*" => return Ok(AllowedOrigin::Any),
        "null" => return Ok(AllowedOrigin::Exact(entry.to_string())),
        _ => {}
    }
    let not_an_origin = || format!("{entry:?} is not an origin (scheme://host[:port], no path)");
    let (scheme, authority) = entry.split_once("://").ok_or_else(not_an_origin)?;
    if scheme.is_empty() || authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return Err(not_an_origin());
    }
    match authority.strip_suffix(":*") {
        Some(host) if matches!(host, "localhost" | "127.0.0.1" | "[::1]") => {
            Ok(AllowedOrigin::LoopbackAnyPort(format!("{scheme}://{host}")))
        }
        Some(_) => Err(format!("{entry:?}: a port wildcard is allowed only for localhost, 127.0.0.1 and [::1]")),
        None if authority.contains('*') => Err(not_an_origin()),
        None => Ok(AllowedOrigin::Exact(entry.to_string())),
    }
}

/// The value to send as `Access-Control-Allow-Origin` for `origin`, if allowed.
pub fn allowed_origin(allowed: &[AllowedOrigin], origin: &str) -> Option<String> {
    let specific = allowed.iter().any(|a| *a != AllowedOrigin::Any && a.admits(origin));
    if specific {
        Some(origin.to_string())
    } else if allowed.contains(&AllowedOrigin::Any) {
        Some("*".to_string())
    } else {
        None
    }
}

/// Headers for a normal response to a request from `origin`.
pub fn response_headers(allowed: &[AllowedOrigin], origin: Option<&str>) -> Vec<(String, String)> {
    let Some(value) = origin.and_then(|o| allowed_origin(allowed, o)) else { return Vec::new() };
    vec![
        ("Access-Control-Allow-Origin".into(), value),
        ("Access-Control-Expose-Headers".into(), EXPOSE_HEADERS.into()),
        ("Vary".into(), "Origin".into()),
    ]
}

/// The answer to a preflight (`OPTIONS` with `Access-Control-Request-Method`).
pub fn preflight(allowed: &[AllowedOrigin], origin: &str) -> Result<ApiResponse, ApiError> {
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

    fn list(items: &[&str]) -> Vec<AllowedOrigin> {
        parse_origins(&items.join(",")).unwrap()
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
    fn loopback_origins_on_any_port() {
        let allowed = list(&["null", "http://localhost:*", "http://127.0.0.1:*"]);
        for ok in ["http://localhost:5173", "http://localhost", "http://127.0.0.1:8787", "null"] {
            assert_eq!(allowed_origin(&allowed, ok).as_deref(), Some(ok), "{ok}");
        }
        for refused in [
            "https://localhost:5173",
            "http://localhost.evil.example",
            "http://localhost:5173.evil.example",
            "http://localhost:",
            "http://localhost:123456",
            "http://127.0.0.10:80",
            "http://[::1]:3000",
        ] {
            assert_eq!(allowed_origin(&allowed, refused), None, "{refused}");
        }
    }

    #[test]
    fn port_wildcards_only_for_loopback_and_entries_must_be_origins() {
        assert_eq!(
            parse_origins(" https://app.example , null,*, http://[::1]:*").unwrap(),
            vec![
                AllowedOrigin::Exact("https://app.example".into()),
                AllowedOrigin::Exact("null".into()),
                AllowedOrigin::Any,
                AllowedOrigin::LoopbackAnyPort("http://[::1]".into()),
            ]
        );
        assert_eq!(parse_origins("").unwrap(), vec![]);
        for bad in ["https://app.example:*", "https://*.example", "app.example", "https://app.example/", "http://a/b"] {
            let why = parse_origins(bad).unwrap_err();
            assert!(why.contains(bad), "{bad}: {why}");
        }
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
