//! Who is calling: a typed principal from the request's credentials, checked
//! once per request against the route's allowed roles.
//!
//! Credentials, in order: `Authorization: Bearer` (a configured key, or a
//! JWT: HS256, or ES256/RS256 against the JWKS), `apikey` / `x-api-key`
//! (configured keys, compared in constant time), HMAC-signed requests in the schemes `EDGE_HMAC_SCHEMES` enables:
//! `v1` (`x-signature: v1=<hex>` over method, path, `x-ts`, body hash and
//! `x-agent-id`; see [`v1_string_to_sign`]), and the older forms the
//! existing clients send, `path` (`x-ts` + `x-signature` over
//! `"{x-ts}:{path+query}"`) and `body` (`X-Timestamp` + `X-Signature` over
//! the body alone).

pub mod jwks;
pub mod ratelimit;
pub mod ticket;

use hmac::{Hmac, Mac};
use jwt_compact::alg::{Es256, Hs256, Hs256Key, Rsa, RsaPublicKey, StrongAlg, StrongKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, Token, UntrustedToken};
use p256::ecdsa::VerifyingKey;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::http::error::ApiError;

/// Seconds of clock skew allowed on `exp`, `nbf` and `iat`.
pub const JWT_SKEW_SECS: i64 = 30;
/// How far an HMAC timestamp may be from now.
pub const HMAC_WINDOW_SECS: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Anon,
    Authenticated,
    Worker,
    Service,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Anon => "anon",
            Role::Authenticated => "authenticated",
            Role::Worker => "worker",
            Role::Service => "service_role",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub role: Role,
    /// The JWT `sub` (a user id), or the `x-agent-id` of a `v1` signed
    /// request (which the signature covers). Never the unsigned agent id of
    /// the older signature forms.
    pub sub: Option<String>,
    /// A worker token's `executor_id` claim: the only executor it may serve.
    pub executor_id: Option<String>,
    /// What proved it (anon without a credential is not the same as an
    /// anon key).
    pub via: Via,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Nothing,
    Key,
    Jwt,
    Signature,
    /// `EDGE_AUTH_OPTIONAL`: no credential, taken as the service role.
    AuthOptional,
    /// A stream ticket (`?ticket=`), standing for the caller it was issued to.
    Ticket,
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::Nothing => "none",
            Via::Key => "key",
            Via::Jwt => "jwt",
            Via::Signature => "hmac",
            Via::AuthOptional => "auth_optional",
            Via::Ticket => "ticket",
        }
    }
}

impl Principal {
    fn new(role: Role, via: Via) -> Principal {
        Principal { role, sub: None, executor_id: None, via }
    }

    /// A stable id for scoping per-caller state (idempotency keys, rate
    /// limits): `<role>:<sub>` (a JWT's subject, or a `v1` signer's agent
    /// id, so `worker:agent-7` is the same caller however it proves it),
    /// else `<role>:executor:<executor_id>`, else `<role>:<via>`
    /// (`worker:hmac` for every signer of the older forms, whose agent id
    /// is not signed; `service_role:key`, `anon:none`).
    pub fn id(&self) -> String {
        match (&self.sub, &self.executor_id) {
            (Some(sub), _) => format!("{}:{sub}", self.role.name()),
            (None, Some(ex)) => format!("{}:executor:{ex}", self.role.name()),
            (None, None) => format!("{}:{}", self.role.name(), self.via.name()),
        }
    }

    /// Who owns the jobs this caller enqueues (and so may read and cancel
    /// them): a user, by their `sub`; the platform and workers nobody. A
    /// user token without a `sub` could own nothing, so it is refused.
    pub fn job_owner(&self) -> Result<Option<&str>, ApiError> {
        match (self.role, &self.sub) {
            (Role::Authenticated, Some(sub)) => Ok(Some(sub)),
            (Role::Authenticated, None) => Err(ApiError::new(403, "forbidden", "a user token without sub")),
            _ => Ok(None),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthConfig {
    /// `SUPABASE_JWT_SECRET`: HS256 key for JWTs.
    pub jwt_secret: Option<String>,
    /// `EDGE_VERIFY_JWT` (default on): off accepts no JWTs at all.
    pub verify_jwt: bool,
    pub audience: Option<String>,
    pub issuer: Option<String>,
    /// Keys that act as the service role (`SUPABASE_SERVICE_ROLE_KEY`,
    /// `EDGE_SERVICE_KEYS`, and `COLLAB_API_KEY` when `COLLAB_REQUIRE_JWT=0`).
    pub service_keys: Vec<String>,
    /// Keys that act as anon (`EDGE_PUBLISHABLE_KEYS`).
    pub publishable_keys: Vec<String>,
    pub hmac_secret: Option<String>,
    /// `EDGE_HMAC_SECRET_PREVIOUS`: still accepted while clients move to a
    /// new `EDGE_HMAC_SECRET` (rotation without a cut-over moment).
    pub hmac_previous_secret: Option<String>,
    /// `EDGE_HMAC_SCHEMES`: which signature forms are accepted.
    pub hmac_schemes: HmacSchemes,
    /// `EDGE_REQUIRE_HMAC`: every request must also be signed.
    pub require_hmac: bool,
    /// `EDGE_AUTH_OPTIONAL`: a request without credentials is the service
    /// role. Local development only.
    pub auth_optional: bool,
}

/// The signed-request forms (`EDGE_HMAC_SCHEMES`, a comma list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HmacSchemes {
    /// `v1`: the canonical form; everything that matters is signed.
    pub v1: bool,
    /// `path`: the plugin's `"{x-ts}:{path+query}"`. Its timestamp is
    /// signed, so the window and the ledger stop replays; method, body and
    /// agent id are not signed.
    pub path: bool,
    /// `body`: the agents' body-only form. Its timestamp is not signed, so a
    /// captured request can be resent with a fresh one once the ledger has
    /// forgotten it: off unless a deployment still needs it.
    pub body: bool,
}

impl Default for HmacSchemes {
    fn default() -> Self {
        HmacSchemes { v1: true, path: true, body: false }
    }
}

impl HmacSchemes {
    pub fn parse(list: &str) -> Result<HmacSchemes, String> {
        let mut schemes = HmacSchemes { v1: false, path: false, body: false };
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "v1" => schemes.v1 = true,
                "path" => schemes.path = true,
                "body" => schemes.body = true,
                other => return Err(format!("unknown scheme {other:?}; expected v1, path or body")),
            }
        }
        Ok(schemes)
    }
}

