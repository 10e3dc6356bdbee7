//! The README against the code: the request fields its endpoint tables list
//! are the ones the OpenAPI document (built from the route table) has, with
//! the same ones required; and every path it names in the repository exists
//! in a clone.

use std::path::Path;

use cogo_shared::http::openapi::document;
use serde_json::Value;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).expect("README.md")
}

/// Splits `a, b? (1..5, default 2), c?` at the commas outside parentheses.
fn fields(list: &str) -> Vec<(String, bool)> {
    let (mut out, mut depth, mut current) = (Vec::new(), 0, String::new());
    for c in list.chars().chain([',']) {
        match c {
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => depth -= 1,
            ',' if depth == 0 => {
                let name: String = current.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                let optional = current.trim()[name.len()..].starts_with('?');
                out.push((name, optional));
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    out
}

/// The required names and all property names of a request body schema.
fn schema_fields(op: &Value) -> (Vec<String>, Vec<String>) {
    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
    // task.result's body is one result or {results}: the single form is what the table lists.
    let required = schema["required"].as_array().or_else(|| schema["anyOf"][0]["required"].as_array());
    let names = |v: Option<&Vec<Value>>| -> Vec<String> {
        let mut n: Vec<String> = v.into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect();
        n.sort();
        n
    };
    let properties: Vec<Value> =
        schema["properties"].as_object().into_iter().flatten().map(|(k, _)| Value::from(k.as_str())).collect();
    (names(required), names(Some(&properties)))
}

#[test]
fn the_endpoint_tables_list_the_fields_the_server_takes() {
    let doc = document();
    let mut checked = 0;
    for line in readme().lines() {
        // | `POST /api/collab/task.assign` | `{type, executorId, ...}` | ...
        let Some(rest) = line.strip_prefix("| `") else { continue };
        let Some((route, rest)) = rest.split_once("` | `{") else { continue };
        let Some((method, path)) = route.split_once(' ') else { continue };
        let list = &rest[..rest.find("}`").expect("the field list ends")];
        let op = &doc["paths"][path][method.to_ascii_lowercase()];
        assert!(op.is_object(), "README names {method} {path}, which the route table does not serve");
        let (required, properties) = schema_fields(op);
        let listed = fields(list);
        let mut listed_required: Vec<String> = listed.iter().filter(|(_, opt)| !opt).map(|(n, _)| n.clone()).collect();
        listed_required.sort();
        assert_eq!(listed_required, required, "{method} {path}: required fields");
        for (name, _) in &listed {
            assert!(properties.contains(name), "{method} {path}: README lists {name}, the document does not");
        }
        checked += 1;
    }
    assert!(checked >= 7, "the Collab API table was found ({checked} rows)");
}

#[test]
fn every_repository_path_the_readme_names_exists_in_a_clone() {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    const TOP: &[&str] =
        &["scripts/", "functions/", "shared/", "dev/", "tests/", "migrations/", "examples/", "dashboard/", ".ci/"];
    let text = readme();
    let mut checked = 0;
    for quoted in text.split('`').skip(1).step_by(2) {
        let path = quoted.split_whitespace().next().unwrap_or_default().trim_end_matches([',', ':']);
        if !TOP.iter().any(|t| path.starts_with(t)) || path.contains(['<', '*', '{', '$']) {
            continue;
        }
        assert!(root.join(path).exists(), "README names {path}, which is not in the repository");
        checked += 1;
    }
    assert!(checked > 20, "paths were found ({checked})");
}
