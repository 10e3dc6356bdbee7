//! GCRA (the generic cell rate algorithm) as a pure function: the state is
//! one "theoretical arrival time" per (principal, route class), kept by the
//! caller (a Durable Object at the edge); the clock is passed in.

/// A limit of `per_minute` requests, all of which may come in one burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub per_minute: u32,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Decision {
    pub allowed: bool,
    /// The state to keep for the next request.
    pub tat_ms: f64,
    pub remaining: u32,
    /// Seconds until the full burst is available again.
    pub reset_secs: u64,
    /// Seconds to wait before retrying (0 when allowed).
    pub retry_after_secs: u64,
}

impl Limit {
    fn interval_ms(self) -> f64 {
        60_000.0 / f64::from(self.per_minute.max(1))
    }

    /// Decides one request arriving at `now_ms` given the stored `tat_ms`.
    pub fn check(self, tat_ms: Option<f64>, now_ms: f64) -> Decision {
        let interval = self.interval_ms();
        let tolerance = interval * f64::from(self.per_minute.max(1) - 1);
        let tat = tat_ms.unwrap_or(now_ms).max(now_ms);
        let secs = |ms: f64| (ms / 1000.0).ceil().max(0.0) as u64;
        if tat - now_ms > tolerance {
            return Decision {
                allowed: false,
                tat_ms: tat,
                remaining: 0,
                reset_secs: secs(tat - now_ms),
                retry_after_secs: secs(tat - now_ms - tolerance).max(1),
            };
        }
        let new_tat = tat + interval;
        let remaining = ((now_ms + tolerance + interval - new_tat) / interval).floor().max(0.0) as u32;
        Decision { allowed: true, tat_ms: new_tat, remaining, reset_secs: secs(new_tat - now_ms), retry_after_secs: 0 }
    }
}

impl Decision {
    /// `RateLimit-*` headers (and `Retry-After` when refused).
    pub fn headers(&self, limit: Limit) -> Vec<(String, String)> {
        let mut h = vec![
            ("RateLimit-Limit".to_string(), limit.per_minute.to_string()),
            ("RateLimit-Remaining".to_string(), self.remaining.to_string()),
            ("RateLimit-Reset".to_string(), self.reset_secs.to_string()),
        ];
        if !self.allowed {
            h.push(("Retry-After".to_string(), self.retry_after_secs.to_string()));
        }
        h
    }
}

/// Whose budget an anonymous request spends: its client address
/// (`CF-Connecting-IP`, which Cloudflare's edge sets and callers cannot
/// override there), so one anonymous client cannot exhaust everyone's; where
/// no address is known (local runs), the isolate's own bucket.
pub fn anonymous_caller(client_ip: Option<&str>, isolate_id: &str) -> String {
    let address = client_ip.map(str::trim).filter(|ip| {
        (2..=45).contains(&ip.len()) && ip.bytes().all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':')
    });
    match address {
        Some(ip) => format!("anon:ip:{}", ip.to_ascii_lowercase()),
        None => format!("anon:isolate:{isolate_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_burst_then_refusal_then_recovery() {
        let limit = Limit { per_minute: 60 }; // one per second, burst of 60
        let mut tat = None;
        for i in 0..60 {
            let d = limit.check(tat, 0.0);
            assert!(d.allowed, "request {i}");
            assert_eq!(d.remaining, 59 - i);
            tat = Some(d.tat_ms);
        }
        let refused = limit.check(tat, 0.0);
        assert!(!refused.allowed);
        assert_eq!((refused.remaining, refused.retry_after_secs, refused.reset_secs), (0, 1, 60));
        assert!(!limit.check(tat, 999.0).allowed, "not before Retry-After");
        let later = limit.check(tat, 1000.0);
        assert!(later.allowed, "after Retry-After one more is allowed");
        assert_eq!(later.remaining, 0);
    }

    #[test]
    fn idle_time_refills() {
        let limit = Limit { per_minute: 10 };
        let d = limit.check(Some(0.0), 600_000.0);
        assert!(d.allowed);
        assert_eq!(d.remaining, 9);
    }

    #[test]
    fn headers_name_limit_remaining_reset_and_retry_after() {
        let limit = Limit { per_minute: 1 };
        let first = limit.check(None, 0.0);
        assert_eq!(first.headers(limit).len(), 3);
        let second = limit.check(Some(first.tat_ms), 0.0);
        let h = second.headers(limit);
        assert_eq!(h[3], ("Retry-After".to_string(), "60".to_string()));
    }

    #[test]
    fn anonymous_callers_are_told_apart_by_address() {
        assert_eq!(anonymous_caller(Some("203.0.113.7"), "i"), "anon:ip:203.0.113.7");
        assert_eq!(anonymous_caller(Some("2001:DB8::1"), "i"), "anon:ip:2001:db8::1");
        assert_ne!(anonymous_caller(Some("203.0.113.7"), "i"), anonymous_caller(Some("203.0.113.8"), "i"));
        for junk in [None, Some(""), Some("x|y"), Some("203.0.113.7, 10.0.0.1")] {
            assert_eq!(anonymous_caller(junk, "i"), "anon:isolate:i", "{junk:?}");
        }
    }
}
