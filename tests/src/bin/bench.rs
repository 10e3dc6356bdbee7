//! Queue throughput and claim latency through the full local stack (the
//! release wasm in workerd, the gateway, PostgreSQL), the same loop against
//! the gateway's RPC directly, and the latency of the reads operators poll
//! (metrics-overview, jobs-recent) over 10k and 1M jobs, and the time from
//! a progress report to its SSE frame with 1 and 100 subscribers, and the
//! conversion time of each Figma fixture; figures and ratios from one run.
//!
//! `scripts/bench [--quick] [--reads | --sse | --figma]` (only the read
//! latencies, the progress-to-SSE-frame latencies, or the Figma conversions)

use std::time::{Duration, Instant};

use cogo_tests::{sql, unique, EventStream, Stack};
use serde_json::{json, Value};

#[derive(Clone, Copy, PartialEq)]
enum Path {
    /// workerd -> gateway -> PostgreSQL
    Edge,
    /// gateway -> PostgreSQL
    Direct,
}

struct Run {
    jobs: usize,
    elapsed: Duration,
    claim_ms: Vec<f64>,
}

impl Run {
    fn jobs_per_sec(&self) -> f64 {
        self.jobs as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&self, p: f64) -> f64 {
        percentile(&self.claim_ms, p)
    }
}

fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut v = samples.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Inserts `n` queued jobs for `executor` in one statement.
async fn seed(executor: &str, n: i64) {
    seed_with(
        "INSERT INTO cogo.jobs (type, executor_id, payload)
         SELECT 'bench.job', $1, jsonb_build_object('i', i) FROM generate_series(1, $2::bigint) i",
        executor,
        n,
    )
    .await;
}

/// Runs a seeding INSERT with triggers off (a million `created` events are
/// not what is measured), then adds the seeded jobs to the counters the
/// triggers would have kept.
async fn seed_with(insert: &str, executor_prefix: &str, n: i64) {
    let client = sql().await;
    client.batch_execute("SET session_replication_role = replica").await.unwrap();
    client.execute(insert, &[&executor_prefix, &n]).await.unwrap();
    client
        .execute(
            "INSERT INTO cogo.job_counts AS c (shard, type, executor_id, status, jobs, lost_leases)
             SELECT 0, type, executor_id, status, count(*), sum(lost_leases) FROM cogo.jobs
             WHERE starts_with(executor_id, $1) GROUP BY type, executor_id, status
             ON CONFLICT (shard, type, executor_id, status)
             DO UPDATE SET jobs = excluded.jobs, lost_leases = excluded.lost_leases",
            &[&executor_prefix],
        )
        .await
        .unwrap();
    client.batch_execute("ANALYZE cogo.jobs").await.unwrap();
}

struct Caller {
    http: reqwest::Client,
    path: Path,
    edge: String,
    postgrest: String,
    key: String,
}

impl Caller {
    fn new(stack: &Stack, path: Path) -> Caller {
        Caller {
            http: reqwest::Client::new(),
            path,
            edge: stack.base_url.clone(),
            postgrest: stack.postgrest_url(),
            key: stack.service_key.clone(),
        }
    }

