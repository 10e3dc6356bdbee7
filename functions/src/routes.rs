//! The one route table. Paths are written after normalisation (see
//! `cogo_shared::router::normalize`), so each line serves
//! `/functions/v1/<fn>`, `/<fn>` and, for the Collab API, `/api/collab/...`
//! and `/collab/...`.

use cogo_shared::http::{ApiResponse, Method::*};
use cogo_shared::router::Route;
use cogo_shared::ApiError;

use crate::{health, RequestContext};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Health,
}

pub const ROUTES: &[Route<Endpoint>] =
    &[Route { methods: &[Get], paths: &["/api/collab/health", "/health"], endpoint: Endpoint::Health }];

pub async fn dispatch(endpoint: Endpoint, ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    match endpoint {
        Endpoint::Health => health::get(ctx).await,
    }
}
