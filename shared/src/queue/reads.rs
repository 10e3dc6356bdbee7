//! The read API's arguments and answers: query parameters to SQL function
//! arguments, and the functions' `{items, next}` to the clients'
//! `{items, count, nextCursor, ts}`.
//!
//! Listings page newest first over a unique sort key (a timestamp and the
//! row's id). The cursor handed out is that key of the last row, encoded so
//! clients treat it as opaque; a bare timestamp, the older clients' cursor,
//! is still accepted and means "created strictly before".

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{json, Value};

use crate::http::body::{parse_uuid, Body};
use crate::http::error::ApiError;
use crate::http::query::{invalid, Query};
use crate::postgrest::sql_function;
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

sql_function! {
    /// The page size and cursor arguments shared by the paged listings; a
    /// cursor the caller did not send is left out.
    pub struct Paging {
        pub limit: i64,
        @omit_none pub after_at: Option<String>,
        @omit_none pub after_id: Option<String>,
        @omit_none pub before: Option<String>,
    }
}

fn paging_args(q: &Query, ids: IdKind) -> Result<Paging, ApiError> {
    let mut paging = Paging { limit: page_size(q)?, after_at: None, after_id: None, before: None };
    match q.raw(&["cursor"]).map(|c| decode_cursor(c, ids)).transpose()? {
        Some(Cursor::After { at, id }) => {
            paging.after_at = Some(at);
            paging.after_id = Some(id);
        }
        Some(Cursor::Before(at)) => paging.before = Some(at),
        None => {}
    }
    Ok(paging)
}

fn filter(q: &Query, names: &[&str]) -> Result<Option<String>, ApiError> {
    q.opt_str(names, MAX_FILTER_CHARS)
}

sql_function! {
    /// `cogo.jobs_recent`: a page of jobs, newest first.
    pub struct JobsRecent => "jobs_recent" -> Value {
        @flatten pub paging: Paging,
        pub status: Option<String>,
        pub executor_id: Option<String>,
        pub job_type as "type": Option<String>,
    }
}

/// `jobs/recent?limit&cursor&status&executorId&type`.
pub fn jobs_recent_args(q: &Query) -> Result<JobsRecent, ApiError> {
    let paging = paging_args(q, IdKind::Uuid)?;
    let status = filter(q, &["status"])?;
    if let Some(s) = status.as_deref() {
        if !crate::queue::tasks::STATUSES.contains(&s) {
            return Err(invalid("status", &format!("one of {}", crate::queue::tasks::STATUSES.join(", "))));
        }
    }
    Ok(JobsRecent {
        paging,
        status,
        executor_id: filter(q, &["executorId", "executor_id"])?,
        job_type: filter(q, &["type"])?,
    })
}

sql_function! {
    /// `cogo.dlq_list`: a page of dead letters, newest first.
    pub struct DlqList => "dlq_list" -> Value {
        @flatten pub paging: Paging,
        pub job_type as "type": Option<String>,
        pub executor_id: Option<String>,
        pub from: Option<String>,
        pub to: Option<String>,
    }
}

/// `dlq-list?limit&cursor&type&executorId&from&to`.
pub fn dlq_list_args(q: &Query) -> Result<DlqList, ApiError> {
    Ok(DlqList {
        paging: paging_args(q, IdKind::Integer)?,
        job_type: filter(q, &["type"])?,
        executor_id: filter(q, &["executorId", "executor_id"])?,
        from: q.opt_timestamp("from")?,
        to: q.opt_timestamp("to")?,
    })
}

sql_function! {
    /// `cogo.job_get`: one job, if the caller may see it.
    pub struct JobGet => "job_get" -> Value {
        pub job_id: String,
    }
}

sql_function! {
    /// `cogo.job_summary`: a job with its artifacts and latest events.
    pub struct JobSummary => "job_summary" -> Value {
        pub job_id: String,
    }
}

sql_function! {
    /// `cogo.job_artifacts`: a job's artifacts.
    pub struct JobArtifacts => "job_artifacts" -> Value {
        pub job_id: String,
    }
}

sql_function! {
    /// `cogo.job_events_page`: a job's events after a seq, in seq order.
    pub struct JobEventsPage => "job_events_page" -> Value {
        pub job_id: String,
        pub after: i64,
        pub limit: i64,
    }
}

/// `events/by-job/:id?after&limit`: seq order, after a seq.
pub fn job_events_args(job_id: &str, q: &Query) -> Result<JobEventsPage, ApiError> {
    let after = match q.raw(&["after", "cursor"]) {
        None => 0,
        Some(raw) => raw.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| invalid("after", "an event seq"))?,
    };
    let limit = q.opt_int("limit", 1, MAX_EVENTS_PAGE)?.unwrap_or(DEFAULT_EVENTS_PAGE);
    Ok(JobEventsPage { job_id: job_id.to_string(), after, limit })
}

sql_function! {
    /// `cogo.workers_active`: workers seen within the window.
    pub struct WorkersActive => "workers_active" -> Value {
        pub window_seconds: i64,
    }
}

/// `workers-active?window=<seconds>`.
pub fn workers_active_args(q: &Query) -> Result<WorkersActive, ApiError> {
    let window = q.opt_int("window", 1, MAX_ACTIVE_WINDOW_SECS)?.unwrap_or(DEFAULT_ACTIVE_WINDOW_SECS);
    Ok(WorkersActive { window_seconds: window })
}

