//! Rate limiting at the edge: one Durable Object per (principal, route
//! class) holds that pair's GCRA state, so every isolate sees the same count.

use std::cell::Cell;

use cogo_shared::auth::ratelimit::{Decision, Limit};
use cogo_shared::ApiError;
use serde_json::json;
use worker::{durable_object, DurableObject, Env, Request, RequestInit, Response, State};

const BINDING: &str = "RATE_LIMITER";
const TAT_KEY: &str = "tat";

thread_local! {
    /// This isolate's name for the anonymous callers it cannot tell apart.
    static ISOLATE_ID: String = format!("{:016x}", (js_sys::Math::random() * 2f64.powi(53)) as u64);
}

pub fn isolate_id() -> String {
    ISOLATE_ID.with(String::clone)
}

#[durable_object]
pub struct RateLimiter {
    state: State,
    /// Cached copy of the stored TAT; storage keeps it across evictions.
    tat: Cell<Option<f64>>,
    loaded: Cell<bool>,
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        RateLimiter { state, tat: Cell::new(None), loaded: Cell::new(false) }
    }

    /// `POST {"perMinute": n}` -> the decision as JSON.
    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let per_minute = req.json::<serde_json::Value>().await?["perMinute"].as_u64().unwrap_or(60) as u32;
        if !self.loaded.get() {
            self.tat.set(self.state.storage().get::<f64>(TAT_KEY).await?);
            self.loaded.set(true);
        }
        let decision = Limit { per_minute }.check(self.tat.get(), js_sys::Date::now());
        if decision.allowed {
            self.tat.set(Some(decision.tat_ms));
            self.state.storage().put(TAT_KEY, decision.tat_ms).await?;
        }
        Response::from_json(&json!({
            "allowed": decision.allowed, "tatMs": decision.tat_ms, "remaining": decision.remaining,
            "resetSecs": decision.reset_secs, "retryAfterSecs": decision.retry_after_secs,
        }))
    }
}

/// Counts one request of `key` against `limit`: the headers to add, or 429.
/// When the limiter itself cannot answer, the request goes through (and the
/// failure is logged): the queue stays available, and a limiter outage
/// only loosens a limit for as long as it lasts.
pub async fn enforce(env: &Env, key: &str, limit: Limit) -> Result<Vec<(String, String)>, ApiError> {
    match ask(env, key, limit).await {
        Ok(decision) if decision.allowed => Ok(decision.headers(limit)),
        Ok(decision) => {
            let mut e = ApiError::new(429, "rate_limited", "too many requests; retry after the Retry-After delay")
                .with_retryable(true);
            e.headers.extend(decision.headers(limit));
            Err(e)
        }
        Err(e) => {
            worker::console_error!("rate limiter unavailable, letting the request through: {e}");
            Ok(Vec::new())
        }
    }
}

async fn ask(env: &Env, key: &str, limit: Limit) -> worker::Result<Decision> {
    let stub = env.durable_object(BINDING)?.id_from_name(key)?.get_stub()?;
    let mut init = RequestInit::new();
    init.with_method(worker::Method::Post).with_body(Some(json!({ "perMinute": limit.per_minute }).to_string().into()));
    let mut response = stub.fetch_with_request(Request::new_with_init("https://rate-limiter/check", &init)?).await?;
    let v: serde_json::Value = response.json().await?;
    Ok(Decision {
        allowed: v["allowed"].as_bool().unwrap_or(true),
        tat_ms: v["tatMs"].as_f64().unwrap_or_default(),
        remaining: v["remaining"].as_u64().unwrap_or_default() as u32,
        reset_secs: v["resetSecs"].as_u64().unwrap_or_default(),
        retry_after_secs: v["retryAfterSecs"].as_u64().unwrap_or_default(),
    })
}
