//! metrics-history: figures per step over a trailing window, from the
//! per-minute rollup of the event log (`cogo.metrics_history`), and the
//! cron's fold that keeps the rollup (`cogo.fold_job_minutes`).
//! The rollup's unit is the minute, so steps are whole minutes; the window
//! holds at most a day, the rollup's reach, and a whole number of steps.

use crate::http::error::ApiError;
use crate::http::query::{invalid, Query};
use crate::postgrest::sql_function;

pub const DEFAULT_WINDOW_SECS: i64 = 3600;
pub const DEFAULT_STEP_SECS: i64 = 60;
pub const MAX_WINDOW_SECS: i64 = 86_400;
pub const MAX_STEP_SECS: i64 = 3600;
/// The rollup's unit.
pub const MINUTE: i64 = 60;

sql_function! {
    /// `cogo.metrics_history`: one point per step, oldest first.
    pub struct MetricsHistory => "metrics_history" -> serde_json::Value {
        pub window_seconds: i64,
        pub step_seconds: i64,
    }
}

sql_function! {
    /// `cogo.fold_job_minutes`: folds the minutes ended over a minute ago
    /// into the rollup.
    pub struct FoldJobMinutes => "fold_job_minutes" -> serde_json::Value {}
}

/// A duration as `90s`, `15m`, `1h` or plain seconds.
fn seconds(raw: &str) -> Option<i64> {
    let (digits, unit) = match raw.char_indices().last()? {
        (i, 's') => (&raw[..i], 1),
        (i, 'm') => (&raw[..i], 60),
        (i, 'h') => (&raw[..i], 3600),
        _ => (raw, 1),
    };
    if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<i64>().ok().map(|n| n * unit)
}

fn duration(q: &Query, name: &str, default: i64, max: i64) -> Result<i64, ApiError> {
    let Some(raw) = q.raw(&[name]) else { return Ok(default) };
    let expected = format!("a whole number of minutes from 1m to {}h, such as 1h or 15m", max / 3600);
    match seconds(raw) {
        Some(s) if (MINUTE..=max).contains(&s) && s % MINUTE == 0 => Ok(s),
        _ => Err(invalid(name, &expected)),
    }
}

/// `metrics-history?window=1h&step=1m`.
pub fn metrics_history_args(q: &Query) -> Result<MetricsHistory, ApiError> {
    let window = duration(q, "window", DEFAULT_WINDOW_SECS, MAX_WINDOW_SECS)?;
    let step = duration(q, "step", DEFAULT_STEP_SECS, MAX_STEP_SECS)?;
    if window % step != 0 {
        return Err(invalid("window", "a whole number of steps"));
    }
    Ok(MetricsHistory { window_seconds: window, step_seconds: step })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(q: &str) -> Result<MetricsHistory, ApiError> {
        metrics_history_args(&Query::parse(Some(q)))
    }

    #[test]
    fn windows_and_steps_in_units() {
        let h = |window_seconds, step_seconds| MetricsHistory { window_seconds, step_seconds };
        assert_eq!(args("").unwrap(), h(3600, 60));
        assert_eq!(args("window=1h&step=1m").unwrap(), h(3600, 60));
        assert_eq!(args("window=24h&step=15m").unwrap(), h(86_400, 900));
        assert_eq!(args("window=90m&step=300s").unwrap(), h(5400, 300));
        assert_eq!(args("window=7200&step=3600").unwrap(), h(7200, 3600));
        let body = serde_json::to_string(&h(3600, 60)).unwrap();
        assert_eq!(body, r#"{"p_window_seconds":3600,"p_step_seconds":60}"#);
    }

    #[test]
    fn out_of_bounds_or_misaligned_is_a_400_naming_the_parameter() {
        for (q, name) in [
            ("window=0m", "window"),
            ("window=25h", "window"),
            ("window=90s", "window"),
            ("window=1d", "window"),
            ("window=-1h", "window"),
            ("window=1.5h", "window"),
            ("window=h", "window"),
            ("window=99999999999h", "window"),
            ("step=30s", "step"),
            ("step=2h", "step"),
            ("step=0", "step"),
            ("window=1h&step=7m", "window"),
        ] {
            let e = args(q).unwrap_err();
            assert_eq!((e.status, e.code), (400, "invalid_parameter"), "{q}");
            assert_eq!(e.details.as_ref().unwrap()["parameter"], name, "{q}");
        }
    }
}
