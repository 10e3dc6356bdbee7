//! COGO UI JSON back to plugin-style JSON: the Figma plugin API's field
//! names (x/y/width/height, fontName, per-corner radii, per-side stroke
//! weights, paints with 0..1 colours), from which a plugin can create the
//! nodes. Text keeps its runs as REST's per-character overrides, and a
//! group collapsed into one vector says so (`cogoKind`), so converting the
//! result to COGO again gives the same tree: a fixed point.

use serde_json::{json, Map, Value};

use crate::http::error::ApiError;

/// A `#RRGGBB[AA]` colour as 0..1 channels and its alpha.
fn rgba(hex: &str) -> Option<(Value, f64)> {
    let digits = hex.strip_prefix('#')?;
    let byte = |i: usize| u8::from_str_radix(digits.get(i..i + 2)?, 16).ok().map(|b| f64::from(b) / 255.0);
    let alpha = if digits.len() == 8 { byte(6)? } else { 1.0 };
    Some((json!({ "r": byte(0)?, "g": byte(2)?, "b": byte(4)? }), alpha))
}

fn upper(v: &Value) -> Value {
    v.as_str().map(|s| Value::from(s.to_ascii_uppercase())).unwrap_or(Value::Null)
}

fn paint(p: &Value) -> Value {
    let kind = p["type"].as_str().unwrap_or("");
    let mut out = match kind {
        "solid" => {
            let (color, alpha) = rgba(p["color"].as_str().unwrap_or("")).unwrap_or((json!({}), 1.0));
            json!({ "type": "SOLID", "color": color, "opacity": alpha })
        }
        "image" => json!({ "type": "IMAGE", "imageHash": p["imageRef"], "scaleMode": upper(&p["fit"]),
                           "opacity": p["opacity"] }),
        k if k.ends_with("_gradient") => {
            let stops: Vec<Value> = p["stops"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    let (mut color, alpha) = rgba(s["color"].as_str().unwrap_or("")).unwrap_or((json!({}), 1.0));
                    color["a"] = alpha.into();
                    json!({ "color": color, "position": s["position"] })
                })
                .collect();
            let mut g = json!({ "type": format!("GRADIENT_{}", k.trim_end_matches("_gradient").to_ascii_uppercase()),
                                "gradientStops": stops });
            for (from, to) in [("handles", "gradientHandlePositions"), ("transform", "gradientTransform")] {
                if !p[from].is_null() {
                    g[to] = p[from].clone();
                }
            }
            g
        }
        other => json!({ "type": other.to_ascii_uppercase() }),
    };
    if let Some(mode) = p["blendMode"].as_str() {
        out["blendMode"] = mode.to_ascii_uppercase().into();
    }
    out
}

fn paints(list: &Value) -> Value {
    Value::Array(list.as_array().into_iter().flatten().map(paint).collect())
}

/// A run or base text style (COGO) as REST's text style fields.
fn rest_text_style(style: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    for &(to, from) in super::TEXT_STYLE_FIELDS {
        if let Some(v) = style.get(from) {
            out.insert(to.into(), v.clone());
        }
    }
    match style["lineHeight"]["unit"].as_str() {
        Some("px") => {
            out.insert("lineHeightUnit".into(), "PIXELS".into());
            out.insert("lineHeightPx".into(), style["lineHeight"]["value"].clone());
        }
        Some("percent") => {
            out.insert("lineHeightUnit".into(), "FONT_SIZE_%".into());
            out.insert("lineHeightPercentFontSize".into(), style["lineHeight"]["value"].clone());
        }
        Some("auto") => {
            out.insert("lineHeightUnit".into(), "INTRINSIC_%".into());
        }
        _ => {}
    }
    if let Some(color) = style.get("color") {
        out.insert("fills".into(), paints(&json!([{ "type": "solid", "color": color }])));
    }
    out
}

