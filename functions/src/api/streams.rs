//! Event streams: `GET job-events?id=` (a job's events, served by the job's
//! hub; the caller must be able to read the job, so someone else's is 404),
//! `GET channel?name=`, `GET workers-stream`, `POST broadcast`, and `POST
//! stream-ticket` (a ticket that opens one of them from a browser).

use cogo_shared::auth::{authorize, ticket};
use cogo_shared::http::query::invalid;
use cogo_shared::http::routes::{allowed_roles, Endpoint};
use cogo_shared::http::sse;
use cogo_shared::http::ApiResponse;
use cogo_shared::queue::reads::JobGet;
use cogo_shared::realtime::channels::{self, Channel};
use cogo_shared::time::iso8601;
use cogo_shared::ApiError;
use serde_json::json;
use worker::{Response, ResponseBody};

use crate::api::artifacts::link_secret;
use crate::durable::{channel_hub, job_hub};
use crate::pipeline::{Reply, RequestContext};

pub async fn job_event_stream(ctx: RequestContext) -> Result<Reply, ApiError> {
    let job_id = ctx.query().req_uuid(&["id", "jobId"])?;
    job_stream(&ctx, &job_id).await
}

async fn job_stream(ctx: &RequestContext, job_id: &str) -> Result<Reply, ApiError> {
    let after = last_event_id(ctx)?;
    ctx.call_as_caller(JobGet { job_id: job_id.to_string() }).await?;
    stream(ctx, job_id, after, None).await
}

/// `POST stream-ticket {stream, jobId? | name?}` -> `{ok, ticket, expiresAt,
/// url}`: checked as opening the stream now would be (role, the job is the
/// caller's, the channel is readable), so the ticket grants nothing more.
pub async fn stream_ticket(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let request = ticket::ticket_request(&ctx.body()?)?;
    authorize(&ctx.principal, allowed_roles(request.stream))?;
    match request.stream {
        Endpoint::JobEventStream => {
            ctx.call_as_caller(JobGet { job_id: request.resource.clone() }).await?;
        }
        Endpoint::ChannelStream => {
            let channel = Channel::parse(&request.resource)?;
            channels::may_read(&channel, &ctx.principal)?;
            if let Channel::Job(job_id) = channel {
                ctx.call_as_caller(JobGet { job_id }).await?;
            }
        }
        _ => {}
    }
    let (ticket, expires_at) =
        ticket::issue(link_secret(&ctx)?, &ctx.principal, request.stream.id(), &request.resource, ctx.now_ms() / 1000);
    let url = format!("{}{}ticket={ticket}", request.path, if request.path.contains('?') { '&' } else { '?' });
    Ok(ApiResponse::json(
        200,
        &json!({ "ok": true, "ticket": ticket, "expiresAt": iso8601(expires_at * 1000), "url": url }),
    ))
}

/// `GET channel?name=`: `jobs:{id}` is the job's event stream (owner or
/// platform, as job-events); `agents:{id}` (that agent or the platform) and
/// `system:events` (any member) are broadcast channels.
pub async fn channel_stream(ctx: RequestContext) -> Result<Reply, ApiError> {
    let name = ctx.query().raw(&["name", "channel"]).unwrap_or_default().to_string();
    let channel = Channel::parse(&name)?;
    channels::may_read(&channel, &ctx.principal)?;
    match channel {
        Channel::Job(job_id) => job_stream(&ctx, &job_id).await,
        other => broadcast_stream(&ctx, &other.name()).await,
    }
}

/// `GET workers-stream`: joins, updates and leaves of workers.
pub async fn workers_stream(ctx: RequestContext) -> Result<Reply, ApiError> {
    broadcast_stream(&ctx, channels::WORKERS).await
}

async fn broadcast_stream(ctx: &RequestContext, name: &str) -> Result<Reply, ApiError> {
    let after = match last_event_id(ctx)? {
        0 => None,
        seq => Some(seq),
    };
    let upstream = channel_hub::subscribe(&ctx.env, name, after).await.map_err(|e| unavailable(name, e))?;
    rewrap(upstream, name)
}

/// `POST broadcast {channel, type, payload}` -> `{ok, channel, seq}`.
pub async fn broadcast(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let (channel, kind, payload) = channels::broadcast_request(&ctx.body()?, &ctx.principal)?;
    let name = channel.name();
    let seq = channel_hub::publish(&ctx.env, &name, &kind, &payload).await.map_err(|e| unavailable(&name, e))?;
    Ok(ApiResponse::json(200, &json!({ "ok": true, "channel": name, "seq": seq })))
}

fn unavailable(what: &str, e: worker::Error) -> ApiError {
    worker::console_error!("stream {what}: {e}");
    ApiError::new(503, "stream_unavailable", "the event stream could not be opened").with_retryable(true)
}

/// A hub's stream in a response of our own (a fetched response's headers
/// are immutable; ours get CORS added).
fn rewrap(upstream: Response, what: &str) -> Result<Reply, ApiError> {
    let ResponseBody::Stream(body) = upstream.body() else {
        return Err(unavailable(what, "the hub answered without a stream".into()));
    };
    let mut response = Response::from_body(ResponseBody::Stream(body.clone())).map_err(|e| unavailable(what, e))?;
    for (name, value) in sse::HEADERS {
        response.headers_mut().set(name, value).map_err(|e| unavailable(what, e))?;
    }
    Ok(Reply::Streamed(response))
}

/// Where a stream resumes: `Last-Event-ID` (reconnecting clients), else
/// `?after=`, else the start.
pub fn last_event_id(ctx: &RequestContext) -> Result<i64, ApiError> {
    match ctx.header("last-event-id").or_else(|| ctx.query().raw(&["after"]).map(str::to_string)) {
        None => Ok(0),
        Some(raw) => raw.trim().parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| invalid("after", "an event seq")),
    }
}

/// The job hub's stream for `job_id` (see `job_hub::subscribe`).
pub async fn stream(
    ctx: &RequestContext,
    job_id: &str,
    after: i64,
    chat: Option<(&str, i64)>,
) -> Result<Reply, ApiError> {
    let upstream = job_hub::subscribe(&ctx.env, job_id, after, chat).await.map_err(|e| unavailable(job_id, e))?;
    rewrap(upstream, job_id)
}
