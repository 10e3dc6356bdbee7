//! Who may call what: every route against every kind of credential, through
//! the real wasm in workerd.

use cogo_tests::{sql, unique, Stack};
use serde_json::{json, Value};

/// (method, path, roles allowed) for every route.
const ROUTES: &[(&str, &str, &[&str])] = &[
    ("GET", "/api/collab/health", ANYONE),
    ("POST", "/api/collab/task.assign", USERS),
    ("POST", "/api/collab/task.claim", &["worker", "service_role"]),
    ("POST", "/api/collab/task.result", &["worker", "service_role"]),
    ("POST", "/api/collab/task.progress", &["worker", "service_role"]),
    ("POST", "/api/collab/task.heartbeat", &["worker", "service_role"]),
    ("POST", "/api/collab/task.cancel", USERS),
    ("POST", "/api/collab/workers/heartbeat", &["worker", "service_role"]),
    ("GET", "/functions/v1/leases-release", &["service_role"]),
    ("GET", "/api/collab/job/6b1f1f3e-8d3c-4a55-9a43-0d5c1f9a6e01", USERS),
    ("GET", "/api/collab/job/6b1f1f3e-8d3c-4a55-9a43-0d5c1f9a6e01/summary", USERS),
    ("GET", "/api/collab/events/by-job/6b1f1f3e-8d3c-4a55-9a43-0d5c1f9a6e01", USERS),
    ("GET", "/api/collab/artifacts/by-job/6b1f1f3e-8d3c-4a55-9a43-0d5c1f9a6e01", USERS),
    ("GET", "/functions/v1/artifacts-list?jobId=6b1f1f3e-8d3c-4a55-9a43-0d5c1f9a6e01", USERS),
    ("GET", "/functions/v1/job-status?id=6b1f1f3e-8d3c-4a55-9a43-0d5c1f9a6e01", USERS),
    ("GET", "/api/collab/jobs/recent", USERS),
    ("GET", "/functions/v1/jobs-recent", USERS),
    ("GET", "/api/collab/metrics/overview", &["service_role"]),
    ("GET", "/functions/v1/metrics-overview", &["service_role"]),
    ("GET", "/functions/v1/metrics", &["service_role"]),
    ("GET", "/api/collab/workers/active", &["service_role"]),
    ("GET", "/functions/v1/workers-active", &["service_role"]),
    ("GET", "/functions/v1/dlq-list", &["service_role"]),
    ("POST", "/functions/v1/dlq-retry", &["service_role"]),
    ("POST", "/functions/v1/artifact-upload-url", &["worker", "service_role"]),
    ("GET", "/functions/v1/sign-artifact?path=6b1f1f3e-8d3c-4a55-9a43-0d5c1f9a6e01/a.txt", USERS),
    ("GET", "/functions/v1/job-events?id=6b1f1f3e-8d3c-4a55-9a43-0d5c1f9a6e01", USERS),
    ("POST", "/functions/v1/chat", USERS),
    ("GET", "/functions/v1/trace-status?trace_id=6b1f1f3e-8d3c-4a55-9a43-0d5c1f9a6e01", USERS),
    ("POST", "/functions/v1/broadcast", &["worker", "service_role"]),
    // Streams that would stay open are asked something invalid: 400 proves the credential passed.
    ("GET", "/functions/v1/channel?name=nowhere", &["authenticated", "worker", "service_role"]),
    ("GET", "/functions/v1/workers-stream?after=x", &["service_role"]),
    ("GET", "/figma-compat/healthz", ANYONE),
    ("POST", "/figma-compat/uui/generate", &["authenticated", "worker", "service_role"]),
    ("POST", "/functions/v1/figma-compat/figma/from-uui", &["authenticated", "worker", "service_role"]),
    ("POST", "/figma-compat/uui/presign", &["authenticated", "worker", "service_role"]),
    ("POST", "/figma-compat/uui/symbols/map", &["authenticated", "worker", "service_role"]),
    ("POST", "/figma-compat/uui/ingest", &["authenticated", "worker", "service_role"]),
    (
        "GET",
        "/figma-compat/uui/ingest/result?traceId=6b1f1f3e-8d3c-4a55-9a43-0d5c1f9a6e01",
        &["authenticated", "worker", "service_role"],
    ),
    // The artifact links themselves carry their credential (the signature): tests/artifacts.rs.
    ("GET", "/docs.json", ANYONE),
    ("GET", "/functions/v1/docs", ANYONE),
];
const USERS: &[&str] = &["authenticated", "service_role"];
const ANYONE: &[&str] = &["anon", "authenticated", "worker", "service_role"];

