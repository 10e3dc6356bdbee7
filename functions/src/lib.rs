//! The worker entry. Every request goes through [`handle`]: route, run the
//! endpoint, and turn any failure into the JSON error shape (workerd would
//! otherwise answer a bare "INTERNAL SERVER ERROR").

mod config;
mod health;
mod jobs;
mod routes;
mod transport;

use cogo_shared::body::{too_large, Body};
use cogo_shared::http::{ApiResponse, Method};
use cogo_shared::postgrest::{Postgrest, UpstreamError};
use cogo_shared::router::{find, RouteMatch};
use cogo_shared::ApiError;
use transport::FetchTransport;
use worker::{event, Context, Env, Headers, Request, Response, ScheduleContext, ScheduledEvent};

/// What a handler gets: the request, its route parameters and the config.
pub struct RequestContext {
    pub request: Request,
    pub params: Vec<(&'static str, String)>,
    pub config: std::rc::Rc<cogo_shared::config::Config>,
    pub env: Env,
}

impl RequestContext {
    pub fn now_ms(&self) -> i64 {
        js_sys::Date::now() as i64
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.request.headers().get(name).ok().flatten()
    }

    /// The body as one JSON object of at most `limit` bytes.
    pub async fn body(&mut self, limit: usize) -> Result<Body, ApiError> {
        // Refuse early when the declared length is already too much.
        if self.header("content-length").and_then(|l| l.parse::<usize>().ok()).is_some_and(|l| l > limit) {
            return Err(too_large(limit));
        }
        let bytes = self
            .request
            .bytes()
            .await
            .map_err(|_| ApiError::bad_request("invalid_body", "could not read the request body"))?;
        Body::parse(&bytes, limit)
    }

    pub fn transport(&self) -> FetchTransport {
        FetchTransport { timeout: std::time::Duration::from_millis(self.config.postgrest_timeout_ms.into()) }
    }

    /// PostgREST as the platform (service role).
    pub fn service_postgrest(&self) -> Postgrest {
        Postgrest::new(&self.config.postgrest_url, &self.config.service_role_key)
    }

    /// Calls a `cogo` schema function as the platform.
    pub async fn rpc(&self, function: &str, args: &serde_json::Value) -> Result<serde_json::Value, UpstreamError> {
        let postgrest = self.service_postgrest();
        postgrest.send(&self.transport(), postgrest.rpc("cogo", function, args)).await
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
        Ok(config) => match jobs::reap(&config).await {
            Ok(outcome) => worker::console_log!("reaper: {outcome}"),
            Err(e) => worker::console_error!("reaper failed: {e}"),
        },
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
    let ctx = RequestContext { request, params, config, env };
    routes::dispatch(endpoint, ctx).await
}

fn into_worker_response(response: ApiResponse, is_head: bool) -> worker::Result<Response> {
    let headers = Headers::new();
    for (name, value) in &response.headers {
        headers.append(name, value)?;
    }
    let body = if is_head { Vec::new() } else { response.body };
    Ok(Response::from_bytes(body)?.with_status(response.status).with_headers(headers))
}
