//! Live job events over SSE through the real stack: the job's hub (a
//! Durable Object) replays committed events from the database and pushes
//! new ones when the functions that made them ring its doorbell.

use std::sync::OnceLock;
use std::time::Duration;

use cogo_tests::{unique, Client, EventStream, Frame, Stack};
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(20);

fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK
        .get_or_init(|| Stack::builder().var("SSE_KEEPALIVE_MS", "300").var("WORKERS_ACTIVE_WINDOW_MS", "1500").start())
}

fn user(sub: &str) -> String {
    let now = cogo_dev::token::unix_now();
    format!("Bearer {}", stack().token(json!({"role": "authenticated", "sub": sub, "exp": now + 600})))
}

async fn subscribe(authorization: &str, job: &str, last_event_id: Option<i64>) -> EventStream {
    let mut req = reqwest::Client::new()
        .get(stack().url(&format!("/functions/v1/job-events?id={job}")))
        .header("authorization", authorization)
        .header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id.to_string());
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200, "subscribe to {job}");
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    assert_eq!(resp.headers()["cache-control"], "no-cache");
    EventStream::new(resp)
}

/// A job of `owner`, claimed by a worker: (job id, lease token).
async fn claimed_job(owner: &Client<'_>) -> (String, String) {
    let executor = unique("sse");
    owner.post_ok("/api/collab/task.assign", &json!({"type": "chat.message", "executorId": executor})).await;
    let job =
        stack().client().post_ok("/api/collab/task.claim", &json!({"executorId": executor, "workerId": "w"})).await
            ["job"]
            .clone();
    (job["id"].as_str().unwrap().to_string(), job["leaseToken"].as_str().unwrap().to_string())
}

/// The worker side: `count` deltas from `from`, then (if `finish`) the result.
async fn report(job: &str, token: &str, from: usize, count: usize, finish: bool) {
    let worker = stack().client();
    for i in from..from + count {
        let body = json!({"jobId": job, "leaseToken": token, "delta": format!("d{i}")});
        worker.post_ok("/api/collab/task.progress", &body).await;
    }
    if finish {
        let body =
            json!({"jobId": job, "type": "chat.message", "ok": true, "leaseToken": token, "result": {"text": "ok"}});
        worker.post_ok("/api/collab/task.result", &body).await;
    }
}

fn deltas(frames: &[Frame]) -> Vec<String> {
    frames.iter().filter(|f| f.event == "progress").map(|f| f.data["delta"].as_str().unwrap().to_string()).collect()
}

fn expected(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("d{i}")).collect()
}

/// Frames that carry job events have strictly increasing ids.
fn assert_increasing(frames: &[Frame]) {
    let ids: Vec<i64> = frames.iter().filter_map(|f| f.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids not strictly increasing: {ids:?}");
}

#[tokio::test]
async fn fifty_deltas_arrive_in_order_then_done() {
    let alice = user(&unique("alice"));
    let (job, token) = claimed_job(&stack().client_with(Some(&alice))).await;
    let mut stream = subscribe(&alice, &job, None).await;
    let first = stream.next().await.unwrap();
    assert_eq!((first.event.as_str(), first.data["job_id"].as_str()), ("meta", Some(job.as_str())));
    assert_eq!(first.data["envelope_version"], "1");
    report(&job, &token, 0, 50, true).await;
    let frames: Vec<Frame> = stream.to_end(DEADLINE).await.into_iter().filter(|f| f.event != "ping").collect();
    let kinds: Vec<&str> = frames.iter().map(|f| f.event.as_str()).collect();
    assert_eq!(&kinds[..2], ["created", "claimed"]);
    assert_eq!(&kinds[kinds.len() - 2..], ["succeeded", "done"]);
    assert_eq!(deltas(&frames), expected(0..50));
    assert_increasing(&frames);
    assert_eq!(frames.last().unwrap().data["status"], "succeeded");
}

#[tokio::test]
async fn reconnecting_with_last_event_id_resumes_without_gap_or_duplicate() {
    let bob = user(&unique("bob"));
    let (job, token) = claimed_job(&stack().client_with(Some(&bob))).await;
    let mut stream = subscribe(&bob, &job, None).await;
    report(&job, &token, 0, 20, false).await;
    let mut before = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while deltas(&before).len() < 20 {
            before.push(stream.next().await.expect("the stream stays open"));
        }
    })
    .await
    .expect("20 deltas arrive");
    drop(stream); // the client goes away
    let last = before.iter().filter_map(|f| f.id).max().unwrap();
    report(&job, &token, 20, 30, true).await;
    let after = subscribe(&bob, &job, Some(last)).await.to_end(DEADLINE).await;
    assert!(after.iter().filter_map(|f| f.id).all(|id| id > last), "nothing at or before Last-Event-ID is repeated");
    let mut all = deltas(&before);
    all.extend(deltas(&after));
    assert_eq!(all, expected(0..50));
    assert_eq!(after.last().unwrap().event, "done");
}

