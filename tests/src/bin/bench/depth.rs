//! Claim latency at the edge with more and more jobs queued.

use std::time::Instant;

use cogo_tests::{sql, unique, Stack};

use crate::caller::{Caller, Path};
use crate::seed::{fresh_tables, seed};
use crate::stats::{ms_since, percentile};
use crate::summary::Summary;

/// p50/p99 of single claims (each followed by its result) with `depth`
/// other jobs queued for the same executor.
async fn claim_latency(stack: &Stack, depth: i64, samples: usize) -> (f64, f64) {
    let executor = unique("depth");
    seed(&executor, depth).await;
    let caller = Caller::new(stack, Path::Edge);
    // Warm the connection and the plan cache.
    for _ in 0..20 {
        let jobs = caller.claim(&executor, "w", 1).await.unwrap();
        caller.complete(&jobs).await.unwrap();
    }
    let mut ms = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        let jobs = caller.claim(&executor, "w", 1).await.unwrap();
        ms.push(ms_since(t));
        caller.complete(&jobs).await.unwrap();
    }
    // Leave nothing behind for the next depth.
    sql().await.execute("DELETE FROM cogo.jobs WHERE executor_id = $1", &[&executor]).await.unwrap();
    (percentile(&ms, 0.5), percentile(&ms, 0.99))
}

pub async fn report(stack: &Stack, quick: bool, summary: &mut Summary) {
    fresh_tables().await;
    println!("\n{:<48} {:>10} {:>10}", "claim latency vs queue depth", "p50", "p99");
    let depths: &[i64] = if quick { &[1_000, 100_000] } else { &[1_000, 100_000, 1_000_000] };
    let mut p50s = Vec::new();
    for depth in depths {
        let (p50, p99) = claim_latency(stack, *depth, 500).await;
        println!("{:<48} {p50:>8.2}ms {p99:>8.2}ms", format!("{depth} queued"));
        p50s.push(p50);
    }
    let deepest = depths[depths.len() - 1];
    let ratio = p50s[p50s.len() - 1] / p50s[0];
    println!("\nclaim p50 ratio {deepest}/1000 queued: {ratio:.2}x");
    summary.check(&format!("claim p50 {deepest} queued <= 1.5x 1000 queued"), format!("{ratio:.2}x"), ratio <= 1.5);
}
