//! figma-compat as the Figma plugin and the CLI call it: the health check,
//! `uui/generate` (Figma JSON to COGO UI JSON), `figma/from-uui` (back),
//! and the large-file flow (`uui/presign`, a PUT of the document,
//! `uui/ingest`, `uui/ingest/result`). With a project, a conversion also
//! goes through the `cogo.project_updates` outbox into the project's
//! CreateGo rows. A figma-json-plugin dump's image bytes are stored in the
//! figma bucket by content, and the fills link to them. Errors come in the
//! plugin's shape (see `pipeline.rs`).

use cogo_shared::figma::images::{self, DumpImage, ImageLinks, Placement, IMAGE_LINK_SECONDS};
use cogo_shared::figma::reverse::to_figma_like;
use cogo_shared::figma::{self, ProjectClaim, ProjectUpdatesApply};
use cogo_shared::http::body::too_large;
use cogo_shared::http::ApiResponse;
use cogo_shared::queue::reads::JobGet;
use cogo_shared::storage::artifacts::{self, BUCKET, FIGMA_BUCKET};
use cogo_shared::time::iso8601;
use cogo_shared::ApiError;
use std::time::Duration;

use futures::future::{select, Either};
use futures::StreamExt;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use worker::Delay;

use crate::api::artifacts::{link_secret, object_not_found};
use crate::durable::job_hub;
use crate::pipeline::RequestContext;
use crate::runtime::platform;
use crate::runtime::storage::Storage;

/// How long the plugin's upload link and the result link stay valid.
const LINK_SECONDS: i64 = 900;

pub fn figma_health(ctx: RequestContext) -> ApiResponse {
    ApiResponse::json(200, &json!({ "ok": true, "service": "figma-compat", "ts": iso8601(ctx.now_ms()) }))
}

/// `POST uui/generate {projectId?, figma_json | figma_like | cogo_ui_json,
/// figma_images?}` -> `{ok, trace_id, result: {uui_json, cogo_ui_json,
/// images?}}`, with the conversion's time in `Server-Timing` (the COGO
/// shapes stay as they are; image paints gain `url`).
pub async fn figma_generate(mut ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let started = ctx.now_ms();
    let body = ctx.take_body()?;
    let project_id = body.opt_uuid(&["projectId", "project_id"])?;
    let (dump, links) = figma::generate_images(&body)?;
    let mut result = figma::generate(&body, project_id.as_deref())?;
    // The parsed document is the largest thing alive: free it before the answer is built.
    drop(body);
    let timing = server_timing(ctx.now_ms() - started);
    let trace_id = platform::random_uuid();
    // The outbox write is where a project is claimed: someone else's
    // project is refused before any image is stored.
    if let Some(project) = &project_id {
        record_for_project(&ctx, project, &trace_id, &result).await?;
    }
    place_images(&ctx, dump, links, &mut result).await?;
    let mut answer = figma::generate_answer(&trace_id, result);
    answer.headers.push(timing);
    Ok(answer)
}

/// Puts a document's images where the converted tree can link to them: a
/// dump's bytes into the figma bucket at their content address (or, with
/// no bucket, inline as `data:` URLs within the caps), and the REST maps'
/// URLs as they are; then into `result`'s trees, with `result.images`
/// describing each dump image.
async fn place_images(
    ctx: &RequestContext,
    dump: Vec<DumpImage>,
    mut links: ImageLinks,
    result: &mut Value,
) -> Result<(), ApiError> {
    if !dump.is_empty() {
        let storage = Storage::configured(&ctx.env, &ctx.config);
        let placements = images::placements(dump.iter().map(|image| image.size), storage.is_some());
        let mut summary = Map::new();
        for (mut image, placement) in dump.into_iter().zip(placements) {
            let url = match (&storage, placement) {
                (Some(storage), Placement::Bucket) => Some(store_image(ctx, storage, &mut image).await?),
                (_, Placement::Inline) => Some(image.data_url()),
                _ => None,
            };
            summary.insert(image.hash.clone(), image.summary(placement, url.as_deref()));
            if let Some(url) = url {
                links.insert_fill(image.hash, url);
            }
        }
        result["images"] = Value::Object(summary);
    }
    links.attach(result);
    Ok(())
}

/// Stores `image` at its content address unless it is there already (a
/// lookup costs less than an upload, and each distinct image is stored
/// once), freeing its bytes; answers a signed link to it.
async fn store_image(ctx: &RequestContext, storage: &Storage, image: &mut DumpImage) -> Result<String, ApiError> {
    let key = image.key();
    let bytes = std::mem::take(&mut image.bytes);
    if storage.head(&ctx.config, FIGMA_BUCKET, &key).await?.is_none() {
        storage.put_bytes(&ctx.config, FIGMA_BUCKET, &key, image.content_type, bytes).await?;
    }
    let seconds = IMAGE_LINK_SECONDS.min(ctx.config.storage.link_max_seconds);
    if let Some(url) = storage.native_link(&ctx.config, FIGMA_BUCKET, &key, seconds).await? {
        return Ok(url);
    }
    let expires_at = ctx.now_ms() / 1000 + i64::from(seconds);
    Ok(artifacts::link_url(&ctx.origin()?, link_secret(ctx)?, "GET", FIGMA_BUCKET, &key, expires_at))
}

