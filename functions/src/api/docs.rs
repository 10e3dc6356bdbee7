//! `GET /docs.json` and `GET /docs`.

use cogo_shared::http::openapi;
use cogo_shared::http::ApiResponse;

pub fn open_api() -> ApiResponse {
    ApiResponse::json(200, &openapi::document())
}

pub fn docs() -> ApiResponse {
    ApiResponse {
        status: 200,
        headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())],
        body: openapi::page().into_bytes(),
    }
}
