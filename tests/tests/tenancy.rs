//! Tenant isolation, written as the attacks: a caller names another's key,
//! job, worker, channel or link, and is refused with nothing changed.

use std::sync::OnceLock;
use std::time::Duration;

use cogo_tests::{sql, sql_one, unique, Client, EventStream, Stack};
use serde_json::{json, Value};

const ASSIGN: &str = "/api/collab/task.assign";
const CLAIM: &str = "/api/collab/task.claim";
const RESULT: &str = "/api/collab/task.result";

fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| Stack::builder().var("IDEMPOTENCY_LEASE_SECONDS", "30").start())
}

fn bearer(claims: Value) -> String {
    let mut claims = claims;
    claims["exp"] = json!(cogo_dev::token::unix_now() + 600);
    format!("Bearer {}", stack().token(claims))
}

fn user(sub: &str) -> String {
    bearer(json!({"role": "authenticated", "sub": sub}))
}

fn worker(sub: &str, executor: Option<&str>) -> String {
    match executor {
        Some(executor) => bearer(json!({"role": "worker", "sub": sub, "executor_id": executor})),
        None => bearer(json!({"role": "worker", "sub": sub})),
    }
}

fn as_caller(authorization: &str) -> Client<'static> {
    stack().client_with(Some(authorization))
}

fn code(reply: &cogo_tests::Reply) -> (u16, String) {
    (reply.status, reply.json()["error"]["code"].as_str().unwrap_or_default().to_string())
}

/// Every column of a job that a worker's write could change.
async fn job_state(job_id: &str) -> Vec<Option<String>> {
    let row = sql()
        .await
        .query_one(
            "SELECT status, result::text, progress::text, current_step, lease_until::text, lease_token::text,
                    attempts::text, (SELECT count(*)::text FROM cogo.artifacts WHERE job_id = j.id),
                    (SELECT count(*)::text FROM cogo.job_events WHERE job_id = j.id)
             FROM cogo.jobs j WHERE id = $1::text::uuid",
            &[&job_id],
        )
        .await
        .unwrap();
    (0..9).map(|i| row.get(i)).collect()
}

