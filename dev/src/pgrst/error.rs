//! PostgREST's error body `{code, details, hint, message}` and its
//! SQLSTATE-to-status mapping.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct PgrstError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub details: Value,
    pub hint: Value,
    pub www_authenticate: Option<String>,
    /// Render only `message` and `hint` (Supabase's gateway errors).
    pub bare: bool,
    /// Headers a `RAISE SQLSTATE 'PGRST'` asked for.
    pub headers: Vec<(String, String)>,
}

impl PgrstError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        PgrstError {
            status,
            code: code.into(),
            message: message.into(),
            details: Value::Null,
            hint: Value::Null,
            www_authenticate: None,
            bare: false,
            headers: Vec::new(),
        }
    }

    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Value::String(details.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Value::String(hint.into());
        self
    }

    /// 401 for a bad JWT, with the header PostgREST sends.
    pub fn jwt(code: &str, message: &str) -> Self {
        let mut e = PgrstError::new(401, code, message);
        e.www_authenticate = Some(format!("Bearer error=\"invalid_token\", error_description=\"{message}\""));
        e
    }

    /// A database error, mapped as PostgREST maps SQLSTATEs; `anon` says
    /// whether the request ran as the anonymous role (42501 -> 401).
    pub fn from_db(e: &tokio_postgres::Error, anon: bool) -> Self {
        let Some(db) = e.as_db_error() else {
            return PgrstError::new(503, "PGRST001", "Database client error. Retrying the connection.")
                .with_details(e.to_string());
        };
        let code = db.code().code();
        if code == "PGRST" {
            return raised(db.message(), db.detail());
        }
        let status = status_for_sqlstate(code, db.message(), anon);
        PgrstError {
            status,
            code: code.to_string(),
            message: db.message().to_string(),
            details: db.detail().map(|d| Value::String(d.into())).unwrap_or(Value::Null),
            hint: db.hint().map(|h| Value::String(h.into())).unwrap_or(Value::Null),
            www_authenticate: (status == 401).then(|| "Bearer".to_string()),
            bare: false,
            headers: Vec::new(),
        }
    }

    pub fn body(&self) -> Value {
        if self.bare {
            return json!({"message": self.message, "hint": self.hint});
        }
        json!({"code": self.code, "details": self.details, "hint": self.hint, "message": self.message})
    }
}

/// `RAISE SQLSTATE 'PGRST' USING MESSAGE = '{code, message, details?,
/// hint?}', DETAIL = '{status, status_text?, headers}'`: the whole response
/// from SQL; a malformed one is PGRST121.
fn raised(message: &str, detail: Option<&str>) -> PgrstError {
    let parse_error = |details: String, hint: &str| {
        PgrstError::new(500, "PGRST121", "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error")
            .with_details(details)
            .with_hint(hint)
    };
    let msg_hint =
        "MESSAGE must be a JSON object with obligatory keys: 'code', 'message' and optional keys: 'details', 'hint'.";
    let det_hint =
        "DETAIL must be a JSON object with obligatory keys: 'status', 'headers' and optional key: 'status_text'.";
    let m: Value = match serde_json::from_str::<Value>(message) {
        Ok(v) if v["code"].is_string() && v["message"].is_string() => v,
        _ => return parse_error(format!("Invalid JSON value for MESSAGE: '{message}'"), msg_hint),
    };
    let Some(detail) = detail else { return parse_error("DETAIL is missing in the RAISE statement".into(), det_hint) };
    let d: Value = match serde_json::from_str::<Value>(detail) {
        Ok(v) if v["status"].is_u64() && v["headers"].is_object() => v,
        _ => return parse_error(format!("Invalid JSON value for DETAIL: '{detail}'"), det_hint),
    };
    let text = |v: &Value| v.as_str().map(|s| Value::String(s.into())).unwrap_or(Value::Null);
    let mut e = PgrstError::new(
        d["status"].as_u64().unwrap_or(500) as u16,
        m["code"].as_str().unwrap_or(""),
        m["message"].as_str().unwrap_or(""),
    );
    e.details = text(&m["details"]);
    e.hint = text(&m["hint"]);
    e.headers = d["headers"]
        .as_object()
        .map(|h| h.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default();
    e
}

/// v13's `pgErrorStatus`.
pub fn status_for_sqlstate(code: &str, message: &str, anon: bool) -> u16 {
    if let Some(custom) = code.strip_prefix("PT") {
        return custom.parse::<u16>().ok().filter(|s| (100..=599).contains(s)).unwrap_or(500);
    }
    let class = &code[..code.len().min(2)];
    match code {
        "23503" | "23505" => 409,
        "25006" => 405,
        // pg-safeupdate's refusal is the client's; other cardinality errors the server's.
        "21000" if message.ends_with("requires a WHERE clause") => 400,
        "21000" => 500,
        // A JWT role that does not exist.
        "22023" if message.starts_with("role") && message.ends_with("does not exist") => 401,
        "42883" if message.starts_with("function xmlagg(") => 406,
        "42883" | "42P01" => 404,
        "42P17" => 500,
        "42501" if anon => 401,
        "42501" => 403,
        "53400" => 500,
        "57P01" => 503,
        "P0001" => 400,
        _ => match class {
            "08" | "53" => 503,
            "0L" | "0P" | "28" => 403,
            "09" | "25" | "2D" | "38" | "39" | "3B" | "40" | "54" | "55" | "57" | "58" | "F0" | "HV" | "P0" | "XX" => {
                500
            }
            _ => 400,
        },
    }
}

impl IntoResponse for PgrstError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, self.body().to_string()).into_response();
        let h = response.headers_mut();
        h.insert("content-type", HeaderValue::from_static("application/json; charset=utf-8"));
        if !self.bare {
            if let Ok(v) = HeaderValue::from_str(&format!("PostgREST; error={}", self.code)) {
                h.insert("proxy-status", v);
            }
        }
        if let Some(value) = self.www_authenticate.and_then(|v| HeaderValue::from_str(&v).ok()) {
            h.insert("www-authenticate", value);
        }
        for (k, v) in &self.headers {
            if let (Ok(name), Ok(value)) = (axum::http::HeaderName::try_from(k.as_str()), HeaderValue::from_str(v)) {
                h.insert(name, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::status_for_sqlstate;
    fn s(code: &str, anon: bool) -> u16 {
        status_for_sqlstate(code, "", anon)
    }

    #[test]
    fn sqlstate_map() {
        assert_eq!(s("23505", false), 409);
        assert_eq!(s("23503", false), 409);
        assert_eq!(s("23502", false), 400);
        assert_eq!(s("22P02", false), 400);
        assert_eq!(s("42703", false), 400);
        assert_eq!(s("42501", true), 401);
        assert_eq!(s("42501", false), 403);
        assert_eq!(s("42883", false), 404);
        assert_eq!(s("42P01", false), 404);
        assert_eq!(s("25006", false), 405);
        assert_eq!(s("P0001", false), 400);
        assert_eq!(s("P0002", false), 500);
        assert_eq!(s("PT402", false), 402);
        assert_eq!(s("08006", false), 503);
        assert_eq!(s("53300", false), 503);
        assert_eq!(s("57P01", false), 503);
        assert_eq!(s("28P01", false), 403);
        assert_eq!(s("42P17", false), 500);
        assert_eq!(s("21000", false), 500);
        assert_eq!(status_for_sqlstate("21000", "DELETE requires a WHERE clause", false), 400);
        assert_eq!(status_for_sqlstate("22023", "role \"x\" does not exist", false), 401);
        assert_eq!(s("PT999", false), 500);
    }
}
