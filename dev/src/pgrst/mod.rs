//! A PostgREST-compatible gateway: a local stand-in for hosted PostgREST
//! (and Supabase's `/rest/v1`), configured with PostgREST's own variables.
//!
//! A request goes through the stages PostgREST has: the URL grammar
//! (`query.rs`), preferences and content negotiation (`prefer.rs`,
//! `media.rs`), the plan against the schema cache (`plan.rs`,
//! `schema.rs`), SQL (`sql.rs`), then one transaction sent in one round
//! trip: `BEGIN; SELECT set_config(...); [pre-request;] <statement>;
//! COMMIT`, with the response body built by PostgreSQL.

// Errors are the cold path; boxing them would only add noise.
#![allow(clippy::result_large_err)]

mod auth;
mod config;
mod error;
mod fuzzy;
mod media;
mod plan;
mod prefer;
mod query;
mod schema;
mod sql;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures::{FutureExt, StreamExt};
use serde_json::{Map, Value};
use tokio_postgres::{AsyncMessage, NoTls, SimpleQueryMessage};

pub use config::{Config, TxEnd};
pub use error::PgrstError;
use media::MediaType;
use plan::{Action, PlanOptions, ReadPlan};
use prefer::{Count, Echo, Handling, Prefer, Resolution, Return, Tx};
use query::QueryParams;
use schema::{Function, Qi, SchemaCache};
use sql::{ident, literal, Handler};

struct AppState {
    config: Config,
    pool: Pool,
    cache: RwLock<Arc<SchemaCache>>,
    /// Requests received, read at [`REQUEST_COUNTER`].
    requests: AtomicU64,
}

/// Dev only, no PostgREST has it: `GET` answers `{"requests": n}`, the
/// requests this gateway has received (every path, this one excepted), so
/// the benchmark can count what reaches PostgREST while workers idle.
pub const REQUEST_COUNTER: &str = "/__gateway/requests";

/// Bodies above this answer 413, as a proxy in front of PostgREST would.
const MAX_BODY: usize = 10 * 1024 * 1024;

/// Serves until `shutdown` resolves. The schema cache is loaded before the
/// first request is taken (connections wait in the listener's backlog
/// meanwhile), so no request ever meets a gateway without one; while the
/// database is down at start, loading is retried.
pub async fn serve(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_ready(config, listener, shutdown, || {}).await
}

