//! The read API, the dead-letter queue, metrics and the OpenAPI document
//! through the real stack. Each test works on its own executor ids.

use std::collections::HashSet;

use cogo_tests::{sql, unique, Client, Stack};
use serde_json::{json, Value};

const ASSIGN: &str = "/api/collab/task.assign";
const CLAIM: &str = "/api/collab/task.claim";
const RESULT: &str = "/api/collab/task.result";

/// A client calling as the user `sub`.
fn user(sub: &str) -> Client<'static> {
    let stack = Stack::shared();
    stack.client_with(Some(&format!("Bearer {}", stack.token(json!({"role": "authenticated", "sub": sub})))))
}

async fn assign(client: &Client<'_>, executor: &str, job_type: &str) -> String {
    let body = json!({"type": job_type, "executorId": executor, "payload": {"n": 1}});
    client.post_ok(ASSIGN, &body).await["jobId"].as_str().unwrap().to_string()
}

/// Claims one job of `executor` and reports `ok`; answers its id.
async fn run_one(client: &Client<'_>, executor: &str, ok: bool) -> String {
    let job = client.post_ok(CLAIM, &json!({"executorId": executor, "workerId": "w"})).await["job"].clone();
    let id = job["id"].as_str().expect("a job was ready").to_string();
    let mut body = json!({"jobId": id, "type": job["type"], "ok": ok, "leaseToken": job["leaseToken"]});
    if !ok {
        body["error"] = json!({"message": "boom"});
    }
    client.post_ok(RESULT, &body).await;
    id
}

#[tokio::test]
async fn job_summary_events_and_artifacts() {
    let stack = Stack::shared();
    let client = stack.client();
    let executor = unique("read");
    let id = assign(&client, &executor, "demo.read").await;
    // The worker reports a file it stored elsewhere, as the older workers do.
    let job = client.post_ok(CLAIM, &json!({"executorId": executor, "workerId": "w"})).await["job"].clone();
    let artifact = json!({"name": "report.pdf", "url": "https://files.example/report.pdf", "size": 10});
    client.post_ok(RESULT, &json!({"jobId": id, "type": job["type"], "ok": true, "artifact": artifact})).await;
    sql()
        .await
        .execute(
            "INSERT INTO cogo.artifacts (job_id, path, name, size, mime) VALUES ($1::text::uuid, $1 || '/a.png', 'a.png', 3, 'image/png')",
            &[&id],
        )
        .await
        .unwrap();

    let job = client.get(&format!("/api/collab/job/{id}")).await;
    assert_eq!(job.status, 200, "{}", job.text);
    let job = job.json();
    assert_eq!(
        (job["id"].as_str(), job["status"].as_str(), job["attempts"].as_i64()),
        (Some(&*id), Some("succeeded"), Some(1))
    );
    assert!(job.get("lease_token").is_none() && job.get("errors").is_none(), "bookkeeping stays inside: {job}");

    let summary = client.get(&format!("/collab/job/{id}/summary")).await.json();
    assert_eq!(summary["job"]["id"], id.as_str());
    assert_eq!(summary["artifacts"][0]["name"], "a.png");
    assert_eq!(summary["artifacts"][1]["url"], "https://files.example/report.pdf", "linked from the result");
    let kinds: Vec<&str> =
        summary["events"].as_array().unwrap().iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["created", "claimed", "succeeded"]);
    assert_eq!(summary["moreEvents"], false);

    // Events page in seq order with an `after` cursor.
    let first = client.get(&format!("/api/collab/events/by-job/{id}?limit=2")).await.json();
    assert_eq!(first["count"], 2);
    let seqs: Vec<i64> = first["items"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs[0] < seqs[1]);
    assert_eq!(first["nextCursor"], seqs[1].to_string());
    let rest = client.get(&format!("/api/collab/events/by-job/{id}?after={}", seqs[1])).await.json();
    assert_eq!(rest["count"], 1);
    assert_eq!(rest["items"][0]["event_type"], "succeeded");
    assert_eq!(rest["nextCursor"], Value::Null);

    for path in [format!("/api/collab/artifacts/by-job/{id}"), format!("/functions/v1/artifacts-list?jobId={id}")] {
        let list = client.get(&path).await.json();
        assert_eq!((list["count"].as_i64(), list["items"][0]["size"].as_i64()), (Some(2), Some(3)), "{path}");
        assert_eq!(list["items"][1]["size"], 10, "{path}");
    }
    let status = client.get(&format!("/functions/v1/job-status?id={id}")).await.json();
    assert_eq!(status["job"]["status"], "succeeded");
    assert_eq!(status["job"]["result"]["artifacts"][0]["name"], "report.pdf");

    let unknown = "6b1f1f3e-8d3c-4a55-9a43-0d5c1f9a6e01";
    for path in [
        format!("/api/collab/job/{unknown}"),
        format!("/api/collab/job/{unknown}/summary"),
        format!("/api/collab/events/by-job/{unknown}"),
        format!("/api/collab/artifacts/by-job/{unknown}"),
        format!("/functions/v1/artifacts-list?jobId={unknown}"),
        format!("/functions/v1/job-status?id={unknown}"),
    ] {
        let reply = client.get(&path).await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.text);
        assert_eq!(reply.json()["error"]["code"], "job_not_found");
    }
    for (path, parameter) in [
        ("/api/collab/job/not-a-uuid".to_string(), "id"),
        (format!("/api/collab/events/by-job/{id}?after=-1"), "after"),
        (format!("/api/collab/events/by-job/{id}?limit=1001"), "limit"),
        ("/functions/v1/artifacts-list".to_string(), "jobId"),
        ("/functions/v1/job-status?id=42".to_string(), "id"),
    ] {
        let reply = client.get(&path).await;
        assert_eq!(reply.status, 400, "{path}: {}", reply.text);
        assert_eq!(reply.json()["error"]["details"]["parameter"], parameter, "{path}");
    }
}

