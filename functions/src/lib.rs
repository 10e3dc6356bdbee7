//! The worker entry. Every request goes through [`handle`]: route, run the
//! endpoint, and turn any failure into the JSON error shape (workerd would
//! otherwise answer a bare "INTERNAL SERVER ERROR").

#![allow(clippy::result_large_err)] // errors are the cold path

mod config;
mod health;
mod jobs;
mod platform;
mod routes;
mod transport;

use cogo_shared::body::{too_large, Body};
use cogo_shared::http::{ApiResponse, Method};
use cogo_shared::idempotency;
use cogo_shared::postgrest::UpstreamError;
use cogo_shared::router::{find, RouteMatch};
use cogo_shared::ApiError;
use worker::{event, Context, Env, Headers, Request, Response, ScheduleContext, ScheduledEvent};

/// What a handler gets: the request, its route parameters and the config.
pub struct RequestContext {
    pub request: Request,
    /// The body of a POST, read once (size-checked) before dispatch.
    pub body_bytes: Vec<u8>,
    pub params: Vec<(&'static str, String)>,
    pub config: std::rc::Rc<cogo_shared::config::Config>,
}

impl RequestContext {
    pub fn now_ms(&self) -> i64 {
        js_sys::Date::now() as i64
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.request.headers().get(name).ok().flatten()
    }

    /// The body as one JSON object.
    pub fn body(&self) -> Result<Body, ApiError> {
        Body::parse(&self.body_bytes, self.config.max_body_bytes)
    }

    /// Calls a `cogo` schema function as the platform.
    pub async fn rpc(&self, function: &str, args: &serde_json::Value) -> Result<serde_json::Value, UpstreamError> {
        platform::rpc(&self.config, function, args).await
    }
}

#[event(fetch)]
async fn fetch(request: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let is_head = request.method() == worker::Method::Head;
    let response = match handle(request, env).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    into_worker_response(response, is_head)
}

/// The cron trigger: the reaper, every minute (wrangler.toml `[triggers]`).
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    match config::load(&env) {
        Ok(config) => {
            match jobs::reap(&config).await {
                Ok(outcome) => worker::console_log!("reaper: {outcome}"),
                Err(e) => worker::console_error!("reaper failed: {e}"),
            }
            if let Err(e) = jobs::sweep_idempotency_keys(&config).await {
                worker::console_error!("idempotency sweep failed: {e}");
            }
        }
        Err(e) => worker::console_error!("reaper not run: {e}"),
    }
}

async fn handle(request: Request, env: Env) -> Result<ApiResponse, ApiError> {
    let method = Method::parse(request.method().as_ref()).ok_or_else(|| {
        ApiError::new(405, "method_not_allowed", format!("method {} is not supported", request.method()))
    })?;
    let path = request.path();
    let (endpoint, params) = match find(routes::ROUTES, method, &path) {
        RouteMatch::Found { endpoint, params } => (*endpoint, params),
        RouteMatch::MethodNotAllowed { allowed } if method == Method::Options => {
            return Ok(ApiResponse { status: 204, headers: vec![("Allow".into(), allowed.join(", "))], body: vec![] });
        }
        RouteMatch::MethodNotAllowed { allowed } => {
            return Err(ApiError::method_not_allowed(method.as_str(), &path, &allowed));
        }
        RouteMatch::NotFound => return Err(ApiError::not_found(format!("no route for {path}"))),
    };
    let config = config::load(&env)?;
    let mut request = request;
    let body_bytes =
        if method == Method::Post { read_body(&mut request, config.max_body_bytes).await? } else { Vec::new() };
    let ctx = RequestContext { request, body_bytes, params, config };
    match ctx.header(idempotency::HEADER) {
        Some(key) if method == Method::Post => idempotent(ctx, endpoint, &key).await,
        _ => routes::dispatch(endpoint, ctx).await,
    }
}

async fn read_body(request: &mut Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    // Refuse early when the declared length is already too much.
    let declared = request.headers().get("content-length").ok().flatten().and_then(|l| l.parse::<usize>().ok());
    if declared.is_some_and(|l| l > limit) {
        return Err(too_large(limit));
    }
    let bytes =
        request.bytes().await.map_err(|_| ApiError::bad_request("invalid_body", "could not read the request body"))?;
    if bytes.len() > limit {
        return Err(too_large(limit));
    }
    Ok(bytes)
}

/// Runs a POST under its Idempotency-Key: replay a stored response, refuse
/// a reused or in-flight key, or run it and store what it answered.
async fn idempotent(ctx: RequestContext, endpoint: routes::Endpoint, key: &str) -> Result<ApiResponse, ApiError> {
    idempotency::check_key(key)?;
    // Keys are scoped by endpoint, whichever URL family reached it.
    let route = &format!("{endpoint:?}");
    let principal = principal_of(&ctx);
    let begin = idempotency::begin_args(&principal, route, key, &ctx.body_bytes, ctx.config.idempotency_ttl_seconds);
    let answer = ctx.rpc("idempotency_begin", &begin).await?;
    if let idempotency::Begin::Replay(response) = idempotency::read_begin(&answer)? {
        return Ok(response);
    }
    let config = ctx.config.clone();
    let response = match routes::dispatch(endpoint, ctx).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    let finish = idempotency::finish_args(&principal, route, key, &response);
    if let Err(e) = platform::rpc(&config, "idempotency_finish", &finish).await {
        // The request itself succeeded; a lost record only means a repeat runs again.
        worker::console_error!("storing the idempotent response failed: {}", e.reason());
    }
    Ok(response)
}

/// Who the key belongs to: a digest of the caller's credential, so two
/// callers never share a key space.
fn principal_of(ctx: &RequestContext) -> String {
    use sha2::{Digest, Sha256};
    let credential = ctx.header("authorization").or_else(|| ctx.header("apikey")).unwrap_or_default();
    let digest = Sha256::digest(credential.as_bytes());
    format!("cred:{}", digest.iter().take(12).map(|b| format!("{b:02x}")).collect::<String>())
}

fn into_worker_response(response: ApiResponse, is_head: bool) -> worker::Result<Response> {
    let headers = Headers::new();
    for (name, value) in &response.headers {
        headers.append(name, value)?;
    }
    let body = if is_head { Vec::new() } else { response.body };
    Ok(Response::from_bytes(body)?.with_status(response.status).with_headers(headers))
}
