//! A PostgREST-compatible gateway: a local stand-in for hosted PostgREST
//! (and Supabase's `/rest/v1`), configured with PostgREST's own variables.
//!
//! Each request is one transaction sent in one round trip: `BEGIN; SELECT
//! set_config(...); [pre-request;] <statement>; COMMIT`, with the response
//! body built by PostgreSQL as PostgREST builds it.

// Errors are the cold path; boxing them would only add noise.
#![allow(clippy::result_large_err)]

mod auth;
mod error;
mod query;
mod schema;
mod sql;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures::StreamExt;
use serde_json::{Map, Value};
use tokio_postgres::{AsyncMessage, NoTls, SimpleQueryMessage};

pub use error::PgrstError;
use query::Query;
use schema::{Function, SchemaCache};
use sql::{ident, literal, qualified};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TxEnd {
    Commit,
    CommitAllowOverride,
    Rollback,
    RollbackAllowOverride,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub db_uri: String,
    pub schemas: Vec<String>,
    pub anon_role: Option<String>,
    pub jwt_secret: Option<String>,
    pub pre_request: Option<String>,
    pub tx_end: TxEnd,
    pub max_rows: Option<i64>,
    pub port: u16,
    pub pool_size: usize,
    /// Supabase-style opaque keys mapped to `anon` and `service_role`.
    pub publishable_keys: Vec<String>,
    pub secret_keys: Vec<String>,
}

impl Config {
    /// Reads PostgREST's variable names through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let get = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let list = |k: &str| {
            get(k)
                .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
                .unwrap_or_default()
        };
        let db_uri = get("PGRST_DB_URI").ok_or("PGRST_DB_URI is required")?;
        let mut schemas: Vec<String> = list("PGRST_DB_SCHEMAS");
        if schemas.is_empty() {
            schemas.push("public".into());
        }
        let tx_end = match get("PGRST_DB_TX_END").as_deref() {
            None | Some("commit") => TxEnd::Commit,
            Some("commit-allow-override") => TxEnd::CommitAllowOverride,
            Some("rollback") => TxEnd::Rollback,
            Some("rollback-allow-override") => TxEnd::RollbackAllowOverride,
            Some(other) => return Err(format!("PGRST_DB_TX_END: unknown value {other:?}")),
        };
        let number = |k: &str| -> Result<Option<i64>, String> {
            get(k).map(|v| v.parse::<i64>().map_err(|_| format!("{k} must be a number, got {v:?}"))).transpose()
        };
        let jwt_secret = get("PGRST_JWT_SECRET");
        if jwt_secret.as_ref().is_some_and(|s| s.len() < 32) {
            return Err("PGRST_JWT_SECRET must be at least 32 characters".into());
        }
        Ok(Config {
            db_uri,
            schemas,
            anon_role: get("PGRST_DB_ANON_ROLE"),
            jwt_secret,
            pre_request: get("PGRST_DB_PRE_REQUEST"),
            tx_end,
            max_rows: number("PGRST_DB_MAX_ROWS")?,
            port: number("PGRST_SERVER_PORT")?.unwrap_or(3000) as u16,
            pool_size: number("PGRST_DB_POOL")?.unwrap_or(10).max(1) as usize,
            publishable_keys: list("GATEWAY_PUBLISHABLE_KEYS"),
            secret_keys: list("GATEWAY_SECRET_KEYS"),
        })
    }
}

struct AppState {
    config: Config,
    pool: Pool,
    cache: RwLock<Option<Arc<SchemaCache>>>,
    /// Requests received, read at [`REQUEST_COUNTER`].
    requests: AtomicU64,
}

/// Dev only, no PostgREST has it: `GET` answers `{"requests": n}`, the
/// requests this gateway has received (every path, this one excepted), so
/// the benchmark can count what reaches PostgREST while workers idle.
pub const REQUEST_COUNTER: &str = "/__gateway/requests";

