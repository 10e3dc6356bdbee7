//! Figma documents to COGO UI JSON. Accepts a REST file response
//! (`/v1/files/:key`), a `/nodes` response, a single REST node, or a
//! plugin-API serialization, bare or in figma-json-plugin's dump
//! (`{objects, images}`; its field names are mapped onto REST's
//! first), fills in what REST omits when it holds the default, and maps
//! each node onto the clients' vocabulary with the rich layout, style and
//! text model in `props` (`attrs` in `uui_json`). Every node keeps
//! `figma: {id, type, name}`, and the fields nothing here reads under
//! `figma.unmapped`.
//!
//! Collapses, so node counts can be checked: a hidden node is dropped
//! unless a component property controls its visibility (then it is kept,
//! `conditional`); a group or frame made only of vector shapes becomes one
//! `vector`; a DOCUMENT or CANVAS is not a node but the page.

pub mod creatego;
pub mod images;
pub mod reverse;

use std::borrow::Cow;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::auth::{Principal, Role};
use crate::http::body::Body;
use crate::http::error::ApiError;
use crate::http::ApiResponse;
use crate::postgrest::sql_function;
use crate::queue::tasks::Enqueue;

/// A conversion failure naming the JSON path of the offending value.
fn bad_input(path: &str, reason: &str) -> ApiError {
    ApiError::bad_request("invalid_figma_json", format!("{path}: {reason}"))
        .with_details(json!({ "path": path, "reason": reason }))
}

/// The fields the conversion reads (REST's and the plugin's names); every
/// other field of a node is kept under `figma.unmapped`, so the reverse
/// direction gives back what it was given.
const MAPPED: &[&str] = &[
    "id",
    "type",
    "name",
    "visible",
    "children",
    "componentPropertyReferences",
    "absoluteBoundingBox",
    "relativeBox",
    "size",
    "x",
    "y",
    "width",
    "height",
    "layoutSizingHorizontal",
    "layoutSizingVertical",
    "minWidth",
    "maxWidth",
    "minHeight",
    "maxHeight",
    "layoutGrow",
    "layoutAlign",
    "layoutMode",
    "primaryAxisSizingMode",
    "counterAxisSizingMode",
    "layoutPositioning",
    "constraints",
    "rotation",
    "relativeTransform",
    "primaryAxisAlignItems",
    "counterAxisAlignItems",
    "itemSpacing",
    "counterAxisSpacing",
    "layoutWrap",
    "paddingTop",
    "paddingRight",
    "paddingBottom",
    "paddingLeft",
    "fills",
    "strokes",
    "strokeWeight",
    "individualStrokeWeights",
    "strokeTopWeight",
    "strokeRightWeight",
    "strokeBottomWeight",
    "strokeLeftWeight",
    "strokeAlign",
    "strokeDashes",
    "dashPattern",
    "rectangleCornerRadii",
    "cornerRadius",
    "topLeftRadius",
    "topRightRadius",
    "bottomRightRadius",
    "bottomLeftRadius",
    "effects",
    "opacity",
    "blendMode",
    "clipsContent",
    "characters",
    "style",
    "characterStyleOverrides",
    "styleOverrideTable",
    "fontName",
    "fontSize",
    "textAlignHorizontal",
    "textAlignVertical",
    "textCase",
    "textDecoration",
    "paragraphSpacing",
    "lineHeight",
    "letterSpacing",
    "textAutoResize",
    "componentId",
    "componentProperties",
    "overrides",
    "componentPropertyDefinitions",
    "cogoKind",
];

const VECTOR_TYPES: &[&str] = &["VECTOR", "BOOLEAN_OPERATION", "STAR", "LINE", "POLYGON", "REGULAR_POLYGON", "ELLIPSE"];

/// The pages of an input: each a (page id, page name, top-level nodes).
type Page<'a> = (String, String, Vec<&'a Value>);

fn pages(input: &Value) -> Result<Vec<Page<'_>>, ApiError> {
    fn page(node: &Value) -> Page<'_> {
        (text(node, "id"), text(node, "name"), node["children"].as_array().into_iter().flatten().collect())
    }
    fn from_document(doc: &Value) -> Vec<Page<'_>> {
        match doc["type"].as_str() {
            Some("DOCUMENT") => doc["children"].as_array().into_iter().flatten().map(page).collect(),
            Some("CANVAS" | "PAGE") => vec![page(doc)],
            _ => vec![(String::new(), String::new(), vec![doc])],
        }
    }
    match input {
        Value::Object(o) if o.contains_key("document") => Ok(from_document(&input["document"])),
        Value::Object(o) if o.get("nodes").is_some_and(Value::is_object) => {
            let mut out = Vec::new();
            for (id, entry) in o["nodes"].as_object().into_iter().flatten() {
                let doc =
                    entry.get("document").ok_or_else(|| bad_input(&format!("$.nodes.{id}"), "has no document"))?;
                out.extend(from_document(doc));
            }
            Ok(out)
        }
        // figma-json-plugin's dump: its objects are plugin nodes, as a bare array.
        Value::Object(o) if o.contains_key("objects") => match &o["objects"] {
            Value::Array(items) => Ok(vec![(String::new(), String::new(), items.iter().collect())]),
            _ => Err(bad_input("$.objects", "expected the dump's array of plugin nodes")),
        },
        Value::Object(o) if o.get("type").is_some_and(Value::is_string) => Ok(from_document(input)),
        Value::Array(items) => Ok(vec![(String::new(), String::new(), items.iter().collect())]),
        _ if images::is_image_map(input) => Err(bad_input(
            "$",
            "this is a Figma image map (GET /v1/files/:key/images or /v1/images/:key), which has no nodes: \
             send it as figma_images beside the document",
        )),
        _ => Err(bad_input(
            "$",
            "expected a Figma REST response (/v1/files/:key or /nodes), a REST node, plugin nodes \
             or a figma-json-plugin dump ({objects, images})",
        )),
    }
}

fn text(node: &Value, key: &str) -> String {
    node[key].as_str().unwrap_or_default().to_string()
}

fn num(node: &Value, key: &str) -> Option<f64> {
    node.get(key).and_then(Value::as_f64)
}

