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
//! | `FIGMA_MAX_BODY_BYTES` | var | 1500000 | the same for figma-compat, whose bodies are whole Figma documents |
//! | `FIGMA_AGENT_EXECUTOR` | var | `figma-compat` | executor of the agent jobs behind figma-compat's `uui/*` services |
//! | `FIGMA_AGENT_WAIT_MS` | var | 5000 | how long a `uui/*` service call waits for the agent before answering 202 handoff |
//! | `REAPER_MAX_LOST_LEASES` | var | 3 | a job whose lease expires this often is dead-lettered |
//! | `IDEMPOTENCY_TTL_SECONDS` | var | 86400 | how long a stored Idempotency-Key response is replayed |
//! | `IDEMPOTENCY_LEASE_SECONDS` | var | 60 | how long a request in flight holds its Idempotency-Key; after a crash, a retry runs once it ends |
//! | `PUBLIC_URL` | var | — | origin of the links the bundle hands out (`https://edge.example.com`); without it only a loopback request's own origin is used (local development) |
//! | `SUPABASE_JWT_SECRET` | secret | — | HS256 key of the project's JWTs (user, worker, service tokens) |
//! | `EDGE_VERIFY_JWT` | var | 1 | 0 accepts no JWTs at all (keys and signatures only) |
//! | `JWT_AUDIENCE`, `JWT_ISSUER` | var | — | when set, a JWT's `aud` / `iss` must match |
//! | `JWKS_URL` | var | `<SUPABASE_URL>/auth/v1/.well-known/jwks.json` | ES256 and RS256 signing keys (Supabase's new JWT keys) |
//! | `SUPABASE_ANON_KEY`, `EDGE_PUBLISHABLE_KEYS` | secret | — | keys that act as anon (list: comma-separated) |
//! | `EDGE_SERVICE_KEYS` | secret | — | more keys that act as the service role (`sb_secret_...`) |
//! | `COLLAB_API_KEY` | secret | — | acts as the service role when `COLLAB_REQUIRE_JWT=0` |
//! | `COLLAB_REQUIRE_JWT` | var | 1 | 0 accepts `COLLAB_API_KEY` in place of a JWT |
//! | `EDGE_HMAC_SECRET` | secret | — | key of HMAC-signed requests (plugin, agents) |
//! | `EDGE_HMAC_SECRET_PREVIOUS` | secret | — | the key being rotated out: signatures made with it are still accepted |
//! | `EDGE_HMAC_SCHEMES` | var | `v1,path` | accepted signed-request forms, a comma list of `v1`, `path`, `body` (`body` signs no timestamp: add it only for clients that cannot move) |
//! | `EDGE_REQUIRE_HMAC` | var | 0 | 1: every request must also be signed |
//! | `EDGE_AUTH_OPTIONAL` | var | 0 | 1: no credential = service role. LOCAL DEVELOPMENT ONLY |
//! | `EDGE_CORS_ALLOW_ORIGINS` | var | — (none) | origins allowed by CORS, a comma list: `*`, exact origins (`https://app.example`), `null` (Figma plugin); `http://localhost:*` / `http://127.0.0.1:*` (any port; loopback hosts only) for local development |
//! | `EDGE_RATE_LIMIT_PER_MIN` | var | 600 | requests per minute per caller and endpoint (burst = the same); 0 = off; the service role is not limited |
//! | `STORAGE_BACKEND` | var | `r2` | where artifacts live: `r2` (the `ARTIFACTS` bucket binding) or `supabase` (Supabase Storage) |
//! | `SUPABASE_STORAGE_URL` | var | `<SUPABASE_URL>/storage/v1` | Supabase Storage's API, for `STORAGE_BACKEND=supabase` |
//! | `ARTIFACT_SIGNING_SECRET` | secret | — | HMAC key of artifact links (R2); the artifact endpoints answer 500 naming it when it is missing |
//! | `ARTIFACT_LINK_MAX_SECONDS` | var | 86400 | longest lifetime of a signed link; longer requests are clamped |
//! | `MAX_ARTIFACT_BYTES` | var | 104857600 | larger uploads answer 413 |
//! | `SSE_KEEPALIVE_MS` | var | 15000 | interval of keepalive frames on event streams |
//! | `CLAIM_MAX_WAIT_SECONDS` | var | 20 | longest a long-poll claim waits (a larger `waitSeconds` waits this long); 0 turns long polls off |
//! | `WORKERS_ACTIVE_WINDOW_MS` | var | 20000 | a worker whose last heartbeat is older has left (workers-stream) |
//! | `RETENTION_FINISHED_HOURS` | var | 168 | succeeded and cancelled jobs are deleted this long after they finished; 0 keeps them |
//! | `RETENTION_FAILED_HOURS` | var | 336 | the same for failed and dead jobs with their dead letters; 0 keeps them |
//! | `RETENTION_BATCH` | var | 1000 | jobs deleted per statement (1..10000) |
//! | `RETENTION_MAX_BATCHES` | var | 10 | batches per cron tick at most, so one tick stays short |
//!
//! A missing required value fails every request with a message naming it,
//! so a half-configured deployment is noticed at the first request.