/// Bodies above this answer 413, as a proxy in front of PostgREST would.
const MAX_BODY: usize = 10 * 1024 * 1024;

/// Serves until `shutdown` resolves. The database may be down at start:
/// requests answer 503 until it is reachable.
pub async fn serve(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
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
    let state = Arc::new(AppState { config, pool, cache: RwLock::new(None), requests: AtomicU64::new(0) });
    let watcher = tokio::spawn(watch_schema(state.clone()));
    let app = axum::Router::new().fallback(handle).layer(DefaultBodyLimit::max(MAX_BODY)).with_state(state);
    let result = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    watcher.abort();
    result
}

/// Loads the schema cache, then reloads it on `NOTIFY pgrst`; reconnects
/// when the listening connection drops.
async fn watch_schema(state: Arc<AppState>) {
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
                while let Some(payload) = rx.recv().await {
                    if payload.is_empty() || payload == "reload schema" {
                        reload(&state, &client).await;
                    }
                }
            }
            pump.abort();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn reload(state: &AppState, client: &tokio_postgres::Client) -> bool {
    match SchemaCache::load(client, &state.config.schemas).await {
        Ok(cache) => {
            *state.cache.write().expect("cache lock") = Some(Arc::new(cache));
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

/// The parsed `Prefer` header.
#[derive(Default)]
struct Prefer {
    ret: Option<String>,
    count: Option<String>,
    resolution: Option<String>,
    tx: Option<String>,
}

fn parse_prefer(headers: &HeaderMap) -> Prefer {
    let mut p = Prefer::default();
    for value in headers.get_all("prefer").iter().filter_map(|v| v.to_str().ok()) {
        for part in value.split(',').map(str::trim) {
            match part.split_once('=') {
                Some(("return", v)) => p.ret = Some(v.into()),
                Some(("count", v)) => p.count = Some(v.into()),
                Some(("resolution", v)) => p.resolution = Some(v.into()),
                Some(("tx", v)) => p.tx = Some(v.into()),
                _ => {}
            }
        }
    }
    p
}

/// Everything a statement needs to run: role, claims and request settings.
struct Ctx<'a> {
    role: String,
    claims: Value,
    schema: String,
    method: &'a Method,
    path: String,
    headers: &'a HeaderMap,
}

/// The one row every statement returns.
struct Outcome {
    total: Option<i64>,
    page: i64,
    body: Option<String>,
    headers: Option<String>,
    status: Option<String>,
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
    let query_apikey = take_param(&mut pairs, "apikey");
    let (role, claims) = auth::authenticate(&state.config, headers, supabase, query_apikey.as_deref())?;

    let read = matches!(*method, Method::GET | Method::HEAD);
    let profile_header = if read { "accept-profile" } else { "content-profile" };
    let schema = match headers.get(profile_header).and_then(|v| v.to_str().ok()) {
        Some(s) if state.config.schemas.iter().any(|x| x == s) => s.to_string(),
        Some(_) => {
            return Err(PgrstError::new(
                406,
                "PGRST106",
                format!("The schema must be one of the following: {}", state.config.schemas.join(", ")),
            ))
        }
        None => state.config.schemas[0].clone(),
    };
    let cache = state.cache.read().expect("cache lock").clone().ok_or_else(|| {
        PgrstError::new(503, "PGRST002", "Could not query the database for the schema cache. Retrying.")
    })?;
    let ctx = Ctx { role, claims, schema: schema.clone(), method, path: path.to_string(), headers };
    let prefer = parse_prefer(headers);

    let mut response = if let Some(function) = path.strip_prefix("/rpc/") {
        rpc(state, &cache, &ctx, function, &pairs, body, &prefer).await?
    } else {
        let table = path.trim_start_matches('/');
        if table.is_empty() || table.contains('/') {
            return Err(PgrstError::new(404, "PGRST125", "Invalid path specified in request URL".to_string()));
        }
        table_request(state, &cache, &ctx, table, &pairs, body, &prefer).await?
    };
    if state.config.schemas.len() > 1 {
        if let Ok(v) = HeaderValue::from_str(&schema) {
            response.headers_mut().insert("content-profile", v);
        }
    }
    if *method == Method::HEAD {
        *response.body_mut() = axum::body::Body::empty();
    }
    Ok(response)
}

fn url_decode_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let decode =
                |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
            (decode(k), decode(v))
        })
        .collect()
}