/// Plugin-API field names onto REST's: box from x/y/width/height,
/// per-corner radii, per-side stroke weights, `fontName` and the object
/// forms of line height and letter spacing into `style`.
fn normalize_plugin(node: &Value) -> Value {
    let Value::Object(map) = node else { return node.clone() };
    if map.contains_key("absoluteBoundingBox") && !map.contains_key("fontName") {
        let mut out = map.clone();
        if let Some(Value::Array(children)) = map.get("children") {
            out.insert("children".into(), children.iter().map(normalize_plugin).collect());
        }
        return Value::Object(out);
    }
    let mut out = map.clone();
    if let (Some(w), Some(h)) = (num(node, "width"), num(node, "height")) {
        let (x, y) = (num(node, "x").unwrap_or(0.0), num(node, "y").unwrap_or(0.0));
        out.insert("size".into(), json!({ "x": w, "y": h }));
        out.insert("relativeBox".into(), json!({ "x": x, "y": y, "width": w, "height": h }));
    }
    if map.contains_key("topLeftRadius") {
        let r = |k: &str| num(node, k).unwrap_or(0.0);
        out.insert(
            "rectangleCornerRadii".into(),
            json!([r("topLeftRadius"), r("topRightRadius"), r("bottomRightRadius"), r("bottomLeftRadius")]),
        );
    }
    if map.contains_key("strokeTopWeight") {
        let w = |k: &str| num(node, k).unwrap_or(0.0);
        out.insert(
            "individualStrokeWeights".into(),
            json!({ "top": w("strokeTopWeight"), "right": w("strokeRightWeight"),
                    "bottom": w("strokeBottomWeight"), "left": w("strokeLeftWeight") }),
        );
    }
    if let Some(Value::Array(dashes)) = map.get("dashPattern") {
        out.insert("strokeDashes".into(), Value::Array(dashes.clone()));
    }
    if map.get("type").and_then(Value::as_str) == Some("TEXT") {
        // A REST-style `style` (the reverse direction writes one) wins over
        // what the plugin fields say.
        let given = map.get("style").and_then(Value::as_object).cloned().unwrap_or_default();
        let mut style = Map::new();
        if let Some(font) = map.get("fontName").filter(|f| f.is_object()) {
            style.insert("fontFamily".into(), font["family"].clone());
            style.insert("fontPostScriptName".into(), Value::Null);
            style.insert("fontStyle".into(), font["style"].clone());
            style.insert("fontWeight".into(), weight_from_style(font["style"].as_str().unwrap_or("")).into());
        }
        for key in
            ["fontSize", "textAlignHorizontal", "textAlignVertical", "textCase", "textDecoration", "paragraphSpacing"]
        {
            if let Some(v) = map.get(key).filter(|v| v.is_number() || v.is_string()) {
                style.insert(key.into(), v.clone());
            }
        }
        if let Some(lh) = map.get("lineHeight").filter(|v| v.is_object()) {
            match lh["unit"].as_str() {
                Some("PIXELS") => {
                    style.insert("lineHeightPx".into(), lh["value"].clone());
                    style.insert("lineHeightUnit".into(), "PIXELS".into());
                }
                Some("PERCENT") => {
                    style.insert("lineHeightPercentFontSize".into(), lh["value"].clone());
                    style.insert("lineHeightUnit".into(), "FONT_SIZE_%".into());
                }
                _ => {
                    style.insert("lineHeightUnit".into(), "INTRINSIC_%".into());
                }
            }
        }
        if let Some(ls) = map.get("letterSpacing").filter(|v| v.is_object()) {
            let value = ls["value"].as_f64().unwrap_or(0.0);
            let px = match ls["unit"].as_str() {
                Some("PERCENT") => value / 100.0 * num(node, "fontSize").unwrap_or(0.0),
                _ => value,
            };
            style.insert("letterSpacing".into(), px.into());
        }
        style.extend(given);
        out.insert("style".into(), Value::Object(style));
    }
    if let Some(Value::Array(children)) = map.get("children") {
        out.insert("children".into(), children.iter().map(normalize_plugin).collect());
    }
    Value::Object(out)
}

/// A weight from a font style name ("Bold", "SemiBold Italic", ...).
fn weight_from_style(style: &str) -> u32 {
    let s = style.to_ascii_lowercase().replace([' ', '-'], "");
    for (name, weight) in [
        ("thin", 100),
        ("extralight", 200),
        ("ultralight", 200),
        ("light", 300),
        ("medium", 500),
        ("semibold", 600),
        ("demibold", 600),
        ("extrabold", 800),
        ("ultrabold", 800),
        ("bold", 700),
        ("black", 900),
        ("heavy", 900),
    ] {
        if s.contains(name) {
            return weight;
        }
    }
    400
}

/// `#RRGGBB`, or `#RRGGBBAA` when not opaque; channels rounded to 8 bits.
pub fn hex_color(color: &Value, opacity: f64) -> String {
    let channel = |k: &str| (color[k].as_f64().unwrap_or(0.0).clamp(0.0, 1.0) * 255.0).round() as u8;
    let alpha = (color["a"].as_f64().unwrap_or(1.0) * opacity).clamp(0.0, 1.0);
    let a = (alpha * 255.0).round() as u8;
    if a == 255 {
        format!("#{:02X}{:02X}{:02X}", channel("r"), channel("g"), channel("b"))
    } else {
        format!("#{:02X}{:02X}{:02X}{:02X}", channel("r"), channel("g"), channel("b"), a)
    }
}

fn paint(p: &Value) -> Option<Value> {
    if p["visible"] == false {
        return None;
    }
    let opacity = p["opacity"].as_f64().unwrap_or(1.0);
    let kind = p["type"].as_str()?;
    let mut out = match kind {
        "SOLID" => json!({ "type": "solid", "color": hex_color(&p["color"], opacity) }),
        "GRADIENT_LINEAR" | "GRADIENT_RADIAL" | "GRADIENT_ANGULAR" | "GRADIENT_DIAMOND" => {
            let stops: Vec<Value> = p["gradientStops"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| json!({ "color": hex_color(&s["color"], opacity), "position": s["position"] }))
                .collect();
            json!({
                "type": kind.trim_start_matches("GRADIENT_").to_ascii_lowercase() + "_gradient",
                "stops": stops,
                "handles": p.get("gradientHandlePositions").cloned().unwrap_or(Value::Null),
                "transform": p.get("gradientTransform").cloned().unwrap_or(Value::Null),
            })
        }
        "IMAGE" => json!({
            "type": "image",
            "imageRef": p.get("imageRef").or_else(|| p.get("imageHash")).cloned().unwrap_or(Value::Null),
            "fit": p["scaleMode"].as_str().unwrap_or("FILL").to_ascii_lowercase(),
            "opacity": opacity,
        }),
        other => json!({ "type": other.to_ascii_lowercase() }),
    };
    if let Some(mode) = p["blendMode"].as_str().filter(|m| *m != "NORMAL") {
        out["blendMode"] = mode.to_ascii_lowercase().into();
    }
    Some(out)
}

fn paints(node: &Value, key: &str) -> Vec<Value> {
    node[key].as_array().into_iter().flatten().filter_map(paint).collect()
}

fn has_image_fill(node: &Value) -> bool {
    node["fills"].as_array().into_iter().flatten().any(|p| p["type"] == "IMAGE" && p["visible"] != false)
}

fn vector_only(node: &Value) -> bool {
    let kind = node["type"].as_str().unwrap_or("");
    if VECTOR_TYPES.contains(&kind) {
        return true;
    }
    let shown: Vec<&Value> = node["children"].as_array().into_iter().flatten().filter(|c| visible(c)).collect();
    matches!(kind, "GROUP" | "FRAME" | "BOOLEAN_OPERATION") && !shown.is_empty() && shown.into_iter().all(vector_only)
}

fn visible(node: &Value) -> bool {
    node["visible"] != false
}

/// The component property that shows or hides `node`, if one does.
fn visibility_property(node: &Value) -> Option<String> {
    node["componentPropertyReferences"]["visible"].as_str().map(str::to_string)
}

