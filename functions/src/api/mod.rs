//! The handlers, grouped like the route table
//! (`cogo_shared::http::routes`); each is named after its endpoint, and
//! [`dispatch`] is the one place an endpoint meets its handler.

pub mod artifacts;
pub mod chat;
pub mod docs;
pub mod figma;
pub mod health;
pub mod reads;
pub mod streams;
pub mod tasks;

use cogo_shared::http::routes::Endpoint;
use cogo_shared::http::ApiResponse;
use cogo_shared::ApiError;

use crate::pipeline::{Reply, RequestContext};

pub async fn dispatch(endpoint: Endpoint, ctx: RequestContext) -> Result<Reply, ApiError> {
    let buffered: Result<ApiResponse, ApiError> = match endpoint {
        Endpoint::Health => health::health(ctx).await,
        Endpoint::TaskAssign => tasks::task_assign(ctx).await,
        Endpoint::TaskClaim => tasks::task_claim(ctx).await,
        Endpoint::TaskResult => tasks::task_result(ctx).await,
        Endpoint::TaskProgress => tasks::task_progress(ctx).await,
        Endpoint::TaskHeartbeat => tasks::task_heartbeat(ctx).await,
        Endpoint::TaskCancel => tasks::task_cancel(ctx).await,
        Endpoint::WorkerHeartbeat => tasks::worker_heartbeat(ctx).await,
        Endpoint::LeasesRelease => tasks::leases_release(ctx).await,
        Endpoint::JobGet => reads::job_get(ctx).await,
        Endpoint::JobSummary => reads::job_summary(ctx).await,
        Endpoint::JobEvents => reads::job_events(ctx).await,
        Endpoint::JobArtifacts | Endpoint::ArtifactsList => reads::job_artifacts(ctx).await,
        Endpoint::JobStatus => reads::job_status(ctx).await,
        Endpoint::JobsRecent => reads::jobs_recent(ctx).await,
        Endpoint::MetricsOverview => reads::metrics_overview(ctx).await,
        Endpoint::MetricsHistory => reads::metrics_history(ctx).await,
        Endpoint::Metrics => reads::metrics(ctx).await,
        Endpoint::WorkersActive => reads::workers_active(ctx).await,
        Endpoint::DlqList => reads::dlq_list(ctx).await,
        Endpoint::DlqRetry => reads::dlq_retry(ctx).await,
        Endpoint::OpenApi => Ok(docs::open_api()),
        Endpoint::Docs => Ok(docs::docs()),
        Endpoint::ArtifactUploadUrl => artifacts::artifact_upload_url(ctx).await,
        Endpoint::ArtifactPut => artifacts::artifact_put(ctx).await,
        Endpoint::SignArtifact => artifacts::sign_artifact(ctx).await,
        Endpoint::ArtifactGet => return artifacts::artifact_get(ctx).await,
        Endpoint::JobEventStream => return streams::job_event_stream(ctx).await,
        Endpoint::StreamTicket => streams::stream_ticket(ctx).await,
        Endpoint::Chat => return chat::chat(ctx).await,
        Endpoint::TraceStatus => chat::trace_status(ctx).await,
        Endpoint::Broadcast => streams::broadcast(ctx).await,
        Endpoint::ChannelStream => return streams::channel_stream(ctx).await,
        Endpoint::WorkersStream => return streams::workers_stream(ctx).await,
        Endpoint::FigmaHealth => Ok(figma::figma_health(ctx)),
        Endpoint::FigmaGenerate => figma::figma_generate(ctx).await,
        Endpoint::FigmaFromUui => figma::figma_from_uui(ctx),
        Endpoint::FigmaPresign => figma::figma_presign(ctx).await,
        Endpoint::FigmaIngest => figma::figma_ingest(ctx).await,
        Endpoint::FigmaIngestResult => figma::figma_ingest_result(ctx).await,
        Endpoint::FigmaAgentService => figma::figma_agent_service(ctx).await,
    };
    buffered.map(Reply::from)
}