/// The credential-bearing parts of a request.
#[derive(Debug, Default)]
pub struct Credentials<'a> {
    pub authorization: Option<&'a str>,
    pub apikey: Option<&'a str>,
    pub x_ts: Option<&'a str>,
    /// `x-signature` (header names are case-insensitive, so also the body
    /// form's `X-Signature`).
    pub x_signature: Option<&'a str>,
    pub x_timestamp: Option<&'a str>,
    pub agent_id: Option<&'a str>,
    pub method: &'a str,
    /// The path with its query, as sent (`/a/b?x=1`).
    pub path_and_query: &'a str,
    pub body: &'a [u8],
}

/// Who is calling, and the signature the request carried, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Authenticated {
    pub principal: Principal,
    /// A verified signature in canonical form (lower-case hex): the replay
    /// ledger must see it once. Set whenever the request was signed, even
    /// when another credential names the principal (`EDGE_REQUIRE_HMAC`).
    pub signature: Option<String>,
}

/// A public key of a JWKS document, with the one algorithm it verifies.
#[derive(Debug, Clone)]
enum JwksKey {
    /// P-256.
    Es256(VerifyingKey),
    /// RSA of 2048, 3072 or 4096 bits (`StrongKey` refuses shorter ones).
    Rs256(StrongKey<RsaPublicKey>),
}

impl JwksKey {
    fn from_jwk(jwk: &JsonWebKey<'_>) -> Option<JwksKey> {
        match jwk {
            JsonWebKey::EllipticCurve { .. } => VerifyingKey::try_from(jwk).ok().map(JwksKey::Es256),
            JsonWebKey::Rsa { .. } => {
                let key = RsaPublicKey::try_from(jwk).ok()?;
                StrongKey::try_from(key).ok().map(JwksKey::Rs256)
            }
            _ => None,
        }
    }

    fn alg(&self) -> &'static str {
        match self {
            JwksKey::Es256(_) => "ES256",
            JwksKey::Rs256(_) => "RS256",
        }
    }
}

/// The ES256 and RS256 public keys of a JWKS document (Supabase's signing
/// keys), by `kid`.
#[derive(Debug, Clone, Default)]
pub struct JwkSet {
    keys: Vec<(String, JwksKey)>,
}

impl JwkSet {
    /// Reads `{"keys": [...]}`; keys of other types are skipped, and so are
    /// keys whose `alg` or `use` says they are not for signatures with that
    /// algorithm.
    pub fn parse(json: &[u8]) -> Result<JwkSet, String> {
        let doc: Value = serde_json::from_slice(json).map_err(|e| format!("JWKS is not JSON: {e}"))?;
        let items = doc.get("keys").and_then(Value::as_array).ok_or("JWKS has no keys array")?;
        let keys = items
            .iter()
            .filter_map(|item| {
                let kid = item.get("kid")?.as_str()?.to_string();
                let jwk: JsonWebKey<'_> = serde_json::from_value(item.clone()).ok()?;
                let key = JwksKey::from_jwk(&jwk)?;
                let declared = |field: &str, value: &str| item.get(field).is_none_or(|v| v.as_str() == Some(value));
                (declared("alg", key.alg()) && declared("use", "sig")).then_some((kid, key))
            })
            .collect();
        Ok(JwkSet { keys })
    }

    pub fn has(&self, kid: &str) -> bool {
        self.keys.iter().any(|(k, _)| k == kid)
    }

