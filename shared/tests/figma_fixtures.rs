//! The converter over the real Figma documents in ../shared/fixtures/figma:
//! each converts, and what it shows survives.

use std::path::PathBuf;

use cogo_shared::figma::convert;
use serde_json::Value;

fn fixtures() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/figma");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(e.path()).unwrap();
            (name, serde_json::from_str(&text).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 12, "the fixtures are there");
    out
}

/// Every node of a converted tree.
fn nodes(tree: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = tree.as_array().unwrap().iter().collect();
    while let Some(n) = stack.pop() {
        out.push(n);
        stack.extend(n["children"].as_array().into_iter().flatten());
    }
    out
}

/// The characters of the TEXT nodes a viewer sees: visible, and not under
/// a hidden node (unless a component property shows it).
fn visible_texts(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            let shown = map.get("visible") != Some(&Value::Bool(false))
                || node["componentPropertyReferences"]["visible"].is_string();
            if map.contains_key("type") && !shown {
                return;
            }
            if map.get("type").and_then(Value::as_str) == Some("TEXT") {
                out.push(node["characters"].as_str().unwrap_or_default().to_string());
            }
            map.values().for_each(|v| visible_texts(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| visible_texts(v, out)),
        _ => {}
    }
}

#[test]
fn every_fixture_converts_and_keeps_every_visible_text() {
    for (name, doc) in fixtures() {
        let converted = convert(&doc, Some("00000000-0000-4000-8000-000000000001"))
            .unwrap_or_else(|e| panic!("{name}: {}", e.message));
        let cogo = &converted["cogo_ui_json"];
        assert_eq!(cogo["version"], "1.0", "{name}");
        assert!(cogo["tree"].as_array().is_some_and(|t| !t.is_empty()), "{name}: a tree");
        let all = nodes(&cogo["tree"]);
        for n in &all {
            for key in ["id", "type", "props", "figma", "children"] {
                assert!(n.get(key).is_some(), "{name}: node without {key}: {}", n["id"]);
            }
            assert!(n["figma"]["type"].is_string(), "{name}");
        }
        let uui = nodes(&converted["uui_json"]["tree"]);
        assert_eq!(uui.len(), all.len(), "{name}: both forms hold the same nodes");
        // Texts inside a collapsed vector group are drawings, not text.
        let mut expected = Vec::new();
        visible_texts(&doc, &mut expected);
        let shown: Vec<&str> = all.iter().filter_map(|n| n["props"]["text"].as_str()).collect();
        for text in expected.iter().filter(|t| !t.trim().is_empty()) {
            assert!(shown.contains(&text.as_str()), "{name}: the text {text:?} was lost");
        }
    }
}

#[test]
fn hidden_nodes_are_dropped_unless_a_property_shows_them() {
    for (name, doc) in fixtures() {
        let converted = convert(&doc, None).unwrap();
        for n in nodes(&converted["cogo_ui_json"]["tree"]) {
            if n["props"]["conditional"].is_object() {
                assert!(n["props"]["conditional"]["property"].is_string(), "{name}");
            }
        }
    }
    // No fixture binds visibility to a property, so a node of its own does.
    let frame = serde_json::json!({"id": "1:1", "type": "FRAME", "name": "f", "children": [
        {"id": "1:2", "type": "TEXT", "name": "icon label", "visible": false, "characters": "x",
         "componentPropertyReferences": {"visible": "Show label#1:0"}},
        {"id": "1:3", "type": "TEXT", "name": "gone", "visible": false, "characters": "y"}]});
    let converted = convert(&frame, None).unwrap();
    let children = converted["cogo_ui_json"]["tree"][0]["children"].as_array().unwrap();
    assert_eq!(children.len(), 1, "the plain hidden node is dropped");
    assert_eq!(children[0]["props"]["conditional"]["property"], "Show label#1:0");
    assert_eq!(children[0]["props"]["conditional"]["visibleByDefault"], false);
}

fn converted_node(fixture: &str, id: &str) -> Value {
    let doc = fixtures().into_iter().find(|(n, _)| n == fixture).unwrap().1;
    let converted = convert(&doc, None).unwrap();
    let found = nodes(&converted["cogo_ui_json"]["tree"]).into_iter().find(|n| n["id"] == id).cloned();
    found.unwrap_or_else(|| panic!("{fixture}: no node {id}"))
}