fn take_param(pairs: &mut Vec<(String, String)>, name: &str) -> Option<String> {
    let i = pairs.iter().position(|(k, _)| k == name)?;
    Some(pairs.remove(i).1)
}

fn wants_object(headers: &HeaderMap) -> bool {
    headers.get("accept").and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("application/vnd.pgrst.object+json"))
}

/// Offset and limit from `limit`/`offset`, the Range header (GET only)
/// and PGRST_DB_MAX_ROWS.
fn paging(state: &AppState, q: &Query, headers: &HeaderMap, method: &Method) -> Result<(i64, Option<i64>), PgrstError> {
    let range_error =
        |details: String| PgrstError::new(416, "PGRST103", "Requested range not satisfiable").with_details(details);
    let mut offset = q.offset.unwrap_or(0);
    let mut limit = q.limit;
    if offset < 0 {
        return Err(range_error("An offset must be a non-negative number".into()));
    }
    if limit.is_some_and(|l| l < 0) {
        return Err(range_error("Limit should be greater than or equal to zero.".into()));
    }
    if matches!(*method, Method::GET | Method::HEAD) {
        if let Some(range) = headers.get("range").and_then(|v| v.to_str().ok()) {
            let spec = range.trim().trim_start_matches("items=");
            let (a, b) = spec.split_once('-').ok_or_else(|| range_error(format!("invalid range {range}")))?;
            let start: i64 = a.trim().parse().map_err(|_| range_error(format!("invalid range {range}")))?;
            let end: Option<i64> = if b.trim().is_empty() {
                None
            } else {
                Some(b.trim().parse().map_err(|_| range_error(format!("invalid range {range}")))?)
            };
            if end.is_some_and(|e| e < start) {
                return Err(range_error(
                    "The lower boundary must be lower than or equal to the upper boundary in the Range header."
                        .to_string(),
                ));
            }
            offset += start;
            if let Some(e) = end {
                let n = e - start + 1;
                limit = Some(limit.map_or(n, |l| l.min(n)));
            }
        }
    }
    if let Some(max) = state.config.max_rows {
        limit = Some(limit.map_or(max, |l| l.min(max)));
    }
    Ok((offset, limit))
}