#[tokio::test]
async fn users_read_only_their_own_jobs_through_every_read() {
    let stack = Stack::shared();
    let (alice_id, bob_id) = (unique("alice"), unique("bob"));
    let (alice, bob) = (user(&alice_id), user(&bob_id));
    let executor = unique("own");
    let mine = assign(&alice, &executor, "demo.own").await;
    let theirs = assign(&bob, &executor, "demo.own").await;

    assert_eq!(alice.get(&format!("/api/collab/job/{mine}")).await.json()["owner_id"], alice_id.as_str());
    for path in [
        format!("/api/collab/job/{theirs}"),
        format!("/api/collab/job/{theirs}/summary"),
        format!("/api/collab/events/by-job/{theirs}"),
        format!("/api/collab/artifacts/by-job/{theirs}"),
        format!("/functions/v1/job-status?id={theirs}"),
    ] {
        let reply = alice.get(&path).await;
        assert_eq!(reply.status, 404, "someone else's job is not found, not forbidden: {path}: {}", reply.text);
    }
    for path in ["/api/collab/jobs/recent", "/functions/v1/jobs-recent"] {
        let listing = alice.get(&format!("{path}?executorId={executor}")).await.json();
        let ids: Vec<&str> = listing["items"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [mine.as_str()], "{path}");
    }
    // The platform sees both.
    let all = stack.client().get(&format!("/functions/v1/jobs-recent?executorId={executor}")).await.json();
    assert_eq!(all["count"], 2);
}

