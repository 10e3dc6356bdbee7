//! Retention through the real stack: the cron deletes finished jobs past
//! their age with their events, dead letters, artifact rows and stored
//! objects, and nothing else; the SQL sweep, called as the platform calls
//! it, is bounded by its batch size.

use cogo_tests::{sql, sql_one, unique, Stack};
use serde_json::{json, Value};
use tokio::sync::{Mutex, MutexGuard};

/// A sweep deletes whatever is due, whoever seeded it: the tests of this
/// file run one at a time so each knows what is due.
async fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::const_new(());
    SERIAL.lock().await
}

/// Moves a job's finish (and start and creation) `age` into the past.
async fn finished_ago(job: &str, age: &str) {
    sql()
        .await
        .execute(
            "UPDATE cogo.jobs SET finished_at = now() - $2::text::interval, created_at = now() - $2::text::interval - interval '1 minute'
             WHERE id = $1::text::uuid",
            &[&job, &age],
        )
        .await
        .unwrap();
}

/// (jobs, events, dead letters, artifacts) rows of `job`.
async fn rows(job: &str) -> (i64, i64, i64, i64) {
    let row = sql()
        .await
        .query_one(
            "SELECT (SELECT count(*) FROM cogo.jobs WHERE id = $1::text::uuid),
                    (SELECT count(*) FROM cogo.job_events WHERE job_id = $1::text::uuid),
                    (SELECT count(*) FROM cogo.job_dead_letters WHERE job_id = $1::text::uuid),
                    (SELECT count(*) FROM cogo.artifacts WHERE job_id = $1::text::uuid)",
            &[&job],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

async fn assign(stack: &Stack, executor: &str, extra: Value) -> String {
    let mut body = json!({"type": "demo.retention", "executorId": executor});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    stack.client().post_ok("/api/collab/task.assign", &body).await["jobId"].as_str().unwrap().to_string()
}

/// Claims the executor's one job: its lease token.
async fn claim(stack: &Stack, executor: &str) -> String {
    let claimed =
        stack.client().post_ok("/api/collab/task.claim", &json!({"executorId": executor, "workerId": "w"})).await;
    claimed["job"]["leaseToken"].as_str().unwrap().to_string()
}

async fn result(stack: &Stack, job: &str, token: &str, ok: bool) {
    let body = json!({"jobId": job, "type": "demo.retention", "ok": ok, "leaseToken": token, "error": "boom"});
    stack.client().post_ok("/api/collab/task.result", &body).await;
}

/// A job run to its end through the API: succeeded, or with `ok: false` and
/// one attempt, dead with a dead letter.
async fn finished(stack: &Stack, ok: bool) -> String {
    let executor = unique("ret");
    let job = assign(stack, &executor, json!({"maxAttempts": 1})).await;
    let token = claim(stack, &executor).await;
    result(stack, &job, &token, ok).await;
    job
}

/// Every job is counted once: the counters follow deletions.
async fn counters_match_rows() {
    let row = sql()
        .await
        .query_one("SELECT (SELECT sum(jobs)::bigint FROM cogo.job_counts), (SELECT count(*) FROM cogo.jobs)", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), row.get::<_, i64>(1), "job_counts total = jobs kept");
}

#[tokio::test]
async fn the_cron_deletes_finished_jobs_past_their_age_with_everything_they_own() {
    let _serial = serial().await;
    let stack = Stack::shared();

    // Succeeded 8 days ago, with an uploaded artifact and an idempotency key.
    let executor = unique("ret");
    let key = unique("key");
    let old_ok = assign(stack, &executor, json!({"idempotencyKey": key})).await;
    let token = claim(stack, &executor).await;
    let body = json!({"jobId": old_ok, "leaseToken": token, "name": "out.txt", "mime": "text/plain"});
    let link = stack.client().post_ok("/functions/v1/artifact-upload-url", &body).await;
    let put = reqwest::Client::new().put(link["url"].as_str().unwrap()).body("hello").send().await.unwrap();
    assert_eq!(put.status(), 201);
    result(stack, &old_ok, &token, true).await;
    let signed = stack.client().get(&format!("/functions/v1/sign-artifact?path={old_ok}/out.txt")).await.json();
    let download = signed["url"].as_str().unwrap().to_string();
    assert_eq!(reqwest::get(&download).await.unwrap().status(), 200);
    finished_ago(&old_ok, "8 days").await;

    // Cancelled 8 days ago; dead 15 days ago (past the longer age of failures).
    let cancel_executor = unique("ret");
    let old_cancelled = assign(stack, &cancel_executor, json!({})).await;
    stack.client().post_ok("/api/collab/task.cancel", &json!({"jobId": old_cancelled})).await;
    finished_ago(&old_cancelled, "8 days").await;
    let old_dead = finished(stack, false).await;
    finished_ago(&old_dead, "15 days").await;

    // Kept: finished 1 hour ago; dead 10 days ago (younger than 14 days);
    // queued and running for a year, even with a finish time set.
    let recent_ok = finished(stack, true).await;
    finished_ago(&recent_ok, "1 hour").await;
    let younger_dead = finished(stack, false).await;
    finished_ago(&younger_dead, "10 days").await;
    let queued_executor = unique("ret");
    let queued = assign(stack, &queued_executor, json!({})).await;
    let running_executor = unique("ret");
    let running = assign(stack, &running_executor, json!({})).await;
    claim(stack, &running_executor).await;
    for job in [&queued, &running] {
        finished_ago(job, "365 days").await;
    }

    let before: Vec<_> = kept_rows(&[&recent_ok, &younger_dead, &queued, &running]).await;
    assert_eq!(rows(&old_ok).await.3, 1, "the artifact is recorded");
    assert_eq!(rows(&old_dead).await.2, 1, "the dead job has its letter");

    stack.run_cron().await;

    for job in [&old_ok, &old_cancelled, &old_dead] {
        assert_eq!(rows(job).await, (0, 0, 0, 0), "job {job}, its events, letter and artifact rows are gone");
    }
    let reply = reqwest::get(&download).await.unwrap();
    assert_eq!(reply.status(), 404, "the stored object is deleted too");
    assert_eq!(reply.json::<Value>().await.unwrap()["error"]["code"], "object_not_found");
    assert_eq!(kept_rows(&[&recent_ok, &younger_dead, &queued, &running]).await, before, "the rest is untouched");
    counters_match_rows().await;

    // The key lived on the deleted job: it makes a new job now.
    let again = stack
        .client()
        .post_ok(
            "/api/collab/task.assign",
            &json!({"type": "demo.retention", "executorId": executor, "idempotencyKey": key}),
        )
        .await;
    assert_eq!(again["queued"], true);
    assert_ne!(again["jobId"].as_str(), Some(old_ok.as_str()));
}

async fn kept_rows(jobs: &[&String]) -> Vec<(i64, i64, i64, i64)> {
    let mut all = Vec::new();
    for job in jobs {
        let row = rows(job).await;
        assert_eq!(row.0, 1, "job {job} exists");
        all.push(row);
    }
    all
}

#[tokio::test]
async fn a_replayed_letters_new_job_stays_as_long_as_the_letter() {
    let _serial = serial().await;
    let stack = Stack::shared();
    let dead = finished(stack, false).await;
    let letter: i64 = sql_one("SELECT id FROM cogo.job_dead_letters WHERE job_id = $1::text::uuid", &[&dead]).await;
    let retried = stack.client().post_ok("/functions/v1/dlq-retry", &json!({"dlqId": letter})).await;
    let replay = retried["jobId"].as_str().unwrap().to_string();
    let executor: String = sql_one("SELECT executor_id FROM cogo.jobs WHERE id = $1::text::uuid", &[&replay]).await;
    let token = claim(stack, &executor).await;
    result(stack, &replay, &token, true).await;
    finished_ago(&replay, "8 days").await;
    finished_ago(&dead, "10 days").await;

    stack.run_cron().await;
    assert_eq!(rows(&replay).await.0, 1, "past its age, but its letter still names it");
    assert_eq!(rows(&dead).await.2, 1);

    finished_ago(&dead, "15 days").await;
    stack.run_cron().await;
    assert_eq!(rows(&dead).await, (0, 0, 0, 0), "the letter's time is up");
    // The replay became deletable within that sweep: the next tick takes it.
    stack.run_cron().await;
    assert_eq!(rows(&replay).await, (0, 0, 0, 0));
    counters_match_rows().await;
}

/// `n` succeeded jobs of a fresh executor, finished 20 years ago: older than
/// anything the other tests make, so a 10-year age selects only these.
async fn ancient_jobs(n: i64) -> String {
    let executor = unique("ancient");
    sql()
        .await
        .execute(
            "INSERT INTO cogo.jobs (type, executor_id, status, created_at, finished_at)
             SELECT 'demo.retention', $1, 'succeeded', now() - interval '20 years', now() - interval '20 years' + g * interval '1 second'
             FROM generate_series(1, $2::bigint) g",
            &[&executor, &n],
        )
        .await
        .unwrap();
    executor
}

async fn left(executor: &str) -> i64 {
    sql_one("SELECT count(*) FROM cogo.jobs WHERE executor_id = $1", &[&executor]).await
}

/// `cogo.retention_sweep` through PostgREST as the platform calls it.
async fn sweep(stack: &Stack, args: Value) -> (u16, Value) {
    let reply = reqwest::Client::new()
        .post(format!("{}/rpc/retention_sweep", stack.postgrest_url()))
        .header("apikey", &stack.service_key)
        .bearer_auth(&stack.service_key)
        .header("content-profile", "cogo")
        .json(&args)
        .send()
        .await
        .unwrap();
    (reply.status().as_u16(), reply.json().await.unwrap())
}

#[tokio::test]
async fn one_sweep_deletes_at_most_its_batch_and_the_next_continues() {
    let _serial = serial().await;
    let stack = Stack::shared();
    let executor = ancient_jobs(5).await;
    let ten_years = json!({"p_finished_hours": 87_600, "p_failed_hours": null, "p_batch": 2});

    for bad in [
        json!({"p_finished_hours": 87_600, "p_failed_hours": null, "p_batch": 0}),
        json!({"p_finished_hours": 87_600, "p_failed_hours": null, "p_batch": 10_001}),
        json!({"p_finished_hours": 0, "p_failed_hours": null, "p_batch": 2}),
    ] {
        let (status, answer) = sweep(stack, bad.clone()).await;
        assert_eq!((status, answer["message"].as_str()), (400, Some("invalid_argument")), "{bad}");
    }
    assert_eq!(left(&executor).await, 5, "a refused call deletes nothing");

    let (status, first) = sweep(stack, ten_years.clone()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!((first["jobs"].as_i64(), first["events"].as_i64()), (Some(2), Some(2)), "{first}");
    assert_eq!(left(&executor).await, 3);
    assert_eq!(sweep(stack, ten_years.clone()).await.1["jobs"], 2);
    assert_eq!(sweep(stack, ten_years.clone()).await.1["jobs"], 1, "a short batch: nothing more due");
    assert_eq!(sweep(stack, ten_years).await.1, json!({"jobs": 0, "events": 0, "deadLetters": 0, "artifacts": []}));
    assert_eq!(left(&executor).await, 0);
}

#[tokio::test]
async fn a_cron_tick_sweeps_batches_up_to_its_cap_and_the_next_tick_goes_on() {
    let _serial = serial().await;
    let stack = Stack::builder()
        .var("RETENTION_FINISHED_HOURS", "87600")
        .var("RETENTION_FAILED_HOURS", "0")
        .var("RETENTION_BATCH", "2")
        .var("RETENTION_MAX_BATCHES", "2")
        .start();
    let executor = ancient_jobs(5).await;
    stack.run_cron().await;
    assert_eq!(left(&executor).await, 1, "two full batches of two, then the tick's cap");
    stack.run_cron().await;
    assert_eq!(left(&executor).await, 0);
    counters_match_rows().await;
}

/// The same cron folds the event log's finished minutes into the rollup
/// behind metrics-history (its figures are checked in reads.rs and, folded,
/// in dev/tests/migrate.rs): after a tick, every minute that ended over a
/// minute ago is folded.
#[tokio::test]
async fn the_cron_folds_the_finished_minutes_of_the_event_log() {
    let _serial = serial().await;
    let stack = Stack::shared();
    stack.run_cron().await;
    let behind: f64 = sql_one(
        "SELECT extract(epoch FROM date_bin('1 minute', now(), 'epoch') - folded_until)::float8
         FROM cogo.job_minutes_folded",
        &[],
    )
    .await;
    // 60 s, or 120 s when a minute began since the tick.
    assert!((60.0..=120.0).contains(&behind), "folded until {behind} s before this minute");
    let history = stack.client().get("/functions/v1/metrics-history").await;
    assert_eq!(history.status, 200, "{}", history.text);
}
