//! The request pipeline, in order: route (an unknown method or path is
//! answered here), CORS preflight, body (size-capped per endpoint),
//! authenticate (JWT, keys, signatures; a signature is spent once), authorize
//! (the route's roles), rate limit, idempotency, dispatch to the handler
//! (`api/`), and the error shape.

use cogo_shared::auth::ratelimit::Limit;
use cogo_shared::auth::{authenticate, authorize, bearer_token, ticket, Credentials, Principal, Role, Via};
use cogo_shared::config::Config;
use cogo_shared::http::body::{too_large, Body};
use cogo_shared::http::cors;
use cogo_shared::http::error::ErrorLog;
use cogo_shared::http::query::Query;
use cogo_shared::http::router::{find, RouteMatch};
use cogo_shared::http::routes::{Endpoint, ROUTES};
use cogo_shared::http::{ApiResponse, Method};
use cogo_shared::postgrest::SqlCall;
use cogo_shared::queue::doorbells::{self, Bell};
use cogo_shared::queue::idempotency;
use cogo_shared::ApiError;
use futures::StreamExt;
use worker::{Context, Env, Headers, Request, Response};

use crate::api::{self, artifacts};
use crate::durable::{self, rate_limiter, signature_ledger};
use crate::runtime::{config, jwks, platform};

/// What a handler gets: the request, its body, the config and the caller.
pub struct RequestContext {
    pub request: Request,
    /// The body of a POST, read once (size-checked) before dispatch.
    pub body_bytes: Vec<u8>,
    pub config: std::rc::Rc<Config>,
    pub principal: Principal,
    /// The route's `:name` path segments.
    pub params: Vec<(&'static str, String)>,
    pub env: Env,
    /// The largest body this endpoint takes.
    pub body_limit: usize,
    /// Keeps work going after the response (doorbells).
    pub worker_ctx: Context,
    /// How many hubs this request rang (the `Cogo-Doorbells` header).
    pub rung: std::rc::Rc<std::cell::Cell<usize>>,
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
        Body::parse(&self.body_bytes, self.body_limit)
    }

    /// The body as one JSON object, freeing its bytes once parsed: for
    /// whole documents, where the bytes and their parse would otherwise
    /// both stay alive.
    pub fn take_body(&mut self) -> Result<Body, ApiError> {
        let bytes = std::mem::take(&mut self.body_bytes);
        Body::parse(&bytes, self.body_limit)
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// Rings `bells` once the response is on its way: their change has
    /// committed, and listeners get it without the caller waiting.
    pub fn ring(&self, bells: Vec<Bell>) {
        if bells.is_empty() {
            return;
        }
        self.rung.set(self.rung.get() + bells.len());
        let env = self.env.clone();
        self.worker_ctx.wait_until(async move { durable::ring(&env, bells).await });
    }

    /// Calls a SQL function that changes jobs as the platform, and rings the
    /// doorbells its answer names (taking them out of it).
    pub async fn call_ringing<C: SqlCall<Output = serde_json::Value>>(
        &self,
        call: C,
    ) -> Result<serde_json::Value, ApiError> {
        let mut answer = self.call(call).await?;
        self.ring(doorbells::take(&mut answer));
        Ok(answer)
    }

    /// Runs `work` after the response is on its way.
    pub fn after_response(&self, work: impl std::future::Future<Output = ()> + 'static) {
        self.worker_ctx.wait_until(work);
    }

    /// `scheme://host[:port]` for links back to this bundle: `PUBLIC_URL`,
    /// else (local development only) a loopback request's own origin.
    pub fn origin(&self) -> Result<String, ApiError> {
        let url =
            self.request.url().map_err(|_| ApiError::bad_request("invalid_url", "the request URL is not valid"))?;
        cogo_shared::storage::artifacts::link_origin(
            self.config.public_url.as_deref(),
            &url.origin().ascii_serialization(),
        )
    }

    pub fn query(&self) -> Query {
        Query::parse(self.request.url().ok().as_ref().and_then(|u| u.query()))
    }

    /// Calls a SQL function as the platform.
    pub async fn call<C: SqlCall>(&self, call: C) -> Result<C::Output, ApiError> {
        platform::call(&self.config, call).await
    }

    /// Calls a SQL read function as the caller: a user under their own JWT
    /// (row level security decides), the platform as itself.
    pub async fn call_as_caller<C: SqlCall>(&self, call: C) -> Result<C::Output, ApiError> {
        let authorization = match (self.principal.role, self.principal.via) {
            (Role::Authenticated, Via::Jwt) => self.header("authorization"),
            _ => None,
        };
        let jwt = authorization.as_deref().and_then(bearer_token);
        platform::call_as(&self.config, jwt, call).await
    }
}

/// What a handler answers: a response built in memory, or one the runtime
/// streams (artifact downloads).
pub enum Reply {
    Buffered(ApiResponse),
    Streamed(Response),
}

impl From<ApiResponse> for Reply {
    fn from(response: ApiResponse) -> Reply {
        Reply::Buffered(response)
    }
}

impl Reply {
    fn add_headers(&mut self, headers: Vec<(String, String)>) {
        match self {
            Reply::Buffered(r) => r.headers.extend(headers),
            Reply::Streamed(r) => {
                for (name, value) in headers {
                    let _ = r.headers_mut().append(&name, &value);
                }
            }
        }
    }