    async fn post(&self, edge_path: &str, rpc: &str, body: Value) -> Value {
        let req = match self.path {
            Path::Edge => self
                .http
                .post(format!("{}{edge_path}", self.edge))
                .header("authorization", format!("Bearer {}", self.key)),
            Path::Direct => self
                .http
                .post(format!("{}/rpc/{rpc}", self.postgrest))
                .header("apikey", &self.key)
                .header("authorization", format!("Bearer {}", self.key))
                .header("content-profile", "cogo"),
        };
        let resp = req.json(&body).send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{edge_path}: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// Claims up to `limit`; returns (job id, lease token) pairs.
    async fn claim(&self, executor: &str, worker: &str, limit: i64) -> Vec<(Value, Value)> {
        let body = match self.path {
            Path::Edge => json!({"executorId": executor, "workerId": worker, "limit": limit}),
            Path::Direct => {
                json!({"p_executor_id": executor, "p_worker_id": worker, "p_lease_seconds": 60, "p_limit": limit})
            }
        };
        let reply = self.post("/api/collab/task.claim", "claim", body).await;
        let jobs = match self.path {
            Path::Edge => reply["jobs"].clone(),
            Path::Direct => reply,
        };
        let token = if self.path == Path::Edge { "leaseToken" } else { "lease_token" };
        jobs.as_array().unwrap().iter().map(|j| (j["id"].clone(), j[token].clone())).collect()
    }

    async fn complete(&self, jobs: &[(Value, Value)]) {
        match (self.path, jobs) {
            (Path::Edge, [(id, token)]) => {
                let body = json!({"jobId": id, "type": "bench.job", "ok": true, "leaseToken": token});
                self.post("/api/collab/task.result", "", body).await;
            }
            (Path::Edge, _) => {
                let results: Vec<Value> = jobs
                    .iter()
                    .map(|(id, token)| json!({"jobId": id, "type": "bench.job", "ok": true, "leaseToken": token}))
                    .collect();
                self.post("/api/collab/task.result", "", json!({"results": results})).await;
            }
            (Path::Direct, [(id, token)]) => {
                let body = json!({"p_job_id": id, "p_ok": true, "p_lease_token": token});
                self.post("", "complete", body).await;
            }
            (Path::Direct, _) => {
                let results: Vec<Value> = jobs
                    .iter()
                    .map(|(id, token)| json!({"p_job_id": id, "p_ok": true, "p_lease_token": token}))
                    .collect();
                self.post("", "complete_many", json!({"p_results": results})).await;
            }
        }
    }
}

/// `loops` workers doing claim -> result until `executor`'s queue is empty.
async fn drain(stack: &Stack, path: Path, executor: &str, loops: usize, limit: i64) -> Run {
    let start = Instant::now();
    let tasks = (0..loops).map(|w| {
        let caller = Caller::new(stack, path);
        let executor = executor.to_string();
        tokio::spawn(async move {
            let (mut done, mut claim_ms) = (0usize, Vec::new());
            loop {
                let t = Instant::now();
                let jobs = caller.claim(&executor, &format!("w{w}"), limit).await;
                claim_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                if jobs.is_empty() {
                    return (done, claim_ms);
                }
                caller.complete(&jobs).await;
                done += jobs.len();
            }
        })
    });
    let mut run = Run { jobs: 0, elapsed: Duration::ZERO, claim_ms: Vec::new() };
    for task in tasks.collect::<Vec<_>>() {
        let (done, ms) = task.await.unwrap();
        run.jobs += done;
        run.claim_ms.extend(ms);
    }
    run.elapsed = start.elapsed();
    run
}

async fn throughput(stack: &Stack, path: Path, jobs: i64, loops: usize, limit: i64) -> Run {
    let executor = unique("bench");
    seed(&executor, jobs).await;
    let run = drain(stack, path, &executor, loops, limit).await;
    assert_eq!(run.jobs as i64, jobs, "every seeded job was processed");
    run
}

/// p50/p99 of single claims (each followed by its result) with `depth`
/// other jobs queued for the same executor.
async fn claim_latency(stack: &Stack, depth: i64, samples: usize) -> (f64, f64) {
    let executor = unique("depth");
    seed(&executor, depth).await;
    let caller = Caller::new(stack, Path::Edge);
    // Warm the connection and the plan cache.
    for _ in 0..20 {
        let jobs = caller.claim(&executor, "w", 1).await;
        caller.complete(&jobs).await;
    }
    let mut ms = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        let jobs = caller.claim(&executor, "w", 1).await;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        caller.complete(&jobs).await;
    }
    // Leave nothing behind for the next depth.
    sql().await.execute("DELETE FROM cogo.jobs WHERE executor_id = $1", &[&executor]).await.unwrap();
    (percentile(&ms, 0.5), percentile(&ms, 0.99))
}

