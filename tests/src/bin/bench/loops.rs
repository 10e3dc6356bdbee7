//! The claim -> result loops beside their peers. Each loop and its peers
//! run in turn (A B C D, A B C D, ...), every run on fresh tables, so the
//! machine's drift from run to run falls on all of them alike; the table
//! shows medians over the rounds and the ratios of medians.

use std::time::{Duration, Instant};

use cogo_tests::{sql, unique, EventStream, Stack};
use futures::StreamExt;
use tokio::task::JoinHandle;

use crate::caller::{Caller, Path};
use crate::pgboss::PgBoss;
use crate::seed::{fresh_tables, seed};
use crate::stats::{ms_since, percentile, Rounds, Run};
use crate::summary::Summary;
use crate::LOOPS;

#[derive(Clone, Copy, PartialEq)]
enum Loop {
    /// claim `limit`, then task.result (at the edge) or the RPCs (direct)
    Claim(Path, i64),
    /// claim `limit` once, then task.result with `next` until it brings no job
    Next(i64),
    /// batches of 50 at the edge, with an SSE subscriber on every 10th job
    Subscribed,
    /// pg-boss, fetching `batch` at a time
    PgBoss(i64),
}

/// `LOOPS` workers draining `executor`'s queue `limit` jobs at a time: claim
/// then result, or (`next`) one claim and then a result that claims the
/// next job. The claim time is that of the request that brought the jobs.
pub async fn drain(stack: &Stack, path: Path, executor: &str, limit: i64, next: bool) -> Result<Run, String> {
    let start = Instant::now();
    let tasks: Vec<_> = (0..LOOPS)
        .map(|w| {
            let caller = Caller::new(stack, path);
            let executor = executor.to_string();
            tokio::spawn(async move {
                let worker = format!("w{w}");
                let (mut done, mut claim_ms) = (0usize, Vec::new());
                let t = Instant::now();
                let mut jobs = caller.claim(&executor, &worker, limit).await?;
                claim_ms.push(ms_since(t));
                while !jobs.is_empty() {
                    done += jobs.len();
                    if next {
                        let t = Instant::now();
                        jobs = caller.complete_next(&jobs, limit).await?;
                        claim_ms.push(ms_since(t));
                    } else {
                        caller.complete(&jobs).await?;
                        let t = Instant::now();
                        jobs = caller.claim(&executor, &worker, limit).await?;
                        claim_ms.push(ms_since(t));
                    }
                }
                Ok::<_, String>((done, claim_ms))
            })
        })
        .collect();
    let (mut jobs, mut claim_ms) = (0, Vec::new());
    for task in tasks {
        let (done, ms) = task.await.unwrap()?;
        jobs += done;
        claim_ms.extend(ms);
    }
    Ok(Run { jobs, elapsed: start.elapsed(), claim_p50: percentile(&claim_ms, 0.5) })
}

/// An SSE subscription (`job-events`) to every 10th of `executor`'s jobs,
/// each read by a task that answers whether its job's terminal event came.
async fn subscribe_every_tenth(stack: &Stack, executor: &str) -> Result<Vec<JoinHandle<bool>>, String> {
    let ids: Vec<String> = sql()
        .await
        .query(
            "SELECT id::text FROM cogo.jobs WHERE executor_id = $1 AND (payload->>'i')::bigint % 10 = 0",
            &[&executor],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let http = reqwest::Client::new();
    let auth = format!("Bearer {}", stack.service_key);
    // Opened a few at a time: each one wakes a hub that reads the job's events.
    let streams: Vec<Result<EventStream, String>> = futures::stream::iter(ids)
        .map(|id| {
            let request = http
                .get(stack.url(&format!("/functions/v1/job-events?id={id}")))
                .header("authorization", &auth)
                .header("accept", "text/event-stream");
            async move {
                let resp = request.send().await.map_err(|e| format!("subscribing to {id}: {e}"))?;
                match resp.status().as_u16() {
                    200 => Ok(EventStream::new(resp)),
                    status => Err(format!("subscribing to {id}: {status} {}", resp.text().await.unwrap_or_default())),
                }
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let streams = streams.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                while let Some(frame) = stream.next().await {
                    if frame.event == "succeeded" {
                        return true;
                    }
                }
                false
            })
        })
        .collect())
}