#[tokio::test]
async fn paging_a_thousand_jobs_with_one_created_at_while_jobs_arrive() {
    let stack = Stack::shared();
    let client = stack.client();
    let executor = unique("page");
    let db = sql().await;
    let existing: Vec<String> = db
        .query(
            "INSERT INTO cogo.jobs (type, executor_id, created_at)
             SELECT 'demo.page', $1, timestamptz '2026-01-01 12:00:00.123456+00' FROM generate_series(1, 1000)
             RETURNING id::text",
            &[&executor],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();

    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("?executorId={executor}&limit=37&cursor={c}"),
            None => format!("?executorId={executor}&limit=37"),
        };
        let page = client.get(&format!("/api/collab/jobs/recent{query}")).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let page = page.json();
        seen.extend(page["items"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_string()));
        pages += 1;
        // Writers keep going while the walk goes on: new jobs through the API,
        // and jobs with the very same created_at straight into the table.
        assign(&client, &executor, "demo.page").await;
        db.execute(
            "INSERT INTO cogo.jobs (type, executor_id, created_at)
             SELECT 'demo.page', $1, timestamptz '2026-01-01 12:00:00.123456+00' FROM generate_series(1, 3)",
            &[&executor],
        )
        .await
        .unwrap();
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        assert!(pages < 200, "paging does not end");
    }
    let seen_set: HashSet<&String> = seen.iter().collect();
    assert_eq!(seen_set.len(), seen.len(), "no row is repeated");
    for id in &existing {
        assert!(seen_set.contains(id), "job {id} that existed before the walk was skipped");
    }
    assert!(pages >= 1000 / 37, "{pages} pages");

    // The older clients' ISO cursor: strictly older than the timestamp.
    let older = client
        .get(&format!("/functions/v1/jobs-recent?executorId={executor}&cursor=2026-01-01T12:00:00.123457Z&limit=100"))
        .await
        .json();
    assert_eq!(older["count"], 100);
    let none = client
        .get(&format!("/functions/v1/jobs-recent?executorId={executor}&cursor=2026-01-01T12:00:00.123456Z"))
        .await
        .json();
    assert_eq!(none["count"], 0);
    assert_eq!(none["nextCursor"], Value::Null);

    let null = client.get("/functions/v1/jobs-recent?cursor=null").await;
    assert_eq!(null.status, 400);
    assert!(null.json()["error"]["message"].as_str().unwrap().contains("stop paging"), "{}", null.text);
    for bad in ["cursor=bm90LWEtY3Vyc29y", "limit=0", "limit=101", "limit=ten", "status=sleeping"] {
        let reply = client.get(&format!("/functions/v1/jobs-recent?{bad}")).await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text);
    }
}

/// (status, count) of every job, read under a lock that holds writers off,
/// together with what metrics-overview answers meanwhile.
async fn metrics_under_lock(client: &Client<'_>) -> (Value, Value) {
    let mut db = sql().await;
    let tx = db.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE cogo.jobs IN SHARE MODE").await.unwrap();
    let rows = tx.query("SELECT status, count(*) FROM cogo.jobs GROUP BY status", &[]).await.unwrap();
    let mut expected = json!({});
    for r in rows {
        expected[r.get::<_, String>(0)] = json!(r.get::<_, i64>(1));
    }
    let lost: i64 =
        tx.query_one("SELECT coalesce(sum(lost_leases), 0)::bigint FROM cogo.jobs", &[]).await.unwrap().get(0);
    expected["lostLeases"] = json!(lost);
    let reply = client.get("/functions/v1/metrics-overview").await;
    tx.rollback().await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text);
    (expected, reply.json())
}

fn assert_counts_match(expected: &Value, overview: &Value) {
    for status in ["queued", "running", "succeeded", "failed", "dead", "cancelled"] {
        assert_eq!(overview["counts"][status], expected.get(status).cloned().unwrap_or(json!(0)), "{status}");
    }
    assert_eq!(overview["lostLeases"], expected["lostLeases"]);
}

