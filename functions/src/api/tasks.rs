//! The queue's endpoints: parse (`cogo_shared::queue::tasks`), one typed
//! SQL call, respond.

use cogo_shared::auth::{Role, Via};
use cogo_shared::config::Config;
use cogo_shared::http::routes::Endpoint;
use cogo_shared::http::ApiResponse;
use cogo_shared::queue::idempotency::{self, IdempotencySweep};
use cogo_shared::queue::tasks::{self, CompactJobCounts, CompleteMany, Reap};
use cogo_shared::ApiError;
use serde_json::{json, Value};

use crate::durable::channel_hub;
use crate::pipeline::RequestContext;
use crate::runtime::platform;

/// `POST task.assign` -> `{jobId, queued}` (`queued: false` on a repeat).
pub async fn task_assign(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let body = ctx.body()?;
    let key = ctx.header("idempotency-key");
    let scope = idempotency::scope(Endpoint::TaskAssign.id(), &ctx.principal);
    let enqueue = tasks::assign_args(&body, key.as_deref(), ctx.principal.job_owner()?, &scope)?;
    let outcome = ctx.call(enqueue).await?;
    ctx.notify_jobs(ids([&outcome["jobId"]]));
    Ok(ApiResponse::json(200, &outcome))
}

/// `POST task.claim` -> `{job}` / `{job: null}`, or `{jobs}` with `limit`.
pub async fn task_claim(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let body = ctx.body()?;
    let (claim, batch) = tasks::claim_args(&body)?;
    check_executor(&ctx, &claim.executor_id, "claim")?;
    let claimed: Vec<Value> = ctx.call(claim).await?.into_iter().map(tasks::claimed_job).collect();
    ctx.notify_jobs(ids(claimed.iter().map(|job| &job["id"])));
    let body = if batch { json!({ "jobs": claimed }) } else { json!({ "job": claimed.into_iter().next() }) };
    Ok(ApiResponse::json(200, &body))
}

/// `POST task.result` -> `{ok: true, status}`, or per-item outcomes for
/// the batch form `{results: [...]}`.
pub async fn task_result(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let body = ctx.body()?;
    if let Some(results) = tasks::result_batch(&body)? {
        let job_ids = results.iter().map(|item| item.job_id.clone()).collect();
        let outcomes = ctx.call(CompleteMany { results, executor_id: ctx.principal.executor_id.clone() }).await?;
        ctx.notify_jobs(job_ids);
        return Ok(ApiResponse::json(200, &json!({ "ok": true, "results": outcomes })));
    }
    // Lease-checked changes carry the token's executor scope, so a scoped
    // worker's change to another executor's job finds no job (404).
    let complete = tasks::Complete { executor_id: ctx.principal.executor_id.clone(), ..tasks::result_args(&body)? };
    let job_id = complete.job_id.clone();
    let outcome = ctx.call(complete).await?;
    ctx.notify_jobs(vec![job_id]);
    Ok(ApiResponse::json(
        200,
        &json!({ "ok": true, "status": outcome["status"], "nextRunAt": outcome.get("nextRunAt") }),
    ))
}

/// `POST task.progress` -> `{ok, cancelRequested}`.
pub async fn task_progress(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let progress =
        tasks::Progress { executor_id: ctx.principal.executor_id.clone(), ..tasks::progress_args(&ctx.body()?)? };
    let job_id = progress.job_id.clone();
    let outcome = ctx.call(progress).await?;
    ctx.notify_jobs(vec![job_id]);
    Ok(ApiResponse::json(200, &outcome))
}

/// `POST task.heartbeat` -> `{ok, leaseUntil, cancelRequested}`.
pub async fn task_heartbeat(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let body = ctx.body()?;
    let extend = tasks::ExtendLease { executor_id: ctx.principal.executor_id.clone(), ..tasks::heartbeat_args(&body)? };
    let outcome = ctx.call(extend).await?;
    Ok(ApiResponse::json(200, &outcome))
}

/// `POST task.cancel` -> `{ok, status, cancelRequested}`.
pub async fn task_cancel(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let body = ctx.body()?;
    // Users cancel only their own jobs; someone else's answers 404.
    let owner_id = ctx.principal.job_owner()?.map(str::to_string);
    let cancel = tasks::Cancel { owner_id, ..tasks::cancel_args(&body)? };
    let job_id = cancel.job_id.clone();
    let outcome = ctx.call(cancel).await?;
    ctx.notify_jobs(vec![job_id]);
    Ok(ApiResponse::json(
        200,
        &json!({ "ok": true, "status": outcome["status"], "cancelRequested": outcome["cancelRequested"] }),
    ))
}

/// `POST workers/heartbeat` -> `{ok, workerId, lastSeenAt}`.
pub async fn worker_heartbeat(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let body = ctx.body()?;
    let mut heartbeat = tasks::worker_heartbeat_args(&body)?;
    check_executor(&ctx, &heartbeat.executor_id, "report for")?;
    // A signed agent speaks for itself only; every other caller owns the
    // worker rows it first wrote (the platform writes any).
    if ctx.principal.via == Via::Signature {
        if let Some(agent) = &ctx.principal.sub {
            if heartbeat.agent_id != *agent {
                return Err(ApiError::new(403, "forbidden", format!("this signature speaks for agent {agent} only")));
            }
        }
    }
    if ctx.principal.role != Role::Service {
        heartbeat.principal = Some(ctx.principal.id());
    }
    let outcome = ctx.call(heartbeat.clone()).await?;
    ctx.after_response(channel_hub::heartbeat(ctx.env.clone(), tasks::presence_row(&heartbeat, &outcome)));
    Ok(ApiResponse::json(200, &outcome))
}

/// `GET leases-release`: reap now -> `{ok, released, deadLettered}`.
pub async fn leases_release(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let outcome = reap(&ctx.config).await?;
    ctx.notify_jobs(reaped_ids(&outcome));
    Ok(ApiResponse::json(
        200,
        &json!({ "ok": true, "released": outcome["released"], "deadLettered": outcome["deadLettered"] }),
    ))
}

/// Expired leases back to the queue, or to the dead letters past the bound.
pub async fn reap(config: &Config) -> Result<Value, ApiError> {
    platform::call(config, Reap { max_lost_leases: config.max_lost_leases }).await
}

pub async fn sweep_idempotency_keys(config: &Config) -> Result<Value, ApiError> {
    platform::call(config, IdempotencySweep {}).await
}

/// The jobs the reaper changed.
pub fn reaped_ids(outcome: &Value) -> Vec<String> {
    ids(outcome["jobIds"].as_array().into_iter().flatten())
}

/// A worker token scoped to one executor may name only that executor.
fn check_executor(ctx: &RequestContext, executor_id: &str, action: &str) -> Result<(), ApiError> {
    match &ctx.principal.executor_id {
        Some(scope) if executor_id != scope => Err(ApiError::new(
            403,
            "executor_forbidden",
            format!("this token may only {action} jobs of executor {scope}"),
        )),
        _ => Ok(()),
    }
}

/// Job ids out of JSON values (strings), for the hubs' doorbells.
fn ids<'v>(values: impl IntoIterator<Item = &'v Value>) -> Vec<String> {
    values.into_iter().filter_map(Value::as_str).map(str::to_string).collect()
}

/// Folds the metrics counters of ended database sessions together.
pub async fn compact_job_counts(config: &Config) -> Result<Value, ApiError> {
    platform::call(config, CompactJobCounts {}).await
}