/// Local workerd keeps a file open per live Durable Object and has 20,000
/// descriptors: 10,000 subscribed jobs (the full run's 100,000 jobs) exhaust
/// them, so the subscribed loop drains at most this many jobs (2,000 hubs).
const MAX_SUBSCRIBED_JOBS: i64 = 20_000;

/// One run of `l` over `jobs` jobs on fresh tables; `Err` when it cannot
/// run here (pg-boss missing, `next` not implemented) or its subscribers
/// missed events.
async fn run_once(stack: &Stack, l: Loop, jobs: i64, pgboss: &Result<PgBoss, String>) -> Result<Run, String> {
    fresh_tables().await;
    if let Loop::PgBoss(batch) = l {
        let run = pgboss.as_ref().map_err(Clone::clone)?.run(jobs, batch, LOOPS).await;
        assert_eq!(run.jobs as i64, jobs, "pg-boss processed every seeded job");
        return Ok(run);
    }
    let executor = unique("bench");
    let jobs = if l == Loop::Subscribed { jobs.min(MAX_SUBSCRIBED_JOBS) } else { jobs };
    seed(&executor, jobs).await;
    let subscribers = if l == Loop::Subscribed { subscribe_every_tenth(stack, &executor).await? } else { Vec::new() };
    let run = match l {
        Loop::Claim(path, limit) => drain(stack, path, &executor, limit, false).await?,
        Loop::Next(limit) => drain(stack, Path::Edge, &executor, limit, true).await?,
        Loop::Subscribed => drain(stack, Path::Edge, &executor, 50, false).await?,
        Loop::PgBoss(_) => unreachable!("run above"),
    };
    assert_eq!(run.jobs as i64, jobs, "every seeded job was processed");
    let opened = subscribers.len();
    // Each stream ends after its job's terminal event; a minute is plenty.
    let seen = tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(subscribers))
        .await
        .map_err(|_| "SSE subscribers still waiting a minute after the drain".to_string())?;
    let missed = seen.iter().filter(|s| !matches!(s, Ok(true))).count();
    if missed > 0 {
        return Err(format!("{missed} of {opened} SSE subscribers did not see their job succeed"));
    }
    Ok(run)
}

/// Runs `loops` in turn, `rounds` times; a loop that cannot run is not tried again.
async fn interleave(
    stack: &Stack,
    loops: &[(Loop, String)],
    jobs: i64,
    rounds: usize,
    pgboss: &Result<PgBoss, String>,
) -> Vec<Result<Rounds, String>> {
    let mut out: Vec<Result<Rounds, String>> = loops.iter().map(|_| Ok(Rounds::default())).collect();
    for round in 1..=rounds {
        for ((l, label), result) in loops.iter().zip(out.iter_mut()) {
            let Ok(runs) = result else { continue };
            match run_once(stack, *l, jobs, pgboss).await {
                Ok(run) => {
                    eprintln!("round {round}/{rounds} {label}: {:.0} jobs/s", run.jobs_per_sec());
                    runs.0.push(run);
                }
                Err(why) => *result = Err(why),
            }
        }
    }
    out
}

fn print_table(title: &str, loops: &[(Loop, String)], results: &[Result<Rounds, String>]) {
    println!("\n{title:<48} {:>24} {:>10}", "jobs/s median (min..max)", "claim p50");
    for ((_, label), result) in loops.iter().zip(results) {
        match result {
            Ok(r) => println!("{label:<48} {:>24} {:>8.2}ms", r.rate_spread(), r.claim_p50()),
            Err(why) => println!("{label:<48} not measured: {why}"),
        }
    }
}

/// `a`'s median jobs/s over `b`'s.
fn ratio(a: &Result<Rounds, String>, b: &Result<Rounds, String>) -> Result<f64, String> {
    Ok(a.as_ref().map_err(Clone::clone)?.rate() / b.as_ref().map_err(Clone::clone)?.rate())
}

fn show(r: &Result<f64, String>) -> String {
    r.as_ref().map_or_else(|_| "n/a".to_string(), |x| format!("{x:.2}x"))
}

/// Warms the isolate, the gateway's pool and both paths' plans.
pub async fn warm_up(stack: &Stack) {
    for path in [Path::Edge, Path::Direct] {
        fresh_tables().await;
        let executor = unique("warm");
        seed(&executor, 500).await;
        drain(stack, path, &executor, 1, false).await.unwrap();
    }
}