sql_function! {
    /// `cogo.metrics_overview`; `latest` jobs listed (the function's default
    /// when left out).
    pub struct MetricsOverview => "metrics_overview" -> Value {
        @omit_none pub latest: Option<i64>,
    }
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
    One(DlqRetryOne),
    Matching(DlqRetryMatching),
}

sql_function! {
    /// `cogo.dlq_retry`: one dead letter enqueued again (once).
    pub struct DlqRetryOne => "dlq_retry" -> Value {
        pub dlq_id: i64,
    }
}

sql_function! {
    /// `cogo.dlq_retry_matching`: the oldest matching letters not yet retried.
    pub struct DlqRetryMatching => "dlq_retry_matching" -> Value {
        pub job_type as "type": Option<String>,
        pub executor_id: Option<String>,
        pub from: Option<String>,
        pub to: Option<String>,
        pub max: i64,
        pub dry_run: bool,
    }
}

/// `{dlqId}` retries one letter; otherwise a filter (`type`, `executorId`,
/// `from`, `to`) and/or `max`, with `dryRun`, retries the matching letters.
/// An empty body is refused rather than taken to mean "retry everything".
pub fn dlq_retry_args(body: &Body) -> Result<DlqRetry, ApiError> {
    if let Some(id) = body.opt_int(&["dlqId", "dlq_id", "id"], 1, i64::MAX)? {
        return Ok(DlqRetry::One(DlqRetryOne { dlq_id: id }));
    }
    let timestamp = |name: &str| -> Result<Option<String>, ApiError> {
        body.opt_str(&[name], 64)?
            .map(|t| parse_timestamp(&t).ok_or_else(|| crate::http::body::invalid(name, "an RFC 3339 timestamp")))
            .transpose()
    };
    let kind = body.opt_str(&["type"], MAX_FILTER_CHARS)?;
    let executor = body.opt_str(&["executorId", "executor_id"], MAX_FILTER_CHARS)?;
    let (from, to) = (timestamp("from")?, timestamp("to")?);
    let max = body.opt_int(&["max"], 1, MAX_DLQ_RETRY)?;
    if kind.is_none() && executor.is_none() && from.is_none() && to.is_none() && max.is_none() {
        return Err(ApiError::bad_request(
            "missing_field",
            "dlqId is required, or a filter (type, executorId, from, to) or max to retry many",
        )
        .with_details(json!({ "field": "dlqId" })));
    }
    Ok(DlqRetry::Matching(DlqRetryMatching {
        job_type: kind,
        executor_id: executor,
        from,
        to,
        max: max.unwrap_or(DEFAULT_DLQ_RETRY_MAX),
        dry_run: body.opt_bool("dryRun")?.unwrap_or(false),
    }))
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
        assert_eq!(args.paging.limit, 5);
        assert_eq!(args.executor_id.as_deref(), Some("e"));
        assert_eq!(args.status.as_deref(), Some("queued"));
        assert_eq!(jobs_recent_args(&Query::parse(None)).unwrap().paging.limit, DEFAULT_PAGE);
        for bad in ["limit=0", "limit=101", "limit=x", "status=sleeping", "cursor=null"] {
            assert_eq!(jobs_recent_args(&Query::parse(Some(bad))).unwrap_err().status, 400, "{bad}");
        }
        let cursor = encode_cursor(&json!({ "at": "2026-11-23T09:29:23Z", "id": JOB })).unwrap();
        let args = jobs_recent_args(&Query::parse(Some(&format!("cursor={cursor}")))).unwrap();
        assert_eq!(
            (args.paging.after_at.as_deref(), args.paging.after_id.as_deref()),
            (Some("2026-11-23T09:29:23Z"), Some(JOB))
        );
        let args = jobs_recent_args(&Query::parse(Some("cursor=2026-11-23T09:29:23Z"))).unwrap();
        assert_eq!(args.paging.before.as_deref(), Some("2026-11-23T09:29:23Z"));
    }

    #[test]
    fn paged_arguments_leave_out_the_cursor_not_sent() {
        let body = |q: &str| serde_json::to_string(&jobs_recent_args(&Query::parse(Some(q))).unwrap()).unwrap();
        assert_eq!(body("limit=5&type=t"), r#"{"p_limit":5,"p_status":null,"p_executor_id":null,"p_type":"t"}"#);
        assert_eq!(
            body("cursor=2026-11-23T09:29:23Z"),
            r#"{"p_limit":20,"p_before":"2026-11-23T09:29:23Z","p_status":null,"p_executor_id":null,"p_type":null}"#
        );
        let latest = |latest| serde_json::to_string(&MetricsOverview { latest }).unwrap();
        assert_eq!((latest(None), latest(Some(3))), ("{}".to_string(), r#"{"p_latest":3}"#.to_string()));
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
        assert_eq!(dlq_retry_args(&body(r#"{"dlqId":3}"#)).unwrap(), DlqRetry::One(DlqRetryOne { dlq_id: 3 }));
        let DlqRetry::Matching(args) = dlq_retry_args(&body(r#"{"type":"t","dryRun":true}"#)).unwrap() else {
            panic!("a filter is a matching retry")
        };
        assert_eq!((args.job_type.as_deref(), args.dry_run), (Some("t"), true));
        assert_eq!(args.max, DEFAULT_DLQ_RETRY_MAX);
        for bad in [r#"{}"#, r#"{"dryRun":true}"#, r#"{"dlqId":"x"}"#, r#"{"dlqId":0}"#, r#"{"from":"soon"}"#] {
            assert_eq!(dlq_retry_args(&body(bad)).unwrap_err().status, 400, "{bad}");
        }
    }
}
