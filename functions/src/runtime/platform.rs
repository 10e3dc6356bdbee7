//! Calls to the `cogo` schema's SQL functions as the platform (the service
//! role) or under a user's JWT, for handlers and for work outside a request
//! (the cron, the hubs).

use std::time::Duration;

use cogo_shared::config::Config;
use cogo_shared::postgrest::{Postgrest, SqlCall};
use cogo_shared::queue::tasks::queue_error;
use cogo_shared::ApiError;

use crate::runtime::transport::FetchTransport;

pub fn postgrest(config: &Config) -> Postgrest {
    Postgrest::new(&config.postgrest_url, &config.service_role_key)
}

pub fn transport(config: &Config) -> FetchTransport {
    FetchTransport { timeout: Duration::from_millis(config.postgrest_timeout_ms.into()) }
}

/// Calls a SQL function as the platform.
pub async fn call<C: SqlCall>(config: &Config, call: C) -> Result<C::Output, ApiError> {
    call_as(config, None, call).await
}

/// Calls a SQL function as the platform, or under a user's JWT (the
/// gateway's `apikey` is then the publishable key when one is configured).
/// A failure the function raised on purpose keeps its status and code.
pub async fn call_as<C: SqlCall>(config: &Config, user_jwt: Option<&str>, call: C) -> Result<C::Output, ApiError> {
    let postgrest = match user_jwt {
        None => postgrest(config),
        Some(jwt) => {
            let api_key = config.auth.publishable_keys.first().unwrap_or(&config.service_role_key);
            Postgrest::as_user(&config.postgrest_url, api_key, jwt)
        }
    };
    postgrest.call(&transport(config), &call).await.map_err(queue_error)
}

/// A random UUID from the runtime's `crypto.randomUUID()`: request ids.
pub fn random_uuid() -> String {
    let crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into()).ok();
    let uuid = crypto.and_then(|c| {
        let f = js_sys::Reflect::get(&c, &"randomUUID".into()).ok()?;
        js_sys::Function::from(f).call0(&c).ok()?.as_string()
    });
    uuid.unwrap_or_default()
}