use std::fmt;

use crate::auth::{AuthConfig, HmacSchemes};
use crate::http::cors::{self, AllowedOrigin};

/// figma-compat's body cap. Converting a document takes about 25 times its
/// size (compact JSON) in heap at peak, up to 42 for the smallest fixtures
/// (`shared/tests/figma_memory.rs`); 1.5 MB keeps a request, with its
/// body's copy on the JavaScript side, under 64 MB of the isolate's 128 MB.
pub const DEFAULT_FIGMA_MAX_BODY_BYTES: usize = 1_500_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// PostgREST base URL without a trailing slash.
    pub postgrest_url: String,
    pub service_role_key: String,
    pub postgrest_timeout_ms: u32,
    pub max_body_bytes: usize,
    pub figma_max_body_bytes: usize,
    pub figma_agent_executor: String,
    pub figma_agent_wait_ms: u32,
    pub max_lost_leases: u32,
    pub idempotency_ttl_seconds: u32,
    pub idempotency_lease_seconds: u32,
    /// Origin of the links handed out, without a trailing slash.
    pub public_url: Option<String>,
    pub auth: AuthConfig,
    pub cors_origins: Vec<AllowedOrigin>,
    /// 0 turns rate limiting off.
    pub rate_limit_per_min: u32,
    pub jwks_url: Option<String>,
    pub storage: StorageConfig,
    pub sse_keepalive_ms: u32,
    /// The cap on a claim's `waitSeconds`.
    pub claim_max_wait_seconds: u32,
    pub workers_window_ms: u32,
    pub retention: RetentionConfig,
}

