//! The queue's requests as the clients send them, checked and turned into
//! named arguments of the SQL functions in migrations/functions/jobs.sql,
//! and the answers turned back into the clients' shapes.

use serde_json::{json, Map, Value};

use crate::http::body::{field_too_large, invalid, Body};
use crate::http::error::ApiError;
use crate::postgrest::{sql_function, UpstreamError};
use crate::time::parse_timestamp;

pub const MAX_NAME: usize = 200;
pub const LEASE_SECONDS: (i64, i64, i64) = (15, 600, 60); // min, max, default
pub const MAX_CLAIM_BATCH: i64 = 100;
/// Longest long-poll of a claim, as SQS's WaitTimeSeconds.
pub const MAX_WAIT_SECONDS: i64 = 20;
pub const MAX_RESULT_BATCH: usize = 100;
/// A worker's presence metadata is kept and replayed to every presence
/// subscriber: small, flat-ish JSON only.
pub const MAX_METADATA_BYTES: usize = 4096;
pub const MAX_METADATA_KEYS: usize = 32;
/// Job statuses a listing may filter on; `assigned` is the older clients'
/// name for a claimed job that has not started, a state this queue does not
/// have (a claim makes a job `running`), so it matches nothing.
pub const STATUSES: &[&str] = &["queued", "assigned", "running", "succeeded", "failed", "dead", "cancelled"];

sql_function! {
    /// `cogo.enqueue`: a new job, or the one already under its idempotency key
    /// (the function fills in defaults for every argument left null).
    pub struct Enqueue => "enqueue" -> Value {
        pub job_type as "type": String,
        pub executor_id: String,
        pub payload: Value,
        pub owner_id: Option<String>,
        pub idempotency_key: Option<String>,
        /// Where the key lives (see `idempotency::scope`).
        pub idempotency_scope: Option<String>,
        pub priority: Option<i64>,
        pub run_at: Option<String>,
        pub max_attempts: Option<i64>,
        pub backoff_base_ms: Option<i64>,
        pub backoff_cap_ms: Option<i64>,
    }
}

impl Enqueue {
    /// A job owned by `owner` (see `Principal::job_owner`), without a key,
    /// scheduled with the queue's defaults.
    pub fn new(
        job_type: impl Into<String>,
        executor_id: impl Into<String>,
        payload: Value,
        owner: Option<&str>,
    ) -> Enqueue {
        Enqueue {
            job_type: job_type.into(),
            executor_id: executor_id.into(),
            payload,
            owner_id: owner.map(str::to_string),
            idempotency_key: None,
            idempotency_scope: None,
            priority: None,
            run_at: None,
            max_attempts: None,
            backoff_base_ms: None,
            backoff_cap_ms: None,
        }
    }
}

/// `task.assign` `{type, executorId, payload?, idempotencyKey?, priority?,
/// runAt?, maxAttempts?, backoffBaseMs?, backoffCapMs?}`.
/// `scope` is where the key lives (see `idempotency::scope`).
pub fn assign_args(
    body: &Body,
    header_key: Option<&str>,
    owner_id: Option<&str>,
    scope: &str,
) -> Result<Enqueue, ApiError> {
    let job_type = body.req_str("type", MAX_NAME)?;
    let executor_id = body.req_str("executorId", MAX_NAME)?;
    let payload = body.opt_value(&["payload"]).unwrap_or_else(|| json!({}));
    let key = match body.opt_str(&["idempotencyKey", "idempotency_key"], MAX_NAME)? {
        Some(k) => Some(k),
        None => header_key.map(str::to_string),
    };
    let priority = body.opt_int(&["priority"], -1000, 1000)?;
    let run_at = match body.opt_value(&["runAt", "run_at"]) {
        None => None,
        Some(Value::String(s)) if parse_timestamp(&s).is_some() => parse_timestamp(&s),
        Some(_) => return Err(invalid("runAt", "an RFC 3339 timestamp with a time zone")),
    };
    let max_attempts = body.opt_int(&["maxAttempts", "max_attempts"], 1, 100)?;
    let base = body.opt_int(&["backoffBaseMs"], 0, 3_600_000)?;
    let cap = body.opt_int(&["backoffCapMs"], 0, 86_400_000)?;
    Ok(Enqueue {
        idempotency_key: key,
        idempotency_scope: Some(scope.to_string()),
        priority,
        run_at,
        max_attempts,
        backoff_base_ms: base,
        backoff_cap_ms: cap,
        ..Enqueue::new(job_type, executor_id, payload, owner_id)
    })
}

