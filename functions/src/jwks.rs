//! The project's JWKS (ES256 and RS256 signing keys), fetched when a token
//! needs it and kept per isolate: fresh for 10 minutes (Supabase serves it
//! with max-age 600), refetched early once a token names a key it lacks, so
//! a key rotation is picked up without a deploy.

use std::cell::RefCell;

use cogo_shared::auth::{jwks_key_id, JwkSet};
use cogo_shared::config::Config;
use cogo_shared::http::{HttpRequest, Method, Transport};

use crate::platform;

const MAX_AGE_MS: f64 = 600_000.0;
/// An unknown kid refetches at most this often, so forged kids cannot
/// turn every request into a fetch.
const UNKNOWN_KID_REFETCH_MS: f64 = 10_000.0;

thread_local! {
    static CACHE: RefCell<Option<(JwkSet, f64)>> = const { RefCell::new(None) };
}

/// The key set to verify this request's bearer token with, when it is an
/// ES256 or RS256 token and a JWKS URL is configured.
pub async fn for_token(config: &Config, authorization: Option<&str>) -> Option<JwkSet> {
    let kid = jwks_key_id(authorization)?;
    let url = config.jwks_url.as_deref()?;
    let now = js_sys::Date::now();
    let cached = CACHE.with(|c| c.borrow().clone());
    if let Some((set, fetched)) = &cached {
        let age = now - fetched;
        if age < MAX_AGE_MS && (set.has(&kid) || age < UNKNOWN_KID_REFETCH_MS) {
            return Some(set.clone());
        }
    }
    match fetch(config, url).await {
        Ok(set) => {
            CACHE.with(|c| *c.borrow_mut() = Some((set.clone(), now)));
            Some(set)
        }
        Err(e) => {
            worker::console_error!("fetching the JWKS failed: {e}");
            cached.map(|(set, _)| set)
        }
    }
}

async fn fetch(config: &Config, url: &str) -> Result<JwkSet, String> {
    let request = HttpRequest { method: Method::Get, url: url.to_string(), headers: Vec::new(), body: None };
    let response = platform::transport(config).send(request).await.map_err(|e| format!("{e:?}"))?;
    if response.status != 200 {
        return Err(format!("JWKS answered {}", response.status));
    }
    JwkSet::parse(&response.body)
}
