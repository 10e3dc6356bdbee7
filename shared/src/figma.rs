//! Figma documents to COGO UI JSON. Accepts a REST file response
//! (`/v1/files/:key`), a `/nodes` response, a single REST node, or a
//! plugin-API serialization (its field names are mapped onto REST's
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

use std::borrow::Cow;

use serde_json::{json, Map, Value};

use crate::body::Body;
use crate::error::ApiError;
use crate::http::ApiResponse;

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
        Value::Object(o) if o.get("type").is_some_and(Value::is_string) => Ok(from_document(input)),
        Value::Array(items) => Ok(vec![(String::new(), String::new(), items.iter().collect())]),
        _ => Err(bad_input("$", "expected a Figma REST response, a REST node or a plugin serialization")),
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

fn text_props(node: &Value) -> Value {
    let base = &node["style"];
    let run_style = |s: &Value| -> Value {
        let mut out = Map::new();
        for (from, to) in [
            ("fontFamily", "fontFamily"),
            ("fontStyle", "fontStyle"),
            ("fontWeight", "fontWeight"),
            ("fontSize", "fontSize"),
            ("letterSpacing", "letterSpacing"),
            ("textCase", "case"),
            ("textDecoration", "decoration"),
            ("italic", "italic"),
        ] {
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
    let mut out =
        json!({ "id": text(node, "id"), "type": kind, "name": text(node, "name"), "props": props, "figma": figma });
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

/// `{uui_json, cogo_ui_json}` of a Figma document.
pub fn convert(input: &Value, project_id: Option<&str>) -> Result<Value, ApiError> {
    let pages = pages(input)?;
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
    Ok(json!({
        "uui_json": { "version": "1.0", "tree": uui_tree, "meta": meta },
        "cogo_ui_json": { "version": "1.0", "page": page_meta, "tree": tree, "meta": meta },
    }))
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

/// `uui/generate`: the conversion of `figma_json` (a REST response, a REST
/// node or a plugin serialization) or `figma_like` (plugin-style nodes), or
/// `cogo_ui_json` given as it is, in both forms.
pub fn generate(body: &Body, project_id: Option<&str>) -> Result<Value, ApiError> {
    if let Some(doc) = body.opt_value(&["figma_json", "figmaJson"]) {
        return convert(&doc, project_id).map_err(|e| at_field(e, "figma_json"));
    }
    if let Some(like) = body.opt_value(&["figma_like", "figmaLike"]) {
        return convert(&like, project_id).map_err(|e| at_field(e, "figma_like"));
    }
    if let Some(cogo) = body.opt_value(&["cogo_ui_json", "cogoUiJson"]) {
        return from_cogo(&cogo, project_id);
    }
    Err(bad_input("$", "one of figma_json, figma_like or cogo_ui_json is required"))
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

/// `uui/presign {projectId, fileName}`: the project and where its upload
/// goes in the figma bucket, `uploads/<projectId>/<fileName>`.
pub fn presign_request(body: &Body) -> Result<(String, String), ApiError> {
    let project =
        body.opt_uuid(&["projectId", "project_id"])?.ok_or_else(|| bad_input("$.projectId", "is required"))?;
    let name = body
        .opt_str(&["fileName", "file_name"], crate::artifacts::MAX_NAME_CHARS)?
        .ok_or_else(|| bad_input("$.fileName", "is required"))?;
    let name = crate::artifacts::check_name(&name).map_err(|e| bad_input("$.fileName", &e.message))?;
    Ok((project.clone(), format!("uploads/{project}/{name}")))
}

/// `uui/ingest {projectId, storage_key, sha256?}`: the project, the key of
/// its upload (which must be under that project's uploads), and the
/// checksum the plugin computed, if it sent one.
pub fn ingest_request(body: &Body) -> Result<(String, String, Option<String>), ApiError> {
    let project =
        body.opt_uuid(&["projectId", "project_id"])?.ok_or_else(|| bad_input("$.projectId", "is required"))?;
    let key = body
        .opt_str(&["storage_key", "storageKey", "key"], crate::artifacts::MAX_PATH_BYTES)?
        .ok_or_else(|| bad_input("$.storage_key", "is required"))?;
    crate::artifacts::check_path(&key).map_err(|e| bad_input("$.storage_key", &e.message))?;
    if !key.starts_with(&format!("uploads/{project}/")) {
        return Err(bad_input("$.storage_key", "must be an upload of this project (uploads/<projectId>/...)"));
    }
    let sha256 = body.opt_str(&["sha256"], 64)?.map(|s| s.to_ascii_lowercase());
    Ok((project, key, sha256))
}

/// Where an ingested document's conversion is kept, and where the pointer
/// from its trace id to it is.
pub fn ingest_result_paths(project: &str, trace_id: &str) -> (String, String) {
    (format!("cogo_ui/{project}/{trace_id}.json"), format!("cogo_ui/traces/{trace_id}"))
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

/// `task.assign` arguments for an agent service call: `{projectId (uuid),
/// page_id? (integer), ...}` as the payload, typed `figma.uui.<service>`.
pub fn agent_job_args(service: &str, body: &Body, executor: &str, owner: Option<&str>) -> Result<Value, ApiError> {
    if !is_agent_service(service) {
        return Err(ApiError::not_found(format!("no figma-compat service uui/{service}")));
    }
    if body.opt_uuid(&["projectId", "project_id"])?.is_none() {
        return Err(bad_input("$.projectId", "is required (a UUID)"));
    }
    body.opt_int(&["page_id", "pageId"], 0, i64::from(i32::MAX))?;
    Ok(json!({
        "p_type": format!("figma.uui.{}", service.replace('/', ".")), "p_executor_id": executor,
        "p_payload": Value::Object(body.fields().clone()), "p_owner_id": owner,
    }))
}

/// An error as the Figma plugin reads it: `{ok: false, error, reason,
/// details}` (a body over the limit: `error: "payload_too_large"`).
pub fn plugin_error(e: ApiError) -> ApiResponse {
    let mut body = json!({ "ok": false, "error": e.code, "reason": e.message });
    if let Some(details) = &e.details {
        body["details"] = details.clone();
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
        let shaped: Value = serde_json::from_slice(&plugin_error(crate::body::too_large(10)).body).unwrap();
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
        let back = crate::figma_reverse::to_figma_like(&cogo).unwrap();
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
        assert_eq!(
            (args["p_type"].as_str(), args["p_payload"]["page_id"].as_i64()),
            (Some("figma.uui.bdd.generate"), Some(3))
        );
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
        let (project, key) =
            presign_request(&body(&format!(r#"{{"projectId":"{p}","fileName":"doc.json"}}"#))).unwrap();
        assert_eq!((project.as_str(), key.as_str()), (p, &*format!("uploads/{p}/doc.json")));
        assert_eq!(
            presign_request(&body(&format!(r#"{{"projectId":"{p}","fileName":"../x"}}"#)))
                .unwrap_err()
                .details
                .unwrap()["path"],
            "$.fileName"
        );
        assert!(presign_request(&body(r#"{"projectId":"nope","fileName":"a"}"#)).is_err());
        let (_, key, sha) = ingest_request(&body(&format!(
            r#"{{"projectId":"{p}","storage_key":"uploads/{p}/doc.json","sha256":"AB"}}"#
        )))
        .unwrap();
        assert_eq!((key.as_str(), sha.as_deref()), (&*format!("uploads/{p}/doc.json"), Some("ab")));
        let other =
            ingest_request(&body(&format!(r#"{{"projectId":"{p}","storage_key":"uploads/someone/doc.json"}}"#)));
        assert_eq!(other.unwrap_err().details.unwrap()["path"], "$.storage_key");
        assert!(ingest_request(&body(&format!(r#"{{"projectId":"{p}","storage_key":"uploads/{p}/../x"}}"#))).is_err());
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