pub async fn report(stack: &Stack, quick: bool, rounds: usize, summary: &mut Summary) {
    let pgboss = PgBoss::install().await;
    let boss = pgboss.as_ref().map_or("pg-boss".to_string(), |b| format!("pg-boss {}", b.version));
    let (single_jobs, batch_jobs) = if quick { (2_000, 20_000) } else { (10_000, 100_000) };

    let single = [
        (Loop::Claim(Path::Edge, 1), "edge limit=1 (claim, task.result)".to_string()),
        (Loop::Next(1), "edge limit=1 with next".to_string()),
        (Loop::Claim(Path::Direct, 1), "direct RPC limit=1".to_string()),
        (Loop::PgBoss(1), format!("{boss} one at a time")),
    ];
    let one = interleave(stack, &single, single_jobs, rounds, &pgboss).await;
    print_table(&format!("one at a time: {single_jobs} jobs, {LOOPS} loops"), &single, &one);

    let batch = [
        (Loop::Claim(Path::Edge, 50), "edge batch of 50".to_string()),
        (Loop::Next(50), "edge batch of 50 with next".to_string()),
        (
            Loop::Subscribed,
            format!("edge batch of 50, SSE on every 10th job ({} jobs)", batch_jobs.min(MAX_SUBSCRIBED_JOBS)),
        ),
        (Loop::Claim(Path::Direct, 50), "direct RPC batch of 50".to_string()),
        (Loop::PgBoss(50), format!("{boss} batch of 50")),
    ];
    let many = interleave(stack, &batch, batch_jobs, rounds, &pgboss).await;
    print_table(&format!("batches: {batch_jobs} jobs, {LOOPS} loops"), &batch, &many);

    let next_vs_boss = ratio(&one[1], &one[3]);
    let batch_vs_boss = ratio(&many[1], &many[4]);
    let direct_single = ratio(&one[2], &one[0]);
    let direct_single_next = ratio(&one[2], &one[1]);
    let direct_batch = ratio(&many[3], &many[0]);
    let direct_batch_next = ratio(&many[3], &many[1]);
    let subscribed = ratio(&many[2], &many[0]);
    println!(
        "\nedge with next / {boss} jobs/s: one at a time {}, batch of 50 {}",
        show(&next_vs_boss),
        show(&batch_vs_boss)
    );
    println!(
        "direct / edge jobs/s: limit=1 {} (with next {}), batch of 50 {} (with next {})",
        show(&direct_single),
        show(&direct_single_next),
        show(&direct_batch),
        show(&direct_batch_next)
    );
    println!("batch of 50 with SSE subscribers / without: {}", show(&subscribed));

    let rate = |r: &Result<Rounds, String>| r.as_ref().map(Rounds::rate).map_err(Clone::clone);
    let mut check = |target: &str, measured: Result<f64, String>, unit: &str, pass: fn(f64) -> bool| match measured {
        Ok(x) => summary.check(target, format!("{x:.2}{unit}"), pass(x)),
        Err(why) => summary.unmeasured(target, &why),
    };
    check("edge batch of 50 (with next) >= 15,000 jobs/s", rate(&many[1]), " jobs/s", |x| x >= 15_000.0);
    check("edge batch of 50 (with next) >= 1.0x pg-boss batch of 50", batch_vs_boss, "x", |x| x >= 1.0);
    check("edge one at a time with next >= 1,900 jobs/s", rate(&one[1]), " jobs/s", |x| x >= 1_900.0);
    check("edge one at a time with next >= 1.0x pg-boss one at a time", next_vs_boss, "x", |x| x >= 1.0);
    check("edge limit=1 within 1.3x of direct RPC (direct/edge)", direct_single, "x", |x| x <= 1.3);
    check("edge limit=1 with next within 1.3x of direct RPC", direct_single_next, "x", |x| x <= 1.3);
    check("edge batch of 50 within 1.3x of direct RPC (direct/edge)", direct_batch, "x", |x| x <= 1.3);
    check("SSE on 10% of jobs costs <= 20% of batch jobs/s (with/without)", subscribed, "x", |x| x >= 0.8);
}
