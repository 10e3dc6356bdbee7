//! The read API's arguments and answers: query parameters to SQL function
//! arguments, and the functions' `{items, next}` to the clients'
//! `{items, count, nextCursor, ts}`.
//!
//! Listings page newest first over a unique sort key (a timestamp and the
//! row's id). The cursor handed out is that key of the last row, encoded so
//! clients treat it as opaque; a bare timestamp, the older clients' cursor,
//! is still accepted and means "created strictly before".

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{json, Map, Value};

use crate::http::body::{parse_uuid, Body};
use crate::http::error::ApiError;
use crate::http::query::{invalid, Query};
use crate::time::{iso8601, parse_timestamp};

pub const DEFAULT_PAGE: i64 = 20;
pub const MAX_PAGE: i64 = 100;
pub const DEFAULT_EVENTS_PAGE: i64 = 100;
pub const MAX_EVENTS_PAGE: i64 = 1000;
pub const DEFAULT_ACTIVE_WINDOW_SECS: i64 = 20;
pub const MAX_ACTIVE_WINDOW_SECS: i64 = 3600;
pub const DEFAULT_DLQ_RETRY_MAX: i64 = 100;
pub const MAX_DLQ_RETRY: i64 = 1000;
const MAX_FILTER_CHARS: usize = 200;

/// Where a listing resumes.
#[derive(Debug, PartialEq)]
pub enum Cursor {
    /// After the row with this sort key (what nextCursor encodes).
    After { at: String, id: String },
    /// Strictly before this timestamp (the older clients' ISO cursor).
    Before(String),
}

/// How a listing's row ids are written.
#[derive(Debug, Clone, Copy)]
pub enum IdKind {
    Uuid,
    Integer,
}

/// The opaque cursor for the sort key `{at, id}` a listing function returned.
pub fn encode_cursor(next: &Value) -> Option<String> {
    let at = next.get("at")?.as_str()?;
    let id = match next.get("id")? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    Some(Base64UrlUnpadded::encode_string(format!("{at}|{id}").as_bytes()))
}

fn bad_cursor() -> ApiError {
    invalid("cursor", "a nextCursor value from an earlier page, or an ISO 8601 timestamp")
}

pub fn decode_cursor(raw: &str, ids: IdKind) -> Result<Cursor, ApiError> {
    if raw == "null" || raw == "undefined" {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("cursor is the string \"{raw}\": nextCursor null means the last page was reached; stop paging"),
        )
        .with_details(json!({ "parameter": "cursor" })));
    }
    if let Some(at) = parse_timestamp(raw) {
        return Ok(Cursor::Before(at));
    }
    let decoded = Base64UrlUnpadded::decode_vec(raw).ok().and_then(|b| String::from_utf8(b).ok());
    let (at, id) = decoded.as_deref().and_then(|d| d.split_once('|')).ok_or_else(bad_cursor)?;
    let at = parse_timestamp(at).ok_or_else(bad_cursor)?;
    let id = match ids {
        IdKind::Uuid => parse_uuid(id),
        IdKind::Integer => id.parse::<i64>().ok().map(|n| n.to_string()),
    }
    .ok_or_else(bad_cursor)?;
    Ok(Cursor::After { at, id })
}

fn page_size(q: &Query) -> Result<i64, ApiError> {
    Ok(q.opt_int("limit", 1, MAX_PAGE)?.unwrap_or(DEFAULT_PAGE))
}

/// `p_limit` and the cursor arguments shared by the paged listings.
fn paging_args(q: &Query, ids: IdKind) -> Result<Map<String, Value>, ApiError> {
    let mut args = Map::new();
    args.insert("p_limit".into(), page_size(q)?.into());
    match q.raw(&["cursor"]).map(|c| decode_cursor(c, ids)).transpose()? {
        Some(Cursor::After { at, id }) => {
            args.insert("p_after_at".into(), at.into());
            args.insert("p_after_id".into(), id.into());
        }
        Some(Cursor::Before(at)) => {
            args.insert("p_before".into(), at.into());
        }
        None => {}
    }
    Ok(args)
}

fn filter(q: &Query, names: &[&str]) -> Result<Value, ApiError> {
    Ok(q.opt_str(names, MAX_FILTER_CHARS)?.map(Value::from).unwrap_or(Value::Null))
}

/// `jobs/recent?limit&cursor&status&executorId&type`.
pub fn jobs_recent_args(q: &Query) -> Result<Value, ApiError> {
    let mut args = paging_args(q, IdKind::Uuid)?;
    let status = filter(q, &["status"])?;
    if let Some(s) = status.as_str() {
        if !crate::queue::tasks::STATUSES.contains(&s) {
            return Err(invalid("status", &format!("one of {}", crate::queue::tasks::STATUSES.join(", "))));
        }
    }
    args.insert("p_status".into(), status);
    args.insert("p_executor_id".into(), filter(q, &["executorId", "executor_id"])?);
    args.insert("p_type".into(), filter(q, &["type"])?);
    Ok(Value::Object(args))
}

