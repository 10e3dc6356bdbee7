//! The read API, the dead-letter queue and metrics: parse
//! (`cogo_shared::queue::reads`), one typed SQL call, shape the answer. A user's reads go to PostgREST under their own
//! JWT, so row level security decides what they see.

use cogo_shared::http::body::Body;
use cogo_shared::http::ApiResponse;
use cogo_shared::queue::reads::{self, DlqRetry, JobArtifacts, JobGet, JobSummary, MetricsOverview};
use cogo_shared::queue::{history, metrics};
use cogo_shared::ApiError;
use serde_json::{json, Value};

use crate::pipeline::RequestContext;

fn ok(value: &Value) -> Result<ApiResponse, ApiError> {
    Ok(ApiResponse::json(200, value))
}

/// `GET job/:id` -> the job.
pub async fn job_get(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = reads::job_id(ctx.param("id"))?;
    ok(&ctx.call_as_caller(JobGet { job_id: id }).await?)
}

/// `GET job/:id/summary` -> `{job, artifacts, events, moreEvents}`.
pub async fn job_summary(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = reads::job_id(ctx.param("id"))?;
    ok(&ctx.call_as_caller(JobSummary { job_id: id }).await?)
}

/// `GET events/by-job/:id?after&limit` -> a page in seq order.
pub async fn job_events(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = reads::job_id(ctx.param("id"))?;
    let answer = ctx.call_as_caller(reads::job_events_args(&id, &ctx.query())?).await?;
    ok(&reads::page(answer, ctx.now_ms())?)
}

/// `GET artifacts/by-job/:id`, `GET artifacts-list?jobId=` -> `{items, count, ts}`.
pub async fn job_artifacts(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = match ctx.param("id") {
        Some(id) => reads::job_id(Some(id))?,
        None => ctx.query().req_uuid(&["jobId", "job_id", "id"])?,
    };
    let answer = ctx.call_as_caller(JobArtifacts { job_id: id }).await?;
    ok(&reads::list(answer, ctx.now_ms())?)
}

/// `GET job-status?id=` -> `{ok, job: {id, status, result}}`.
pub async fn job_status(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = ctx.query().req_uuid(&["id", "jobId"])?;
    let job = ctx.call_as_caller(JobGet { job_id: id }).await?;
    ok(&json!({ "ok": true, "job": { "id": job["id"], "status": job["status"], "result": job["result"] } }))
}

/// `GET jobs/recent` -> `{items, count, nextCursor, ts}`.
pub async fn jobs_recent(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let answer = ctx.call_as_caller(reads::jobs_recent_args(&ctx.query())?).await?;
    ok(&reads::page(answer, ctx.now_ms())?)
}

pub async fn metrics_overview(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    ok(&ctx.call_as_caller(MetricsOverview { latest: None }).await?)
}

/// `GET metrics-history?window&step` -> one point per step, oldest first.
pub async fn metrics_history(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    ok(&ctx.call_as_caller(history::metrics_history_args(&ctx.query())?).await?)
}

/// The same figures for Prometheus (without the latest jobs).
pub async fn metrics(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let overview = ctx.call_as_caller(MetricsOverview { latest: Some(0) }).await?;
    Ok(ApiResponse {
        status: 200,
        headers: vec![("Content-Type".into(), metrics::CONTENT_TYPE.into())],
        body: metrics::render(&overview).into_bytes(),
    })
}

/// `GET workers-active?window=` -> `{items, count, ts}`.
pub async fn workers_active(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let answer = ctx.call_as_caller(reads::workers_active_args(&ctx.query())?).await?;
    ok(&reads::list(answer, ctx.now_ms())?)
}

/// `GET dlq-list` -> `{items, count, nextCursor, ts}`.
pub async fn dlq_list(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let answer = ctx.call_as_caller(reads::dlq_list_args(&ctx.query())?).await?;
    ok(&reads::page(answer, ctx.now_ms())?)
}

/// `POST dlq-retry` `{dlqId}` -> `{jobId, retried}`; a filter ->
/// `{dryRun, count, items}`.
pub async fn dlq_retry(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let body: Body = ctx.body()?;
    let answer = match reads::dlq_retry_args(&body)? {
        DlqRetry::One(args) => {
            let outcome = ctx.call_ringing(args).await?;
            json!({ "ok": true, "jobId": outcome["jobId"], "retried": outcome["retried"], "dlqId": outcome["dlqId"] })
        }
        DlqRetry::Matching(args) => ctx.call_ringing(args).await?,
    };
    ok(&answer)
}