async fn table_request(
    state: &AppState,
    cache: &SchemaCache,
    ctx: &Ctx<'_>,
    table: &str,
    pairs: &[(String, String)],
    body: &[u8],
    prefer: &Prefer,
) -> Result<Response, PgrstError> {
    let relation = cache.relations.get(&(ctx.schema.clone(), table.to_string())).ok_or_else(|| {
        PgrstError::new(
            404,
            "PGRST205",
            format!("Could not find the table '{}.{table}' in the schema cache", ctx.schema),
        )
    })?;
    let q = query::parse(pairs, &[])?;
    let target = qualified(&ctx.schema, table);
    let select = sql::select_list(&q.select, &relation.columns);
    let filters = sql::where_clause(&q.filters)?;
    let singular = wants_object(ctx.headers);
    let mut applied = Vec::new();
    let count_exact = prefer.count.is_some();
    if let Some(c) = &prefer.count {
        applied.push(format!("count={c}"));
    }
    match *ctx.method {
        Method::GET | Method::HEAD => {
            let (offset, limit) = paging(state, &q, ctx.headers, ctx.method)?;
            let source = format!(
                "SELECT {select} FROM {target}{filters}{}{}",
                sql::order_clause(&q.order),
                sql::limit_clause(limit, Some(offset))
            );
            let total = if count_exact {
                format!("(SELECT pg_catalog.count(*) FROM {target}{filters})::text")
            } else {
                "NULL::text".into()
            };
            let statement = sql::wrap(&source, "SELECT * FROM pgrst_source", &total, &body_expr(singular));
            let outcome = execute(state, ctx, &statement, true, singular, prefer).await?;
            if count_exact {
                if let Some(t) = outcome.total {
                    if offset > t {
                        return Err(PgrstError::new(416, "PGRST103", "Requested range not satisfiable").with_details(
                            format!("An offset of {offset} was requested, but there are only {t} rows."),
                        ));
                    }
                }
            }
            let mut status = StatusCode::OK;
            if let Some(total) = outcome.total {
                if outcome.page < total && (limit.is_some() || offset > 0) {
                    status = StatusCode::PARTIAL_CONTENT;
                }
            }
            let range = content_range(offset, outcome.page, outcome.total);
            finish(outcome, status, singular, Some(range), &applied, None)
        }
        Method::POST => {
            let rows = body_rows(body)?;
            let columns = match &q.columns {
                Some(c) => c.clone(),
                None => first_keys(&rows)?,
            };
            check_columns(&columns, relation, &ctx.schema, table)?;
            let json = literal(&Value::Array(rows.clone()).to_string());
            let col_list = columns.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
            let on_conflict = match prefer.resolution.as_deref() {
                Some(res @ ("merge-duplicates" | "ignore-duplicates")) => {
                    applied.push(format!("resolution={res}"));
                    let keys = q.on_conflict.clone().unwrap_or_else(|| relation.primary_key.clone());
                    let keys_sql = keys.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
                    if res == "ignore-duplicates" {
                        format!(" ON CONFLICT ({keys_sql}) DO NOTHING")
                    } else {
                        let sets: Vec<String> =
                            columns.iter().map(|c| format!("{} = EXCLUDED.{}", ident(c), ident(c))).collect();
                        if sets.is_empty() {
                            format!(" ON CONFLICT ({keys_sql}) DO NOTHING")
                        } else {
                            format!(" ON CONFLICT ({keys_sql}) DO UPDATE SET {}", sets.join(", "))
                        }
                    }
                }
                _ => String::new(),
            };
            let insert = if columns.is_empty() {
                format!("INSERT INTO {target} DEFAULT VALUES")
            } else {
                format!("INSERT INTO {target} ({col_list}) SELECT {col_list} FROM json_populate_recordset(NULL::{target}, {json}::json){on_conflict}")
            };
            // xmax = 0 tells an inserted row from an updated one (upserts only: views have no xmax).
            let inserted = if on_conflict.is_empty() { "true" } else { "(xmax = 0)" };
            let source = format!("{insert} RETURNING {target}.*, {inserted} AS pgrst_inserted");
            let inner = format!("SELECT {select} FROM pgrst_source");
            let ret = prefer.ret.as_deref().unwrap_or("minimal");
            let body = match ret {
                "representation" => body_expr(singular),
                "headers-only" => location_expr(&relation.primary_key),
                _ => "NULL::text".into(),
            };
            applied.push(format!("return={ret}"));
            let statement =
                sql::wrap(&source, &inner, "(SELECT count(*) FROM pgrst_source WHERE pgrst_inserted)::text", &body);
            let outcome = execute(state, ctx, &statement, false, singular && ret == "representation", prefer).await?;
            let merged_none = prefer.resolution.as_deref() == Some("merge-duplicates")
                && outcome.total == Some(0)
                && outcome.page > 0;
            let status = if merged_none { StatusCode::OK } else { StatusCode::CREATED };
            let location = (ret == "headers-only")
                .then(|| outcome.body.as_deref().and_then(|b| location_header(table, b)))
                .flatten();
            let keep_body = ret == "representation";
            let outcome = Outcome { body: if keep_body { outcome.body } else { None }, ..outcome };
            finish(outcome, status, singular && keep_body, Some("*/*".into()), &applied, location)
        }
        Method::PATCH | Method::DELETE => {
            let source = if *ctx.method == Method::PATCH {
                let patch: Map<String, Value> = match serde_json::from_slice(body) {
                    Ok(Value::Object(m)) => m,
                    _ => return Err(invalid_json()),
                };
                let columns: Vec<String> = patch.keys().cloned().collect();
                check_columns(&columns, relation, &ctx.schema, table)?;
                if columns.is_empty() {
                    // Nothing to set: PostgREST answers without touching rows.
                    format!("SELECT {target}.*, false AS pgrst_inserted FROM {target} WHERE false")
                } else {
                    let cols = columns.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
                    let json = literal(&Value::Object(patch).to_string());
                    format!(
                        "UPDATE {target} SET ({cols}) = (SELECT {cols} FROM json_populate_record(NULL::{target}, {json}::json)){filters} RETURNING {target}.*"
                    )
                }
            } else {
                format!("DELETE FROM {target}{filters} RETURNING {target}.*")
            };
            let inner = format!("SELECT {select} FROM pgrst_source");
            let ret = prefer.ret.as_deref().unwrap_or("minimal");
            applied.push(format!("return={ret}"));
            let representation = ret == "representation";
            let body = if representation { body_expr(singular) } else { "NULL::text".into() };
            let statement = sql::wrap(&source, &inner, "NULL::text", &body);
            let outcome = execute(state, ctx, &statement, false, singular, prefer).await?;
            let range = if outcome.page > 0 { format!("0-{}/*", outcome.page - 1) } else { "*/*".into() };
            let status = if representation { StatusCode::OK } else { StatusCode::NO_CONTENT };
            let outcome = Outcome { body: if representation { outcome.body } else { None }, ..outcome };
            finish(outcome, status, singular && representation, Some(range), &applied, None)
        }
        _ => Err(PgrstError::new(405, "PGRST117", format!("Unsupported HTTP method: {}", ctx.method))),
    }
}

