//! `Idempotency-Key` on POSTs: the calls to make around a request and how to
//! read their answers (SQL in migrations/functions/idempotency.sql).

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::auth::Principal;
use crate::http::error::ApiError;
use crate::http::ApiResponse;
use crate::postgrest::sql_function;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "Idempotent-Replayed";

/// What to do with a request carrying a key.
#[derive(Debug, PartialEq)]
pub enum Begin {
    /// First time: run it, then store the response.
    Run,
    /// Seen and finished: answer this stored response.
    Replay(ApiResponse),
}

/// Printable ASCII, 1..=255 characters, as common APIs accept.
pub fn check_key(key: &str) -> Result<(), ApiError> {
    if (1..=255).contains(&key.len()) && key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1..255 printable ASCII characters",
        ))
    }
}

/// Where a key a caller chose lives: per endpoint and caller, so two callers
/// (or two endpoints) sending the same key never meet. Caller ids start with
/// a role name, so no caller can name a platform scope (`platform|...`).
pub fn scope(route: &str, principal: &Principal) -> String {
    format!("{route}|{}", principal.id())
}

sql_function! {
    /// `cogo.idempotency_begin`: claims a key, or says how it was used.
    pub struct IdempotencyBegin => "idempotency_begin" -> Value {
        pub principal: String,
        pub route: String,
        pub key: String,
        pub request_hash: String,
        pub lease_seconds: u32,
    }
}

sql_function! {
    /// `cogo.idempotency_finish`: stores a response under its key, or frees it.
    pub struct IdempotencyFinish => "idempotency_finish" -> Value {
        pub principal: String,
        pub route: String,
        pub key: String,
        pub status: Option<u16>,
        pub body: Value,
        pub ttl_seconds: u32,
    }
}

sql_function! {
    /// `cogo.idempotency_sweep`: drops expired keys.
    pub struct IdempotencySweep => "idempotency_sweep" -> Value {}
}

/// Starts a keyed request, holding the key for `lease_seconds` while it runs.
pub fn begin_args(principal: &str, route: &str, key: &str, body: &[u8], lease_seconds: u32) -> IdempotencyBegin {
    IdempotencyBegin {
        principal: principal.to_string(),
        route: route.to_string(),
        key: key.to_string(),
        request_hash: crate::hex(&Sha256::digest(body)),
        lease_seconds,
    }
}

pub fn read_begin(answer: &Value) -> Result<Begin, ApiError> {
    match answer["state"].as_str() {
        Some("started") => Ok(Begin::Run),
        Some("mismatch") => Err(ApiError::new(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request body",
        )),
        Some("in_flight") => Err(ApiError::new(
            409,
            "idempotency_key_in_flight",
            "a request with this Idempotency-Key is still being processed; retry later",
        )
        .with_retryable(true)
        .with_header("Retry-After", answer["retryAfter"].as_u64().unwrap_or(1).to_string())),
        Some("done") => {
            let status = answer["status"].as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or(200);
            let mut response = ApiResponse::json(status, &answer["body"]);
            response.headers.push((REPLAYED.into(), "true".into()));
            Ok(Begin::Replay(response))
        }
        _ => Err(ApiError::new(502, "upstream_error", "unexpected idempotency state").with_retryable(true)),
    }
}

/// Stores responses below 500 for `ttl_seconds`; a 5xx forgets the key so a
/// retry runs again.
pub fn finish_args(
    principal: &str,
    route: &str,
    key: &str,
    response: &ApiResponse,
    ttl_seconds: u32,
) -> IdempotencyFinish {
    let stored = response.status < 500;
    let body = if stored { serde_json::from_slice(&response.body).unwrap_or(Value::Null) } else { Value::Null };
    IdempotencyFinish {
        principal: principal.to_string(),
        route: route.to_string(),
        key: key.to_string(),
        status: stored.then_some(response.status),
        body,
        ttl_seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_checked() {
        assert!(check_key("abc-123_X").is_ok());
        assert_eq!(check_key("").unwrap_err().status, 400);
        assert_eq!(check_key("has space").unwrap_err().status, 400);
        assert_eq!(check_key(&"k".repeat(256)).unwrap_err().status, 400);
    }

    #[test]
    fn scopes_keep_callers_apart() {
        use crate::auth::{Role, Via};
        let user = |sub: &str| Principal {
            role: Role::Authenticated,
            sub: Some(sub.into()),
            executor_id: None,
            via: Via::Jwt,
        };
        assert_eq!(scope("TaskAssign", &user("a")), "TaskAssign|authenticated:a");
        assert_ne!(scope("TaskAssign", &user("a")), scope("TaskAssign", &user("b")));
        assert_ne!(scope("TaskAssign", &user("a")), scope("Chat", &user("a")));
        assert!(!scope("Chat", &user("platform|dlq")).starts_with("platform|"));
    }

    #[test]
    fn same_body_same_hash() {
        let a = begin_args("p", "/r", "k", b"{}", 60);
        assert_eq!(a.request_hash, begin_args("p", "/r", "k", b"{}", 60).request_hash);
        assert_ne!(a.request_hash, begin_args("p", "/r", "k", b"{ }", 60).request_hash);
    }

    #[test]
    fn states_map_to_statuses() {
        assert_eq!(read_begin(&json!({"state": "started"})), Ok(Begin::Run));
        assert_eq!(read_begin(&json!({"state": "mismatch"})).unwrap_err().status, 422);
        let in_flight = read_begin(&json!({"state": "in_flight", "retryAfter": 7})).unwrap_err();
        assert_eq!((in_flight.status, in_flight.headers[0].1.as_str()), (409, "7"));
        let Ok(Begin::Replay(r)) = read_begin(&json!({"state": "done", "status": 200, "body": {"jobId": "x"}})) else {
            panic!("replay expected")
        };
        assert_eq!(r.status, 200);
        assert_eq!(r.header("idempotent-replayed"), Some("true"));
        assert_eq!(serde_json::from_slice::<Value>(&r.body).unwrap(), json!({"jobId": "x"}));
    }

    #[test]
    fn server_errors_are_not_stored() {
        let failed = ApiError::new(503, "db_unavailable", "x").into_response();
        assert_eq!(finish_args("p", "/r", "k", &failed, 60).status, None);
        let ok = ApiResponse::json(200, &json!({"a": 1}));
        let args = finish_args("p", "/r", "k", &ok, 60);
        assert_eq!((args.status, &args.body), (Some(200), &json!({"a": 1})));
    }
}
