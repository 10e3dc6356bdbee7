//! The edge claim loops with a history behind them (finished jobs and
//! their events, as retention would keep them) against the same loops on
//! fresh tables, in turn.

use cogo_tests::{sql, unique, Stack};

use crate::caller::Path;
use crate::loops::drain;
use crate::seed::{fresh_tables, seed, seed_with};
use crate::stats::{Rounds, Run};
use crate::summary::Summary;

/// `n` succeeded jobs of `executor`, created over the last week, each with
/// the three events the triggers would have written (created, claimed,
/// succeeded) in time order; vacuumed, as autovacuum would have left them.
async fn seed_finished(executor: &str, n: i64) {
    seed_with(
        "INSERT INTO cogo.jobs (type, executor_id, status, attempts, worker_id, created_at, started_at, finished_at,
                                next_run_at, updated_at)
         SELECT 'bench.job', $1, 'succeeded', 1, 'w' || (i % 10), t, t + interval '1 second', t + interval '2 seconds',
                t, t + interval '2 seconds'
         FROM generate_series(1, $2::bigint) i,
              LATERAL (SELECT now() - interval '7 days' * (1 - i::double precision / $2) AS t) c",
        executor,
        n,
    )
    .await;
    let db = sql().await;
    db.execute(
        "INSERT INTO cogo.job_events (job_id, event_type, payload, created_at)
         SELECT j.id, e.kind,
                CASE e.kind
                  WHEN 'created' THEN jsonb_build_object('type', j.type, 'executor_id', j.executor_id,
                                                         'priority', j.priority)
                  WHEN 'claimed' THEN jsonb_build_object('status', 'running', 'attempt', 1, 'worker_id', j.worker_id,
                                                         'lease_until', j.started_at + interval '60 seconds')
                  ELSE jsonb_build_object('status', 'succeeded', 'attempt', 1)
                END,
                CASE e.kind WHEN 'created' THEN j.created_at WHEN 'claimed' THEN j.started_at ELSE j.finished_at END
         FROM cogo.jobs j CROSS JOIN (VALUES (1, 'created'), (2, 'claimed'), (3, 'succeeded')) e(n, kind)
         WHERE j.executor_id = $1
         ORDER BY j.created_at, e.n",
        &[&executor],
    )
    .await
    .unwrap();
    // Each VACUUM alone: it cannot run inside the implicit transaction of a batch.
    for statement in ["VACUUM ANALYZE cogo.jobs", "VACUUM ANALYZE cogo.job_events", "CHECKPOINT"] {
        db.batch_execute(statement).await.unwrap();
    }
}

/// Seeds `jobs` queued jobs for `executor` and drains them at the edge.
async fn edge_run(stack: &Stack, executor: &str, jobs: i64, limit: i64) -> Result<Run, String> {
    seed(executor, jobs).await;
    let run = drain(stack, Path::Edge, executor, limit, false).await?;
    assert_eq!(run.jobs as i64, jobs, "every seeded job was processed");
    Ok(run)
}

/// Finished jobs behind the loops, each with its 3 events.
const HISTORY: i64 = 1_000_000;

const TARGETS: [&str; 2] =
    ["1M finished: edge limit=1 within 1.2x of fresh", "1M finished: edge batch of 50 within 1.2x of fresh"];

pub async fn report(stack: &Stack, quick: bool, rounds: usize, summary: &mut Summary) {
    let (single_jobs, batch_jobs) = if quick { (2_000, 20_000) } else { (10_000, 100_000) };
    println!("\nedge loops over 1M finished jobs and their events, against fresh tables");
    let measured = rounds_of(stack, single_jobs, batch_jobs, rounds).await;
    let [fresh_single, fresh_batch, old_single, old_batch] = match measured {
        Ok(rounds) => rounds,
        Err(why) => {
            println!("  not measured: {why}");
            for target in TARGETS {
                summary.unmeasured(target, &why);
            }
            return;
        }
    };
    println!(
        "{:<48} {:>24} {:>24} {:>10}",
        format!("{rounds} rounds"),
        "fresh jobs/s",
        "1M finished jobs/s",
        "fresh/old"
    );
    let rows = [
        (format!("limit=1, {single_jobs} jobs"), TARGETS[0], &fresh_single, &old_single),
        (format!("batch of 50, {batch_jobs} jobs"), TARGETS[1], &fresh_batch, &old_batch),
    ];
    for (label, target, fresh, old) in rows {
        let slower = fresh.rate() / old.rate();
        println!("{label:<48} {:>24} {:>24} {slower:>9.2}x", fresh.rate_spread(), old.rate_spread());
        summary.check(target, format!("{slower:.2}x (fresh/old)"), slower <= 1.2);
    }
}

/// Fresh limit=1, fresh batch, with history limit=1, with history batch.
async fn rounds_of(stack: &Stack, single_jobs: i64, batch_jobs: i64, rounds: usize) -> Result<[Rounds; 4], String> {
    let mut out: [Rounds; 4] = Default::default();
    for round in 1..=rounds {
        // Which goes first alternates, so drift within a round evens out.
        for old in if round % 2 == 1 { [false, true] } else { [true, false] } {
            fresh_tables().await;
            // With history, the loops' executor is the one that made it.
            let executor = unique("retention");
            if old {
                seed_finished(&executor, HISTORY).await;
            }
            let at = if old { 2 } else { 0 };
            out[at].0.push(edge_run(stack, &executor, single_jobs, 1).await?);
            out[at + 1].0.push(edge_run(stack, &executor, batch_jobs, 50).await?);
        }
        eprintln!("retention round {round}/{rounds} done");
    }
    Ok(out)
}
