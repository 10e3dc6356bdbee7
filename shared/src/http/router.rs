//! Route matching for the one route table. Both URL families reach the same
//! entry: `/functions/v1/<fn>/...` and `/<fn>/...`, and the Collab API at
//! `/api/collab/...` (also the older `/collab/...`).

use crate::auth::Role;
use crate::http::Method;

pub struct Route<E: 'static> {
    pub methods: &'static [Method],
    /// Who may call it; checked once, before the handler runs.
    pub allow: &'static [Role],
    /// Patterns after normalisation; `:name` matches one segment, a final
    /// `*name` the rest of the path (one segment or more).
    pub paths: &'static [&'static str],
    pub endpoint: E,
}

#[derive(Debug, PartialEq)]
pub enum RouteMatch<'r, E> {
    Found {
        endpoint: &'r E,
        allow: &'static [Role],
        params: Vec<(&'static str, String)>,
    },
    /// The path exists, not with this method.
    MethodNotAllowed {
        allowed: Vec<&'static str>,
    },
    NotFound,
}

/// Folds the URL families onto one: drops `/functions/v1`, maps
/// `/collab/` to `/api/collab/`, and drops a trailing slash.
pub fn normalize(path: &str) -> &str {
    let path = match path.strip_prefix("/functions/v1") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => path,
    };
    let path = if path.len() > 1 { path.trim_end_matches('/') } else { path };
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

fn collab_alias(path: &str) -> Option<String> {
    path.strip_prefix("/collab/").map(|rest| format!("/api/collab/{rest}"))
}

/// `method` is `None` for a method the bundle does not know (`PROPFIND`,
/// `QUERY`, ...): no route serves it, so a known path answers 405 with its
/// methods.
pub fn find<'r, E>(routes: &'r [Route<E>], method: impl Into<Option<Method>>, raw_path: &str) -> RouteMatch<'r, E> {
    let method = method.into();
    let normalized = normalize(raw_path);
    let alias = collab_alias(normalized);
    let path = alias.as_deref().unwrap_or(normalized);
    let mut allowed: Vec<&'static str> = Vec::new();
    for route in routes {
        let Some(params) = route.paths.iter().find_map(|p| match_pattern(p, path)) else { continue };
        // HEAD is GET without the body.
        let effective = if method == Some(Method::Head) { Some(Method::Get) } else { method };
        if effective.is_some_and(|m| route.methods.contains(&m)) {
            return RouteMatch::Found { endpoint: &route.endpoint, allow: route.allow, params };
        }
        for m in route.methods {
            allowed.push(m.as_str());
            if *m == Method::Get {
                allowed.push("HEAD");
            }
        }
    }
    if allowed.is_empty() {
        RouteMatch::NotFound
    } else {
        allowed.push("OPTIONS");
        allowed.dedup();
        RouteMatch::MethodNotAllowed { allowed }
    }
}

fn match_pattern(pattern: &'static str, path: &str) -> Option<Vec<(&'static str, String)>> {
    let mut params = Vec::new();
    let mut pattern_segments = pattern.split('/');
    let mut path_segments = path.split('/');
    loop {
        match (pattern_segments.next(), path_segments.next()) {
            (None, None) => return Some(params),
            (Some(p), Some(s)) => {
                if let Some(name) = p.strip_prefix('*') {
                    let rest: Vec<&str> = std::iter::once(s).chain(path_segments).collect();
                    let joined = rest.join("/");
                    let value = percent_encoding::percent_decode_str(&joined).decode_utf8().ok()?;
                    params.push((name, value.into_owned()));
                    return (!rest.iter().all(|s| s.is_empty())).then_some(params);
                }
                if let Some(name) = p.strip_prefix(':') {
                    if s.is_empty() {
                        return None;
                    }
                    let value = percent_encoding::percent_decode_str(s).decode_utf8().ok()?;
                    params.push((name, value.into_owned()));
                } else if p != s {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum E {
        Health,
        Job,
        Assign,
        Object,
    }

    const ANY: &[Role] = &[Role::Anon];
    const ROUTES: &[Route<E>] = &[
        Route { methods: &[Method::Get], allow: ANY, paths: &["/api/collab/health", "/health"], endpoint: E::Health },
        Route { methods: &[Method::Get], allow: ANY, paths: &["/api/collab/job/:id"], endpoint: E::Job },
        Route { methods: &[Method::Post], allow: ANY, paths: &["/api/collab/task.assign"], endpoint: E::Assign },
        Route { methods: &[Method::Get], allow: ANY, paths: &["/artifact/:bucket/*path"], endpoint: E::Object },
    ];

    fn found(m: Method, path: &str) -> Option<(&'static E, Vec<(&'static str, String)>)> {
        match find(ROUTES, m, path) {
            RouteMatch::Found { endpoint, params, .. } => Some((endpoint, params)),
            _ => None,
        }
    }

    #[test]
    fn both_url_families_reach_one_route() {
        for path in [
            "/api/collab/health",
            "/functions/v1/health",
            "/health",
            "/health/",
            "/collab/health",
            "/functions/v1/api/collab/health",
        ] {
            assert_eq!(found(Method::Get, path).map(|f| f.0), Some(&E::Health), "{path}");
        }
    }

    #[test]
    fn head_is_served_by_get_routes() {
        assert_eq!(found(Method::Head, "/health").map(|f| f.0), Some(&E::Health));
    }

    #[test]
    fn params_are_captured_and_decoded() {
        let (e, params) = found(Method::Get, "/api/collab/job/a%20b").unwrap();
        assert_eq!(e, &E::Job);
        assert_eq!(params, vec![("id", "a b".to_string())]);
        assert!(found(Method::Get, "/api/collab/job/").is_none());
        assert!(found(Method::Get, "/api/collab/job/1/2").is_none());
    }

    #[test]
    fn a_final_star_takes_the_rest_of_the_path_decoded_once() {
        let (e, params) = found(Method::Get, "/functions/v1/artifact/artifacts/j/a%20b/c.png").unwrap();
        assert_eq!(e, &E::Object);
        assert_eq!(params, vec![("bucket", "artifacts".to_string()), ("path", "j/a b/c.png".to_string())]);
        let (_, params) = found(Method::Get, "/artifact/b/%252e%252e").unwrap();
        assert_eq!(params[1].1, "%2e%2e", "decoded once, so the path check sees what is left encoded");
        assert!(found(Method::Get, "/artifact/b").is_none());
        assert!(found(Method::Get, "/artifact/b/").is_none());
    }

    #[test]
    fn wrong_method_and_unknown_path() {
        assert_eq!(
            find(ROUTES, Method::Get, "/api/collab/task.assign"),
            RouteMatch::MethodNotAllowed { allowed: vec!["POST", "OPTIONS"] }
        );
        assert_eq!(
            find(ROUTES, Method::Post, "/health"),
            RouteMatch::MethodNotAllowed { allowed: vec!["GET", "HEAD", "OPTIONS"] }
        );
        assert_eq!(
            find(ROUTES, None, "/health"),
            RouteMatch::MethodNotAllowed { allowed: vec!["GET", "HEAD", "OPTIONS"] },
            "a method nobody knows is never taken for another"
        );
        assert_eq!(find(ROUTES, Method::Get, "/nope"), RouteMatch::NotFound);
        assert_eq!(find(ROUTES, Method::Get, "/functions/v1"), RouteMatch::NotFound);
        assert_eq!(find(ROUTES, Method::Get, "/functions/v1x/health"), RouteMatch::NotFound);
    }
}