#[tokio::test]
async fn two_subscribers_both_receive_every_event() {
    let carol = user(&unique("carol"));
    let (job, token) = claimed_job(&stack().client_with(Some(&carol))).await;
    let (mut one, mut two) = (subscribe(&carol, &job, None).await, subscribe(&carol, &job, None).await);
    report(&job, &token, 0, 10, true).await;
    let (one, two) = tokio::join!(one.to_end(DEADLINE), two.to_end(DEADLINE));
    let events = |frames: &[Frame]| -> Vec<(Option<i64>, String)> {
        frames.iter().filter(|f| f.event != "ping").map(|f| (f.id, f.event.clone())).collect()
    };
    assert_eq!(events(&one), events(&two));
    assert_eq!(deltas(&one), expected(0..10));
}

#[tokio::test]
async fn a_finished_job_streams_its_history_and_closes() {
    let dave = user(&unique("dave"));
    let (job, token) = claimed_job(&stack().client_with(Some(&dave))).await;
    report(&job, &token, 0, 3, true).await;
    let frames = subscribe(&dave, &job, None).await.to_end(DEADLINE).await;
    let kinds: Vec<&str> = frames.iter().map(|f| f.event.as_str()).filter(|k| *k != "ping").collect();
    assert_eq!(kinds, ["meta", "created", "claimed", "progress", "progress", "progress", "succeeded", "done"]);
}

#[tokio::test]
async fn a_browser_opens_a_job_stream_with_a_ticket_that_opens_nothing_else() {
    let (gina, hal) = (user(&unique("gina")), user(&unique("hal")));
    let (job, token) = claimed_job(&stack().client_with(Some(&gina))).await;
    report(&job, &token, 0, 1, true).await;
    let request = json!({"stream": "job-events", "jobId": job});
    let issued = stack().client_with(Some(&gina)).post_ok("/functions/v1/stream-ticket", &request).await;
    let url = issued["url"].as_str().unwrap().to_string();
    let ticket = issued["ticket"].as_str().unwrap().to_string();
    assert!(url.starts_with(&format!("/functions/v1/job-events?id={job}&ticket=")), "{url}");

    // As EventSource sends it: no header but Accept.
    let response =
        reqwest::Client::new().get(stack().url(&url)).header("accept", "text/event-stream").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let frames = EventStream::new(response).to_end(DEADLINE).await;
    let kinds: Vec<&str> = frames.iter().map(|f| f.event.as_str()).filter(|k| *k != "ping").collect();
    assert_eq!(kinds, ["meta", "created", "claimed", "progress", "succeeded", "done"]);

    // Someone else's job gets no ticket; this ticket opens no other job, no
    // other endpoint, and not once altered; and the long-lived token is never in a URL.
    let refused = stack().client_with(Some(&hal)).post("/functions/v1/stream-ticket", &request).await;
    assert_eq!((refused.status, refused.json()["error"]["code"].as_str()), (404, Some("job_not_found")));
    let (other, _) = claimed_job(&stack().client_with(Some(&gina))).await;
    let anon = stack().client_with(None);
    let elsewhere = anon.get(&format!("/functions/v1/job-events?id={other}&ticket={ticket}")).await;
    assert_eq!(
        (elsewhere.status, elsewhere.json()["error"]["code"].as_str()),
        (403, Some("ticket_not_for_this_stream"))
    );
    let not_a_stream = anon.get(&format!("/api/collab/job/{job}?ticket={ticket}")).await;
    assert_eq!((not_a_stream.status, not_a_stream.json()["error"]["code"].as_str()), (401, Some("invalid_ticket")));
    let altered = format!("{}A{}", &ticket[..10], &ticket[11..]);
    let tampered = anon.get(&format!("/functions/v1/job-events?id={job}&ticket={altered}")).await;
    assert_eq!((tampered.status, tampered.json()["error"]["code"].as_str()), (401, Some("invalid_ticket")));
    assert!(!url.contains(gina.trim_start_matches("Bearer ")));
    // A user may not open the workers' stream, so gets no ticket for it either.
    let workers = stack()
        .client_with(Some(&gina))
        .post("/functions/v1/stream-ticket", &json!({"stream": "workers-stream"}))
        .await;
    assert_eq!(workers.status, 403, "{}", workers.text);
    // A worker (whatever its executor) does not read users' job streams; no credential gets nothing.
    let now = cogo_dev::token::unix_now();
    let worker = stack().token(json!({"role": "worker", "sub": "w", "executor_id": "other", "exp": now + 600}));
    let as_worker =
        stack().client_with(Some(&format!("Bearer {worker}"))).post("/functions/v1/stream-ticket", &request).await;
    assert_eq!(as_worker.status, 403, "{}", as_worker.text);
    let anonymous = anon.post("/functions/v1/stream-ticket", &request).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text);
}

