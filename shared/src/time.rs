//! Time as a value: callers pass "now" in as Unix milliseconds.

use chrono::{DateTime, Datelike, SecondsFormat, Utc};

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-23T06:49:15.123Z`.
pub fn iso8601(unix_ms: i64) -> String {
    DateTime::from_timestamp_millis(unix_ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An RFC 3339 timestamp as the database will take it: in UTC (offsets
/// beyond PostgreSQL's ±15:59 are folded in) and in years 1 to 9999.
pub fn parse_timestamp(s: &str) -> Option<String> {
    let utc = DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc);
    (1..=9999).contains(&utc.year()).then(|| utc.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// Unix milliseconds of an RFC 3339 timestamp.
pub fn unix_millis(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_millis() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_795_417_755_123), "2026-11-23T07:09:15.123Z");
    }

    #[test]
    fn timestamps_are_normalised_to_what_the_database_takes() {
        assert_eq!(parse_timestamp("0118-03-05T10:29:14.89-19:10").as_deref(), Some("0118-03-06T05:39:14.890Z"));
        assert_eq!(parse_timestamp("2026-01-01T12:00:00.123456Z").as_deref(), Some("2026-01-01T12:00:00.123456Z"));
        assert_eq!(parse_timestamp("0001-01-01T00:00:00+01:00"), None, "year 0");
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp("2026-01-01"), None, "a date alone is not a timestamp");
        assert_eq!(unix_millis("1970-01-01T00:00:01.5+00:00"), Some(1500));
    }
}