fn text_fields(out: &mut Map<String, Value>, t: &Value) {
    let base = &t["style"];
    let mut style = rest_text_style(base);
    // The base colour comes from the node's own fills.
    style.remove("fills");
    style.insert("textAlignHorizontal".into(), upper(&t["align"]["horizontal"]));
    style.insert("textAlignVertical".into(), upper(&t["align"]["vertical"]));
    style.insert("textAutoResize".into(), upper(&t["autoResize"]));
    out.insert("characters".into(), t["characters"].clone());
    out.insert("fontName".into(), json!({ "family": base["fontFamily"], "style": base["fontStyle"] }));
    for (from, to) in [("fontSize", "fontSize"), ("case", "textCase"), ("decoration", "textDecoration")] {
        if let Some(v) = base.get(from) {
            out.insert(to.into(), v.clone());
        }
    }
    if let Some(px) = base.get("letterSpacing") {
        out.insert("letterSpacing".into(), json!({ "unit": "PIXELS", "value": px }));
    }
    out.insert("textAlignHorizontal".into(), upper(&t["align"]["horizontal"]));
    // Runs as per-character override indices into a table, one entry per
    // run that differs from the base.
    let mut overrides = Vec::new();
    let mut table = Map::new();
    for run in t["runs"].as_array().into_iter().flatten() {
        let count = run["text"].as_str().unwrap_or("").chars().count();
        let key = if run["style"] == *base {
            0
        } else {
            table.insert((table.len() + 1).to_string(), Value::Object(rest_text_style(&run["style"])));
            table.len()
        };
        overrides.extend(std::iter::repeat_n(Value::from(key), count));
    }
    if !table.is_empty() {
        out.insert("characterStyleOverrides".into(), Value::Array(overrides));
        out.insert("styleOverrideTable".into(), Value::Object(table));
    }
    out.insert("style".into(), Value::Object(style));
}

