//! The cron trigger, every minute (wrangler.toml `[triggers]`): the reaper,
//! the upkeep of idempotency keys, listener registrations and job counters,
//! the per-minute rollup behind metrics-history, the projection of
//! figma-compat's project outbox, and the retention of finished jobs.

use cogo_shared::config::Config;
use cogo_shared::figma::ProjectUpdatesApply;
use cogo_shared::queue::doorbells::ListenersSweep;
use cogo_shared::queue::history::FoldJobMinutes;
use cogo_shared::queue::retention::{deletions, RetentionSweep, StoredObject, Tally};
use worker::Env;

use crate::api::tasks;
use crate::durable;
use crate::runtime::storage::Storage;
use crate::runtime::{config, platform};

pub async fn run(env: Env) {
    match config::load(&env) {
        Ok(config) => {
            match tasks::reap(&config).await {
                Ok((outcome, bells)) => {
                    worker::console_log!(
                        "reaper: released {}, dead-lettered {}, cancelled {}",
                        outcome["released"],
                        outcome["deadLettered"],
                        outcome["cancelled"]
                    );
                    // One subrequest, whatever the reaper changed: the tick
                    // has more calls to make within its budget.
                    durable::relay(&env, bells).await;
                }
                Err(e) => worker::console_error!("reaper failed: {e}"),
            }
            if let Err(e) = tasks::sweep_idempotency_keys(&config).await {
                worker::console_error!("idempotency sweep failed: {e}");
            }
            if let Err(e) = platform::call(&config, ListenersSweep {}).await {
                worker::console_error!("listener sweep failed: {e}");
            }
            if let Err(e) = tasks::compact_job_counts(&config).await {
                worker::console_error!("job counter compaction failed: {e}");
            }
            if let Err(e) = platform::call(&config, FoldJobMinutes {}).await {
                worker::console_error!("metrics history fold failed: {e}");
            }
            if let Err(e) = platform::call(&config, ProjectUpdatesApply {}).await {
                worker::console_error!("project projection failed: {e}");
            }
            if let Some(sweep) = RetentionSweep::from_config(&config.retention) {
                retain(&env, &config, sweep).await;
            }
        }
        Err(e) => worker::console_error!("reaper not run: {e}"),
    }
}

/// Sweeps batch after batch until one is short or the tick's cap is hit,
/// deleting each batch's stored objects before the next batch.
async fn retain(env: &Env, config: &Config, sweep: RetentionSweep) {
    let mut tally = Tally::default();
    loop {
        let swept = match platform::call(config, sweep.clone()).await {
            Ok(swept) => swept,
            Err(e) => {
                worker::console_error!("retention sweep failed: {e}");
                break;
            }
        };
        delete_objects(env, config, &swept.artifacts).await;
        if !tally.add(&swept, &config.retention) {
            break;
        }
    }
    worker::console_log!(
        "retention: deleted {} jobs, {} events, {} dead letters, {} artifacts in {} batches{}",
        tally.jobs,
        tally.events,
        tally.dead_letters,
        tally.objects,
        tally.batches,
        if tally.more { "; more are due (RETENTION_MAX_BATCHES reached)" } else { "" }
    );
}

/// The rows are gone already: an object that cannot be deleted now is
/// logged by name, so an operator can remove it, rather than retried.
async fn delete_objects(env: &Env, config: &Config, objects: &[StoredObject]) {
    if objects.is_empty() {
        return;
    }
    let storage = match Storage::open(env, config) {
        Ok(storage) => storage,
        Err(e) => {
            let names: Vec<String> = objects.iter().map(|o| format!("{}/{}", o.bucket, o.path)).collect();
            worker::console_error!("retention: objects left in storage ({e}): {}", names.join(", "));
            return;
        }
    };
    for (bucket, paths) in deletions(objects) {
        if let Err(e) = storage.delete(config, &bucket, &paths).await {
            worker::console_error!("retention: objects left in bucket {bucket} ({e}): {}", paths.join(", "));
        }
    }
}