sql_function! {
    /// `cogo.claim`: up to `limit` ready jobs, each under a fresh lease.
    pub struct Claim => "claim" -> Vec<Value> {
        pub executor_id: String,
        pub worker_id: String,
        pub lease_seconds: i64,
        pub type_prefix: Option<String>,
        pub limit: i64,
    }
}

/// `task.claim` `{executorId, workerId, leaseSeconds?, typePrefix?, limit?,
/// waitSeconds?}`.
#[derive(Debug)]
pub struct ClaimRequest {
    pub claim: Claim,
    /// The caller asked for a batch (`limit`): answer `{jobs}`, not `{job}`.
    pub batch: bool,
    /// How long to wait for a job when none is ready (0: answer at once).
    pub wait_seconds: i64,
}

pub fn claim_args(body: &Body) -> Result<ClaimRequest, ApiError> {
    let executor_id = body.req_str("executorId", MAX_NAME)?;
    let worker_id = body.req_str("workerId", MAX_NAME)?;
    let (min, max, default) = LEASE_SECONDS;
    let lease = body.opt_int(&["leaseSeconds"], min, max)?.unwrap_or(default);
    let prefix = body.opt_str(&["typePrefix"], MAX_NAME)?;
    let limit = body.opt_int(&["limit"], 1, MAX_CLAIM_BATCH)?;
    let wait_seconds = body.opt_int(&["waitSeconds"], 0, MAX_WAIT_SECONDS)?.unwrap_or(0);
    let claim = Claim { executor_id, worker_id, lease_seconds: lease, type_prefix: prefix, limit: limit.unwrap_or(1) };
    Ok(ClaimRequest { claim, batch: limit.is_some(), wait_seconds })
}

/// `{job}` (the first claimed, or null) or, for a batch, `{jobs}`: the
/// answer of task.claim, and what task.result adds for `next`.
pub fn claim_answer(jobs: Vec<Value>, batch: bool) -> Value {
    if batch {
        json!({ "jobs": jobs })
    } else {
        json!({ "job": jobs.into_iter().next() })
    }
}

/// A claimed job as the workers read it: the Job fields plus our
/// `leaseToken` and `leaseUntil`.
pub fn claimed_job(mut job: Value) -> Value {
    if let Value::Object(map) = &mut job {
        if let Some(token) = map.remove("lease_token") {
            map.insert("leaseToken".into(), token);
        }
        if let Some(until) = map.get("lease_until").cloned() {
            map.insert("leaseUntil".into(), until);
        }
    }
    job
}

sql_function! {
    /// `cogo.complete`: a job's result under its lease. Also one item of
    /// `complete_many`, which takes the executor scope once, for all items.
    pub struct Complete => "complete" -> Value {
        pub job_id: String,
        pub ok: bool,
        pub result: Option<Value>,
        pub error: Option<Value>,
        pub lease_token: Option<String>,
        /// A scoped worker's executor (see `Principal::executor_id`).
        @omit_none pub executor_id: Option<String>,
    }
}

sql_function! {
    /// `cogo.complete_many`: the batch form of `complete`.
    pub struct CompleteMany => "complete_many" -> Value {
        pub results: Vec<Complete>,
        pub executor_id: Option<String>,
    }
}

sql_function! {
    /// What to claim right after a result (`next`), for the completed job's
    /// executor and worker.
    pub struct NextClaim {
        pub next_limit: i64,
        pub next_lease_seconds: i64,
        pub next_type_prefix: Option<String>,
    }
}

