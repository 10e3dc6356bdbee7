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
    ("GET", "/functions/v1/metrics-history", &["service_role"]),
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
    // The body form is off by default (its timestamp is not signed).
    let stack = Stack::builder().var("EDGE_HMAC_SECRET", secret).var("EDGE_HMAC_SCHEMES", "v1,path,body").start();
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

/// The `v1` signature of a request, computed as the README describes it.
fn v1_signature(secret: &str, method: &str, path: &str, ts: &str, body: &[u8], agent: &str) -> String {
    use sha2::Digest;
    let body_hash: String = sha2::Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect();
    let text = format!("v1\n{method}\n{path}\n{ts}\n{body_hash}\n{agent}");
    format!("v1={}", hmac_hex(secret, text.as_bytes()))
}

#[test]
fn the_v1_helper_reproduces_the_readme_example() {
    let path = "/functions/v1/figma-compat/uui/generate?x=1";
    let sig = v1_signature("example-hmac-secret", "POST", path, "1767225600000", br#"{"projectId":"p1"}"#, "agent-7");
    assert_eq!(sig, "v1=2824170326867a1684ad139f7eef045f872ae94de4c13d5c3bfd95566092f914");
}

const HMAC_SECRET: &str = "hmac-secret-for-attacks";
const HEARTBEAT: &str = "/api/collab/workers/heartbeat";

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Sends `body` exactly as given, with `headers`, and no other credential.
async fn raw(stack: &Stack, method: &str, path: &str, body: &[u8], headers: &[(&str, &str)]) -> cogo_tests::Reply {
    let mut req = reqwest::Client::new().request(method.parse().unwrap(), stack.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if !body.is_empty() {
        req = req.header("content-type", "application/json").body(body.to_vec());
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    cogo_tests::Reply { status, headers, text: resp.text().await.unwrap() }
}

fn heartbeat_body(agent: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"agentId": agent, "executorId": "attack", "status": "idle"})).unwrap()
}

/// When the worker `agent` last sent a heartbeat that got through, if ever.
async fn last_seen(agent: &str) -> Option<String> {
    let rows = sql()
        .await
        .query("SELECT last_seen_at::text FROM cogo.worker_heartbeats_v2 WHERE worker_id = $1", &[&agent])
        .await
        .unwrap();
    rows.first().map(|r| r.get(0))
}

fn assert_refused(r: &cogo_tests::Reply, code: &str, why: &str) {
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (401, Some(code)), "{why}: {}", r.text);
    assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")), "{why}");
}

#[tokio::test]
async fn a_used_signature_respelled_is_refused() {
    let stack = Stack::builder().var("EDGE_HMAC_SECRET", HMAC_SECRET).start();
    let agent = unique("respelled");
    let body = heartbeat_body(&agent);
    let mixed = |hex: &str| -> String {
        hex.chars().enumerate().map(|(i, c)| if i % 2 == 0 { c.to_ascii_uppercase() } else { c }).collect()
    };

    // v1: one spelling only.
    let ts = now_ms().to_string();
    let v1 = v1_signature(HMAC_SECRET, "POST", HEARTBEAT, &ts, &body, "");
    let ok = raw(&stack, "POST", HEARTBEAT, &body, &[("x-ts", &ts), ("x-signature", &v1)]).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let seen = last_seen(&agent).await;
    assert!(seen.is_some());
    let hex = &v1["v1=".len()..];
    for (why, spelling, code) in [
        ("the same", v1.clone(), "replayed_signature"),
        ("upper-case", format!("v1={}", hex.to_ascii_uppercase()), "invalid_signature"),
        ("mixed case", format!("v1={}", mixed(hex)), "invalid_signature"),
        ("+-prefixed", format!("v1=+{hex}"), "invalid_signature"),
        ("zero-padded", format!("v1=0{hex}"), "invalid_signature"),
    ] {
        let r = raw(&stack, "POST", HEARTBEAT, &body, &[("x-ts", &ts), ("x-signature", &spelling)]).await;
        assert_refused(&r, code, why);
    }

    // The plugin's path form: either case is accepted, but it is one signature.
    let ts = (now_ms() + 1).to_string();
    let path_sig = hmac_hex(HMAC_SECRET, format!("{ts}:{HEARTBEAT}").as_bytes());
    let ok =
        raw(&stack, "POST", HEARTBEAT, &body, &[("x-ts", &ts), ("x-signature", &path_sig.to_ascii_uppercase())]).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let seen = last_seen(&agent).await;
    for (why, spelling, code) in [
        ("lower-case", path_sig.clone(), "replayed_signature"),
        ("mixed case", mixed(&path_sig), "replayed_signature"),
        ("+-prefixed", format!("+{path_sig}"), "invalid_signature"),
        ("with a space inside", format!("{} {}", &path_sig[..32], &path_sig[32..]), "invalid_signature"),
        ("one digit short", path_sig[1..].to_string(), "invalid_signature"),
    ] {
        let r = raw(&stack, "POST", HEARTBEAT, &body, &[("x-ts", &ts), ("x-signature", &spelling)]).await;
        assert_refused(&r, code, why);
    }
    assert_eq!(last_seen(&agent).await, seen, "no refused request touched the heartbeat");
}