fn kind_of(node: &Value) -> &'static str {
    // Written by the reverse direction for what the type alone cannot say
    // (a group collapsed into one vector).
    if node["cogoKind"] == "vector" {
        return "vector";
    }
    match node["type"].as_str().unwrap_or("") {
        "TEXT" => "text",
        "INSTANCE" => "instance",
        "COMPONENT" => "component",
        "COMPONENT_SET" => "component_set",
        _ if has_image_fill(node) => "image",
        _ if vector_only(node) => "vector",
        _ => "container",
    }
}

/// The node's box: REST's absolute box (relative to `parent_box`), or the
/// plugin's relative one.
fn bounds(node: &Value, parent_box: Option<&Value>) -> Option<(f64, f64, f64, f64)> {
    if let Some(b) = node.get("relativeBox") {
        return Some((num(b, "x")?, num(b, "y")?, num(b, "width")?, num(b, "height")?));
    }
    let b = node.get("absoluteBoundingBox").filter(|b| b.is_object())?;
    let (px, py) = parent_box.map_or((0.0, 0.0), |p| (num(p, "x").unwrap_or(0.0), num(p, "y").unwrap_or(0.0)));
    Some((num(b, "x")? - px, num(b, "y")? - py, num(b, "width")?, num(b, "height")?))
}

fn axis_sizing(node: &Value, parent: Option<&Value>, horizontal: bool) -> &'static str {
    let key = if horizontal { "layoutSizingHorizontal" } else { "layoutSizingVertical" };
    if let Some(s) = node[key].as_str() {
        return match s {
            "HUG" => "hug",
            "FILL" => "fill",
            _ => "fixed",
        };
    }
    // The older fields: a child fills along its parent's main axis when it
    // grows, across it when it stretches; a frame hugs along an axis whose
    // sizing mode is AUTO (REST omits the default, which is AUTO for the
    // main axis).
    let parent_mode = parent.and_then(|p| p["layoutMode"].as_str()).unwrap_or("NONE");
    let main_is_horizontal = parent_mode == "HORIZONTAL";
    if parent_mode != "NONE" {
        let along_main = horizontal == main_is_horizontal;
        if along_main && node["layoutGrow"].as_f64().unwrap_or(0.0) > 0.0 {
            return "fill";
        }
        if !along_main && node["layoutAlign"] == "STRETCH" {
            return "fill";
        }
    }
    let own_mode = node["layoutMode"].as_str().unwrap_or("NONE");
    if own_mode != "NONE" {
        let main = (own_mode == "HORIZONTAL") == horizontal;
        let mode = if main { node["primaryAxisSizingMode"].as_str() } else { node["counterAxisSizingMode"].as_str() };
        if mode.unwrap_or("AUTO") == "AUTO" {
            return "hug";
        }
    }
    "fixed"
}

fn layout(node: &Value) -> Option<Value> {
    let mode = node["layoutMode"].as_str().unwrap_or("NONE");
    if mode == "NONE" {
        return None;
    }
    let justify = match node["primaryAxisAlignItems"].as_str().unwrap_or("MIN") {
        "CENTER" => "center",
        "MAX" => "end",
        "SPACE_BETWEEN" => "space_between",
        _ => "start",
    };
    let align = match node["counterAxisAlignItems"].as_str().unwrap_or("MIN") {
        "CENTER" => "center",
        "MAX" => "end",
        "BASELINE" => "baseline",
        _ => "start",
    };
    let padding = |k: &str| num(node, k).unwrap_or(0.0);
    Some(json!({
        "mode": match mode { "HORIZONTAL" => "row", "GRID" => "grid", _ => "column" },
        "gap": num(node, "itemSpacing").unwrap_or(0.0),
        "wrap": node["layoutWrap"] == "WRAP",
        "crossGap": num(node, "counterAxisSpacing"),
        "padding": { "top": padding("paddingTop"), "right": padding("paddingRight"),
                     "bottom": padding("paddingBottom"), "left": padding("paddingLeft") },
        "justify": justify,
        "align": align,
    }))
}

fn style(node: &Value) -> Value {
    let mut style = Map::new();
    let fills = paints(node, "fills");
    if !fills.is_empty() {
        // Bottom to top, as Figma paints them.
        style.insert("fills".into(), Value::Array(fills));
    }
    let strokes = paints(node, "strokes");
    if !strokes.is_empty() {
        let weight = num(node, "strokeWeight").unwrap_or(1.0);
        let sides = node
            .get("individualStrokeWeights")
            .cloned()
            .unwrap_or_else(|| json!({ "top": weight, "right": weight, "bottom": weight, "left": weight }));
        style.insert(
            "stroke".into(),
            json!({
                "paints": strokes, "weight": weight, "sides": sides,
                "align": node["strokeAlign"].as_str().unwrap_or("INSIDE").to_ascii_lowercase(),
                "dashes": node.get("strokeDashes").cloned().unwrap_or(json!([])),
            }),
        );
    }
    if let Some(Value::Array(r)) = node.get("rectangleCornerRadii") {
        let at = |i: usize| r.get(i).and_then(Value::as_f64).unwrap_or(0.0);
        style.insert(
            "radius".into(),
            json!({ "topLeft": at(0), "topRight": at(1), "bottomRight": at(2), "bottomLeft": at(3) }),
        );
    } else if let Some(r) = num(node, "cornerRadius").filter(|r| *r > 0.0) {
        style.insert("radius".into(), json!({ "topLeft": r, "topRight": r, "bottomRight": r, "bottomLeft": r }));
    }
    let effects: Vec<Value> = node["effects"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["visible"] != false)
        .map(|e| {
            let kind = e["type"].as_str().unwrap_or("").to_ascii_lowercase();
            if kind.ends_with("shadow") {
                json!({ "type": kind, "color": hex_color(&e["color"], 1.0), "x": e["offset"]["x"],
                        "y": e["offset"]["y"], "blur": e["radius"], "spread": e.get("spread").cloned().unwrap_or(json!(0)) })
            } else {
                json!({ "type": kind, "radius": e["radius"] })
            }
        })
        .collect();
    if !effects.is_empty() {
        style.insert("effects".into(), Value::Array(effects));
    }
    if let Some(o) = num(node, "opacity").filter(|o| *o < 1.0) {
        style.insert("opacity".into(), o.into());
    }
    if let Some(b) = node["blendMode"].as_str().filter(|b| !matches!(*b, "PASS_THROUGH" | "NORMAL")) {
        style.insert("blendMode".into(), b.to_ascii_lowercase().into());
    }
    Value::Object(style)
}

/// REST text style fields and their COGO names, one to one (the reverse
/// direction reads the pairs the other way round).
pub(crate) const TEXT_STYLE_FIELDS: &[(&str, &str)] = &[
    ("fontFamily", "fontFamily"),
    ("fontStyle", "fontStyle"),
    ("fontWeight", "fontWeight"),
    ("fontSize", "fontSize"),
    ("letterSpacing", "letterSpacing"),
    ("textCase", "case"),
    ("textDecoration", "decoration"),
    ("italic", "italic"),
];