sql_function! {
    /// `cogo.complete_next`: a result and the next claim, in one transaction.
    pub struct CompleteNext => "complete_next" -> Value {
        @flatten pub complete: Complete,
        @flatten pub next: NextClaim,
    }
}

sql_function! {
    /// `cogo.complete_many_next`: the batch form of `complete_next`.
    pub struct CompleteManyNext => "complete_many_next" -> Value {
        @flatten pub results: CompleteMany,
        @flatten pub next: NextClaim,
    }
}

/// `task.result`'s optional `next: {limit?, leaseSeconds?, typePrefix?}`;
/// the second value says whether it asked for a batch (`limit`).
pub fn next_args(body: &Body) -> Result<Option<(NextClaim, bool)>, ApiError> {
    let Some(next) = body.opt_object("next")? else { return Ok(None) };
    let next = Body::from_map(next);
    let parse = || -> Result<(NextClaim, bool), ApiError> {
        let (min, max, default) = LEASE_SECONDS;
        let limit = next.opt_int(&["limit"], 1, MAX_CLAIM_BATCH)?;
        let claim = NextClaim {
            next_limit: limit.unwrap_or(1),
            next_lease_seconds: next.opt_int(&["leaseSeconds"], min, max)?.unwrap_or(default),
            next_type_prefix: next.opt_str(&["typePrefix"], MAX_NAME)?,
        };
        Ok((claim, limit.is_some()))
    };
    parse().map(Some).map_err(|e| prefix_field(e, "next"))
}

/// One result of `task.result`: `{jobId, type?, ok, result?, error?,
/// artifact?, artifacts?, leaseToken?}`. `type` is informational (the COGO
/// clients send the job's type); it is validated as a name, never compared.
pub fn result_args(body: &Body) -> Result<Complete, ApiError> {
    let job_id = body.req_uuid("jobId")?;
    body.opt_str(&["type"], MAX_NAME)?;
    let ok = body.req_bool("ok")?;
    let token = body.opt_uuid(&["leaseToken"])?;
    let mut result = body.opt_value(&["result"]);
    let artifacts = artifacts(body)?;
    if !artifacts.is_empty() {
        let mut merged = match result.take() {
            Some(Value::Object(m)) => m,
            Some(other) => Map::from_iter([("value".to_string(), other)]),
            None => Map::new(),
        };
        merged.insert("artifacts".into(), Value::Array(artifacts));
        result = Some(Value::Object(merged));
    }
    let error = if ok { None } else { Some(body.opt_value(&["error"]).unwrap_or_else(|| json!("failed"))) };
    Ok(Complete { job_id, ok, result, error, lease_token: token, executor_id: None })
}

fn artifacts(body: &Body) -> Result<Vec<Value>, ApiError> {
    let mut all = Vec::new();
    if let Some(one) = body.opt_value(&["artifact"]) {
        all.push(one);
    }
    all.extend(body.opt_array("artifacts")?.unwrap_or_default());
    for (i, a) in all.iter().enumerate() {
        let named = a.get("name").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
        if !a.is_object() || !named {
            return Err(invalid(&format!("artifacts[{i}]"), "an object with a name"));
        }
    }
    Ok(all)
}

