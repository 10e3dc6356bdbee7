//! `GET /api/collab/health`: the bundle is up, and the database answers
//! through PostgREST (one round trip).

use serde_json::json;

use crate::http::error::ApiError;
use crate::http::{ApiResponse, Transport};
use crate::postgrest::Postgrest;
use crate::time::iso8601;

/// 200 `{ok, timestamp, version, db: "ok"}`, or 503 in the error shape
/// with `db: "unreachable"` when PostgREST or the database does not answer.
pub async fn check<T: Transport>(transport: &T, postgrest: &Postgrest, version: &str, now_ms: i64) -> ApiResponse {
    let timestamp = iso8601(now_ms);
    match async { postgrest.send(transport, postgrest.rpc_get("health")?).await }.await {
        Ok(_) => ApiResponse::json(200, &json!({"ok": true, "timestamp": timestamp, "version": version, "db": "ok"})),
        Err(e) => ApiError::new(503, "db_unreachable", format!("database unreachable: {}", e.reason()))
            .with_details(json!({"db": "unreachable"}))
            .with_retryable(true)
            .with_extra("ok", false.into())
            .with_extra("db", "unreachable".into())
            .with_extra("timestamp", timestamp.into())
            .with_extra("version", version.into())
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{HttpRequest, TransportError};
    use futures::executor::block_on;
    use serde_json::Value;

    struct Answer(Result<ApiResponse, TransportError>);

    impl Transport for Answer {
        async fn send(&self, req: HttpRequest) -> Result<ApiResponse, TransportError> {
            assert_eq!(req.url, "http://pg/rpc/health");
            self.0.clone()
        }
    }

    fn run(answer: Result<ApiResponse, TransportError>) -> (u16, Value) {
        let r = block_on(check(&Answer(answer), &Postgrest::new("http://pg", "k"), "1.2.3", 0));
        (r.status, serde_json::from_slice(&r.body).unwrap())
    }

    #[test]
    fn ok_when_postgrest_answers() {
        let (status, body) = run(Ok(ApiResponse { status: 200, headers: vec![], body: b"\"ok\"".to_vec() }));
        assert_eq!(status, 200);
        assert_eq!(body, json!({"ok": true, "timestamp": "1970-01-01T00:00:00.000Z", "version": "1.2.3", "db": "ok"}));
    }

    #[test]
    fn unreachable_gateway_is_503_in_the_error_shape() {
        let (status, body) = run(Err(TransportError::Unreachable("connection refused".into())));
        assert_eq!(status, 503);
        assert_eq!(body["db"], "unreachable");
        assert_eq!(body["ok"], false);
        assert_eq!(body["error"]["code"], "db_unreachable");
        assert_eq!(body["error"]["retryable"], true);
        assert_eq!(body["error"]["details"]["db"], "unreachable");
    }

    #[test]
    fn database_down_behind_gateway_is_503() {
        let (status, body) = run(Ok(ApiResponse {
            status: 503,
            headers: vec![],
            body: br#"{"code":"PGRST001","message":"Database client error"}"#.to_vec(),
        }));
        assert_eq!(status, 503);
        assert_eq!(body["error"]["message"], "database unreachable: PostgREST answered 503 (PGRST001)");
    }
}