/// `dlq-list?limit&cursor&type&executorId&from&to`.
pub fn dlq_list_args(q: &Query) -> Result<Value, ApiError> {
    let mut args = paging_args(q, IdKind::Integer)?;
    args.insert("p_type".into(), filter(q, &["type"])?);
    args.insert("p_executor_id".into(), filter(q, &["executorId", "executor_id"])?);
    args.insert("p_from".into(), q.opt_timestamp("from")?.into());
    args.insert("p_to".into(), q.opt_timestamp("to")?.into());
    Ok(Value::Object(args))
}

/// `events/by-job/:id?after&limit`: seq order, after a seq.
pub fn job_events_args(job_id: &str, q: &Query) -> Result<Value, ApiError> {
    let after = match q.raw(&["after", "cursor"]) {
        None => 0,
        Some(raw) => raw.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| invalid("after", "an event seq"))?,
    };
    let limit = q.opt_int("limit", 1, MAX_EVENTS_PAGE)?.unwrap_or(DEFAULT_EVENTS_PAGE);
    Ok(json!({ "p_job_id": job_id, "p_after": after, "p_limit": limit }))
}

/// `workers-active?window=<seconds>`.
pub fn workers_active_args(q: &Query) -> Result<Value, ApiError> {
    let window = q.opt_int("window", 1, MAX_ACTIVE_WINDOW_SECS)?.unwrap_or(DEFAULT_ACTIVE_WINDOW_SECS);
    Ok(json!({ "p_window_seconds": window }))
}

/// A path's `:id` as a job id.
pub fn job_id(raw: Option<&str>) -> Result<String, ApiError> {
    raw.and_then(parse_uuid).ok_or_else(|| invalid("id", "a UUID"))
}

/// `{items, next}` from a listing function -> `{items, count, nextCursor, ts}`.
/// Event pages carry a plain seq as their cursor.
pub fn page(mut answer: Value, now_ms: i64) -> Result<Value, ApiError> {
    let items = match answer.get_mut("items").map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => return Err(unexpected_answer()),
    };
    let next = match answer.get("next") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::Number(seq)) => Value::String(seq.to_string()),
        Some(key) => encode_cursor(key).map(Value::String).ok_or_else(unexpected_answer)?,
    };
    Ok(json!({ "items": items, "count": items.len(), "nextCursor": next, "ts": iso8601(now_ms) }))
}

/// `{items}` -> `{items, count, ts}`.
pub fn list(mut answer: Value, now_ms: i64) -> Result<Value, ApiError> {
    match answer.get_mut("items").map(Value::take) {
        Some(Value::Array(items)) => Ok(json!({ "items": items, "count": items.len(), "ts": iso8601(now_ms) })),
        _ => Err(unexpected_answer()),
    }
}

fn unexpected_answer() -> ApiError {
    ApiError::new(502, "upstream_error", "the database answered an unexpected shape").with_retryable(true)
}

/// What `dlq-retry` was asked: one letter, or every letter matching a filter.
#[derive(Debug, PartialEq)]
pub enum DlqRetry {
    One(Value),
    Matching(Value),
}

