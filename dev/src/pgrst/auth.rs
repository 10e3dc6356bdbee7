//! Who the request runs as: PostgREST's JWT role switch, plus the `apikey`
//! rules of Supabase's gateway in front of `/rest/v1`.

use axum::http::HeaderMap;
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, UntrustedToken};
use serde_json::{json, Map, Value};

use super::config::{Config, JsFilter, JsPathStep};
use super::error::PgrstError;

/// Seconds of clock skew allowed on `exp`, `nbf` and `iat`.
const SKEW: i64 = 30;

/// The role and the claims (`request.jwt.claims`) for a request.
pub fn authenticate(
    config: &Config,
    headers: &HeaderMap,
    supabase: bool,
    query_apikey: Option<&str>,
) -> Result<(String, Value), PgrstError> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.get(..7).filter(|p| p.eq_ignore_ascii_case("bearer ")).map(|_| v[7..].trim()));
    if supabase {
        let apikey = headers.get("apikey").and_then(|v| v.to_str().ok()).or(query_apikey);
        let Some(apikey) = apikey else {
            return Err(kong("No API key found in request", "No `apikey` request header or url param was found."));
        };
        let apikey_identity = opaque_role(config, apikey)
            .map(|r| (r.to_string(), json!({ "role": r })))
            .or_else(|| verify(config, apikey).ok());
        let Some(identity) = apikey_identity else {
            return Err(kong("Invalid API key", "Double check your Supabase `anon` or `service_role` API key."));
        };
        return match bearer {
            None => Ok(identity),
            Some(token) => match opaque_role(config, token) {
                Some(role) => Ok((role.to_string(), json!({ "role": role }))),
                None => verify(config, token),
            },
        };
    }
    match bearer {
        Some(token) => verify(config, token),
        None => match &config.anon_role {
            Some(anon) => Ok((anon.clone(), json!({ "role": anon }))),
            None => {
                let mut e = PgrstError::new(401, "PGRST302", "Anonymous access is disabled");
                e.www_authenticate = Some("Bearer".into());
                Err(e)
            }
        },
    }
}

fn opaque_role(config: &Config, key: &str) -> Option<&'static str> {
    if config.secret_keys.iter().any(|k| constant_time_eq(k.as_bytes(), key.as_bytes())) {
        Some("service_role")
    } else if config.publishable_keys.iter().any(|k| constant_time_eq(k.as_bytes(), key.as_bytes())) {
        Some("anon")
    } else {
        None
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Supabase's gateway answers in its own shape, not PostgREST's.
fn kong(message: &str, hint: &str) -> PgrstError {
    let mut e = PgrstError::new(401, "", message).with_hint(hint);
    e.www_authenticate = None;
    e.bare = true;
    e
}

/// Verifies an HS256 JWT; answers the role (the `role` claim, else the
/// anonymous role) and every claim.
fn verify(config: &Config, token: &str) -> Result<(String, Value), PgrstError> {
    let secret = config.jwt_secret.as_deref().ok_or_else(|| PgrstError::jwt("PGRST300", "Server lacks JWT secret"))?;
    let untrusted = UntrustedToken::new(token)
        .map_err(|e| PgrstError::jwt("PGRST301", &format!("JWSError (CompactDecodeError {e})")))?;
    let key = Hs256Key::new(secret.as_bytes());
    let verified = Hs256
        .validator::<Map<String, Value>>(&key)
        .validate(&untrusted)
        .map_err(|_| PgrstError::jwt("PGRST301", "JWSError JWSInvalidSignature"))?;
    let claims = verified.claims();
    let now = now_unix();
    if claims.expiration.is_some_and(|exp| exp.timestamp() + SKEW < now) {
        return Err(PgrstError::jwt("PGRST303", "JWT expired"));
    }
    if claims.not_before.is_some_and(|nbf| nbf.timestamp() - SKEW > now) {
        return Err(PgrstError::jwt("PGRST303", "JWT not yet valid"));
    }
    if claims.issued_at.is_some_and(|iat| iat.timestamp() - SKEW > now) {
        return Err(PgrstError::jwt("PGRST303", "JWT issued at future"));
    }
    let mut all = serde_json::to_value(claims).unwrap_or_else(|_| json!({}));
    let role = match walk(&all, &config.role_claim_key) {
        Some(Value::String(r)) => r.clone(),
        Some(other) => other.to_string(),
        None => config.anon_role.clone().ok_or_else(|| PgrstError::jwt("PGRST302", "Anonymous access is disabled"))?,
    };
    // `request.jwt.claims` always carries the role the request runs as.
    if let Value::Object(m) = &mut all {
        m.insert("role".into(), Value::String(role.clone()));
    }
    Ok((role, all))
}

/// The claim `path` names (v13's `walkJSPath`): a filter picks the first
/// matching string of an array.
fn walk<'a>(v: &'a Value, path: &[JsPathStep]) -> Option<&'a Value> {
    let Some((step, rest)) = path.split_first() else { return Some(v) };
    match (step, v) {
        (JsPathStep::Key(k), Value::Object(o)) => walk(o.get(k)?, rest),
        (JsPathStep::Index(i), Value::Array(a)) => walk(a.get(*i)?, rest),
        (JsPathStep::Filter(op, pattern), Value::Array(a)) if rest.is_empty() => a.iter().find(|item| {
            item.as_str().is_some_and(|s| match op {
                JsFilter::Equals => s == pattern,
                JsFilter::NotEquals => s != pattern,
                JsFilter::StartsWith => s.starts_with(pattern.as_str()),
                JsFilter::EndsWith => s.ends_with(pattern.as_str()),
                JsFilter::Contains => s.contains(pattern.as_str()),
            })
        }),
        _ => None,
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgrst::config::parse_js_path;

    #[test]
    fn role_claim_paths() {
        let claims = json!({"app": {"roles": ["reader", "app_admin"]}, "role": "x", "n": 1});
        let path = |p: &str| parse_js_path(p).unwrap();
        assert_eq!(walk(&claims, &path(".role")), Some(&json!("x")));
        assert_eq!(walk(&claims, &path(".app.roles[1]")), Some(&json!("app_admin")));
        assert_eq!(walk(&claims, &path(".app.roles[?(@ ^== \"app_\")]")), Some(&json!("app_admin")));
        assert_eq!(walk(&claims, &path(".missing")), None);
    }
}
