//! The queue's SQL alone: claim -> complete per job through `cogo.claim`
//! and `cogo.complete` (one at a time) or `cogo.complete_many` (batches of
//! 50), beside bare `SKIP LOCKED` statements on a table of the same columns
//! with only its primary key and claim index, driven by pgbench with 10
//! clients on the bench's database. Runs alternate ours, bare, ours, bare
//! ..., each on freshly seeded jobs, so both see the same machine load; the
//! medians and their ratio are printed. No HTTP: what the database costs per
//! job, and so the floor under every figure the edge can reach.

use std::path::{Path, PathBuf};

use cogo_tests::{database, sql, unique};

const CLIENTS: usize = 10;
const BATCH: usize = 50;

struct Form {
    name: &'static str,
    ours: &'static str,
    bare: &'static str,
    /// Jobs per claim.
    per_claim: usize,
}

const FORMS: [Form; 2] = [
    Form {
        name: "one at a time",
        ours: include_str!("../../../bench/ours_one.sql"),
        bare: include_str!("../../../bench/bare_one.sql"),
        per_claim: 1,
    },
    Form {
        name: "batch of 50",
        ours: include_str!("../../../bench/ours_batch.sql"),
        bare: include_str!("../../../bench/bare_batch.sql"),
        per_claim: BATCH,
    },
];

/// One pgbench run's outcome.
struct Run {
    jobs_per_sec: f64,
    wal_bytes_per_job: f64,
}

pub async fn report(quick: bool, summary: &mut crate::summary::Summary) {
    let rounds = if quick { 3 } else { 5 };
    // Claims per client: every client drains its share of the seeded jobs.
    let claims = |form: &Form| {
        if form.per_claim == 1 {
            if quick {
                300
            } else {
                1_000
            }
        } else if quick {
            20
        } else {
            60
        }
    };
    let dir = scripts_dir();
    let db = sql().await;
    db.batch_execute(
        "DROP SCHEMA IF EXISTS sql_alone CASCADE;
         CREATE SCHEMA sql_alone;
         CREATE TABLE sql_alone.jobs (LIKE cogo.jobs INCLUDING DEFAULTS INCLUDING CONSTRAINTS, PRIMARY KEY (id));
         CREATE INDEX ON sql_alone.jobs (executor_id, priority DESC, next_run_at, created_at) WHERE status = 'queued';",
    )
    .await
    .unwrap();

    println!(
        "\nSQL alone: claim -> complete per job, pgbench, {CLIENTS} clients, {rounds} interleaved rounds \
         (2 shared cores, busy machine)"
    );
    println!("{:<34} {:>12} {:>12} {:>12} {:>14}", "", "ours jobs/s", "bare jobs/s", "bare/ours", "WAL B/job o|b");
    for form in &FORMS {
        let (mut ours, mut bare) = (Vec::new(), Vec::new());
        for round in 1..=rounds {
            let o = run(&dir, form, Side::Ours, claims(form)).await;
            let b = run(&dir, form, Side::Bare, claims(form)).await;
            println!(
                "{:<34} {:>12.0} {:>12.0} {:>11.2}x {:>7.0}|{:<6.0}",
                format!("{}, round {round}", form.name),
                o.jobs_per_sec,
                b.jobs_per_sec,
                b.jobs_per_sec / o.jobs_per_sec,
                o.wal_bytes_per_job,
                b.wal_bytes_per_job
            );
            ours.push(o);
            bare.push(b);
        }
        let (o, b) = (median(ours.iter().map(|r| r.jobs_per_sec)), median(bare.iter().map(|r| r.jobs_per_sec)));
        let (ow, bw) =
            (median(ours.iter().map(|r| r.wal_bytes_per_job)), median(bare.iter().map(|r| r.wal_bytes_per_job)));
        println!("{:<34} {o:>12.0} {b:>12.0} {:>11.2}x {ow:>7.0}|{bw:<6.0}", format!("{}, median", form.name), b / o);
        summary.check(
            &format!("SQL alone, {}: within 2x of bare SKIP LOCKED", form.name),
            format!("{:.2}x", b / o),
            b / o <= 2.0,
        );
    }
    db.batch_execute("DROP SCHEMA sql_alone CASCADE").await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Ours,
    Bare,
}

