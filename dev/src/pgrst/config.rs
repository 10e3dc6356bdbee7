//! The gateway's configuration, read from PostgREST's own variables:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PGRST_DB_URI` | required | the database, as the authenticator role |
//! | `PGRST_DB_SCHEMAS` | `public` | exposed schemas, the first is the default |
//! | `PGRST_DB_ANON_ROLE` | none | role of requests without a JWT |
//! | `PGRST_JWT_SECRET` | none | HS256 secret, at least 32 characters |
//! | `PGRST_JWT_ROLE_CLAIM_KEY` | `.role` | JSPath to the role claim |
//! | `PGRST_DB_PRE_REQUEST` | none | function called before each request |
//! | `PGRST_DB_TX_END` | `commit` | `commit`, `rollback`, `*-allow-override` |
//! | `PGRST_DB_MAX_ROWS` | none | cap on the rows of every resource read |
//! | `PGRST_DB_EXTRA_SEARCH_PATH` | `public` | schemas after the request's in `search_path` |
//! | `PGRST_DB_AGGREGATES_ENABLED` | `false` | `avg() count() max() min() sum()` in `select` |
//! | `PGRST_APP_SETTINGS_*` | none | `app.settings.*` for every request |
//! | `PGRST_SERVER_PORT` | `3000` | port (`PGRST_SERVER_HOST`, `127.0.0.1`, in the binary) |
//! | `PGRST_DB_POOL` | `10` | connections |
//! | `GATEWAY_PUBLISHABLE_KEYS`, `GATEWAY_SECRET_KEYS` | none | Supabase-style opaque keys for `anon` and `service_role` |

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TxEnd {
    Commit,
    CommitAllowOverride,
    Rollback,
    RollbackAllowOverride,
}

impl TxEnd {
    pub fn allows_override(self) -> bool {
        matches!(self, TxEnd::CommitAllowOverride | TxEnd::RollbackAllowOverride)
    }
}

/// One step of `jwt-role-claim-key`: `.key`, `."quoted key"`, `[0]`, or a
/// final filter on an array of strings (`[?(@ == "admin")]`).
#[derive(Debug, Clone, PartialEq)]
pub enum JsPathStep {
    Key(String),
    Index(usize),
    Filter(JsFilter, String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JsFilter {
    Equals,
    NotEquals,
    StartsWith,
    EndsWith,
    Contains,
}

/// Parses a JSPath such as `.realm_access.roles[?(@ == "admin")]`.
pub fn parse_js_path(s: &str) -> Result<Vec<JsPathStep>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut steps = Vec::new();
    let quoted = |i: &mut usize| -> Result<String, String> {
        if chars.get(*i) != Some(&'"') {
            return Err(format!("expected a quote at {}", *i + 1));
        }
        *i += 1;
        let start = *i;
        while *i < chars.len() && chars[*i] != '"' {
            *i += 1;
        }
        if *i >= chars.len() {
            return Err("unterminated quote".into());
        }
        *i += 1;
        Ok(chars[start..*i - 1].iter().collect())
    };
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                if chars.get(i) == Some(&'"') {
                    steps.push(JsPathStep::Key(quoted(&mut i)?));
                } else {
                    let start = i;
                    while i < chars.len() && (chars[i].is_alphanumeric() || "_$@".contains(chars[i])) {
                        i += 1;
                    }
                    if start == i {
                        return Err(format!("expected a key at {}", i + 1));
                    }
                    steps.push(JsPathStep::Key(chars[start..i].iter().collect()));
                }
            }
            '[' if chars.get(i + 1..i + 4) == Some(&['?', '(', '@']) => {
                i += 4;
                while chars.get(i) == Some(&' ') {
                    i += 1;
                }
                let rest: String = chars[i..].iter().collect();
                let (op, len) = [
                    ("==^", JsFilter::EndsWith),
                    ("==", JsFilter::Equals),
                    ("!=", JsFilter::NotEquals),
                    ("^==", JsFilter::StartsWith),
                    ("*==", JsFilter::Contains),
                ]
                .iter()
                .find(|(p, _)| rest.starts_with(p))
                .map(|(p, f)| (*f, p.len()))
                .ok_or_else(|| "unknown filter operator".to_string())?;
                i += len;
                while chars.get(i) == Some(&' ') {
                    i += 1;
                }
                let value = quoted(&mut i)?;
                if chars.get(i..i + 2) != Some(&[')', ']']) || i + 2 != chars.len() {
                    return Err("a filter must end the path".into());
                }
                i += 2;
                steps.push(JsPathStep::Filter(op, value));
            }
            '[' => {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                let n: usize = chars[start..i].iter().collect::<String>().parse().map_err(|_| "expected an index")?;
                if chars.get(i) != Some(&']') {
                    return Err("expected ]".into());
                }
                i += 1;
                steps.push(JsPathStep::Index(n));
            }
            c => return Err(format!("unexpected {c:?} at {}", i + 1)),
        }
    }
    if steps.is_empty() {
        return Err("empty path".into());
    }
    Ok(steps)
}

#[derive(Debug, Clone)]
pub struct Config {
    pub db_uri: String,
    pub schemas: Vec<String>,
    pub anon_role: Option<String>,
    pub jwt_secret: Option<String>,
    pub role_claim_key: Vec<JsPathStep>,
    pub pre_request: Option<String>,
    pub tx_end: TxEnd,
    pub max_rows: Option<i64>,
    pub extra_search_path: Vec<String>,
    pub aggregates_enabled: bool,
    /// `app.settings.<name>` and its value, set for every request.
    pub app_settings: Vec<(String, String)>,
    pub port: u16,
    pub pool_size: usize,
    /// Supabase-style opaque keys mapped to `anon` and `service_role`.
    pub publishable_keys: Vec<String>,
    pub secret_keys: Vec<String>,
}