#[tokio::test]
async fn a_v1_signature_is_bound_to_its_timestamp_method_path_and_body() {
    let stack = Stack::builder().var("EDGE_HMAC_SECRET", HMAC_SECRET).start();
    let agent = unique("bound");
    let body = heartbeat_body(&agent);
    let ts = now_ms().to_string();
    let sig = v1_signature(HMAC_SECRET, "POST", HEARTBEAT, &ts, &body, "");
    let ok = raw(&stack, "POST", HEARTBEAT, &body, &[("x-ts", &ts), ("x-signature", &sig)]).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let seen = last_seen(&agent).await;

    // (b) The same signature with a new timestamp, inside and outside the window.
    for ts in [now_ms() + 5, now_ms() - 600_000, now_ms() + 600_000] {
        let r = raw(&stack, "POST", HEARTBEAT, &body, &[("x-ts", &ts.to_string()), ("x-signature", &sig)]).await;
        assert_refused(&r, "invalid_signature", &format!("new timestamp {ts}"));
    }
    // A fresh, valid signature over a timestamp outside the window.
    let late_agent = unique("late");
    let late_body = heartbeat_body(&late_agent);
    for old in [now_ms() - 61_500, now_ms() + 61_500] {
        let old = old.to_string();
        let late = v1_signature(HMAC_SECRET, "POST", HEARTBEAT, &old, &late_body, "");
        let r = raw(&stack, "POST", HEARTBEAT, &late_body, &[("x-ts", &old), ("x-signature", &late)]).await;
        assert_refused(&r, "invalid_signature", "outside the window");
        assert!(r.json()["error"]["message"].as_str().unwrap().contains("window"));
    }
    assert_eq!(last_seen(&late_agent).await, None);

    // (c) The same signature on another path, with another method, over another body.
    let other_agent = unique("other-body");
    let other_body = heartbeat_body(&other_agent);
    let headers = [("x-ts", ts.as_str()), ("x-signature", sig.as_str())];
    let claim = raw(&stack, "POST", "/api/collab/task.claim", &body, &headers).await;
    assert_refused(&claim, "invalid_signature", "another path");
    let query = raw(&stack, "POST", &format!("{HEARTBEAT}?x=1"), &body, &headers).await;
    assert_refused(&query, "invalid_signature", "another query");
    let other = raw(&stack, "POST", HEARTBEAT, &other_body, &headers).await;
    assert_refused(&other, "invalid_signature", "another body");
    // A signature made for a GET of the same path and body does not make a POST.
    let ts2 = (now_ms() + 2).to_string();
    let as_get = v1_signature(HMAC_SECRET, "GET", HEARTBEAT, &ts2, &other_body, "");
    let r = raw(&stack, "POST", HEARTBEAT, &other_body, &[("x-ts", &ts2), ("x-signature", &as_get)]).await;
    assert_refused(&r, "invalid_signature", "another method");
    assert_eq!(last_seen(&other_agent).await, None, "the other body was never applied");
    assert_eq!(last_seen(&agent).await, seen, "the signed heartbeat was applied once");
}

