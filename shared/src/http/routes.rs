//! The one route table. Paths are written after normalisation (see
//! [`crate::http::router::normalize`]), so each line serves `/functions/v1/<fn>`,
//! `/<fn>` and, for the Collab API, `/api/collab/...` and `/collab/...`.
//! The worker dispatches on [`Endpoint`]; the OpenAPI document is built from
//! this table, so neither can drift from it.

use crate::auth::Role::{self, *};
use crate::http::router::Route;
use crate::http::Method::*;

/// Declares the endpoints with their stable names in one list. The name is
/// written out, not derived from the variant, so renaming a variant changes
/// no operation id and no stored key.
macro_rules! endpoints {
    ($($variant:ident => $id:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Endpoint {
            $($variant,)*
        }

        impl Endpoint {
            /// The endpoint's stable name: its OpenAPI operation id, and the
            /// scope of its idempotency keys and rate limits.
            pub fn id(self) -> &'static str {
                match self {
                    $(Endpoint::$variant => $id,)*
                }
            }
        }
    };
}

endpoints! {
    Health => "Health",
    TaskAssign => "TaskAssign",
    TaskClaim => "TaskClaim",
    TaskResult => "TaskResult",
    TaskProgress => "TaskProgress",
    TaskHeartbeat => "TaskHeartbeat",
    TaskCancel => "TaskCancel",
    WorkerHeartbeat => "WorkerHeartbeat",
    LeasesRelease => "LeasesRelease",
    JobGet => "JobGet",
    JobSummary => "JobSummary",
    JobEvents => "JobEvents",
    JobArtifacts => "JobArtifacts",
    ArtifactsList => "ArtifactsList",
    JobStatus => "JobStatus",
    JobsRecent => "JobsRecent",
    MetricsOverview => "MetricsOverview",
    MetricsHistory => "MetricsHistory",
    Metrics => "Metrics",
    WorkersActive => "WorkersActive",
    DlqList => "DlqList",
    DlqRetry => "DlqRetry",
    OpenApi => "OpenApi",
    Docs => "Docs",
    ArtifactUploadUrl => "ArtifactUploadUrl",
    ArtifactPut => "ArtifactPut",
    ArtifactGet => "ArtifactGet",
    SignArtifact => "SignArtifact",
    JobEventStream => "JobEventStream",
    StreamTicket => "StreamTicket",
    Chat => "Chat",
    TraceStatus => "TraceStatus",
    Broadcast => "Broadcast",
    ChannelStream => "ChannelStream",
    WorkersStream => "WorkersStream",
    FigmaHealth => "FigmaHealth",
    FigmaGenerate => "FigmaGenerate",
    FigmaFromUui => "FigmaFromUui",
    FigmaPresign => "FigmaPresign",
    FigmaIngest => "FigmaIngest",
    FigmaIngestResult => "FigmaIngestResult",
    FigmaAgentService => "FigmaAgentService",
}

impl Endpoint {
    /// figma-compat answers errors in the plugin's shape and takes whole
    /// Figma documents as bodies.
    pub fn is_figma(self) -> bool {
        matches!(
            self,
            Endpoint::FigmaHealth
                | Endpoint::FigmaGenerate
                | Endpoint::FigmaFromUui
                | Endpoint::FigmaPresign
                | Endpoint::FigmaIngest
                | Endpoint::FigmaIngestResult
                | Endpoint::FigmaAgentService
        )
    }

    /// The largest body this endpoint takes.
    pub fn body_limit(self, config: &crate::config::Config) -> usize {
        if self.is_figma() {
            config.figma_max_body_bytes
        } else {
            config.max_body_bytes
        }
    }
}

/// Who may call what (README, "Who may call what"). A user's reads run under their
/// own JWT, so they see only their own jobs.
pub const ANYONE: &[Role] = &[Anon, Authenticated, Worker, Service];
pub const USERS: &[Role] = &[Authenticated, Service];
pub const WORKERS: &[Role] = &[Worker, Service];
pub const PLATFORM: &[Role] = &[Service];
/// Any caller with a credential.
pub const MEMBERS: &[Role] = &[Authenticated, Worker, Service];

#[rustfmt::skip]
/// The roles `endpoint`'s route admits.
pub fn allowed_roles(endpoint: Endpoint) -> &'static [Role] {
    ROUTES.iter().find(|r| r.endpoint == endpoint).map_or(&[], |r| r.allow)
}

