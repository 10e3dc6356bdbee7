//! Configuration, read once from the worker's environment into a typed
//! value. Every variable and secret the bundle reads is listed here (and in
//! the README):
//!
//! | name | kind | default | meaning |
//! |---|---|---|---|
//! | `SUPABASE_URL` | var | — | project URL; PostgREST is `<SUPABASE_URL>/rest/v1` |
//! | `POSTGREST_URL` | var | — | a bare PostgREST base URL; overrides `SUPABASE_URL` |
//! | `SUPABASE_SERVICE_ROLE_KEY` | secret | — (required) | key the platform acts with |
//! | `POSTGREST_TIMEOUT_MS` | var | 10000 | give up on a PostgREST call after this long |
//! | `MAX_BODY_BYTES` | var | 1048576 | larger request bodies answer 413 |
//! | `REAPER_MAX_LOST_LEASES` | var | 3 | a job whose lease expires this often is dead-lettered |
//! | `IDEMPOTENCY_TTL_SECONDS` | var | 86400 | how long a stored Idempotency-Key response is replayed |
//!
//! A missing required value fails every request with a message naming it,
//! so a half-configured deployment is noticed at the first request.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// PostgREST base URL without a trailing slash.
    pub postgrest_url: String,
    pub service_role_key: String,
    pub postgrest_timeout_ms: u32,
    pub max_body_bytes: usize,
    pub max_lost_leases: u32,
    pub idempotency_ttl_seconds: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub missing: Vec<&'static str>,
    pub invalid: Vec<(&'static str, String)>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!(
                "missing configuration: {} (set vars in wrangler.toml, secrets with `wrangler secret put`, locally in .dev.vars)",
                self.missing.join(", ")
            ));
        }
        for (name, why) in &self.invalid {
            parts.push(format!("{name}: {why}"));
        }
        f.write_str(&parts.join("; "))
    }
}

impl Config {
    /// Reads every setting through `get`, which answers a variable's or a
    /// secret's value by name. Empty values count as missing.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let mut err = ConfigError { missing: Vec::new(), invalid: Vec::new() };

        let postgrest_url = match (get("POSTGREST_URL"), get("SUPABASE_URL")) {
            (Some(url), _) => url.trim_end_matches('/').to_string(),
            (None, Some(url)) => format!("{}/rest/v1", url.trim_end_matches('/')),
            (None, None) => {
                err.missing.push("SUPABASE_URL");
                String::new()
            }
        };
        if !postgrest_url.is_empty() && !postgrest_url.starts_with("http://") && !postgrest_url.starts_with("https://")
        {
            err.invalid.push(("SUPABASE_URL", "must start with http:// or https://".into()));
        }
        let service_role_key = get("SUPABASE_SERVICE_ROLE_KEY").unwrap_or_else(|| {
            err.missing.push("SUPABASE_SERVICE_ROLE_KEY");
            String::new()
        });
        let mut number = |name: &'static str, default: u32, min: u32, max: u32| match get(name) {
            None => default,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (min..=max).contains(&n) => n,
                _ => {
                    err.invalid.push((name, format!("must be {min}..{max}, got {v:?}")));
                    default
                }
            },
        };
        let postgrest_timeout_ms = number("POSTGREST_TIMEOUT_MS", 10_000, 100, 120_000);
        let max_body_bytes = number("MAX_BODY_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024) as usize;
        let max_lost_leases = number("REAPER_MAX_LOST_LEASES", 3, 1, 100);
        let idempotency_ttl_seconds = number("IDEMPOTENCY_TTL_SECONDS", 86_400, 60, 30 * 86_400);

        if err.missing.is_empty() && err.invalid.is_empty() {
            Ok(Config {
                postgrest_url,
                service_role_key,
                postgrest_timeout_ms,
                max_body_bytes,
                max_lost_leases,
                idempotency_ttl_seconds,
            })
        } else {
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn supabase_url_gains_rest_v1() {
        let c = Config::from_lookup(lookup(&[
            ("SUPABASE_URL", "https://abc.supabase.co/"),
            ("SUPABASE_SERVICE_ROLE_KEY", "k"),
        ]))
        .unwrap();
        assert_eq!(c.postgrest_url, "https://abc.supabase.co/rest/v1");
        assert_eq!(c.postgrest_timeout_ms, 10_000);
    }

    #[test]
    fn postgrest_url_wins() {
        let c = Config::from_lookup(lookup(&[
            ("SUPABASE_URL", "https://abc.supabase.co"),
            ("POSTGREST_URL", "http://127.0.0.1:3000/"),
            ("SUPABASE_SERVICE_ROLE_KEY", "k"),
        ]))
        .unwrap();
        assert_eq!(c.postgrest_url, "http://127.0.0.1:3000");
    }

    #[test]
    fn missing_and_invalid_are_all_named() {
        let e = Config::from_lookup(lookup(&[("SUPABASE_SERVICE_ROLE_KEY", " "), ("POSTGREST_TIMEOUT_MS", "5")]))
            .unwrap_err();
        assert_eq!(e.missing, vec!["SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY"]);
        assert_eq!(e.invalid.len(), 1);
        let text = e.to_string();
        assert!(text.contains("SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY"), "{text}");
        assert!(text.contains("POSTGREST_TIMEOUT_MS: must be 100..120000"), "{text}");
    }

    #[test]
    fn url_scheme_is_checked() {
        let e = Config::from_lookup(lookup(&[("SUPABASE_URL", "abc.supabase.co"), ("SUPABASE_SERVICE_ROLE_KEY", "k")]))
            .unwrap_err();
        assert_eq!(e.invalid[0].0, "SUPABASE_URL");
    }
}