/// How long finished jobs are kept, and how much the cron deletes per tick.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionConfig {
    /// Succeeded and cancelled jobs; 0 keeps them for ever.
    pub finished_hours: u32,
    /// Failed and dead jobs, with their dead letters; 0 keeps them for ever.
    pub failed_hours: u32,
    pub batch: u32,
    pub max_batches: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StorageBackend {
    /// The `ARTIFACTS` R2 bucket binding; buckets are key prefixes in it.
    R2,
    /// Supabase Storage's REST API at this base URL (`.../storage/v1`).
    Supabase { url: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    pub backend: StorageBackend,
    pub link_secret: Option<String>,
    pub link_max_seconds: u32,
    pub max_artifact_bytes: u64,
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

        let jwks_url = get("JWKS_URL").or_else(|| {
            get("SUPABASE_URL").map(|u| format!("{}/auth/v1/.well-known/jwks.json", u.trim_end_matches('/')))
        });
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
        let figma_max_body_bytes =
            number("FIGMA_MAX_BODY_BYTES", DEFAULT_FIGMA_MAX_BODY_BYTES as u32, 1024, 100 * 1024 * 1024) as usize;
        let figma_agent_wait_ms = number("FIGMA_AGENT_WAIT_MS", 5_000, 0, 60_000);
        let max_lost_leases = number("REAPER_MAX_LOST_LEASES", 3, 1, 100);
        let idempotency_ttl_seconds = number("IDEMPOTENCY_TTL_SECONDS", 86_400, 60, 30 * 86_400);
        let idempotency_lease_seconds = number("IDEMPOTENCY_LEASE_SECONDS", 60, 1, 3600);
        let rate_limit_per_min = number("EDGE_RATE_LIMIT_PER_MIN", 600, 0, 1_000_000);
        let link_max_seconds = number("ARTIFACT_LINK_MAX_SECONDS", 86_400, 1, 7 * 86_400);
        let sse_keepalive_ms = number("SSE_KEEPALIVE_MS", 15_000, 100, 60_000);
        let claim_max_wait_seconds = number("CLAIM_MAX_WAIT_SECONDS", 20, 0, 20);
        let workers_window_ms = number("WORKERS_ACTIVE_WINDOW_MS", 20_000, 500, 3_600_000);
        let max_artifact_bytes = number("MAX_ARTIFACT_BYTES", 100 * 1024 * 1024, 1, u32::MAX).into();
        // Ages up to ten years; the batch bound is cogo.retention_sweep's.
        let retention = RetentionConfig {
            finished_hours: number("RETENTION_FINISHED_HOURS", 168, 0, 87_600),
            failed_hours: number("RETENTION_FAILED_HOURS", 336, 0, 87_600),
            batch: number("RETENTION_BATCH", 1000, 1, 10_000),
            max_batches: number("RETENTION_MAX_BATCHES", 10, 1, 1000),
        };
        let backend = match get("STORAGE_BACKEND").as_deref() {
            None | Some("r2") => StorageBackend::R2,
            Some("supabase") => {
                let url = get("SUPABASE_STORAGE_URL")
                    .or_else(|| get("SUPABASE_URL").map(|u| format!("{}/storage/v1", u.trim_end_matches('/'))));
                match url {
                    Some(url) => StorageBackend::Supabase { url: url.trim_end_matches('/').to_string() },
                    None => {
                        err.missing.push("SUPABASE_STORAGE_URL");
                        StorageBackend::R2
                    }
                }
            }
            Some(other) => {
                err.invalid.push(("STORAGE_BACKEND", format!("must be r2 or supabase, got {other:?}")));
                StorageBackend::R2
            }
        };

        let public_url = get("PUBLIC_URL").map(|u| u.trim_end_matches('/').to_string());
        if public_url.as_ref().is_some_and(|u| !u.starts_with("http://") && !u.starts_with("https://")) {
            err.invalid.push(("PUBLIC_URL", "must start with http:// or https://".into()));
        }
        let flag =
            |name: &str, default: bool| get(name).map_or(default, |v| matches!(v.as_str(), "1" | "true" | "yes"));
        let list = |name: &str| -> Vec<String> {
            get(name)
                .map(|v| v.split(',').map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect())
                .unwrap_or_default()
        };
        let mut service_keys = list("EDGE_SERVICE_KEYS");
        service_keys.push(service_role_key.clone());
        if !flag("COLLAB_REQUIRE_JWT", true) {
            service_keys.extend(get("COLLAB_API_KEY"));
        }
        let mut publishable_keys = list("EDGE_PUBLISHABLE_KEYS");
        publishable_keys.extend(get("SUPABASE_ANON_KEY"));
        service_keys.retain(|k| !k.is_empty());
        let hmac_schemes = get("EDGE_HMAC_SCHEMES").map_or(Ok(HmacSchemes::default()), |v| HmacSchemes::parse(&v));
        let hmac_schemes = hmac_schemes.unwrap_or_else(|why| {
            err.invalid.push(("EDGE_HMAC_SCHEMES", why));
            HmacSchemes::default()
        });
        let auth = AuthConfig {
            jwt_secret: get("SUPABASE_JWT_SECRET"),
            verify_jwt: flag("EDGE_VERIFY_JWT", true),
            audience: get("JWT_AUDIENCE"),
            issuer: get("JWT_ISSUER"),
            service_keys,
            publishable_keys,
            hmac_secret: get("EDGE_HMAC_SECRET"),
            hmac_previous_secret: get("EDGE_HMAC_SECRET_PREVIOUS"),
            hmac_schemes,
            require_hmac: flag("EDGE_REQUIRE_HMAC", false),
            auth_optional: flag("EDGE_AUTH_OPTIONAL", false),
        };
        if auth.require_hmac && auth.hmac_secret.is_none() {
            err.missing.push("EDGE_HMAC_SECRET");
        }
        let cors_origins =
            cors::parse_origins(&get("EDGE_CORS_ALLOW_ORIGINS").unwrap_or_default()).unwrap_or_else(|why| {
                err.invalid.push(("EDGE_CORS_ALLOW_ORIGINS", why));
                Vec::new()
            });

        if err.missing.is_empty() && err.invalid.is_empty() {
            Ok(Config {
                postgrest_url,
                service_role_key,
                postgrest_timeout_ms,
                max_body_bytes,
                figma_max_body_bytes,
                figma_agent_executor: get("FIGMA_AGENT_EXECUTOR").unwrap_or_else(|| "figma-compat".to_string()),
                figma_agent_wait_ms,
                max_lost_leases,
                idempotency_ttl_seconds,
                idempotency_lease_seconds,
                public_url,
                auth,
                cors_origins,
                rate_limit_per_min,
                jwks_url,
                storage: StorageConfig {
                    backend,
                    link_secret: get("ARTIFACT_SIGNING_SECRET"),
                    link_max_seconds,
                    max_artifact_bytes,
                },
                sse_keepalive_ms,
                claim_max_wait_seconds,
                workers_window_ms,
                retention,
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
    fn auth_settings_under_the_deployments_names() {
        let c = Config::from_lookup(lookup(&[
            ("SUPABASE_URL", "https://abc.supabase.co"),
            ("SUPABASE_SERVICE_ROLE_KEY", "svc"),
            ("SUPABASE_JWT_SECRET", "s"),
            ("COLLAB_REQUIRE_JWT", "0"),
            ("COLLAB_API_KEY", "collab"),
            ("EDGE_PUBLISHABLE_KEYS", "p1, p2"),
        ]))
        .unwrap();
        assert_eq!(c.auth.service_keys, vec!["svc", "collab"]);
        assert_eq!(c.auth.publishable_keys, vec!["p1", "p2"]);
        assert!(c.auth.verify_jwt && !c.auth.auth_optional && !c.auth.require_hmac);
        let e = Config::from_lookup(lookup(&[
            ("SUPABASE_URL", "https://abc.supabase.co"),
            ("SUPABASE_SERVICE_ROLE_KEY", "svc"),
            ("EDGE_REQUIRE_HMAC", "1"),
        ]))
        .unwrap_err();
        assert_eq!(e.missing, vec!["EDGE_HMAC_SECRET"]);
    }

    #[test]
    fn hmac_schemes_default_to_the_replay_safe_ones() {
        let base = [("SUPABASE_URL", "https://abc.supabase.co"), ("SUPABASE_SERVICE_ROLE_KEY", "k")];
        let c = Config::from_lookup(lookup(&base)).unwrap();
        assert_eq!(c.auth.hmac_schemes, HmacSchemes { v1: true, path: true, body: false });
        let mut with = base.to_vec();
        with.push(("EDGE_HMAC_SCHEMES", " v1 , body"));
        let c = Config::from_lookup(lookup(&with)).unwrap();
        assert_eq!(c.auth.hmac_schemes, HmacSchemes { v1: true, path: false, body: true });
        with.push(("EDGE_HMAC_SCHEMES", "v1,V2"));
        with.remove(2);
        let e = Config::from_lookup(lookup(&with)).unwrap_err();
        assert_eq!(e.invalid[0].0, "EDGE_HMAC_SCHEMES");
        assert!(e.invalid[0].1.contains("\"V2\""), "{}", e.invalid[0].1);
    }

    #[test]
    fn cors_origins_default_closed_and_a_public_port_wildcard_is_refused() {
        let base = [("SUPABASE_URL", "https://abc.supabase.co"), ("SUPABASE_SERVICE_ROLE_KEY", "k")];
        assert_eq!(Config::from_lookup(lookup(&base)).unwrap().cors_origins, vec![]);
        let mut with = base.to_vec();
        with.push(("EDGE_CORS_ALLOW_ORIGINS", "null,https://app.example:*"));
        let e = Config::from_lookup(lookup(&with)).unwrap_err();
        assert_eq!(e.invalid[0].0, "EDGE_CORS_ALLOW_ORIGINS");
        assert!(e.invalid[0].1.contains("https://app.example:*"), "{}", e.invalid[0].1);
    }

    #[test]
    fn retention_defaults_and_bounds() {
        let base = [("SUPABASE_URL", "https://abc.supabase.co"), ("SUPABASE_SERVICE_ROLE_KEY", "k")];
        let c = Config::from_lookup(lookup(&base)).unwrap();
        assert_eq!(
            c.retention,
            RetentionConfig { finished_hours: 168, failed_hours: 336, batch: 1000, max_batches: 10 }
        );
        let mut with = base.to_vec();
        with.extend([("RETENTION_FINISHED_HOURS", "0"), ("RETENTION_BATCH", "50")]);
        let c = Config::from_lookup(lookup(&with)).unwrap();
        assert_eq!((c.retention.finished_hours, c.retention.batch), (0, 50));
        with.extend([("RETENTION_BATCH", "0"), ("RETENTION_FAILED_HOURS", "-1")]);
        with.remove(3);
        let e = Config::from_lookup(lookup(&with)).unwrap_err();
        let named: Vec<&str> = e.invalid.iter().map(|(n, _)| *n).collect();
        assert_eq!(named, vec!["RETENTION_FAILED_HOURS", "RETENTION_BATCH"]);
    }

    #[test]
    fn url_scheme_is_checked() {
        let e = Config::from_lookup(lookup(&[("SUPABASE_URL", "abc.supabase.co"), ("SUPABASE_SERVICE_ROLE_KEY", "k")]))
            .unwrap_err();
        assert_eq!(e.invalid[0].0, "SUPABASE_URL");
    }

    #[test]
    fn storage_backend_and_limits() {
        let base = [("SUPABASE_URL", "https://abc.supabase.co"), ("SUPABASE_SERVICE_ROLE_KEY", "k")];
        let c = Config::from_lookup(lookup(&base)).unwrap();
        assert_eq!(c.storage.backend, StorageBackend::R2);
        assert_eq!((c.storage.link_secret, c.storage.link_max_seconds), (None, 86_400));
        let mut with = base.to_vec();
        with.extend([("STORAGE_BACKEND", "supabase"), ("ARTIFACT_SIGNING_SECRET", "s"), ("MAX_ARTIFACT_BYTES", "10")]);
        let c = Config::from_lookup(lookup(&with)).unwrap();
        assert_eq!(c.storage.backend, StorageBackend::Supabase { url: "https://abc.supabase.co/storage/v1".into() });
        assert_eq!((c.storage.link_secret.as_deref(), c.storage.max_artifact_bytes), (Some("s"), 10));
        let e = Config::from_lookup(lookup(&[
            ("POSTGREST_URL", "http://pg"),
            ("SUPABASE_SERVICE_ROLE_KEY", "k"),
            ("STORAGE_BACKEND", "supabase"),
        ]))
        .unwrap_err();
        assert_eq!(e.missing, vec!["SUPABASE_STORAGE_URL"]);
        let e = Config::from_lookup(lookup(&[
            ("POSTGREST_URL", "http://pg"),
            ("SUPABASE_SERVICE_ROLE_KEY", "k"),
            ("STORAGE_BACKEND", "s3"),
        ]))
        .unwrap_err();
        assert_eq!(e.invalid[0].0, "STORAGE_BACKEND");
    }
}
