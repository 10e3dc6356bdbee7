use cogo_shared::http::ApiResponse;
use cogo_shared::ApiError;

use crate::RequestContext;

/// `GET /api/collab/health`: up, and the database reachable through PostgREST.
pub async fn get(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let postgrest = ctx.service_postgrest();
    Ok(cogo_shared::health::check(&ctx.transport(), &postgrest, env!("CARGO_PKG_VERSION"), ctx.now_ms()).await)
}