fn check_columns(columns: &[String], relation: &schema::Relation, schema: &str, table: &str) -> Result<(), PgrstError> {
    for c in columns {
        if !relation.columns.contains(c) {
            return Err(PgrstError::new(
                400,
                "PGRST204",
                format!("Could not find the '{c}' column of '{schema}.{table}' in the schema cache"),
            ));
        }
    }
    Ok(())
}

fn invalid_json() -> PgrstError {
    PgrstError::new(400, "PGRST102", "Empty or invalid json")
}

fn body_rows(body: &[u8]) -> Result<Vec<Value>, PgrstError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(vec![Value::Object(o)]),
        Ok(Value::Array(items)) if items.iter().all(Value::is_object) => Ok(items),
        _ => Err(invalid_json()),
    }
}

fn first_keys(rows: &[Value]) -> Result<Vec<String>, PgrstError> {
    let Some(first) = rows.first().and_then(Value::as_object) else { return Ok(Vec::new()) };
    let mut keys: Vec<String> = first.keys().cloned().collect();
    keys.sort();
    for row in rows {
        let mut k: Vec<String> = row.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        k.sort();
        if k != keys {
            return Err(PgrstError::new(400, "PGRST102", "All object keys must match"));
        }
    }
    Ok(keys)
}

fn body_expr(singular: bool) -> String {
    if singular {
        "(json_agg(_postgrest_t)->0)::text".into()
    } else {
        "coalesce(json_agg(_postgrest_t), '[]')::text".into()
    }
}

