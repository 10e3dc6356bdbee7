//! Doorbells: the Durable Objects a change must wake. The SQL functions that
//! change jobs answer, under `"doorbells"`, only the listeners that exist
//! (migrations/functions/listeners.sql): jobs with event-stream subscribers
//! (their job hubs) and executors with long-polling claims waiting (their
//! claim hubs). A change nobody listens to rings nothing.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::postgrest::sql_function;
use crate::queue::tasks::Claim;

/// Hubs rung directly by one request (or one hop of a relay): with the
/// request's own PostgREST calls, well under the 50 subrequests a Workers
/// free-plan invocation may make.
pub const RINGS_PER_HOP: usize = 32;

/// One Durable Object to wake.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Bell {
    /// A job hub: its subscribers have new events.
    Job(String),
    /// An executor's claim hub: a job of that executor may be ready.
    Executor(String),
}

sql_function! {
    /// `cogo.watch_job`: a job hub registers (or renews) its subscribers.
    pub struct WatchJob => "watch_job" -> Value {
        pub job_id: String,
        pub seconds: i64,
    }
}

sql_function! {
    /// `cogo.claim_waiting`: a claim hub's claim for one waiting worker,
    /// registering the executor's waiters first when `wait_seconds` is set.
    /// Answers `{jobs, dueAt?}`.
    pub struct ClaimWaiting => "claim_waiting" -> Value {
        @flatten pub claim: Claim,
        pub wait_seconds: Option<i64>,
    }
}

sql_function! {
    /// `cogo.listeners_sweep`: drops lapsed registrations (the cron).
    pub struct ListenersSweep => "listeners_sweep" -> Value {}
}

/// Takes the `"doorbells"` out of a SQL function's answer, so it never
/// reaches the client: `{jobs: [...], executors: [...]}`, each optional.
pub fn take(answer: &mut Value) -> Vec<Bell> {
    let Some(bells) = answer.as_object_mut().and_then(|map| map.remove("doorbells")) else { return Vec::new() };
    let names = |key: &str| -> Vec<String> {
        bells[key].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
    };
    let mut all: Vec<Bell> = names("jobs").into_iter().map(Bell::Job).collect();
    all.extend(names("executors").into_iter().map(Bell::Executor));
    all
}

/// Takes the `"watched": true` flag out of a claimed job: its hub is to
/// be rung.
pub fn take_watched(job: &mut Value) -> Option<Bell> {
    let map = job.as_object_mut()?;
    match map.remove("watched") {
        Some(Value::Bool(true)) => map.get("id").and_then(Value::as_str).map(|id| Bell::Job(id.to_string())),
        _ => None,
    }
}

/// Splits `bells` (each rung once) into those this hop rings itself and the
/// rest, which it hands on to the first of them to ring onwards; so however
/// many hubs a change wakes, no invocation makes more than
/// `RINGS_PER_HOP + 1` subrequests for them.
pub fn plan(mut bells: Vec<Bell>) -> (Vec<Bell>, Vec<Bell>) {
    let mut seen = std::collections::HashSet::new();
    bells.retain(|bell| seen.insert(bell.clone()));
    if bells.len() <= RINGS_PER_HOP {
        return (bells, Vec::new());
    }
    let rest = bells.split_off(RINGS_PER_HOP);
    (bells, rest)
}

/// Whether a claim with type prefix `dry` coming back empty means that one
/// with `prefix` would too (a claim hub then skips it in that pass).
pub fn dry_covers(dry: &Option<String>, prefix: &Option<String>) -> bool {
    match (dry, prefix) {
        (None, _) => true,
        (Some(dry), Some(prefix)) => prefix.starts_with(dry.as_str()),
        (Some(_), None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn takes_the_doorbells_out_of_the_answer() {
        let mut answer = json!({"status": "queued", "doorbells": {"jobs": ["j1"], "executors": ["e1", "e2"]}});
        let bells = take(&mut answer);
        assert_eq!(answer, json!({"status": "queued"}));
        assert_eq!(bells, vec![Bell::Job("j1".into()), Bell::Executor("e1".into()), Bell::Executor("e2".into())]);
        let mut quiet = json!({"status": "succeeded"});
        assert!(take(&mut quiet).is_empty());
        assert_eq!(quiet, json!({"status": "succeeded"}));
    }

    #[test]
    fn watched_flag_is_removed_whatever_its_value() {
        let mut watched = json!({"id": "j1", "watched": true, "payload": {"watched": true}});
        assert_eq!(take_watched(&mut watched), Some(Bell::Job("j1".into())));
        assert_eq!(watched, json!({"id": "j1", "payload": {"watched": true}}));
        let mut plain = json!({"id": "j2"});
        assert_eq!(take_watched(&mut plain), None);
    }

    #[test]
    fn plan_rings_each_hub_once_and_relays_the_rest() {
        let bells: Vec<Bell> = (0..100).map(|i| Bell::Job(format!("j{}", i % 70))).collect();
        let (now, rest) = plan(bells);
        assert_eq!(now.len(), RINGS_PER_HOP);
        assert_eq!(rest.len(), 70 - RINGS_PER_HOP);
        assert!(now.iter().all(|b| !rest.contains(b)));
        let (few, none) = plan(vec![Bell::Executor("e".into()), Bell::Executor("e".into())]);
        assert_eq!((few.len(), none.len()), (1, 0));
    }

    #[test]
    fn an_empty_claim_covers_the_narrower_prefixes_only() {
        let (none, a, ab) = (None, Some("a.".to_string()), Some("a.b".to_string()));
        assert!(dry_covers(&none, &a) && dry_covers(&none, &none));
        assert!(dry_covers(&a, &ab) && dry_covers(&a, &a));
        assert!(!dry_covers(&ab, &a) && !dry_covers(&a, &none));
    }
}
