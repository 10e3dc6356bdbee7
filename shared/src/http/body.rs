//! Request bodies: JSON objects read field by field, so every bad input is a
//! 400 naming the field, checked before anything is written.

use serde_json::{json, Map, Value};

use crate::http::error::ApiError;

/// Bodies larger than this answer 413 unless a route allows more.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;
/// Deeper JSON is refused before parsing: no client needs it, and deep
/// nesting costs stack and CPU.
pub const MAX_DEPTH: usize = 32;

/// The deepest nesting of arrays and objects in `bytes`, outside strings.
fn nesting_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Numbers beyond this do not come back from PostgreSQL as JSON that
/// parses: numeric prints them as long integers, which overflow a double.
const MAX_MAGNITUDE: f64 = 1e308;

fn unstorable(key_or_string: &str) -> Option<&'static str> {
    key_or_string
        .contains('\0')
        .then_some("strings may not contain the NUL character (\\u0000): the database cannot store it")
}

/// Why the database could not keep `value` as sent, if it could not.
fn unstorable_value(value: &Value) -> Option<&'static str> {
    match value {
        Value::String(s) => unstorable(s),
        Value::Number(n) if n.as_f64().is_some_and(|f| f.abs() > MAX_MAGNITUDE) => {
            Some("numbers must lie within ±1e308")
        }
        Value::Array(items) => items.iter().find_map(unstorable_value),
        Value::Object(map) => map.iter().find_map(|(k, v)| unstorable(k).or_else(|| unstorable_value(v))),
        _ => None,
    }
}

pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(413, "payload_too_large", format!("request body is larger than {limit} bytes"))
        .with_details(json!({ "limit": limit }))
}

/// 413 for one field whose serialised `size` is over its `limit`.
pub fn field_too_large(field: &str, size: usize, limit: usize) -> ApiError {
    ApiError::new(413, "payload_too_large", format!("{field} is {size} bytes; at most {limit}"))
        .with_details(json!({ "field": field, "limit": limit }))
}

/// A JSON object body.
#[derive(Debug)]
pub struct Body(Map<String, Value>);

fn missing(name: &str) -> ApiError {
    ApiError::bad_request("missing_field", format!("{name} is required")).with_details(json!({ "field": name }))
}

pub fn invalid(name: &str, expected: &str) -> ApiError {
    ApiError::bad_request("invalid_field", format!("{name} must be {expected}")).with_details(json!({ "field": name }))
}

impl Body {
    /// Parses `bytes` as one JSON object, refusing more than `limit` bytes.
    pub fn parse(bytes: &[u8], limit: usize) -> Result<Body, ApiError> {
        if bytes.len() > limit {
            return Err(too_large(limit));
        }
        if nesting_depth(bytes) > MAX_DEPTH {
            return Err(ApiError::bad_request(
                "json_too_deep",
                format!("request body nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request("invalid_json", "request body must be a JSON object; it is empty"));
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => match map.iter().find_map(|(k, v)| unstorable(k).or_else(|| unstorable_value(v)))
            {
                Some(why) => Err(ApiError::bad_request("invalid_json", why)),
                None => Ok(Body(map)),
            },
            Ok(_) => Err(ApiError::bad_request("invalid_json", "request body must be a JSON object")),
            Err(e) => Err(ApiError::bad_request("invalid_json", format!("request body is not valid JSON: {e}"))),
        }
    }

    pub fn from_map(map: Map<String, Value>) -> Body {
        Body(map)
    }

    /// Every field, as sent.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The first of `names` that is present and not null.
    fn get<'n>(&self, names: &[&'n str]) -> Option<(&'n str, &Value)> {
        names.iter().find_map(|n| self.0.get(*n).filter(|v| !v.is_null()).map(|v| (*n, v)))
    }

    /// A non-empty string of at most `max` characters, under any of `names`.
    pub fn opt_str(&self, names: &[&str], max: usize) -> Result<Option<String>, ApiError> {
        match self.get(names) {
            None => Ok(None),
            Some((_, Value::String(s))) if !s.trim().is_empty() && s.chars().count() <= max => Ok(Some(s.clone())),
            Some((name, _)) => Err(invalid(name, &format!("a non-empty string of at most {max} characters"))),
        }
    }

    pub fn req_str(&self, name: &str, max: usize) -> Result<String, ApiError> {
        self.opt_str(&[name], max)?.ok_or_else(|| missing(name))
    }

    pub fn opt_int(&self, names: &[&str], min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        match self.get(names) {
            None => Ok(None),
            // JSON Schema counts 5.0 as an integer, and so do we.
            Some((name, v)) => match v
                .as_i64()
                .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64))
            {
                Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(invalid(name, &format!("an integer in {min}..{max}"))),
            },
        }
    }

    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(&[name]) {
            None => Ok(None),
            Some((_, Value::Bool(b))) => Ok(Some(*b)),
            Some(_) => Err(invalid(name, "true or false")),
        }
    }

    pub fn req_bool(&self, name: &str) -> Result<bool, ApiError> {
        self.opt_bool(name)?.ok_or_else(|| missing(name))
    }

    /// A UUID in its canonical text form, lower-cased.
    pub fn opt_uuid(&self, names: &[&str]) -> Result<Option<String>, ApiError> {
        match self.get(names) {
            None => Ok(None),
            Some((name, Value::String(s))) => parse_uuid(s).map(Some).ok_or_else(|| invalid(name, "a UUID")),
            Some((name, _)) => Err(invalid(name, "a UUID")),
        }
    }

    pub fn req_uuid(&self, name: &str) -> Result<String, ApiError> {
        self.opt_uuid(&[name])?.ok_or_else(|| missing(name))
    }

    /// Any JSON value but null.
    /// The first of `names` that is present and not null, borrowed.
    pub fn value(&self, names: &[&str]) -> Option<&Value> {
        self.get(names).map(|(_, v)| v)
    }

    pub fn opt_value(&self, names: &[&str]) -> Option<Value> {
        self.get(names).map(|(_, v)| v.clone())
    }

    pub fn opt_object(&self, name: &str) -> Result<Option<Map<String, Value>>, ApiError> {
        match self.get(&[name]) {
            None => Ok(None),
            Some((_, Value::Object(m))) => Ok(Some(m.clone())),
            Some(_) => Err(invalid(name, "a JSON object")),
        }
    }

    pub fn opt_array(&self, name: &str) -> Result<Option<Vec<Value>>, ApiError> {
        match self.get(&[name]) {
            None => Ok(None),
            Some((_, Value::Array(a))) => Ok(Some(a.clone())),
            Some(_) => Err(invalid(name, "an array")),
        }
    }
}

