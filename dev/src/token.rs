//! HS256 JWTs as Supabase issues them, for local development and tests.

use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, Header};
use serde_json::{Map, Value};

/// Signs `claims` (a JSON object) with `secret`, adding `iat` and `exp`
/// (`ttl_secs` from now) unless the caller set them.
pub fn sign(secret: &str, claims: Value, ttl_secs: i64) -> String {
    let Value::Object(mut map) = claims else { panic!("claims must be a JSON object") };
    let now = unix_now();
    map.entry("iat").or_insert(now.into());
    map.entry("exp").or_insert((now + ttl_secs).into());
    let key = Hs256Key::new(secret.as_bytes());
    Hs256
        .token(&Header::empty().with_token_type("JWT"), &Claims::new(map), &key)
        .expect("serialising JSON claims cannot fail")
}

/// Claims for a role as the platform uses them: `role`, `sub`, `aud`.
pub fn role_claims(role: &str, sub: &str) -> Value {
    let mut map = Map::new();
    map.insert("role".into(), role.into());
    map.insert("sub".into(), sub.into());
    map.insert("aud".into(), if role == "authenticated" { "authenticated" } else { role }.into());
    Value::Object(map)
}

/// A token request as `cogo-dev token` takes it.
#[derive(Debug, PartialEq)]
pub struct TokenRequest {
    pub claims: Value,
    pub ttl_secs: i64,
}

/// The longest lifetime `cogo-dev token` signs: a year. Rotation is by
/// issuing a new one; a JWT cannot be revoked before it expires short of
/// rotating the project's secret.
pub const MAX_TTL_SECS: i64 = 365 * 86_400;

/// Parses `<role> [sub] [--executor ID] [--ttl DURATION]`. Roles: `service`
/// (`service_role`), `worker` (also `agent`: a worker whose `sub` is its
/// agent id), `user` (`authenticated`), `anon`. Without `sub`, a worker is
/// `dev-worker` and a user `dev-user`.
pub fn parse_request(args: &[String]) -> Result<TokenRequest, String> {
    let mut positional = Vec::new();
    let (mut executor, mut ttl_secs) = (None, 30 * 86_400);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--executor" => executor = Some(args.next().ok_or("--executor needs an executor id")?.clone()),
            "--ttl" => ttl_secs = parse_ttl(args.next().ok_or("--ttl needs a duration, e.g. 12h or 30d")?)?,
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            value => positional.push(value.to_string()),
        }
    }
    let (role, default_sub) = match positional.first().map(String::as_str) {
        Some("service" | "service_role") => ("service_role", "service"),
        Some("worker") => ("worker", "dev-worker"),
        Some("agent") => ("worker", "dev-agent"),
        Some("user" | "authenticated") => ("authenticated", "dev-user"),
        Some("anon") => ("anon", "anon"),
        Some(other) => return Err(format!("unknown role {other:?}: service, worker, agent, user or anon")),
        None => return Err("a role is required: service, worker, agent, user or anon".into()),
    };
    if positional.len() > 2 {
        return Err(format!("unexpected argument {:?}", positional[2]));
    }
    let sub = positional.get(1).map_or(default_sub, String::as_str);
    let mut claims = role_claims(role, sub);
    if let Some(executor) = executor {
        if role != "worker" {
            return Err("--executor scopes worker and agent tokens only".into());
        }
        if executor.is_empty() {
            return Err("--executor needs an executor id".into());
        }
        claims["executor_id"] = executor.into();
    }
    Ok(TokenRequest { claims, ttl_secs })
}

/// `90s`, `15m`, `12h`, `30d` or plain seconds, up to [`MAX_TTL_SECS`].
pub fn parse_ttl(text: &str) -> Result<i64, String> {
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("bad duration {text:?}: a number with s, m, h or d")),
    };
    let secs = digits.parse::<i64>().ok().and_then(|n| n.checked_mul(scale)).filter(|s| *s > 0);
    match secs {
        Some(s) if s <= MAX_TTL_SECS => Ok(s),
        Some(_) => Err(format!("{text} is longer than the longest lifetime, 365d")),
        None => Err(format!("bad duration {text:?}: a number above 0 with s, m, h or d")),
    }
}

/// `bytes` random bytes from the OS, hex-encoded: secrets and unique names.
pub fn random_hex(bytes: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn worker_tokens_carry_their_executor_and_lifetime() {
        let r = parse_request(&args("worker w-7 --executor browser --ttl 12h")).unwrap();
        assert_eq!(r.claims, json!({"role": "worker", "sub": "w-7", "aud": "worker", "executor_id": "browser"}));
        assert_eq!(r.ttl_secs, 12 * 3600);
        let agent = parse_request(&args("agent --ttl 90s")).unwrap();
        assert_eq!((agent.claims["role"].as_str(), agent.claims["sub"].as_str()), (Some("worker"), Some("dev-agent")));
        assert_eq!(agent.ttl_secs, 90);
        let user = parse_request(&args("user 00000000-0000-4000-8000-000000000001")).unwrap();
        assert_eq!(user.claims["aud"], "authenticated");
        assert_eq!(user.ttl_secs, 30 * 86_400);
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        for (text, says) in [
            ("", "a role is required"),
            ("root", "unknown role"),
            ("user --executor x", "worker and agent tokens only"),
            ("worker --ttl 2y", "bad duration"),
            ("worker --ttl 0", "above 0"),
            ("worker --ttl 400d", "365d"),
            ("worker --executor", "needs an executor id"),
            ("worker a b", "unexpected argument"),
            ("worker --exec x", "unknown option"),
        ] {
            let why = parse_request(&args(text)).unwrap_err();
            assert!(why.contains(says), "{text}: {why}");
        }
    }
}