fn text_props(node: &Value) -> Value {
    let base = &node["style"];
    let run_style = |s: &Value| -> Value {
        let mut out = Map::new();
        for &(from, to) in TEXT_STYLE_FIELDS {
            if let Some(v) = s.get(from).filter(|v| !v.is_null()) {
                out.insert(to.into(), v.clone());
            }
        }
        let unit = s["lineHeightUnit"].as_str();
        let line_height = match unit {
            Some("PIXELS") => s.get("lineHeightPx").map(|v| json!({ "unit": "px", "value": v })),
            Some("FONT_SIZE_%") => s.get("lineHeightPercentFontSize").map(|v| json!({ "unit": "percent", "value": v })),
            Some("INTRINSIC_%") => Some(json!({ "unit": "auto" })),
            _ => s.get("lineHeightPx").map(|v| json!({ "unit": "px", "value": v })),
        };
        if let Some(lh) = line_height {
            out.insert("lineHeight".into(), lh);
        }
        let fills = paints(s, "fills");
        if let Some(first) = fills.iter().find(|f| f["type"] == "solid") {
            out.insert("color".into(), first["color"].clone());
        }
        Value::Object(out)
    };
    let characters = text(node, "characters");
    let mut base_style = run_style(base);
    if base_style.get("color").is_none() {
        if let Some(first) = paints(node, "fills").iter().find(|f| f["type"] == "solid") {
            base_style["color"] = first["color"].clone();
        }
    }
    // Runs from the per-character overrides: consecutive characters with
    // the same override index form one run.
    let overrides: Vec<u64> =
        node["characterStyleOverrides"].as_array().into_iter().flatten().filter_map(Value::as_u64).collect();
    let table = &node["styleOverrideTable"];
    let chars: Vec<char> = characters.chars().collect();
    let mut runs = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let key = overrides.get(start).copied().unwrap_or(0);
        let mut end = start + 1;
        while end < chars.len() && overrides.get(end).copied().unwrap_or(0) == key {
            end += 1;
        }
        let mut run_props = base_style.clone();
        if key != 0 {
            if let (Value::Object(run), Value::Object(extra)) = (&mut run_props, run_style(&table[key.to_string()])) {
                run.extend(extra);
            }
        }
        runs.push(json!({ "text": chars[start..end].iter().collect::<String>(), "style": run_props }));
        start = end;
    }
    json!({
        "characters": characters,
        "style": base_style,
        "runs": runs,
        "align": {
            "horizontal": base["textAlignHorizontal"].as_str().unwrap_or("LEFT").to_ascii_lowercase(),
            "vertical": base["textAlignVertical"].as_str().unwrap_or("TOP").to_ascii_lowercase(),
        },
        "autoResize": base["textAutoResize"].as_str().or(node["textAutoResize"].as_str()).unwrap_or("NONE").to_ascii_lowercase(),
    })
}

/// Degrees, clockwise as CSS has them, from REST's `rotation` (radians),
/// the plugin's (degrees) or the relative transform.
fn rotation(node: &Value, plugin: bool) -> Option<f64> {
    let degrees = if let Some(r) = num(node, "rotation") {
        if plugin {
            r
        } else {
            r.to_degrees()
        }
    } else if let Some(Value::Array(t)) = node.get("relativeTransform") {
        let a = t.first()?.get(0)?.as_f64()?;
        let b = t.get(1)?.get(0)?.as_f64()?;
        b.atan2(a).to_degrees()
    } else {
        return None;
    };
    let rounded = (degrees * 1000.0).round() / 1000.0;
    (rounded.abs() > 0.0).then_some(-rounded)
}

struct Walk<'a> {
    parent: Option<&'a Value>,
    parent_box: Option<&'a Value>,
}

fn convert_node(node: &Value, at: &Walk<'_>, path: &str) -> Result<Option<Value>, ApiError> {
    if !node.is_object() {
        return Err(bad_input(path, "a node must be an object"));
    }
    let figma_type = node["type"].as_str().ok_or_else(|| bad_input(&format!("{path}.type"), "is missing"))?;
    let conditional = visibility_property(node);
    if !visible(node) && conditional.is_none() {
        return Ok(None);
    }
    let plugin = node.get("relativeBox").is_some();
    let kind = kind_of(node);
    let mut props = Map::new();
    if let Some((x, y, w, h)) = bounds(node, at.parent_box) {
        props.insert("frame".into(), json!({ "x": x, "y": y, "width": w, "height": h }));
    }
    props.insert(
        "sizing".into(),
        json!({
            "horizontal": axis_sizing(node, at.parent, true), "vertical": axis_sizing(node, at.parent, false),
            "minWidth": num(node, "minWidth"), "maxWidth": num(node, "maxWidth"),
            "minHeight": num(node, "minHeight"), "maxHeight": num(node, "maxHeight"),
        }),
    );
    let parent_auto = at.parent.is_some_and(|p| p["layoutMode"].as_str().unwrap_or("NONE") != "NONE");
    let absolute = !parent_auto || node["layoutPositioning"] == "ABSOLUTE";
    if absolute && at.parent.is_some() {
        let c = &node["constraints"];
        props.insert(
            "position".into(),
            json!({ "absolute": true,
                    "constraints": { "horizontal": c["horizontal"].as_str().unwrap_or("LEFT").to_ascii_lowercase(),
                                     "vertical": c["vertical"].as_str().unwrap_or("TOP").to_ascii_lowercase() } }),
        );
    }
    if let Some(deg) = rotation(node, plugin) {
        props.insert("rotation".into(), deg.into());
    }
    if let Some(l) = layout(node) {
        props.insert("layout".into(), l);
    }
    let style = style(node);
    if style.as_object().is_some_and(|s| !s.is_empty()) {
        props.insert("style".into(), style);
    }
    if node["clipsContent"] == true {
        props.insert("clip".into(), true.into());
    }
    if kind == "text" {
        let t = text_props(node);
        props.insert("text".into(), t["characters"].clone());
        props.insert("textStyle".into(), t);
    }
    match figma_type {
        "INSTANCE" => {
            props.insert(
                "instance".into(),
                json!({ "componentId": node["componentId"], "props": node.get("componentProperties").cloned().unwrap_or(json!({})),
                        "overrides": node.get("overrides").cloned().unwrap_or(json!([])) }),
            );
        }
        "COMPONENT" | "COMPONENT_SET" => {
            props.insert(
                "component".into(),
                json!({ "properties": node.get("componentPropertyDefinitions").cloned().unwrap_or(json!({})),
                        "variant": at.parent.is_some_and(|p| p["type"] == "COMPONENT_SET") }),
            );
        }
        _ => {}
    }
    if let Some(property) = conditional {
        props.insert("conditional".into(), json!({ "property": property, "visibleByDefault": visible(node) }));
    }
    let mut figma = json!({ "id": text(node, "id"), "type": figma_type, "name": text(node, "name") });
    let unmapped: Map<String, Value> = node
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !MAPPED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !unmapped.is_empty() {
        figma["unmapped"] = Value::Object(unmapped);
    }
    let mut out = json!({ "id": text(node, "id"), "type": kind, "name": text(node, "name") });
    // Moved in: `json!` would copy them.
    out["props"] = Value::Object(props);
    out["figma"] = figma;
    let children_box = node.get("absoluteBoundingBox").filter(|b| b.is_object());
    let mut children = Vec::new();
    if kind != "vector" {
        for (i, child) in node["children"].as_array().into_iter().flatten().enumerate() {
            let walk = Walk { parent: Some(node), parent_box: children_box };
            if let Some(c) = convert_node(child, &walk, &format!("{path}.children[{i}]"))? {
                children.push(c);
            }
        }
    }
    out["children"] = Value::Array(children);
    Ok(Some(out))
}