    fn has_header(&self, name: &str) -> bool {
        match self {
            Reply::Buffered(r) => r.header(name).is_some(),
            Reply::Streamed(r) => r.headers().has(name).unwrap_or(false),
        }
    }
}

/// Serves one request: route, run the endpoint, and turn any failure into the
/// JSON error shape (workerd would otherwise answer a bare "INTERNAL SERVER
/// ERROR"), with CORS headers on every answer.
pub async fn serve(request: Request, env: Env, worker_ctx: Context) -> worker::Result<Response> {
    let is_head = request.method() == worker::Method::Head;
    let origin = request.headers().get("origin").ok().flatten();
    let cors = match (&origin, config::load(&env)) {
        (Some(origin), Ok(config)) => cors::response_headers(&config.cors_origins, Some(origin)),
        _ => Vec::new(),
    };
    let request_id = platform::random_uuid();
    let (method, path) = (request.inner().method(), request.path());
    let mut trace = Trace::default();
    let mut reply = match handle(request, env, worker_ctx, &mut trace).await {
        Ok(r) => r,
        Err(e) => {
            let caller = trace.caller.as_deref();
            let route = trace.endpoint.map(Endpoint::id);
            let log = ErrorLog { request_id: &request_id, method: &method, path: &path, route, caller };
            if e.status >= 500 {
                worker::console_error!("{}", log.line(&e));
            } else {
                worker::console_log!("{}", log.line(&e));
            }
            let e = e.with_request_id(&request_id);
            // figma-compat answers every error in the plugin's shape.
            match trace.endpoint {
                Some(endpoint) if endpoint.is_figma() => cogo_shared::figma::plugin_error(e).into(),
                _ => e.into_response().into(),
            }
        }
    };
    reply.add_headers(vec![(REQUEST_ID_HEADER.into(), request_id)]);
    // A preflight answer already carries its own CORS headers.
    if !reply.has_header("access-control-allow-origin") {
        reply.add_headers(cors);
    }
    match reply {
        Reply::Buffered(response) => into_worker_response(response, is_head),
        Reply::Streamed(response) => Ok(response),
    }
}

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What the pipeline has learnt of a request by the time it fails, for the
/// error's log line.
#[derive(Default)]
struct Trace {
    endpoint: Option<Endpoint>,
    caller: Option<String>,
}

async fn handle(request: Request, env: Env, worker_ctx: Context, trace: &mut Trace) -> Result<Reply, ApiError> {
    // The runtime's own method string: workers-rs takes methods it does not
    // know (PROPFIND, ...) for GET. Those no route serves (None) answer 405.
    let raw_method = request.inner().method();
    let method = Method::parse(&raw_method);
    let path = request.path();
    let route = find(ROUTES, method, &path);
    // A CORS preflight needs no credential: browsers send none with it.
    let origin = request.headers().get("origin").ok().flatten();
    let preflight = request.headers().get("access-control-request-method").ok().flatten().is_some();
    if method == Some(Method::Options) && preflight && !matches!(route, RouteMatch::NotFound) {
        if let Some(origin) = origin {
            return cors::preflight(&config::load(&env)?.cors_origins, &origin).map(Reply::from);
        }
    }
    let (endpoint, allow, params, method) = match (route, method) {
        (RouteMatch::Found { endpoint, allow, params }, Some(method)) => (*endpoint, allow, params, method),
        (RouteMatch::MethodNotAllowed { allowed }, Some(Method::Options)) => {
            let allow = vec![("Allow".into(), allowed.join(", "))];
            return Ok(ApiResponse { status: 204, headers: allow, body: vec![] }.into());
        }
        (RouteMatch::MethodNotAllowed { allowed }, _) => {
            return Err(ApiError::method_not_allowed(&raw_method, &path, &allowed));
        }
        _ => return Err(ApiError::not_found(format!("no route for {path}"))),
    };
    trace.endpoint = Some(endpoint);
    let config = config::load(&env)?;
    let body_limit = endpoint.body_limit(&config);
    let mut request = request;
    let body_bytes = if method == Method::Post { read_body(&mut request, body_limit).await? } else { Vec::new() };
    let principal = match stream_ticket(&request, &config, endpoint)? {
        Some(principal) => principal,
        None => authenticate_request(&request, &env, &config, method, &body_bytes).await?,
    };
    trace.caller = Some(principal.id());
    authorize(&principal, allow)?;
    let mut headers = rate_limit(&request, &env, &config, &principal, endpoint).await?;
    let rung = std::rc::Rc::new(std::cell::Cell::new(0));
    let ctx = RequestContext {
        request,
        body_bytes,
        config,
        principal,
        params,
        env,
        body_limit,
        worker_ctx,
        rung: rung.clone(),
    };
    let result = match ctx.header(idempotency::HEADER) {
        // A chat message is idempotent by its key already, and answers a stream.
        Some(key) if method == Method::Post && endpoint != Endpoint::Chat => idempotent(ctx, endpoint, &key).await,
        _ => api::dispatch(endpoint, ctx).await,
    };
    // Says how many hubs the request woke: none for a change nobody
    // listens to.
    if rung.get() > 0 {
        headers.push((DOORBELLS_HEADER.into(), rung.get().to_string()));
    }
    match result {
        Ok(mut reply) => {
            reply.add_headers(headers);
            Ok(reply)
        }
        Err(mut e) => {
            e.headers.extend(headers);
            Err(e)
        }
    }
}

pub const DOORBELLS_HEADER: &str = "Cogo-Doorbells";

/// Counts the request against its caller's budget for the endpoint: the
/// `RateLimit-*` headers to send, or 429. The platform itself is not limited,
/// nor are signed links (their signature is the credential, and anonymous
/// callers would share one limit).
async fn rate_limit(
    request: &Request,
    env: &Env,
    config: &Config,
    principal: &Principal,
    endpoint: Endpoint,
) -> Result<Vec<(String, String)>, ApiError> {
    if config.rate_limit_per_min == 0 || principal.role == Role::Service || artifacts::is_signed_link(endpoint) {
        return Ok(Vec::new());
    }
    let caller = match principal.role {
        Role::Anon => {
            let client_ip = request.headers().get("cf-connecting-ip").ok().flatten();
            cogo_shared::auth::ratelimit::anonymous_caller(client_ip.as_deref(), &rate_limiter::isolate_id())
        }
        _ => principal.id(),
    };
    let key = format!("{caller}|{}", endpoint.id());
    rate_limiter::enforce(env, &key, Limit { per_minute: config.rate_limit_per_min }).await
}

/// The caller a `?ticket=` stands for, on a request with no other
/// credential (a browser's EventSource); `None` without a ticket.
fn stream_ticket(request: &Request, config: &Config, endpoint: Endpoint) -> Result<Option<Principal>, ApiError> {
    let headers = request.headers();
    let has = |name: &str| headers.has(name).unwrap_or(false);
    if ["authorization", "apikey", "x-api-key", "x-signature"].iter().any(|h| has(h)) {
        return Ok(None);
    }
    let url = request.url().map_err(|_| ApiError::bad_request("invalid_url", "the request URL is not valid"))?;
    let query = Query::parse(url.query());
    let Some(ticket) = query.raw(&["ticket"]) else { return Ok(None) };
    let resource = ticket::resource_of(endpoint, &query)
        .ok_or_else(|| ApiError::new(401, "invalid_ticket", "a ticket opens only the event streams"))?;
    let secret = config
        .storage
        .link_secret
        .as_deref()
        .ok_or_else(|| ApiError::new(500, "config_error", "missing configuration: ARTIFACT_SIGNING_SECRET"))?;
    let now_secs = (js_sys::Date::now() / 1000.0) as i64;
    ticket::verify(secret, ticket, endpoint.id(), &resource, now_secs).map(Some)
}

/// Who is calling. A signed request's signature is spent here, once, in
/// its canonical form (so no other spelling of it passes again).
async fn authenticate_request(
    request: &Request,
    env: &Env,
    config: &Config,
    method: Method,
    body: &[u8],
) -> Result<Principal, ApiError> {
    let headers = request.headers();
    let get = |name: &str| headers.get(name).ok().flatten();
    let (authorization, apikey) = (get("authorization"), get("apikey").or_else(|| get("x-api-key")));
    let (x_ts, x_signature) = (get("x-ts"), get("x-signature"));
    let (x_timestamp, agent_id) = (get("x-timestamp"), get("x-agent-id"));
    let url = request.url().map_err(|_| ApiError::bad_request("invalid_url", "the request URL is not valid"))?;
    let path_and_query = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let jwks = jwks::for_token(config, authorization.as_deref()).await?;
    let credentials = Credentials {
        authorization: authorization.as_deref(),
        apikey: apikey.as_deref(),
        x_ts: x_ts.as_deref(),
        x_signature: x_signature.as_deref(),
        x_timestamp: x_timestamp.as_deref(),
        agent_id: agent_id.as_deref(),
        method: method.as_str(),
        path_and_query: &path_and_query,
        body,
    };
    let now_secs = (js_sys::Date::now() / 1000.0) as i64;
    let authenticated = authenticate(&config.auth, &credentials, jwks.as_ref(), now_secs)?;
    if let Some(signature) = &authenticated.signature {
        signature_ledger::first_use(env, signature).await?;
    }
    Ok(authenticated.principal)
}

/// The body, at most `limit` bytes: a declared length over it is refused
/// before anything is read, and a body without one (chunked) as soon as it
/// passes the limit, without buffering the rest.
async fn read_body(request: &mut Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    let declared = request.headers().get("content-length").ok().flatten().and_then(|l| l.parse::<usize>().ok());
    if declared.is_some_and(|l| l > limit) {
        return Err(too_large(limit));
    }
    if request.inner().body().is_none() {
        return Ok(Vec::new());
    }
    let unreadable = || ApiError::bad_request("invalid_body", "could not read the request body");
    // A declared length is the body's exact framing: read it whole in one
    // call (reading chunk by chunk through a stream reader costs several
    // calls into the runtime per chunk).
    if declared.is_some() {
        let buffer = request.inner().array_buffer().map_err(|_| unreadable())?;
        let buffer = wasm_bindgen_futures::JsFuture::from(buffer).await.map_err(|_| unreadable())?;
        return Ok(js_sys::Uint8Array::new(&buffer).to_vec());
    }
    let mut chunks = request.stream().map_err(|_| unreadable())?;
    let mut bytes = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|_| unreadable())?;
        if bytes.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Runs a POST under its Idempotency-Key: replay a stored response, refuse
/// a reused or in-flight key, or run it and store what it answered.
async fn idempotent(ctx: RequestContext, endpoint: Endpoint, key: &str) -> Result<Reply, ApiError> {
    idempotency::check_key(key)?;
    // Keys are scoped by endpoint, whichever URL family reached it.
    let route = endpoint.id();
    let principal = ctx.principal.id();
    let begin = idempotency::begin_args(&principal, route, key, &ctx.body_bytes, ctx.config.idempotency_lease_seconds);
    let answer = ctx.call(begin).await?;
    if let idempotency::Begin::Replay(response) = idempotency::read_begin(&answer)? {
        return Ok(response.into());
    }
    let config = ctx.config.clone();
    let response = match api::dispatch(endpoint, ctx).await {
        Ok(Reply::Buffered(r)) => r,
        // Streams are downloads, never POSTs; nothing to store.
        Ok(streamed) => return Ok(streamed),
        Err(e) if endpoint.is_figma() => cogo_shared::figma::plugin_error(e),
        Err(e) => e.into_response(),
    };
    let finish = idempotency::finish_args(&principal, route, key, &response, config.idempotency_ttl_seconds);
    if let Err(e) = platform::call(&config, finish).await {
        // The request itself succeeded; a lost record only means a repeat runs again.
        worker::console_error!("storing the idempotent response failed: {e}");
    }
    Ok(response.into())
}

fn into_worker_response(response: ApiResponse, is_head: bool) -> worker::Result<Response> {
    let headers = Headers::new();
    for (name, value) in &response.headers {
        headers.append(name, value)?;
    }
    let body = if is_head { Vec::new() } else { response.body };
    Ok(Response::from_bytes(body)?.with_status(response.status).with_headers(headers))
}
