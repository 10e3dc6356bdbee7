//! The queue's endpoints: parse (shared::jobs), one RPC, respond.

use cogo_shared::auth::{Role, Via};
use cogo_shared::config::Config;
use cogo_shared::http::routes::Endpoint;
use cogo_shared::http::ApiResponse;
use cogo_shared::queue::idempotency;
use cogo_shared::queue::tasks::{self, queue_error};
use cogo_shared::ApiError;
use serde_json::{json, Value};

use crate::durable::channel_hub;
use crate::pipeline::RequestContext;
use crate::runtime::platform;

/// `POST task.assign` -> `{jobId, queued}` (`queued: false` on a repeat).
pub async fn task_assign(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let body = ctx.body()?;
    let key = ctx.header("idempotency-key");
    // A user's job is theirs; the platform assigns on nobody's behalf.
    let owner = if ctx.principal.role == Role::Authenticated { ctx.principal.sub.as_deref() } else { None };
    let scope = idempotency::scope(Endpoint::TaskAssign.id(), &ctx.principal);
    let args = tasks::assign_args(&body, key.as_deref(), owner, &scope)?;
    let outcome = ctx.rpc("enqueue", &args).await.map_err(queue_error)?;
    ctx.notify_jobs(ids([&outcome["jobId"]]));
    Ok(ApiResponse::json(200, &outcome))
}

/// `POST task.claim` -> `{job}` / `{job: null}`, or `{jobs}` with `limit`.
pub async fn task_claim(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let body = ctx.body()?;
    let (args, batch) = tasks::claim_args(&body)?;
    check_executor(&ctx, &args["p_executor_id"], "claim")?;
    let claimed = match ctx.rpc("claim", &args).await.map_err(queue_error)? {
        Value::Array(items) => items.into_iter().map(tasks::claimed_job).collect::<Vec<_>>(),
        other => return Err(unexpected("claim", &other)),
    };
    ctx.notify_jobs(ids(claimed.iter().map(|job| &job["id"])));
    let body = if batch { json!({ "jobs": claimed }) } else { json!({ "job": claimed.into_iter().next() }) };
    Ok(ApiResponse::json(200, &body))
}

/// `POST task.result` -> `{ok: true, status}`, or per-item outcomes for
/// the batch form `{results: [...]}`.
pub async fn task_result(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let body = ctx.body()?;
    if let Some(items) = tasks::result_batch(&body)? {
        let args = json!({ "p_results": items, "p_executor_id": ctx.principal.executor_id });
        let outcomes = ctx.rpc("complete_many", &args).await.map_err(queue_error)?;
        ctx.notify_jobs(ids(items.iter().map(|item| &item["p_job_id"])));
        return Ok(ApiResponse::json(200, &json!({ "ok": true, "results": outcomes })));
    }
    let args = scoped(&ctx, tasks::result_args(&body)?);
    let outcome = ctx.rpc("complete", &args).await.map_err(queue_error)?;
    ctx.notify_jobs(ids([&args["p_job_id"]]));
    Ok(ApiResponse::json(
        200,
        &json!({ "ok": true, "status": outcome["status"], "nextRunAt": outcome.get("nextRunAt") }),
    ))
}

/// `POST task.progress` -> `{ok, cancelRequested}`.
pub async fn task_progress(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let args = scoped(&ctx, tasks::progress_args(&ctx.body()?)?);
    let outcome = ctx.rpc("progress", &args).await.map_err(queue_error)?;
    ctx.notify_jobs(ids([&args["p_job_id"]]));
    Ok(ApiResponse::json(200, &outcome))
}

/// `POST task.heartbeat` -> `{ok, leaseUntil, cancelRequested}`.
pub async fn task_heartbeat(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let body = ctx.body()?;
    let args = scoped(&ctx, tasks::heartbeat_args(&body)?);
    let outcome = ctx.rpc("extend_lease", &args).await.map_err(queue_error)?;
    Ok(ApiResponse::json(200, &outcome))
}