/// The canonical lower-case form of a UUID, or None.
pub fn parse_uuid(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let ok = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    ok.then(|| s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(s: &str) -> Body {
        Body::parse(s.as_bytes(), DEFAULT_MAX_BODY).unwrap()
    }

    fn err(r: Result<impl std::fmt::Debug, ApiError>) -> (u16, &'static str, String) {
        let e = r.unwrap_err();
        (e.status, e.code, e.message)
    }

    #[test]
    fn rejects_non_objects_and_bad_json() {
        assert_eq!(err(Body::parse(b"", 10)).1, "invalid_json");
        assert_eq!(err(Body::parse(b"[1]", 10)).1, "invalid_json");
        assert_eq!(err(Body::parse(b"{\"a\":", 10)).1, "invalid_json");
        assert_eq!(err(Body::parse(b"{\"a\":\"0123456789\"}", 10)).0, 413);
    }

    #[test]
    fn what_the_database_cannot_keep_is_refused_before_it_is_sent() {
        for body in [r#"{"a":"x\u0000"}"#, r#"{"a":{"b":["\u0000"]}}"#, r#"{"\u0000":1}"#] {
            assert_eq!(err(Body::parse(body.as_bytes(), DEFAULT_MAX_BODY)).1, "invalid_json", "{body}");
        }
        assert!(Body::parse(br#"{"a":"\\u0000"}"#, DEFAULT_MAX_BODY).is_ok(), "an escaped backslash is not NUL");
        assert_eq!(err(Body::parse(br#"{"m":{"v":1.7976931348623157e308}}"#, DEFAULT_MAX_BODY)).1, "invalid_json");
        assert!(Body::parse(br#"{"m":{"v":1e308,"w":-1e-400}}"#, DEFAULT_MAX_BODY).is_ok());
    }

    #[test]
    fn deep_nesting_is_refused_but_brackets_in_strings_do_not_count() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(err(Body::parse(deep.as_bytes(), DEFAULT_MAX_BODY)).1, "json_too_deep");
        let ok = format!("{{\"a\":{}{}}}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(Body::parse(ok.as_bytes(), DEFAULT_MAX_BODY).is_ok());
        let quoted = format!("{{\"a\":\"{}\\\"{}\"}}", "[".repeat(100), "{".repeat(100));
        assert!(Body::parse(quoted.as_bytes(), DEFAULT_MAX_BODY).is_ok());
    }

    #[test]
    fn strings_name_the_field() {
        let b = body(r#"{"type": "", "executorId": 5, "ok": "yes"}"#);
        assert_eq!(
            err(b.req_str("type", 10)),
            (400, "invalid_field", "type must be a non-empty string of at most 10 characters".into())
        );
        assert_eq!(
            err(b.req_str("executorId", 10)).2,
            "executorId must be a non-empty string of at most 10 characters"
        );
        assert_eq!(err(b.req_str("workerId", 10)), (400, "missing_field", "workerId is required".into()));
        assert_eq!(err(b.req_bool("ok")).2, "ok must be true or false");
    }

    #[test]
    fn aliases_take_the_first_present() {
        let b = body(r#"{"idempotency_key": "k1", "idempotencyKey": null}"#);
        assert_eq!(b.opt_str(&["idempotencyKey", "idempotency_key"], 200).unwrap(), Some("k1".into()));
    }

    #[test]
    fn integers_are_range_checked() {
        let b = body(r#"{"leaseSeconds": 5, "limit": 2.5, "priority": 3, "max": 7.0, "huge": 1e300}"#);
        assert_eq!(err(b.opt_int(&["leaseSeconds"], 15, 600)).2, "leaseSeconds must be an integer in 15..600");
        assert_eq!(err(b.opt_int(&["limit"], 1, 100)).1, "invalid_field");
        assert_eq!(b.opt_int(&["priority"], -1000, 1000).unwrap(), Some(3));
        assert_eq!(b.opt_int(&["absent"], 0, 1).unwrap(), None);
        assert_eq!(b.opt_int(&["max"], 1, 10).unwrap(), Some(7), "7.0 is an integer");
        assert_eq!(err(b.opt_int(&["huge"], 0, i64::MAX)).1, "invalid_field");
    }

    #[test]
    fn uuids_are_canonicalised() {
        assert_eq!(
            parse_uuid("0F8FAD5B-D9CB-469F-A165-70867728950E").as_deref(),
            Some("0f8fad5b-d9cb-469f-a165-70867728950e")
        );
        assert_eq!(parse_uuid("0f8fad5b-d9cb-469f-a165-70867728950"), None);
        assert_eq!(parse_uuid("0f8fad5bxd9cb-469f-a165-70867728950e"), None);
        assert_eq!(err(body(r#"{"jobId": "x"}"#).req_uuid("jobId")).2, "jobId must be a UUID");
    }
}
