//! figma-compat as the Figma plugin and the CLI call it: the health check,
//! `uui/generate` (Figma JSON to COGO UI JSON) and `figma/from-uui` (back).
//! Errors come in the plugin's shape (see `lib.rs`).

use cogo_shared::figma;
use cogo_shared::figma_reverse::to_figma_like;
use cogo_shared::http::ApiResponse;
use cogo_shared::time::iso8601;
use cogo_shared::ApiError;
use serde_json::json;

use crate::RequestContext;

pub fn health(ctx: RequestContext) -> ApiResponse {
    ApiResponse::json(200, &json!({ "ok": true, "service": "figma-compat", "ts": iso8601(ctx.now_ms()) }))
}

/// A random id for the answer's `trace_id`.
fn trace_id() -> String {
    let crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into()).ok();
    let uuid = crypto.and_then(|c| {
        let f = js_sys::Reflect::get(&c, &"randomUUID".into()).ok()?;
        js_sys::Function::from(f).call0(&c).ok()?.as_string()
    });
    uuid.unwrap_or_default()
}

/// `POST uui/generate {projectId?, figma_json | figma_like | cogo_ui_json}`
/// -> `{ok, trace_id, result: {uui_json, cogo_ui_json}}`.
pub fn generate(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let body = ctx.body()?;
    let project_id = body.opt_uuid(&["projectId", "project_id"])?;
    let result = figma::generate(&body, project_id.as_deref())?;
    Ok(ApiResponse::json(200, &json!({ "ok": true, "trace_id": trace_id(), "result": result })))
}

/// `POST figma/from-uui {cogo_ui_json}` -> `{ok, figma_like: [...]}`.
pub fn from_uui(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let body = ctx.body()?;
    let cogo = body.opt_value(&["cogo_ui_json", "cogoUiJson"]).ok_or_else(|| {
        ApiError::bad_request("missing_field", "cogo_ui_json is required")
            .with_details(json!({ "path": "$.cogo_ui_json" }))
    })?;
    let mut answer = to_figma_like(&cogo)?;
    answer["ok"] = true.into();
    Ok(ApiResponse::json(200, &answer))
}