#[tokio::test]
async fn only_a_v1_signature_vouches_for_the_agent_id() {
    let stack = Stack::builder().var("EDGE_HMAC_SECRET", HMAC_SECRET).var("EDGE_RATE_LIMIT_PER_MIN", "30").start();
    let health = "/api/collab/health";

    // (d) v1 signs x-agent-id: another, or none, breaks the signature.
    let ts = now_ms().to_string();
    let sig = v1_signature(HMAC_SECRET, "GET", health, &ts, b"", "agent-a");
    for (why, agent) in [("another agent", Some("agent-b")), ("no agent", None), ("agent-A", Some("agent-A"))] {
        let mut headers = vec![("x-ts", ts.as_str()), ("x-signature", sig.as_str())];
        headers.extend(agent.map(|a| ("x-agent-id", a)));
        assert_refused(&raw(&stack, "GET", health, b"", &headers).await, "invalid_signature", why);
    }
    // So each signed agent is a caller of its own, with a bucket of its own.
    let remaining = |r: &cogo_tests::Reply| {
        assert_eq!(r.status, 200, "{}", r.text);
        r.header("ratelimit-remaining").unwrap().parse::<u32>().unwrap()
    };
    for agent in ["agent-a", "agent-b"] {
        let ts = (now_ms() + 1).to_string();
        let sig = v1_signature(HMAC_SECRET, "GET", health, &ts, b"", agent);
        let r = raw(&stack, "GET", health, b"", &[("x-ts", &ts), ("x-signature", &sig), ("x-agent-id", agent)]).await;
        assert_eq!(remaining(&r), 29, "{agent} starts its own bucket");
    }

    // The path form does not sign x-agent-id: every such signer is one caller.
    let mut seen = Vec::new();
    for (i, agent) in ["legacy-a", "legacy-b", "legacy-c"].iter().enumerate() {
        let ts = (now_ms() + 10 + i as i64).to_string();
        let sig = hmac_hex(HMAC_SECRET, format!("{ts}:{health}").as_bytes());
        let r = raw(&stack, "GET", health, b"", &[("x-ts", &ts), ("x-signature", &sig), ("x-agent-id", agent)]).await;
        seen.push(remaining(&r));
    }
    assert_eq!(seen, [29, 28, 27], "one bucket, whatever x-agent-id says");
}

/// A heartbeat for `agent` in the agents' body form (X-Timestamp + X-Signature over the body).
async fn body_signed_heartbeat(stack: &Stack, agent: &str) -> cogo_tests::Reply {
    let body = heartbeat_body(agent);
    let (ts, sig) = ((now_ms() / 1000).to_string(), hmac_hex(HMAC_SECRET, &body));
    raw(stack, "POST", HEARTBEAT, &body, &[("X-Timestamp", &ts), ("X-Signature", &sig), ("x-agent-id", agent)]).await
}

#[tokio::test]
async fn the_body_form_is_refused_unless_enabled() {
    let by_default = Stack::builder().var("EDGE_HMAC_SECRET", HMAC_SECRET).start();
    let agent = unique("body-form");
    let r = body_signed_heartbeat(&by_default, &agent).await;
    assert_refused(&r, "invalid_signature", "body form by default");
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("EDGE_HMAC_SCHEMES"));
    assert_eq!(last_seen(&agent).await, None);

    let enabled =
        Stack::builder().var("EDGE_HMAC_SECRET", HMAC_SECRET).var("EDGE_HMAC_SCHEMES", "v1,path,body").start();
    let r = body_signed_heartbeat(&enabled, &agent).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(last_seen(&agent).await.is_some());
}

