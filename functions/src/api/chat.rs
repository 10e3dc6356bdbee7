//! `POST chat` (the SSE-first protocol) and `GET trace-status`. A message
//! is a `chat.message` job owned by the caller; its id is the trace id.

use cogo_shared::http::routes::Endpoint;
use cogo_shared::http::ApiResponse;
use cogo_shared::queue::idempotency;
use cogo_shared::queue::reads::{JobEventsPage, JobGet};
use cogo_shared::realtime::chat::{self, wants_stream};
use cogo_shared::time::unix_millis;
use cogo_shared::ApiError;
use serde_json::json;

use crate::api::streams;
use crate::pipeline::{Reply, RequestContext};

/// Streams `ready`, `chat.delta`..., then `chat.done` or `error`; a client
/// that does not take `text/event-stream` gets 202 `{ok, trace_id, status:
/// "handoff"}` and polls trace-status. Sending the same idempotency key
/// again with `Last-Event-ID` resumes the stream of the same message.
pub async fn chat(ctx: RequestContext) -> Result<Reply, ApiError> {
    let request = chat::chat_request(&ctx.body()?, ctx.header("idempotency-key").as_deref())?;
    let scope = idempotency::scope(Endpoint::Chat.id(), &ctx.principal);
    let outcome = ctx.call_ringing(chat::enqueue_args(&request, ctx.principal.job_owner()?, &scope)).await?;
    let trace_id = outcome["jobId"].as_str().unwrap_or_default().to_string();
    if !wants_stream(ctx.header("accept").as_deref()) {
        return Ok(ApiResponse::json(202, &json!({ "ok": true, "trace_id": trace_id, "status": "handoff" })).into());
    }
    let after = streams::last_event_id(&ctx)?;
    let job = ctx.call_as_caller(JobGet { job_id: trace_id.clone() }).await?;
    let started_ms = job["created_at"].as_str().and_then(unix_millis).unwrap_or_else(|| ctx.now_ms());
    let request_id = request.request_id.clone().unwrap_or_else(|| trace_id.clone());
    streams::stream(&ctx, &trace_id, after, Some((&request_id, started_ms))).await
}

/// `GET trace-status?trace_id=` -> `{ok, trace_id, status, events, result}`.
pub async fn trace_status(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let trace_id = ctx.query().req_uuid(&["trace_id", "traceId"])?;
    let job = ctx.call_as_caller(JobGet { job_id: trace_id.clone() }).await?;
    let events = ctx.call_as_caller(JobEventsPage { job_id: trace_id.clone(), after: 0, limit: 1000 }).await?;
    Ok(ApiResponse::json(
        200,
        &json!({
            "ok": true, "trace_id": trace_id, "status": chat::trace_status(job["status"].as_str().unwrap_or("")),
            "events": events["items"], "result": job["result"],
        }),
    ))
}
