//! The `Prefer` header (v13's `Preferences.hs`): the first value of each
//! preference wins, across headers; `Preference-Applied` echoes what was
//! honoured, in PostgREST's order.

use std::collections::HashSet;

use axum::http::HeaderMap;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resolution {
    Merge,
    Ignore,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Return {
    Representation,
    Minimal,
    HeadersOnly,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Count {
    Exact,
    Planned,
    Estimated,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tx {
    Commit,
    Rollback,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Missing {
    Default,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Handling {
    Strict,
    Lenient,
}

#[derive(Debug, Default, Clone)]
pub struct Prefer {
    pub resolution: Option<Resolution>,
    pub ret: Option<Return>,
    pub count: Option<Count>,
    pub tx: Option<Tx>,
    pub missing: Option<Missing>,
    pub handling: Option<Handling>,
    pub timezone: Option<String>,
    pub max_affected: Option<i64>,
    /// Preferences nobody knows (PGRST122 with `handling=strict`).
    pub invalid: Vec<String>,
}

/// `tx_allowed`: `db-tx-end` is `*-allow-override`; `timezones`: the names
/// `timezone=` may take.
pub fn parse(headers: &HeaderMap, tx_allowed: bool, timezones: &HashSet<String>) -> Prefer {
    let mut p = Prefer::default();
    let values: Vec<String> = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    for v in &values {
        let known = match v.as_str() {
            "resolution=merge-duplicates" => set(&mut p.resolution, Resolution::Merge),
            "resolution=ignore-duplicates" => set(&mut p.resolution, Resolution::Ignore),
            "return=representation" => set(&mut p.ret, Return::Representation),
            "return=minimal" => set(&mut p.ret, Return::Minimal),
            "return=headers-only" => set(&mut p.ret, Return::HeadersOnly),
            "count=exact" => set(&mut p.count, Count::Exact),
            "count=planned" => set(&mut p.count, Count::Planned),
            "count=estimated" => set(&mut p.count, Count::Estimated),
            // Known either way; honoured only when db-tx-end allows it.
            "tx=commit" | "tx=rollback" => {
                if tx_allowed {
                    set(&mut p.tx, if v == "tx=commit" { Tx::Commit } else { Tx::Rollback });
                }
                true
            }
            "missing=default" => set(&mut p.missing, Missing::Default),
            "missing=null" => set(&mut p.missing, Missing::Null),
            "handling=strict" => set(&mut p.handling, Handling::Strict),
            "handling=lenient" => set(&mut p.handling, Handling::Lenient),
            other => {
                if let Some(tz) = other.strip_prefix("timezone=").filter(|tz| timezones.contains(*tz)) {
                    if p.timezone.is_none() {
                        p.timezone = Some(tz.to_string());
                    }
                    true
                } else if let Some(n) = other.strip_prefix("max-affected=") {
                    if p.max_affected.is_none() {
                        p.max_affected = n.parse().ok();
                    }
                    true
                } else {
                    false
                }
            }
        };
        if !known {
            p.invalid.push(v.clone());
        }
    }
    p
}

/// Keeps the first value; always "known".
fn set<T>(slot: &mut Option<T>, v: T) -> bool {
    if slot.is_none() {
        *slot = Some(v);
    }
    true
}

/// Which preferences a response echoes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo {
    pub resolution: bool,
    pub missing: bool,
    pub ret: bool,
    pub max_affected: bool,
}

impl Prefer {
    /// `Preference-Applied`, or `None` when nothing applies.
    pub fn applied(&self, echo: Echo) -> Option<String> {
        let mut out: Vec<String> = Vec::new();
        if echo.resolution {
            out.extend(self.resolution.map(|r| match r {
                Resolution::Merge => "resolution=merge-duplicates".into(),
                Resolution::Ignore => "resolution=ignore-duplicates".into(),
            }));
        }
        if echo.missing {
            out.extend(self.missing.map(|m| match m {
                Missing::Default => "missing=default".into(),
                Missing::Null => "missing=null".into(),
            }));
        }
        if echo.ret {
            out.extend(self.ret.map(|r| match r {
                Return::Representation => "return=representation".into(),
                Return::Minimal => "return=minimal".into(),
                Return::HeadersOnly => "return=headers-only".into(),
            }));
        }
        out.extend(self.count.map(|c| match c {
            Count::Exact => "count=exact".into(),
            Count::Planned => "count=planned".into(),
            Count::Estimated => "count=estimated".into(),
        }));
        out.extend(self.tx.map(|t| match t {
            Tx::Commit => "tx=commit".into(),
            Tx::Rollback => "tx=rollback".into(),
        }));
        out.extend(self.handling.map(|h| match h {
            Handling::Strict => "handling=strict".into(),
            Handling::Lenient => "handling=lenient".into(),
        }));
        out.extend(self.timezone.as_ref().map(|tz| format!("timezone={tz}")));
        if echo.max_affected && self.handling == Some(Handling::Strict) {
            out.extend(self.max_affected.map(|n| format!("max-affected={n}")));
        }
        (!out.is_empty()).then(|| out.join(", "))
    }

    /// Whether the count needs counting in SQL (planned counts come from
    /// the planner alone).
    pub fn counts(&self) -> bool {
        matches!(self.count, Some(Count::Exact | Count::Estimated))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("prefer", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn first_value_wins_across_headers() {
        let p = parse(
            &headers(&["resolution=ignore-duplicates", "resolution=merge-duplicates, count=exact"]),
            true,
            &HashSet::new(),
        );
        assert_eq!(p.resolution, Some(Resolution::Ignore));
        assert_eq!(p.count, Some(Count::Exact));
    }

    #[test]
    fn tx_only_when_overridable_and_unknowns_collected() {
        let p = parse(&headers(&["tx=rollback, anything, max-affected=5, handling=strict"]), false, &HashSet::new());
        assert_eq!(p.tx, None);
        assert_eq!(p.invalid, vec!["anything".to_string()]);
        assert_eq!(p.max_affected, Some(5));
        assert_eq!(
            p.applied(Echo { max_affected: true, ..Default::default() }).as_deref(),
            Some("handling=strict, max-affected=5")
        );
        let p = parse(&headers(&["return=representation,tx=rollback,missing=default"]), true, &HashSet::new());
        assert_eq!(
            p.applied(Echo { ret: true, missing: true, ..Default::default() }).as_deref(),
            Some("missing=default, return=representation, tx=rollback")
        );
    }
}