/// `{dlqId}` retries one letter; otherwise a filter (`type`, `executorId`,
/// `from`, `to`) and/or `max`, with `dryRun`, retries the matching letters.
/// An empty body is refused rather than taken to mean "retry everything".
pub fn dlq_retry_args(body: &Body) -> Result<DlqRetry, ApiError> {
    if let Some(id) = body.opt_int(&["dlqId", "dlq_id", "id"], 1, i64::MAX)? {
        return Ok(DlqRetry::One(json!({ "p_dlq_id": id })));
    }
    let timestamp = |name: &str| -> Result<Value, ApiError> {
        match body.opt_str(&[name], 64)? {
            Some(t) => parse_timestamp(&t)
                .map(Value::from)
                .ok_or_else(|| crate::http::body::invalid(name, "an RFC 3339 timestamp")),
            None => Ok(Value::Null),
        }
    };
    let kind = body.opt_str(&["type"], MAX_FILTER_CHARS)?;
    let executor = body.opt_str(&["executorId", "executor_id"], MAX_FILTER_CHARS)?;
    let (from, to) = (timestamp("from")?, timestamp("to")?);
    let max = body.opt_int(&["max"], 1, MAX_DLQ_RETRY)?;
    if kind.is_none() && executor.is_none() && from.is_null() && to.is_null() && max.is_none() {
        return Err(ApiError::bad_request(
            "missing_field",
            "dlqId is required, or a filter (type, executorId, from, to) or max to retry many",
        )
        .with_details(json!({ "field": "dlqId" })));
    }
    let args = json!({
        "p_type": kind, "p_executor_id": executor, "p_from": from, "p_to": to,
        "p_max": max.unwrap_or(DEFAULT_DLQ_RETRY_MAX),
        "p_dry_run": body.opt_bool("dryRun")?.unwrap_or(false),
    });
    Ok(DlqRetry::Matching(args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::body::DEFAULT_MAX_BODY;

    const JOB: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

    #[test]
    fn cursors_round_trip_and_stay_opaque() {
        let next = json!({ "at": "2026-11-23T09:29:23.867345+00:00", "id": JOB });
        let cursor = encode_cursor(&next).unwrap();
        assert!(cursor.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{cursor}");
        assert_eq!(
            decode_cursor(&cursor, IdKind::Uuid).unwrap(),
            Cursor::After { at: "2026-11-23T09:29:23.867345Z".into(), id: JOB.into() }
        );
        let dlq = encode_cursor(&json!({ "at": "2026-11-23T09:29:23Z", "id": 42 })).unwrap();
        assert_eq!(
            decode_cursor(&dlq, IdKind::Integer).unwrap(),
            Cursor::After { at: "2026-11-23T09:29:23Z".into(), id: "42".into() }
        );
        assert!(decode_cursor(&dlq, IdKind::Uuid).is_err());
    }

    #[test]
    fn iso_cursor_is_accepted_and_null_is_refused_with_advice() {
        assert_eq!(
            decode_cursor("2026-01-01T00:00:00Z", IdKind::Uuid).unwrap(),
            Cursor::Before("2026-01-01T00:00:00Z".into())
        );
        let e = decode_cursor("null", IdKind::Uuid).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("stop paging"), "{}", e.message);
        for bad in ["", "abc", "!!", &Base64UrlUnpadded::encode_string(b"yesterday|x")] {
            assert_eq!(decode_cursor(bad, IdKind::Uuid).unwrap_err().code, "invalid_parameter", "{bad}");
        }
    }

    #[test]
    fn jobs_recent_maps_filters_and_bounds_the_limit() {
        let args = jobs_recent_args(&Query::parse(Some("limit=5&executorId=e&status=queued&type=t"))).unwrap();
        assert_eq!(args["p_limit"], 5);
        assert_eq!(args["p_executor_id"], "e");
        assert_eq!(args["p_status"], "queued");
        assert_eq!(jobs_recent_args(&Query::parse(None)).unwrap()["p_limit"], DEFAULT_PAGE);
        for bad in ["limit=0", "limit=101", "limit=x", "status=sleeping", "cursor=null"] {
            assert_eq!(jobs_recent_args(&Query::parse(Some(bad))).unwrap_err().status, 400, "{bad}");
        }
        let cursor = encode_cursor(&json!({ "at": "2026-11-23T09:29:23Z", "id": JOB })).unwrap();
        let args = jobs_recent_args(&Query::parse(Some(&format!("cursor={cursor}")))).unwrap();
        assert_eq!(
            (args["p_after_at"].as_str(), args["p_after_id"].as_str()),
            (Some("2026-11-23T09:29:23Z"), Some(JOB))
        );
        let args = jobs_recent_args(&Query::parse(Some("cursor=2026-11-23T09:29:23Z"))).unwrap();
        assert_eq!(args["p_before"], "2026-11-23T09:29:23Z");
    }

    #[test]
    fn page_shapes_the_clients_listing() {
        let answer = json!({ "items": [{"id": 1}], "next": { "at": "2026-11-23T09:29:23Z", "id": JOB } });
        let page = page(answer, 0).unwrap();
        assert_eq!(page["count"], 1);
        assert_eq!(page["ts"], "1970-01-01T00:00:00.000Z");
        assert!(page["nextCursor"].is_string());
        assert_eq!(super::page(json!({ "items": [], "next": null }), 0).unwrap()["nextCursor"], Value::Null);
        assert_eq!(super::page(json!({ "items": [], "next": 7 }), 0).unwrap()["nextCursor"], "7");
        assert_eq!(super::page(json!({ "oops": 1 }), 0).unwrap_err().status, 502);
    }

    #[test]
    fn dlq_retry_one_or_matching() {
        let body = |s: &str| Body::parse(s.as_bytes(), DEFAULT_MAX_BODY).unwrap();
        assert_eq!(dlq_retry_args(&body(r#"{"dlqId":3}"#)).unwrap(), DlqRetry::One(json!({ "p_dlq_id": 3 })));
        let DlqRetry::Matching(args) = dlq_retry_args(&body(r#"{"type":"t","dryRun":true}"#)).unwrap() else {
            panic!("a filter is a matching retry")
        };
        assert_eq!((args["p_type"].as_str(), args["p_dry_run"].as_bool()), (Some("t"), Some(true)));
        assert_eq!(args["p_max"], DEFAULT_DLQ_RETRY_MAX);
        for bad in [r#"{}"#, r#"{"dryRun":true}"#, r#"{"dlqId":"x"}"#, r#"{"dlqId":0}"#, r#"{"from":"soon"}"#] {
            assert_eq!(dlq_retry_args(&body(bad)).unwrap_err().status, 400, "{bad}");
        }
    }
}
