//! Rate limiting at the edge: one Durable Object per (principal, route
//! class) holds that pair's GCRA state, so every isolate sees the same count.

use std::cell::Cell;

use cogo_shared::auth::ratelimit::{Decision, Limit};
use cogo_shared::ApiError;
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, State};

use super::DurableRequest;

/// Counts one request against a limit of `per_minute`.
#[derive(Serialize, Deserialize)]
struct Check {
    per_minute: u32,
}

impl DurableRequest for Check {
    const BINDING: &'static str = "RATE_LIMITER";
}
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

    /// A [`Check`] -> the [`Decision`].
    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        let Check { per_minute } = super::receive(req).await?;
        if !self.loaded.get() {
            self.tat.set(self.state.storage().get::<f64>(TAT_KEY).await?);
            self.loaded.set(true);
        }
        let decision = Limit { per_minute }.check(self.tat.get(), js_sys::Date::now());
        if decision.allowed {
            self.tat.set(Some(decision.tat_ms));
            self.state.storage().put(TAT_KEY, decision.tat_ms).await?;
        }
        Response::from_json(&decision)
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
    super::send(env, key, &Check { per_minute: limit.per_minute }).await?.json().await
}
