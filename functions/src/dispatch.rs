//! Runs the endpoint a request was routed to (the table itself is
//! `cogo_shared::routes`).

use cogo_shared::http::ApiResponse;
use cogo_shared::routes::Endpoint;
use cogo_shared::ApiError;

use crate::{artifacts, chat, docs, events, figma, health, jobs, reads, Reply, RequestContext};

pub async fn dispatch(endpoint: Endpoint, ctx: RequestContext) -> Result<Reply, ApiError> {
    let buffered: Result<ApiResponse, ApiError> = match endpoint {
        Endpoint::Health => health::get(ctx).await,
        Endpoint::TaskAssign => jobs::assign(ctx).await,
        Endpoint::TaskClaim => jobs::claim(ctx).await,
        Endpoint::TaskResult => jobs::result(ctx).await,
        Endpoint::TaskProgress => jobs::progress(ctx).await,
        Endpoint::TaskHeartbeat => jobs::heartbeat(ctx).await,
        Endpoint::TaskCancel => jobs::cancel(ctx).await,
        Endpoint::WorkerHeartbeat => jobs::worker_heartbeat(ctx).await,
        Endpoint::LeasesRelease => jobs::leases_release(ctx).await,
        Endpoint::JobGet => reads::job(ctx).await,
        Endpoint::JobSummary => reads::job_summary(ctx).await,
        Endpoint::JobEvents => reads::job_events(ctx).await,
        Endpoint::JobArtifacts | Endpoint::ArtifactsList => reads::job_artifacts(ctx).await,
        Endpoint::JobStatus => reads::job_status(ctx).await,
        Endpoint::JobsRecent => reads::jobs_recent(ctx).await,
        Endpoint::MetricsOverview => reads::metrics_overview(ctx).await,
        Endpoint::Metrics => reads::metrics(ctx).await,
        Endpoint::WorkersActive => reads::workers_active(ctx).await,
        Endpoint::DlqList => reads::dlq_list(ctx).await,
        Endpoint::DlqRetry => reads::dlq_retry(ctx).await,
        Endpoint::OpenApi => Ok(docs::document()),
        Endpoint::Docs => Ok(docs::page()),
        Endpoint::ArtifactUploadUrl => artifacts::upload_url(ctx).await,
        Endpoint::ArtifactPut => artifacts::upload(ctx).await,
        Endpoint::SignArtifact => artifacts::sign(ctx).await,
        Endpoint::ArtifactGet => return artifacts::download(ctx).await,
        Endpoint::JobEventStream => return events::job_events(ctx).await,
        Endpoint::Chat => return chat::chat(ctx).await,
        Endpoint::TraceStatus => chat::trace_status(ctx).await,
        Endpoint::Broadcast => events::broadcast(ctx).await,
        Endpoint::ChannelStream => return events::channel(ctx).await,
        Endpoint::WorkersStream => return events::workers(ctx).await,
        Endpoint::FigmaHealth => Ok(figma::health(ctx)),
        Endpoint::FigmaGenerate => figma::generate(ctx).await,
        Endpoint::FigmaFromUui => figma::from_uui(ctx),
        Endpoint::FigmaPresign => figma::presign(ctx).await,
        Endpoint::FigmaIngest => figma::ingest(ctx).await,
        Endpoint::FigmaIngestResult => figma::ingest_result(ctx).await,
        Endpoint::FigmaAgentService => figma::agent_service(ctx).await,
    };
    buffered.map(Reply::from)
}