/// The most nodes one conversion takes. The byte cap bounds memory; this
/// bounds CPU, which grows with nodes (a document of tiny nodes has many
/// more per byte than real designs: the fixtures have one per ~600 bytes).
pub const MAX_NODES: usize = 50_000;
/// The deepest nesting of nodes one conversion takes (the conversion
/// recurses once per level).
pub const MAX_NODE_DEPTH: usize = 64;

/// Refuses, before converting, a document over [`MAX_NODES`] (413) or
/// nested deeper than [`MAX_NODE_DEPTH`] (400), naming the limit.
fn check_bounds(pages: &[Page<'_>]) -> Result<(), ApiError> {
    fn walk(node: &Value, depth: usize, count: &mut usize, trail: &mut Vec<usize>) -> Result<(), ApiError> {
        *count += 1;
        if *count > MAX_NODES {
            return Err(ApiError::new(413, "too_many_nodes", format!("the document has more than {MAX_NODES} nodes"))
                .with_details(json!({ "limit": MAX_NODES })));
        }
        if depth > MAX_NODE_DEPTH {
            let (page, rest) = trail.split_first().unwrap_or((&0, &[]));
            let path = rest.iter().fold(format!("$.pages[{page}]"), |p, i| format!("{p}.children[{i}]"));
            let reason = format!("nests nodes deeper than {MAX_NODE_DEPTH} levels");
            return Err(ApiError::bad_request("too_deep", format!("{path}: {reason}"))
                .with_details(json!({ "path": path, "reason": reason, "limit": MAX_NODE_DEPTH })));
        }
        for (i, child) in node["children"].as_array().into_iter().flatten().enumerate() {
            trail.push(i);
            walk(child, depth + 1, count, trail)?;
            trail.pop();
        }
        Ok(())
    }
    let mut count = 0;
    for (p, (_, _, nodes)) in pages.iter().enumerate() {
        for (i, node) in nodes.iter().enumerate() {
            walk(node, 1, &mut count, &mut vec![p, i])?;
        }
    }
    Ok(())
}

/// `{uui_json, cogo_ui_json}` of a Figma document.
pub fn convert(input: &Value, project_id: Option<&str>) -> Result<Value, ApiError> {
    let pages = pages(input)?;
    check_bounds(&pages)?;
    let mut tree = Vec::new();
    let mut page_meta = json!({});
    for (p, (id, name, nodes)) in pages.iter().enumerate() {
        if p == 0 {
            page_meta = json!({ "id": id, "name": name });
        }
        for (i, node) in nodes.iter().enumerate() {
            let walk = Walk { parent: None, parent_box: None };
            if let Some(c) = convert_node(&normalize_root(node), &walk, &format!("$.pages[{p}].children[{i}]"))? {
                tree.push(c);
            }
        }
    }
    let meta = json!({ "project_id": project_id, "source": "figma" });
    let uui_tree: Vec<Value> = tree.iter().map(to_uui).collect();
    let mut uui = json!({ "version": "1.0", "meta": meta });
    let mut cogo = json!({ "version": "1.0", "page": page_meta, "meta": meta });
    // Moved in, not through `json!`, which would copy the trees (it
    // serialises what it is given by reference): a third of the peak.
    uui["tree"] = Value::Array(uui_tree);
    cogo["tree"] = Value::Array(tree);
    Ok(object([("uui_json", uui), ("cogo_ui_json", cogo)]))
}

/// An object of `fields`, moved in (see [`convert`]).
fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// `uui/generate`'s answer, `{ok, trace_id, result}`, serialised.
pub fn generate_answer(trace_id: &str, result: Value) -> ApiResponse {
    ApiResponse::json(200, &object([("ok", true.into()), ("trace_id", trace_id.into()), ("result", result)]))
}

/// The arguments of `record_project_update` for a conversion: `owner`
/// (see [`project_owner`]) is who must own the project.
pub fn outbox_args(project: &str, trace_id: &str, owner: Option<&str>, result: &Value) -> RecordProjectUpdate {
    let cogo = &result["cogo_ui_json"];
    RecordProjectUpdate {
        project: project.to_string(),
        trace: trace_id.to_string(),
        owner: owner.map(str::to_string),
        page: cogo["page"].clone(),
        rows: Value::Array(crate::figma::creatego::rows(&cogo["tree"], 0)),
    }
}

sql_function! {
    /// `cogo.record_project_update`: a conversion into the project outbox, in
    /// the same transaction as the check that `owner` owns the project.
    pub struct RecordProjectUpdate => "record_project_update" -> Value {
        pub project: String,
        pub trace: String,
        pub owner: Option<String>,
        pub page: Value,
        pub rows: Value,
    }
}

sql_function! {
    /// `cogo.project_claim`: the project is `owner`'s (the first to use it owns
    /// it), or someone else's (404).
    pub struct ProjectClaim => "project_claim" -> Value {
        pub project: String,
        pub owner: Option<String>,
    }
}

sql_function! {
    /// `cogo.project_updates_apply`: projects pending outbox rows into the
    /// application tables.
    pub struct ProjectUpdatesApply => "project_updates_apply" -> Value {}
}

/// A top-level node in REST's names: a plugin serialization is mapped (with
/// its subtree), a REST node is used as it is.
fn normalize_root(node: &Value) -> Cow<'_, Value> {
    if node.get("fontName").is_some() || (node.get("x").is_some() && node.get("absoluteBoundingBox").is_none()) {
        Cow::Owned(normalize_plugin(node))
    } else {
        Cow::Borrowed(node)
    }
}

/// The Figma document of a `uui/generate` body, borrowed (a copy would
/// double the peak), and the field it came in: `figma_json` (a REST
/// response, a REST node, plugin nodes or a dump) or `figma_like`
/// (plugin-style nodes).
fn figma_document(body: &Body) -> Option<(&'static str, &Value)> {
    let field = |names: &[&str], field| body.value(names).map(|doc| (field, doc));
    field(&["figma_json", "figmaJson"], "figma_json").or_else(|| field(&["figma_like", "figmaLike"], "figma_like"))
}

/// `uui/generate`: the conversion of the Figma document (see
/// [`figma_document`]), or `cogo_ui_json` given as it is, in both forms.
/// Image links are put in afterwards ([`images::ImageLinks::attach`]), once
/// the bytes are stored: nothing is stored for a document that fails.
pub fn generate(body: &Body, project_id: Option<&str>) -> Result<Value, ApiError> {
    if let Some((field, doc)) = figma_document(body) {
        return convert(doc, project_id).map_err(|e| at_field(e, field));
    }
    if let Some(cogo) = body.opt_value(&["cogo_ui_json", "cogoUiJson"]) {
        return from_cogo(&cogo, project_id);
    }
    Err(bad_input("$", "one of figma_json, figma_like or cogo_ui_json is required"))
}

/// The images a `uui/generate` body brings: the decoded bytes of a dump's
/// images, and the links of the REST image maps in `figma_images`.
pub fn generate_images(body: &Body) -> Result<(Vec<images::DumpImage>, images::ImageLinks), ApiError> {
    let dump = match figma_document(body) {
        Some((field, doc)) => images::dump_images(doc).map_err(|e| at_field(e, field))?,
        None => Vec::new(),
    };
    Ok((dump, images::ImageLinks::from_body(body)?))
}

