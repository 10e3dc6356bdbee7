//! PostgREST as the platform (the service role), for handlers and for work
//! outside a request (the cron reaper).

use std::time::Duration;

use cogo_shared::config::Config;
use cogo_shared::postgrest::{Postgrest, UpstreamError};
use serde_json::Value;

use crate::runtime::transport::FetchTransport;

pub fn postgrest(config: &Config) -> Postgrest {
    Postgrest::new(&config.postgrest_url, &config.service_role_key)
}

pub fn transport(config: &Config) -> FetchTransport {
    FetchTransport { timeout: Duration::from_millis(config.postgrest_timeout_ms.into()) }
}

/// Calls a `cogo` schema function as the platform.
pub async fn rpc(config: &Config, function: &str, args: &Value) -> Result<Value, UpstreamError> {
    rpc_as(config, None, function, args).await
}

/// Calls a `cogo` schema function as the platform, or under a user's JWT
/// (the gateway's `apikey` is then the publishable key when one is
/// configured).
pub async fn rpc_as(
    config: &Config,
    user_jwt: Option<&str>,
    function: &str,
    args: &Value,
) -> Result<Value, UpstreamError> {
    let postgrest = match user_jwt {
        None => postgrest(config),
        Some(jwt) => {
            let api_key = config.auth.publishable_keys.first().unwrap_or(&config.service_role_key);
            Postgrest::as_user(&config.postgrest_url, api_key, jwt)
        }
    };
    postgrest.send(&transport(config), postgrest.rpc("cogo", function, args)).await
}