    /// The key named `kid` that verifies `alg`: a token cannot pick a key of
    /// another algorithm by naming its kid.
    fn get(&self, kid: &str, alg: &str) -> Option<&JwksKey> {
        self.keys.iter().find(|(k, key)| k == kid && key.alg() == alg).map(|(_, key)| key)
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in
/// any case), if there is one.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let scheme = authorization.get(..7)?;
    scheme.eq_ignore_ascii_case("bearer ").then(|| authorization[7..].trim()).filter(|t| !t.is_empty())
}

/// The `kid` of an ES256 or RS256 bearer token, which only a JWKS can verify.
pub fn jwks_key_id(authorization: Option<&str>) -> Option<String> {
    let untrusted = UntrustedToken::new(bearer_token(authorization?)?).ok()?;
    matches!(untrusted.algorithm(), "ES256" | "RS256").then(|| untrusted.header().key_id.clone()).flatten()
}

fn unauthorized(code: &'static str, message: &str) -> ApiError {
    let header = if code == "missing_credentials" {
        "Bearer realm=\"cogo-edge\"".to_string()
    } else {
        format!("Bearer realm=\"cogo-edge\", error=\"invalid_token\", error_description=\"{message}\"")
    };
    ApiError::new(401, code, message).with_header("WWW-Authenticate", header)
}

/// 401 for a route that needs a credential and got none.
pub fn missing_credentials() -> ApiError {
    unauthorized("missing_credentials", "this endpoint needs a credential: a Bearer token or an API key")
}

/// Whether `principal` may call a route open to `allowed`; 401 when no
/// credential was given, 403 when one was but its role is not allowed.
pub fn authorize(principal: &Principal, allowed: &[Role]) -> Result<(), ApiError> {
    if allowed.contains(&principal.role) {
        return Ok(());
    }
    if principal.via == Via::Nothing {
        return Err(missing_credentials());
    }
    Err(ApiError::new(403, "forbidden", format!("the {} role may not call this endpoint", principal.role.name())))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn key_role(config: &AuthConfig, key: &str) -> Option<Role> {
    let matches = |keys: &[String]| keys.iter().any(|k| constant_time_eq(k.as_bytes(), key.as_bytes()));
    if matches(&config.service_keys) {
        Some(Role::Service)
    } else if matches(&config.publishable_keys) {
        Some(Role::Anon)
    } else {
        None
    }
}

/// Extracts the principal. `now_secs` is the caller's clock.
pub fn authenticate(
    config: &AuthConfig,
    creds: &Credentials,
    jwks: Option<&JwkSet>,
    now_secs: i64,
) -> Result<Authenticated, ApiError> {
    let signed = verify_hmac(config, creds, now_secs)?;
    if config.require_hmac && signed.is_none() {
        return Err(unauthorized("signature_required", "requests must be signed (x-ts and x-signature)"));
    }
    let (signer, signature) = signed.map_or((None, None), |(p, s)| (Some(p), Some(s)));
    let principal = if let Some(token) = creds.authorization.and_then(bearer_token) {
        match key_role(config, token) {
            Some(role) => Principal::new(role, Via::Key),
            None => verify_jwt(config, token, jwks, now_secs)?,
        }
    } else if let Some(key) = creds.apikey {
        key_role(config, key)
            .map(|role| Principal::new(role, Via::Key))
            .ok_or_else(|| unauthorized("invalid_api_key", "the API key is not valid"))?
    } else if let Some(signer) = signer {
        signer
    } else if config.auth_optional {
        Principal::new(Role::Service, Via::AuthOptional)
    } else {
        Principal::new(Role::Anon, Via::Nothing)
    };
    Ok(Authenticated { principal, signature })
}

fn verify_jwt(config: &AuthConfig, token: &str, jwks: Option<&JwkSet>, now: i64) -> Result<Principal, ApiError> {
    let invalid = |why: &str| unauthorized("invalid_token", why);
    if !config.verify_jwt {
        return Err(invalid("JWTs are not accepted here"));
    }
    let untrusted = UntrustedToken::new(token).map_err(|_| invalid("the token is not a well-formed JWT"))?;
    let bad_signature = |_| invalid("the token's signature does not verify");
    let verified: Token<Map<String, Value>> = match untrusted.algorithm() {
        "HS256" => {
            let secret = config.jwt_secret.as_deref().ok_or_else(|| invalid("HS256 tokens are not accepted here"))?;
            Hs256.validator(&Hs256Key::new(secret.as_bytes())).validate(&untrusted).map_err(bad_signature)?
        }
        alg @ ("ES256" | "RS256") => {
            let kid = untrusted.header().key_id.as_deref().ok_or_else(|| invalid("the token names no key (kid)"))?;
            let key =
                jwks.and_then(|set| set.get(kid, alg)).ok_or_else(|| invalid("the token's signing key is unknown"))?;
            match key {
                JwksKey::Es256(key) => Es256.validator(key).validate(&untrusted),
                JwksKey::Rs256(key) => StrongAlg(Rsa::rs256()).validator(key).validate(&untrusted),
            }
            .map_err(bad_signature)?
        }
        other => return Err(invalid(&format!("tokens signed with {other} are not accepted"))),
    };
    let claims = verified.claims();
    match claims.expiration {
        Some(exp) if exp.timestamp() + JWT_SKEW_SECS < now => return Err(invalid("the token has expired")),
        None => return Err(invalid("the token has no exp claim")),
        _ => {}
    }
    if claims.not_before.is_some_and(|nbf| nbf.timestamp() - JWT_SKEW_SECS > now) {
        return Err(invalid("the token is not valid yet"));
    }
    // PostgREST refuses these too, but as 502 behind us: refuse at the edge.
    if claims.issued_at.is_some_and(|iat| iat.timestamp() - JWT_SKEW_SECS > now) {
        return Err(invalid("the token was issued in the future"));
    }
    let custom = &claims.custom;
    if let Some(aud) = &config.audience {
        let ok = match custom.get("aud") {
            Some(Value::String(a)) => a == aud,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(aud)),
            _ => false,
        };
        if !ok {
            return Err(invalid("the token's audience is not this service"));
        }
    }
    if let Some(iss) = &config.issuer {
        if custom.get("iss").and_then(Value::as_str) != Some(iss.as_str()) {
            return Err(invalid("the token's issuer is not trusted"));
        }
    }
    let role = match custom.get("role").and_then(Value::as_str) {
        Some("service_role") => Role::Service,
        Some("worker") => Role::Worker,
        Some("authenticated") => Role::Authenticated,
        _ => Role::Anon,
    };
    let text = |k: &str| custom.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(Principal { role, sub: text("sub"), executor_id: text("executor_id"), via: Via::Jwt })
}

/// The string a `v1` signature covers, lines joined by `\n`: `v1`, the
/// method upper-case, the path with its query as sent, the `x-ts` value,
/// the lower-case hex SHA-256 of the body (of nothing when there is none),
/// and the `x-agent-id` value (empty when absent).
pub fn v1_string_to_sign(method: &str, path_and_query: &str, ts: &str, body: &[u8], agent_id: &str) -> String {
    let body_hash = crate::hex(&Sha256::digest(body));
    format!("v1\n{}\n{path_and_query}\n{ts}\n{body_hash}\n{agent_id}", method.to_ascii_uppercase())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    V1,
    Path,
    Body,
}

/// A signed request is a worker (an agent or the Figma plugin). Answers
/// the signer and the signature in canonical form, for the replay ledger.
fn verify_hmac(config: &AuthConfig, creds: &Credentials, now: i64) -> Result<Option<(Principal, String)>, ApiError> {
    let (Some(signature), Some(ts)) = (creds.x_signature, creds.x_ts.or(creds.x_timestamp)) else {
        return Ok(None);
    };
    // `x-signature` and the agents' `X-Signature` are one header: the
    // timestamp sent and the `v1=` prefix tell the forms apart.
    let (scheme, hex) = match (creds.x_ts, signature.strip_prefix("v1=")) {
        (Some(_), Some(hex)) => (Scheme::V1, hex),
        (Some(_), None) => (Scheme::Path, signature),
        (None, _) => (Scheme::Body, signature),
    };
    let invalid = |why: &str| unauthorized("invalid_signature", why);
    let schemes = config.hmac_schemes;
    let enabled = match scheme {
        Scheme::V1 => schemes.v1,
        Scheme::Path => schemes.path,
        Scheme::Body => schemes.body,
    };
    if !enabled {
        return Err(invalid("this form of signed request is not accepted here (EDGE_HMAC_SCHEMES)"));
    }
    let secret = config.hmac_secret.as_deref().ok_or_else(|| invalid("signed requests are not accepted here"))?;
    // One spelling per signature, so a resent one cannot pass the ledger as
    // another: v1 takes lower-case only, the older forms either case.
    let mac_bytes = hex_decode_32(hex, scheme != Scheme::V1)
        .ok_or_else(|| invalid("the signature is not 64 hex digits (v1: lower-case, after v1=)"))?;
    let ts_num: i64 = Some(ts)
        .filter(|t| (1..=16).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| invalid("the timestamp is not a number"))?;
    // x-ts is epoch milliseconds; X-Timestamp is seconds (or milliseconds).
    let ts_secs = if scheme != Scheme::Body || ts_num > 100_000_000_000 { ts_num / 1000 } else { ts_num };
    if (now - ts_secs).abs() > HMAC_WINDOW_SECS {
        return Err(invalid("the signature's timestamp is outside the allowed window"));
    }
    let agent_id = creds.agent_id.filter(|a| !a.is_empty());
    let message = match scheme {
        Scheme::V1 => {
            v1_string_to_sign(creds.method, creds.path_and_query, ts, creds.body, agent_id.unwrap_or_default())
                .into_bytes()
        }
        Scheme::Path => format!("{ts}:{}", creds.path_and_query).into_bytes(),
        Scheme::Body => creds.body.to_vec(),
    };
    let signed_with = |secret: &str| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
        mac.update(&message);
        mac.verify_slice(&mac_bytes).is_ok()
    };
    if !(signed_with(secret) || config.hmac_previous_secret.as_deref().is_some_and(signed_with)) {
        return Err(invalid("the signature does not match"));
    }
    let mut principal = Principal::new(Role::Worker, Via::Signature);
    // Only v1 signs the agent id; the older forms' is anyone's to claim.
    if scheme == Scheme::V1 {
        principal.sub = agent_id.map(str::to_string);
    }
    Ok(Some((principal, crate::hex(&mac_bytes))))
}

