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
        let status = status_for_sqlstate(code, anon);
        PgrstError {
            status,
            code: code.to_string(),
            message: db.message().to_string(),
            details: db.detail().map(|d| Value::String(d.into())).unwrap_or(Value::Null),
            hint: db.hint().map(|h| Value::String(h.into())).unwrap_or(Value::Null),
            www_authenticate: (status == 401).then(|| "Bearer".to_string()),
            bare: false,
        }
    }

    pub fn body(&self) -> Value {
        if self.bare {
            return json!({"message": self.message, "hint": self.hint});
        }
        json!({"code": self.code, "details": self.details, "hint": self.hint, "message": self.message})
    }
}

pub fn status_for_sqlstate(code: &str, anon: bool) -> u16 {
    if let Some(custom) = code.strip_prefix("PT") {
        if let Ok(status) = custom.parse::<u16>() {
            if (100..=599).contains(&status) {
                return status;
            }
        }
    }
    let class = &code[..code.len().min(2)];
    match code {
        "23503" | "23505" => 409,
        "25006" => 405,
        "42883" | "42P01" => 404,
        "42501" if anon => 401,
        "42501" => 403,
        "P0001" => 400,
        "57P01" => 503,
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
        let mut response = (status, axum::Json(self.body())).into_response();
        if let Some(value) = self.www_authenticate.and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.headers_mut().insert("www-authenticate", value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::status_for_sqlstate as s;

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
    }
}