/// [`serve`], calling `ready` once the schema cache is loaded and requests
/// are taken.
pub async fn serve_ready(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ready: impl FnOnce() + Send,
) -> std::io::Result<()> {
    let pg_config: tokio_postgres::Config =
        config.db_uri.parse().map_err(|e| std::io::Error::other(format!("PGRST_DB_URI: {e}")))?;
    let manager = Manager::from_config(pg_config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    let pool = Pool::builder(manager)
        .max_size(config.pool_size)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(5)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let state = Arc::new(AppState {
        config,
        pool,
        cache: RwLock::new(Arc::new(SchemaCache::default())),
        requests: AtomicU64::new(0),
    });
    let shutdown = shutdown.boxed().shared();
    let (loaded_tx, loaded) = tokio::sync::oneshot::channel::<()>();
    let watcher = tokio::spawn(watch_schema(state.clone(), loaded_tx));
    tokio::select! {
        _ = loaded => {}
        _ = shutdown.clone() => {
            watcher.abort();
            return Ok(());
        }
    }
    let app = axum::Router::new().fallback(handle).layer(DefaultBodyLimit::max(MAX_BODY)).with_state(state);
    ready();
    let result = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    watcher.abort();
    result
}

/// Loads the schema cache (signalling `loaded` the first time), then
/// reloads it on `NOTIFY pgrst` (empty payload or `reload schema`);
/// reconnects, and reloads, when the listening connection drops. A failed
/// reload keeps the cache it had.
async fn watch_schema(state: Arc<AppState>, loaded: tokio::sync::oneshot::Sender<()>) {
    let mut loaded = Some(loaded);
    let mut delay = Duration::from_millis(100);
    loop {
        if let Ok((client, mut conn)) = tokio_postgres::connect(&state.config.db_uri, NoTls).await {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
            let pump = tokio::spawn(async move {
                let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
                while let Some(Ok(message)) = messages.next().await {
                    if let AsyncMessage::Notification(n) = message {
                        let _ = tx.send(n.payload().to_string());
                    }
                }
            });
            let listening = client.batch_execute("LISTEN pgrst").await.is_ok();
            if listening && reload(&state, &client).await {
                delay = Duration::from_millis(100);
                if let Some(l) = loaded.take() {
                    let _ = l.send(());
                }
                while let Some(payload) = rx.recv().await {
                    if payload.is_empty() || payload == "reload schema" {
                        reload(&state, &client).await;
                    }
                }
            }
            pump.abort();
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn reload(state: &AppState, client: &tokio_postgres::Client) -> bool {
    match SchemaCache::load(client, &state.config.schemas).await {
        Ok(cache) => {
            *state.cache.write().expect("cache lock") = Arc::new(cache);
            true
        }
        Err(e) => {
            eprintln!("gateway: loading the schema cache failed: {e}");
            false
        }
    }
}

async fn handle(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if uri.path() == REQUEST_COUNTER && method == Method::GET {
        return axum::Json(serde_json::json!({"requests": state.requests.load(Ordering::Relaxed)})).into_response();
    }
    state.requests.fetch_add(1, Ordering::Relaxed);
    match run(&state, &method, &uri, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Everything a statement needs to run: role, claims and request settings.
struct Ctx<'a> {
    role: String,
    claims: Value,
    schema: String,
    /// The schema came from a profile header, or there are several.
    negotiated_by_profile: bool,
    method: &'a Method,
    path: String,
    headers: &'a HeaderMap,
    prefer: Prefer,
    accepts: Vec<MediaType>,
    cache: Arc<SchemaCache>,
}

impl Ctx<'_> {
    fn is_head(&self) -> bool {
        *self.method == Method::HEAD
    }
    fn is_read(&self) -> bool {
        matches!(*self.method, Method::GET | Method::HEAD)
    }
}

/// The one row every statement answers.
#[derive(Debug, Default)]
struct Outcome {
    total: Option<i64>,
    page: i64,
    body: Option<String>,
    headers: Option<String>,
    status: Option<String>,
    inserted: Option<i64>,
    location: Option<String>,
    /// `EXPLAIN`'s row estimate, for planned and estimated counts.
    planned: Option<i64>,
}

async fn run(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, PgrstError> {
    let raw_path = uri.path();
    let (path, supabase) = match raw_path.strip_prefix("/rest/v1") {
        Some(rest) => (if rest.is_empty() { "/" } else { rest }, true),
        None => (raw_path, false),
    };
    let mut pairs: Vec<(String, String)> = uri.query().map(url_decode_pairs).unwrap_or_default();
    // PostgreSQL text cannot hold NUL: refuse it as PostgreSQL would the parameter.
    if pairs.iter().any(|(k, v)| k.contains('\0') || v.contains('\0')) {
        return Err(PgrstError::new(400, "22021", "invalid byte sequence for encoding \"UTF8\": 0x00"));
    }
    let query_apikey = take_param(&mut pairs, "apikey");
    let (role, claims) = auth::authenticate(&state.config, headers, supabase, query_apikey.as_deref())?;

    let resource = path.trim_start_matches('/');
    let segments: Vec<&str> = resource.split('/').collect();
    let target = match segments.as_slice() {
        ["rpc", name] if !name.is_empty() => Target::Routine(percent_decode(name)),
        [name] if !name.is_empty() => Target::Relation(percent_decode(name)),
        _ => return Err(PgrstError::new(404, "PGRST125", "Invalid path specified in request URL")),
    };
    if let Target::Routine(_) = target {
        if !matches!(*method, Method::GET | Method::HEAD | Method::POST) {
            return Err(PgrstError::new(405, "PGRST101", format!("Cannot use the {method} method on RPC")));
        }
    } else if !matches!(*method, Method::GET | Method::HEAD | Method::POST | Method::PATCH | Method::DELETE) {
        return Err(PgrstError::new(405, "PGRST117", format!("Unsupported HTTP method: {method}")));
    }
    let profile_header = if matches!(*method, Method::POST | Method::PATCH | Method::PUT | Method::DELETE) {
        "content-profile"
    } else {
        "accept-profile"
    };
    let profile = headers.get(profile_header).and_then(|v| v.to_str().ok());
    let schema = match profile {
        Some(s) if state.config.schemas.iter().any(|x| x == s) => s.to_string(),
        Some(s) => {
            return Err(PgrstError::new(406, "PGRST106", format!("Invalid schema: {s}"))
                .with_hint(format!("Only the following schemas are exposed: {}", state.config.schemas.join(", "))))
        }
        None => state.config.schemas[0].clone(),
    };
    let cache = state.cache.read().expect("cache lock").clone();
    let prefer = prefer::parse(headers, state.config.tx_end.allows_override(), &cache.timezones);
    if prefer.handling == Some(Handling::Strict) && !prefer.invalid.is_empty() {
        return Err(PgrstError::new(400, "PGRST122", "Invalid preferences given with handling=strict")
            .with_details(format!("Invalid preferences: {}", prefer.invalid.join(", "))));
    }
    let accepts = media::parse_accept(headers.get("accept").and_then(|v| v.to_str().ok()));
    let ctx = Ctx {
        role,
        claims,
        schema: schema.clone(),
        negotiated_by_profile: profile.is_some() || state.config.schemas.len() > 1,
        method,
        path: path.to_string(),
        headers,
        prefer,
        accepts,
        cache,
    };
    let rpc_read = matches!(target, Target::Routine(_)) && ctx.is_read();
    let mut q = query::parse(&pairs, rpc_read)?;
    let mut response = match target {
        Target::Routine(name) => {
            set_top_range(&mut q, headers, method)?;
            call(state, &ctx, &name, &q, &pairs, body).await?
        }
        Target::Relation(table) if ctx.is_read() => {
            set_top_range(&mut q, headers, method)?;
            read(state, &ctx, &table, &q).await?
        }
        Target::Relation(table) => write(state, &ctx, &table, &q, body).await?,
    };
    if ctx.negotiated_by_profile {
        if let Ok(v) = HeaderValue::from_str(&schema) {
            response.headers_mut().insert("content-profile", v);
        }
    }
    if ctx.is_head() {
        *response.body_mut() = axum::body::Body::empty();
    }
    Ok(response)
}

enum Target {
    Relation(String),
    Routine(String),
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn url_decode_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let decode = |s: &str| percent_decode(&s.replace('+', " "));
            (decode(k), decode(v))
        })
        .collect()
}

fn take_param(pairs: &mut Vec<(String, String)>, name: &str) -> Option<String> {
    let i = pairs.iter().position(|(k, _)| k == name)?;
    Some(pairs.remove(i).1)
}

fn range_error(details: &str) -> PgrstError {
    PgrstError::new(416, "PGRST103", "Requested range not satisfiable").with_details(details)
}

/// The top level's range: `limit`/`offset` within the `Range` header
/// (GET only, `first-[last]`; anything else is ignored, as in v13).
fn set_top_range(q: &mut QueryParams, headers: &HeaderMap, method: &Method) -> Result<(), PgrstError> {
    let mut r = q.top_range();
    if r.limit.is_some_and(|l| l < 0) {
        return Err(range_error("Limit should be greater than or equal to zero."));
    }
    if r.limit == Some(0) {
        // `limit=0` answers no rows, whatever the Range header says.
        r = query::Range { offset: 0, limit: Some(0) };
    } else if *method == Method::GET {
        if let Some((lower, upper)) = headers.get("range").and_then(|v| v.to_str().ok()).and_then(parse_range_header) {
            if upper.is_some_and(|u| u < lower) {
                return Err(range_error(
                    "The lower boundary must be lower than or equal to the upper boundary in the Range header.",
                ));
            }
            let from = r.offset.max(lower);
            let to = match (r.limit.map(|l| r.offset + l - 1), upper) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if to.is_some_and(|t| t < from) {
                return Err(range_error("Limit should be greater than or equal to zero."));
            }
            r = query::Range { offset: from, limit: to.map(|t| t - from + 1) };
        }
    }
    q.ranges.retain(|(p, _)| !p.is_empty());
    q.ranges.push((Vec::new(), r));
    Ok(())
}

fn parse_range_header(v: &str) -> Option<(i64, Option<i64>)> {
    let (a, b) = v.trim().split_once('-')?;
    if a.is_empty() || !a.bytes().all(|c| c.is_ascii_digit()) || !b.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((a.parse().ok()?, if b.is_empty() { None } else { Some(b.parse().ok()?) }))
}

/// v13's `contentRangeH`: `lower-upper/total`, `*` for an empty range.
fn content_range(lower: i64, upper: i64, total: Option<i64>) -> String {
    let total_s = total.map_or("*".to_string(), |t| t.to_string());
    if total != Some(0) && lower <= upper {
        format!("{lower}-{upper}/{total_s}")
    } else {
        format!("*/{total_s}")
    }
}

fn table_not_found(cache: &SchemaCache, schema: &str, table: &str) -> PgrstError {
    let names: Vec<&str> = cache.tables.keys().filter(|(s, _)| s == schema).map(|(_, n)| n.as_str()).collect();
    let mut e =
        PgrstError::new(404, "PGRST205", format!("Could not find the table '{schema}.{table}' in the schema cache"));
    if let Some(t) = fuzzy::closest(table, &names) {
        e = e.with_hint(format!("Perhaps you meant the table '{schema}.{t}'"));
    }
    e
}

fn plan_options(state: &AppState) -> PlanOptions {
    PlanOptions { max_rows: state.config.max_rows, aggregates_enabled: state.config.aggregates_enabled }
}

/// The count query, capped for estimated counts (past `db-max-rows` the
/// planner's estimate is used).
fn count_sql(state: &AppState, prefer: &Prefer, plan: &ReadPlan) -> (Option<String>, Option<String>) {
    let count = sql::count_query(plan);
    let explain = matches!(prefer.count, Some(Count::Planned | Count::Estimated))
        .then(|| format!("EXPLAIN (FORMAT JSON) {count}"));
    let counted = match (prefer.count, state.config.max_rows) {
        (Some(Count::Exact), _) | (Some(Count::Estimated), None) => Some(count),
        (Some(Count::Estimated), Some(max)) => Some(format!("{count} LIMIT {}", max + 1)),
        _ => None,
    };
    (counted, explain)
}

/// Exact, planned (the estimate), or estimated: exact up to `db-max-rows`,
/// the larger of both past it.
fn total_of(state: &AppState, prefer: &Prefer, o: &Outcome) -> Option<i64> {
    match prefer.count {
        Some(Count::Exact) => o.total,
        Some(Count::Planned) => o.planned,
        Some(Count::Estimated) => match (o.total, state.config.max_rows) {
            (Some(t), Some(max)) if t > max => Some(t.max(o.planned.unwrap_or(t))),
            (t, _) => t,
        },
        None => None,
    }
}

/// A range answer's status: 416 past the end, 206 for part of the rows.
fn range_answer(offset: i64, o: &Outcome, total: Option<i64>) -> Result<(StatusCode, String), PgrstError> {
    let upper = offset + o.page - 1;
    let range = content_range(offset, upper, total);
    let status = match total {
        Some(t) if offset > t => {
            return Err(range_error(&format!("An offset of {offset} was requested, but there are only {t} rows.")))
        }
        Some(t) if o.page < t => StatusCode::PARTIAL_CONTENT,
        _ => StatusCode::OK,
    };
    Ok((status, range))
}

async fn read(state: &AppState, ctx: &Ctx<'_>, table: &str, q: &QueryParams) -> Result<Response, PgrstError> {
    let qi: Qi = (ctx.schema.clone(), table.to_string());
    if !ctx.cache.tables.contains_key(&qi) {
        return Err(table_not_found(&ctx.cache, &ctx.schema, table));
    }
    let plan = plan::read_plan(&ctx.cache, &ctx.schema, table, q, Action::Read, &plan_options(state))?;
    let (handler, media) = media::negotiate(&ctx.accepts)?;
    let handler = if ctx.is_head() { Handler::None } else { handler };
    let (count, explain) = count_sql(state, &ctx.prefer, &plan);
    let statement =
        sql::read_statement(&sql::read_query(&plan), count.as_deref(), &sql::body_expr(handler, Default::default()));
    let run = Run { read_only: true, single: media.is_singular(), max_affected: None, explain };
    let outcome = execute(state, ctx, &statement, &run).await?;
    let total = total_of(state, &ctx.prefer, &outcome);
    let (status, range) = range_answer(plan.range.offset, &outcome, total)?;
    let applied = ctx.prefer.applied(Echo::default());
    finish(outcome, status, Some(&media), Some(range), applied, None)
}

/// Keys of the body's objects, which must all have the same (PGRST102).
fn payload_columns(body: &[u8]) -> Result<Vec<String>, PgrstError> {
    let invalid = || PgrstError::new(400, "PGRST102", "Empty or invalid json");
    let keys_differ = || PgrstError::new(400, "PGRST102", "All object keys must match");
    let sorted_keys = |o: &Map<String, Value>| {
        let mut k: Vec<String> = o.keys().cloned().collect();
        k.sort();
        k
    };
    match serde_json::from_slice::<Value>(body).map_err(|_| invalid())? {
        Value::Object(o) => Ok(sorted_keys(&o)),
        Value::Array(items) => match items.first() {
            None => Ok(Vec::new()),
            Some(Value::Object(first)) => {
                let keys = sorted_keys(first);
                if items.iter().all(|i| i.as_object().is_some_and(|o| sorted_keys(o) == keys)) {
                    Ok(keys)
                } else {
                    Err(keys_differ())
                }
            }
            Some(_) => Err(keys_differ()),
        },
        // Anything else is no rows, as in v13.
        _ => Ok(Vec::new()),
    }
}

fn is_json_object(body: &[u8]) -> bool {
    body.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')) == Some(&b'{')
}

/// What a write must return for `select` and its embeds to work: `*`, or
/// the selected columns, the embeds' foreign key columns and the primary key.
fn returning_columns(plan: &ReadPlan, pk: &[String]) -> Vec<String> {
    if plan.select.iter().any(|s| s.field.name == "*") || (plan.select.is_empty() && plan.children.is_empty()) {
        return vec!["*".into()];
    }
    let mut cols: Vec<String> = plan.select.iter().map(|s| s.field.name.clone()).collect();
    for c in &plan.children {
        if let Some(rel) = &c.relationship {
            match &rel.cardinality {
                schema::Cardinality::ManyToOne { columns, .. }
                | schema::Cardinality::OneToMany { columns, .. }
                | schema::Cardinality::OneToOne { columns, .. } => cols.extend(columns.iter().map(|(a, _)| a.clone())),
                schema::Cardinality::ManyToMany(j) => cols.extend(j.source_columns.iter().map(|(a, _)| a.clone())),
            }
        }
    }
    cols.extend(pk.iter().cloned());
    let mut seen = HashSet::new();
    cols.retain(|c| seen.insert(c.clone()));
    cols
}

async fn write(
    state: &AppState,
    ctx: &Ctx<'_>,
    table: &str,
    q: &QueryParams,
    body: &[u8],
) -> Result<Response, PgrstError> {
    let qi: Qi = (ctx.schema.clone(), table.to_string());
    let Some(relation) = ctx.cache.tables.get(&qi) else { return Err(table_not_found(&ctx.cache, &ctx.schema, table)) };
    let prefer = &ctx.prefer;
    let representation = prefer.ret == Some(Return::Representation);
    let plan = plan::read_plan(&ctx.cache, &ctx.schema, table, q, Action::Mutate, &plan_options(state))?;
    let returning = if matches!(prefer.ret, Some(Return::Representation | Return::HeadersOnly)) {
        returning_columns(&plan, &relation.primary_key)
    } else {
        Vec::new()
    };
    let root_filters = plan::root_filters(&ctx.cache, &qi, q);
    let body_text = std::str::from_utf8(body).map_err(|_| PgrstError::new(400, "PGRST102", "Empty or invalid json"))?;
    let apply_defaults = prefer.missing == Some(prefer::Missing::Default);
    let columns_for = |names: &[String]| -> Result<Vec<sql::BodyColumn>, PgrstError> {
        names
            .iter()
            .map(|n| {
                relation.column(n).map(|c| sql::BodyColumn::of(c, apply_defaults)).ok_or_else(|| {
                    PgrstError::new(
                        400,
                        "PGRST204",
                        format!("Could not find the '{n}' column of '{table}' in the schema cache"),
                    )
                })
            })
            .collect()
    };
    let body_columns = |body: &[u8]| -> Result<Vec<String>, PgrstError> {
        match &q.columns {
            Some(c) => Ok(c.clone()),
            None => payload_columns(body),
        }
    };
    let (mutation, upsert, kind) = match *ctx.method {
        Method::POST => {
            let names = body_columns(body)?;
            let columns = columns_for(&names)?;
            let keys = q.on_conflict.clone().unwrap_or_else(|| relation.primary_key.clone());
            let on_conflict = match prefer.resolution {
                Some(Resolution::Merge) => sql::OnConflict::Merge(&keys),
                Some(Resolution::Ignore) => sql::OnConflict::Ignore(&keys),
                None => sql::OnConflict::None,
            };
            let upsert = prefer.resolution == Some(Resolution::Merge);
            let text = if body_text.trim().is_empty() { "[]" } else { body_text };
            (
                sql::insert_query(&qi, &columns, text, is_json_object(body), on_conflict, &returning),
                upsert,
                Kind::Create,
            )
        }
        Method::PATCH => {
            let names = body_columns(body)?;
            let columns = columns_for(&names)?;
            let text = if body_text.trim().is_empty() { "{}" } else { body_text };
            (
                sql::update_query(&qi, &columns, text, is_json_object(body), &root_filters, &returning),
                false,
                Kind::Update,
            )
        }
        _ => (sql::delete_query(&qi, &root_filters, &returning), false, Kind::Delete),
    };
    let (handler, media) = media::negotiate(&ctx.accepts)?;
    let handler = if representation { handler } else { Handler::None };
    let select = representation.then(|| sql::read_query(&plan));
    let location_pk =
        (kind == Kind::Create && prefer.ret == Some(Return::HeadersOnly)).then_some(relation.primary_key.as_slice());
    let statement = sql::write_statement(
        &mutation,
        select.as_deref(),
        &sql::body_expr(handler, Default::default()),
        upsert,
        location_pk,
    );
    let strict = prefer.handling == Some(Handling::Strict);
    let run = Run {
        read_only: false,
        single: media.is_singular(),
        max_affected: (kind != Kind::Create && strict).then_some(prefer.max_affected).flatten(),
        explain: None,
    };
    let outcome = execute(state, ctx, &statement, &run).await?;
    // A write counts what it touched; planned counts do not apply.
    let total = prefer.counts().then_some(outcome.page);
    let media = if representation { Some(&media) } else { None };
    match kind {
        Kind::Create => {
            let status = if outcome.inserted.unwrap_or(0) <= 0 && prefer.resolution == Some(Resolution::Merge) {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            let location = outcome.location.as_deref().and_then(|l| location_header(table, l));
            let has_keys = !relation.primary_key.is_empty() || q.on_conflict.is_some();
            let applied = prefer.applied(Echo { resolution: has_keys, missing: true, ret: true, max_affected: false });
            finish(outcome, status, media, Some(content_range(1, 0, total)), applied, location)
        }
        Kind::Update => {
            let range = content_range(0, outcome.page - 1, total);
            let status = if representation { StatusCode::OK } else { StatusCode::NO_CONTENT };
            let applied = prefer.applied(Echo { resolution: false, missing: true, ret: true, max_affected: true });
            finish(outcome, status, media, Some(range), applied, None)
        }
        Kind::Delete => {
            let status = if representation { StatusCode::OK } else { StatusCode::NO_CONTENT };
            let applied = prefer.applied(Echo { resolution: false, missing: false, ret: true, max_affected: true });
            finish(outcome, status, media, Some(content_range(1, 0, total)), applied, None)
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Create,
    Update,
    Delete,
}

/// `[[key, "eq.value"], ...]` from SQL -> `/table?key=eq.value`.
fn location_header(table: &str, pairs_json: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_json::from_str(pairs_json).ok()?;
    if pairs.is_empty() {
        return None;
    }
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, SET).to_string();
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect();
    Some(format!("/{table}?{}", query.join("&")))
}

/// v13's `findProc`: the overload whose required parameters are all given
/// and whose parameters take every key; else the one unnamed json/jsonb
/// parameter (POST).
fn find_function<'a>(
    cache: &'a SchemaCache,
    schema: &str,
    name: &str,
    keys: &[String],
    post: bool,
) -> Result<&'a Function, PgrstError> {
    let candidates: &[Function] =
        cache.functions.get(&(schema.to_string(), name.to_string())).map(Vec::as_slice).unwrap_or(&[]);
    let key_set: HashSet<&str> = keys.iter().map(String::as_str).collect();
    let matches_params = |f: &Function| {
        if f.args.is_empty() {
            return key_set.is_empty();
        }
        let required: HashSet<&str> = f.args.iter().filter(|a| !a.has_default).map(|a| a.name.as_str()).collect();
        let all: HashSet<&str> = f.args.iter().map(|a| a.name.as_str()).collect();
        required.is_subset(&key_set) && key_set.is_subset(&all)
    };
    let single_unnamed = |f: &Function| {
        post && f.args.len() == 1 && f.args[0].name.is_empty() && matches!(f.args[0].pg_type.as_str(), "json" | "jsonb")
    };
    let named: Vec<&Function> = candidates.iter().filter(|f| matches_params(f)).collect();
    let fallback: Vec<&Function> = candidates.iter().filter(|f| !matches_params(f) && single_unnamed(f)).collect();
    match (named.as_slice(), fallback.as_slice()) {
        ([one], _) => Ok(one),
        ([], [one]) => Ok(one),
        ([], []) => Err(no_function(cache, schema, name, keys, post, candidates)),
        (several, fallback) => {
            let several = if several.is_empty() { fallback } else { several };
            let list: Vec<String> = several
                .iter()
                .map(|f| {
                    let params: Vec<String> = f.args.iter().map(|a| format!("{} => {}", a.name, a.pg_type)).collect();
                    format!("{}.{}({})", f.schema, f.name, params.join(", "))
                })
                .collect();
            Err(PgrstError::new(
                300,
                "PGRST203",
                format!("Could not choose the best candidate function between: {}", list.join(", ")),
            )
            .with_hint("Try renaming the parameters or the function itself in the database so function overloading can be resolved"))
        }
    }
}

fn no_function(
    cache: &SchemaCache,
    schema: &str,
    name: &str,
    keys: &[String],
    post: bool,
    overloads: &[Function],
) -> PgrstError {
    let mut sorted = keys.to_vec();
    sorted.sort();
    let func = format!("{schema}.{name}");
    let params = if sorted.is_empty() { " without parameters".to_string() } else { format!("({})", sorted.join(", ")) };
    let with = if sorted.is_empty() {
        " without parameters".to_string()
    } else {
        format!(" with parameter{} {}", if sorted.len() > 1 { "s" } else { "" }, sorted.join(", "))
    };
    let details = format!(
        "Searched for the function {func}{with}{}, but no matches were found in the schema cache.",
        if post { " or with a single unnamed json/jsonb parameter" } else { "" }
    );
    let list = |ps: &[String]| {
        let mut v = ps.to_vec();
        v.sort();
        format!("({})", v.join(", "))
    };
    let hint = if overloads.is_empty() {
        let names: Vec<&str> = cache.functions.keys().filter(|(s, _)| s == schema).map(|(_, n)| n.as_str()).collect();
        fuzzy::closest(name, &names).map(|n| format!("Perhaps you meant to call the function {schema}.{n}"))
    } else {
        let lists: Vec<String> =
            overloads.iter().map(|f| list(&f.args.iter().map(|a| a.name.clone()).collect::<Vec<_>>())).collect();
        let refs: Vec<&str> = lists.iter().map(String::as_str).collect();
        fuzzy::closest(&list(&sorted), &refs).map(|p| format!("Perhaps you meant to call the function {func}{p}"))
    };
    let mut e =
        PgrstError::new(404, "PGRST202", format!("Could not find the function {func}{params} in the schema cache"))
            .with_details(details);
    if let Some(h) = hint {
        e = e.with_hint(h);
    }
    e
}

async fn call(
    state: &AppState,
    ctx: &Ctx<'_>,
    name: &str,
    q: &QueryParams,
    pairs: &[(String, String)],
    body: &[u8],
) -> Result<Response, PgrstError> {
    let post = *ctx.method == Method::POST;
    let body_text = std::str::from_utf8(body).map_err(|_| PgrstError::new(400, "PGRST102", "Empty or invalid json"))?;
    let body_text = if post && body_text.trim().is_empty() { "{}" } else { body_text };
    let keys: Vec<String> = if post {
        match &q.columns {
            Some(c) => c.clone(),
            None => payload_columns(body_text.as_bytes())?,
        }
    } else {
        // A repeated name (a variadic argument) is one key.
        let mut seen = HashSet::new();
        q.rpc_params.iter().map(|(k, _)| k.clone()).filter(|k| seen.insert(k.clone())).collect()
    };
    let function = find_function(&ctx.cache, &ctx.schema, name, &keys, post)?;
    let strict = ctx.prefer.handling == Some(Handling::Strict);
    if strict && ctx.prefer.max_affected.is_some() && function.returns_single() {
        return Err(PgrstError::new(
            400,
            "PGRST128",
            "Function must return SETOF or TABLE when max-affected preference is used with handling=strict",
        ));
    }
    let named: Vec<&schema::Arg> = function.args.iter().filter(|a| keys.contains(&a.name)).collect();
    let single_unnamed = function.args.len() == 1 && function.args[0].name.is_empty();
    let direct: Vec<(String, Vec<String>)> = named
        .iter()
        .map(|a| {
            let values = pairs.iter().filter(|(k, _)| *k == a.name).map(|(_, v)| v.clone()).collect();
            (a.name.clone(), values)
        })
        .collect();
    let args = if single_unnamed && post {
        sql::CallArgs::Single(body_text)
    } else if post {
        sql::CallArgs::Json { body: body_text, is_object: is_json_object(body_text.as_bytes()) }
    } else {
        sql::CallArgs::Direct(&direct)
    };
    let call_sql = sql::call_query(function, &named, args);
    let root = function.table_name().unwrap_or(name).to_string();
    let plan = plan::read_plan(&ctx.cache, &ctx.schema, &root, q, Action::Call, &plan_options(state))?;
    let (handler, media) = media::negotiate(&ctx.accepts)?;
    let handler = if ctx.is_head() { Handler::None } else { handler };
    let returns = sql::Returns {
        scalar: function.returns_scalar(),
        set_of_scalar: function.returns_set_of_scalar(),
        single_composite: function.returns_single() && function.returns_composite,
    };
    let (count, explain) = count_sql(state, &ctx.prefer, &plan);
    let statement = sql::call_statement(
        &call_sql,
        &sql::read_query(&plan),
        count.as_deref(),
        &sql::body_expr(handler, returns),
        function.returns_single(),
    );
    let volatile = function.volatility == schema::Volatility::Volatile;
    let run = Run {
        read_only: ctx.is_read() || !volatile,
        single: media.is_singular(),
        max_affected: strict.then_some(ctx.prefer.max_affected).flatten(),
        explain,
    };
    let outcome = execute(state, ctx, &statement, &run).await?;
    let total = total_of(state, &ctx.prefer, &outcome);
    let (status, range) = range_answer(plan.range.offset, &outcome, total)?;
    let applied = ctx.prefer.applied(Echo { max_affected: true, ..Default::default() });
    if function.returns_void {
        let outcome = Outcome { body: None, ..outcome };
        return finish(outcome, StatusCode::NO_CONTENT, None, Some(range), applied, None);
    }
    finish(outcome, status, Some(&media), Some(range), applied, None)
}

/// How a statement runs: read-only, whether the answer must be exactly one
/// row (else PGRST116 and roll back), the most rows it may touch
/// (PGRST124), and an `EXPLAIN` for planned counts.
struct Run {
    read_only: bool,
    single: bool,
    max_affected: Option<i64>,
    explain: Option<String>,
}

/// The rows of each statement of a simple query, in order.
fn rows_by_statement(messages: &[SimpleQueryMessage]) -> Vec<Vec<&tokio_postgres::SimpleQueryRow>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    for m in messages {
        match m {
            SimpleQueryMessage::Row(r) => current.push(r),
            SimpleQueryMessage::CommandComplete(_) => out.push(std::mem::take(&mut current)),
            _ => {}
        }
    }
    out
}

/// Runs `statement` in one transaction as the request's role.
async fn execute(state: &AppState, ctx: &Ctx<'_>, statement: &str, run: &Run) -> Result<Outcome, PgrstError> {
    let client = state.pool.get().await.map_err(|e| {
        PgrstError::new(503, "PGRST001", "Database client error. Retrying the connection.").with_details(e.to_string())
    })?;
    let rollback_wanted = match state.config.tx_end {
        TxEnd::Commit => false,
        TxEnd::Rollback => true,
        TxEnd::CommitAllowOverride => ctx.prefer.tx == Some(Tx::Rollback),
        TxEnd::RollbackAllowOverride => ctx.prefer.tx != Some(Tx::Commit),
    };
    let mut headers = Map::new();
    for (name, value) in ctx.headers {
        if name.as_str() != "cookie" {
            headers.insert(name.as_str().to_string(), Value::String(value.to_str().unwrap_or_default().to_string()));
        }
    }
    let cookies: Map<String, Value> = ctx
        .headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .map(|(k, v)| (k.trim().to_string(), Value::String(v.trim().to_string())))
        .collect();
    let search_path: Vec<String> =
        std::iter::once(&ctx.schema).chain(&state.config.extra_search_path).map(|s| ident(s)).collect();
    let mut settings = vec![
        format!("set_config('search_path', {}, true)", literal(&search_path.join(", "))),
        format!("set_config('role', {}, true)", literal(&ctx.role)),
        format!("set_config('request.jwt.claims', {}, true)", literal(&ctx.claims.to_string())),
        format!("set_config('request.method', {}, true)", literal(ctx.method.as_str())),
        format!("set_config('request.path', {}, true)", literal(&ctx.path)),
        format!("set_config('request.headers', {}, true)", literal(&Value::Object(headers).to_string())),
        format!("set_config('request.cookies', {}, true)", literal(&Value::Object(cookies).to_string())),
    ];
    if let Some(tz) = &ctx.prefer.timezone {
        settings.push(format!("set_config('timezone', {}, true)", literal(tz)));
    }
    settings.extend(
        state.config.app_settings.iter().map(|(k, v)| format!("set_config({}, {}, true)", literal(k), literal(v))),
    );
    let pre = state
        .config
        .pre_request
        .as_deref()
        .map(|f| format!("SELECT {}(); ", f.split('.').map(ident).collect::<Vec<_>>().join(".")))
        .unwrap_or_default();
    let begin = if run.read_only {
        "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY"
    } else {
        "BEGIN ISOLATION LEVEL READ COMMITTED"
    };
    // The common case ends the transaction in the same message: one round trip.
    let decide_later = run.single || rollback_wanted || run.max_affected.is_some();
    let explain = run.explain.as_ref().map(|e| format!("; {e}")).unwrap_or_default();
    let end = if decide_later { "" } else { "; COMMIT" };
    let text = format!("{begin}; SELECT {}; {pre}{statement}{explain}{end}", settings.join(", "));
    let anon = state.config.anon_role.as_deref() == Some(ctx.role.as_str());
    let messages = match client.simple_query(&text).await {
        Ok(m) => m,
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(PgrstError::from_db(&e, anon));
        }
    };
    let statements = rows_by_statement(&messages);
    // BEGIN, settings, [pre-request,] the statement, [EXPLAIN]
    let main_index = if pre.is_empty() { 2 } else { 3 };
    let row = statements
        .get(main_index)
        .and_then(|rows| rows.first())
        .ok_or_else(|| PgrstError::new(500, "PGRSTX00", "statement returned no row"))?;
    let planned = run.explain.as_ref().and_then(|_| {
        let plan_json = statements.get(main_index + 1)?.first()?.get(0)?;
        let v: Value = serde_json::from_str(plan_json).ok()?;
        v[0]["Plan"]["Plan Rows"].as_f64().map(|r| r as i64)
    });
    let outcome = Outcome {
        total: row.get(0).and_then(|t| t.parse().ok()),
        page: row.get(1).and_then(|t| t.parse().ok()).unwrap_or(0),
        body: row.get(2).map(str::to_string),
        headers: row.get(3).map(str::to_string),
        status: row.get(4).map(str::to_string),
        inserted: row.get(5).and_then(|t| t.parse().ok()),
        location: row.get(6).map(str::to_string),
        planned,
    };
    if decide_later {
        let single_ok = !run.single || outcome.page == 1;
        let within = run.max_affected.is_none_or(|n| outcome.page <= n);
        let end =
            if single_ok && within && !rollback_wanted { "COMMIT" } else { "SET CONSTRAINTS ALL IMMEDIATE; ROLLBACK" };
        if let Err(e) = client.batch_execute(end).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(PgrstError::from_db(&e, anon));
        }
        if !single_ok {
            return Err(PgrstError::new(406, "PGRST116", "Cannot coerce the result to a single JSON object")
                .with_details(format!("The result contains {} rows", outcome.page)));
        }
        if !within {
            return Err(PgrstError::new(400, "PGRST124", "Query result exceeds max-affected preference constraint")
                .with_details(format!("The query affects {} rows", outcome.page)));
        }
    }
    Ok(outcome)
}

fn finish(
    outcome: Outcome,
    status: StatusCode,
    media: Option<&MediaType>,
    range: Option<String>,
    applied: Option<String>,
    location: Option<String>,
) -> Result<Response, PgrstError> {
    let status = match outcome.status.as_deref() {
        Some(s) => s
            .trim()
            .parse::<u16>()
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .ok_or_else(|| PgrstError::new(500, "PGRST112", "response.status guc must be a valid status code"))?,
        None => status,
    };
    let mut response = match (&outcome.body, media) {
        (Some(body), Some(media)) => {
            let mut r = (status, body.clone()).into_response();
            if let Ok(ct) = HeaderValue::from_str(&media.content_type()) {
                r.headers_mut().insert("content-type", ct);
            }
            r
        }
        _ => status.into_response(),
    };
    let h = response.headers_mut();
    if let Some(range) = range.and_then(|r| HeaderValue::from_str(&r).ok()) {
        h.insert("content-range", range);
    }
    if let Some(v) = applied.and_then(|a| HeaderValue::from_str(&a).ok()) {
        h.insert("preference-applied", v);
    }
    if let Some(loc) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        h.insert("location", loc);
    }
    apply_guc_headers(&mut response, outcome.headers.as_deref())?;
    Ok(response)
}

