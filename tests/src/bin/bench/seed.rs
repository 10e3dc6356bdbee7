//! Tables made afresh and filled in SQL, outside every timed part.

use cogo_tests::sql;

/// Empties the queue's tables, so each run starts on tables no earlier run
/// grew.
pub async fn fresh_tables() {
    sql()
        .await
        .batch_execute(
            "TRUNCATE cogo.jobs, cogo.job_events, cogo.job_dead_letters, cogo.artifacts, cogo.job_counts CASCADE",
        )
        .await
        .unwrap();
}

/// Inserts `n` queued jobs for `executor` in one statement, payloads `{i}`.
pub async fn seed(executor: &str, n: i64) {
    seed_with(
        "INSERT INTO cogo.jobs (type, executor_id, payload)
         SELECT 'bench.job', $1, jsonb_build_object('i', i) FROM generate_series(1, $2::bigint) i",
        executor,
        n,
    )
    .await;
}

/// Runs a seeding `INSERT ... SELECT` (with `$1` and `$2` as it likes) with
/// triggers off (a million `created` events are not what is measured),
/// adding the rows it inserted to the counters the triggers would have
/// kept; then refreshes the statistics and checkpoints, so no checkpoint of
/// the seeding's writes lands inside the timed part.
pub async fn seed_with(insert: &str, p1: &str, p2: i64) {
    let client = sql().await;
    client.batch_execute("SET session_replication_role = replica").await.unwrap();
    let counted = format!(
        "WITH seeded AS ({insert} RETURNING type, executor_id, status, lost_leases)
         INSERT INTO cogo.job_counts AS c (shard, type, executor_id, status, jobs, lost_leases)
         SELECT 0, type, executor_id, status, count(*), sum(lost_leases) FROM seeded
         GROUP BY type, executor_id, status
         ON CONFLICT (shard, type, executor_id, status)
         DO UPDATE SET jobs = c.jobs + excluded.jobs, lost_leases = c.lost_leases + excluded.lost_leases"
    );
    client.execute(&counted, &[&p1, &p2]).await.unwrap();
    client.batch_execute("ANALYZE cogo.jobs").await.unwrap();
    client.batch_execute("CHECKPOINT").await.unwrap();
}
