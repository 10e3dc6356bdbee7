//! The project's JWKS (ES256 and RS256 signing keys), fetched when a token
//! needs it and kept per isolate; when to fetch is
//! [`cogo_shared::auth::jwks::JwksCache`]'s policy (fresh for 10 minutes, an
//! unknown kid refetches at most every 10 s, a failure is not retried for
//! 30 s, one fetch in flight at a time).

use std::cell::RefCell;
use std::time::Duration;

use cogo_shared::auth::jwks::{JwksCache, Plan};
use cogo_shared::auth::{jwks_key_id, JwkSet};
use cogo_shared::config::Config;
use cogo_shared::http::{HttpRequest, Method, Transport};
use cogo_shared::ApiError;
use worker::Delay;

use crate::runtime::platform;

/// How often a request waiting for another's fetch looks again.
const WAIT_POLL: Duration = Duration::from_millis(25);

thread_local! {
    static CACHE: RefCell<JwksCache> = RefCell::new(JwksCache::default());
}

fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// The key set to verify this request's bearer token with, when it is an
/// ES256 or RS256 token and a JWKS URL is configured; 503 while the JWKS
/// cannot be fetched and none was fetched before.
pub async fn for_token(config: &Config, authorization: Option<&str>) -> Result<Option<JwkSet>, ApiError> {
    let (Some(kid), Some(url)) = (jwks_key_id(authorization), config.jwks_url.as_deref()) else {
        return Ok(None);
    };
    loop {
        match CACHE.with(|c| c.borrow().plan(&kid, now_ms())) {
            Plan::Ready => break,
            // A request cannot await another's fetch in workerd: it polls the cache.
            Plan::Wait => Delay::from(WAIT_POLL).await,
            Plan::Fetch => {
                CACHE.with(|c| c.borrow_mut().begin(now_ms()));
                let fetched = fetch(config, url).await;
                CACHE.with(|c| c.borrow_mut().record(fetched, now_ms()));
                break;
            }
        }
    }
    CACHE.with(|c| c.borrow().keys(now_ms()).map(|set| set.cloned()))
}

async fn fetch(config: &Config, url: &str) -> Option<JwkSet> {
    let request = HttpRequest { method: Method::Get, url: url.to_string(), headers: Vec::new(), body: None };
    let outcome = match platform::transport(config).send(request).await {
        Ok(response) if response.status == 200 => JwkSet::parse(&response.body),
        Ok(response) => Err(format!("JWKS answered {}", response.status)),
        Err(e) => Err(format!("{e:?}")),
    };
    outcome.map_err(|e| worker::console_error!("fetching the JWKS failed: {e}")).ok()
}
