//! Query-string parameters, read like request bodies: each bad value is a
//! 400 naming the parameter, before anything is read from the database.
//! Unknown parameters are ignored (clients add their own, like `apikey`).

use serde_json::json;

use crate::http::body::parse_uuid;
use crate::http::error::ApiError;
use crate::time::parse_timestamp;

#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

pub fn invalid(name: &str, expected: &str) -> ApiError {
    ApiError::bad_request("invalid_parameter", format!("{name} must be {expected}"))
        .with_details(json!({ "parameter": name }))
}

fn missing(name: &str) -> ApiError {
    ApiError::bad_request("missing_parameter", format!("{name} is required")).with_details(json!({ "parameter": name }))
}

/// Percent-decodes a form value (`+` is a space).
fn decode(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

impl Query {
    /// Parses the part of a URL after `?`.
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (decode(k), decode(v)),
                None => (decode(p), String::new()),
            })
            .collect();
        Query(pairs)
    }

    /// The first of `names` given with a non-empty value (an empty value
    /// counts as absent), with the name it came under.
    fn get<'n>(&self, names: &[&'n str]) -> Option<(&'n str, &str)> {
        names.iter().find_map(|n| self.0.iter().find(|(k, v)| k == n && !v.is_empty()).map(|(_, v)| (*n, v.as_str())))
    }

    pub fn opt_str(&self, names: &[&str], max: usize) -> Result<Option<String>, ApiError> {
        match self.get(names) {
            None => Ok(None),
            Some((_, v)) if v.chars().count() <= max && !v.contains('\0') => Ok(Some(v.to_string())),
            Some((name, _)) => Err(invalid(name, &format!("at most {max} characters, without NUL"))),
        }
    }

    /// The raw value of the first of `names`, if any.
    pub fn raw(&self, names: &[&str]) -> Option<&str> {
        self.get(names).map(|(_, v)| v)
    }

    pub fn opt_int(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        match self.get(&[name]) {
            None => Ok(None),
            Some((_, v)) => match v.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(invalid(name, &format!("an integer in {min}..{max}"))),
            },
        }
    }

    pub fn req_uuid(&self, names: &[&str]) -> Result<String, ApiError> {
        match self.get(names) {
            None => Err(missing(names[0])),
            Some((name, v)) => parse_uuid(v).ok_or_else(|| invalid(name, "a UUID")),
        }
    }

    /// An RFC 3339 timestamp, in UTC.
    pub fn opt_timestamp(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.get(&[name]) {
            None => Ok(None),
            Some((name, v)) => parse_timestamp(v)
                .map(Some)
                .ok_or_else(|| invalid(name, "an RFC 3339 timestamp such as 2026-01-31T12:00:00Z")),
        }
    }

    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(&[name]) {
            None => Ok(None),
            Some((_, "true" | "1")) => Ok(Some(true)),
            Some((_, "false" | "0")) => Ok(Some(false)),
            Some(_) => Err(invalid(name, "true or false")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_form_values_and_takes_the_first_alias() {
        let q = Query::parse(Some("jobId=&id=a%20b+c&x&limit=5"));
        assert_eq!(q.raw(&["jobId", "id"]), Some("a b c"));
        assert_eq!(q.opt_int("limit", 1, 100).unwrap(), Some(5));
        assert_eq!(q.raw(&["x"]), None);
        assert!(Query::parse(None).raw(&["id"]).is_none());
    }

    #[test]
    fn bad_values_name_the_parameter() {
        let q = Query::parse(Some("limit=0&id=nope&at=yesterday&b=maybe"));
        let e = q.opt_int("limit", 1, 100).unwrap_err();
        assert_eq!((e.status, e.code), (400, "invalid_parameter"));
        assert_eq!(e.details.unwrap()["parameter"], "limit");
        assert_eq!(q.req_uuid(&["id"]).unwrap_err().code, "invalid_parameter");
        assert_eq!(q.req_uuid(&["jobId"]).unwrap_err().code, "missing_parameter");
        assert!(q.opt_timestamp("at").is_err());
        assert!(q.opt_bool("b").is_err());
        assert!(Query::parse(Some("limit=1e3")).opt_int("limit", 1, 100).is_err());
        assert!(Query::parse(Some("type=a%00b")).opt_str(&["type"], 200).is_err());
    }
}