/// The JSON path of a conversion error, under the body field it came from.
fn at_field(mut e: ApiError, field: &str) -> ApiError {
    if let Some(Value::String(path)) = e.details.as_mut().and_then(|d| d.get_mut("path")) {
        *path = path.replacen('$', &format!("$.{field}"), 1);
        e.message = e.message.replacen('$', &format!("$.{field}"), 1);
    }
    e
}

/// A `cogo_ui_json` as the plugin seeds it (`{tree}` or a bare array of
/// `{id, type, props?, children?}`), with its `uui_json` form.
fn from_cogo(cogo: &Value, project_id: Option<&str>) -> Result<Value, ApiError> {
    let tree = match cogo {
        Value::Array(items) => items,
        Value::Object(o) => o
            .get("tree")
            .and_then(Value::as_array)
            .ok_or_else(|| bad_input("$.cogo_ui_json.tree", "must be an array of nodes"))?,
        _ => return Err(bad_input("$.cogo_ui_json", "must be an object with a tree, or an array of nodes")),
    };
    fn check(node: &Value, path: &str) -> Result<Value, ApiError> {
        for key in ["id", "type"] {
            if !node[key].is_string() {
                return Err(bad_input(&format!("{path}.{key}"), "must be a string"));
            }
        }
        let mut children = Vec::new();
        for (i, child) in node["children"].as_array().into_iter().flatten().enumerate() {
            children.push(check(child, &format!("{path}.children[{i}]"))?);
        }
        Ok(json!({ "id": node["id"], "kind": node["type"], "name": node.get("name").cloned().unwrap_or(Value::Null),
                   "attrs": node.get("props").cloned().unwrap_or(json!({})), "children": children }))
    }
    let uui: Vec<Value> = tree
        .iter()
        .enumerate()
        .map(|(i, n)| check(n, &format!("$.cogo_ui_json.tree[{i}]")))
        .collect::<Result<_, _>>()?;
    let meta = json!({ "project_id": project_id });
    let page = cogo.get("page").cloned().unwrap_or(json!({}));
    Ok(json!({
        "uui_json": { "version": "1.0", "tree": uui, "meta": meta },
        "cogo_ui_json": { "version": "1.0", "page": page, "tree": tree, "meta": meta },
    }))
}

/// Who a figma-compat caller writes projects as: a user by their JWT `sub`
/// (what row level security compares `projects.owner_id` with), any other
/// caller by its principal id; `None` for the platform, which may write
/// into any project.
pub fn project_owner(principal: &Principal) -> Option<String> {
    match (principal.role, &principal.sub) {
        (Role::Service, _) => None,
        (Role::Authenticated, Some(sub)) => Some(sub.clone()),
        _ => Some(principal.id()),
    }
}

/// The path segment that keeps an owner's uploads and results apart from
/// everyone else's: a digest, since owner ids may hold any character and
/// need not appear in links. The platform's have none.
fn owner_scope(owner: Option<&str>) -> String {
    match owner {
        Some(owner) => {
            let digest = Sha256::digest(owner.as_bytes());
            format!("{}/", crate::hex(&digest[..16]))
        }
        None => String::new(),
    }
}

/// Where `owner`'s uploads for `project` go: `uploads/<projectId>/<owner
/// scope>/` (no scope for the platform).
fn uploads_prefix(project: &str, owner: Option<&str>) -> String {
    format!("uploads/{project}/{}", owner_scope(owner))
}

/// `uui/presign {projectId, fileName}`: the project and where `owner`'s
/// upload goes in the figma bucket.
pub fn presign_request(body: &Body, owner: Option<&str>) -> Result<(String, String), ApiError> {
    let project =
        body.opt_uuid(&["projectId", "project_id"])?.ok_or_else(|| bad_input("$.projectId", "is required"))?;
    let name = body
        .opt_str(&["fileName", "file_name"], crate::storage::artifacts::MAX_NAME_CHARS)?
        .ok_or_else(|| bad_input("$.fileName", "is required"))?;
    let name = crate::storage::artifacts::check_name(&name).map_err(|e| bad_input("$.fileName", &e.message))?;
    let key = format!("{}{name}", uploads_prefix(&project, owner));
    Ok((project, key))
}

/// `uui/ingest {projectId, storage_key, sha256?}`: the project, the key of
/// the upload (which must be one of `owner`'s for that project: anything
/// else is 404, as if it did not exist), and the checksum the plugin
/// computed, if it sent one.
pub fn ingest_request(body: &Body, owner: Option<&str>) -> Result<(String, String, Option<String>), ApiError> {
    let project =
        body.opt_uuid(&["projectId", "project_id"])?.ok_or_else(|| bad_input("$.projectId", "is required"))?;
    let key = body
        .opt_str(&["storage_key", "storageKey", "key"], crate::storage::artifacts::MAX_PATH_BYTES)?
        .ok_or_else(|| bad_input("$.storage_key", "is required"))?;
    crate::storage::artifacts::check_path(&key).map_err(|e| bad_input("$.storage_key", &e.message))?;
    if !key.starts_with(&uploads_prefix(&project, owner)) {
        return Err(ApiError::not_found(format!("no upload {key} of yours in project {project}"))
            .with_details(json!({ "path": "$.storage_key" })));
    }
    let sha256 = body.opt_str(&["sha256"], 64)?.map(|s| s.to_ascii_lowercase());
    Ok((project, key, sha256))
}

/// Where an ingested document's conversion is kept
/// (`cogo_ui/<projectId>/<owner scope>/<trace_id>.json`), and where the
/// pointer from its trace id to it is.
pub fn ingest_result_paths(project: &str, owner: Option<&str>, trace_id: &str) -> (String, String) {
    (format!("cogo_ui/{project}/{}{trace_id}.json", owner_scope(owner)), ingest_pointer(trace_id))
}

/// Where the pointer from a trace id to its conversion is.
pub fn ingest_pointer(trace_id: &str) -> String {
    format!("cogo_ui/traces/{trace_id}")
}

/// Whether `owner` may have the conversion kept at `key` (from a trace's
/// pointer): the platform any, others only their own.
pub fn owns_result(key: &str, owner: Option<&str>) -> bool {
    let Some(owner) = owner else { return true };
    let scope = owner_scope(Some(owner));
    key.strip_prefix("cogo_ui/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(_, rest)| rest.starts_with(&scope) && !rest[scope.len()..].contains('/'))
}

/// The `uui/*` services agents perform.
pub fn is_agent_service(service: &str) -> bool {
    let named = |rest: &str| {
        !rest.is_empty()
            && rest.len() <= 100
            && rest
                .split('/')
                .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)))
    };
    matches!(service, "symbols/map" | "variables/derive")
        || service.strip_prefix("bdd/").is_some_and(named)
        || service.strip_prefix("actionflow/").is_some_and(named)
}

