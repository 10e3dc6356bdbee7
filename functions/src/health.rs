use std::time::Duration;

use cogo_shared::http::ApiResponse;
use cogo_shared::postgrest::Postgrest;
use cogo_shared::ApiError;

use crate::transport::FetchTransport;
use crate::RequestContext;

/// `GET /api/collab/health`: up, and the database reachable through PostgREST.
pub async fn get(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let transport = FetchTransport { timeout: Duration::from_millis(ctx.config.postgrest_timeout_ms.into()) };
    let postgrest = Postgrest::new(&ctx.config.postgrest_url, &ctx.config.service_role_key);
    Ok(cogo_shared::health::check(&transport, &postgrest, env!("CARGO_PKG_VERSION"), ctx.now_ms()).await)
}
