//! `GET /docs.json` and `GET /docs`.

use cogo_shared::http::ApiResponse;
use cogo_shared::openapi;

pub fn document() -> ApiResponse {
    ApiResponse::json(200, &openapi::document())
}

pub fn page() -> ApiResponse {
    ApiResponse {
        status: 200,
        headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())],
        body: openapi::page().into_bytes(),
    }
}
