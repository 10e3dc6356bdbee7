//! When an isolate fetches the project's JWKS, as a pure policy over what
//! it remembers (the clock is passed in): keys are fresh for 10 minutes
//! (Supabase serves them with max-age 600); a token naming a key the set
//! lacks refetches, at most every 10 s, so a rotation is picked up without
//! a deploy; after a failed fetch nothing is fetched for 30 s, whatever the
//! tokens name, so a failing endpoint costs one fetch per 30 s per isolate
//! and not one per request; and while a fetch is in flight, requests wait
//! for it rather than start their own (a request cannot await another's
//! I/O in workerd, so they wait on this state, not on the fetch).

use crate::auth::JwkSet;
use crate::ApiError;

pub const MAX_AGE_MS: i64 = 600_000;
/// An unknown kid refetches at most this often, so forged kids cannot
/// turn every request into a fetch.
pub const UNKNOWN_KID_REFETCH_MS: i64 = 10_000;
/// The negative cache: how long a failed fetch is not retried.
pub const FAILURE_RETRY_MS: i64 = 30_000;
/// A fetch in flight for longer is taken as abandoned (its request may
/// have ended), and the next request may start another.
pub const IN_FLIGHT_MAX_MS: i64 = 10_000;

/// What a request does about the key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Judge the token by what [`JwksCache::keys`] answers.
    Ready,
    /// Fetch the set: call [`JwksCache::begin`], then [`JwksCache::record`].
    Fetch,
    /// Another request is fetching it: ask again shortly.
    Wait,
}

#[derive(Debug, Clone, Default)]
pub struct JwksCache {
    /// The last set fetched successfully, and when.
    keys: Option<(JwkSet, i64)>,
    /// The last fetch: when, and whether it succeeded.
    last_attempt: Option<(i64, bool)>,
    /// When the fetch under way started.
    in_flight: Option<i64>,
}

impl JwksCache {
    /// What a request with a token naming `kid` does now.
    pub fn plan(&self, kid: &str, now_ms: i64) -> Plan {
        if self.keys.as_ref().is_some_and(|(set, at)| now_ms - at < MAX_AGE_MS && set.has(kid)) {
            return Plan::Ready;
        }
        if self.in_flight.is_some_and(|since| now_ms - since < IN_FLIGHT_MAX_MS) {
            return Plan::Wait;
        }
        let due = match self.last_attempt {
            None => true,
            Some((at, true)) => now_ms - at >= UNKNOWN_KID_REFETCH_MS,
            Some((at, false)) => now_ms - at >= FAILURE_RETRY_MS,
        };
        if due {
            Plan::Fetch
        } else {
            Plan::Ready
        }
    }

    /// A fetch starts: others wait for it.
    pub fn begin(&mut self, now_ms: i64) {
        self.in_flight = Some(now_ms);
    }

    /// Remembers a fetch: the set, or `None` when it failed (the last good
    /// set is kept).
    pub fn record(&mut self, fetched: Option<JwkSet>, now_ms: i64) {
        self.in_flight = None;
        self.last_attempt = Some((now_ms, fetched.is_some()));
        if let Some(set) = fetched {
            self.keys = Some((set, now_ms));
        }
    }

