//! The worker entry. Every request goes through [`handle`]: route, run the
//! endpoint, and turn any failure into the JSON error shape (workerd would
//! otherwise answer a bare "INTERNAL SERVER ERROR").

mod config;
mod health;
mod routes;
mod transport;

use cogo_shared::http::{ApiResponse, Method};
use cogo_shared::router::{find, RouteMatch};
use cogo_shared::ApiError;
use worker::{event, Context, Env, Headers, Request, Response};

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
