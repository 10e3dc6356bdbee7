//! Workers long-polling `task.claim` (`waitSeconds`): how soon an assigned
//! job reaches a waiting worker, and what idle waiting costs PostgREST.

use std::time::{Duration, Instant};

use cogo_tests::{unique, Stack};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::caller::{Caller, Path};
use crate::seed::fresh_tables;
use crate::stats::{ms_since, percentile};
use crate::summary::Summary;

const WAIT_SECONDS: u64 = 20;
const LATENCY_TARGET: &str = "long-poll assign -> claim p50 < 20 ms";
const IDLE_TARGET: &str = "100 idle long-pollers <= 10 PostgREST req/s";

/// `Err` unless task.claim waits: on an empty queue, `waitSeconds: 1` must
/// take about a second.
async fn probe(stack: &Stack) -> Result<(), String> {
    let t = Instant::now();
    let body = json!({"executorId": unique("probe"), "workerId": "w", "waitSeconds": 1});
    Caller::new(stack, Path::Edge).edge("/api/collab/task.claim", body).await?;
    let ms = ms_since(t);
    if ms < 500.0 {
        return Err(format!("`waitSeconds` not implemented: task.claim answered an empty queue in {ms:.0} ms"));
    }
    Ok(())
}

/// `n` workers, each claiming with `waitSeconds` in a loop and completing
/// what it gets; a worker reports each job's id and arrival on `arrivals`
/// and stops after a job whose payload says `stop`. With `staggered`, their
/// first claims spread over one wait, as a fleet's do once running.
fn start_workers(
    stack: &Stack,
    executor: &str,
    n: usize,
    arrivals: Option<mpsc::UnboundedSender<(Value, Instant)>>,
    staggered: bool,
) -> Vec<JoinHandle<()>> {
    (0..n)
        .map(|w| {
            let caller = Caller::new(stack, Path::Edge);
            let (executor, arrivals) = (executor.to_string(), arrivals.clone());
            let offset = if staggered { WAIT_SECONDS * 1000 * w as u64 / n as u64 } else { 0 };
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(offset)).await;
                loop {
                    let body =
                        json!({"executorId": executor, "workerId": format!("w{w}"), "waitSeconds": WAIT_SECONDS});
                    let job = caller.edge("/api/collab/task.claim", body).await.unwrap()["job"].clone();
                    let at = Instant::now();
                    if job.is_null() {
                        continue;
                    }
                    if let Some(arrivals) = &arrivals {
                        let _ = arrivals.send((job["id"].clone(), at));
                    }
                    let result =
                        json!({"jobId": job["id"], "type": job["type"], "ok": true, "leaseToken": job["leaseToken"]});
                    caller.edge("/api/collab/task.result", result).await.unwrap();
                    if job["payload"]["stop"] == true {
                        return;
                    }
                }
            })
        })
        .collect()
}

async fn assign(caller: &Caller, executor: &str, payload: Value) -> Value {
    let body = json!({"type": "bench.poll", "executorId": executor, "payload": payload});
    caller.edge("/api/collab/task.assign", body).await.unwrap()["jobId"].clone()
}

/// One `stop` job per worker: each worker takes one and ends.
async fn stop_workers(stack: &Stack, executor: &str, workers: Vec<JoinHandle<()>>) {
    let caller = Caller::new(stack, Path::Edge);
    futures::future::join_all((0..workers.len()).map(|_| assign(&caller, executor, json!({"stop": true})))).await;
    tokio::time::timeout(Duration::from_secs(2 * WAIT_SECONDS), futures::future::join_all(workers))
        .await
        .expect("every long-polling worker took its stop job");
}

/// p50/p99 from sending task.assign to a waiting worker's claim answer
/// carrying the job, one job at a time, with 10 workers waiting.
async fn assign_to_claim(stack: &Stack, samples: usize) -> (f64, f64) {
    let executor = unique("long-poll");
    let (tx, mut arrivals) = mpsc::unbounded_channel();
    let workers = start_workers(stack, &executor, 10, Some(tx), false);
    let caller = Caller::new(stack, Path::Edge);
    let mut ms = Vec::with_capacity(samples);
    // The first few warm the connections.
    for i in 0..samples + 10 {
        let sent = Instant::now();
        let id = assign(&caller, &executor, json!({})).await;
        let arrived = loop {
            let (got, at) = tokio::time::timeout(Duration::from_secs(2 * WAIT_SECONDS), arrivals.recv())
                .await
                .expect("a waiting worker got the job")
                .expect("workers running");
            if got == id {
                break at;
            }
        };
        if i >= 10 {
            ms.push(arrived.duration_since(sent).as_secs_f64() * 1000.0);
        }
    }
    stop_workers(stack, &executor, workers).await;
    (percentile(&ms, 0.5), percentile(&ms, 0.99))
}

/// Requests the gateway has received; `Err` for a PostgREST that is not
/// the dev gateway.
async fn gateway_requests(stack: &Stack) -> Result<u64, String> {
    let root = stack.postgrest_url().trim_end_matches("/rest/v1").to_string();
    let url = format!("{root}{}", cogo_dev::gateway::REQUEST_COUNTER);
    let reply = reqwest::get(&url).await.map_err(|e| e.to_string())?;
    let counted = reply.json::<Value>().await.ok().and_then(|v| v["requests"].as_u64());
    counted.ok_or_else(|| "only the dev gateway counts its requests".to_string())
}

/// Requests per second reaching PostgREST while `workers` long-poll an
/// empty queue for `window`, their first claims included.
async fn idle_cost(stack: &Stack, workers: usize, window: Duration) -> Result<f64, String> {
    let executor = unique("idle");
    let waiting = start_workers(stack, &executor, workers, None, true);
    // The clock is what is measured: one wait for every worker to be
    // polling (staggered), then the window.
    tokio::time::sleep(Duration::from_secs(WAIT_SECONDS)).await;
    let before = gateway_requests(stack).await?;
    tokio::time::sleep(window).await;
    let after = gateway_requests(stack).await;
    stop_workers(stack, &executor, waiting).await;
    Ok((after? - before) as f64 / window.as_secs_f64())
}

pub async fn report(stack: &Stack, quick: bool, summary: &mut Summary) {
    fresh_tables().await;
    println!("\nlong-polling workers (task.claim waitSeconds {WAIT_SECONDS})");
    if let Err(why) = probe(stack).await {
        println!("  skipped: {why}");
        summary.unmeasured(LATENCY_TARGET, &why);
        summary.unmeasured(IDLE_TARGET, &why);
        return;
    }
    let samples = if quick { 100 } else { 300 };
    let (p50, p99) = assign_to_claim(stack, samples).await;
    println!("{:<48} {p50:>8.2}ms p50 {p99:>8.2}ms p99", format!("assign -> claim, 10 workers, {samples} jobs"));
    summary.check(LATENCY_TARGET, format!("{p50:.2} ms"), p50 < 20.0);

    let window = Duration::from_secs(if quick { 10 } else { 30 });
    match idle_cost(stack, 100, window).await {
        Ok(rps) => {
            println!(
                "{:<48} {rps:>8.1} PostgREST requests/s",
                format!("100 workers idle, steady state over {} s", window.as_secs())
            );
            summary.check(IDLE_TARGET, format!("{rps:.1} req/s"), rps <= 10.0);
        }
        Err(why) => {
            println!("  idle cost skipped: {why}");
            summary.unmeasured(IDLE_TARGET, &why);
        }
    }
}