    /// The set to verify with: the last good one, even past its age while
    /// the endpoint fails (keys rotate rarely; refusing every token would
    /// be worse). 503 when there is none because the last fetch failed: the
    /// token may be fine, the outage is ours.
    pub fn keys(&self, now_ms: i64) -> Result<Option<&JwkSet>, ApiError> {
        match (&self.keys, self.last_attempt) {
            (Some((set, _)), _) => Ok(Some(set)),
            (None, Some((at, false))) => {
                let retry_secs = ((at + FAILURE_RETRY_MS - now_ms).max(1_000) + 999) / 1_000;
                Err(ApiError::new(503, "jwks_unavailable", "the project's signing keys (JWKS) cannot be fetched now")
                    .with_retryable(true)
                    .with_header("Retry-After", retry_secs.to_string()))
            }
            (None, _) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_800_000_000_000;

    fn set(kids: &[&str]) -> JwkSet {
        let key = p256::ecdsa::SigningKey::from_slice(&[3; 32]).unwrap();
        let jwk = serde_json::to_value(jwt_compact::jwk::JsonWebKey::from(key.verifying_key())).unwrap();
        let keys: Vec<_> = kids
            .iter()
            .map(|kid| {
                let mut key = jwk.clone();
                key["kid"] = (*kid).into();
                key
            })
            .collect();
        JwkSet::parse(serde_json::json!({ "keys": keys }).to_string().as_bytes()).unwrap()
    }

    #[test]
    fn fresh_keys_are_used_and_expire() {
        let mut cache = JwksCache::default();
        assert_eq!(cache.plan("a", T), Plan::Fetch);
        cache.record(Some(set(&["a"])), T);
        assert_eq!(cache.plan("a", T + MAX_AGE_MS - 1), Plan::Ready);
        assert_eq!(cache.plan("a", T + MAX_AGE_MS), Plan::Fetch);
        assert!(cache.keys(T).unwrap().is_some_and(|s| s.has("a")));
    }

    #[test]
    fn an_unknown_kid_refetches_at_most_every_10_s() {
        let mut cache = JwksCache::default();
        cache.record(Some(set(&["a"])), T);
        assert_eq!(cache.plan("rotated", T + UNKNOWN_KID_REFETCH_MS - 1), Plan::Ready);
        assert_eq!(cache.plan("rotated", T + UNKNOWN_KID_REFETCH_MS), Plan::Fetch);
    }

    #[test]
    fn a_failure_is_not_retried_for_30_s_whatever_kid_is_named() {
        let mut cache = JwksCache::default();
        cache.record(None, T);
        for kid in ["a", "b", "forged"] {
            assert_eq!(cache.plan(kid, T + FAILURE_RETRY_MS - 1), Plan::Ready, "{kid}");
        }
        assert_eq!(cache.plan("a", T + FAILURE_RETRY_MS), Plan::Fetch);
        let e = cache.keys(T + 5_500).unwrap_err();
        assert_eq!((e.status, e.code, e.retryable), (503, "jwks_unavailable", Some(true)));
        assert_eq!(e.headers, vec![("Retry-After".to_string(), "25".to_string())]);

        // With a set in hand, a failed refresh keeps it and also waits 30 s.
        let mut cache = JwksCache::default();
        cache.record(Some(set(&["a"])), T);
        cache.record(None, T + MAX_AGE_MS);
        assert_eq!(cache.plan("a", T + MAX_AGE_MS + FAILURE_RETRY_MS - 1), Plan::Ready);
        assert_eq!(cache.plan("new", T + MAX_AGE_MS + 1), Plan::Ready);
        assert!(cache.keys(T + MAX_AGE_MS + 1).unwrap().is_some_and(|s| s.has("a")));
        cache.record(Some(set(&["new"])), T + MAX_AGE_MS + FAILURE_RETRY_MS);
        assert_eq!(cache.plan("new", T + MAX_AGE_MS + FAILURE_RETRY_MS + 1), Plan::Ready);
    }

    #[test]
    fn requests_wait_for_the_fetch_in_flight_not_start_another() {
        let mut cache = JwksCache::default();
        assert_eq!(cache.plan("a", T), Plan::Fetch);
        cache.begin(T);
        assert_eq!(cache.plan("a", T + 5), Plan::Wait);
        assert_eq!(cache.plan("forged", T + IN_FLIGHT_MAX_MS - 1), Plan::Wait);
        cache.record(None, T + 50);
        assert_eq!(cache.plan("a", T + 60), Plan::Ready);
        assert!(cache.keys(T + 60).is_err());

        // A fetch whose request never came back does not block forever.
        let mut cache = JwksCache::default();
        cache.begin(T);
        assert_eq!(cache.plan("a", T + IN_FLIGHT_MAX_MS), Plan::Fetch);
    }

    #[test]
    fn nothing_fetched_yet_is_no_keys() {
        assert!(JwksCache::default().keys(T).unwrap().is_none());
    }
}
