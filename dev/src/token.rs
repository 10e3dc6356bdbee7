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