/// For `return=headers-only`: the first row's primary key as JSON.
fn location_expr(pk: &[String]) -> String {
    if pk.is_empty() {
        return "NULL::text".into();
    }
    let fields: Vec<String> = pk.iter().map(|c| format!("{}, {}", literal(c), ident(c))).collect();
    format!("(SELECT json_build_object({}) FROM pgrst_source LIMIT 1)::text", fields.join(", "))
}

fn location_header(table: &str, pk_json: &str) -> Option<String> {
    let map: Map<String, Value> = serde_json::from_str(pk_json).ok()?;
    let parts: Vec<String> = map
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=eq.{}",
                match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }
            )
        })
        .collect();
    Some(format!("/{table}?{}", parts.join("&")))
}

fn content_range(offset: i64, page: i64, total: Option<i64>) -> String {
    let total = total.map_or("*".to_string(), |t| t.to_string());
    if page == 0 {
        format!("*/{total}")
    } else {
        format!("{offset}-{}/{total}", offset + page - 1)
    }
}

async fn rpc(
    state: &AppState,
    cache: &SchemaCache,
    ctx: &Ctx<'_>,
    name: &str,
    pairs: &[(String, String)],
    body: &[u8],
    prefer: &Prefer,
) -> Result<Response, PgrstError> {
    let candidates = cache.functions.get(&(ctx.schema.clone(), name.to_string()));
    let read = matches!(*ctx.method, Method::GET | Method::HEAD);
    if !read && *ctx.method != Method::POST {
        return Err(PgrstError::new(405, "PGRST101", "Only GET and POST are allowed for functions"));
    }
    // Arguments: the JSON body for POST, query parameters for GET.
    // Query parameters are text; body values are JSON (a JSON string given
    // for a json/jsonb argument stays a JSON string).
    let (args, body_value): (Map<String, Value>, Option<Value>) = if read {
        let all_names: Vec<String> = candidates
            .map(|fs| fs.iter().flat_map(|f| f.args.iter().map(|a| a.name.clone())).collect())
            .unwrap_or_default();
        let args = pairs
            .iter()
            .filter(|(k, _)| all_names.contains(k))
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        (args, None)
    } else if body.iter().all(u8::is_ascii_whitespace) {
        (Map::new(), None)
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => (m.clone(), Some(Value::Object(m))),
            Ok(other) => (Map::new(), Some(other)),
            Err(_) => return Err(invalid_json()),
        }
    };
    let names: Vec<&str> = args.keys().map(String::as_str).collect();
    let function: &Function = candidates
        .and_then(|fs| fs.iter().find(|f| f.accepts(&names)).or_else(|| fs.iter().find(|f| !read && f.takes_body())))
        .ok_or_else(|| {
            let mut sorted = names.clone();
            sorted.sort();
            PgrstError::new(
                404,
                "PGRST202",
                format!("Could not find the function {}.{name}({}) in the schema cache", ctx.schema, sorted.join(", ")),
            )
            .with_hint("Perhaps you meant to call a function with other arguments.")
        })?;
    let arg_names: Vec<String> = function.args.iter().map(|a| a.name.clone()).collect();
    let q = query::parse(pairs, &arg_names)?;
    let call_args: Vec<String> = if function.takes_body() && !function.accepts(&names) {
        let v = body_value.unwrap_or(Value::Null);
        vec![format!("{}::{}", literal(&v.to_string()), function.args[0].pg_type)]
    } else {
        function
            .args
            .iter()
            .filter_map(|a| {
                let v = args.get(&a.name)?;
                let json_arg = !read && matches!(a.pg_type.as_str(), "json" | "jsonb");
                let text = match v {
                    Value::Null => return Some(format!("{} := NULL::{}", ident(&a.name), a.pg_type)),
                    Value::String(s) if !json_arg => s.clone(),
                    other => other.to_string(),
                };
                Some(format!("{} := {}::{}", ident(&a.name), literal(&text), a.pg_type))
            })
            .collect()
    };
    let call = format!("{}({})", qualified(&ctx.schema, name), call_args.join(", "));
    let singular = wants_object(ctx.headers);
    let filters = sql::where_clause(&q.filters)?;
    let (offset, limit) = paging(state, &q, ctx.headers, ctx.method)?;
    let tail = format!("{filters}{}{}", sql::order_clause(&q.order), sql::limit_clause(limit, Some(offset)));
    let (source, inner, body) = match (&function.row_columns, function.returns_set) {
        _ if function.returns_void => {
            (format!("SELECT {call}"), "SELECT * FROM pgrst_source".into(), "NULL::text".into())
        }
        (Some(cols), true) => (
            format!("SELECT * FROM {call}"),
            format!("SELECT {} FROM pgrst_source{tail}", sql::select_list(&q.select, cols)),
            body_expr(singular),
        ),
        (Some(cols), false) => (
            format!("SELECT * FROM {call}"),
            format!("SELECT {} FROM pgrst_source", sql::select_list(&q.select, cols)),
            "(json_agg(_postgrest_t)->0)::text".into(),
        ),
        (None, true) => (
            format!("SELECT pgrst_scalar FROM {call} pgrst_scalar"),
            format!("SELECT pgrst_scalar FROM pgrst_source{tail}"),
            if singular {
                "(json_agg(_postgrest_t.pgrst_scalar)->0)::text".into()
            } else {
                "coalesce(json_agg(_postgrest_t.pgrst_scalar), '[]')::text".into()
            },
        ),
        (None, false) => (
            format!("SELECT {call} AS pgrst_scalar"),
            "SELECT pgrst_scalar FROM pgrst_source".into(),
            "(json_agg(_postgrest_t.pgrst_scalar)->0)::text".into(),
        ),
    };
    let statement = sql::wrap(&source, &inner, "NULL::text", &body);
    let read_only = read || !function.volatile;
    let check_single = singular && function.returns_set;
    let outcome = execute(state, ctx, &statement, read_only, check_single, prefer).await?;
    if function.returns_void {
        let mut r = StatusCode::NO_CONTENT.into_response();
        apply_guc_headers(&mut r, outcome.headers.as_deref());
        return Ok(r);
    }
    let range = function.returns_set.then(|| content_range(offset, outcome.page, None));
    let body = outcome.body.clone().or_else(|| Some("null".into()));
    finish(Outcome { body, ..outcome }, StatusCode::OK, singular, range, &[], None)
}