/// `POST task.cancel` -> `{ok, status, cancelRequested}`.
pub async fn task_cancel(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let body = ctx.body()?;
    let mut args = tasks::cancel_args(&body)?;
    // Users cancel only their own jobs; someone else's answers 404.
    if ctx.principal.role != Role::Service {
        args["p_owner_id"] = ctx.principal.sub.clone().unwrap_or_default().into();
    }
    let outcome = ctx.rpc("cancel", &args).await.map_err(queue_error)?;
    ctx.notify_jobs(ids([&args["p_job_id"]]));
    Ok(ApiResponse::json(
        200,
        &json!({ "ok": true, "status": outcome["status"], "cancelRequested": outcome["cancelRequested"] }),
    ))
}

/// `POST workers/heartbeat` -> `{ok, workerId, lastSeenAt}`.
pub async fn worker_heartbeat(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let body = ctx.body()?;
    let mut args = tasks::worker_heartbeat_args(&body)?;
    check_executor(&ctx, &args["p_executor_id"], "report for")?;
    // A signed agent speaks for itself only; every other caller owns the
    // worker rows it first wrote (the platform writes any).
    if ctx.principal.via == Via::Signature {
        if let Some(agent) = &ctx.principal.sub {
            if args["p_agent_id"].as_str() != Some(agent.as_str()) {
                return Err(ApiError::new(403, "forbidden", format!("this signature speaks for agent {agent} only")));
            }
        }
    }
    if ctx.principal.role != Role::Service {
        args["p_principal"] = ctx.principal.id().into();
    }
    let outcome = ctx.rpc("upsert_heartbeat", &args).await.map_err(queue_error)?;
    ctx.after_response(channel_hub::heartbeat(ctx.env.clone(), tasks::presence_row(&args, &outcome)));
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
    platform_rpc(config, "reap", &json!({ "p_max_lost_leases": config.max_lost_leases })).await
}

pub async fn sweep_idempotency_keys(config: &Config) -> Result<Value, ApiError> {
    platform_rpc(config, "idempotency_sweep", &json!({})).await
}

/// The jobs the reaper changed.
pub fn reaped_ids(outcome: &Value) -> Vec<String> {
    ids(outcome["jobIds"].as_array().into_iter().flatten())
}

/// A worker token scoped to one executor may name only that executor.
fn check_executor(ctx: &RequestContext, executor_id: &Value, action: &str) -> Result<(), ApiError> {
    match &ctx.principal.executor_id {
        Some(scope) if executor_id.as_str() != Some(scope.as_str()) => Err(ApiError::new(
            403,
            "executor_forbidden",
            format!("this token may only {action} jobs of executor {scope}"),
        )),
        _ => Ok(()),
    }
}

/// Lease-checked changes carry the token's executor scope, so a scoped
/// worker's change to another executor's job finds no job (404).
fn scoped(ctx: &RequestContext, mut args: Value) -> Value {
    args["p_executor_id"] = ctx.principal.executor_id.clone().into();
    args
}

/// Job ids out of JSON values (strings), for the hubs' doorbells.
fn ids<'v>(values: impl IntoIterator<Item = &'v Value>) -> Vec<String> {
    values.into_iter().filter_map(Value::as_str).map(str::to_string).collect()
}

/// Folds the metrics counters of ended database sessions together.
pub async fn compact_job_counts(config: &Config) -> Result<Value, ApiError> {
    platform_rpc(config, "compact_job_counts", &json!({})).await
}

async fn platform_rpc(config: &Config, function: &str, args: &Value) -> Result<Value, ApiError> {
    platform::rpc(config, function, args).await.map_err(queue_error)
}

fn unexpected(function: &str, value: &Value) -> ApiError {
    worker::console_error!("{function} answered an unexpected shape: {value}");
    ApiError::new(502, "upstream_error", format!("unexpected answer from {function}")).with_retryable(true)
}
