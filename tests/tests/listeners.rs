//! Listeners through the real stack: a change rings a job's hub only when
//! the job has subscribers, and an executor's claim hub only when claims
//! wait there (`Cogo-Doorbells` says how many hubs a request rang); a
//! subscriber arriving during a change misses nothing; `task.result` with
//! `next` and long-poll claims (`waitSeconds`).

use std::time::{Duration, Instant};

use cogo_tests::{sql_one, unique, EventStream, Frame, Stack};
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(20);

fn stack() -> &'static Stack {
    Stack::shared()
}

fn service() -> String {
    format!("Bearer {}", stack().service_key)
}

async fn assign(executor: &str, extra: Value) -> String {
    let mut body = json!({"type": "listen.job", "executorId": executor});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    stack().client().post_ok("/api/collab/task.assign", &body).await["jobId"].as_str().unwrap().to_string()
}

async fn claim(executor: &str, worker: &str) -> (String, String) {
    let job =
        stack().client().post_ok("/api/collab/task.claim", &json!({"executorId": executor, "workerId": worker})).await
            ["job"]
            .clone();
    (job["id"].as_str().expect("a job").to_string(), job["leaseToken"].as_str().unwrap().to_string())
}

async fn subscribe(job: &str) -> EventStream {
    let resp = reqwest::Client::new()
        .get(stack().url(&format!("/functions/v1/job-events?id={job}")))
        .header("authorization", service())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "subscribe to {job}");
    EventStream::new(resp)
}

