//! The one route table. Paths are written after normalisation (see
//! `cogo_shared::router::normalize`), so each line serves
//! `/functions/v1/<fn>`, `/<fn>` and, for the Collab API, `/api/collab/...`
//! and `/collab/...`.

use cogo_shared::auth::Role::{self, *};
use cogo_shared::http::{ApiResponse, Method::*};
use cogo_shared::router::Route;
use cogo_shared::ApiError;

use crate::{health, jobs, RequestContext};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Health,
    TaskAssign,
    TaskClaim,
    TaskResult,
    TaskProgress,
    TaskHeartbeat,
    TaskCancel,
    WorkerHeartbeat,
    LeasesRelease,
}

/// Who may call what (DESIGN.md section 3).
const ANYONE: &[Role] = &[Anon, Authenticated, Worker, Service];
const USERS: &[Role] = &[Authenticated, Service];
const WORKERS: &[Role] = &[Worker, Service];
const PLATFORM: &[Role] = &[Service];

#[rustfmt::skip]
pub const ROUTES: &[Route<Endpoint>] = &[
    Route { methods: &[Get], allow: ANYONE, paths: &["/api/collab/health", "/health"], endpoint: Endpoint::Health },
    Route { methods: &[Post], allow: USERS, paths: &["/api/collab/task.assign"], endpoint: Endpoint::TaskAssign },
    Route { methods: &[Post], allow: WORKERS, paths: &["/api/collab/task.claim"], endpoint: Endpoint::TaskClaim },
    Route { methods: &[Post], allow: WORKERS, paths: &["/api/collab/task.result"], endpoint: Endpoint::TaskResult },
    Route { methods: &[Post], allow: WORKERS, paths: &["/api/collab/task.progress"], endpoint: Endpoint::TaskProgress },
    Route { methods: &[Post], allow: WORKERS, paths: &["/api/collab/task.heartbeat"], endpoint: Endpoint::TaskHeartbeat },
    Route { methods: &[Post], allow: USERS, paths: &["/api/collab/task.cancel"], endpoint: Endpoint::TaskCancel },
    Route { methods: &[Post], allow: WORKERS, paths: &["/api/collab/workers/heartbeat"], endpoint: Endpoint::WorkerHeartbeat },
    Route { methods: &[Get, Post], allow: PLATFORM, paths: &["/leases-release"], endpoint: Endpoint::LeasesRelease },
];

pub async fn dispatch(endpoint: Endpoint, ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    match endpoint {
        Endpoint::Health => health::get(ctx).await,
        Endpoint::TaskAssign => jobs::assign(ctx).await,
        Endpoint::TaskClaim => jobs::claim(ctx).await,
        Endpoint::TaskResult => jobs::result(ctx).await,
        Endpoint::TaskProgress => jobs::progress(ctx).await,
        Endpoint::TaskHeartbeat => jobs::heartbeat(ctx).await,
        Endpoint::TaskCancel => jobs::cancel(ctx).await,
        Endpoint::WorkerHeartbeat => jobs::worker_heartbeat(ctx).await,
        Endpoint::LeasesRelease => jobs::leases_release(ctx).await,
    }
}