/// The job behind an agent service call: `{projectId (uuid),
/// page_id? (integer), ...}` as the payload, typed `figma.uui.<service>`.
pub fn agent_job_args(service: &str, body: &Body, executor: &str, owner: Option<&str>) -> Result<Enqueue, ApiError> {
    if !is_agent_service(service) {
        return Err(ApiError::not_found(format!("no figma-compat service uui/{service}")));
    }
    if body.opt_uuid(&["projectId", "project_id"])?.is_none() {
        return Err(bad_input("$.projectId", "is required (a UUID)"));
    }
    body.opt_int(&["page_id", "pageId"], 0, i64::from(i32::MAX))?;
    let job_type = format!("figma.uui.{}", service.replace('/', "."));
    Ok(Enqueue::new(job_type, executor, Value::Object(body.fields().clone()), owner))
}

/// An error as the Figma plugin reads it: `{ok: false, error, reason,
/// details}` (a body over the limit: `error: "payload_too_large"`).
pub fn plugin_error(e: ApiError) -> ApiResponse {
    let mut body = json!({ "ok": false, "error": e.code, "reason": e.message });
    if let Some(details) = &e.details {
        body["details"] = details.clone();
    }
    if let Some(id) = &e.request_id {
        body["request_id"] = id.clone().into();
    }
    let mut response = ApiResponse::json(e.status, &body);
    response.headers.extend(e.headers);
    response
}

