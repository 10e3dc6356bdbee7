//! The queue's endpoints: parse (`cogo_shared::queue::tasks`), one typed
//! SQL call, respond.

use cogo_shared::auth::{Role, Via};
use cogo_shared::config::Config;
use cogo_shared::http::routes::Endpoint;
use cogo_shared::http::ApiResponse;
use cogo_shared::queue::doorbells::{self, Bell};
use cogo_shared::queue::idempotency::{self, IdempotencySweep};
use cogo_shared::queue::tasks::{self, CompactJobCounts, CompleteMany, CompleteManyNext, CompleteNext, Reap};
use cogo_shared::ApiError;
use serde_json::{json, Value};

use crate::durable::{channel_hub, claim_hub};
use crate::pipeline::RequestContext;
use crate::runtime::platform;

/// `POST task.assign` -> `{jobId, queued}` (`queued: false` on a repeat).
pub async fn task_assign(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let body = ctx.body()?;
    let key = ctx.header("idempotency-key");
    let scope = idempotency::scope(Endpoint::TaskAssign.id(), &ctx.principal);
    let enqueue = tasks::assign_args(&body, key.as_deref(), ctx.principal.job_owner()?, &scope)?;
    let outcome = ctx.call_ringing(enqueue).await?;
    Ok(ApiResponse::json(200, &outcome))
}

/// `POST task.claim` -> `{job}` / `{job: null}`, or `{jobs}` with `limit`.
/// With `waitSeconds` and nothing ready, the request waits in the
/// executor's claim hub for a job to become ready.
pub async fn task_claim(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let body = ctx.body()?;
    let request = tasks::claim_args(&body)?;
    check_executor(&ctx, &request.claim.executor_id, "claim")?;
    let since_ms = ctx.now_ms() as f64;
    let mut claimed = ctx.call(request.claim.clone()).await?;
    let wait_seconds = request.wait_seconds.min(ctx.config.claim_max_wait_seconds.into());
    if claimed.is_empty() && wait_seconds > 0 {
        let wait_ms = (wait_seconds * 1000) as u32;
        claimed = claim_hub::wait(&ctx.env, request.claim, wait_ms, since_ms)
            .await
            .map_err(|e| ApiError::new(503, "claim_wait_unavailable", format!("waiting for a job failed: {e}")))?;
    }
    let jobs = claimed_jobs(&ctx, claimed);
    Ok(ApiResponse::json(200, &tasks::claim_answer(jobs, request.batch)))
}

/// Claimed jobs as the workers read them; the hubs of watched ones are rung.
fn claimed_jobs(ctx: &RequestContext, jobs: Vec<Value>) -> Vec<Value> {
    let mut bells = Vec::new();
    let jobs = jobs
        .into_iter()
        .map(|mut job| {
            bells.extend(doorbells::take_watched(&mut job));
            tasks::claimed_job(job)
        })
        .collect();
    ctx.ring(bells);
    jobs
}

/// `POST task.result` -> `{ok: true, status}`, or per-item outcomes for
/// the batch form `{results: [...]}`. With `next`, the next claim for the
/// same executor and worker is made in the same transaction and answered
/// as task.claim answers it (`job`, or `jobs` with `next.limit`).
pub async fn task_result(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let body = ctx.body()?;
    let next = tasks::next_args(&body)?;
    let next_batch = next.as_ref().map(|(_, batch)| *batch);
    let executor_id = ctx.principal.executor_id.clone();
    if let Some(results) = tasks::result_batch(&body)? {
        let results = CompleteMany { results, executor_id };
        let mut answer = match next {
            None => ctx.call_ringing(results).await?,
            Some((next, _)) => ctx.call_ringing(CompleteManyNext { results, next }).await?,
        };
        let mut reply = json!({ "ok": true, "results": answer["results"].take() });
        add_next(&ctx, &mut reply, &mut answer, next_batch);
        return Ok(ApiResponse::json(200, &reply));
    }
    // Lease-checked changes carry the token's executor scope, so a scoped
    // worker's change to another executor's job finds no job (404).
    let complete = tasks::Complete { executor_id, ..tasks::result_args(&body)? };
    let mut outcome = match next {
        None => ctx.call_ringing(complete).await?,
        Some((next, _)) => ctx.call_ringing(CompleteNext { complete, next }).await?,
    };
    let mut reply = json!({ "ok": true, "status": outcome["status"], "nextRunAt": outcome.get("nextRunAt") });
    add_next(&ctx, &mut reply, &mut outcome, next_batch);
    Ok(ApiResponse::json(200, &reply))
}

/// Adds the jobs claimed for `next` to `reply`, as task.claim answers them
/// (`batch`: whether `next` had a `limit`; None: there was no `next`).
fn add_next(ctx: &RequestContext, reply: &mut Value, answer: &mut Value, batch: Option<bool>) {
    let Some(batch) = batch else { return };
    let claimed = answer["jobs"].as_array_mut().map(std::mem::take).unwrap_or_default();
    let jobs = claimed_jobs(ctx, claimed);
    if let (Value::Object(reply), Value::Object(claim)) = (reply, tasks::claim_answer(jobs, batch)) {
        reply.extend(claim);
    }
}

/// `POST task.progress` -> `{ok, cancelRequested}`.
pub async fn task_progress(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let progress =
        tasks::Progress { executor_id: ctx.principal.executor_id.clone(), ..tasks::progress_args(&ctx.body()?)? };
    let outcome = ctx.call_ringing(progress).await?;
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
    let outcome = ctx.call_ringing(cancel).await?;
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

/// `GET leases-release`: reap now -> `{ok, released, deadLettered, cancelled}`.
pub async fn leases_release(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let (outcome, bells) = reap(&ctx.config).await?;
    ctx.ring(bells);
    Ok(ApiResponse::json(
        200,
        &json!({ "ok": true, "released": outcome["released"], "deadLettered": outcome["deadLettered"],
                 "cancelled": outcome["cancelled"] }),
    ))
}

/// Expired leases back to the queue, or to the dead letters past the
/// bound, or cancelled when that was requested; with the doorbells to ring.
pub async fn reap(config: &Config) -> Result<(Value, Vec<Bell>), ApiError> {
    let mut outcome = platform::call(config, Reap { max_lost_leases: config.max_lost_leases }).await?;
    let bells = doorbells::take(&mut outcome);
    Ok((outcome, bells))
}

pub async fn sweep_idempotency_keys(config: &Config) -> Result<Value, ApiError> {
    platform::call(config, IdempotencySweep {}).await
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

/// Folds the metrics counters of ended database sessions together.
pub async fn compact_job_counts(config: &Config) -> Result<Value, ApiError> {
    platform::call(config, CompactJobCounts {}).await
}