fn claims(role: &str, exp_offset: i64) -> Value {
    let now = cogo_dev::token::unix_now();
    json!({"role": role, "sub": format!("{role}-sub"), "exp": now + exp_offset})
}

#[tokio::test]
async fn every_route_against_every_credential() {
    let stack = Stack::shared();
    let forged = {
        let mut t = stack.token(claims("service_role", 600));
        let last = t.pop().unwrap();
        t.push(if last == 'A' { 'B' } else { 'A' });
        t
    };
    for (method, path, allowed) in ROUTES {
        // A body that is syntactically fine; a 400 for its content still
        // proves the credential got through.
        let body = (*method == "POST").then(|| json!({}));
        let call = |auth: Option<String>| {
            let body = body.clone();
            async move { stack.client_with(auth.as_deref()).send(method, path, body.as_ref(), &[]).await }
        };
        let open_to_anon = allowed.contains(&"anon");
        let none = call(None).await;
        if open_to_anon {
            assert_eq!(none.status, 200, "{path}: {}", none.text);
        } else {
            assert_eq!(none.status, 401, "{path} without credential: {}", none.text);
            assert_eq!(error_code(&none.json()), "missing_credentials");
            assert!(none.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")), "{path}");
        }
        for (label, auth, code) in [
            ("malformed", "Bearer not-a-jwt".to_string(), "invalid_token"),
            ("forged", format!("Bearer {forged}"), "invalid_token"),
            ("expired", format!("Bearer {}", stack.token(claims("service_role", -3600))), "invalid_token"),
            ("bad api key", String::new(), "invalid_api_key"),
        ] {
            let reply = if auth.is_empty() {
                stack.client_with(None).send(method, path, body.as_ref(), &[("apikey", "sb_secret_wrong")]).await
            } else {
                call(Some(auth)).await
            };
            assert_eq!(reply.status, 401, "{path} {label}: {}", reply.text);
            assert_eq!(error_code(&reply.json()), code, "{path} {label}");
            assert!(reply.header("www-authenticate").unwrap().contains("invalid_token") || code == "invalid_api_key");
        }
        for role in ["authenticated", "worker", "service_role"] {
            let reply = call(Some(format!("Bearer {}", stack.token(claims(role, 600))))).await;
            if allowed.contains(&role) {
                assert!(![401, 403].contains(&reply.status), "{path} as {role}: {} {}", reply.status, reply.text);
            } else {
                assert_eq!(reply.status, 403, "{path} as {role}: {}", reply.text);
                assert_eq!(error_code(&reply.json()), "forbidden");
            }
        }
    }
}

/// The error code of either error shape: ours, or the Figma plugin's
/// (`{ok: false, error: "<code>"}`, figma-compat).
fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().or(body["error"].as_str()).unwrap_or_default()
}

