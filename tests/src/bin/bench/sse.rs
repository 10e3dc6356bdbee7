//! The time from a `task.progress` request to its SSE frame, at 1 and at
//! 100 subscribers.

use std::time::{Duration, Instant};

use cogo_tests::{unique, EventStream, Stack};
use serde_json::json;

use crate::stats::percentile;

/// Milliseconds from sending a `task.progress` to each of `subscribers`
/// receiving its frame, over `rounds` progress reports (one at a time).
async fn sse_latency(stack: &Stack, subscribers: usize, rounds: usize) -> Vec<f64> {
    let client = stack.client();
    let executor = unique("sse-bench");
    client.post_ok("/api/collab/task.assign", &json!({"type": "bench.sse", "executorId": executor})).await;
    let job = client.post_ok("/api/collab/task.claim", &json!({"executorId": executor, "workerId": "w"})).await["job"]
        .clone();
    let (id, token) = (job["id"].as_str().unwrap().to_string(), job["leaseToken"].clone());
    let (arrivals, mut received) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    for _ in 0..subscribers {
        let resp = reqwest::Client::new()
            .get(stack.url(&format!("/functions/v1/job-events?id={id}")))
            .header("authorization", format!("Bearer {}", stack.service_key))
            .send()
            .await
            .unwrap();
        let mut stream = EventStream::new(resp);
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            while let Some(frame) = stream.next().await {
                if let Some(round) = frame.data["delta"].as_str().and_then(|d| d.parse::<usize>().ok()) {
                    let _ = arrivals.send((round, Instant::now()));
                }
            }
        });
    }
    // Until every subscriber hears a warm-up report, the streams are not all open.
    let mut ms = Vec::with_capacity(subscribers * rounds);
    for round in 0..=rounds {
        let sent = Instant::now();
        let body = json!({"jobId": id, "leaseToken": token, "delta": round.to_string()});
        client.post_ok("/api/collab/task.progress", &body).await;
        let mut heard = 0;
        while heard < subscribers {
            let (r, at) = tokio::time::timeout(Duration::from_secs(30), received.recv()).await.unwrap().unwrap();
            if r == round {
                heard += 1;
                if round > 0 {
                    ms.push(at.duration_since(sent).as_secs_f64() * 1000.0);
                }
            }
        }
    }
    client
        .post_ok("/api/collab/task.result", &json!({"jobId": id, "type": "bench.sse", "ok": true, "leaseToken": token}))
        .await;
    ms
}

pub async fn report(stack: &Stack, quick: bool) {
    let rounds = if quick { 50 } else { 200 };
    println!("\n{:<34} {:>12} {:>12}", "task.progress -> SSE frame", "p50", "p99");
    let mut p50s = Vec::new();
    for subscribers in [1, 100] {
        let ms = sse_latency(stack, subscribers, rounds).await;
        let (p50, p99) = (percentile(&ms, 0.5), percentile(&ms, 0.99));
        println!("{:<34} {p50:>10.2}ms {p99:>10.2}ms", format!("{subscribers} subscriber(s), {rounds} reports"));
        p50s.push(p50);
    }
    println!("\nSSE p50 ratio 100/1 subscribers: {:.2}x", p50s[1] / p50s[0]);
}