/// `response.headers` GUC: a JSON array of one-key objects; they replace
/// the gateway's own headers of the same name.
fn apply_guc_headers(response: &mut Response, json: Option<&str>) -> Result<(), PgrstError> {
    let Some(json) = json else { return Ok(()) };
    let bad = || {
        PgrstError::new(
            500,
            "PGRST111",
            "response.headers guc must be a JSON array composed of objects with a single key and a string value",
        )
    };
    let items: Vec<Map<String, Value>> = serde_json::from_str(json).map_err(|_| bad())?;
    let mut headers = Vec::new();
    for item in items {
        let (Some((k, v)), 1) = (item.iter().next(), item.len()) else { return Err(bad()) };
        let value = v.as_str().ok_or_else(bad)?;
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(k.as_str()), HeaderValue::from_str(value)) {
            headers.push((name, value));
        }
    }
    // They replace the gateway's own of the same name; repeated ones all stay.
    for (name, _) in &headers {
        response.headers_mut().remove(name);
    }
    for (name, value) in headers {
        response.headers_mut().append(name, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(content_range(0, 4, None), "0-4/*");
        assert_eq!(content_range(0, -1, Some(0)), "*/0");
        assert_eq!(content_range(1, 0, Some(3)), "*/3");
        assert_eq!(content_range(2, 3, Some(10)), "2-3/10");
    }

    #[test]
    fn range_headers() {
        assert_eq!(parse_range_header("0-9"), Some((0, Some(9))));
        assert_eq!(parse_range_header("5-"), Some((5, None)));
        assert_eq!(parse_range_header("items=0-9"), None);
        assert_eq!(parse_range_header("-5"), None);
    }

    #[test]
    fn payload_keys() {
        assert_eq!(payload_columns(br#"[{"b":1,"a":2},{"a":3,"b":4}]"#).unwrap(), vec!["a", "b"]);
        assert_eq!(payload_columns(br#"[{"a":1},{"b":1}]"#).unwrap_err().message, "All object keys must match");
        assert_eq!(payload_columns(b"{nope").unwrap_err().message, "Empty or invalid json");
        assert!(payload_columns(b"[]").unwrap().is_empty());
    }

    #[test]
    fn location_headers_are_encoded() {
        assert_eq!(
            location_header("t", r#"[["id","eq.1"],["k","eq.a b&c"]]"#).as_deref(),
            Some("/t?id=eq.1&k=eq.a%20b%26c")
        );
    }
}
