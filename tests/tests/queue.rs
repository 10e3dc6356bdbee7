//! The job lifecycle through the real stack: wasm in workerd, PostgREST
//! (the gateway), PostgreSQL. Each test works on its own executor id.

use std::collections::{HashMap, HashSet};

use cogo_tests::{sql, unique, Client, Stack};
use serde_json::{json, Value};

const ASSIGN: &str = "/api/collab/task.assign";
const CLAIM: &str = "/api/collab/task.claim";
const RESULT: &str = "/api/collab/task.result";

async fn assign(client: &Client<'_>, executor: &str, extra: Value) -> String {
    let mut body = json!({"type": "demo.echo", "executorId": executor, "payload": {"n": 1}});
    body.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    let reply = client.post_ok(ASSIGN, &body).await;
    assert_eq!(reply["queued"], true, "{reply}");
    reply["jobId"].as_str().expect("jobId").to_string()
}

async fn claim_one(client: &Client<'_>, executor: &str, worker: &str) -> Value {
    client.post_ok(CLAIM, &json!({"executorId": executor, "workerId": worker})).await["job"].clone()
}

async fn events(job_id: &str) -> Vec<String> {
    let rows = sql()
        .await
        .query("SELECT event_type FROM cogo.job_events WHERE job_id = $1::text::uuid ORDER BY seq", &[&job_id])
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

async fn job_row(job_id: &str) -> (String, i32, Option<Value>) {
    let row = sql()
        .await
        .query_one("SELECT status, attempts, result FROM cogo.jobs WHERE id = $1::text::uuid", &[&job_id])
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

/// Rows of the queue tables that belong to `executors`, to prove a
/// rejected request changed nothing (other tests run alongside).
async fn table_counts(executors: &[&str]) -> Vec<i64> {
    let executors: Vec<String> = executors.iter().map(|e| e.to_string()).collect();
    let row = sql()
        .await
        .query_one(
            "SELECT (SELECT count(*) FROM cogo.jobs WHERE executor_id = ANY ($1)),
                    (SELECT count(*) FROM cogo.job_events e JOIN cogo.jobs j ON j.id = e.job_id
                       WHERE j.executor_id = ANY ($1)),
                    (SELECT count(*) FROM cogo.job_dead_letters WHERE executor_id = ANY ($1)),
                    (SELECT count(*) FROM cogo.worker_heartbeats_v2 WHERE executor_id = ANY ($1)),
                    (SELECT coalesce(sum(attempts), 0)::bigint FROM cogo.jobs WHERE executor_id = ANY ($1))",
            &[&executors],
        )
        .await
        .unwrap();
    (0..5).map(|i| row.get(i)).collect()
}

#[tokio::test]
async fn assign_claim_result_ok_as_the_seeds_do() {
    let client = Stack::shared().client();
    let executor = unique("seed");
    let job_id = assign(&client, &executor, json!({})).await;

    let job = claim_one(&client, &executor, "worker-1").await;
    assert_eq!(job["id"], job_id.as_str());
    assert_eq!(job["type"], "demo.echo");
    assert_eq!(job["status"], "running");
    assert_eq!(job["payload"], json!({"n": 1}));
    assert_eq!(job["attempts"], 1, "the attempt is counted at claim");
    assert_eq!(job["worker_id"], "worker-1");
    assert!(job["leaseToken"].as_str().is_some_and(|t| t.len() == 36), "{job}");
    assert!(job["leaseUntil"].is_string());

    // An old client: no lease token, `artifact` as the seeds send it.
    let done = client
        .post_ok(
            RESULT,
            &json!({"jobId": job_id, "type": "demo.echo", "ok": true,
                    "artifact": {"name": "out.txt", "url": "https://example.invalid/out.txt", "size": 3}}),
        )
        .await;
    assert_eq!(done["ok"], true);
    assert_eq!(done["status"], "succeeded");

    let (status, attempts, result) = job_row(&job_id).await;
    assert_eq!((status.as_str(), attempts), ("succeeded", 1));
    assert_eq!(result.unwrap()["artifacts"][0]["name"], "out.txt");
    assert_eq!(events(&job_id).await, vec!["created", "claimed", "succeeded"]);
    assert_eq!(claim_one(&client, &executor, "worker-1").await, Value::Null, "nothing left: {{job: null}}");
}

#[tokio::test]
async fn failing_until_max_attempts_dead_letters_with_every_error() {
    let client = Stack::shared().client();
    let executor = unique("fail");
    let job_id = assign(&client, &executor, json!({"maxAttempts": 3, "backoffBaseMs": 0})).await;
    for attempt in 1..=3 {
        let job = claim_one(&client, &executor, "w").await;
        assert_eq!(job["id"], job_id.as_str(), "attempt {attempt}");
        assert_eq!(job["attempts"], attempt);
        let reply = client
            .post_ok(
                RESULT,
                &json!({"jobId": job_id, "type": "demo.echo", "ok": false, "leaseToken": job["leaseToken"],
                        "error": {"message": format!("boom {attempt}")}}),
            )
            .await;
        assert_eq!(reply["status"], if attempt < 3 { "queued" } else { "dead" });
    }
    assert_eq!(claim_one(&client, &executor, "w").await, Value::Null);
    let (status, attempts, _) = job_row(&job_id).await;
    assert_eq!((status.as_str(), attempts), ("dead", 3));
    let letter = sql()
        .await
        .query_one(
            "SELECT reason, attempts, errors FROM cogo.job_dead_letters WHERE job_id = $1::text::uuid",
            &[&job_id],
        )
        .await
        .unwrap();
    assert_eq!(letter.get::<_, String>(0), "max_attempts_exceeded");
    assert_eq!(letter.get::<_, i32>(1), 3);
    let errors: Value = letter.get(2);
    let messages: Vec<&str> =
        errors.as_array().unwrap().iter().map(|e| e["error"]["message"].as_str().unwrap()).collect();
    assert_eq!(messages, vec!["boom 1", "boom 2", "boom 3"]);
    assert_eq!(
        events(&job_id).await,
        vec!["created", "claimed", "retry_scheduled", "claimed", "retry_scheduled", "claimed", "dead_lettered"]
    );
}

#[tokio::test]
async fn backoff_delays_the_retry() {
    let client = Stack::shared().client();
    let executor = unique("backoff");
    let job_id = assign(&client, &executor, json!({"backoffBaseMs": 3_600_000, "backoffCapMs": 3_600_000})).await;
    let job = claim_one(&client, &executor, "w").await;
    let reply = client
        .post_ok(RESULT, &json!({"jobId": job_id, "type": "demo.echo", "ok": false, "leaseToken": job["leaseToken"]}))
        .await;
    assert_eq!(reply["status"], "queued");
    let delay: f64 = sql()
        .await
        .query_one(
            "SELECT extract(epoch FROM next_run_at - updated_at)::float8 FROM cogo.jobs WHERE id = $1::text::uuid",
            &[&job_id],
        )
        .await
        .unwrap()
        .get(0);
    assert!((0.0..=3600.0).contains(&delay), "full jitter within the cap: {delay}");
    if delay > 1.0 {
        assert_eq!(claim_one(&client, &executor, "w").await, Value::Null, "not claimable before next_run_at");
    }
}

/// Ends a job's lease now, as if its worker had vanished that long ago.
async fn expire_lease(job_id: &str) {
    sql()
        .await
        .execute("UPDATE cogo.jobs SET lease_until = now() - interval '1 second' WHERE id = $1::text::uuid", &[&job_id])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_crashed_worker_loses_its_job_to_the_next_and_its_late_result_is_refused() {
    let stack = Stack::shared();
    let client = stack.client();
    let executor = unique("crash");
    let job_id = assign(&client, &executor, json!({})).await;
    let first = client.post_ok(CLAIM, &json!({"executorId": executor, "workerId": "w1", "leaseSeconds": 15})).await;
    let first_token = first["job"]["leaseToken"].clone();

    // The first worker vanishes; let its lease run out.
    expire_lease(&job_id).await;
    let reaped = client.get("/functions/v1/leases-release").await;
    assert_eq!(reaped.status, 200, "{}", reaped.text);
    assert!(reaped.json()["released"].as_i64().unwrap() >= 1);

    let second = claim_one(&client, &executor, "w2").await;
    assert_eq!(second["id"], job_id.as_str());
    assert_eq!(second["attempts"], 2);
    assert_eq!(second["lost_leases"], 1);
    assert_ne!(second["leaseToken"], first_token);

    let late = client
        .post(RESULT, &json!({"jobId": job_id, "type": "demo.echo", "ok": true, "leaseToken": first_token}))
        .await;
    assert_eq!(late.status, 409, "{}", late.text);
    assert_eq!(late.json()["error"]["code"], "lease_lost");
    assert_eq!(job_row(&job_id).await.0, "running", "the stale result changed nothing");

    client
        .post_ok(RESULT, &json!({"jobId": job_id, "type": "demo.echo", "ok": true, "leaseToken": second["leaseToken"]}))
        .await;
    assert_eq!(events(&job_id).await, vec!["created", "claimed", "lease_expired", "claimed", "succeeded"]);
    let again = client
        .post(RESULT, &json!({"jobId": job_id, "type": "demo.echo", "ok": true, "leaseToken": second["leaseToken"]}))
        .await;
    assert_eq!((again.status, again.json()["error"]["code"].as_str()), (409, Some("not_running")));
}

#[tokio::test]
async fn leases_lost_too_often_dead_letter_the_job() {
    let client = Stack::shared().client();
    let executor = unique("lost");
    let job_id = assign(&client, &executor, json!({"maxAttempts": 10})).await;
    for _ in 0..3 {
        claim_one(&client, &executor, "w").await;
        sql()
            .await
            .execute(
                "UPDATE cogo.jobs SET lease_until = now() - interval '1 second' WHERE id = $1::text::uuid",
                &[&job_id],
            )
            .await
            .unwrap();
        assert_eq!(client.get("/functions/v1/leases-release").await.status, 200);
    }
    let (status, _, _) = job_row(&job_id).await;
    assert_eq!(status, "dead");
    let reason: String = sql()
        .await
        .query_one("SELECT reason FROM cogo.job_dead_letters WHERE job_id = $1::text::uuid", &[&job_id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(reason, "lease_lost_repeatedly");
}

#[tokio::test]
async fn claim_honours_type_prefix_priority_and_run_at() {
    let client = Stack::shared().client();
    let executor = unique("order");
    let low = assign(&client, &executor, json!({"type": "render.low", "priority": 1})).await;
    let high = assign(&client, &executor, json!({"type": "render.high", "priority": 9})).await;
    let other = assign(&client, &executor, json!({"type": "export.pdf", "priority": 100})).await;
    let future =
        assign(&client, &executor, json!({"type": "render.later", "priority": 50, "runAt": "2999-01-01T00:00:00Z"}))
            .await;

    let batch = client
        .post_ok(CLAIM, &json!({"executorId": executor, "workerId": "w", "typePrefix": "render.", "limit": 10}))
        .await;
    let ids: Vec<&str> = batch["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![high.as_str(), low.as_str()], "priority order, prefix only, nothing before runAt");
    let rest = claim_one(&client, &executor, "w").await;
    assert_eq!(rest["id"], other.as_str());
    assert_eq!(claim_one(&client, &executor, "w").await, Value::Null, "{future} waits for its time");
}

#[tokio::test]
async fn cancel_queued_and_running() {
    let client = Stack::shared().client();
    let executor = unique("cancel");
    let queued = assign(&client, &executor, json!({})).await;
    let reply = client.post_ok("/api/collab/task.cancel", &json!({"jobId": queued})).await;
    assert_eq!((reply["status"].as_str(), reply["cancelRequested"].as_bool()), (Some("cancelled"), Some(false)));
    assert_eq!(claim_one(&client, &executor, "w").await, Value::Null);

    let running = assign(&client, &executor, json!({})).await;
    let job = claim_one(&client, &executor, "w").await;
    let reply = client.post_ok("/api/collab/task.cancel", &json!({"jobId": running})).await;
    assert_eq!(reply["cancelRequested"], true);
    let progress = client
        .post_ok(
            "/api/collab/task.progress",
            &json!({"jobId": running, "leaseToken": job["leaseToken"], "progress": 40}),
        )
        .await;
    assert_eq!(progress["cancelRequested"], true);
    let beat = client
        .post_ok(
            "/api/collab/task.heartbeat",
            &json!({"jobId": running, "leaseToken": job["leaseToken"], "leaseSeconds": 120}),
        )
        .await;
    assert_eq!(beat["cancelRequested"], true);
    let result = client
        .post_ok(RESULT, &json!({"jobId": running, "type": "demo.echo", "ok": false, "leaseToken": job["leaseToken"]}))
        .await;
    assert_eq!(result["status"], "cancelled");
    assert_eq!(events(&running).await, vec!["created", "claimed", "progress", "cancelled"]);

    let finished = client.post("/api/collab/task.cancel", &json!({"jobId": running})).await;
    assert_eq!((finished.status, finished.json()["error"]["code"].as_str()), (409, Some("already_finished")));
}

#[tokio::test]
async fn a_cancelled_job_whose_worker_died_is_cancelled_by_the_reaper_not_requeued() {
    let client = Stack::shared().client();
    let executor = unique("cancel-dead");
    let job_id = assign(&client, &executor, json!({})).await;
    claim_one(&client, &executor, "w").await;
    assert_eq!(client.post_ok("/api/collab/task.cancel", &json!({"jobId": job_id})).await["cancelRequested"], true);
    expire_lease(&job_id).await;
    let reaped = client.get("/functions/v1/leases-release").await;
    assert_eq!(reaped.status, 200, "{}", reaped.text);
    // Counted here or by a concurrent test's reaping: the job's state is what matters.
    assert!(reaped.json()["cancelled"].is_i64(), "{}", reaped.text);
    assert_eq!(job_row(&job_id).await.0, "cancelled");
    assert_eq!(claim_one(&client, &executor, "w2").await, Value::Null, "not claimed again just to be cancelled");
    assert_eq!(events(&job_id).await.last().map(String::as_str), Some("cancelled"));
}

#[tokio::test]
async fn heartbeat_extends_the_lease_and_checks_the_token() {
    let client = Stack::shared().client();
    let executor = unique("hb");
    let job_id = assign(&client, &executor, json!({})).await;
    let job = claim_one(&client, &executor, "w").await;
    let beat = client
        .post_ok(
            "/api/collab/task.heartbeat",
            &json!({"jobId": job_id, "leaseToken": job["leaseToken"], "leaseSeconds": 600}),
        )
        .await;
    let until: f64 = sql()
        .await
        .query_one(
            "SELECT extract(epoch FROM lease_until - now())::float8 FROM cogo.jobs WHERE id = $1::text::uuid",
            &[&job_id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(until > 500.0, "lease extended to ~600 s: {until}");
    assert!(beat["leaseUntil"].is_string());
    let stale = client
        .post(
            "/api/collab/task.heartbeat",
            &json!({"jobId": job_id, "leaseToken": "00000000-0000-4000-8000-000000000000", "leaseSeconds": 60}),
        )
        .await;
    assert_eq!((stale.status, stale.json()["error"]["code"].as_str()), (409, Some("lease_lost")));
}

#[tokio::test]
async fn idempotent_assign_under_ten_concurrent_identical_requests() {
    let stack = Stack::shared();
    let executor = unique("idem");
    let key = unique("key");
    let body = json!({"type": "demo.echo", "executorId": executor, "idempotencyKey": key});
    let replies = futures::future::join_all((0..10).map(|_| {
        let body = body.clone();
        async move { stack.client().post_ok(ASSIGN, &body).await }
    }))
    .await;
    let ids: HashSet<&str> = replies.iter().map(|r| r["jobId"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1, "{replies:?}");
    assert_eq!(replies.iter().filter(|r| r["queued"] == true).count(), 1);
    let count: i64 = sql()
        .await
        .query_one("SELECT count(*) FROM cogo.jobs WHERE executor_id = $1", &[&executor])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1);
}

#[tokio::test]
async fn batch_results_report_each_item() {
    let client = Stack::shared().client();
    let executor = unique("batch");
    for _ in 0..3 {
        assign(&client, &executor, json!({})).await;
    }
    let jobs =
        client.post_ok(CLAIM, &json!({"executorId": executor, "workerId": "w", "limit": 3})).await["jobs"].clone();
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 3);
    let results: Vec<Value> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| {
            // The last one carries a stale token and must fail alone.
            let token = if i == 2 { json!("00000000-0000-4000-8000-000000000000") } else { j["leaseToken"].clone() };
            json!({"jobId": j["id"], "type": "demo.echo", "ok": true, "leaseToken": token})
        })
        .collect();
    let reply = client.post_ok(RESULT, &json!({"results": results})).await;
    let outcomes = reply["results"].as_array().unwrap();
    assert_eq!(outcomes.len(), 3);
    for (i, outcome) in outcomes.iter().enumerate() {
        assert_eq!(outcome["jobId"], jobs[i]["id"], "input order");
        assert_eq!(outcome["ok"], i != 2);
    }
    assert_eq!(outcomes[2]["error"]["code"], "lease_lost");
    assert_eq!(job_row(jobs[2]["id"].as_str().unwrap()).await.0, "running");
}

#[tokio::test]
async fn worker_heartbeat_upserts() {
    let client = Stack::shared().client();
    let agent = unique("agent");
    let body = json!({"agentId": agent, "executorId": "browser", "status": "idle", "capacity": 4, "version": "1.0"});
    let reply = client.post_ok("/api/collab/workers/heartbeat", &body).await;
    assert_eq!(reply["ok"], true);
    assert_eq!(reply["workerId"], agent.as_str());
    let body = json!({"agentId": agent, "executorId": "browser", "status": "busy", "running": 2});
    client.post_ok("/api/collab/workers/heartbeat", &body).await;
    let row = sql()
        .await
        .query_one(
            "SELECT status, running, count(*) OVER () FROM cogo.worker_heartbeats_v2 WHERE worker_id = $1",
            &[&agent],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, String>(0), row.get::<_, i32>(1), row.get::<_, i64>(2)), ("busy".into(), 2, 1));
}

#[tokio::test]
async fn every_validation_error_names_the_field_and_changes_nothing() {
    let client = Stack::shared().client();
    let executor = unique("valid");
    let job_id = assign(&client, &executor, json!({})).await;
    let unknown = "0f8fad5b-d9cb-469f-a165-70867728950e";
    let cases: Vec<(&str, Value, u16, &str, &str)> = vec![
        (ASSIGN, json!({"executorId": "e"}), 400, "missing_field", "type"),
        (ASSIGN, json!({"type": "t"}), 400, "missing_field", "executorId"),
        (ASSIGN, json!({"type": 5, "executorId": "e"}), 400, "invalid_field", "type"),
        (ASSIGN, json!({"type": "t", "executorId": "e", "maxAttempts": 0}), 400, "invalid_field", "maxAttempts"),
        (ASSIGN, json!({"type": "t", "executorId": "e", "runAt": "soon"}), 400, "invalid_field", "runAt"),
        (CLAIM, json!({"executorId": executor}), 400, "missing_field", "workerId"),
        (
            CLAIM,
            json!({"executorId": executor, "workerId": "w", "leaseSeconds": 14}),
            400,
            "invalid_field",
            "leaseSeconds",
        ),
        (
            CLAIM,
            json!({"executorId": executor, "workerId": "w", "leaseSeconds": 601}),
            400,
            "invalid_field",
            "leaseSeconds",
        ),
        (CLAIM, json!({"executorId": executor, "workerId": "w", "limit": 0}), 400, "invalid_field", "limit"),
        (CLAIM, json!({"executorId": executor, "workerId": "w", "limit": 101}), 400, "invalid_field", "limit"),
        (RESULT, json!({"jobId": job_id, "type": 7, "ok": true}), 400, "invalid_field", "type"),
        (RESULT, json!({"jobId": "nope", "type": "t", "ok": true}), 400, "invalid_field", "jobId"),
        (RESULT, json!({"jobId": job_id, "type": "t", "ok": "yes"}), 400, "invalid_field", "ok"),
        (RESULT, json!({"jobId": unknown, "type": "t", "ok": true}), 404, "job_not_found", ""),
        (RESULT, json!({"jobId": job_id, "type": "t", "ok": true}), 409, "not_running", ""),
        ("/api/collab/task.cancel", json!({"jobId": unknown}), 404, "job_not_found", ""),
        ("/api/collab/task.progress", json!({"jobId": job_id, "progress": 101}), 400, "invalid_field", "progress"),
        ("/api/collab/workers/heartbeat", json!({"agentId": "a", "executorId": "e"}), 400, "missing_field", "status"),
    ];
    let before = table_counts(&[&executor, "e"]).await;
    for (path, body, status, code, field) in &cases {
        let reply = client.post(path, body).await;
        assert_eq!(reply.status, *status, "{path} {body}: {}", reply.text);
        let error = &reply.json()["error"];
        assert_eq!(error["code"], *code, "{path} {body}");
        if !field.is_empty() {
            assert_eq!(error["details"]["field"], *field, "{path} {body}");
            assert!(error["message"].as_str().unwrap().starts_with(field), "{error}");
        }
    }
    let raw = [
        (ASSIGN, "{not json", 400, "invalid_json"),
        (ASSIGN, "[1,2]", 400, "invalid_json"),
        (ASSIGN, "", 400, "invalid_json"),
    ];
    for (path, text, status, code) in raw {
        let reply = client.send_raw("POST", path, text.as_bytes().to_vec()).await;
        assert_eq!((reply.status, reply.json()["error"]["code"].as_str()), (status, Some(code)), "{text:?}");
    }
    let huge = format!(r#"{{"type":"t","executorId":"{executor}","payload":"{}"}}"#, "x".repeat(1024 * 1024 + 1));
    let reply = client.send_raw("POST", ASSIGN, huge.into_bytes()).await;
    assert_eq!((reply.status, reply.json()["error"]["code"].as_str()), (413, Some("payload_too_large")));
    assert_eq!(table_counts(&[&executor, "e"]).await, before, "no rejected request changed a row");
}

#[tokio::test]
async fn eight_concurrent_claimers_over_2000_jobs_lose_and_duplicate_nothing() {
    let stack = Stack::shared();
    let executor = unique("swarm");
    let seeded: i64 = sql()
        .await
        .query_one(
            "WITH s AS (SELECT cogo.enqueue('swarm.job', $1, jsonb_build_object('i', i)) FROM generate_series(1, 2000) i)
             SELECT count(*) FROM s",
            &[&executor],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(seeded, 2000);

    let workers =
        (0..8).map(|w| {
            let executor = executor.clone();
            async move {
                let client = stack.client();
                let mut seen: Vec<(String, String)> = Vec::new();
                loop {
                    // Half the workers claim one at a time, half in batches.
                    let limit = if w % 2 == 0 { 1 } else { 25 };
                    let reply = client
                        .post_ok(CLAIM, &json!({"executorId": executor, "workerId": format!("w{w}"), "limit": limit}))
                        .await;
                    let jobs = reply["jobs"].as_array().unwrap().clone();
                    if jobs.is_empty() {
                        return seen;
                    }
                    let results: Vec<Value> = jobs
                    .iter()
                    .map(|j| json!({"jobId": j["id"], "type": "swarm.job", "ok": true, "leaseToken": j["leaseToken"]}))
                    .collect();
                    let done = client.post_ok(RESULT, &json!({"results": results})).await;
                    assert!(done["results"].as_array().unwrap().iter().all(|r| r["ok"] == true), "{done}");
                    seen.extend(jobs.iter().map(|j| {
                        (j["id"].as_str().unwrap().to_string(), j["leaseToken"].as_str().unwrap().to_string())
                    }));
                }
            }
        });
    let per_worker = futures::future::join_all(workers).await;
    let mut claims: HashMap<String, usize> = HashMap::new();
    for (id, _) in per_worker.iter().flatten() {
        *claims.entry(id.clone()).or_default() += 1;
    }
    assert_eq!(claims.len(), 2000, "every job claimed");
    assert!(claims.values().all(|n| *n == 1), "no job held by two leases");
    assert!(per_worker.iter().filter(|w| !w.is_empty()).count() > 1, "the work was shared");

    let row = sql()
        .await
        .query_one(
            "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*), max(attempts),
                    (SELECT count(*) FROM cogo.job_events e JOIN cogo.jobs j ON j.id = e.job_id
                       WHERE j.executor_id = $1 AND e.event_type = 'succeeded')
             FROM cogo.jobs WHERE executor_id = $1",
            &[&executor],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 2000, "every job ended succeeded");
    assert_eq!(row.get::<_, i64>(1), 2000, "nothing lost or added");
    assert_eq!(row.get::<_, i32>(2), 1, "each claimed once");
    assert_eq!(row.get::<_, i64>(3), 2000, "terminal exactly once");
}

async fn assign_with_key(client: &Client<'_>, key: &str, body: &Value) -> cogo_tests::Reply {
    client.send("POST", ASSIGN, Some(body), &[("Idempotency-Key", key)]).await
}

#[tokio::test]
async fn idempotency_key_replays_refuses_reuse_and_expires() {
    let client = Stack::shared().client();
    let executor = unique("idem-hdr");
    let key = unique("hdr");
    let body = json!({"type": "demo.echo", "executorId": executor});

    let first = assign_with_key(&client, &key, &body).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.header("idempotent-replayed"), None);
    let repeat = assign_with_key(&client, &key, &body).await;
    assert_eq!(repeat.status, 200);
    assert_eq!(repeat.header("idempotent-replayed"), Some("true"));
    assert_eq!(repeat.json(), first.json(), "the stored response, byte for byte in meaning");

    let before = table_counts(&[&executor]).await;
    let other = assign_with_key(&client, &key, &json!({"type": "demo.other", "executorId": executor})).await;
    assert_eq!((other.status, other.json()["error"]["code"].as_str()), (422, Some("idempotency_key_reused")));
    assert_eq!(table_counts(&[&executor]).await, before);

    // A first request still running: the repeat must not run it twice.
    let db = sql().await;
    db.execute("UPDATE cogo.idempotency_keys SET state = 'in_flight' WHERE key = $1", &[&key]).await.unwrap();
    let busy = assign_with_key(&client, &key, &body).await;
    assert_eq!((busy.status, busy.json()["error"]["code"].as_str()), (409, Some("idempotency_key_in_flight")));
    assert_eq!(table_counts(&[&executor]).await, before);

    // Past its TTL the key is free again and the request runs anew; for
    // task.assign the key is also the job's, so it still finds the same job.
    db.execute("UPDATE cogo.idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = $1", &[&key])
        .await
        .unwrap();
    let fresh =
        assign_with_key(&client, &key, &json!({"type": "demo.echo", "executorId": executor, "payload": {"v": 2}}))
            .await;
    assert_eq!(fresh.status, 200, "{}", fresh.text);
    assert_eq!(fresh.header("idempotent-replayed"), None);
    assert_eq!((&fresh.json()["jobId"], &fresh.json()["queued"]), (&first.json()["jobId"], &json!(false)));

    let bad = assign_with_key(&client, "has space", &body).await;
    assert_eq!((bad.status, bad.json()["error"]["code"].as_str()), (400, Some("invalid_idempotency_key")));
}