pub const ROUTES: &[Route<Endpoint>] = &[
    Route { methods: &[Get], allow: ANYONE, paths: &["/api/collab/health", "/health"], endpoint: Endpoint::Health },
    Route { methods: &[Post], allow: USERS, paths: &["/api/collab/task.assign"], endpoint: Endpoint::TaskAssign },
    Route { methods: &[Post], allow: WORKERS, paths: &["/api/collab/task.claim"], endpoint: Endpoint::TaskClaim },
    Route { methods: &[Post], allow: WORKERS, paths: &["/api/collab/task.result"], endpoint: Endpoint::TaskResult },
    Route { methods: &[Post], allow: WORKERS, paths: &["/api/collab/task.progress"], endpoint: Endpoint::TaskProgress },
    Route {
        methods: &[Post],
        allow: WORKERS,
        paths: &["/api/collab/task.heartbeat"],
        endpoint: Endpoint::TaskHeartbeat,
    },
    Route { methods: &[Post], allow: USERS, paths: &["/api/collab/task.cancel"], endpoint: Endpoint::TaskCancel },
    Route {
        methods: &[Post],
        allow: WORKERS,
        paths: &["/api/collab/workers/heartbeat"],
        endpoint: Endpoint::WorkerHeartbeat,
    },
    Route { methods: &[Get, Post], allow: PLATFORM, paths: &["/leases-release"], endpoint: Endpoint::LeasesRelease },
    Route { methods: &[Get], allow: USERS, paths: &["/api/collab/job/:id"], endpoint: Endpoint::JobGet },
    Route { methods: &[Get], allow: USERS, paths: &["/api/collab/job/:id/summary"], endpoint: Endpoint::JobSummary },
    Route { methods: &[Get], allow: USERS, paths: &["/api/collab/events/by-job/:id"], endpoint: Endpoint::JobEvents },
    Route {
        methods: &[Get],
        allow: USERS,
        paths: &["/api/collab/artifacts/by-job/:id"],
        endpoint: Endpoint::JobArtifacts,
    },
    Route { methods: &[Get], allow: USERS, paths: &["/artifacts-list"], endpoint: Endpoint::ArtifactsList },
    Route { methods: &[Get], allow: USERS, paths: &["/job-status"], endpoint: Endpoint::JobStatus },
    Route {
        methods: &[Get],
        allow: USERS,
        paths: &["/api/collab/jobs/recent", "/jobs-recent"],
        endpoint: Endpoint::JobsRecent,
    },
    Route {
        methods: &[Get],
        allow: PLATFORM,
        paths: &["/api/collab/metrics/overview", "/metrics-overview"],
        endpoint: Endpoint::MetricsOverview,
    },
    Route { methods: &[Get], allow: PLATFORM, paths: &["/metrics-history"], endpoint: Endpoint::MetricsHistory },
    Route { methods: &[Get], allow: PLATFORM, paths: &["/metrics"], endpoint: Endpoint::Metrics },
    Route {
        methods: &[Get],
        allow: PLATFORM,
        paths: &["/api/collab/workers/active", "/workers-active"],
        endpoint: Endpoint::WorkersActive,
    },
    Route { methods: &[Get], allow: PLATFORM, paths: &["/dlq-list"], endpoint: Endpoint::DlqList },
    Route { methods: &[Post], allow: PLATFORM, paths: &["/dlq-retry"], endpoint: Endpoint::DlqRetry },
    Route { methods: &[Post], allow: WORKERS, paths: &["/artifact-upload-url"], endpoint: Endpoint::ArtifactUploadUrl },
    // Signed links: the signature in the query is the credential.
    Route { methods: &[Put], allow: ANYONE, paths: &["/artifact/:bucket/*path"], endpoint: Endpoint::ArtifactPut },
    Route { methods: &[Get], allow: ANYONE, paths: &["/artifact/:bucket/*path"], endpoint: Endpoint::ArtifactGet },
    Route { methods: &[Get], allow: USERS, paths: &["/sign-artifact"], endpoint: Endpoint::SignArtifact },
    Route { methods: &[Get], allow: USERS, paths: &["/job-events"], endpoint: Endpoint::JobEventStream },
    Route { methods: &[Post], allow: MEMBERS, paths: &["/stream-ticket"], endpoint: Endpoint::StreamTicket },
    Route { methods: &[Post], allow: USERS, paths: &["/chat"], endpoint: Endpoint::Chat },
    Route { methods: &[Get], allow: USERS, paths: &["/trace-status"], endpoint: Endpoint::TraceStatus },
    Route { methods: &[Post], allow: WORKERS, paths: &["/broadcast"], endpoint: Endpoint::Broadcast },
    Route { methods: &[Get], allow: MEMBERS, paths: &["/channel"], endpoint: Endpoint::ChannelStream },
    Route { methods: &[Get], allow: PLATFORM, paths: &["/workers-stream"], endpoint: Endpoint::WorkersStream },
    Route { methods: &[Get], allow: ANYONE, paths: &["/figma-compat/healthz"], endpoint: Endpoint::FigmaHealth },
    Route {
        methods: &[Post],
        allow: MEMBERS,
        paths: &["/figma-compat/uui/generate"],
        endpoint: Endpoint::FigmaGenerate,
    },
    Route {
        methods: &[Post],
        allow: MEMBERS,
        paths: &["/figma-compat/figma/from-uui"],
        endpoint: Endpoint::FigmaFromUui,
    },
    Route { methods: &[Post], allow: MEMBERS, paths: &["/figma-compat/uui/presign"], endpoint: Endpoint::FigmaPresign },
    Route { methods: &[Post], allow: MEMBERS, paths: &["/figma-compat/uui/ingest"], endpoint: Endpoint::FigmaIngest },
    Route {
        methods: &[Get],
        allow: MEMBERS,
        paths: &["/figma-compat/uui/ingest/result"],
        endpoint: Endpoint::FigmaIngestResult,
    },
    // After the named ones: symbols/map, variables/derive, bdd/*, actionflow/*.
    Route {
        methods: &[Post],
        allow: MEMBERS,
        paths: &["/figma-compat/uui/*service"],
        endpoint: Endpoint::FigmaAgentService,
    },
    Route { methods: &[Get], allow: ANYONE, paths: &["/docs.json"], endpoint: Endpoint::OpenApi },
    Route { methods: &[Get], allow: ANYONE, paths: &["/docs"], endpoint: Endpoint::Docs },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_ids_are_unique() {
        let mut ids: Vec<&str> = ROUTES.iter().map(|r| r.endpoint.id()).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), before, "every route entry names a distinct endpoint");
    }
}