/// A table of `total` jobs as a month of traffic leaves it: created over
/// 30 days, 10 types, 20 executors; 85% succeeded, 5% dead (with their dead
/// letters), 3% cancelled, 7% still queued.
async fn seed_history(total: i64) {
    let db = sql().await;
    db.batch_execute(
        "TRUNCATE cogo.jobs, cogo.job_events, cogo.job_dead_letters, cogo.artifacts, cogo.job_counts CASCADE",
    )
    .await
    .unwrap();
    seed_with(
        "INSERT INTO cogo.jobs (type, executor_id, status, attempts, created_at, started_at, finished_at, next_run_at)
         SELECT 'bench.type' || (i % 10), $1 || (i % 20),
                CASE WHEN i % 100 < 85 THEN 'succeeded' WHEN i % 100 < 90 THEN 'dead'
                     WHEN i % 100 < 93 THEN 'cancelled' ELSE 'queued' END,
                CASE WHEN i % 100 < 90 THEN 1 ELSE 0 END,
                t, t + interval '2 seconds', CASE WHEN i % 100 < 93 THEN t + interval '5 seconds' END, t
         FROM generate_series(1, $2::bigint) i,
              LATERAL (SELECT now() - interval '30 days' * (1 - i::double precision / $2) AS t) c",
        "history-",
        total,
    )
    .await;
    db.batch_execute(
        "INSERT INTO cogo.job_dead_letters (job_id, type, executor_id, payload, reason, attempts, dead_at)
         SELECT id, type, executor_id, payload, 'max_attempts_exceeded', attempts, finished_at
         FROM cogo.jobs WHERE status = 'dead'",
    )
    .await
    .unwrap();
    // Each VACUUM alone: it cannot run inside the implicit transaction of a batch.
    for table in ["cogo.jobs", "cogo.job_dead_letters"] {
        db.batch_execute(&format!("VACUUM ANALYZE {table}")).await.unwrap();
    }
}

