//! The latency of the reads operators poll (metrics-overview, jobs-recent)
//! over a month of traffic, at the edge and of the SQL function alone.

use std::time::Instant;

use cogo_tests::{sql, Stack};

use crate::seed::seed_with;
use crate::stats::{ms_since, percentile};

/// A table of `total` jobs as a month of traffic leaves it: created over
/// 30 days, 10 types, 20 executors; 85% succeeded, 5% dead (with their dead
/// letters), 3% cancelled, 7% still queued.
pub async fn seed_history(total: i64) {
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
            ms.push(ms_since(t));
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
        ms.push(ms_since(t));
    }
    percentile(&ms, 0.5)
}

pub async fn report(stack: &Stack, quick: bool) {
    let sizes: &[i64] = if quick { &[10_000, 100_000] } else { &[10_000, 1_000_000] };
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
