//! `GET job-events?id=`: a job's events as Server-Sent Events, served by
//! the job's hub (see `hub`). The caller must be able to read the job: a
//! user's own, or any for the platform; someone else's is 404.

use cogo_shared::query::invalid;
use cogo_shared::sse;
use cogo_shared::ApiError;
use serde_json::json;
use worker::{Response, ResponseBody};

use crate::{hub, Reply, RequestContext};

pub async fn job_events(ctx: RequestContext) -> Result<Reply, ApiError> {
    let job_id = ctx.query().req_uuid(&["id", "jobId"])?;
    let after = last_event_id(&ctx)?;
    ctx.read("job_get", &json!({ "p_job_id": job_id })).await?;
    stream(&ctx, &job_id, after, None).await
}

/// Where a stream resumes: `Last-Event-ID` (reconnecting clients), else
/// `?after=`, else the start.
pub fn last_event_id(ctx: &RequestContext) -> Result<i64, ApiError> {
    match ctx.header("last-event-id").or_else(|| ctx.query().raw(&["after"]).map(str::to_string)) {
        None => Ok(0),
        Some(raw) => raw.trim().parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| invalid("after", "an event seq")),
    }
}

/// The hub's stream for `job_id`, re-wrapped so CORS headers can be added
/// (a fetched response's headers are immutable).
pub async fn stream(
    ctx: &RequestContext,
    job_id: &str,
    after: i64,
    chat: Option<(&str, i64)>,
) -> Result<Reply, ApiError> {
    let unavailable = |e: worker::Error| {
        worker::console_error!("job hub {job_id}: {e}");
        ApiError::new(503, "stream_unavailable", "the job's event stream could not be opened").with_retryable(true)
    };
    let upstream = hub::subscribe(&ctx.env, job_id, after, chat).await.map_err(unavailable)?;
    let ResponseBody::Stream(body) = upstream.body() else {
        return Err(unavailable("the hub answered without a stream".into()));
    };
    let mut response = Response::from_body(ResponseBody::Stream(body.clone())).map_err(unavailable)?;
    for (name, value) in sse::HEADERS {
        response.headers_mut().set(name, value).map_err(unavailable)?;
    }
    Ok(Reply::Streamed(response))
}