/// p50/p99 of `samples` GETs of `path` at the edge.
async fn get_latency(stack: &Stack, path: &str, samples: usize) -> (f64, f64) {
    let http = reqwest::Client::new();
    let auth = format!("Bearer {}", stack.service_key);
    let mut ms = Vec::with_capacity(samples);
    for i in 0..samples + 10 {
        let t = Instant::now();
        let resp = http.get(stack.url(path)).header("authorization", &auth).send().await.expect("request");
        let status = resp.status();
        let body = resp.bytes().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {}", String::from_utf8_lossy(&body));
        // The first few warm the isolate, the connections and the plans.
        if i >= 10 {
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    (percentile(&ms, 0.5), percentile(&ms, 0.99))
}

/// p50 of the SQL function alone, in the database.
async fn sql_latency(statement: &str, samples: usize) -> f64 {
    let db = sql().await;
    let mut ms = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        db.batch_execute(statement).await.unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    percentile(&ms, 0.5)
}

async fn read_latencies(stack: &Stack, sizes: &[i64]) {
    println!("\n{:<34} {:>12} {:>12} {:>12}", "reads (edge, service role)", "edge p50", "edge p99", "SQL p50");
    let mut overview_p50s = Vec::new();
    for &total in sizes {
        seed_history(total).await;
        let label = if total >= 1_000_000 { format!("{}M", total / 1_000_000) } else { format!("{}k", total / 1000) };
        let reads = [
            ("metrics-overview", "/functions/v1/metrics-overview", "SELECT cogo.metrics_overview()"),
            ("jobs-recent", "/functions/v1/jobs-recent", "SELECT cogo.jobs_recent(20)"),
            (
                "jobs-recent ?executorId",
                "/functions/v1/jobs-recent?executorId=history-7",
                "SELECT cogo.jobs_recent(20, p_executor_id => 'history-7')",
            ),
        ];
        for (name, path, statement) in reads {
            let (p50, p99) = get_latency(stack, path, 200).await;
            let in_db = sql_latency(statement, 50).await;
            println!("{:<34} {p50:>10.2}ms {p99:>10.2}ms {in_db:>10.2}ms", format!("{name}, {label} jobs"));
            if name == "metrics-overview" {
                overview_p50s.push(p50);
            }
        }
    }
    if let (Some(first), Some(last)) = (overview_p50s.first(), overview_p50s.last()) {
        println!("\nmetrics-overview p50 ratio {}/{}: {:.2}x", sizes[sizes.len() - 1], sizes[0], last / first);
    }
}

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

/// Conversion time of each Figma fixture: natively (the converter alone,
/// median of repeated runs) and end to end through workerd (uui/generate).
async fn figma_conversions(stack: &Stack) {
    println!("\n{:<48} {:>10} {:>12} {:>12}", "figma-compat uui/generate", "size", "native", "workerd");
    let dir = cogo_tests::workspace_root().join("../shared/fixtures/figma");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    let http = reqwest::Client::new();
    for path in files.iter().filter(|p| p.extension().is_some_and(|x| x == "json")) {
        let text = std::fs::read_to_string(path).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        let runs = if text.len() > 500_000 { 10 } else { 50 };
        let mut native = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            let parsed: Value = serde_json::from_str(&text).unwrap();
            cogo_shared::figma::convert(&parsed, None).unwrap();
            native.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let body = serde_json::to_vec(&json!({ "figma_json": doc })).unwrap();
        let mut edge = Vec::new();
        for i in 0..runs.min(20) + 2 {
            let t = Instant::now();
            let resp = http
                .post(stack.url("/functions/v1/figma-compat/uui/generate"))
                .header("authorization", format!("Bearer {}", stack.service_key))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success(), "{}", path.display());
            resp.bytes().await.unwrap();
            if i >= 2 {
                edge.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        println!(
            "{:<48} {:>8.0}KB {:>10.2}ms {:>10.2}ms",
            path.file_name().unwrap().to_string_lossy(),
            text.len() as f64 / 1024.0,
            percentile(&native, 0.5),
            percentile(&edge, 0.5)
        );
    }
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let stack = Stack::shared();
    let read_sizes: &[i64] = if quick { &[10_000, 100_000] } else { &[10_000, 1_000_000] };
    if std::env::args().any(|a| a == "--reads") {
        return read_latencies(stack, read_sizes).await;
    }
    if std::env::args().any(|a| a == "--figma") {
        return figma_conversions(stack).await;
    }
    if std::env::args().any(|a| a == "--sse") {
        return sse_latencies(stack, if quick { 50 } else { 200 }).await;
    }
    let loops = 10;
    let (single_jobs, batch_jobs) = if quick { (2_000, 20_000) } else { (10_000, 100_000) };
    println!(
        "cogo-edge queue benchmark ({} mode), {loops} worker loops, 2 cores shared by everything\n",
        if quick { "quick" } else { "full" }
    );

    // Warm-up: first requests pay for isolate start and pool connections.
    throughput(stack, Path::Edge, 500, loops, 1).await;

    println!("{:<34} {:>10} {:>12} {:>12}", "claim -> result loop", "jobs/s", "claim p50", "claim p99");
    let mut rates = Vec::new();
    for (label, path, jobs, limit) in [
        ("edge (workerd), limit=1", Path::Edge, single_jobs, 1),
        ("direct RPC (gateway), limit=1", Path::Direct, single_jobs, 1),
        ("edge (workerd), batch of 50", Path::Edge, batch_jobs, 50),
        ("direct RPC (gateway), batch of 50", Path::Direct, batch_jobs, 50),
    ] {
        let run = throughput(stack, path, jobs, loops, limit).await;
        println!("{label:<34} {:>10.0} {:>10.2}ms {:>10.2}ms", run.jobs_per_sec(), run.pct(0.5), run.pct(0.99));
        rates.push(run.jobs_per_sec());
    }
    println!(
        "\nedge cost (direct / edge jobs/s): limit=1 {:.2}x, batch of 50 {:.2}x",
        rates[1] / rates[0],
        rates[3] / rates[2]
    );

    println!("\n{:<34} {:>12} {:>12}", "claim latency vs queue depth", "p50", "p99");
    let depths: &[i64] = if quick { &[1_000, 100_000] } else { &[1_000, 100_000, 1_000_000] };
    let mut p50s = Vec::new();
    for depth in depths {
        let (p50, p99) = claim_latency(stack, *depth, 500).await;
        println!("{:<34} {:>10.2}ms {:>10.2}ms", format!("{depth} queued"), p50, p99);
        p50s.push(p50);
    }
    println!("\nclaim p50 ratio {}/1k: {:.2}x", depths.last().unwrap(), p50s.last().unwrap() / p50s[0]);

    read_latencies(stack, read_sizes).await;
    sse_latencies(stack, if quick { 50 } else { 200 }).await;
    figma_conversions(stack).await;
}

async fn sse_latencies(stack: &Stack, rounds: usize) {
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
