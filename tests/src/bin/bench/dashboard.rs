//! The dashboard's time to first render (`--dashboard`): the overview,
//! signed in as the platform, in headless chromium, with a month of
//! traffic in the tables (1M jobs; 100k with `--quick`) and a busy last
//! hour in the event log, folded by the cron as it would have been, beside
//! metrics-history's latency at the edge and of its SQL function alone.

use std::time::Instant;

use cogo_tests::{browser, sql, Stack};
use serde_json::json;

use crate::reads::seed_history;
use crate::seed::seed_with;
use crate::stats::{ms_since, percentile};
use crate::summary::Summary;

/// Jobs in the last hour, on top of the month: about 17 a second.
const BUSY_HOUR: i64 = 60_000;

/// The last hour's jobs, each created, claimed and succeeded in the log
/// (the seeding writes no events itself), then the cron's fold.
async fn seed_busy_hour() {
    seed_with(
        "INSERT INTO cogo.jobs (type, executor_id, status, attempts, created_at, started_at, finished_at, next_run_at)
         SELECT 'bench.type' || (i % 10), $1 || (i % 20), 'succeeded', 1, t, t + interval '2 seconds',
                t + interval '5 seconds', t
         FROM generate_series(1, $2::bigint) i,
              LATERAL (SELECT now() - interval '1 hour' * (1 - i::double precision / $2) AS t) c",
        "busy-",
        BUSY_HOUR,
    )
    .await;
    let db = sql().await;
    db.batch_execute(
        "INSERT INTO cogo.job_events (job_id, event_type, payload, created_at)
         SELECT id, e.kind, e.payload, e.at FROM cogo.jobs j,
           LATERAL (VALUES (1, 'created', jsonb_build_object('type', j.type), j.created_at),
                           (2, 'claimed', jsonb_build_object('status', 'running', 'attempt', 1), j.started_at),
                           (3, 'succeeded', jsonb_build_object('status', 'succeeded', 'attempt', 1), j.finished_at))
             e(n, kind, payload, at)
         WHERE j.executor_id LIKE 'busy-%' AND e.at <= now()
         ORDER BY e.at, j.id;
         TRUNCATE cogo.job_minutes, cogo.job_minute_waits;
         UPDATE cogo.job_minutes_folded SET folded_until = date_bin('1 minute', now(), 'epoch') - interval '1 day',
           seq_floor = 0;
         SELECT cogo.fold_job_minutes();",
    )
    .await
    .unwrap();
    // Each alone: neither runs inside the implicit transaction of a batch.
    for statement in ["VACUUM ANALYZE cogo.job_events", "CHECKPOINT"] {
        db.batch_execute(statement).await.unwrap();
    }
}

pub async fn report(stack: &'static Stack, quick: bool, summary: &mut Summary) {
    let total: i64 = if quick { 100_000 } else { 1_000_000 };
    seed_history(total).await;
    seed_busy_hour().await;
    let label = if total >= 1_000_000 { format!("{}M", total / 1_000_000) } else { format!("{}k", total / 1000) };

    let http = reqwest::Client::new();
    let auth = format!("Bearer {}", stack.service_key);
    let mut edge = Vec::new();
    for i in 0..60 {
        let t = Instant::now();
        let reply = http
            .get(stack.url("/functions/v1/metrics-history?window=1h&step=1m"))
            .header("authorization", &auth)
            .send()
            .await
            .expect("metrics-history");
        assert!(reply.status().is_success(), "metrics-history: {}", reply.status());
        reply.bytes().await.unwrap();
        if i >= 10 {
            edge.push(ms_since(t));
        }
    }
    let db = sql().await;
    let mut alone = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        db.batch_execute("SELECT cogo.metrics_history(3600, 60)").await.unwrap();
        alone.push(ms_since(t));
    }

    let loads = if quick { 3 } else { 5 };
    let report =
        tokio::task::spawn_blocking(move || browser::scenario(stack, "first-render", json!({ "loads": loads })))
            .await
            .expect("browser");
    println!(
        "\ndashboard, {label} jobs and {BUSY_HOUR} in the last hour: metrics-history p50 {:.2} ms at the edge, {:.2} ms in SQL",
        percentile(&edge, 0.5),
        percentile(&alone, 0.5)
    );
    let target = format!("dashboard overview first render, {label} jobs < 1000 ms");
    if report["ok"] != true {
        let why = report["error"].as_str().unwrap_or("no report").lines().next().unwrap_or_default().to_string();
        summary.unmeasured(&target, &why);
        return;
    }
    let ms: Vec<f64> = report["ms"].as_array().unwrap().iter().filter_map(|v| v.as_f64()).collect();
    println!(
        "overview first render over {} cold loads: {}",
        ms.len(),
        ms.iter().map(|m| format!("{m:.0} ms")).collect::<Vec<_>>().join(", ")
    );
    for (i, requests) in report["requests"].as_array().into_iter().flatten().enumerate() {
        let list: Vec<&str> = requests.as_array().into_iter().flatten().filter_map(|r| r.as_str()).collect();
        println!("  load {}: requests (name start+duration ms): {}", i + 1, list.join(", "));
    }
    let median = percentile(&ms, 0.5);
    summary.check(&target, format!("median {median:.0} ms, worst {:.0} ms", percentile(&ms, 1.0)), median < 1000.0);
}
