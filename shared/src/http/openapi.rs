//! The OpenAPI 3.1 document, built from the route table: paths, methods and
//! who may call come from [`ROUTES`], what each operation takes and answers
//! from `openapi/spec.json`, keyed by endpoint. A unit test holds the two to
//! each other, so the document cannot drift from what is served.

use serde_json::{json, Map, Value};

use crate::auth::Role;
use crate::http::routes::{Endpoint, ANYONE, ROUTES};
use crate::http::Method;

const SPEC: &str = include_str!("../../openapi/spec.json");
const PAGE: &str = include_str!("../../openapi/docs.html");

/// The path as clients call it: Collab paths as they are, functions under
/// `/functions/v1`, `:param` and `*rest` as `{param}` and `{rest}`.
fn public_path(pattern: &str) -> String {
    let path =
        if pattern.starts_with("/api/collab/") { pattern.to_string() } else { format!("/functions/v1{pattern}") };
    path.split('/')
        .map(|s| match s.strip_prefix(':').or_else(|| s.strip_prefix('*')) {
            Some(name) => format!("{{{name}}}"),
            None => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn operation(spec: &Value, endpoint: Endpoint, method: Method, allow: &[Role], id: String) -> Option<Value> {
    let mut op = spec["operations"].get(endpoint.id())?.clone();
    let error = if endpoint.is_figma() {
        json!({ "$ref": "#/components/responses/PluginError" })
    } else {
        json!({ "$ref": "#/components/responses/Error" })
    };
    // The answers every operation can give besides its own.
    let mut common = Vec::new();
    if allow == ANYONE {
        op["security"] = json!([]);
    } else if endpoint.is_figma() {
        common.push(("401", error.clone()));
    } else {
        common.push(("401", json!({ "$ref": "#/components/responses/Unauthorized" })));
    }
    if allow != ANYONE {
        common.push(("403", error.clone()));
        common.push((
            "429",
            if endpoint.is_figma() {
                error.clone()
            } else {
                json!({ "$ref": "#/components/responses/TooManyRequests" })
            },
        ));
    }
    if method == Method::Post {
        common.extend(["400", "409", "413", "422"].map(|status| (status, error.clone())));
    } else if op.get("parameters").is_some() {
        common.push(("400", error.clone()));
    }
    common.push(("default", error));
    let responses = op.get_mut("responses")?.as_object_mut()?;
    for (status, response) in common {
        responses.entry(status).or_insert(response);
    }
    op["operationId"] = id.into();
    op["x-roles"] = allow.iter().map(|r| r.name()).collect::<Vec<_>>().into();
    Some(op)
}

/// The whole document.
pub fn document() -> Value {
    let spec: Value = serde_json::from_str(SPEC).expect("openapi/spec.json is valid JSON (unit-tested)");
    let mut paths = Map::new();
    for route in ROUTES {
        for (i, pattern) in route.paths.iter().enumerate() {
            let entry = paths.entry(public_path(pattern)).or_insert_with(|| json!({}));
            for method in route.methods {
                let id = match (i, route.methods.len()) {
                    (0, 1) => route.endpoint.id().to_string(),
                    (i, 1) => format!("{}{}", route.endpoint.id(), i + 1),
                    (i, _) => format!("{}{}{}", route.endpoint.id(), method.as_str(), i + 1),
                };
                if let Some(op) = operation(&spec, route.endpoint, *method, route.allow, id) {
                    entry[method.as_str().to_ascii_lowercase()] = op;
                }
            }
        }
    }
    // One version everywhere: the crate's, as health reports it.
    let mut info = spec["info"].clone();
    info["version"] = env!("CARGO_PKG_VERSION").into();
    json!({
        "openapi": "3.1.0",
        "info": info,
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }, { "apikey": [] }, { "signature": [] }],
        "paths": paths,
        "components": spec["components"],
    })
}

/// The document rendered for a person: one self-contained page, the
/// document inlined (no network needed to read it).
pub fn page() -> String {
    let inline = document().to_string().replace("</", "<\\/");
    PAGE.replace("/*DOCUMENT*/null", &inline)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Value {
        serde_json::from_str(SPEC).unwrap()
    }

    #[test]
    fn every_endpoint_is_described_and_nothing_else() {
        let described: Vec<String> = spec()["operations"].as_object().unwrap().keys().cloned().collect();
        let routed: Vec<String> = ROUTES.iter().map(|r| format!("{:?}", r.endpoint)).collect();
        for name in &routed {
            assert!(described.contains(name), "{name} is routed but not described in openapi/spec.json");
        }
        for name in &described {
            assert!(routed.contains(name), "{name} is described in openapi/spec.json but not routed");
        }
    }

    #[test]
    fn every_route_path_and_method_is_in_the_document() {
        let doc = document();
        let mut ids = Vec::new();
        for route in ROUTES {
            for pattern in route.paths {
                for method in route.methods {
                    let op = &doc["paths"][public_path(pattern)][method.as_str().to_ascii_lowercase()];
                    assert!(op.is_object(), "{} {pattern} missing", method.as_str());
                    ids.push(op["operationId"].as_str().unwrap().to_string());
                    let mut in_pattern: Vec<&str> = pattern
                        .split('/')
                        .filter_map(|s| s.strip_prefix(':').or_else(|| s.strip_prefix('*')))
                        .collect();
                    let mut declared: Vec<String> = op["parameters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| match p["$ref"].as_str() {
                            Some(r) => doc.pointer(r.trim_start_matches('#')).unwrap().clone(),
                            None => p.clone(),
                        })
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap().to_string())
                        .collect();
                    in_pattern.sort();
                    declared.sort();
                    assert_eq!(declared, in_pattern, "{pattern}: path parameters declared");
                    if route.allow != ANYONE {
                        assert!(op["responses"]["401"].is_object() && op["responses"]["403"].is_object());
                    }
                }
            }
        }
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "operationIds are unique");
        let served: usize = ROUTES.iter().map(|r| r.paths.len() * r.methods.len()).sum();
        let documented: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(documented, served, "the document has no operation that is not served");
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let pointer = r.strip_prefix('#').expect("local reference");
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }

    #[test]
    fn the_version_is_the_crates_as_health_reports_it() {
        assert_eq!(document()["info"]["version"], env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn paths_are_the_public_ones() {
        assert_eq!(public_path("/api/collab/job/:id/summary"), "/api/collab/job/{id}/summary");
        assert_eq!(public_path("/jobs-recent"), "/functions/v1/jobs-recent");
        assert_eq!(public_path("/artifact/:bucket/*path"), "/functions/v1/artifact/{bucket}/{path}");
    }

    #[test]
    fn page_inlines_the_document_safely() {
        let html = page();
        assert!(html.contains("\"openapi\":\"3.1.0\""));
        assert!(!html.contains("/*DOCUMENT*/null"));
        let script = html.split("<script>").nth(1).unwrap().split("</script>").next().unwrap();
        assert!(!script.contains("</"), "nothing inside the script can close it");
    }
}
