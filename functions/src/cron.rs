//! The cron trigger, every minute (wrangler.toml `[triggers]`): the reaper,
//! the upkeep of idempotency keys, listener registrations and job counters,
//! and the projection of figma-compat's project outbox.

use cogo_shared::figma::ProjectUpdatesApply;
use cogo_shared::queue::doorbells::ListenersSweep;
use worker::Env;

use crate::api::tasks;
use crate::durable;
use crate::runtime::{config, platform};

pub async fn run(env: Env) {
    match config::load(&env) {
        Ok(config) => {
            match tasks::reap(&config).await {
                Ok((outcome, bells)) => {
                    worker::console_log!(
                        "reaper: released {}, dead-lettered {}",
                        outcome["released"],
                        outcome["deadLettered"]
                    );
                    durable::ring(&env, bells).await;
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
            if let Err(e) = platform::call(&config, ProjectUpdatesApply {}).await {
                worker::console_error!("project projection failed: {e}");
            }
        }
        Err(e) => worker::console_error!("reaper not run: {e}"),
    }
}
