//! The one error type. Every failure, whatever its source, answers
//! `{"error": {"code", "message", "details"?, "retryable"?}}` with its status.
//! Internal causes are logged by the caller, never put in a response.

use serde_json::{json, Map, Value};

use crate::http::ApiResponse;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    /// Stable, machine-readable, snake_case.
    pub code: &'static str,
    /// For a person; names the offending field where there is one.
    pub message: String,
    pub details: Option<Value>,
    /// Set on upstream failures: whether the same request may succeed later.
    pub retryable: Option<bool>,
    /// Extra top-level fields for clients that read them outside `error`.
    pub extra: Map<String, Value>,
    /// Extra response headers (e.g. `Allow` on 405).
    pub headers: Vec<(String, String)>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            retryable: None,
            extra: Map::new(),
            headers: Vec::new(),
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = Some(retryable);
        self
    }

    pub fn with_extra(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_string(), value);
        self
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found", message)
    }

    pub fn method_not_allowed(method: &str, path: &str, allowed: &[&str]) -> Self {
        Self::new(405, "method_not_allowed", format!("{method} is not allowed on {path}"))
            .with_details(json!({ "allowed": allowed }))
            .with_header("Allow", allowed.join(", "))
    }

    pub fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), self.code.into());
        error.insert("message".into(), self.message.clone().into());
        if let Some(d) = &self.details {
            error.insert("details".into(), d.clone());
        }
        if let Some(r) = self.retryable {
            error.insert("retryable".into(), r.into());
        }
        let mut body = self.extra.clone();
        body.insert("error".into(), Value::Object(error));
        Value::Object(body)
    }

    pub fn into_response(self) -> ApiResponse {
        let mut response = ApiResponse::json(self.status, &self.body());
        response.headers.extend(self.headers);
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_one_shape() {
        let e = ApiError::bad_request("invalid_field", "executorId must be a string")
            .with_details(json!({"field": "executorId"}));
        assert_eq!(
            e.body(),
            json!({"error": {"code": "invalid_field", "message": "executorId must be a string",
                             "details": {"field": "executorId"}}})
        );
    }

    #[test]
    fn method_not_allowed_lists_allowed_methods() {
        let r = ApiError::method_not_allowed("DELETE", "/api/collab/health", &["GET", "HEAD"]).into_response();
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["error"]["details"]["allowed"], json!(["GET", "HEAD"]));
    }

    #[test]
    fn extra_fields_sit_beside_error() {
        let e = ApiError::new(503, "db_unreachable", "x").with_extra("ok", false.into()).with_retryable(true);
        assert_eq!(
            e.body(),
            json!({"ok": false, "error": {"code": "db_unreachable", "message": "x", "retryable": true}})
        );
    }
}