/// Seeds `CLIENTS * claims * per_claim` jobs for a fresh executor (plus a
/// claim's worth per client, so no claim comes back empty while others hold
/// locks), drains them with pgbench, checks they all finished, and removes
/// them again so every run starts from the same table.
async fn run(dir: &Path, form: &Form, side: Side, claims: usize) -> Run {
    let db = sql().await;
    let executor = unique("sql-alone");
    let jobs = CLIENTS * claims * form.per_claim;
    let table = if side == Side::Ours { "cogo.jobs" } else { "sql_alone.jobs" };
    // Through the triggers for ours: the created events and counters are
    // what seeding through cogo.enqueue leaves.
    db.execute(
        &format!(
            "INSERT INTO {table} (type, executor_id, payload)
             SELECT 'bench.sql', $1, jsonb_build_object('i', i) FROM generate_series(1, $2::bigint) i"
        ),
        &[&executor, &((jobs + CLIENTS * form.per_claim) as i64)],
    )
    .await
    .unwrap();
    vacuum(&db, table).await;
    let wal_before: String = db.query_one("SELECT pg_current_wal_lsn()::text", &[]).await.unwrap().get(0);

    let script = dir.join(format!("{}-{}.sql", if side == Side::Ours { "ours" } else { "bare" }, form.per_claim));
    let out = pgbench(&script, &executor, claims).await;
    let tps = out
        .lines()
        .find_map(|l| l.strip_prefix("tps = ")?.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no tps in pgbench output:\n{out}"));

    let wal: i64 =
        db.query_one("SELECT (pg_current_wal_lsn() - $1::text::pg_lsn)::bigint", &[&wal_before]).await.unwrap().get(0);
    let done: i64 = db
        .query_one(
            &format!("SELECT count(*) FROM {table} WHERE executor_id = $1 AND status = 'succeeded'"),
            &[&executor],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(done as usize, jobs, "every claimed job completed ({table}, {})", form.name);
    db.execute(&format!("DELETE FROM {table} WHERE executor_id = $1"), &[&executor]).await.unwrap();
    vacuum(&db, table).await;
    Run { jobs_per_sec: tps * form.per_claim as f64, wal_bytes_per_job: wal as f64 / jobs as f64 }
}

/// Clears the dead rows a run left, so the next run of either side starts
/// from a clean table and index.
async fn vacuum(db: &tokio_postgres::Client, table: &str) {
    let tables = if table == "cogo.jobs" { "cogo.jobs, cogo.job_events, cogo.job_counts" } else { table };
    db.batch_execute(&format!("VACUUM ANALYZE {tables}")).await.unwrap();
}

/// Runs one pgbench script, `claims` transactions per client, and answers its output.
async fn pgbench(script: &Path, executor: &str, claims: usize) -> String {
    let bin = cogo_dev::pg_cluster::bin_dir().map(|d| d.join("pgbench")).ok().filter(|p| p.is_file());
    let mut cmd = std::process::Command::new(bin.unwrap_or_else(|| PathBuf::from("pgbench")));
    cmd.args(["-n", "-M", "prepared", "-c", &CLIENTS.to_string(), "-j", "2", "-t", &claims.to_string()])
        .arg("-D")
        .arg(format!("exec={executor}"))
        .arg("-f")
        .arg(script)
        .arg(&database().uri);
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().expect("run pgbench");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("failed transactions: 0 "), "pgbench failed:\n{text}");
    text
}

/// The four pgbench scripts, written to a fresh folder under target/tmp.
fn scripts_dir() -> PathBuf {
    let dir = cogo_dev::process::scratch_dir(&cogo_tests::workspace_root().join("target/tmp"), "sql-alone")
        .expect("scratch folder");
    for form in &FORMS {
        std::fs::write(dir.join(format!("ours-{}.sql", form.per_claim)), form.ours).unwrap();
        std::fs::write(dir.join(format!("bare-{}.sql", form.per_claim)), form.bare).unwrap();
    }
    dir
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