/// `Server-Timing: convert;dur=<ms>`.
fn server_timing(ms: i64) -> (String, String) {
    ("Server-Timing".to_string(), format!("convert;dur={ms}"))
}

/// Writes a project's conversion to the outbox (before answering, so it
/// cannot be lost), then projects it into the application tables once the
/// answer is on its way; the cron retries what fails.
async fn record_for_project(
    ctx: &RequestContext,
    project: &str,
    trace_id: &str,
    result: &Value,
) -> Result<(), ApiError> {
    // The claim of the project is checked in the same transaction as the
    // write: someone else's project is 404 and gets no outbox row.
    let args = figma::outbox_args(project, trace_id, figma::project_owner(&ctx.principal).as_deref(), result);
    ctx.call(args).await?;
    let config = ctx.config.clone();
    ctx.after_response(async move {
        if let Err(e) = platform::call(&config, ProjectUpdatesApply {}).await {
            worker::console_error!("project projection: {e}");
        }
    });
    Ok(())
}

/// `POST figma/from-uui {cogo_ui_json}` -> `{ok, figma_like: [...]}`.
pub fn figma_from_uui(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let body = ctx.body()?;
    let cogo = body.opt_value(&["cogo_ui_json", "cogoUiJson"]).ok_or_else(|| {
        ApiError::bad_request("missing_field", "cogo_ui_json is required")
            .with_details(json!({ "path": "$.cogo_ui_json" }))
    })?;
    let mut answer = to_figma_like(&cogo)?;
    answer["ok"] = true.into();
    Ok(ApiResponse::json(200, &answer))
}

/// `POST uui/presign {projectId, fileName}` -> `{ok, bucket, key,
/// signedUrl, expiresAt}`: where the plugin PUTs a whole document.
pub async fn figma_presign(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let owner = figma::project_owner(&ctx.principal);
    let (project, key) = figma::presign_request(&ctx.body()?, owner.as_deref())?;
    claim_project(&ctx, &project, owner.as_deref()).await?;
    let expires_at = ctx.now_ms() / 1000 + LINK_SECONDS;
    let url = artifacts::link_url(&ctx.origin()?, link_secret(&ctx)?, "PUT", FIGMA_BUCKET, &key, expires_at);
    Ok(ApiResponse::json(
        200,
        &json!({ "ok": true, "bucket": FIGMA_BUCKET, "key": key, "signedUrl": url, "expiresAt": iso8601(expires_at * 1000) }),
    ))
}

/// `POST uui/ingest {projectId, storage_key, sha256?, figma_images?}` ->
/// `{ok, trace_id, status: "ready"}`: converts the uploaded document (its
/// images placed as `uui/generate` places them) and keeps the result at
/// `artifacts/cogo_ui/<projectId>/<trace_id>.json`.
pub async fn figma_ingest(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let owner = figma::project_owner(&ctx.principal);
    let body = ctx.body()?;
    let (project, key, sha256) = figma::ingest_request(&body, owner.as_deref())?;
    let links = ImageLinks::from_body(&body)?;
    drop(body);
    claim_project(&ctx, &project, owner.as_deref()).await?;
    let storage = Storage::open(&ctx.env, &ctx.config)?;
    // The size from storage's metadata first: an upload over the cap is
    // never read into memory.
    let size =
        storage.head(&ctx.config, FIGMA_BUCKET, &key).await?.ok_or_else(|| object_not_found(FIGMA_BUCKET, &key))?.size;
    let limit = ctx.config.figma_max_body_bytes;
    if size > limit as u64 {
        return Err(too_large(limit));
    }
    let started = ctx.now_ms();
    let bytes = storage
        .get_bytes(&ctx.config, FIGMA_BUCKET, &key)
        .await?
        .ok_or_else(|| object_not_found(FIGMA_BUCKET, &key))?;
    if let Some(expected) = sha256 {
        let actual = cogo_shared::hex(&Sha256::digest(&bytes));
        if actual != expected {
            return Err(ApiError::new(422, "checksum_mismatch", "the upload's sha256 is not the one sent")
                .with_details(json!({ "path": "$.sha256", "actual": actual })));
        }
    }
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request("invalid_figma_json", format!("the upload is not JSON: {e}"))
            .with_details(json!({ "path": "$" }))
    })?;
    let dump = images::dump_images(&doc)?;
    let mut result = figma::convert(&doc, Some(&project))?;
    drop((doc, bytes));
    let timing = server_timing(ctx.now_ms() - started);
    let trace_id = platform::random_uuid();
    record_for_project(&ctx, &project, &trace_id, &result).await?;
    place_images(&ctx, dump, links, &mut result).await?;
    let (result_path, pointer) = figma::ingest_result_paths(&project, owner.as_deref(), &trace_id);
    storage.put_bytes(&ctx.config, BUCKET, &result_path, "application/json", result.to_string().into_bytes()).await?;
    storage.put_bytes(&ctx.config, BUCKET, &pointer, "text/plain", result_path.into_bytes()).await?;
    let mut answer = ApiResponse::json(200, &json!({ "ok": true, "trace_id": trace_id, "status": "ready" }));
    answer.headers.push(timing);
    Ok(answer)
}

