//! The one error type. Every failure, whatever its source, answers
//! `{"error": {"code", "message", "details"?, "retryable"?, "requestId"?}}`
//! with its status. Internal causes are logged by the caller, never put in
//! a response.

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
    /// The id the request's log line and `x-request-id` carry.
    pub request_id: Option<String>,
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
            request_id: None,
        }
    }

    pub fn with_request_id(mut self, request_id: &str) -> Self {
        self.request_id = Some(request_id.to_string());
        self
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
        if let Some(id) = &self.request_id {
            error.insert("requestId".into(), id.clone().into());
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

/// What one error answer's log line says of its request.
pub struct ErrorLog<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    /// The endpoint's id, once routed.
    pub route: Option<&'a str>,
    /// The principal's id (`worker:executor:browser`), once authenticated:
    /// who, never the credential.
    pub caller: Option<&'a str>,
}

/// The longest message a log line carries: messages can quote input.
const LOGGED_MESSAGE_CHARS: usize = 300;

impl ErrorLog<'_> {
    /// One JSON line: what failed, for whom, and the id the caller was given.
    pub fn line(&self, e: &ApiError) -> String {
        let message: String = e.message.chars().take(LOGGED_MESSAGE_CHARS).collect();
        json!({
            "level": if e.status >= 500 { "error" } else { "warn" },
            "requestId": self.request_id,
            "method": self.method,
            "path": self.path,
            "route": self.route,
            "caller": self.caller,
            "status": e.status,
            "code": e.code,
            "message": message,
        })
        .to_string()
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
    fn the_request_id_is_in_the_body_and_the_log_line_names_no_credential() {
        let e = ApiError::new(409, "lease_lost", "the lease is no longer yours").with_request_id("rid-1");
        assert_eq!(e.body()["error"]["requestId"], "rid-1");
        let log = ErrorLog {
            request_id: "rid-1",
            method: "POST",
            path: "/api/collab/task.result",
            route: Some("task.result"),
            caller: Some("worker:executor:browser"),
        };
        let line: Value = serde_json::from_str(&log.line(&e)).unwrap();
        assert_eq!(
            line,
            json!({"level": "warn", "requestId": "rid-1", "method": "POST", "path": "/api/collab/task.result",
                   "route": "task.result", "caller": "worker:executor:browser", "status": 409,
                   "code": "lease_lost", "message": "the lease is no longer yours"})
        );
        let long = ApiError::new(500, "internal", "x".repeat(5000));
        let line: Value = serde_json::from_str(&ErrorLog { route: None, caller: None, ..log }.line(&long)).unwrap();
        assert_eq!((line["level"].as_str(), line["message"].as_str().unwrap().len()), (Some("error"), 300));
        assert_eq!((line["route"].clone(), line["caller"].clone()), (Value::Null, Value::Null));
    }

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