/// Exactly 64 hex digits (lower-case, or also upper-case when
/// `any_case`): no sign, no spaces, no other length.
fn hex_decode_32(s: &str, any_case: bool) -> Option<[u8; 32]> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' if any_case => Some(c - b'A' + 10),
        _ => None,
    };
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_compact::{Claims, Header};
    use serde_json::json;

    const SECRET: &str = "test-secret-of-at-least-thirty-two-chars";
    const NOW: i64 = 1_800_000_000;

    fn config() -> AuthConfig {
        AuthConfig {
            jwt_secret: Some(SECRET.into()),
            verify_jwt: true,
            service_keys: vec!["sb_secret_abc".into()],
            publishable_keys: vec!["sb_publishable_xyz".into()],
            hmac_secret: Some("hmac-secret".into()),
            ..Default::default()
        }
    }

    fn jwt(claims: serde_json::Value) -> String {
        let Value::Object(map) = claims else { panic!() };
        Hs256.token(&Header::empty(), &Claims::new(map), &Hs256Key::new(SECRET.as_bytes())).unwrap()
    }

    fn bearer(token: &str) -> String {
        format!("Bearer {token}")
    }

    fn auth_with(authorization: &str) -> Result<Principal, ApiError> {
        authenticate(&config(), &Credentials { authorization: Some(authorization), ..Default::default() }, None, NOW)
            .map(|a| a.principal)
    }

    #[test]
    fn jobs_belong_to_users_only() {
        let caller =
            |role, sub: Option<&str>| Principal { sub: sub.map(str::to_string), ..Principal::new(role, Via::Jwt) };
        assert_eq!(caller(Role::Authenticated, Some("u")).job_owner(), Ok(Some("u")));
        assert_eq!(caller(Role::Service, Some("svc")).job_owner(), Ok(None));
        assert_eq!(caller(Role::Worker, Some("agent-7")).job_owner(), Ok(None), "an agent never passes for a user");
        assert_eq!(caller(Role::Authenticated, None).job_owner().unwrap_err().status, 403);
    }

    #[test]
    fn jwt_roles_and_claims() {
        let p =
            auth_with(&bearer(&jwt(json!({"role": "worker", "sub": "w1", "executor_id": "browser", "exp": NOW + 60}))))
                .unwrap();
        assert_eq!((p.role, p.sub.as_deref(), p.executor_id.as_deref()), (Role::Worker, Some("w1"), Some("browser")));
        let p = auth_with(&bearer(&jwt(json!({"role": "service_role", "exp": NOW + 60})))).unwrap();
        assert_eq!(p.role, Role::Service);
        let p = auth_with(&bearer(&jwt(json!({"role": "authenticated", "sub": "u", "exp": NOW})))).unwrap();
        assert_eq!(p.id(), "authenticated:u");
    }

    #[test]
    fn bad_tokens_are_401_with_www_authenticate() {
        for (token, why) in [
            ("not-a-jwt".to_string(), "well-formed"),
            (jwt(json!({"role": "worker", "exp": NOW - 31})), "expired"),
            (jwt(json!({"role": "worker"})), "no exp"),
            (jwt(json!({"role": "worker", "exp": NOW + 60, "nbf": NOW + 31})), "not valid yet"),
            (jwt(json!({"role": "worker", "exp": NOW + 600, "iat": NOW + 31})), "issued in the future"),
        ] {
            let e = auth_with(&bearer(&token)).unwrap_err();
            assert_eq!((e.status, e.code), (401, "invalid_token"), "{why}");
            assert!(e.message.contains(why), "{}", e.message);
            assert!(e.headers.iter().any(|(k, v)| k == "WWW-Authenticate" && v.contains("invalid_token")));
        }
        let mut forged = jwt(json!({"role": "service_role", "exp": NOW + 60}));
        forged.pop();
        forged.push('A');
        assert_eq!(auth_with(&bearer(&forged)).unwrap_err().message, "the token's signature does not verify");
    }

    #[test]
    fn skew_is_tolerated() {
        assert!(auth_with(&bearer(&jwt(json!({"role": "worker", "exp": NOW - 29})))).is_ok());
        assert!(auth_with(&bearer(&jwt(json!({"role": "worker", "exp": NOW + 600, "iat": NOW + 30})))).is_ok());
    }

    #[test]
    fn audience_and_issuer_when_configured() {
        let mut c = config();
        c.audience = Some("authenticated".into());
        c.issuer = Some("https://x.supabase.co/auth/v1".into());
        let good = jwt(
            json!({"role": "authenticated", "exp": NOW + 60, "aud": "authenticated", "iss": "https://x.supabase.co/auth/v1"}),
        );
        let creds = |t: &str| bearer(t);
        let ok = authenticate(&c, &Credentials { authorization: Some(&creds(&good)), ..Default::default() }, None, NOW);
        assert!(ok.is_ok());
        let bad = jwt(
            json!({"role": "authenticated", "exp": NOW + 60, "aud": "other", "iss": "https://x.supabase.co/auth/v1"}),
        );
        let e = authenticate(&c, &Credentials { authorization: Some(&creds(&bad)), ..Default::default() }, None, NOW)
            .unwrap_err();
        assert!(e.message.contains("audience"));
    }

    #[test]
    fn keys_map_to_roles() {
        let c = config();
        let p =
            authenticate(&c, &Credentials { apikey: Some("sb_secret_abc"), ..Default::default() }, None, NOW).unwrap();
        assert_eq!(p.principal.role, Role::Service);
        let p = authenticate(&c, &Credentials { apikey: Some("sb_publishable_xyz"), ..Default::default() }, None, NOW)
            .unwrap();
        assert_eq!(p.principal.role, Role::Anon);
        assert_eq!(auth_with("Bearer sb_secret_abc").unwrap().role, Role::Service);
        let e = authenticate(&c, &Credentials { apikey: Some("sb_secret_abd"), ..Default::default() }, None, NOW)
            .unwrap_err();
        assert_eq!((e.status, e.code), (401, "invalid_api_key"));
    }

    fn sign(message: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"hmac-secret").unwrap();
        mac.update(message);
        crate::hex(&mac.finalize().into_bytes())
    }

    /// The README's worked example of a v1 signature.
    #[test]
    fn v1_readme_example() {
        let body = br#"{"projectId":"p1"}"#;
        let path = "/functions/v1/figma-compat/uui/generate?x=1";
        let text = v1_string_to_sign("post", path, "1767225600000", body, "agent-7");
        assert_eq!(
            text,
            "v1\nPOST\n/functions/v1/figma-compat/uui/generate?x=1\n1767225600000\n\
             a4b5b524bbdb82b9431320a3a37c61f82e34f12a15cc7ecdae7e018cf1c9e348\nagent-7"
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(b"example-hmac-secret").unwrap();
        mac.update(text.as_bytes());
        let sig = crate::hex(&mac.finalize().into_bytes());
        assert_eq!(sig, "2824170326867a1684ad139f7eef045f872ae94de4c13d5c3bfd95566092f914");
        let c = AuthConfig { hmac_secret: Some("example-hmac-secret".into()), ..Default::default() };
        let signature = format!("v1={sig}");
        let creds = Credentials {
            x_ts: Some("1767225600000"),
            x_signature: Some(&signature),
            agent_id: Some("agent-7"),
            method: "POST",
            path_and_query: path,
            body,
            ..Default::default()
        };
        let a = authenticate(&c, &creds, None, 1_767_225_600).unwrap();
        assert_eq!((a.principal.id(), a.signature.as_deref()), ("worker:agent-7".into(), Some(sig.as_str())));
    }

    /// A v1 request: what the tests below vary one part of at a time.
    struct V1 {
        method: &'static str,
        path: &'static str,
        ts: String,
        body: &'static [u8],
        agent: Option<&'static str>,
        signature: String,
    }

    impl V1 {
        fn signed(method: &'static str, path: &'static str, body: &'static [u8], agent: Option<&'static str>) -> V1 {
            let ts = (NOW * 1000).to_string();
            let text = v1_string_to_sign(method, path, &ts, body, agent.unwrap_or_default());
            V1 { method, path, ts, body, agent, signature: format!("v1={}", sign(text.as_bytes())) }
        }

        fn send(&self, c: &AuthConfig) -> Result<Authenticated, ApiError> {
            let creds = Credentials {
                x_ts: Some(&self.ts),
                x_signature: Some(&self.signature),
                agent_id: self.agent,
                method: self.method,
                path_and_query: self.path,
                body: self.body,
                ..Default::default()
            };
            authenticate(c, &creds, None, NOW)
        }
    }

    fn refused(result: Result<Authenticated, ApiError>) -> String {
        let e = result.unwrap_err();
        assert_eq!((e.status, e.code), (401, "invalid_signature"));
        assert!(e.headers.iter().any(|(k, _)| k == "WWW-Authenticate"));
        e.message
    }

    #[test]
    fn v1_binds_method_path_timestamp_body_and_agent() {
        let good = || V1::signed("POST", "/api/collab/task.claim?x=1", br#"{"a":1}"#, Some("agent-1"));
        let a = good().send(&config()).unwrap();
        assert_eq!(
            (a.principal.role, a.principal.via, a.principal.id()),
            (Role::Worker, Via::Signature, "worker:agent-1".into())
        );
        assert_eq!(a.signature.as_deref(), good().signature.strip_prefix("v1="));

        type Change = fn(&mut V1);
        let tampered: [(&str, Change); 7] = [
            ("another method", |r| r.method = "PUT"),
            ("another path", |r| r.path = "/api/collab/task.result?x=1"),
            ("another query", |r| r.path = "/api/collab/task.claim?x=2"),
            ("another body", |r| r.body = br#"{"a":2}"#),
            ("another agent", |r| r.agent = Some("agent-2")),
            ("no agent", |r| r.agent = None),
            ("a new timestamp", |r| r.ts = (NOW * 1000 + 1).to_string()),
        ];
        for (why, change) in tampered {
            let mut r = good();
            change(&mut r);
            assert_eq!(refused(r.send(&config())), "the signature does not match", "{why}");
        }
        let mut old = V1::signed("POST", "/p", b"", None);
        old.ts = ((NOW - 61) * 1000).to_string();
        old.signature = format!("v1={}", sign(v1_string_to_sign("POST", "/p", &old.ts, b"", "").as_bytes()));
        assert!(refused(old.send(&config())).contains("window"));
        let anonymous = V1::signed("GET", "/p", b"", None).send(&config()).unwrap();
        assert_eq!(anonymous.principal.id(), "worker:hmac");
    }

    #[test]
    fn v1_signatures_have_one_spelling() {
        let good = V1::signed("GET", "/p", b"", None);
        let hex = good.signature.strip_prefix("v1=").unwrap().to_string();
        let mixed: String =
            hex.chars().enumerate().map(|(i, c)| if i % 2 == 0 { c.to_ascii_uppercase() } else { c }).collect();
        for spelling in [
            format!("v1={}", hex.to_ascii_uppercase()),
            format!("v1={mixed}"),
            format!("v1=+{hex}"),
            format!("v1= {hex}"),
            format!("v1={hex} "),
            format!("v1={hex}00"),
            format!("v1={}", &hex[..62]),
            format!("V1={hex}"),
            format!("v1=v1={hex}"),
        ] {
            let r = V1 { signature: spelling.clone(), ..V1::signed("GET", "/p", b"", None) };
            refused(r.send(&config()));
        }
    }

    #[test]
    fn timestamps_are_plain_digits() {
        for ts in ["+1800000000000", " 1800000000000", "1800000000000.0", "-1", "", "18000000000000000000"] {
            let mut r = V1::signed("GET", "/p", b"", None);
            r.ts = ts.to_string();
            r.signature = format!("v1={}", sign(v1_string_to_sign("GET", "/p", ts, b"", "").as_bytes()));
            refused(r.send(&config()));
        }
    }

    fn path_form(sig: &str, ts: &str, path: &str, agent: Option<&str>) -> Result<Authenticated, ApiError> {
        let creds = Credentials {
            x_ts: Some(ts),
            x_signature: Some(sig),
            agent_id: agent,
            method: "POST",
            path_and_query: path,
            ..Default::default()
        };
        authenticate(&config(), &creds, None, NOW)
    }

    #[test]
    fn hmac_over_path_and_query() {
        let ts = (NOW * 1000).to_string();
        let sig = sign(format!("{ts}:/figma-compat/healthz?x=1").as_bytes());
        let a = path_form(&sig, &ts, "/figma-compat/healthz?x=1", Some("plugin-1")).unwrap();
        assert_eq!((a.principal.role, a.principal.via), (Role::Worker, Via::Signature));
        // The agent id is not signed here, so it names no one.
        assert_eq!((a.principal.sub.as_deref(), a.principal.id()), (None, "worker:hmac".to_string()));
        assert_eq!(
            path_form(&sig, &ts, "/figma-compat/healthz?x=1", Some("plugin-2")).unwrap().principal.id(),
            "worker:hmac"
        );
        refused(path_form(&sig, &ts, "/figma-compat/healthz?x=2", None));
        let old = ((NOW - 61) * 1000).to_string();
        let old_sig = sign(format!("{old}:/figma-compat/healthz?x=1").as_bytes());
        assert!(refused(path_form(&old_sig, &old, "/figma-compat/healthz?x=1", None)).contains("window"));
    }

    #[test]
    fn the_previous_hmac_secret_is_accepted_during_a_rotation() {
        let ts = (NOW * 1000).to_string();
        let sig = sign(format!("{ts}:/p").as_bytes());
        let creds =
            Credentials { x_ts: Some(&ts), x_signature: Some(&sig), path_and_query: "/p", ..Default::default() };
        let mut rotated = config();
        rotated.hmac_secret = Some("the-new-secret".into());
        refused(authenticate(&rotated, &creds, None, NOW));
        rotated.hmac_previous_secret = config().hmac_secret;
        assert_eq!(authenticate(&rotated, &creds, None, NOW).unwrap().principal.via, Via::Signature);
    }

    #[test]
    fn the_path_form_takes_either_case_but_has_one_canonical_signature() {
        let ts = (NOW * 1000).to_string();
        let sig = sign(format!("{ts}:/p").as_bytes());
        let upper = sig.to_ascii_uppercase();
        let mixed: String =
            sig.chars().enumerate().map(|(i, c)| if i % 3 == 0 { c.to_ascii_uppercase() } else { c }).collect();
        for spelling in [&sig, &upper, &mixed] {
            let a = path_form(spelling, &ts, "/p", None).unwrap();
            assert_eq!(a.signature.as_deref(), Some(sig.as_str()), "the ledger sees one key for {spelling}");
        }
        for spelling in
            [format!("+{sig}"), format!("{sig} "), format!("0{sig}"), sig[1..].to_string(), format!("v1={sig}")]
        {
            refused(path_form(&spelling, &ts, "/p", None));
        }
    }

    fn body_form(c: &AuthConfig, ts: &str, sig: &str, body: &[u8]) -> Result<Authenticated, ApiError> {
        let creds = Credentials { x_timestamp: Some(ts), x_signature: Some(sig), body, ..Default::default() };
        authenticate(c, &creds, None, NOW)
    }

    #[test]
    fn hmac_over_body_only_when_enabled() {
        let body = br#"{"a":1}"#;
        let (ts, sig) = (NOW.to_string(), sign(body));
        assert!(refused(body_form(&config(), &ts, &sig, body)).contains("EDGE_HMAC_SCHEMES"), "off by default");
        let mut c = config();
        c.hmac_schemes.body = true;
        let a = body_form(&c, &ts, &sig, body).unwrap();
        assert_eq!((a.principal.role, a.principal.id()), (Role::Worker, "worker:hmac".to_string()));
        assert_eq!(a.signature, Some(sig.clone()));
        refused(body_form(&c, &ts, &sig, br#"{"a":2}"#));
        assert_eq!(body_form(&c, &ts, &sig.to_ascii_uppercase(), body).unwrap().signature, Some(sig));
    }

    #[test]
    fn disabled_schemes_are_refused() {
        let mut c = config();
        c.hmac_schemes = HmacSchemes::parse("path").unwrap();
        assert!(refused(V1::signed("GET", "/p", b"", None).send(&c)).contains("EDGE_HMAC_SCHEMES"));
        c.hmac_schemes = HmacSchemes::parse("v1").unwrap();
        let ts = (NOW * 1000).to_string();
        let creds = Credentials {
            x_ts: Some(&ts),
            x_signature: Some(&sign(format!("{ts}:/p").as_bytes())),
            path_and_query: "/p",
            ..Default::default()
        };
        assert!(refused(authenticate(&c, &creds, None, NOW)).contains("EDGE_HMAC_SCHEMES"));
        assert!(HmacSchemes::parse("v1,v2").is_err());
    }

    #[test]
    fn a_signature_beside_a_token_is_still_spent() {
        let mut c = config();
        c.require_hmac = true;
        let r = V1::signed("GET", "/p", b"", None);
        let token = bearer(&jwt(json!({"role": "service_role", "exp": NOW + 60})));
        let creds = Credentials {
            authorization: Some(&token),
            x_ts: Some(&r.ts),
            x_signature: Some(&r.signature),
            method: "GET",
            path_and_query: "/p",
            ..Default::default()
        };
        let a = authenticate(&c, &creds, None, NOW).unwrap();
        assert_eq!((a.principal.role, a.signature.as_deref()), (Role::Service, r.signature.strip_prefix("v1=")));
    }

    fn es256_key(seed: u8) -> p256::ecdsa::SigningKey {
        p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap()
    }

    /// Two fixed 2048-bit RSA keys (`openssl genpkey -algorithm RSA`).
    const RSA_A: &str = include_str!("../../testdata/rsa-a.pem");
    const RSA_B: &str = include_str!("../../testdata/rsa-b.pem");

    fn rsa_key(pem: &str) -> jwt_compact::alg::RsaPrivateKey {
        use rsa::pkcs8::DecodePrivateKey;
        jwt_compact::alg::RsaPrivateKey::from_pkcs8_pem(pem).unwrap()
    }

    fn jwk_doc(keys: &[(&str, JsonWebKey<'_>)]) -> Value {
        let items: Vec<Value> = keys
            .iter()
            .map(|(kid, key)| {
                let mut jwk = serde_json::to_value(key).unwrap();
                jwk["kid"] = (*kid).into();
                jwk
            })
            .collect();
        json!({ "keys": items })
    }

    fn jwks_of(keys: &[(&str, JsonWebKey<'_>)]) -> JwkSet {
        JwkSet::parse(jwk_doc(keys).to_string().as_bytes()).unwrap()
    }

    fn signed<A: jwt_compact::Algorithm>(alg: A, kid: &str, key: &A::SigningKey) -> String {
        let Value::Object(map) = json!({"role": "authenticated", "sub": "u1", "exp": NOW + 60}) else { panic!() };
        alg.token(&Header::empty().with_key_id(kid), &Claims::new(map), key).unwrap()
    }

    fn auth_against(token: &str, set: &JwkSet) -> Result<Principal, ApiError> {
        authenticate(
            &config(),
            &Credentials { authorization: Some(&bearer(token)), ..Default::default() },
            Some(set),
            NOW,
        )
        .map(|a| a.principal)
    }

    #[test]
    fn es256_tokens_verify_against_the_jwks_by_kid() {
        let (a, b) = (es256_key(1), es256_key(2));
        let set = jwks_of(&[("a", JsonWebKey::from(a.verifying_key()))]);
        let p = auth_against(&signed(Es256, "a", &a), &set).unwrap();
        assert_eq!((p.role, p.sub.as_deref()), (Role::Authenticated, Some("u1")));
        assert_eq!(jwks_key_id(Some(&bearer(&signed(Es256, "a", &a)))).as_deref(), Some("a"));
        assert_eq!(
            auth_against(&signed(Es256, "b", &b), &set).unwrap_err().message,
            "the token's signing key is unknown"
        );
        assert_eq!(
            auth_against(&signed(Es256, "a", &b), &set).unwrap_err().message,
            "the token's signature does not verify"
        );
        assert!(set.has("a") && !set.has("b"));
    }

    #[test]
    fn rs256_tokens_verify_against_the_jwks_rsa_key_of_their_kid_only() {
        let (a, b, ec) = (rsa_key(RSA_A), rsa_key(RSA_B), es256_key(1));
        let set = jwks_of(&[("r", JsonWebKey::from(&a.to_public_key())), ("e", JsonWebKey::from(ec.verifying_key()))]);
        let rs256 = Rsa::rs256();
        let good = signed(rs256, "r", &a);
        let p = auth_against(&good, &set).unwrap();
        assert_eq!((p.role, p.sub.as_deref(), p.via), (Role::Authenticated, Some("u1"), Via::Jwt));
        assert_eq!(jwks_key_id(Some(&bearer(&good))).as_deref(), Some("r"));
        assert!(auth_against(&signed(Es256, "e", &ec), &set).is_ok(), "ES256 still verifies beside RSA keys");

        let (head, signature) = good.rsplit_once('.').unwrap();
        let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
        let tampered = format!("{head}.{flipped}{}", &signature[1..]);
        // The classic confusion: HS256 with the public key as the HMAC secret.
        let public = serde_json::to_vec(&JsonWebKey::from(&a.to_public_key())).unwrap();
        let Value::Object(map) = json!({"role": "service_role", "exp": NOW + 60}) else { panic!() };
        let hs256 = Hs256.token(&Header::empty().with_key_id("r"), &Claims::new(map), &Hs256Key::new(public)).unwrap();
        for (token, why) in [
            (signed(rs256, "r", &b), "the token's signature does not verify"),
            (tampered, "the token's signature does not verify"),
            (signed(rs256, "x", &a), "the token's signing key is unknown"),
            // No algorithm confusion: a kid selects a key of the token's own algorithm.
            (signed(rs256, "e", &a), "the token's signing key is unknown"),
            (signed(Es256, "r", &ec), "the token's signing key is unknown"),
            (hs256, "the token's signature does not verify"),
        ] {
            let e = auth_against(&token, &set).unwrap_err();
            assert_eq!((e.status, e.code, e.message.as_str()), (401, "invalid_token", why));
            assert!(e.headers.iter().any(|(k, v)| k == "WWW-Authenticate" && v.contains("invalid_token")));
        }
    }

    #[test]
    fn a_token_issued_in_the_future_is_refused_whatever_its_algorithm() {
        let (rsa, ec) = (rsa_key(RSA_A), es256_key(1));
        let set =
            jwks_of(&[("r", JsonWebKey::from(&rsa.to_public_key())), ("e", JsonWebKey::from(ec.verifying_key()))]);
        let claims = |iat: i64| {
            let Value::Object(map) = json!({"role": "service_role", "exp": NOW + 600, "iat": iat}) else { panic!() };
            Claims::new(map)
        };
        for iat in [NOW + 31, NOW + 86_400] {
            for token in [
                Hs256.token(&Header::empty(), &claims(iat), &Hs256Key::new(SECRET.as_bytes())).unwrap(),
                Es256.token(&Header::empty().with_key_id("e"), &claims(iat), &ec).unwrap(),
                Rsa::rs256().token(&Header::empty().with_key_id("r"), &claims(iat), &rsa).unwrap(),
            ] {
                let e = auth_against(&token, &set).unwrap_err();
                assert_eq!((e.status, e.code), (401, "invalid_token"));
                assert_eq!(e.message, "the token was issued in the future");
                assert!(e.headers.iter().any(|(k, v)| k == "WWW-Authenticate" && v.contains("invalid_token")));
            }
        }
        let now = Es256.token(&Header::empty().with_key_id("e"), &claims(NOW + 30), &ec).unwrap();
        assert!(auth_against(&now, &set).is_ok(), "30 s of skew");
    }

    #[test]
    fn jwks_keys_of_other_types_or_declared_for_other_uses_are_skipped() {
        let (rsa, ec) = (rsa_key(RSA_A).to_public_key(), es256_key(1));
        let mut doc = jwk_doc(&[
            ("rs", JsonWebKey::from(&rsa)),
            ("rs-as-es", JsonWebKey::from(&rsa)),
            ("rs-enc", JsonWebKey::from(&rsa)),
            ("es", JsonWebKey::from(ec.verifying_key())),
            ("es-as-rs", JsonWebKey::from(ec.verifying_key())),
        ]);
        let keys = doc["keys"].as_array_mut().unwrap();
        keys[0]["alg"] = "RS256".into();
        keys[0]["use"] = "sig".into();
        keys[1]["alg"] = "ES256".into();
        keys[2]["use"] = "enc".into();
        keys[4]["alg"] = "RS256".into();
        // 1008 bits: shorter than RS256 allows.
        let mut weak = keys[0].clone();
        weak["n"] = weak["n"].as_str().unwrap()[..168].into();
        weak["kid"] = "weak".into();
        keys.push(weak);
        keys.push(json!({"kty": "oct", "kid": "oct", "k": "c2VjcmV0"}));
        keys.push(
            json!({"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}),
        );
        let set = JwkSet::parse(doc.to_string().as_bytes()).unwrap();
        let kept: Vec<&str> = set.keys.iter().map(|(kid, _)| kid.as_str()).collect();
        assert_eq!(kept, ["rs", "es"]);
    }

    #[test]
    fn no_credentials_is_anon_unless_optional() {
        let p = authenticate(&config(), &Credentials::default(), None, NOW).unwrap().principal;
        assert_eq!(p.role, Role::Anon);
        let e = authorize(&p, &[Role::Service]).unwrap_err();
        assert_eq!((e.status, e.code), (401, "missing_credentials"));
        let mut c = config();
        c.auth_optional = true;
        assert_eq!(authenticate(&c, &Credentials::default(), None, NOW).unwrap().principal.role, Role::Service);
        c.require_hmac = true;
        assert_eq!(authenticate(&c, &Credentials::default(), None, NOW).unwrap_err().code, "signature_required");
    }

    #[test]
    fn wrong_role_is_403() {
        let p = auth_with(&bearer(&jwt(json!({"role": "authenticated", "exp": NOW + 60})))).unwrap();
        let e = authorize(&p, &[Role::Worker, Role::Service]).unwrap_err();
        assert_eq!((e.status, e.code), (403, "forbidden"));
        assert!(authorize(&p, &[Role::Authenticated]).is_ok());
    }
}