/// Runs `statement` in one transaction as the request's role; `check_single`
/// rolls back unless exactly one row came out (PGRST116).
async fn execute(
    state: &AppState,
    ctx: &Ctx<'_>,
    statement: &str,
    read_only: bool,
    check_single: bool,
    prefer: &Prefer,
) -> Result<Outcome, PgrstError> {
    let client = state.pool.get().await.map_err(|e| {
        PgrstError::new(503, "PGRST001", "Database client error. Retrying the connection.").with_details(e.to_string())
    })?;
    let rollback_wanted = match state.config.tx_end {
        TxEnd::Commit => false,
        TxEnd::Rollback => true,
        TxEnd::CommitAllowOverride => prefer.tx.as_deref() == Some("rollback"),
        TxEnd::RollbackAllowOverride => prefer.tx.as_deref() != Some("commit"),
    };
    let mut headers = Map::new();
    for (name, value) in ctx.headers {
        if name.as_str() != "cookie" {
            headers.insert(name.as_str().to_string(), Value::String(value.to_str().unwrap_or_default().to_string()));
        }
    }
    let mut claims = ctx.claims.clone();
    if let Value::Object(m) = &mut claims {
        m.entry("role").or_insert_with(|| Value::String(ctx.role.clone()));
    }
    let settings = format!(
        "SELECT set_config('search_path', {}, true), set_config('role', {}, true), \
         set_config('request.jwt.claims', {}, true), set_config('request.method', {}, true), \
         set_config('request.path', {}, true), set_config('request.headers', {}, true), \
         set_config('request.cookies', '{{}}', true)",
        literal(&format!("{}, public", ident(&ctx.schema))),
        literal(&ctx.role),
        literal(&claims.to_string()),
        literal(ctx.method.as_str()),
        literal(&ctx.path),
        literal(&Value::Object(headers).to_string()),
    );
    let pre = state
        .config
        .pre_request
        .as_deref()
        .map(|f| format!("SELECT {}(); ", f.split('.').map(ident).collect::<Vec<_>>().join(".")))
        .unwrap_or_default();
    let begin = if read_only {
        "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY"
    } else {
        "BEGIN ISOLATION LEVEL READ COMMITTED"
    };
    // The common case ends the transaction in the same message: one round trip.
    let decide_later = check_single || rollback_wanted;
    let end = if decide_later { "" } else { "; COMMIT" };
    let text = format!("{begin}; {settings}; {pre}{statement}{end}");
    let anon = state.config.anon_role.as_deref() == Some(ctx.role.as_str());
    let messages = match client.simple_query(&text).await {
        Ok(m) => m,
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(PgrstError::from_db(&e, anon));
        }
    };
    let row = messages
        .iter()
        .rev()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .ok_or_else(|| PgrstError::new(500, "PGRST000", "statement returned no row"))?;
    let outcome = Outcome {
        total: row.get(0).and_then(|t| t.parse().ok()),
        page: row.get(1).and_then(|t| t.parse().ok()).unwrap_or(0),
        body: row.get(2).map(str::to_string),
        headers: row.get(3).map(str::to_string),
        status: row.get(4).map(str::to_string),
    };
    if decide_later {
        let single_ok = !check_single || outcome.page == 1;
        let end = if single_ok && !rollback_wanted { "COMMIT" } else { "ROLLBACK" };
        client.batch_execute(end).await.map_err(|e| PgrstError::from_db(&e, anon))?;
        if !single_ok {
            return Err(PgrstError::new(406, "PGRST116", "Cannot coerce the result to a single JSON object")
                .with_details(format!("The result contains {} rows", outcome.page)));
        }
    }
    Ok(outcome)
}

