//! The checks `cogo-dev deploy` makes before anything is uploaded: the
//! worker's own configuration parser over wrangler.toml's `[vars]` (with
//! `--var` overrides) and the secrets the account has, plus what only a
//! deployment needs (https origins, a named bucket).

use std::collections::BTreeMap;

use cogo_shared::config::{Config, StorageBackend};

/// What a deployment reads from wrangler.toml.
#[derive(Debug, PartialEq)]
pub struct WranglerConfig {
    pub vars: BTreeMap<String, String>,
    /// The bucket behind the `ARTIFACTS` binding, when one is named.
    pub artifacts_bucket: Option<String>,
}

pub fn read_wrangler_toml(text: &str) -> Result<WranglerConfig, String> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| format!("wrangler.toml: {e}"))?;
    let vars = doc
        .get("vars")
        .and_then(|v| v.as_table())
        .into_iter()
        .flatten()
        .map(|(k, v)| match v {
            toml::Value::String(s) => Ok((k.clone(), s.clone())),
            other => Err(format!("wrangler.toml: [vars] {k} must be a string, got a {}", other.type_str())),
        })
        .collect::<Result<_, _>>()?;
    let artifacts_bucket = doc
        .get("r2_buckets")
        .and_then(|b| b.as_array())
        .into_iter()
        .flatten()
        .find(|b| b.get("binding").and_then(|n| n.as_str()) == Some("ARTIFACTS"))
        .and_then(|b| b.get("bucket_name")?.as_str())
        .filter(|name| !name.is_empty())
        .map(str::to_string);
    Ok(WranglerConfig { vars, artifacts_bucket })
}

/// The secrets a deployment must have (`wrangler secret put`).
pub fn required_secrets(vars: &BTreeMap<String, String>) -> Vec<&'static str> {
    let set = |name: &str| vars.get(name).is_some_and(|v| !v.is_empty());
    let mut required = vec!["SUPABASE_SERVICE_ROLE_KEY"];
    // Projects on asymmetric JWT keys verify through the JWKS instead.
    if !set("JWKS_URL") && vars.get("EDGE_VERIFY_JWT").map(String::as_str) != Some("0") {
        required.push("SUPABASE_JWT_SECRET");
    }
    if vars.get("STORAGE_BACKEND").is_none_or(|b| b == "r2") {
        required.push("ARTIFACT_SIGNING_SECRET");
    }
    required
}

/// Everything wrong with deploying `config` with these secrets present;
/// empty when it may go.
pub fn problems(config: &WranglerConfig, secrets: &[String]) -> Vec<String> {
    let vars = &config.vars;
    let mut problems: Vec<String> = required_secrets(vars)
        .into_iter()
        .filter(|name| !secrets.iter().any(|s| s == name))
        .map(|name| format!("secret {name} is not set: npx wrangler secret put {name}"))
        .collect();
    // Secrets are checked by name only: their values never leave the account.
    let lookup = |name: &str| {
        vars.get(name)
            .filter(|v| !v.is_empty())
            .cloned()
            .or_else(|| secrets.iter().any(|s| s == name).then(|| "set".into()))
    };
    let parsed = Config::from_lookup(lookup);
    if let Err(e) = &parsed {
        // Required secrets and the PostgREST origin are reported on their own, with how to fix them.
        let reported = [required_secrets(vars), vec!["SUPABASE_URL", "POSTGREST_URL"]].concat();
        let missing: Vec<&str> = e.missing.iter().copied().filter(|m| !reported.contains(m)).collect();
        if !missing.is_empty() {
            problems.push(format!("missing configuration: {}", missing.join(", ")));
        }
        problems.extend(e.invalid.iter().map(|(name, why)| format!("{name}: {why}")));
    }
    let https = |name: &str| vars.get(name).filter(|v| !v.is_empty()).map(|v| v.starts_with("https://"));
    match (https("POSTGREST_URL"), https("SUPABASE_URL")) {
        (Some(false), _) => problems.push("POSTGREST_URL must be https:// in a deployment".into()),
        (None, Some(false)) => problems.push("SUPABASE_URL must be https:// in a deployment".into()),
        (None, None) => problems.push("SUPABASE_URL is empty: set it under [vars] (https://<ref>.supabase.co)".into()),
        _ => {}
    }
    match https("PUBLIC_URL") {
        None => problems.push("PUBLIC_URL is empty: set it to the worker's https:// origin (artifact links)".into()),
        Some(false) => problems.push("PUBLIC_URL must be https:// in a deployment".into()),
        Some(true) => {}
    }
    let r2 = parsed.as_ref().map_or(true, |c| c.storage.backend == StorageBackend::R2);
    if r2 && config.artifacts_bucket.is_none() {
        problems.push("no R2 bucket is named for the ARTIFACTS binding ([[r2_buckets]] bucket_name)".into());
    }
    problems
}