fn node(cogo: &Value, parent_auto: bool) -> Value {
    let props = &cogo["props"];
    let mut out = Map::new();
    out.insert("id".into(), cogo["id"].clone());
    out.insert("type".into(), cogo["figma"]["type"].clone());
    out.insert("name".into(), cogo["name"].clone());
    if cogo["type"] == "vector" {
        out.insert("cogoKind".into(), "vector".into());
    }
    if let Some(c) = props.get("conditional") {
        out.insert("visible".into(), c["visibleByDefault"].clone());
        out.insert("componentPropertyReferences".into(), json!({ "visible": c["property"] }));
    }
    let frame = &props["frame"];
    for key in ["x", "y", "width", "height"] {
        if let Some(v) = frame.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(deg) = props["rotation"].as_f64() {
        out.insert("rotation".into(), (-deg).into());
    }
    let sizing = &props["sizing"];
    for (from, to) in [("horizontal", "layoutSizingHorizontal"), ("vertical", "layoutSizingVertical")] {
        out.insert(to.into(), upper(&sizing[from]));
    }
    for key in ["minWidth", "maxWidth", "minHeight", "maxHeight"] {
        if !sizing[key].is_null() {
            out.insert(key.into(), sizing[key].clone());
        }
    }
    if let Some(position) = props.get("position") {
        out.insert(
            "constraints".into(),
            json!({ "horizontal": upper(&position["constraints"]["horizontal"]),
                    "vertical": upper(&position["constraints"]["vertical"]) }),
        );
        if parent_auto {
            out.insert("layoutPositioning".into(), "ABSOLUTE".into());
        }
    }
    if let Some(l) = props.get("layout") {
        let mode = match l["mode"].as_str() {
            Some("row") => "HORIZONTAL",
            Some("grid") => "GRID",
            _ => "VERTICAL",
        };
        let justify = match l["justify"].as_str() {
            Some("center") => "CENTER",
            Some("end") => "MAX",
            Some("space_between") => "SPACE_BETWEEN",
            _ => "MIN",
        };
        let align = match l["align"].as_str() {
            Some("center") => "CENTER",
            Some("end") => "MAX",
            Some("baseline") => "BASELINE",
            _ => "MIN",
        };
        out.insert("layoutMode".into(), mode.into());
        out.insert("itemSpacing".into(), l["gap"].clone());
        out.insert("layoutWrap".into(), if l["wrap"] == true { "WRAP" } else { "NO_WRAP" }.into());
        if !l["crossGap"].is_null() {
            out.insert("counterAxisSpacing".into(), l["crossGap"].clone());
        }
        for (side, key) in
            [("top", "paddingTop"), ("right", "paddingRight"), ("bottom", "paddingBottom"), ("left", "paddingLeft")]
        {
            out.insert(key.into(), l["padding"][side].clone());
        }
        out.insert("primaryAxisAlignItems".into(), justify.into());
        out.insert("counterAxisAlignItems".into(), align.into());
    }
    let style = &props["style"];
    out.insert("fills".into(), paints(&style["fills"]));
    if let Some(stroke) = style.get("stroke") {
        out.insert("strokes".into(), paints(&stroke["paints"]));
        out.insert("strokeWeight".into(), stroke["weight"].clone());
        for (side, key) in [
            ("top", "strokeTopWeight"),
            ("right", "strokeRightWeight"),
            ("bottom", "strokeBottomWeight"),
            ("left", "strokeLeftWeight"),
        ] {
            out.insert(key.into(), stroke["sides"][side].clone());
        }
        out.insert("strokeAlign".into(), upper(&stroke["align"]));
        out.insert("dashPattern".into(), stroke["dashes"].clone());
    }
    if let Some(r) = style.get("radius") {
        for (corner, key) in [
            ("topLeft", "topLeftRadius"),
            ("topRight", "topRightRadius"),
            ("bottomRight", "bottomRightRadius"),
            ("bottomLeft", "bottomLeftRadius"),
        ] {
            out.insert(key.into(), r[corner].clone());
        }
    }
    if let Some(effects) = style["effects"].as_array() {
        let effects: Vec<Value> = effects
            .iter()
            .map(|e| {
                let kind = e["type"].as_str().unwrap_or("").to_ascii_uppercase();
                if kind.ends_with("SHADOW") {
                    let (mut color, alpha) = rgba(e["color"].as_str().unwrap_or("")).unwrap_or((json!({}), 1.0));
                    color["a"] = alpha.into();
                    json!({ "type": kind, "color": color, "offset": { "x": e["x"], "y": e["y"] }, "radius": e["blur"],
                            "spread": e["spread"], "visible": true })
                } else {
                    json!({ "type": kind, "radius": e["radius"], "visible": true })
                }
            })
            .collect();
        out.insert("effects".into(), Value::Array(effects));
    }
    if let Some(o) = style.get("opacity") {
        out.insert("opacity".into(), o.clone());
    }
    if let Some(b) = style.get("blendMode") {
        out.insert("blendMode".into(), upper(b));
    }
    if props["clip"] == true {
        out.insert("clipsContent".into(), true.into());
    }
    if let Some(t) = props.get("textStyle") {
        text_fields(&mut out, t);
    }
    if let Some(i) = props.get("instance") {
        out.insert("componentId".into(), i["componentId"].clone());
        out.insert("componentProperties".into(), i["props"].clone());
        out.insert("overrides".into(), i["overrides"].clone());
    }
    if let Some(c) = props.get("component") {
        out.insert("componentPropertyDefinitions".into(), c["properties"].clone());
    }
    // What the conversion did not read goes back as it came.
    for (key, value) in cogo["figma"]["unmapped"].as_object().into_iter().flatten() {
        out.entry(key.clone()).or_insert_with(|| value.clone());
    }
    let auto = props.get("layout").is_some();
    let children: Vec<Value> = cogo["children"].as_array().into_iter().flatten().map(|c| node(c, auto)).collect();
    out.insert("children".into(), Value::Array(children));
    Value::Object(out)
}

/// `{figma_like: [...]}` from a `cogo_ui_json` (or its bare `tree`).
pub fn to_figma_like(cogo: &Value) -> Result<Value, ApiError> {
    let tree = cogo.get("tree").unwrap_or(cogo).as_array().ok_or_else(|| {
        ApiError::bad_request("invalid_cogo_ui_json", "cogo_ui_json must have a tree array")
            .with_details(json!({ "path": "$.cogo_ui_json.tree" }))
    })?;
    for (i, n) in tree.iter().enumerate() {
        if !n["figma"]["type"].is_string() || !n["props"].is_object() {
            return Err(ApiError::bad_request(
                "invalid_cogo_ui_json",
                format!("$.tree[{i}]: each node needs props and figma.type (as this converter writes them)"),
            )
            .with_details(json!({ "path": format!("$.tree[{i}]") })));
        }
    }
    Ok(json!({ "figma_like": tree.iter().map(|n| node(n, false)).collect::<Vec<_>>() }))
}