#[tokio::test]
async fn the_service_role_key_itself_is_accepted_as_bearer_and_apikey() {
    let stack = Stack::shared();
    let key = stack.service_key.clone();
    let reply = stack.client_with(None).send("GET", "/functions/v1/leases-release", None, &[("apikey", &key)]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[tokio::test]
async fn a_worker_scoped_to_an_executor_cannot_claim_another() {
    let stack = Stack::shared();
    let (mine, theirs) = (unique("exec-a"), unique("exec-b"));
    for executor in [&mine, &theirs] {
        stack.client().post_ok("/api/collab/task.assign", &json!({"type": "t", "executorId": executor})).await;
    }
    let now = cogo_dev::token::unix_now();
    let token = stack.token(json!({"role": "worker", "sub": "w", "executor_id": mine, "exp": now + 600}));
    let worker = stack.client_with(Some(&format!("Bearer {token}")));
    let denied = worker.post("/api/collab/task.claim", &json!({"executorId": theirs, "workerId": "w"})).await;
    assert_eq!((denied.status, denied.json()["error"]["code"].as_str()), (403, Some("executor_forbidden")));
    let status: String =
        sql().await.query_one("SELECT status FROM cogo.jobs WHERE executor_id = $1", &[&theirs]).await.unwrap().get(0);
    assert_eq!(status, "queued", "the other executor's job was not touched");
    let claimed = worker.post_ok("/api/collab/task.claim", &json!({"executorId": mine, "workerId": "w"})).await;
    assert_eq!(claimed["job"]["executor_id"], mine.as_str());
}

#[tokio::test]
async fn users_own_what_they_assign_and_cannot_cancel_anothers() {
    let stack = Stack::shared();
    let now = cogo_dev::token::unix_now();
    let user =
        |sub: &str| format!("Bearer {}", stack.token(json!({"role": "authenticated", "sub": sub, "exp": now + 600})));
    let (alice, bob) = (unique("alice"), unique("bob"));
    let executor = unique("owned");
    let job = stack
        .client_with(Some(&user(&alice)))
        .post_ok("/api/collab/task.assign", &json!({"type": "t", "executorId": executor}))
        .await["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    let owner: Option<String> = sql()
        .await
        .query_one("SELECT owner_id FROM cogo.jobs WHERE id = $1::text::uuid", &[&job])
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner.as_deref(), Some(alice.as_str()));
    let by_bob = stack.client_with(Some(&user(&bob))).post("/api/collab/task.cancel", &json!({"jobId": job})).await;
    assert_eq!((by_bob.status, by_bob.json()["error"]["code"].as_str()), (404, Some("job_not_found")));
    let by_alice =
        stack.client_with(Some(&user(&alice))).post_ok("/api/collab/task.cancel", &json!({"jobId": job})).await;
    assert_eq!(by_alice["status"], "cancelled");
}

#[tokio::test]
async fn cors_for_configured_origins_including_the_plugins_null() {
    let stack = Stack::builder().var("EDGE_CORS_ALLOW_ORIGINS", "https://app.example,null").start();
    let anon = stack.client_with(None);
    let preflight = |origin: &'static str| {
        let anon = &anon;
        async move {
            anon.send(
                "OPTIONS",
                "/functions/v1/api/collab/task.claim",
                None,
                &[
                    ("Origin", origin),
                    ("Access-Control-Request-Method", "POST"),
                    ("Access-Control-Request-Headers", "authorization, content-type, idempotency-key, x-agent-id"),
                ],
            )
            .await
        }
    };
    let ok = preflight("null").await;
    assert_eq!(ok.status, 204, "{}", ok.text);
    assert_eq!(ok.header("access-control-allow-origin"), Some("null"));
    let allowed = ok.header("access-control-allow-headers").unwrap().to_ascii_lowercase();
    for h in ["authorization", "apikey", "content-type", "idempotency-key", "if-match", "if-none-match", "x-agent-id"] {
        assert!(allowed.contains(h), "{h} in {allowed}");
    }
    assert!(ok.header("access-control-allow-methods").unwrap().contains("POST"));
    let evil = preflight("https://evil.example").await;
    assert_eq!((evil.status, evil.json()["error"]["code"].as_str()), (403, Some("origin_not_allowed")));

    let from_app = anon.send("GET", "/api/collab/health", None, &[("Origin", "https://app.example")]).await;
    assert_eq!(from_app.header("access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(from_app.header("vary"), Some("Origin"));
    let denied =
        anon.send("POST", "/api/collab/task.claim", Some(&json!({})), &[("Origin", "https://app.example")]).await;
    assert_eq!(denied.status, 401);
    assert_eq!(denied.header("access-control-allow-origin"), Some("https://app.example"), "errors are readable too");
    let other = anon.send("GET", "/api/collab/health", None, &[("Origin", "https://evil.example")]).await;
    assert_eq!(other.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn rate_limit_refuses_a_burst_past_the_limit_and_recovers_after_retry_after() {
    let stack = Stack::builder().var("EDGE_RATE_LIMIT_PER_MIN", "30").start();
    let now = cogo_dev::token::unix_now();
    let user =
        |sub: &str| format!("Bearer {}", stack.token(json!({"role": "authenticated", "sub": sub, "exp": now + 600})));
    let alice = stack.client_with(Some(&user("alice")));
    for i in 0..30 {
        let reply = alice.get("/api/collab/health").await;
        assert_eq!(reply.status, 200, "request {i}: {}", reply.text);
        assert_eq!(reply.header("ratelimit-limit"), Some("30"));
        assert_eq!(reply.header("ratelimit-remaining"), Some((29 - i).to_string().as_str()));
    }
    let refused = alice.get("/api/collab/health").await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(refused.json()["error"]["code"], "rate_limited");
    let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert_eq!(retry_after, 2, "one request every 2 s at 30 per minute");
    assert_eq!(refused.header("ratelimit-remaining"), Some("0"));

    // Another caller has a bucket of its own.
    assert_eq!(stack.client_with(Some(&user("bob"))).get("/api/collab/health").await.status, 200);
    // The platform is not limited.
    assert_eq!(stack.client().get("/api/collab/health").await.status, 200);

    let started = std::time::Instant::now();
    let deadline = started + std::time::Duration::from_secs(10);
    loop {
        let reply = alice.get("/api/collab/health").await;
        if reply.status == 200 {
            break;
        }
        assert_eq!(reply.status, 429);
        assert!(std::time::Instant::now() < deadline, "still limited 10 s later");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Retry-After rounds up to whole seconds, so waiting that long is enough.
    assert!(started.elapsed() <= std::time::Duration::from_secs(retry_after + 1), "{:?}", started.elapsed());
}

fn hmac_hex(secret: &str, message: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn hmac_signed_requests_as_the_plugin_and_agents_send_them() {
    let secret = "hmac-secret-for-tests";
    let stack = Stack::builder().var("EDGE_HMAC_SECRET", secret).start();
    let anon = stack.client_with(None);
    let path = "/api/collab/workers/heartbeat";
    let body = json!({"agentId": unique("agent"), "executorId": "figma", "status": "idle"});
    let now_ms = cogo_dev::token::unix_now() * 1000;

    // x-ts (epoch ms) + x-signature over "{x-ts}:{path+query}".
    let ts = now_ms.to_string();
    let sig = hmac_hex(secret, format!("{ts}:{path}").as_bytes());
    let ok = anon.send("POST", path, Some(&body), &[("x-ts", &ts), ("x-signature", &sig), ("x-agent-id", "p1")]).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let replay =
        anon.send("POST", path, Some(&body), &[("x-ts", &ts), ("x-signature", &sig), ("x-agent-id", "p1")]).await;
    assert_eq!((replay.status, replay.json()["error"]["code"].as_str()), (401, Some("replayed_signature")));

    let wrong_path = hmac_hex(secret, format!("{ts}:/api/collab/task.claim").as_bytes());
    let r = anon.send("POST", path, Some(&body), &[("x-ts", &ts), ("x-signature", &wrong_path)]).await;
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (401, Some("invalid_signature")));

    let old = (now_ms - 120_000).to_string();
    let old_sig = hmac_hex(secret, format!("{old}:{path}").as_bytes());
    let r = anon.send("POST", path, Some(&body), &[("x-ts", &old), ("x-signature", &old_sig)]).await;
    assert_eq!(r.status, 401, "outside the 60 s window");
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("window"));

    // X-Timestamp + X-Signature over the body (the agent variant).
    let raw = serde_json::to_vec(&body).unwrap();
    let body_ts = (now_ms / 1000).to_string();
    let body_sig = hmac_hex(secret, &raw);
    let url = stack.url(path);
    let signed = |bytes: Vec<u8>| {
        let (ts, sig, url) = (body_ts.clone(), body_sig.clone(), url.clone());
        async move {
            reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .header("X-Timestamp", ts)
                .header("X-Signature", sig)
                .body(bytes)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(signed(raw.clone()).await, 200);
    let mut tampered = raw.clone();
    tampered.extend_from_slice(b" ");
    assert_eq!(signed(tampered).await, 401, "a changed body breaks the signature");
}

#[tokio::test]
async fn json_nested_too_deep_is_refused() {
    let stack = Stack::shared();
    let deep = format!(r#"{{"type":"t","executorId":"e","payload":{}{}}}"#, "[".repeat(40), "]".repeat(40));
    let r = stack.client().send_raw("POST", "/api/collab/task.assign", deep.into_bytes()).await;
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (400, Some("json_too_deep")));
}

/// Serves whatever JWKS document `doc` holds at `/jwks`, counting fetches.
async fn jwks_server(
    doc: std::sync::Arc<std::sync::Mutex<String>>,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (doc, fetches) = (doc.clone(), fetches.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let body = doc.lock().unwrap().clone();
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
            });
        }
    });
    port
}

fn jwk(kid: &str, alg: &str, key: jwt_compact::jwk::JsonWebKey<'_>) -> Value {
    let mut jwk = serde_json::to_value(key).unwrap();
    jwk["kid"] = kid.into();
    jwk["alg"] = alg.into();
    jwk
}

fn es256_jwk(kid: &str, key: &p256::ecdsa::SigningKey) -> Value {
    jwk(kid, "ES256", key.verifying_key().into())
}

fn rs256_jwk(kid: &str, key: &jwt_compact::alg::RsaPrivateKey) -> Value {
    jwk(kid, "RS256", (&key.to_public_key()).into())
}

fn jwks_doc(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

fn bearer<A: jwt_compact::Algorithm>(alg: A, kid: &str, key: &A::SigningKey, role: &str) -> String {
    use jwt_compact::{AlgorithmExt, Claims, Header};
    let now = cogo_dev::token::unix_now();
    let Value::Object(map) = json!({"role": role, "sub": "jwks-user", "exp": now + 600}) else { unreachable!() };
    let token = alg.token(&Header::empty().with_key_id(kid), &Claims::new(map), key).unwrap();
    format!("Bearer {token}")
}

fn es256_bearer(kid: &str, key: &p256::ecdsa::SigningKey, role: &str) -> String {
    bearer(jwt_compact::alg::Es256, kid, key, role)
}

#[tokio::test]
async fn es256_tokens_through_a_jwks_and_key_rotation_without_restart() {
    let (old_key, new_key) = (
        p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap(),
        p256::ecdsa::SigningKey::from_slice(&[9; 32]).unwrap(),
    );
    let doc = std::sync::Arc::new(std::sync::Mutex::new(jwks_doc(&[es256_jwk("old", &old_key)])));
    let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let port = jwks_server(doc.clone(), fetches.clone()).await;
    let stack = Stack::builder().var("JWKS_URL", &format!("http://127.0.0.1:{port}/jwks")).start();
    let leases = "/functions/v1/leases-release";

    let ok = stack.client_with(Some(&es256_bearer("old", &old_key, "service_role"))).get(leases).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let again = stack.client_with(Some(&es256_bearer("old", &old_key, "service_role"))).get(leases).await;
    assert_eq!(again.status, 200);
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1, "the key set is cached");

    let wrong_key = stack.client_with(Some(&es256_bearer("old", &new_key, "service_role"))).get(leases).await;
    assert_eq!((wrong_key.status, wrong_key.json()["error"]["code"].as_str()), (401, Some("invalid_token")));
    let as_user = stack.client_with(Some(&es256_bearer("old", &old_key, "authenticated"))).get(leases).await;
    assert_eq!(as_user.status, 403);

    // Rotation: the project publishes a new key; a token signed with it
    // works once the unknown kid triggers a refetch, without a restart.
    *doc.lock().unwrap() = jwks_doc(&[es256_jwk("old", &old_key), es256_jwk("new", &new_key)]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let reply = stack.client_with(Some(&es256_bearer("new", &new_key, "service_role"))).get(leases).await;
        if reply.status == 200 {
            break;
        }
        assert_eq!(reply.status, 401, "{}", reply.text);
        assert!(std::time::Instant::now() < deadline, "new key never picked up");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(fetches.load(std::sync::atomic::Ordering::SeqCst) >= 2);
}

/// Two fixed 2048-bit RSA test keys (`openssl genpkey -algorithm RSA`), shared with the shared crate's tests.
const RSA_A: &str = include_str!("../../shared/testdata/rsa-a.pem");
const RSA_B: &str = include_str!("../../shared/testdata/rsa-b.pem");

fn rsa_key(pem: &str) -> jwt_compact::alg::RsaPrivateKey {
    use rsa::pkcs8::DecodePrivateKey;
    jwt_compact::alg::RsaPrivateKey::from_pkcs8_pem(pem).unwrap()
}

#[tokio::test]
async fn rs256_tokens_through_a_jwks_beside_es256_keys() {
    let (in_set, not_in_set, ec) =
        (rsa_key(RSA_A), rsa_key(RSA_B), p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap());
    let doc = jwks_doc(&[es256_jwk("ec", &ec), rs256_jwk("rsa", &in_set)]);
    let port = jwks_server(std::sync::Arc::new(std::sync::Mutex::new(doc)), Default::default()).await;
    let stack = Stack::builder().var("JWKS_URL", &format!("http://127.0.0.1:{port}/jwks")).start();
    let leases = "/functions/v1/leases-release";
    let rs256 = jwt_compact::alg::Rsa::rs256();

    let ok = stack.client_with(Some(&bearer(rs256, "rsa", &in_set, "service_role"))).get(leases).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let es = stack.client_with(Some(&es256_bearer("ec", &ec, "service_role"))).get(leases).await;
    assert_eq!(es.status, 200, "ES256 beside RSA keys: {}", es.text);

    for (why, token) in [
        ("a key not in the set", bearer(rs256, "rsa", &not_in_set, "service_role")),
        ("an unknown kid", bearer(rs256, "other", &not_in_set, "service_role")),
        ("an RS256 token naming the EC key", bearer(rs256, "ec", &in_set, "service_role")),
    ] {
        let r = stack.client_with(Some(&token)).get(leases).await;
        assert_eq!((r.status, r.json()["error"]["code"].as_str()), (401, Some("invalid_token")), "{why}: {}", r.text);
        assert!(r.header("www-authenticate").is_some_and(|v| v.contains("invalid_token")), "{why}");
    }
}

#[tokio::test]
async fn row_level_security_lets_a_user_read_only_their_own_jobs() {
    let stack = Stack::shared();
    let now = cogo_dev::token::unix_now();
    let user = |sub: &str| stack.token(json!({"role": "authenticated", "sub": sub, "exp": now + 600}));
    let (alice, bob) = (unique("alice"), unique("bob"));
    let executor = unique("rls");
    let job = stack
        .client_with(Some(&format!("Bearer {}", user(&alice))))
        .post_ok("/api/collab/task.assign", &json!({"type": "t", "executorId": executor}))
        .await["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    // Straight to PostgREST with the user's JWT, as reads on a user's behalf go.
    let read = |token: String, table: &'static str, filter: String| {
        let url = format!("{}/{table}?{filter}", stack.postgrest_url());
        async move {
            let resp = reqwest::Client::new()
                .get(url)
                .header("apikey", &token)
                .header("authorization", format!("Bearer {token}"))
                .header("accept-profile", "cogo")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap().as_array().unwrap().len()
        }
    };
    assert_eq!(read(user(&alice), "jobs", format!("executor_id=eq.{executor}")).await, 1);
    assert_eq!(read(user(&bob), "jobs", format!("executor_id=eq.{executor}")).await, 0);
    assert_eq!(read(user(&alice), "job_events", format!("job_id=eq.{job}")).await, 1);
    assert_eq!(read(user(&bob), "job_events", format!("job_id=eq.{job}")).await, 0);
}