fn finish(
    outcome: Outcome,
    status: StatusCode,
    singular: bool,
    range: Option<String>,
    applied: &[String],
    location: Option<String>,
) -> Result<Response, PgrstError> {
    let status = match outcome
        .status
        .as_deref()
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
    {
        Some(s) => s,
        None => status,
    };
    let mut response = match &outcome.body {
        Some(body) => {
            let mut r = (status, body.clone()).into_response();
            let ct = if singular {
                "application/vnd.pgrst.object+json; charset=utf-8"
            } else {
                "application/json; charset=utf-8"
            };
            r.headers_mut().insert("content-type", HeaderValue::from_static(ct));
            r
        }
        None => status.into_response(),
    };
    let h = response.headers_mut();
    if let Some(range) = range.and_then(|r| HeaderValue::from_str(&r).ok()) {
        h.insert("content-range", range);
    }
    if !applied.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&applied.join(", ")) {
            h.insert("preference-applied", v);
        }
    }
    if let Some(loc) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        h.insert("location", loc);
    }
    apply_guc_headers(&mut response, outcome.headers.as_deref());
    Ok(response)
}

/// `response.headers` GUC: a JSON array of one-key objects.
fn apply_guc_headers(response: &mut Response, json: Option<&str>) {
    let Some(items) = json.and_then(|j| serde_json::from_str::<Vec<Map<String, Value>>>(j).ok()) else { return };
    for item in items {
        for (k, v) in item {
            if let (Ok(name), Some(Ok(value))) =
                (HeaderName::try_from(k.as_str()), v.as_str().map(HeaderValue::from_str))
            {
                response.headers_mut().append(name, value);
            }
        }
    }
}