#[test]
fn spot_checks_on_named_nodes() {
    // An auto-layout column: gap, padding, alignment from REST's defaults.
    let column = converted_node("rest-govuk-cookie-banner.json", "18330:13859");
    let layout = &column["props"]["layout"];
    assert_eq!((layout["mode"].as_str(), layout["gap"].as_f64()), (Some("column"), Some(20.0)));
    assert_eq!((layout["padding"]["top"].as_f64(), layout["padding"]["left"].as_f64()), (Some(20.0), Some(20.0)));
    assert_eq!((layout["justify"].as_str(), layout["align"].as_str()), (Some("start"), Some("start")));
    // A child that stretches across its parent's axis fills it.
    let stretched = converted_node("rest-govuk-cookie-banner.json", "18330:13858");
    assert!(stretched["props"]["sizing"].as_object().unwrap().values().any(|v| v == "fill"), "{stretched}");
    // Mixed styles: more than one run, and the runs spell the text.
    let mixed = converted_node("rest-govuk-cookie-banner.json", "18330:13844");
    let runs = mixed["props"]["textStyle"]["runs"].as_array().unwrap();
    assert!(runs.len() > 1);
    let spelled: String = runs.iter().map(|r| r["text"].as_str().unwrap()).collect();
    assert_eq!(spelled, mixed["props"]["text"].as_str().unwrap());
    // A gradient and an image fill.
    let gradient = converted_node("rest-nodes-styles-gradients-effects.json", "339:0");
    assert_eq!(gradient["props"]["style"]["fills"][0]["type"], "linear_gradient");
    assert!(gradient["props"]["style"]["fills"][0]["stops"].as_array().unwrap().len() >= 2);
    let image = converted_node("rest-nodes-styles-gradients-effects.json", "339:7");
    assert_eq!(
        (image["type"].as_str(), image["props"]["style"]["fills"][0]["type"].as_str()),
        (Some("image"), Some("image"))
    );
    // A node rotated by pi radians: 180 degrees.
    let rotated = converted_node("rest-file-not-pink-presentation.json", "26:31");
    assert_eq!(rotated["props"]["rotation"].as_f64().map(f64::abs), Some(180.0));
    // A stroke on one side only.
    let ruled = converted_node("rest-govuk-footer.json", "19792:14486");
    let sides = &ruled["props"]["style"]["stroke"]["sides"];
    assert_eq!((sides["top"].as_f64(), sides["bottom"].as_f64()), (Some(1.0), Some(0.0)));
}

#[test]
fn plugin_serializations_use_the_same_model() {
    let dump = fixtures().into_iter().find(|(n, _)| n == "plugin-dump-frame-image-gradient-text.json").unwrap().1;
    let converted = convert(&dump, None).unwrap();
    let all = nodes(&converted["cogo_ui_json"]["tree"]);
    let text = all.iter().find(|n| n["type"] == "text").expect("a text node");
    assert!(text["props"]["textStyle"]["style"]["fontFamily"].is_string(), "{text}");
    assert!(text["props"]["textStyle"]["style"]["fontSize"].is_number());
    let image = all.iter().find(|n| n["type"] == "image").expect("an image");
    assert_eq!(image["props"]["frame"]["y"], 109.0);
    let ellipse = all.iter().find(|n| n["figma"]["type"] == "ELLIPSE").unwrap();
    let fills = ellipse["props"]["style"]["fills"].as_array().unwrap();
    assert_eq!((fills[0]["type"].as_str(), fills[1]["type"].as_str()), (Some("solid"), Some("linear_gradient")));
    assert_eq!(fills[0]["color"], "#77A7C1", "0.4667, 0.6549, 0.7569 to eight bits");
}

#[test]
fn to_cogo_and_back_and_to_cogo_again_is_a_fixed_point() {
    for (name, doc) in fixtures() {
        let first = convert(&doc, None).unwrap();
        let tree = &first["cogo_ui_json"]["tree"];
        let back = cogo_shared::figma::reverse::to_figma_like(&first["cogo_ui_json"]).unwrap();
        let again = convert(&back["figma_like"], None).unwrap_or_else(|e| panic!("{name}: {}", e.message));
        let again_tree = &again["cogo_ui_json"]["tree"];
        if tree != again_tree {
            let (a, b) = (nodes(tree), nodes(again_tree));
            for (x, y) in a.iter().zip(b.iter()) {
                for key in ["type", "props", "figma", "name"] {
                    assert_eq!(x[key], y[key], "{name}: node {} differs in {key}", x["id"]);
                }
            }
            assert_eq!(a.len(), b.len(), "{name}: node count");
        }
    }
}