impl Config {
    /// Reads every variable from `vars` (the environment), including the
    /// `PGRST_APP_SETTINGS_*` family.
    pub fn from_pairs(vars: impl IntoIterator<Item = (String, String)>) -> Result<Config, String> {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let mut config = Config::from_lookup(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))?;
        config.app_settings = vars
            .iter()
            .filter_map(|(k, v)| Some((format!("app.settings.{}", k.strip_prefix("PGRST_APP_SETTINGS_")?), v.clone())))
            .filter(|(k, _)| k.len() > "app.settings.".len())
            .collect();
        config.app_settings.sort();
        Ok(config)
    }

    /// Reads PostgREST's variable names through `get` (no app settings:
    /// they need the names listed, see [`Config::from_pairs`]).
    pub fn from_lookup(raw: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let get = |k: &str| raw(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let list = |v: Option<String>| -> Vec<String> {
            v.map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
                .unwrap_or_default()
        };
        let db_uri = get("PGRST_DB_URI").ok_or("PGRST_DB_URI is required")?;
        let mut schemas: Vec<String> = list(get("PGRST_DB_SCHEMAS"));
        if schemas.is_empty() {
            schemas.push("public".into());
        }
        let tx_end = match get("PGRST_DB_TX_END").as_deref() {
            None | Some("commit") => TxEnd::Commit,
            Some("commit-allow-override") => TxEnd::CommitAllowOverride,
            Some("rollback") => TxEnd::Rollback,
            Some("rollback-allow-override") => TxEnd::RollbackAllowOverride,
            Some(other) => return Err(format!("PGRST_DB_TX_END: unknown value {other:?}")),
        };
        let number = |k: &str| -> Result<Option<i64>, String> {
            get(k).map(|v| v.parse::<i64>().map_err(|_| format!("{k} must be a number, got {v:?}"))).transpose()
        };
        let jwt_secret = get("PGRST_JWT_SECRET");
        if jwt_secret.as_ref().is_some_and(|s| s.len() < 32) {
            return Err("PGRST_JWT_SECRET must be at least 32 characters".into());
        }
        let role_claim_key = match get("PGRST_JWT_ROLE_CLAIM_KEY").or_else(|| get("PGRST_ROLE_CLAIM_KEY")) {
            None => vec![JsPathStep::Key("role".into())],
            Some(path) => parse_js_path(&path).map_err(|e| format!("PGRST_JWT_ROLE_CLAIM_KEY: {e}"))?,
        };
        // Set but empty: no extra schemas; unset: `public`.
        let extra_search_path = match raw("PGRST_DB_EXTRA_SEARCH_PATH") {
            Some(v) => list(Some(v)),
            None => vec!["public".to_string()],
        };
        let aggregates_enabled = match get("PGRST_DB_AGGREGATES_ENABLED").map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => return Err(format!("PGRST_DB_AGGREGATES_ENABLED must be true or false, got {other:?}")),
        };
        Ok(Config {
            db_uri,
            schemas,
            anon_role: get("PGRST_DB_ANON_ROLE"),
            jwt_secret,
            role_claim_key,
            pre_request: get("PGRST_DB_PRE_REQUEST"),
            tx_end,
            max_rows: number("PGRST_DB_MAX_ROWS")?,
            extra_search_path,
            aggregates_enabled,
            app_settings: Vec::new(),
            port: number("PGRST_SERVER_PORT")?.unwrap_or(3000) as u16,
            pool_size: number("PGRST_DB_POOL")?.unwrap_or(10).max(1) as usize,
            publishable_keys: list(get("GATEWAY_PUBLISHABLE_KEYS")),
            secret_keys: list(get("GATEWAY_SECRET_KEYS")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_paths() {
        assert_eq!(parse_js_path(".role").unwrap(), vec![JsPathStep::Key("role".into())]);
        assert_eq!(
            parse_js_path(".\"https://x.io/claims\".roles[1]").unwrap(),
            vec![JsPathStep::Key("https://x.io/claims".into()), JsPathStep::Key("roles".into()), JsPathStep::Index(1)]
        );
        assert_eq!(
            parse_js_path(".realm.roles[?(@ ^== \"app_\")]").unwrap()[2],
            JsPathStep::Filter(JsFilter::StartsWith, "app_".into())
        );
        assert!(parse_js_path("role").is_err());
        assert!(parse_js_path(".roles[?(@ == \"a\")].x").is_err());
    }

    #[test]
    fn app_settings_and_defaults() {
        let c = Config::from_pairs([
            ("PGRST_DB_URI".to_string(), "postgres://x".to_string()),
            ("PGRST_APP_SETTINGS_JWT_EXP".to_string(), "3600".to_string()),
            ("OTHER".to_string(), "y".to_string()),
        ])
        .unwrap();
        assert_eq!(c.app_settings, vec![("app.settings.JWT_EXP".to_string(), "3600".to_string())]);
        assert_eq!(c.extra_search_path, vec!["public".to_string()]);
        assert_eq!(c.role_claim_key, vec![JsPathStep::Key("role".into())]);
        assert!(!c.aggregates_enabled);
    }
}