/// The batch form `{results: [...]}`, each item as in [`result_args`].
pub fn result_batch(body: &Body) -> Result<Option<Vec<Complete>>, ApiError> {
    let Some(items) = body.opt_array("results")? else { return Ok(None) };
    if items.is_empty() || items.len() > MAX_RESULT_BATCH {
        return Err(invalid("results", &format!("an array of 1..{MAX_RESULT_BATCH} results")));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(map) => {
                result_args(&Body::from_map(map)).map_err(|e| prefix_field(e, &format!("results[{i}]")))
            }
            _ => Err(invalid(&format!("results[{i}]"), "an object")),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn prefix_field(mut e: ApiError, prefix: &str) -> ApiError {
    if let Some(field) = e.details.as_ref().and_then(|d| d.get("field")).and_then(Value::as_str) {
        let full = format!("{prefix}.{field}");
        e.message = e.message.replacen(field, &full, 1);
        e.details = Some(json!({ "field": full }));
    }
    e
}

sql_function! {
    /// `cogo.progress`: a running job's progress and current step.
    pub struct Progress => "progress" -> Value {
        pub job_id: String,
        pub lease_token: Option<String>,
        pub progress: Option<Value>,
        pub step: Option<String>,
        pub executor_id: Option<String>,
    }
}

/// `task.progress` `{jobId, leaseToken?, progress?, step?, data?, delta?}`.
pub fn progress_args(body: &Body) -> Result<Progress, ApiError> {
    let job_id = body.req_uuid("jobId")?;
    let token = body.opt_uuid(&["leaseToken"])?;
    let mut progress = Map::new();
    if let Some(p) = body.opt_value(&["progress", "pct"]) {
        if !p.as_f64().is_some_and(|n| (0.0..=100.0).contains(&n)) {
            return Err(invalid("progress", "a number in 0..100"));
        }
        progress.insert("pct".into(), p);
    }
    if let Some(d) = body.opt_value(&["data"]) {
        progress.insert("data".into(), d);
    }
    if let Some(delta) = body.opt_str(&["delta"], 64 * 1024)? {
        progress.insert("delta".into(), delta.into());
    }
    let step = body.opt_str(&["step"], MAX_NAME)?;
    let progress = (!progress.is_empty()).then_some(Value::Object(progress));
    Ok(Progress { job_id, lease_token: token, progress, step, executor_id: None })
}

sql_function! {
    /// `cogo.extend_lease`: a running job's lease, extended.
    pub struct ExtendLease => "extend_lease" -> Value {
        pub job_id: String,
        pub lease_token: Option<String>,
        pub lease_seconds: i64,
        pub executor_id: Option<String>,
    }
}

/// `task.heartbeat` `{jobId, leaseToken?, leaseSeconds?}`.
pub fn heartbeat_args(body: &Body) -> Result<ExtendLease, ApiError> {
    let job_id = body.req_uuid("jobId")?;
    let token = body.opt_uuid(&["leaseToken"])?;
    let (min, max, default) = LEASE_SECONDS;
    let lease = body.opt_int(&["leaseSeconds"], min, max)?.unwrap_or(default);
    Ok(ExtendLease { job_id, lease_token: token, lease_seconds: lease, executor_id: None })
}

sql_function! {
    /// `cogo.cancel`: a queued job cancelled, a running one asked to stop;
    /// with an owner, only that owner's job.
    pub struct Cancel => "cancel" -> Value {
        pub job_id: String,
        pub owner_id: Option<String>,
    }
}

/// `task.cancel` `{jobId}`.
pub fn cancel_args(body: &Body) -> Result<Cancel, ApiError> {
    Ok(Cancel { job_id: body.req_uuid("jobId")?, owner_id: None })
}

sql_function! {
    /// `cogo.upsert_heartbeat`: a worker's presence row.
    pub struct UpsertHeartbeat => "upsert_heartbeat" -> Value {
        pub worker_id: String,
        pub executor_id: String,
        pub status: String,
        pub agent_id: String,
        pub version: Option<String>,
        pub running: Option<i64>,
        pub capacity: Option<i64>,
        pub metadata: Option<Value>,
        /// Who owns the row (none: the platform, which writes any).
        pub principal: Option<String>,
    }
}

sql_function! {
    /// `cogo.reap`: expired leases back to the queue, or to the dead letters.
    pub struct Reap => "reap" -> Value {
        pub max_lost_leases: u32,
    }
}

sql_function! {
    /// `cogo.compact_job_counts`: folds ended sessions' job counters together.
    pub struct CompactJobCounts => "compact_job_counts" -> Value {}
}

/// `workers/heartbeat` `{agentId, executorId, status, workerId?, version?,
/// running?, capacity?, metadata?}`; a worker without `workerId` is known by
/// its `agentId`.
pub fn worker_heartbeat_args(body: &Body) -> Result<UpsertHeartbeat, ApiError> {
    let agent_id = body.req_str("agentId", MAX_NAME)?;
    let executor_id = body.req_str("executorId", MAX_NAME)?;
    let status = body.req_str("status", 50)?;
    let worker_id = body.opt_str(&["workerId"], MAX_NAME)?.unwrap_or_else(|| agent_id.clone());
    Ok(UpsertHeartbeat {
        worker_id,
        executor_id,
        status,
        agent_id,
        version: body.opt_str(&["version"], 100)?,
        running: body.opt_int(&["running"], 0, 1_000_000)?,
        capacity: body.opt_int(&["capacity"], 0, 1_000_000)?,
        metadata: metadata(body)?,
        principal: None,
    })
}

fn metadata(body: &Body) -> Result<Option<Value>, ApiError> {
    let Some(metadata) = body.opt_object("metadata")? else { return Ok(None) };
    if metadata.len() > MAX_METADATA_KEYS {
        return Err(invalid("metadata", &format!("an object of at most {MAX_METADATA_KEYS} keys")));
    }
    let metadata = Value::Object(metadata);
    match metadata.to_string().len() {
        size if size > MAX_METADATA_BYTES => Err(field_too_large("metadata", size, MAX_METADATA_BYTES)),
        _ => Ok(Some(metadata)),
    }
}

/// A heartbeat as the presence streams show it: the worker's row (who owns
/// it is the platform's business, not the subscribers').
pub fn presence_row(args: &UpsertHeartbeat, outcome: &Value) -> Value {
    json!({
        "worker_id": args.worker_id, "executor_id": args.executor_id, "status": args.status,
        "agent_id": args.agent_id, "version": args.version, "running": args.running,
        "capacity": args.capacity, "metadata": args.metadata, "last_seen_at": outcome["lastSeenAt"],
    })
}

/// Errors the queue functions raise on purpose (`RAISE SQLSTATE 'PTxyz'
/// USING MESSAGE = '<code>'`) become our error with that status and code;
/// anything else is an upstream failure.
pub fn queue_error(e: UpstreamError) -> ApiError {
    if let UpstreamError::Status { status, error } = &e {
        if error.code.as_deref().is_some_and(|c| c.starts_with("PT")) {
            let code = match error.message.as_deref() {
                Some("job_not_found") => "job_not_found",
                Some("lease_lost") => "lease_lost",
                Some("not_running") => "not_running",
                Some("already_finished") => "already_finished",
                Some("dead_letter_not_found") => "dead_letter_not_found",
                Some("artifact_not_found") => "artifact_not_found",
                Some("worker_forbidden") => "worker_forbidden",
                Some("project_not_found") => "project_not_found",
                _ => "conflict",
            };
            let detail = error.details.as_ref().and_then(Value::as_str).unwrap_or(code).to_string();
            return ApiError::new(*status, code, detail);
        }
    }
    e.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::body::DEFAULT_MAX_BODY;
    use crate::postgrest::PgrstError;

    fn body(s: &str) -> Body {
        Body::parse(s.as_bytes(), DEFAULT_MAX_BODY).unwrap()
    }

    const JOB: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

    #[test]
    fn assign_maps_client_fields() {
        let args = assign_args(
            &body(r#"{"type":"t","executorId":"e","idempotency_key":"k","priority":5}"#),
            None,
            Some("u"),
            "s",
        )
        .unwrap();
        assert_eq!(args.job_type, "t");
        assert_eq!(args.idempotency_key.as_deref(), Some("k"));
        assert_eq!(args.priority, Some(5));
        assert_eq!(args.payload, json!({}));
        assert_eq!(args.owner_id.as_deref(), Some("u"));
        assert_eq!(args.idempotency_scope.as_deref(), Some("s"));
        let args = assign_args(&body(r#"{"type":"t","executorId":"e"}"#), Some("hdr"), None, "s").unwrap();
        assert_eq!(args.idempotency_key.as_deref(), Some("hdr"));
    }

    #[test]
    fn assign_rejects_bad_fields() {
        let e = assign_args(&body(r#"{"executorId":"e"}"#), None, None, "s").unwrap_err();
        assert_eq!((e.status, e.message.as_str()), (400, "type is required"));
        let e = assign_args(&body(r#"{"type":"t","executorId":"e","runAt":"tomorrow"}"#), None, None, "s").unwrap_err();
        assert_eq!(e.details, Some(json!({"field": "runAt"})));
        let e = assign_args(&body(r#"{"type":"t","executorId":"e","maxAttempts":0}"#), None, None, "s").unwrap_err();
        assert_eq!(e.message, "maxAttempts must be an integer in 1..100");
    }

    #[test]
    fn claim_defaults_and_batches() {
        let r = claim_args(&body(r#"{"executorId":"e","workerId":"w"}"#)).unwrap();
        assert_eq!((r.claim.lease_seconds, r.claim.limit, r.batch, r.wait_seconds), (60, 1, false, 0));
        let r = claim_args(&body(r#"{"executorId":"e","workerId":"w","limit":50,"waitSeconds":20}"#)).unwrap();
        assert_eq!((r.claim.limit, r.batch, r.wait_seconds), (50, true, 20));
        for bad in [
            r#""leaseSeconds":14"#,
            r#""leaseSeconds":601"#,
            r#""limit":0"#,
            r#""limit":101"#,
            r#""waitSeconds":21"#,
            r#""waitSeconds":-1"#,
            r#""waitSeconds":"5""#,
        ] {
            let e = claim_args(&body(&format!(r#"{{"executorId":"e","workerId":"w",{bad}}}"#))).unwrap_err();
            assert_eq!(e.status, 400, "{bad}");
        }
    }

    #[test]
    fn next_is_optional_and_checked() {
        assert_eq!(next_args(&body(r#"{"jobId":"x"}"#)).unwrap(), None);
        let (next, batch) = next_args(&body(r#"{"next":{}}"#)).unwrap().unwrap();
        assert_eq!((next.next_limit, next.next_lease_seconds, next.next_type_prefix, batch), (1, 60, None, false));
        let (next, batch) =
            next_args(&body(r#"{"next":{"limit":5,"leaseSeconds":30,"typePrefix":"a."}}"#)).unwrap().unwrap();
        assert_eq!((next.next_limit, next.next_lease_seconds, batch), (5, 30, true));
        assert_eq!(next.next_type_prefix.as_deref(), Some("a."));
        let e = next_args(&body(r#"{"next":{"limit":0}}"#)).unwrap_err();
        assert_eq!((e.status, e.details.unwrap()["field"].clone()), (400, json!("next.limit")));
        assert_eq!(next_args(&body(r#"{"next":3}"#)).unwrap_err().status, 400);
    }

    #[test]
    fn presence_metadata_is_bounded() {
        let heartbeat = |metadata: &str| {
            worker_heartbeat_args(&body(&format!(
                r#"{{"agentId":"a","executorId":"e","status":"idle","metadata":{metadata}}}"#
            )))
        };
        assert_eq!(heartbeat(r#"{"host":"h"}"#).unwrap().metadata, Some(json!({"host": "h"})));
        let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(MAX_METADATA_BYTES));
        assert_eq!(heartbeat(&big).unwrap_err().status, 413);
        let keys: Vec<String> = (0..=MAX_METADATA_KEYS).map(|i| format!(r#""k{i}":1"#)).collect();
        assert_eq!(heartbeat(&format!("{{{}}}", keys.join(","))).unwrap_err().status, 400);
        let mut args = heartbeat("{}").unwrap();
        args.principal = Some("worker:w".into());
        assert!(presence_row(&args, &json!({"lastSeenAt": "t"})).get("principal").is_none());
    }

    #[test]
    fn calls_serialise_to_the_sql_argument_names() {
        let enqueue = serde_json::to_value(Enqueue::new("t", "e", json!({}), Some("u"))).unwrap();
        assert_eq!(
            enqueue,
            json!({"p_type": "t", "p_executor_id": "e", "p_payload": {}, "p_owner_id": "u",
                   "p_idempotency_key": null, "p_idempotency_scope": null, "p_priority": null, "p_run_at": null,
                   "p_max_attempts": null, "p_backoff_base_ms": null, "p_backoff_cap_ms": null})
        );
        // complete_many takes the executor scope once, beside the items.
        let item = result_args(&body(&format!(r#"{{"jobId":"{JOB}","type":"t","ok":true}}"#))).unwrap();
        // `type` is informational: optional, but a name when sent.
        assert_eq!(result_args(&body(&format!(r#"{{"jobId":"{JOB}","ok":true}}"#))).unwrap(), item);
        let e = result_args(&body(&format!(r#"{{"jobId":"{JOB}","type":7,"ok":true}}"#))).unwrap_err();
        assert_eq!(e.status, 400);
        let batch = serde_json::to_value(CompleteMany { results: vec![item], executor_id: Some("e".into()) }).unwrap();
        assert_eq!(
            batch,
            json!({"p_results": [{"p_job_id": JOB, "p_ok": true, "p_result": null, "p_error": null,
                                  "p_lease_token": null}], "p_executor_id": "e"})
        );
    }

    #[test]
    fn claimed_job_exposes_lease() {
        let job = claimed_job(json!({"id": JOB, "lease_token": "t", "lease_until": "2026-01-01T00:00:00Z"}));
        assert_eq!(job["leaseToken"], "t");
        assert_eq!(job["leaseUntil"], "2026-01-01T00:00:00Z");
        assert!(job.get("lease_token").is_none());
    }

    #[test]
    fn result_folds_artifacts_into_result() {
        let b = body(&format!(
            r#"{{"jobId":"{JOB}","type":"t","ok":true,"result":{{"n":1}},"artifact":{{"name":"a.png","url":"u","size":3}}}}"#
        ));
        let args = result_args(&b).unwrap();
        assert_eq!(args.result, Some(json!({"n": 1, "artifacts": [{"name": "a.png", "url": "u", "size": 3}]})));
        assert_eq!(args.error, None);
        let b = body(&format!(r#"{{"jobId":"{JOB}","type":"t","ok":false}}"#));
        assert_eq!(result_args(&b).unwrap().error, Some(json!("failed")));
    }

    #[test]
    fn result_batch_names_the_bad_item() {
        let b = body(&format!(
            r#"{{"results":[{{"jobId":"{JOB}","type":"t","ok":true}},{{"jobId":"x","type":"t","ok":true}}]}}"#
        ));
        let e = result_batch(&b).unwrap_err();
        assert_eq!(e.message, "results[1].jobId must be a UUID");
        assert_eq!(result_batch(&body(r#"{"results":[]}"#)).unwrap_err().status, 400);
        assert!(result_batch(&body("{}")).unwrap().is_none());
    }

    #[test]
    fn progress_checks_range() {
        let e = progress_args(&body(&format!(r#"{{"jobId":"{JOB}","progress":150}}"#))).unwrap_err();
        assert_eq!(e.message, "progress must be a number in 0..100");
        let args =
            progress_args(&body(&format!(r#"{{"jobId":"{JOB}","progress":50,"step":"s","delta":"hi"}}"#))).unwrap();
        assert_eq!(args.progress, Some(json!({"pct": 50, "delta": "hi"})));
    }

    #[test]
    fn queue_errors_keep_status_and_code() {
        let e = queue_error(UpstreamError::Status {
            status: 409,
            error: PgrstError {
                code: Some("PT409".into()),
                message: Some("lease_lost".into()),
                details: Some(json!("x")),
                hint: None,
            },
        });
        assert_eq!((e.status, e.code, e.message.as_str()), (409, "lease_lost", "x"));
        let e = queue_error(UpstreamError::Status {
            status: 500,
            error: PgrstError { code: Some("XX000".into()), ..Default::default() },
        });
        assert_eq!(e.status, 502);
    }
}
