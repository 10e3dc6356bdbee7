//! The project's JWKS (ES256 and RS256 signing keys), fetched when a token
//! needs it and kept per isolate; when to fetch is
//! [`cogo_shared::jwks::JwksCache`]'s policy (fresh for 10 minutes, an
//! unknown kid refetches at most every 10 s, a failure is not retried for
//! 30 s). Concurrent requests share one fetch in flight.

use std::cell::RefCell;

use cogo_shared::auth::{jwks_key_id, JwkSet};
use cogo_shared::config::Config;
use cogo_shared::http::{HttpRequest, Method, Transport};
use cogo_shared::jwks::JwksCache;
use cogo_shared::ApiError;
use futures::future::{FutureExt, LocalBoxFuture, Shared};

use crate::platform;
use crate::transport::FetchTransport;

type Fetch = Shared<LocalBoxFuture<'static, Option<JwkSet>>>;

thread_local! {
    static CACHE: RefCell<JwksCache> = RefCell::new(JwksCache::default());
    static IN_FLIGHT: RefCell<Option<Fetch>> = const { RefCell::new(None) };
}

fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// The key set to verify this request's bearer token with, when it is an
/// ES256 or RS256 token and a JWKS URL is configured; 503 while the JWKS
/// cannot be fetched and none was fetched before.
pub async fn for_token(config: &Config, authorization: Option<&str>) -> Result<Option<JwkSet>, ApiError> {
    let (Some(kid), Some(url)) = (jwks_key_id(authorization), config.jwks_url.clone()) else {
        return Ok(None);
    };
    if CACHE.with(|c| c.borrow().should_fetch(&kid, now_ms())) {
        let transport = platform::transport(config);
        let fetch = IN_FLIGHT
            .with(|f| f.borrow_mut().get_or_insert_with(|| fetch(transport, url).boxed_local().shared()).clone());
        let fetched = fetch.await;
        // Every waiter wakes with the same outcome; the first records it.
        if IN_FLIGHT.with(|f| f.borrow_mut().take()).is_some() {
            CACHE.with(|c| c.borrow_mut().record(fetched, now_ms()));
        }
    }
    CACHE.with(|c| c.borrow().keys(now_ms()).map(|set| set.cloned()))
}

async fn fetch(transport: FetchTransport, url: String) -> Option<JwkSet> {
    let request = HttpRequest { method: Method::Get, url, headers: Vec::new(), body: None };
    let outcome = match transport.send(request).await {
        Ok(response) if response.status == 200 => JwkSet::parse(&response.body),
        Ok(response) => Err(format!("JWKS answered {}", response.status)),
        Err(e) => Err(format!("{e:?}")),
    };
    outcome.map_err(|e| worker::console_error!("fetching the JWKS failed: {e}")).ok()
}