#[tokio::test]
async fn metrics_overview_matches_counts_computed_here() {
    let stack = Stack::shared();
    let client = stack.client();
    let executor = unique("metrics");
    let kind = unique("demo.metrics");
    for _ in 0..7 {
        assign(&client, &executor, &kind).await;
    }
    // Of 9 jobs: 2 succeed, 1 dies (one attempt allowed), 1 is cancelled,
    // 1 loses its lease and is requeued, 1 runs, 4 wait.
    run_one(&client, &executor, true).await;
    run_one(&client, &executor, true).await;
    let dying = client
        .post_ok(ASSIGN, &json!({"type": kind, "executorId": executor, "maxAttempts": 1, "priority": 10}))
        .await["jobId"]
        .clone();
    assert_eq!(run_one(&client, &executor, false).await, dying.as_str().unwrap());
    let cancelled = assign(&client, &executor, &kind).await;
    client.post_ok("/api/collab/task.cancel", &json!({"jobId": cancelled})).await;
    let lost = client.post_ok(CLAIM, &json!({"executorId": executor, "workerId": "w"})).await["job"]["id"].clone();
    sql()
        .await
        .execute(
            "UPDATE cogo.jobs SET lease_until = now() - interval '1 second' WHERE id = $1::text::uuid",
            &[&lost.as_str()],
        )
        .await
        .unwrap();
    client.get("/functions/v1/leases-release").await;
    let running = client.post_ok(CLAIM, &json!({"executorId": executor, "workerId": "w"})).await["job"]["id"].clone();
    assert!(running.is_string());

    let (expected, overview) = metrics_under_lock(&client).await;
    assert_counts_match(&expected, &overview);
    let mine = &overview["byExecutor"][&executor];
    assert_eq!(mine, &json!({"succeeded": 2, "dead": 1, "cancelled": 1, "running": 1, "queued": 4}), "{overview}");
    assert_eq!(overview["byType"][&kind], *mine);
    assert_eq!(overview["successRate"]["byExecutor"][&executor], json!(0.6667));
    let rates = overview["successRate"]["byType"].as_object().unwrap();
    assert!(rates.values().all(Value::is_number), "a type with no success has rate 0, not null: {rates:?}");
    assert!(overview["finished"]["1m"].as_i64().unwrap() >= 4);
    assert!(overview["finished"]["1h"].as_i64() >= overview["finished"]["5m"].as_i64());
    assert!(overview["deadLetters"].as_i64().unwrap() >= 1);
    assert!(overview["oldestQueuedAgeSeconds"].as_f64().unwrap() >= 0.0);
    assert!(overview["queueWaitMs"]["p50"].as_f64().unwrap() <= overview["queueWaitMs"]["p95"].as_f64().unwrap());
    assert!(overview["latest"].as_array().is_some_and(|l| !l.is_empty() && l.len() <= 10));
    assert_eq!(overview["ok"], true);

    // Folding ended sessions' counters changes no figure.
    sql().await.execute("SELECT cogo.compact_job_counts()", &[]).await.unwrap();
    let (expected, overview) = metrics_under_lock(&client).await;
    assert_counts_match(&expected, &overview);

    let prom = client.get("/functions/v1/metrics").await;
    assert_eq!(prom.status, 200);
    assert!(prom.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    assert!(
        prom.text.contains(&format!("cogo_jobs_by_executor{{executor=\"{executor}\",status=\"queued\"}} 4\n")),
        "{}",
        prom.text
    );
    assert!(prom.text.contains("# TYPE cogo_dead_letters gauge\n"));
}

#[tokio::test]
async fn workers_active_within_a_window() {
    let client = Stack::shared().client();
    let executor = unique("workers");
    for agent in ["fresh", "stale"] {
        let body = json!({"agentId": format!("{executor}-{agent}"), "executorId": executor, "status": "idle"});
        client.post_ok("/api/collab/workers/heartbeat", &body).await;
    }
    sql()
        .await
        .execute(
            "UPDATE cogo.worker_heartbeats_v2 SET last_seen_at = now() - interval '30 seconds' WHERE worker_id = $1",
            &[&format!("{executor}-stale")],
        )
        .await
        .unwrap();
    let mine = |v: Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["executor_id"] == executor.as_str())
            .map(|w| w["worker_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(mine(client.get("/api/collab/workers/active").await.json()), [format!("{executor}-fresh")]);
    let wide = mine(client.get("/functions/v1/workers-active?window=60").await.json());
    assert_eq!(wide.len(), 2);
    for bad in ["window=0", "window=3601", "window=soon"] {
        assert_eq!(client.get(&format!("/functions/v1/workers-active?{bad}")).await.status, 400, "{bad}");
    }
}

async fn letters(executor: &str) -> Vec<(i64, Option<String>)> {
    sql()
        .await
        .query(
            "SELECT id, retried_job_id::text FROM cogo.job_dead_letters WHERE executor_id = $1 ORDER BY id",
            &[&executor],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn dead_letters_listed_and_retried_once() {
    let client = Stack::shared().client();
    let executor = unique("dlq");
    for _ in 0..4 {
        client
            .post_ok(
                ASSIGN,
                &json!({"type": "demo.dlq", "executorId": executor, "maxAttempts": 1, "payload": {"k": 1}}),
            )
            .await;
        run_one(&client, &executor, false).await;
    }
    let list = client.get(&format!("/functions/v1/dlq-list?executorId={executor}&limit=3")).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let list = list.json();
    assert_eq!(list["count"], 3);
    let first = &list["items"][0];
    for field in ["id", "job_id", "reason", "error", "payload", "created_at", "retries", "retried_at"] {
        assert!(first.get(field).is_some(), "{field} in {first}");
    }
    assert!(first["id"].is_i64());
    assert_eq!(first["reason"], "max_attempts_exceeded");
    let ids: Vec<i64> = list["items"].as_array().unwrap().iter().map(|l| l["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let cursor = list["nextCursor"].as_str().unwrap();
    let rest =
        client.get(&format!("/functions/v1/dlq-list?executorId={executor}&limit=3&cursor={cursor}")).await.json();
    assert_eq!(rest["count"], 1);
    assert_eq!(rest["nextCursor"], Value::Null);
    let future =
        client.get(&format!("/functions/v1/dlq-list?executorId={executor}&from=2999-01-01T00:00:00Z")).await.json();
    assert_eq!(future["count"], 0);
    assert_eq!(client.get("/functions/v1/dlq-list?from=yesterday").await.status, 400);

    // One letter, twice: one new job.
    let oldest = *letters(&executor).await.first().map(|(id, _)| id).unwrap();
    let once = client.post_ok("/functions/v1/dlq-retry", &json!({"dlqId": oldest})).await;
    let twice = client.post_ok("/functions/v1/dlq-retry", &json!({"dlqId": oldest})).await;
    assert_eq!(once["jobId"], twice["jobId"]);
    assert_eq!((once["retried"].as_bool(), twice["retried"].as_bool()), (Some(true), Some(false)));
    let new_job = client.get(&format!("/api/collab/job/{}", once["jobId"].as_str().unwrap())).await.json();
    assert_eq!((new_job["status"].as_str(), new_job["payload"].clone()), (Some("queued"), json!({"k": 1})));
    let db = sql().await;
    let replays: i64 = db
        .query_one("SELECT count(*) FROM cogo.jobs WHERE executor_id = $1 AND status = 'queued'", &[&executor])
        .await
        .unwrap()
        .get(0);
    assert_eq!(replays, 1);

    // A dry run changes nothing.
    let before = letters(&executor).await;
    let dry = client.post_ok("/functions/v1/dlq-retry", &json!({"executorId": executor, "dryRun": true})).await;
    assert_eq!((dry["dryRun"].as_bool(), dry["count"].as_i64()), (Some(true), Some(3)));
    assert_eq!(letters(&executor).await, before);
    // A filtered run, bounded by max, then the rest.
    let some = client.post_ok("/functions/v1/dlq-retry", &json!({"executorId": executor, "max": 2})).await;
    assert_eq!(some["count"], 2);
    let rest = client.post_ok("/functions/v1/dlq-retry", &json!({"executorId": executor})).await;
    assert_eq!(rest["count"], 1);
    assert!(letters(&executor).await.iter().all(|(_, retried)| retried.is_some()));
    let none = client.post_ok("/functions/v1/dlq-retry", &json!({"executorId": executor})).await;
    assert_eq!(none["count"], 0);

    let unknown = client.post("/functions/v1/dlq-retry", &json!({"dlqId": 999_999_999})).await;
    assert_eq!((unknown.status, unknown.json()["error"]["code"].clone()), (404, json!("dead_letter_not_found")));
    for bad in [json!({}), json!({"dlqId": "x"}), json!({"dryRun": true}), json!({"max": 0})] {
        assert_eq!(client.post("/functions/v1/dlq-retry", &bad).await.status, 400, "{bad}");
    }
}

#[tokio::test]
async fn the_openapi_document_and_its_page() {
    let client = Stack::shared().client_with(None);
    let doc = client.get("/docs.json").await;
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert_eq!(doc["openapi"], "3.1.0");
    for (path, method) in [
        ("/api/collab/task.assign", "post"),
        ("/api/collab/job/{id}/summary", "get"),
        ("/functions/v1/jobs-recent", "get"),
        ("/functions/v1/dlq-retry", "post"),
        ("/functions/v1/metrics", "get"),
    ] {
        assert!(doc["paths"][path][method]["responses"]["200"].is_object(), "{method} {path}");
    }
    let page = client.get("/functions/v1/docs").await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    assert!(page.text.contains("/api/collab/task.assign") && !page.text.contains("https://"), "self-contained");
}

/// metrics-history, checked against the event log recounted here under a
/// lock that holds writers off, and against the job counters.
#[tokio::test]
async fn metrics_history_matches_the_event_log_recounted_here() {
    let stack = Stack::shared();
    let client = stack.client();
    let executor = unique("history");
    let kind = unique("demo.history");
    for _ in 0..4 {
        assign(&client, &executor, &kind).await;
    }
    run_one(&client, &executor, true).await;
    client.post_ok(ASSIGN, &json!({"type": kind, "executorId": executor, "maxAttempts": 1, "priority": 10})).await;
    run_one(&client, &executor, false).await;
    let cancelled = assign(&client, &executor, &kind).await;
    client.post_ok("/api/collab/task.cancel", &json!({"jobId": cancelled})).await;

    let mut db = sql().await;
    let tx = db.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE cogo.jobs IN SHARE MODE").await.unwrap();
    let reply = client.get("/functions/v1/metrics-history?window=1h&step=1m").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let history = reply.json();
    let points = history["points"].as_array().unwrap();
    assert_eq!((history["window"].as_i64(), history["step"].as_i64(), points.len()), (Some(3600), Some(60), 60));
    let first = points[0]["t"].as_str().unwrap().to_string();
    let recount = tx
        .query(
            "SELECT to_char(date_bin('1 minute', created_at, 'epoch') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS'),
                    count(*) FILTER (WHERE event_type = 'created'), count(*) FILTER (WHERE event_type = 'claimed'),
                    count(*) FILTER (WHERE event_type = 'succeeded'), count(*) FILTER (WHERE event_type = 'dead_lettered'),
                    count(*) FILTER (WHERE event_type = 'cancelled'),
                    count(*) FILTER (WHERE event_type = 'claimed' AND payload->>'attempt' = '1'),
                    count(*) FILTER (WHERE event_type IN ('retry_scheduled', 'failed', 'dead_lettered'))
             FROM cogo.job_events WHERE created_at >= $1::text::timestamptz GROUP BY 1",
            &[&first],
        )
        .await
        .unwrap();
    let queued: i64 = tx.query_one("SELECT count(*) FROM cogo.jobs WHERE status = 'queued'", &[]).await.unwrap().get(0);
    tx.rollback().await.unwrap();

    let mut busy_minutes = 0;
    for point in points {
        let t = &point["t"].as_str().unwrap()[..19];
        let row = recount.iter().find(|r| r.get::<_, String>(0) == t);
        let n = |i: usize| row.map_or(0, |r| r.get::<_, i64>(i));
        let got =
            ["enqueued", "claimed", "succeeded", "dead", "cancelled", "failed"].map(|k| point[k].as_i64().unwrap());
        assert_eq!(got, [n(1), n(2), n(3), n(4), n(5), n(7)], "minute {t}: {point}");
        assert_eq!(point["waitP95Ms"].is_number(), n(6) > 0, "a wait exactly where jobs were first claimed: {point}");
        busy_minutes += usize::from(row.is_some());
    }
    assert!(busy_minutes >= 1, "this test's own events are in the window");
    assert_eq!(recount.len(), busy_minutes, "every minute with events is a point");
    assert_eq!(points.last().unwrap()["queueDepth"].as_i64(), Some(queued), "the last point's depth is now's");
    let times: Vec<&str> = points.iter().map(|p| p["t"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "oldest first");

    let coarse = client.get("/functions/v1/metrics-history?window=2h&step=15m").await.json();
    assert_eq!(coarse["points"].as_array().unwrap().len(), 8);
    let sum = |h: &Value, k: &str| h["points"].as_array().unwrap().iter().map(|p| p[k].as_i64().unwrap()).sum::<i64>();
    assert!(sum(&coarse, "enqueued") >= 6, "{coarse}");
}

#[tokio::test]
async fn metrics_history_bounds_its_window_and_step() {
    let client = Stack::shared().client();
    for (query, parameter) in [
        ("window=25h", "window"),
        ("window=30s", "window"),
        ("window=1d", "window"),
        ("step=30s", "step"),
        ("step=2h", "step"),
        ("window=1h&step=7m", "window"),
    ] {
        let reply = client.get(&format!("/functions/v1/metrics-history?{query}")).await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.text);
        assert_eq!(reply.json()["error"]["details"]["parameter"], parameter, "{query}");
    }
    let day = client.get("/functions/v1/metrics-history?window=24h&step=1m").await;
    assert_eq!((day.status, day.json()["points"].as_array().map(Vec::len)), (200, Some(1440)));
}