#[tokio::test]
async fn someone_elses_job_is_404_and_keepalives_flow_while_waiting() {
    let (erin, frank) = (user(&unique("erin")), user(&unique("frank")));
    let (job, _) = claimed_job(&stack().client_with(Some(&erin))).await;
    let reply = stack().client_with(Some(&frank)).get(&format!("/functions/v1/job-events?id={job}")).await;
    assert_eq!((reply.status, reply.json()["error"]["code"].as_str()), (404, Some("job_not_found")));
    let bad = stack().client_with(Some(&erin)).get(&format!("/functions/v1/job-events?id={job}&after=x")).await;
    assert_eq!(bad.status, 400);
    // Nothing happens to the job: the stream stays open with pings (every 300 ms here).
    let mut stream = subscribe(&erin, &job, None).await;
    let pings = tokio::time::timeout(DEADLINE, async {
        let mut pings = 0;
        while pings < 2 {
            let frame = stream.next().await.expect("open");
            if frame.event == "ping" {
                pings += 1;
            }
        }
        pings
    })
    .await
    .expect("pings arrive");
    assert_eq!(pings, 2);
}

#[tokio::test]
async fn the_reaper_notifies_subscribers() {
    let grace = user(&unique("grace"));
    let (job, _) = claimed_job(&stack().client_with(Some(&grace))).await;
    let mut stream = subscribe(&grace, &job, None).await;
    cogo_tests::sql()
        .await
        .execute("UPDATE cogo.jobs SET lease_until = now() - interval '1 second' WHERE id = $1::text::uuid", &[&job])
        .await
        .unwrap();
    stack().client().get("/functions/v1/leases-release").await;
    let found = tokio::time::timeout(DEADLINE, async {
        loop {
            let frame = stream.next().await.expect("open");
            if frame.event == "lease_expired" {
                return frame.data;
            }
        }
    })
    .await
    .expect("lease_expired arrives");
    assert_eq!(found["status"], Value::from("queued"));
}

async fn chat(authorization: &str, body: &Value, last_event_id: Option<i64>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(stack().url("/functions/v1/chat"))
        .header("authorization", authorization)
        .header("accept", "text/event-stream")
        .json(body);
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id.to_string());
    }
    req.send().await.unwrap()
}

/// The agent side of a chat: claims the message of `agent`, reports
/// `deltas`, and finishes with a usage count.
async fn agent_answers(
    agent: &str,
    from: usize,
    count: usize,
    finish: bool,
    lease: Option<(String, String)>,
) -> (String, String) {
    let worker = stack().client();
    let (job, token) = match lease {
        Some(lease) => lease,
        None => {
            let job = tokio::time::timeout(DEADLINE, async {
                loop {
                    let claimed = worker
                        .post_ok("/api/collab/task.claim", &json!({"executorId": agent, "workerId": "agent"}))
                        .await;
                    if !claimed["job"].is_null() {
                        return claimed["job"].clone();
                    }
                }
            })
            .await
            .expect("the message reaches the agent");
            assert_eq!(job["type"], "chat.message");
            (job["id"].as_str().unwrap().to_string(), job["leaseToken"].as_str().unwrap().to_string())
        }
    };
    report(&job, &token, from, count, false).await;
    if finish {
        let result = json!({"message_id": "m-1", "usage": {"prompt_tokens": 7, "completion_tokens": 50}});
        let body = json!({"jobId": job, "type": "chat.message", "ok": true, "leaseToken": token, "result": result});
        worker.post_ok("/api/collab/task.result", &body).await;
    }
    (job, token)
}