#[tokio::test]
async fn a_token_issued_in_the_future_is_401_at_the_edge_never_502() {
    let ec = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
    let rsa = rsa_key(RSA_A);
    let doc = jwks_doc(&[es256_jwk("ec", &ec), rs256_jwk("rsa", &rsa)]);
    let port = jwks_server(std::sync::Arc::new(std::sync::Mutex::new(doc)), Default::default()).await;
    let stack = Stack::builder().var("JWKS_URL", &format!("http://127.0.0.1:{port}/jwks")).start();
    let now = cogo_dev::token::unix_now();
    let claims = |iat: i64| {
        let Value::Object(map) =
            json!({"role": "authenticated", "sub": unique("future"), "exp": now + 7200, "iat": iat})
        else {
            unreachable!()
        };
        jwt_compact::Claims::new(map)
    };
    use jwt_compact::{AlgorithmExt, Header};
    for iat in [now + 3600, now + 60] {
        for (alg, token) in [
            ("HS256", stack.token(json!({"role": "authenticated", "sub": "future", "exp": now + 7200, "iat": iat}))),
            ("ES256", jwt_compact::alg::Es256.token(&Header::empty().with_key_id("ec"), &claims(iat), &ec).unwrap()),
            (
                "RS256",
                jwt_compact::alg::Rsa::rs256().token(&Header::empty().with_key_id("rsa"), &claims(iat), &rsa).unwrap(),
            ),
        ] {
            // A read goes to PostgREST with the user's JWT: the edge answers first.
            let r = stack.client_with(Some(&format!("Bearer {token}"))).get("/api/collab/jobs/recent").await;
            assert_eq!(
                (r.status, r.json()["error"]["code"].as_str()),
                (401, Some("invalid_token")),
                "{alg}: {}",
                r.text
            );
            assert!(r.header("www-authenticate").is_some_and(|h| h.contains("invalid_token")), "{alg}");
            let assigned = stack
                .client_with(Some(&format!("Bearer {token}")))
                .post("/api/collab/task.assign", &json!({"type": "t", "executorId": "future-iat"}))
                .await;
            assert_eq!(assigned.status, 401, "{alg}: {}", assigned.text);
        }
    }
    let count: i64 = sql()
        .await
        .query_one("SELECT count(*) FROM cogo.jobs WHERE executor_id = 'future-iat'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0, "no job was assigned");
    let ok = stack
        .client_with(Some(&format!(
            "Bearer {}",
            stack.token(json!({"role": "authenticated", "sub": "u", "iat": now + 20}))
        )))
        .get("/api/collab/jobs/recent")
        .await;
    assert_eq!(ok.status, 200, "30 s of skew: {}", ok.text);
}

#[tokio::test]
async fn a_failing_jwks_is_fetched_once_per_30_s_however_many_tokens_name_a_kid() {
    let jwks = cogo_tests::Recorder::start(|_| (500, vec![], b"down".to_vec())).await;
    let stack = Stack::builder().var("JWKS_URL", &format!("http://127.0.0.1:{}/jwks", jwks.port)).start();
    let ec = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
    let leases = "/functions/v1/leases-release";
    let unavailable = |r: &cogo_tests::Reply| {
        assert_eq!((r.status, r.json()["error"]["code"].as_str()), (503, Some("jwks_unavailable")), "{}", r.text);
        let retry_after: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=30).contains(&retry_after), "{retry_after}");
    };
    let started = std::time::Instant::now();
    // A cold isolate under concurrent requests: they share one fetch.
    let bearer = es256_bearer("ec", &ec, "service_role");
    let clients: Vec<_> = (0..8).map(|_| stack.client_with(Some(&bearer))).collect();
    futures::future::join_all(clients.iter().map(|c| c.get(leases))).await.iter().for_each(unavailable);
    for i in 0..12 {
        // Known-looking and made-up kids alike: an unknown kid does not force a refetch.
        let kid = if i % 2 == 0 { "ec".to_string() } else { format!("forged-{i}") };
        unavailable(&stack.client_with(Some(&es256_bearer(&kid, &ec, "service_role"))).get(leases).await);
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "the test ran within one period");
    assert_eq!(jwks.requests().len(), 1, "one fetch for 20 requests");
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

#[tokio::test]
async fn every_answer_has_a_request_id_and_an_error_logs_one_json_line_with_it() {
    let stack = Stack::shared();
    let ok = stack.client().get("/api/collab/health").await;
    let ok_id = ok.header("x-request-id").expect("x-request-id on a success").to_string();
    assert_eq!(ok_id.len(), 36, "a UUID: {ok_id}");

    let sub = unique("user");
    let token = stack.token(
        json!({"role": "authenticated", "sub": sub, "aud": "authenticated", "exp": cogo_dev::token::unix_now() + 600}),
    );
    let user = stack.client_with(Some(&format!("Bearer {token}")));
    let denied = user.get("/functions/v1/dlq-list").await;
    assert_eq!(denied.status, 403, "{}", denied.text);
    let id = denied.header("x-request-id").expect("x-request-id on an error").to_string();
    assert_ne!(id, ok_id);
    assert_eq!(denied.json()["error"]["requestId"], id.as_str());

    let figma = user.post("/figma-compat/uui/generate", &json!({})).await;
    assert_eq!(figma.status, 400, "{}", figma.text);
    assert_eq!(figma.json()["request_id"].as_str(), figma.header("x-request-id"), "the plugin's shape too");

    // Logged as one JSON line: who (not with what credential), where, what.
    let start = std::time::Instant::now();
    let line = loop {
        let log = stack.log_text();
        if let Some(line) = log.lines().find(|l| l.contains(&id)) {
            break line.to_string();
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "no log line with {id}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let json_start = line.find('{').expect("a JSON object");
    let logged: Value = serde_json::from_str(&line[json_start..]).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(
        (&logged["route"], &logged["caller"], &logged["status"], &logged["code"], &logged["method"]),
        (&json!("DlqList"), &json!(format!("authenticated:{sub}")), &json!(403), &json!("forbidden"), &json!("GET")),
        "{line}"
    );
    assert!(!line.contains(&token), "the log line carries no credential");
}