/// Waits until `query` (one bigint) reaches `at_least`.
async fn until_count(query: &str, param: &str, at_least: i64) {
    let start = Instant::now();
    loop {
        let n: i64 = sql_one(query, &[&param]).await;
        if n >= at_least {
            return;
        }
        assert!(start.elapsed() < DEADLINE, "{query} ({param}) stayed at {n}, wanted {at_least}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the job's hub has told the database the job is watched.
async fn until_watched(job: &str) {
    until_count(
        "SELECT count(*) FROM cogo.job_watchers WHERE job_id = $1::text::uuid AND watched_until > now()",
        job,
        1,
    )
    .await;
}

/// Waits until claims wait for `executor` in its claim hub.
async fn until_waiting(executor: &str) {
    until_count(
        "SELECT count(*) FROM cogo.claim_waiters WHERE executor_id = $1 AND waiting_until > now()",
        executor,
        1,
    )
    .await;
}

fn doorbells(reply: &cogo_tests::Reply) -> usize {
    reply.header("cogo-doorbells").map_or(0, |n| n.parse().unwrap())
}

async fn job_status(job: &str) -> String {
    sql_one("SELECT status FROM cogo.jobs WHERE id = $1::text::uuid", &[&job]).await
}

#[tokio::test]
async fn a_change_nobody_listens_to_rings_no_hub_and_a_watched_one_rings_its_hub_once() {
    let client = stack().client();
    let executor = unique("quiet");
    let assigned = client.post("/api/collab/task.assign", &json!({"type": "q", "executorId": executor})).await;
    assert_eq!((assigned.status, doorbells(&assigned)), (200, 0));
    let claimed = client.post("/api/collab/task.claim", &json!({"executorId": executor, "workerId": "w"})).await;
    assert_eq!(doorbells(&claimed), 0);
    let job = claimed.json()["job"].clone();
    let (id, token) = (job["id"].as_str().unwrap(), job["leaseToken"].as_str().unwrap());
    let progress =
        client.post("/api/collab/task.progress", &json!({"jobId": id, "leaseToken": token, "progress": 5})).await;
    assert_eq!((progress.status, doorbells(&progress)), (200, 0));
    assert!(progress.json().get("doorbells").is_none(), "doorbells never reach the client");

    let mut stream = subscribe(id).await;
    until_watched(id).await;
    let progress =
        client.post("/api/collab/task.progress", &json!({"jobId": id, "leaseToken": token, "progress": 50})).await;
    assert_eq!(doorbells(&progress), 1);
    let result = json!({"jobId": id, "type": "q", "ok": true, "leaseToken": token});
    let done = client.post("/api/collab/task.result", &result).await;
    assert_eq!((done.status, doorbells(&done)), (200, 1));
    assert_eq!(done.json(), json!({"ok": true, "status": "succeeded", "nextRunAt": null}));
    let frames = stream.to_end(DEADLINE).await;
    let kinds: Vec<&str> = frames.iter().map(|f| f.event.as_str()).filter(|e| *e != "ping").collect();
    assert_eq!(kinds, ["meta", "created", "claimed", "progress", "progress", "succeeded", "done"]);
}

/// A subscriber that connects while its job changes gets every event once.
#[tokio::test]
async fn subscribers_racing_changes_miss_nothing_and_get_nothing_twice() {
    let executor = unique("race");
    for round in 0..25 {
        assign(&executor, json!({})).await;
        let (job, token) = claim(&executor, "w").await;
        let worker = async {
            let client = stack().client();
            for i in 0..3 {
                let body = json!({"jobId": job, "leaseToken": token, "delta": format!("r{round}d{i}")});
                client.post_ok("/api/collab/task.progress", &body).await;
            }
            let body = json!({"jobId": job, "type": "listen.job", "ok": true, "leaseToken": token});
            client.post_ok("/api/collab/task.result", &body).await;
        };
        // The subscription starts before, during or after the changes.
        let subscriber = async {
            tokio::time::sleep(Duration::from_millis((round % 5) * 7)).await;
            subscribe(&job).await.to_end(DEADLINE).await
        };
        let ((), frames) = tokio::join!(worker, subscriber);
        let events: Vec<&Frame> = frames.iter().filter(|f| f.id.is_some()).collect();
        let ids: Vec<i64> = events.iter().map(|f| f.id.unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "round {round}: ids not increasing: {ids:?}");
        let kinds: Vec<&str> = events.iter().map(|f| f.event.as_str()).collect();
        assert_eq!(kinds, ["created", "claimed", "progress", "progress", "progress", "succeeded"], "round {round}");
        let deltas: Vec<&str> = events.iter().filter_map(|f| f.data["delta"].as_str()).collect();
        assert_eq!(deltas, [format!("r{round}d0"), format!("r{round}d1"), format!("r{round}d2")]);
        assert_eq!(frames.last().unwrap().event, "done");
    }
}

/// More watched jobs than one invocation may make subrequests for: each hub
/// is rung once, the rest relayed, and every subscriber hears its job end.
#[tokio::test]
async fn one_batch_rings_every_watched_hub_once_past_the_subrequest_budget() {
    let executor = unique("fanout");
    for _ in 0..60 {
        assign(&executor, json!({})).await;
    }
    let claimed = stack()
        .client()
        .post_ok("/api/collab/task.claim", &json!({"executorId": executor, "workerId": "w", "limit": 60}))
        .await;
    let jobs: Vec<(String, Value)> = claimed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["id"].as_str().unwrap().to_string(), j["leaseToken"].clone()))
        .collect();
    assert_eq!(jobs.len(), 60);
    let mut streams = Vec::new();
    for (job, _) in &jobs {
        streams.push(subscribe(job).await);
    }
    for (job, _) in &jobs {
        until_watched(job).await;
    }
    let results: Vec<Value> = jobs
        .iter()
        .map(|(id, token)| json!({"jobId": id, "type": "listen.job", "ok": true, "leaseToken": token}))
        .collect();
    let reply = stack().client().post("/api/collab/task.result", &json!({"results": results})).await;
    assert_eq!((reply.status, doorbells(&reply)), (200, 60));
    let ends = futures::future::join_all(streams.iter_mut().map(|s| s.to_end(DEADLINE))).await;
    for frames in ends {
        let kinds: Vec<&str> = frames.iter().map(|f| f.event.as_str()).filter(|e| *e != "ping").collect();
        assert_eq!(kinds[kinds.len() - 2..], ["succeeded", "done"]);
    }
}

#[tokio::test]
async fn result_with_next_records_the_result_and_claims_the_next_job_in_one_answer() {
    let client = stack().client();
    let executor = unique("next");
    let first = assign(&executor, json!({"priority": 10, "maxAttempts": 1})).await;
    let second = assign(&executor, json!({"priority": 5})).await;
    let third = assign(&executor, json!({})).await;
    let (job, token) = claim(&executor, "w1").await;
    assert_eq!(job, first);

    // No `next`: the answer is as it always was, and nothing is claimed.
    let plain = client
        .post_ok(
            "/api/collab/task.result",
            &json!({"jobId": job, "type": "listen.job", "ok": false, "leaseToken": token}),
        )
        .await;
    assert_eq!(plain, json!({"ok": true, "status": "dead", "nextRunAt": null}));
    assert_eq!(job_status(&second).await, "queued");

    let (job, token) = claim(&executor, "w1").await;
    assert_eq!(job, second);
    let body =
        json!({"jobId": job, "type": "listen.job", "ok": true, "leaseToken": token, "result": {"n": 2}, "next": {}});
    let answer = client.post_ok("/api/collab/task.result", &body).await;
    assert_eq!((answer["ok"].clone(), answer["status"].clone()), (json!(true), json!("succeeded")));
    let next = &answer["job"];
    assert_eq!(next["id"], json!(third));
    assert_eq!((next["status"].clone(), next["worker_id"].clone()), (json!("running"), json!("w1")));
    assert!(next["leaseToken"].is_string() && next.get("watched").is_none());
    let stored: Value = sql_one("SELECT result FROM cogo.jobs WHERE id = $1::text::uuid", &[&second]).await;
    assert_eq!(stored, json!({"n": 2}));

    // A stale lease token: 409, no result recorded, nothing claimed.
    let fourth = assign(&executor, json!({})).await;
    let stale = json!({"jobId": third, "type": "listen.job", "ok": true,
                       "leaseToken": "00000000-0000-4000-8000-000000000000", "next": {"limit": 5}});
    let refused = client.post("/api/collab/task.result", &stale).await;
    assert_eq!((refused.status, refused.json()["error"]["code"].clone()), (409, json!("lease_lost")));
    assert_eq!((job_status(&third).await, job_status(&fourth).await), ("running".into(), "queued".into()));

    // With next.limit the claimed jobs come as a list, for the batch form too.
    let token = next["leaseToken"].clone();
    let batch = json!({"results": [{"jobId": third, "type": "listen.job", "ok": true, "leaseToken": token}],
                       "next": {"limit": 5, "leaseSeconds": 30}});
    let answer = client.post_ok("/api/collab/task.result", &batch).await;
    assert_eq!(answer["results"][0]["status"], json!("succeeded"));
    let jobs = answer["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["id"], json!(fourth));
    assert!(answer.get("job").is_none());

    // A batch whose only item is stale claims nothing.
    let fifth = assign(&executor, json!({})).await;
    let stale_batch = json!({"results": [{"jobId": fourth, "type": "listen.job", "ok": true,
                             "leaseToken": "00000000-0000-4000-8000-000000000000"}], "next": {}});
    let answer = client.post_ok("/api/collab/task.result", &stale_batch).await;
    assert_eq!(answer["results"][0]["ok"], json!(false));
    assert_eq!(answer["job"], Value::Null);
    assert_eq!(job_status(&fifth).await, "queued");

    let bad = client
        .post("/api/collab/task.result", &json!({"jobId": fourth, "type": "t", "ok": true, "next": {"limit": 0}}))
        .await;
    assert_eq!((bad.status, bad.json()["error"]["details"]["field"].clone()), (400, json!("next.limit")));
    assert_eq!(job_status(&fourth).await, "running");
}

async fn long_poll(executor: &str, extra: Value) -> (Value, Duration) {
    let mut body = json!({"executorId": executor, "workerId": "poller"});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let start = Instant::now();
    let answer = stack().client().post_ok("/api/collab/task.claim", &body).await;
    (answer, start.elapsed())
}

#[tokio::test]
async fn a_long_poll_answers_at_once_when_a_job_is_ready_and_empty_when_the_wait_ends() {
    let executor = unique("poll-ready");
    let job = assign(&executor, json!({})).await;
    let (answer, _) = long_poll(&executor, json!({"waitSeconds": 20})).await;
    assert_eq!(answer["job"]["id"], json!(job));

    let (answer, waited) = long_poll(&executor, json!({"waitSeconds": 1, "limit": 3})).await;
    assert_eq!(answer, json!({"jobs": []}));
    assert!(waited >= Duration::from_millis(900), "answered after {waited:?}");

    let bad = stack()
        .client()
        .post("/api/collab/task.claim", &json!({"executorId": executor, "workerId": "w", "waitSeconds": 21}))
        .await;
    assert_eq!((bad.status, bad.json()["error"]["details"]["field"].clone()), (400, json!("waitSeconds")));
}

#[tokio::test]
async fn a_waiting_claim_gets_a_job_assigned_meanwhile_and_only_of_its_type_prefix() {
    let executor = unique("poll-wake");
    let poll = tokio::spawn({
        let executor = executor.clone();
        async move { long_poll(&executor, json!({"waitSeconds": 20, "typePrefix": "render."})).await }
    });
    until_waiting(&executor).await;
    let other = assign(&executor, json!({"type": "other.job"})).await;
    let assigned = Instant::now();
    let reply =
        stack().client().post("/api/collab/task.assign", &json!({"type": "render.page", "executorId": executor})).await;
    assert_eq!(doorbells(&reply), 1, "the claim hub is rung when claims wait");
    let (answer, _) = poll.await.unwrap();
    let heard = assigned.elapsed();
    assert_eq!(answer["job"]["id"], reply.json()["jobId"]);
    assert!(heard < Duration::from_secs(1), "answered {heard:?} after the assign");
    assert_eq!(job_status(&other).await, "queued");
}

#[tokio::test]
async fn a_job_scheduled_for_later_or_retried_wakes_a_waiter_when_due() {
    let executor = unique("poll-due");
    let run_at = cogo_dev::token::unix_now() + 2;
    let run_at = sql_one::<String>(
        "SELECT to_char(to_timestamp($1::text::bigint), 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
        &[&run_at.to_string()],
    )
    .await;
    let job = assign(&executor, json!({"runAt": run_at, "backoffBaseMs": 300, "backoffCapMs": 300})).await;
    let (answer, waited) = long_poll(&executor, json!({"waitSeconds": 15})).await;
    assert_eq!(answer["job"]["id"], json!(job));
    assert!(waited < Duration::from_secs(10), "woke after {waited:?}");

    // A failed attempt goes back with a backoff; the waiter gets it when due.
    let token = answer["job"]["leaseToken"].clone();
    let poll = tokio::spawn({
        let executor = executor.clone();
        async move { long_poll(&executor, json!({"waitSeconds": 15})).await }
    });
    until_waiting(&executor).await;
    let failed = json!({"jobId": job, "type": "listen.job", "ok": false, "leaseToken": token, "error": "flaky"});
    stack().client().post_ok("/api/collab/task.result", &failed).await;
    let (answer, _) = poll.await.unwrap();
    assert_eq!((answer["job"]["id"].clone(), answer["job"]["attempts"].clone()), (json!(job), json!(2)));
}

/// The reaper's requeue wakes a waiter; and a job claimed for a client
/// that left while waiting is not lost: its lease ends and it is claimed again.
#[tokio::test]
async fn a_job_claimed_for_a_client_that_left_comes_back_when_its_lease_ends() {
    let executor = unique("poll-gone");
    let gone = reqwest::Client::builder().timeout(Duration::from_millis(1500)).build().unwrap();
    let request = gone
        .post(stack().url("/api/collab/task.claim"))
        .header("authorization", service())
        .json(&json!({"executorId": executor, "workerId": "gone", "waitSeconds": 20, "leaseSeconds": 15}))
        .send();
    let left = tokio::spawn(request);
    until_waiting(&executor).await;
    assert!(left.await.unwrap().is_err(), "the client gave up");
    let job = assign(&executor, json!({})).await;
    // The hub may have claimed it for the departed client: once the lease
    // ends, the reaper puts it back, and a waiter gets it.
    let poll = tokio::spawn({
        let executor = executor.clone();
        async move { long_poll(&executor, json!({"waitSeconds": 20})).await }
    });
    let start = Instant::now();
    loop {
        match job_status(&job).await.as_str() {
            "running" => {
                let worker: String =
                    sql_one("SELECT worker_id FROM cogo.jobs WHERE id = $1::text::uuid", &[&job]).await;
                if worker == "poller" {
                    break;
                }
                sql_one::<i64>(
                    "WITH u AS (UPDATE cogo.jobs SET lease_until = now() - interval '1 second'
                                WHERE id = $1::text::uuid AND worker_id = 'gone' RETURNING 1) SELECT count(*) FROM u",
                    &[&job],
                )
                .await;
                assert_eq!(stack().client().get("/functions/v1/leases-release").await.status, 200);
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
        assert!(start.elapsed() < DEADLINE, "the job never reached a live worker");
    }
    let (answer, _) = poll.await.unwrap();
    assert_eq!(answer["job"]["id"], json!(job));
}
