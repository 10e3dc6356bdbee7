//! Time as a value: callers pass "now" in as Unix milliseconds.

use chrono::{DateTime, SecondsFormat};

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-23T06:49:15.123Z`.
pub fn iso8601(unix_ms: i64) -> String {
    DateTime::from_timestamp_millis(unix_ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_millis() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_795_417_755_123), "2026-11-23T07:09:15.123Z");
    }
}