#[tokio::test]
async fn chat_streams_fifty_deltas_then_done_and_resumes_after_a_disconnect() {
    let user = user(&unique("chatter"));
    let agent = unique("agent");
    let body = json!({"payload": {"projectId": "p1", "text": "hello", "agentId": agent, "request_id": "r-1",
                                  "idempotency_key": unique("msg")}});
    let response = chat(&user, &body, None).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let mut stream = EventStream::new(response);
    let ready = stream.next().await.unwrap();
    assert_eq!(ready.event, "ready");
    let trace = ready.data["trace_id"].as_str().unwrap().to_string();

    let lease = agent_answers(&agent, 0, 20, false, None).await;
    assert_eq!(lease.0, trace, "the trace id is the job's id");
    let mut first = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while first.iter().filter(|f: &&Frame| f.event == "chat.delta").count() < 20 {
            first.push(stream.next().await.expect("open"));
        }
    })
    .await
    .expect("20 deltas");
    drop(stream);
    let last = first.iter().filter_map(|f| f.id).max().unwrap();
    agent_answers(&agent, 20, 30, true, Some(lease)).await;
    // The same message again (same idempotency key) with Last-Event-ID: the rest of it.
    let rest = EventStream::new(chat(&user, &body, Some(last)).await).to_end(DEADLINE).await;
    let mut all: Vec<Frame> = first;
    all.extend(rest.clone());
    let deltas: Vec<&str> =
        all.iter().filter(|f| f.event == "chat.delta").map(|f| f.data["delta"].as_str().unwrap()).collect();
    assert_eq!(deltas, expected(0..50).iter().map(String::as_str).collect::<Vec<_>>());
    let seqs: Vec<i64> =
        all.iter().filter(|f| f.event == "chat.delta").map(|f| f.data["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seq strictly increasing");
    assert!(all.iter().filter(|f| f.event == "chat.delta").all(|f| f.data["request_id"] == "r-1"));
    let done = rest.last().unwrap();
    assert_eq!(done.event, "chat.done");
    assert_eq!(done.data["message_id"], "m-1");
    assert_eq!(done.data["usage"], json!({"prompt_tokens": 7, "completion_tokens": 50}));
    assert_eq!(done.data["trace_id"], trace.as_str());
    assert!(done.data["total_ms"].as_i64().unwrap() >= 0);
}

#[tokio::test]
async fn chat_without_a_stream_hands_off_and_trace_status_follows() {
    let poller = user(&unique("poller"));
    let client = stack().client_with(Some(&poller));
    let reply = client.post("/functions/v1/chat", &json!({"session_id": "s1", "content": "hi"})).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let handoff = reply.json();
    assert_eq!((handoff["ok"].as_bool(), handoff["status"].as_str()), (Some(true), Some("handoff")));
    let trace = handoff["trace_id"].as_str().unwrap().to_string();
    let status = client.get(&format!("/functions/v1/trace-status?trace_id={trace}")).await.json();
    assert_eq!(status["status"], "pending");
    assert_eq!(status["events"][0]["event_type"], "created");
    // The default agent pool takes it (this is the only test using it).
    agent_answers("chat", 0, 2, true, None).await;
    let status = client.get(&format!("/functions/v1/trace-status?trace_id={trace}")).await.json();
    assert_eq!(status["status"], "completed");
    assert_eq!(status["result"]["message_id"], "m-1");
    let someone_else = user(&unique("someone-else"));
    let other =
        stack().client_with(Some(&someone_else)).get(&format!("/functions/v1/trace-status?trace_id={trace}")).await;
    assert_eq!(other.status, 404);
    let bad = client.post("/functions/v1/chat", &json!({"session_id": "s1"})).await;
    assert_eq!((bad.status, bad.json()["error"]["code"].as_str()), (400, Some("missing_field")));
}