async fn jobs_with_key(key: &str) -> Vec<(String, Option<String>)> {
    let rows = sql()
        .await
        .query("SELECT id::text, owner_id FROM cogo.jobs WHERE idempotency_key = $1 ORDER BY created_at", &[&key])
        .await
        .unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// task.assign with `key` in the body field `field`, or in the header.
async fn assign_with_key(client: &Client<'_>, executor: &str, field: &str, key: &str) -> cogo_tests::Reply {
    let mut body = json!({"type": "demo.echo", "executorId": executor});
    if field == "header" {
        return client.send("POST", ASSIGN, Some(&body), &[("Idempotency-Key", key)]).await;
    }
    body[field] = json!(key);
    client.post(ASSIGN, &body).await
}

#[tokio::test]
async fn another_users_idempotency_key_neither_returns_nor_blocks_their_job() {
    let (alice, bob) = (as_caller(&user(&unique("alice"))), as_caller(&user(&unique("bob"))));
    let executor = unique("idem-tenant");
    for field in ["idempotencyKey", "header"] {
        let key = unique("key");
        let first = assign_with_key(&alice, &executor, field, &key).await.json();
        let stolen = assign_with_key(&bob, &executor, field, &key).await;
        assert_eq!(stolen.status, 200, "{}", stolen.text);
        assert_eq!(stolen.header("idempotent-replayed"), None, "{field}: bob never sees alice's stored answer");
        let stolen = stolen.json();
        assert_eq!(stolen["queued"], true, "{field}: bob's request makes bob's own job");
        assert_ne!(stolen["jobId"], first["jobId"], "{field}");
        // Each keeps their own job under the same key, and a repeat finds it.
        assert_eq!(assign_with_key(&alice, &executor, field, &key).await.json()["jobId"], first["jobId"]);
        assert_eq!(assign_with_key(&bob, &executor, field, &key).await.json()["jobId"], stolen["jobId"]);
        assert_eq!(jobs_with_key(&key).await.len(), 2, "{field}");
    }
}

#[tokio::test]
async fn a_chat_key_taken_by_another_user_still_gives_each_their_own_message() {
    let (alice, bob) = (user(&unique("alice")), user(&unique("bob")));
    let key = unique("chat-key");
    let body = json!({"session_id": "s", "content": "hello", "idempotency_key": key});
    let post = |auth: &str| {
        let auth = auth.to_string();
        let body = body.clone();
        async move {
            as_caller(&auth).send("POST", "/functions/v1/chat", Some(&body), &[("accept", "application/json")]).await
        }
    };
    let bobs = post(&bob).await;
    assert_eq!(bobs.status, 202, "{}", bobs.text);
    let alices = post(&alice).await;
    assert_eq!(alices.status, 202, "{}", alices.text);
    assert_ne!(alices.json()["trace_id"], bobs.json()["trace_id"], "bob's key did not capture alice's message");
    assert_eq!(post(&alice).await.json()["trace_id"], alices.json()["trace_id"], "alice's repeat resumes hers");
    let owners: Vec<Option<String>> = jobs_with_key(&key).await.into_iter().map(|(_, owner)| owner).collect();
    assert_eq!(owners.len(), 2);
}

#[tokio::test]
async fn a_user_cannot_capture_a_dead_letters_retry_by_assigning_its_key_first() {
    let service = stack().client();
    let executor = unique("dlq-tenant");
    let dead = service.post_ok(ASSIGN, &json!({"type": "demo.fail", "executorId": executor, "maxAttempts": 1})).await
        ["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    let job = service.post_ok(CLAIM, &json!({"executorId": executor, "workerId": "w"})).await["job"].clone();
    service.post_ok(RESULT, &json!({"jobId": dead, "type": "demo.fail", "ok": false, "error": "boom"})).await;
    assert_eq!(job["id"], dead.as_str());
    // The attacker guesses the key the platform used to derive.
    let mallory = unique("mallory");
    let squat = as_caller(&user(&mallory))
        .post_ok(ASSIGN, &json!({"type": "demo.fail", "executorId": executor, "idempotencyKey": format!("dlq:{dead}")}))
        .await;
    assert_eq!(squat["queued"], true);
    let letter: i64 = sql_one("SELECT id FROM cogo.job_dead_letters WHERE job_id = $1::text::uuid", &[&dead]).await;
    let retried = service.post_ok("/functions/v1/dlq-retry", &json!({"dlqId": letter})).await;
    assert_ne!(retried["jobId"], squat["jobId"], "the retry is a job of the platform's, not mallory's");
    let owner: Option<String> = sql()
        .await
        .query_one("SELECT owner_id FROM cogo.jobs WHERE id = $1::text::uuid", &[&retried["jobId"].as_str().unwrap()])
        .await
        .unwrap()
        .get(0);
    assert_ne!(owner.as_deref(), Some(mallory.as_str()));
}

/// A running job of executor `theirs`, claimed by its own worker: (id, lease token).
async fn their_running_job(theirs: &str) -> (String, String) {
    let service = stack().client();
    service.post_ok(ASSIGN, &json!({"type": "demo.scope", "executorId": theirs})).await;
    let job = as_caller(&worker("their-worker", Some(theirs)))
        .post_ok(CLAIM, &json!({"executorId": theirs, "workerId": "their-worker"}))
        .await["job"]
        .clone();
    (job["id"].as_str().unwrap().to_string(), job["leaseToken"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn a_worker_scoped_to_one_executor_cannot_touch_anothers_jobs() {
    let (mine, theirs) = (unique("exec-mine"), unique("exec-theirs"));
    let (job, lease) = their_running_job(&theirs).await;
    // A queued job of theirs, for `next` and a long poll to try to take.
    let waiting = stack().client().post_ok(ASSIGN, &json!({"type": "demo.scope", "executorId": theirs})).await["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    let (before, waiting_before) = (job_state(&job).await, job_state(&waiting).await);
    let intruder = as_caller(&worker("intruder", Some(&mine)));
    // With the lease token (leaked) and without it (as the old clients send).
    for token in [Some(lease.as_str()), None] {
        let with_token = |mut body: Value| {
            if let Some(t) = token {
                body["leaseToken"] = json!(t);
            }
            body
        };
        let forged = with_token(json!({"jobId": job, "type": "demo.scope", "ok": true, "result": {"forged": true}}));
        assert_eq!(code(&intruder.post(RESULT, &forged).await), (404, "job_not_found".into()), "{token:?}");
        let batch = intruder.post_ok(RESULT, &json!({"results": [forged]})).await;
        assert_eq!(batch["results"][0]["error"]["code"], "job_not_found", "{batch}");
        // `next` claims nothing for a result that was refused.
        let mut with_next = forged.clone();
        with_next["next"] = json!({"limit": 5});
        assert_eq!(code(&intruder.post(RESULT, &with_next).await), (404, "job_not_found".into()));
        let batch_next = intruder.post_ok(RESULT, &json!({"results": [forged], "next": {}})).await;
        assert_eq!((batch_next["results"][0]["ok"].clone(), batch_next["job"].clone()), (json!(false), Value::Null));
        let progress = with_token(json!({"jobId": job, "progress": 99, "step": "forged"}));
        assert_eq!(code(&intruder.post("/api/collab/task.progress", &progress).await), (404, "job_not_found".into()));
        let heartbeat = with_token(json!({"jobId": job, "leaseSeconds": 600}));
        assert_eq!(code(&intruder.post("/api/collab/task.heartbeat", &heartbeat).await), (404, "job_not_found".into()));
    }
    let upload = json!({"jobId": job, "leaseToken": lease, "name": "forged.png", "mime": "image/png"});
    assert_eq!(code(&intruder.post("/functions/v1/artifact-upload-url", &upload).await), (404, "job_not_found".into()));
    // A long poll naming their executor is refused before it waits.
    let poll = json!({"executorId": theirs, "workerId": "intruder", "waitSeconds": 20});
    assert_eq!(code(&intruder.post(CLAIM, &poll).await), (403, "executor_forbidden".into()));
    assert_eq!(job_state(&job).await, before, "nothing about their job changed");
    assert_eq!(job_state(&waiting).await, waiting_before, "their queued job is still theirs to claim");

    // Their own worker still completes it.
    let owner = as_caller(&worker("their-worker", Some(&theirs)));
    let done =
        owner.post_ok(RESULT, &json!({"jobId": job, "type": "demo.scope", "ok": true, "leaseToken": lease})).await;
    assert_eq!(done["status"], "succeeded");
}

async fn heartbeat_row(worker_id: &str) -> Option<(String, String, String)> {
    sql()
        .await
        .query_opt(
            "SELECT executor_id, status, metadata::text FROM cogo.worker_heartbeats_v2 WHERE worker_id = $1",
            &[&worker_id],
        )
        .await
        .unwrap()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
}

#[tokio::test]
async fn presence_is_written_only_by_the_worker_that_owns_it_and_is_bounded() {
    let (mine, theirs) = (unique("exec-mine"), unique("exec-theirs"));
    let worker_id = unique("their-worker");
    let owner = as_caller(&worker("owner", Some(&theirs)));
    let beat = json!({"agentId": worker_id, "workerId": worker_id, "executorId": theirs, "status": "busy",
                      "metadata": {"host": "h1"}});
    owner.post_ok("/api/collab/workers/heartbeat", &beat).await;
    let before = heartbeat_row(&worker_id).await;
    assert!(before.is_some());

    // A worker scoped elsewhere cannot speak for their executor.
    let scoped = as_caller(&worker("intruder", Some(&mine)));
    assert_eq!(code(&scoped.post("/api/collab/workers/heartbeat", &beat).await), (403, "executor_forbidden".into()));
    // An unscoped worker cannot overwrite a row another credential owns.
    let unscoped = as_caller(&worker("intruder", None));
    let takeover = json!({"agentId": worker_id, "workerId": worker_id, "executorId": theirs, "status": "gone"});
    assert_eq!(
        code(&unscoped.post("/api/collab/workers/heartbeat", &takeover).await),
        (403, "worker_forbidden".into())
    );
    assert_eq!(heartbeat_row(&worker_id).await, before, "their presence is untouched");

    // Metadata is bounded in size and keys; nothing is written past it.
    let fresh = unique("bounded-worker");
    let big = json!({"agentId": fresh, "executorId": theirs, "status": "idle", "metadata": {"blob": "x".repeat(5000)}});
    assert_eq!(code(&owner.post("/api/collab/workers/heartbeat", &big).await), (413, "payload_too_large".into()));
    let keys: serde_json::Map<String, Value> = (0..40).map(|i| (format!("k{i}"), json!(i))).collect();
    let wide = json!({"agentId": fresh, "executorId": theirs, "status": "idle", "metadata": keys});
    assert_eq!(owner.post("/api/collab/workers/heartbeat", &wide).await.status, 400);
    assert_eq!(heartbeat_row(&fresh).await, None);
}

#[tokio::test]
async fn a_crashed_keyed_request_frees_its_key_once_its_lease_ends() {
    let client = stack().client();
    let executor = unique("idem-crash");
    let body = json!({"type": "demo.echo", "executorId": executor});
    let db = sql().await;
    // A finished request keeps its key for the TTL, not the lease.
    let finished = unique("finished");
    client.send("POST", ASSIGN, Some(&body), &[("Idempotency-Key", &finished)]).await;
    let row = db
        .query_one(
            "SELECT principal, request_hash, extract(epoch FROM expires_at - now())::float8
             FROM cogo.idempotency_keys WHERE key = $1",
            &[&finished],
        )
        .await
        .unwrap();
    let (principal, hash, held): (String, String, f64) = (row.get(0), row.get(1), row.get(2));
    assert!(held > 3600.0, "a finished request's key is kept for the TTL: {held}");

    // What a request whose isolate died mid-way leaves: its key in flight,
    // under a lease of IDEMPOTENCY_LEASE_SECONDS (30 in this stack).
    let key = unique("crash");
    let begun: Value = db
        .query_one("SELECT cogo.idempotency_begin($1, 'TaskAssign', $2, $3, 30)", &[&principal, &key, &hash])
        .await
        .unwrap()
        .get(0);
    assert_eq!(begun["state"], "started");
    let busy = client.send("POST", ASSIGN, Some(&body), &[("Idempotency-Key", &key)]).await;
    assert_eq!(code(&busy), (409, "idempotency_key_in_flight".into()));
    let retry_after: u64 = busy.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    assert_eq!(jobs_with_key(&key).await.len(), 0);

    // Its lease ends (moved into the past rather than waited for): the retry runs.
    db.execute("UPDATE cogo.idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = $1", &[&key])
        .await
        .unwrap();
    let retried = client.send("POST", ASSIGN, Some(&body), &[("Idempotency-Key", &key)]).await;
    assert_eq!(retried.status, 200, "{}", retried.text);
    assert_eq!(retried.header("idempotent-replayed"), None);
    assert_eq!(retried.json()["queued"], true, "the retry ran");
    assert_eq!(jobs_with_key(&key).await.len(), 1);
}

async fn open_stream(authorization: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new().get(stack().url(path)).header("authorization", authorization).send().await.unwrap()
}

#[tokio::test]
async fn channels_follow_the_same_rules_as_what_they_carry() {
    let alice = user(&unique("alice"));
    let job = as_caller(&alice).post_ok(ASSIGN, &json!({"type": "demo.chan", "executorId": unique("chan")})).await
        ["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    let channel = |name: &str| format!("/functions/v1/channel?name={name}");
    // A job's channel: like job-events, the owner and the platform only.
    let snoop = open_stream(&worker(&unique("snoop"), None), &channel(&format!("jobs:{job}"))).await;
    assert_eq!(snoop.status(), 403);
    let bob = open_stream(&user(&unique("bob")), &channel(&format!("jobs:{job}"))).await;
    assert_eq!(bob.status(), 404);
    let mut own = EventStream::new(open_stream(&alice, &channel(&format!("jobs:{job}"))).await);
    let first = tokio::time::timeout(Duration::from_secs(10), own.next()).await.unwrap().unwrap();
    assert_eq!(first.event, "meta");

    // An agent's channel: that agent and the platform only.
    let agent = unique("agent");
    assert_eq!(open_stream(&alice, &channel(&format!("agents:{agent}"))).await.status(), 403);
    assert_eq!(open_stream(&worker(&unique("other"), None), &channel(&format!("agents:{agent}"))).await.status(), 403);
    assert_eq!(open_stream(&worker(&agent, None), &channel(&format!("agents:{agent}"))).await.status(), 200);
    let service = format!("Bearer {}", stack().service_key);
    assert_eq!(open_stream(&service, &channel(&format!("agents:{agent}"))).await.status(), 200);
}

#[tokio::test]
async fn anonymous_callers_each_have_their_own_budget() {
    let stack = Stack::builder().var("EDGE_RATE_LIMIT_PER_MIN", "5").start();
    let anonymous = stack.client_with(None);
    let from = |ip: &'static str| {
        let anonymous = &anonymous;
        async move { anonymous.send("GET", "/api/collab/health", None, &[("cf-connecting-ip", ip)]).await }
    };
    for i in 0..5 {
        assert_eq!(from("198.51.100.1").await.status, 200, "request {i}");
    }
    let refused = from("198.51.100.1").await;
    assert_eq!(code(&refused), (429, "rate_limited".into()));
    let other = from("198.51.100.2").await;
    assert_eq!(other.status, 200, "another address has a budget of its own");
    assert_eq!(other.header("ratelimit-remaining"), Some("4"));
}

async fn put(url: &str, data: &[u8]) -> (u16, Value) {
    let resp = reqwest::Client::new().put(url).body(data.to_vec()).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn artifact_sha(job: &str) -> Vec<String> {
    let rows =
        sql().await.query("SELECT sha256 FROM cogo.artifacts WHERE job_id = $1::text::uuid", &[&job]).await.unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test]
async fn an_upload_link_dies_with_its_lease() {
    let service = stack().client();
    let executor = unique("upload-lease");
    service.post_ok(ASSIGN, &json!({"type": "demo.up", "executorId": executor, "maxAttempts": 3})).await;
    let job = service.post_ok(CLAIM, &json!({"executorId": executor, "workerId": "w1"})).await["job"].clone();
    let (id, lease) = (job["id"].as_str().unwrap(), job["leaseToken"].as_str().unwrap());
    let link = service
        .post_ok("/functions/v1/artifact-upload-url", &json!({"jobId": id, "leaseToken": lease, "name": "a.txt"}))
        .await;
    let url = link["url"].as_str().unwrap();
    assert_eq!(put(url, b"first").await.0, 201);
    let stored = artifact_sha(id).await;

    // The lease is lost (expired and reaped, then claimed by another worker).
    sql()
        .await
        .execute("UPDATE cogo.jobs SET lease_until = now() - interval '1 second' WHERE id = $1::text::uuid", &[&id])
        .await
        .unwrap();
    service.get("/functions/v1/leases-release").await;
    service.post_ok(CLAIM, &json!({"executorId": executor, "workerId": "w2"})).await;
    let (status, body) = put(url, b"replaced by a stale link").await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("lease_lost")), "{body}");
    assert_eq!(artifact_sha(id).await, stored, "the file was not replaced");

    // Finished: a link made under the current lease dies too.
    let current: String = sql_one("SELECT lease_token::text FROM cogo.jobs WHERE id = $1::text::uuid", &[&id]).await;
    let link = service
        .post_ok("/functions/v1/artifact-upload-url", &json!({"jobId": id, "leaseToken": current, "name": "a.txt"}))
        .await;
    service.post_ok(RESULT, &json!({"jobId": id, "type": "demo.up", "ok": true, "leaseToken": current})).await;
    let (status, body) = put(link["url"].as_str().unwrap(), b"after the end").await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("not_running")), "{body}");
    assert_eq!(artifact_sha(id).await, stored);
    // A link with its lease parameter swapped no longer verifies.
    let swapped = link["url"].as_str().unwrap().replace(&current, lease);
    assert_eq!(put(&swapped, b"x").await.0, 403);
}

fn raw_http(request: &str) -> (u16, String) {
    stack().raw(request.as_bytes())
}

#[tokio::test]
async fn links_ignore_the_callers_host_and_odd_requests_get_clear_errors() {
    let service = stack().client();
    let executor = unique("host");
    service.post_ok(ASSIGN, &json!({"type": "demo.host", "executorId": executor})).await;
    let job = service.post_ok(CLAIM, &json!({"executorId": executor, "workerId": "w"})).await["job"].clone();
    let body = json!({"jobId": job["id"], "leaseToken": job["leaseToken"], "name": "a.txt"});
    // Without PUBLIC_URL only a loopback origin is trusted: a forged Host gets no link of its own.
    let forged =
        service.send("POST", "/functions/v1/artifact-upload-url", Some(&body), &[("host", "evil.example")]).await;
    assert!(!forged.text.contains("evil.example"), "{}", forged.text);
    assert_eq!(code(&forged), (500, "config_error".into()));
    let public = Stack::builder().var("PUBLIC_URL", "https://edge.example.com/").start();
    let p = public.client();
    p.post_ok(ASSIGN, &json!({"type": "demo.host", "executorId": executor})).await;
    let job = p.post_ok(CLAIM, &json!({"executorId": executor, "workerId": "w"})).await["job"].clone();
    let body = json!({"jobId": job["id"], "leaseToken": job["leaseToken"], "name": "a.txt"});
    let link =
        p.send("POST", "/functions/v1/artifact-upload-url", Some(&body), &[("host", "evil.example")]).await.json();
    assert!(link["url"].as_str().unwrap().starts_with("https://edge.example.com/functions/v1/artifact/"), "{link}");

    // Two Host headers: the runtime refuses to build the request's URL before
    // the bundle runs (Cloudflare's edge answers 400 itself); the request
    // fails alone and the isolate serves on.
    let (status, text) = raw_http(
        "GET /api/collab/health HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert!(status >= 400 && !text.contains("evil.example"), "{text}");
    // A method nobody serves is not answered as a GET: 405 with the path's methods.
    for method in ["PROPFIND", "TRACE", "QUERY"] {
        let (status, text) =
            raw_http(&format!("{method} /api/collab/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
        assert_eq!(status, 405, "{text}");
        assert!(text.contains("method_not_allowed"), "{text}");
        assert!(text.to_ascii_lowercase().contains("allow: get, head, options"), "{text}");
    }
    // The isolate is fine afterwards.
    assert_eq!(stack().client().get("/api/collab/health").await.status, 200);
}
