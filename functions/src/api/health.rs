use cogo_shared::http::ApiResponse;
use cogo_shared::ApiError;

use crate::pipeline::RequestContext;
use crate::runtime::platform;

/// `GET /api/collab/health`: up, and the database reachable through PostgREST.
pub async fn health(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let (postgrest, transport) = (platform::postgrest(&ctx.config), platform::transport(&ctx.config));
    Ok(cogo_shared::http::health::check(&transport, &postgrest, env!("CARGO_PKG_VERSION"), ctx.now_ms()).await)
}