#[test]
fn every_conversion_validates_against_the_published_schema() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("figma/cogo-ui.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    for (name, doc) in fixtures() {
        let converted = convert(&doc, None).unwrap();
        let errors: Vec<String> =
            validator.iter_errors(&converted).take(5).map(|e| format!("{} at {}", e, e.instance_path)).collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}");
        // The schema can fail: a node of an unknown kind does.
        let mut broken = converted.clone();
        broken["cogo_ui_json"]["tree"][0]["type"] = "widget".into();
        assert!(!validator.is_valid(&broken), "{name}");
    }
}

/// Input nodes by id (REST fixtures; plugin dumps carry no ids).
fn input_nodes<'a>(v: &'a Value, out: &mut std::collections::HashMap<String, &'a Value>) {
    match v {
        Value::Object(map) => {
            // Plugin dumps also hold `parent: {id, type}` stubs: keep the fullest.
            if let (Some(Value::String(id)), Some(Value::String(_))) = (map.get("id"), map.get("type")) {
                let fuller = out.get(id).is_none_or(|known| known.as_object().map_or(0, |o| o.len()) < map.len());
                if fuller {
                    out.insert(id.clone(), v);
                }
            }
            map.values().for_each(|c| input_nodes(c, out));
        }
        Value::Array(items) => items.iter().for_each(|c| input_nodes(c, out)),
        _ => {}
    }
}

/// The ids a viewer sees: visible nodes under visible ancestors, below the
/// page, not inside a node that became one `vector`.
fn expected_ids(node: &Value, vectors: &std::collections::HashSet<String>, out: &mut Vec<String>) {
    let shown = node["visible"] != false || node["componentPropertyReferences"]["visible"].is_string();
    if !shown {
        return;
    }
    let kind = node["type"].as_str().unwrap_or("");
    let id = node["id"].as_str().unwrap_or("").to_string();
    if !matches!(kind, "DOCUMENT" | "CANVAS") {
        out.push(id.clone());
        if vectors.contains(&id) {
            return;
        }
    }
    for child in node["children"].as_array().into_iter().flatten() {
        expected_ids(child, vectors, out);
    }
}