/// Takes `project` for `owner` (the first to use it owns it), or 404 when
/// someone else does.
async fn claim_project(ctx: &RequestContext, project: &str, owner: Option<&str>) -> Result<(), ApiError> {
    ctx.call(ProjectClaim { project: project.to_string(), owner: owner.map(str::to_string) }).await?;
    Ok(())
}

/// `GET uui/ingest/result?traceId=` -> `{ok, status: "ready", bucket, key,
/// signedUrl}`, or `{ok, status: "pending"}` while there is none.
pub async fn figma_ingest_result(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let trace_id = ctx.query().req_uuid(&["traceId", "trace_id"])?;
    let storage = Storage::open(&ctx.env, &ctx.config)?;
    let pointer = figma::ingest_pointer(&trace_id);
    let Some(key) = storage.get_bytes(&ctx.config, BUCKET, &pointer).await? else {
        return Ok(ApiResponse::json(200, &json!({ "ok": true, "status": "pending", "trace_id": trace_id })));
    };
    let key = String::from_utf8(key).map_err(|_| object_not_found(BUCKET, &pointer))?;
    // Someone else's trace is as good as none: no link, nothing read.
    if !figma::owns_result(&key, figma::project_owner(&ctx.principal).as_deref()) {
        return Err(ApiError::new(404, "trace_not_found", format!("no ingested trace {trace_id} of yours")));
    }
    let expires_at = ctx.now_ms() / 1000 + LINK_SECONDS;
    let url = match storage.native_link(&ctx.config, BUCKET, &key, LINK_SECONDS as u32).await? {
        Some(url) => url,
        None => artifacts::link_url(&ctx.origin()?, link_secret(&ctx)?, "GET", BUCKET, &key, expires_at),
    };
    Ok(ApiResponse::json(
        200,
        &json!({ "ok": true, "status": "ready", "trace_id": trace_id, "bucket": BUCKET, "key": key, "signedUrl": url }),
    ))
}

/// `POST uui/<service>` for the services agents perform (symbols/map,
/// variables/derive, bdd/*, actionflow/*): a job for the agents. The answer
/// waits up to `FIGMA_AGENT_WAIT_MS` for the agent: `{ok, trace_id,
/// status: "completed", result}`, else 202 `{ok, trace_id, status:
/// "handoff"}` (poll trace-status).
pub async fn figma_agent_service(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let service = ctx.param("service").unwrap_or_default().to_string();
    let owner = ctx.principal.job_owner()?;
    let enqueue = figma::agent_job_args(&service, &ctx.body()?, &ctx.config.figma_agent_executor, owner)?;
    let outcome = ctx.call_ringing(enqueue).await?;
    let trace_id = outcome["jobId"].as_str().unwrap_or_default().to_string();
    let wait = Duration::from_millis(ctx.config.figma_agent_wait_ms.into());
    if !wait.is_zero() && ended_within(&ctx, &trace_id, wait).await {
        let job = ctx.call(JobGet { job_id: trace_id.clone() }).await?;
        if job["status"] == "succeeded" {
            let answer = json!({ "ok": true, "trace_id": trace_id, "status": "completed", "result": job["result"] });
            return Ok(ApiResponse::json(200, &answer));
        }
        return Err(ApiError::new(502, "agent_failed", format!("the agent's job ended {}", job["status"]))
            .with_details(json!({ "trace_id": trace_id, "error": job["error"] })));
    }
    Ok(ApiResponse::json(202, &json!({ "ok": true, "trace_id": trace_id, "status": "handoff" })))
}

/// Whether the job ends within `wait`, heard on its event stream (no polling).
async fn ended_within(ctx: &RequestContext, job_id: &str, wait: Duration) -> bool {
    let Ok(mut response) = job_hub::subscribe(&ctx.env, job_id, 0, None).await else { return false };
    let Ok(mut frames) = response.stream() else { return false };
    let done = Box::pin(async move {
        // Frames arrive whole, one per chunk; a short carry covers a split.
        let mut carry = Vec::new();
        while let Some(Ok(chunk)) = frames.next().await {
            carry.extend_from_slice(&chunk);
            if carry.windows(12).any(|w| w == b"event: done\n") {
                return true;
            }
            let keep = carry.len().saturating_sub(11);
            carry.drain(..keep);
        }
        false
    });
    matches!(select(done, Delay::from(wait)).await, Either::Left((true, _)))
}