async fn open(authorization: &str, path: &str, last_event_id: Option<i64>) -> EventStream {
    let mut req = reqwest::Client::new().get(stack().url(path)).header("authorization", authorization);
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id.to_string());
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    EventStream::new(resp)
}

/// The next frame that is not a keepalive.
async fn next_message(stream: &mut EventStream) -> Frame {
    tokio::time::timeout(DEADLINE, async {
        loop {
            let frame = stream.next().await.expect("open");
            if frame.event != "keepalive" {
                return frame;
            }
        }
    })
    .await
    .expect("a message arrives")
}

#[tokio::test]
async fn agents_broadcast_on_their_channel_and_reconnects_catch_up() {
    let agent = unique("agent-b");
    let agent_auth = format!(
        "Bearer {}",
        stack().token(json!({"role": "worker", "sub": agent, "exp": cogo_dev::token::unix_now() + 600}))
    );
    // An agent's channel is for that agent and the platform: the platform watches.
    let watcher = format!("Bearer {}", stack().service_key);
    let channel = format!("agents:{agent}");
    let mut stream = open(&watcher, &format!("/functions/v1/channel?name={channel}"), None).await;
    assert_eq!(next_message(&mut stream).await.event, "ready");
    let speaker = stack().client_with(Some(&agent_auth));
    let status = json!({"channel": channel, "type": "agent.status", "payload": {"state": "busy"}});
    let sent = speaker.post_ok("/functions/v1/broadcast", &status).await;
    let heard = next_message(&mut stream).await;
    assert_eq!((heard.event.as_str(), heard.id), ("agent.status", sent["seq"].as_i64()));
    assert_eq!(heard.data["payload"], json!({"state": "busy"}));
    drop(stream);
    let metrics = json!({"channel": channel, "type": "worker.metrics", "payload": {"cpu": 0.5}});
    speaker.post_ok("/functions/v1/broadcast", &metrics).await;
    let mut again = open(&watcher, &format!("/functions/v1/channel?name={channel}"), Some(heard.id.unwrap())).await;
    assert_eq!(next_message(&mut again).await.event, "ready");
    assert_eq!(next_message(&mut again).await.event, "worker.metrics", "the missed message is replayed");

    // Only that agent (or the platform) speaks there; only the platform announces.
    let other = json!({"channel": format!("agents:{}", unique("other")), "type": "agent.status"});
    assert_eq!(speaker.post("/functions/v1/broadcast", &other).await.status, 403);
    let announce = json!({"channel": "system:events", "type": "maintenance", "payload": {"at": "soon"}});
    assert_eq!(speaker.post("/functions/v1/broadcast", &announce).await.status, 403);
    assert_eq!(stack().client().post_ok("/functions/v1/broadcast", &announce).await["channel"], "system:events");
    let big = json!({"channel": channel, "type": "x", "payload": "a".repeat(20_000)});
    assert_eq!(speaker.post("/functions/v1/broadcast", &big).await.status, 413);
    let bad = stack().client().get("/functions/v1/channel?name=nowhere").await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn workers_stream_shows_joins_updates_and_leaves() {
    let service = format!("Bearer {}", stack().service_key);
    let mut stream = open(&service, "/functions/v1/workers-stream", None).await;
    assert_eq!(next_message(&mut stream).await.event, "ready");
    let executor = unique("presence");
    let beat = json!({"agentId": executor, "executorId": executor, "status": "idle"});
    stack().client().post_ok("/api/collab/workers/heartbeat", &beat).await;
    let mine = |f: &Frame| f.data["payload"]["worker_id"] == executor.as_str();
    let mut seen = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while !seen.iter().any(|f: &Frame| f.event == "worker.left" && mine(f)) {
            let frame = next_message(&mut stream).await;
            if mine(&frame) && seen.is_empty() {
                // A second heartbeat is an update.
                stack().client().post_ok("/api/collab/workers/heartbeat", &beat).await;
            }
            if mine(&frame) {
                seen.push(frame);
            }
        }
    })
    .await
    .expect("the worker joins, updates, then leaves once its heartbeat is older than the window");
    let kinds: Vec<&str> = seen.iter().map(|f| f.event.as_str()).collect();
    assert_eq!(kinds, ["worker.joined", "worker.updated", "worker.left"]);
    assert_eq!(seen[0].data["payload"]["status"], "idle");
}
