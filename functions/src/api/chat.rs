//! `POST chat` (the SSE-first protocol) and `GET trace-status`. A message
//! is a `chat.message` job owned by the caller; its id is the trace id.

use cogo_shared::auth::Role;
use cogo_shared::http::routes::Endpoint;
use cogo_shared::http::ApiResponse;
use cogo_shared::queue::idempotency;
use cogo_shared::queue::tasks::queue_error;
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
    // The platform's messages belong to nobody; a user's to the user.
    let owner = match ctx.principal.role {
        Role::Service => None,
        _ => Some(
            ctx.principal.sub.as_deref().ok_or_else(|| ApiError::new(403, "forbidden", "a user token without sub"))?,
        ),
    };
    let args = chat::enqueue_args(&request, owner, &idempotency::scope(Endpoint::Chat.id(), &ctx.principal));
    let outcome = ctx.rpc("enqueue", &args).await.map_err(queue_error)?;
    let trace_id = outcome["jobId"].as_str().unwrap_or_default().to_string();
    ctx.notify_jobs(vec![trace_id.clone()]);
    if !wants_stream(ctx.header("accept").as_deref()) {
        return Ok(ApiResponse::json(202, &json!({ "ok": true, "trace_id": trace_id, "status": "handoff" })).into());
    }
    let after = streams::last_event_id(&ctx)?;
    let job = ctx.read("job_get", &json!({ "p_job_id": trace_id })).await?;
    let started_ms = job["created_at"].as_str().and_then(unix_millis).unwrap_or_else(|| ctx.now_ms());
    let request_id = request.request_id.clone().unwrap_or_else(|| trace_id.clone());
    streams::stream(&ctx, &trace_id, after, Some((&request_id, started_ms))).await
}

/// `GET trace-status?trace_id=` -> `{ok, trace_id, status, events, result}`.
pub async fn trace_status(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let trace_id = ctx.query().req_uuid(&["trace_id", "traceId"])?;
    let job = ctx.read("job_get", &json!({ "p_job_id": trace_id })).await?;
    let events = ctx.read("job_events_page", &json!({ "p_job_id": trace_id, "p_after": 0, "p_limit": 1000 })).await?;
    Ok(ApiResponse::json(
        200,
        &json!({
            "ok": true, "trace_id": trace_id, "status": chat::trace_status(job["status"].as_str().unwrap_or("")),
            "events": events["items"], "result": job["result"],
        }),
    ))
}
