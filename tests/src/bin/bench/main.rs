//! The queue's yardstick, through the full local stack (the release wasm in
//! workerd, the gateway, PostgreSQL), beside its peers: the same loops
//! against the gateway's RPC directly and with pg-boss on the same
//! PostgreSQL. Each loop runs in turn with its peers, several rounds on
//! fresh tables, and the figures are medians (throughput on this machine
//! moves by up to 2x from run to run). Sections:
//!
//! - `--loops`: claim -> result throughput, one at a time and in batches of
//!   50, at the edge (also with `next`, and with SSE subscribers), direct,
//!   and pg-boss's
//! - `--long-poll`: assign -> claim latency with workers waiting in
//!   `task.claim`, and what 100 idle waiting workers cost PostgREST
//! - `--sql`: claim -> complete per job in SQL alone (pgbench over the
//!   queue's functions, beside bare SKIP LOCKED statements)
//! - `--retention`: the edge loops with 1M finished jobs and their events
//!   behind them, against fresh tables
//! - `--depth`: claim latency with 1k, 100k and 1M jobs queued
//! - `--reads`: metrics-overview and jobs-recent over 10k and 1M jobs
//! - `--sse`: a progress report to its SSE frame, at 1 and 100 subscribers
//! - `--figma`: the conversion time of each Figma fixture
//! - `--gateway`: the IDE's embedded read of a project (1 x 20 pages x 50
//!   components) in one request, beside the same rows in three
//! - `--dashboard`: the dashboard overview's time to first render in
//!   headless chromium over 1M jobs, and metrics-history's latency
//!
//! then every target with its figure, pass or miss.
//!
//! `scripts/bench [--quick] [section ...]`: no section runs them all.

mod caller;
mod dashboard;
mod depth;
mod figma;
mod gateway;
mod long_poll;
mod loops;
mod pgboss;
mod reads;
mod retention;
mod seed;
mod sql_alone;
mod sse;
mod stats;
mod summary;

use cogo_tests::Stack;

/// Worker loops draining a queue at once, in every throughput figure.
pub const LOOPS: usize = 10;

const SECTIONS: [&str; 10] = [
    "--loops",
    "--long-poll",
    "--sql",
    "--retention",
    "--depth",
    "--reads",
    "--sse",
    "--figma",
    "--gateway",
    "--dashboard",
];

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(unknown) = args.iter().find(|a| *a != "--quick" && !SECTIONS.contains(&a.as_str())) {
        eprintln!("unknown argument {unknown}; usage: bench [--quick] [{}]", SECTIONS.join(" | "));
        std::process::exit(2);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let all = !args.iter().any(|a| SECTIONS.contains(&a.as_str()));
    let run = |section: &str| all || args.iter().any(|a| a == section);
    let rounds = if quick { 2 } else { 3 };
    let stack = Stack::shared();
    let mut summary = summary::Summary::default();
    println!(
        "cogo-edge queue benchmark ({} mode): {} loops, {rounds} rounds each, medians; 2 cores shared by everything",
        if quick { "quick" } else { "full" },
        LOOPS,
    );

    if run("--loops") || run("--retention") {
        loops::warm_up(stack).await;
    }
    if run("--loops") {
        loops::report(stack, quick, rounds, &mut summary).await;
    }
    if run("--long-poll") {
        long_poll::report(stack, quick, &mut summary).await;
    }
    if run("--sql") {
        sql_alone::report(quick, &mut summary).await;
    }
    if run("--retention") {
        retention::report(stack, quick, rounds, &mut summary).await;
    }
    if run("--depth") {
        depth::report(stack, quick, &mut summary).await;
    }
    if run("--reads") {
        reads::report(stack, quick).await;
    }
    if run("--sse") {
        sse::report(stack, quick).await;
    }
    if run("--figma") {
        figma::report(stack).await;
    }
    if run("--gateway") {
        gateway::report(stack, quick).await;
    }
    if run("--dashboard") {
        dashboard::report(stack, quick, &mut summary).await;
    }
    summary.print();
}