#[test]
fn visible_nodes_are_all_there_except_the_documented_collapses() {
    for (name, doc) in fixtures().into_iter().filter(|(n, _)| n.starts_with("rest-")) {
        let converted = convert(&doc, None).unwrap();
        let out = nodes(&converted["cogo_ui_json"]["tree"]);
        let vectors =
            out.iter().filter(|n| n["type"] == "vector").map(|n| n["id"].as_str().unwrap().to_string()).collect();
        let mut expected = Vec::new();
        let roots: Vec<&Value> = match (doc.get("document"), doc.get("nodes")) {
            (Some(d), _) => vec![d],
            (_, Some(Value::Object(nodes))) => nodes.values().map(|e| &e["document"]).collect(),
            _ => vec![&doc],
        };
        roots.iter().for_each(|r| expected_ids(r, &vectors, &mut expected));
        let mut got: Vec<String> = out.iter().map(|n| n["id"].as_str().unwrap().to_string()).collect();
        expected.sort();
        got.sort();
        assert_eq!(got.len(), expected.len(), "{name}: node count");
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn solid_colours_convert_exactly() {
    let hex = |c: &Value, opacity: f64| {
        let ch = |k: &str| (c[k].as_f64().unwrap_or(0.0) * 255.0).round() as u8;
        let a = ((c["a"].as_f64().unwrap_or(1.0) * opacity) * 255.0).round() as u8;
        let rgb = format!("#{:02X}{:02X}{:02X}", ch("r"), ch("g"), ch("b"));
        if a == 255 {
            rgb
        } else {
            format!("{rgb}{a:02X}")
        }
    };
    let mut checked = 0;
    for (name, doc) in fixtures() {
        let mut by_id = std::collections::HashMap::new();
        input_nodes(&doc, &mut by_id);
        let converted = convert(&doc, None).unwrap();
        for n in nodes(&converted["cogo_ui_json"]["tree"]) {
            let Some(input) = by_id.get(n["id"].as_str().unwrap()) else { continue };
            let solids: Vec<String> = input["fills"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["type"] == "SOLID" && p["visible"] != false)
                .map(|p| hex(&p["color"], p["opacity"].as_f64().unwrap_or(1.0)))
                .collect();
            let got: Vec<String> = n["props"]["style"]["fills"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["type"] == "solid")
                .map(|p| p["color"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(got, solids, "{name}: {}", n["id"]);
            checked += solids.len();
        }
    }
    assert!(checked > 500, "{checked} colours checked");
}

fn fixture(name: &str) -> Value {
    fixtures().into_iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no fixture {name}")).1
}

#[test]
fn a_dump_envelope_converts_as_its_objects_and_its_images_link_in() {
    use cogo_shared::figma::images::{self, ImageLinks, Placement};
    let objects = fixture("plugin-dump-frame-image-gradient-text.json");
    let hash = "459d44e506315e435060e18b94e213e166c52f62";
    let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec();
    let dump = serde_json::json!({"objects": objects, "images": {hash: gif}, "components": {}, "styles": {}});
    let mut converted = convert(&dump, None).unwrap();
    assert_eq!(converted, convert(&objects, None).unwrap(), "the envelope changes nothing");
    let decoded = images::dump_images(&dump).unwrap();
    assert_eq!((decoded.len(), decoded[0].content_type, &decoded[0].bytes), (1, "image/gif", &gif));
    let mut links = ImageLinks::default();
    assert_eq!(images::placements([decoded[0].size], false), [Placement::Inline]);
    links.insert_fill(hash.into(), decoded[0].data_url());
    links.attach(&mut converted);
    let image = nodes(&converted["cogo_ui_json"]["tree"]).into_iter().find(|n| n["type"] == "image").cloned().unwrap();
    assert_eq!(image["props"]["style"]["fills"][0]["url"], "data:image/gif;base64,R0lGODlhAQABAAAAADs=");
    let schema = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("figma/cogo-ui.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(schema).unwrap()).unwrap();
    converted["images"] = serde_json::json!({ hash: decoded[0].summary(Placement::Inline, Some("data:image/gif;base64,R0lGODlhAQABAAAAADs=")) });
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(validator.is_valid(&converted), "{:?}", validator.iter_errors(&converted).next().map(|e| e.to_string()));
}

#[test]
fn a_files_image_map_links_every_image_fill() {
    let doc = fixture("rest-nodes-styles-gradients-effects.json");
    let mut converted = convert(&doc, None).unwrap();
    let refs: Vec<String> = nodes(&converted["cogo_ui_json"]["tree"])
        .iter()
        .flat_map(|n| n["props"]["style"]["fills"].as_array().cloned().unwrap_or_default())
        .filter(|p| p["type"] == "image")
        .map(|p| p["imageRef"].as_str().unwrap().to_string())
        .collect();
    assert!(!refs.is_empty());
    let map: serde_json::Map<String, Value> =
        refs.iter().map(|r| (r.clone(), Value::from(format!("https://s3-alpha.figma.com/img/{r}")))).collect();
    let body = serde_json::json!({"figma_images": {"error": false, "status": 200, "meta": {"images": map}}});
    let body = cogo_shared::http::body::Body::parse(body.to_string().as_bytes(), 1 << 20).unwrap();
    cogo_shared::figma::images::ImageLinks::from_body(&body).unwrap().attach(&mut converted);
    for form in ["cogo_ui_json", "uui_json"] {
        let props = if form == "uui_json" { "attrs" } else { "props" };
        let linked: Vec<&Value> = nodes(&converted[form]["tree"])
            .into_iter()
            .flat_map(|n| n[props]["style"]["fills"].as_array().into_iter().flatten())
            .filter(|p| p["type"] == "image")
            .collect();
        assert_eq!(linked.len(), refs.len(), "{form}");
        for paint in linked {
            assert_eq!(paint["url"], format!("https://s3-alpha.figma.com/img/{}", paint["imageRef"].as_str().unwrap()));
        }
    }
}