/// The secret names in `wrangler secret list --format json`.
pub fn secret_names(json: &str) -> Result<Vec<String>, String> {
    let list: Vec<serde_json::Value> =
        serde_json::from_str(json).map_err(|e| format!("wrangler secret list: not the expected JSON ({e})"))?;
    Ok(list.iter().filter_map(|s| s["name"].as_str().map(str::to_string)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> WranglerConfig {
        WranglerConfig {
            vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            artifacts_bucket: Some("cogo-artifacts".into()),
        }
    }

    fn all_secrets() -> Vec<String> {
        ["SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_JWT_SECRET", "ARTIFACT_SIGNING_SECRET"].map(String::from).to_vec()
    }

    #[test]
    fn our_wrangler_toml_is_read_and_refused_until_filled_in() {
        let ours = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../wrangler.toml")).unwrap();
        let config = read_wrangler_toml(&ours).unwrap();
        assert_eq!(config.artifacts_bucket.as_deref(), Some("cogo-artifacts"));
        let problems = problems(&config, &all_secrets());
        assert!(problems.iter().any(|p| p.contains("SUPABASE_URL is empty")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("PUBLIC_URL is empty")), "{problems:?}");
    }

    #[test]
    fn a_complete_configuration_passes() {
        let good = config(&[("SUPABASE_URL", "https://abc.supabase.co"), ("PUBLIC_URL", "https://edge.example.com")]);
        assert_eq!(problems(&good, &all_secrets()), Vec::<String>::new());
    }

    #[test]
    fn each_problem_is_named() {
        let base = [("SUPABASE_URL", "https://abc.supabase.co"), ("PUBLIC_URL", "https://edge.example.com")];
        let missing = problems(&config(&base), &["SUPABASE_JWT_SECRET".to_string()]);
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert!(missing[0].contains("wrangler secret put SUPABASE_SERVICE_ROLE_KEY"), "{missing:?}");
        let http = problems(&config(&[("SUPABASE_URL", "http://abc"), base[1]]), &all_secrets());
        assert_eq!(http, vec!["SUPABASE_URL must be https:// in a deployment"]);
        let cors =
            problems(&config(&[base[0], base[1], ("EDGE_CORS_ALLOW_ORIGINS", "https://a.example:*")]), &all_secrets());
        assert!(cors.len() == 1 && cors[0].starts_with("EDGE_CORS_ALLOW_ORIGINS"), "the worker's own parser: {cors:?}");
        let mut no_bucket = config(&base);
        no_bucket.artifacts_bucket = None;
        assert!(problems(&no_bucket, &all_secrets())[0].contains("R2 bucket"));
        let supabase_storage = config(&[base[0], base[1], ("STORAGE_BACKEND", "supabase")]);
        let secrets = &all_secrets()[..2];
        assert_eq!(
            problems(&WranglerConfig { artifacts_bucket: None, ..supabase_storage }, secrets),
            Vec::<String>::new()
        );
    }

    #[test]
    fn secret_names_from_wrangler() {
        let json = r#"[{"name":"SUPABASE_JWT_SECRET","type":"secret_text"},{"name":"X","type":"secret_text"}]"#;
        assert_eq!(secret_names(json).unwrap(), vec!["SUPABASE_JWT_SECRET", "X"]);
        assert!(secret_names("Not logged in").is_err());
    }
}
