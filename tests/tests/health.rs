//! Health, routing and the error shape, through the real wasm in workerd.

use cogo_tests::Stack;
use serde_json::{json, Value};

fn assert_error_shape(body: &Value, status_code: &str) {
    let error = &body["error"];
    assert_eq!(error["code"], status_code, "{body}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

#[tokio::test]
async fn health_reports_db_ok_after_a_round_trip() {
    let reply = Stack::shared().client().get("/api/collab/health").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("content-type"), Some("application/json; charset=utf-8"));
    let body = reply.json();
    assert_eq!(body["ok"], true);
    assert_eq!(body["db"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let ts = body["timestamp"].as_str().expect("timestamp");
    assert!(ts.len() == 24 && ts.ends_with('Z') && ts.starts_with("20"), "ISO timestamp: {ts}");
}

#[tokio::test]
async fn every_url_family_reaches_health() {
    let client = Stack::shared().client();
    for path in ["/functions/v1/health", "/health", "/collab/health", "/api/collab/health/"] {
        let reply = client.get(path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        assert_eq!(reply.json()["db"], "ok", "{path}");
    }
}

#[tokio::test]
async fn head_answers_headers_without_body() {
    let reply = Stack::shared().client().send("HEAD", "/api/collab/health", None, &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text, "");
}

#[tokio::test]
async fn unknown_route_is_404_in_the_error_shape() {
    let client = Stack::shared().client();
    // `/` is the dashboard's page (tests/dashboard.rs).
    for path in ["/nope", "/functions/v1/nope", "/api/collab/healthz", "/index.htm"] {
        let reply = client.get(path).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_error_shape(&reply.json(), "not_found");
    }
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let reply = Stack::shared().client().send("POST", "/api/collab/health", Some(&json!({})), &[]).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET, HEAD, OPTIONS"));
    let body = reply.json();
    assert_error_shape(&body, "method_not_allowed");
    assert_eq!(body["error"]["details"]["allowed"], json!(["GET", "HEAD", "OPTIONS"]));
}

#[tokio::test]
async fn options_on_a_known_path_lists_methods() {
    let reply = Stack::shared().client().send("OPTIONS", "/functions/v1/health", None, &[]).await;
    assert_eq!(reply.status, 204);
    assert_eq!(reply.header("allow"), Some("GET, HEAD, OPTIONS"));
}

#[tokio::test]
async fn gateway_down_is_503_and_recovers_without_restarting_the_worker() {
    let stack = Stack::builder().local_gateway().start();
    let client = stack.client();
    assert_eq!(client.get("/api/collab/health").await.status, 200);

    stack.stop_gateway();
    let reply = client.get("/api/collab/health").await;
    assert_eq!(reply.status, 503, "{}", reply.text);
    let body = reply.json();
    assert_error_shape(&body, "db_unreachable");
    assert_eq!(body["db"], "unreachable");
    assert_eq!(body["ok"], false);
    assert_eq!(body["error"]["retryable"], true);
    assert_eq!(body["error"]["details"]["db"], "unreachable");

    stack.start_gateway();
    let reply = client.get("/api/collab/health").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["db"], "ok");
}

#[tokio::test]
async fn a_wrong_service_key_is_an_upstream_error_not_db_ok() {
    let stack = Stack::builder().var("SUPABASE_SERVICE_ROLE_KEY", "not-a-jwt").start();
    let reply = stack.client().get("/api/collab/health").await;
    assert_eq!(reply.status, 503, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["db"], "unreachable");
    assert!(!reply.text.contains("not-a-jwt"), "the key never appears in a response");
}

#[tokio::test]
async fn missing_secret_fails_loudly_naming_it() {
    let stack = Stack::builder().var("SUPABASE_SERVICE_ROLE_KEY", "").start();
    let reply = stack.client().get("/api/collab/health").await;
    assert_eq!(reply.status, 500);
    let body = reply.json();
    assert_error_shape(&body, "config_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("SUPABASE_SERVICE_ROLE_KEY"), "{message}");
    // Routing still answers before config is needed.
    assert_eq!(stack.client().get("/nope").await.status, 404);
}