/// The `uui_json` form of a node: `kind` and `attrs` for `type` and `props`.
fn to_uui(node: &Value) -> Value {
    let children: Vec<Value> = node["children"].as_array().into_iter().flatten().map(to_uui).collect();
    json!({ "id": node["id"], "kind": node["type"], "name": node["name"], "attrs": node["props"],
            "figma": node["figma"], "children": children })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_exact_to_eight_bits() {
        assert_eq!(hex_color(&json!({"r": 1, "g": 0, "b": 0.5}), 1.0), "#FF0080");
        assert_eq!(hex_color(&json!({"r": 0, "g": 0, "b": 0, "a": 0.5}), 1.0), "#00000080");
        assert_eq!(hex_color(&json!({"r": 1, "g": 1, "b": 1}), 0.5), "#FFFFFF80");
    }

    #[test]
    fn weights_from_style_names() {
        assert_eq!(weight_from_style("SemiBold Italic"), 600);
        assert_eq!(weight_from_style("Extra Bold"), 800);
        assert_eq!(weight_from_style("Bold"), 700);
        assert_eq!(weight_from_style("Regular"), 400);
    }

    fn body(s: &str) -> Body {
        Body::parse(s.as_bytes(), 1 << 20).unwrap()
    }

    #[test]
    fn generate_takes_any_of_the_three_inputs() {
        let seed = generate(&body(r#"{"cogo_ui_json":[{"type":"container","id":"root","children":[{"type":"text","id":"t","props":{"text":"Welcome"}}]}]}"#), Some("p")).unwrap();
        assert_eq!(seed["uui_json"]["tree"][0]["children"][0]["attrs"]["text"], "Welcome");
        assert_eq!(seed["uui_json"]["tree"][0]["kind"], "container");
        assert_eq!(seed["cogo_ui_json"]["meta"]["project_id"], "p");
        let figma =
            generate(&body(r#"{"figma_json":{"id":"1:1","type":"TEXT","name":"t","characters":"Hi"}}"#), None).unwrap();
        assert_eq!(figma["cogo_ui_json"]["tree"][0]["props"]["text"], "Hi");
        let e = generate(
            &body(r#"{"figma_json":{"document":{"type":"DOCUMENT","children":[{"type":"CANVAS","children":[{}]}]}}}"#),
            None,
        )
        .unwrap_err();
        assert_eq!(e.details.unwrap()["path"], "$.figma_json.pages[0].children[0].type");
        let e = generate(&body(r#"{"cogo_ui_json":{"tree":[{"id":"a","type":3}]}}"#), None).unwrap_err();
        assert_eq!(e.details.unwrap()["path"], "$.cogo_ui_json.tree[0].type");
        assert_eq!(generate(&body(r#"{"intent":"x"}"#), None).unwrap_err().status, 400);
        let shaped: Value = serde_json::from_slice(&plugin_error(crate::http::body::too_large(10)).body).unwrap();
        assert_eq!((shaped["ok"].as_bool(), shaped["error"].as_str()), (Some(false), Some("payload_too_large")));
    }

    #[test]
    fn what_is_not_mapped_is_kept_and_given_back() {
        let node = json!({"id": "1:1", "type": "FRAME", "name": "f", "exportSettings": [{"format": "PNG"}],
                          "interactions": [{"trigger": {"type": "ON_CLICK"}}], "children": []});
        let cogo = convert(&node, None).unwrap()["cogo_ui_json"].clone();
        let unmapped = &cogo["tree"][0]["figma"]["unmapped"];
        assert_eq!(unmapped["exportSettings"][0]["format"], "PNG");
        assert!(unmapped["interactions"].is_array() && unmapped.get("children").is_none());
        let back = crate::figma::reverse::to_figma_like(&cogo).unwrap();
        assert_eq!(back["figma_like"][0]["exportSettings"], node["exportSettings"]);
        assert_eq!(back["figma_like"][0]["interactions"], node["interactions"]);
    }

    #[test]
    fn agent_services_are_named_and_validated() {
        for ok in ["symbols/map", "variables/derive", "bdd/generate", "actionflow/refine-step"] {
            assert!(is_agent_service(ok), "{ok}");
        }
        for bad in ["generate", "bdd/", "bdd/../x", "actionflow/a b", "symbols/map/x"] {
            assert!(!is_agent_service(bad), "{bad}");
        }
        let p = "00000000-0000-4000-8000-000000000001";
        let args = agent_job_args(
            "bdd/generate",
            &body(&format!(r#"{{"projectId":"{p}","page_id":3}}"#)),
            "agents",
            Some("u"),
        )
        .unwrap();
        assert_eq!((args.job_type.as_str(), args.payload["page_id"].as_i64()), ("figma.uui.bdd.generate", Some(3)));
        assert_eq!(agent_job_args("bdd/generate", &body(r#"{"projectId":"x"}"#), "a", None).unwrap_err().status, 400);
        assert_eq!(
            agent_job_args("bdd/generate", &body(&format!(r#"{{"projectId":"{p}","page_id":"one"}}"#)), "a", None)
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(agent_job_args("nope", &body("{}"), "a", None).unwrap_err().status, 404);
    }

    #[test]
    fn presign_and_ingest_requests() {
        let p = "00000000-0000-4000-8000-000000000001";
        let presign = |json: &str, owner| presign_request(&body(json), owner);
        let (project, key) = presign(&format!(r#"{{"projectId":"{p}","fileName":"doc.json"}}"#), None).unwrap();
        assert_eq!((project.as_str(), key.as_str()), (p, &*format!("uploads/{p}/doc.json")));
        let (_, alice) = presign(&format!(r#"{{"projectId":"{p}","fileName":"doc.json"}}"#), Some("alice")).unwrap();
        let (_, bob) = presign(&format!(r#"{{"projectId":"{p}","fileName":"doc.json"}}"#), Some("bob")).unwrap();
        assert!(alice.starts_with(&format!("uploads/{p}/")) && alice.ends_with("/doc.json"));
        assert_ne!(alice, bob, "two callers' uploads never share a key");
        assert_eq!(
            presign(&format!(r#"{{"projectId":"{p}","fileName":"../x"}}"#), None).unwrap_err().details.unwrap()["path"],
            "$.fileName"
        );
        assert!(presign(r#"{"projectId":"nope","fileName":"a"}"#, None).is_err());

        let ingest = |key: &str, owner| {
            ingest_request(&body(&format!(r#"{{"projectId":"{p}","storage_key":"{key}","sha256":"AB"}}"#)), owner)
        };
        let (_, key, sha) = ingest(&format!("uploads/{p}/doc.json"), None).unwrap();
        assert_eq!((key.as_str(), sha.as_deref()), (&*format!("uploads/{p}/doc.json"), Some("ab")));
        assert_eq!(ingest(&alice, Some("alice")).unwrap().1, alice);
        assert_eq!(ingest(&alice, None).unwrap().1, alice, "the platform reads any upload of the project");
        let refused = ingest(&alice, Some("bob")).unwrap_err();
        assert_eq!((refused.status, &refused.details.unwrap()["path"]), (404, &json!("$.storage_key")));
        assert_eq!(ingest(&format!("uploads/{p}/doc.json"), Some("alice")).unwrap_err().status, 404);
        let other = ingest("uploads/someone/doc.json", None);
        assert_eq!(other.unwrap_err().details.unwrap()["path"], "$.storage_key");
        assert_eq!(ingest(&format!("uploads/{p}/../x"), None).unwrap_err().status, 400);
    }

    #[test]
    fn ingest_results_belong_to_who_ingested() {
        let (p, t) = ("00000000-0000-4000-8000-000000000001", "6b1f1f3e-8d3c-4a55-9a43-0d5c1f9a6e01");
        let (platform, pointer) = ingest_result_paths(p, None, t);
        assert_eq!((platform.as_str(), pointer.as_str()), (&*format!("cogo_ui/{p}/{t}.json"), &*ingest_pointer(t)));
        let (alice, _) = ingest_result_paths(p, Some("alice"), t);
        assert!(owns_result(&alice, Some("alice")) && owns_result(&alice, None));
        assert!(!owns_result(&alice, Some("bob")));
        assert!(!owns_result(&platform, Some("alice")));
    }

    #[test]
    fn project_owners() {
        let principal = |role, sub: Option<&str>| Principal {
            role,
            sub: sub.map(str::to_string),
            executor_id: None,
            via: crate::auth::Via::Jwt,
        };
        assert_eq!(project_owner(&principal(Role::Authenticated, Some("u-1"))).as_deref(), Some("u-1"));
        assert_eq!(project_owner(&principal(Role::Service, Some("svc"))), None);
        let agent = principal(Role::Worker, Some("agent-7"));
        assert_eq!(project_owner(&agent), Some(agent.id()));
        assert_ne!(project_owner(&agent).as_deref(), Some("agent-7"), "an agent never passes for a user");
    }

    #[test]
    fn node_count_and_depth_are_bounded() {
        let flat =
            json!((0..=MAX_NODES).map(|i| json!({"id": i.to_string(), "type": "RECTANGLE"})).collect::<Vec<_>>());
        let e = convert(&flat, None).unwrap_err();
        assert_eq!((e.status, e.code, &e.details.unwrap()["limit"]), (413, "too_many_nodes", &json!(MAX_NODES)));
        let mut deep = json!({"id": "leaf", "type": "FRAME"});
        for _ in 0..MAX_NODE_DEPTH {
            deep = json!({"id": "n", "type": "FRAME", "children": [deep]});
        }
        let e = convert(&deep, None).unwrap_err();
        assert_eq!((e.status, e.code), (400, "too_deep"));
        let details = e.details.unwrap();
        assert_eq!(details["limit"], MAX_NODE_DEPTH);
        assert!(details["path"].as_str().unwrap().starts_with("$.pages[0].children[0]"));
        assert!(convert(&deep["children"][0], None).is_ok(), "exactly the limit converts");
    }

    #[test]
    fn a_dumps_objects_convert_as_the_bare_nodes_do() {
        let nodes = json!([{"type": "FRAME", "name": "f", "x": 0, "y": 0, "width": 10, "height": 10, "children": [
            {"type": "RECTANGLE", "name": "photo", "x": 1, "y": 1, "width": 4, "height": 4,
             "fills": [{"type": "IMAGE", "scaleMode": "FIT", "imageHash": "abc"}]},
            {"type": "TEXT", "name": "t", "x": 0, "y": 5, "width": 10, "height": 5, "characters": "Hello",
             "fontName": {"family": "Inter", "style": "Bold"}, "fontSize": 12}]}]);
        let dump = json!({"objects": nodes, "images": {"abc": [137, 80]}, "components": {}, "styles": {}});
        let (bare, dumped) = (convert(&nodes, None).unwrap(), convert(&dump, None).unwrap());
        assert_eq!(bare, dumped);
        let photo = &dumped["cogo_ui_json"]["tree"][0]["children"][0];
        assert_eq!(photo["type"], "image");
        assert_eq!(
            photo["props"]["style"]["fills"][0],
            json!({"type": "image", "imageRef": "abc", "fit": "fit", "opacity": 1.0})
        );
        let e = convert(&json!({"objects": {"type": "FRAME"}}), None).unwrap_err();
        assert_eq!(e.details.unwrap()["path"], "$.objects");
    }

    #[test]
    fn generate_finds_the_images_of_a_dump_under_its_field() {
        let e = generate_images(&body(r#"{"figma_json":{"objects":[],"images":{"h":[1,999]}}}"#)).unwrap_err();
        assert_eq!(e.details.unwrap()["path"], "$.figma_json.images.h[1]");
        let e = generate_images(&body(r#"{"figma_like":{"objects":[],"images":{"h":7}}}"#)).unwrap_err();
        assert_eq!(e.details.unwrap()["path"], "$.figma_like.images.h");
        let (dump, links) = generate_images(&body(r#"{"figma_json":{"objects":[],"images":{"h":"AQI="}}}"#)).unwrap();
        assert_eq!((dump.len(), dump[0].bytes.as_slice(), links.is_empty()), (1, &[1u8, 2][..], true));
        let (dump, _) = generate_images(&body(r#"{"cogo_ui_json":[]}"#)).unwrap();
        assert!(dump.is_empty());
    }

    #[test]
    fn an_image_map_alone_is_refused_saying_where_it_goes() {
        for map in [
            json!({"error": false, "status": 200, "meta": {"images": {"r": "https://x"}}}),
            json!({"err": null, "images": {"1:2": "https://x"}}),
        ] {
            let e = generate(&body(&json!({ "figma_json": map }).to_string()), None).unwrap_err();
            assert_eq!((e.status, e.details.as_ref().unwrap()["path"].as_str()), (400, Some("$.figma_json")));
            assert!(e.message.contains("has no nodes") && e.message.contains("figma_images"), "{}", e.message);
        }
    }

    #[test]
    fn bad_input_names_the_path() {
        let e = convert(
            &json!({"document": {"type": "DOCUMENT", "children": [{"type": "CANVAS", "children": [{"id": "1"}]}]}}),
            None,
        )
        .unwrap_err();
        assert_eq!(e.details.unwrap()["path"], "$.pages[0].children[0].type");
        assert_eq!(convert(&json!(42), None).unwrap_err().status, 400);
    }
}
