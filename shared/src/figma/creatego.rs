//! CreateGo component rows (`public.components`) from a converted tree, as
//! the IDE and runtime read them: one row per node with its box relative
//! to the page, its place in the page, its parent as `group_id`, and the
//! options of its type.

use serde_json::{json, Value};

/// The CreateGo type of a converted node.
fn row_type(node: &Value) -> &'static str {
    match node["type"].as_str().unwrap_or("") {
        "text" => "text",
        "vector" => "icon",
        _ => "container",
    }
}

fn radius(style: &Value) -> Value {
    let r = &style["radius"];
    let corner = |k: &str| r[k].as_f64().unwrap_or(0.0);
    json!({ "topLeft": corner("topLeft"), "topRight": corner("topRight"),
            "bottomLeft": corner("bottomLeft"), "bottomRight": corner("bottomRight") })
}

fn options(node: &Value) -> Value {
    let props = &node["props"];
    let style = &props["style"];
    let first_solid = |paints: &Value| {
        paints.as_array().into_iter().flatten().find(|p| p["type"] == "solid").map(|p| p["color"].clone())
    };
    let visible = props["conditional"]["property"].as_str().map(|p| format!("props['{p}']"));
    match row_type(node) {
        "text" => {
            let t = &props["textStyle"]["style"];
            json!({
                "text": props["text"], "fontFamily": t["fontFamily"], "fontSize": t["fontSize"],
                "color": t["color"],
                "fontWeight": t["fontWeight"].as_f64().map(|w| format!("w{}", w as u32)),
                "selectableText": true,
                "textAlignment": props["textStyle"]["align"]["horizontal"],
                "visibleExpression": visible,
            })
        }
        "icon" => json!({
            "iconName": node["name"], "color": first_solid(&style["fills"]), "size": props["frame"]["width"],
            "rotation": props["rotation"], "visibleExpression": visible,
        }),
        _ => {
            let stroke = &style["stroke"];
            json!({
                "color": first_solid(&style["fills"]),
                "borderRadius": radius(style),
                "borderW": stroke["weight"],
                "borderColor": first_solid(&stroke["paints"]),
                "padding": props["layout"]["padding"],
                "alignment": props["layout"]["align"],
                "rotation": props["rotation"],
                "visibleExpression": visible,
            })
        }
    }
}

/// The rows of one page (`page_id`), in tree order.
pub fn rows(tree: &Value, page_id: i64) -> Vec<Value> {
    let mut out = Vec::new();
    // (node, its offset from the page, its parent's id)
    let mut stack: Vec<(&Value, (f64, f64), Option<String>)> =
        tree.as_array().into_iter().flatten().rev().map(|n| (n, (0.0, 0.0), None)).collect();
    while let Some((node, (ox, oy), parent)) = stack.pop() {
        let frame = &node["props"]["frame"];
        let (x, y) = (frame["x"].as_f64().unwrap_or(0.0) + ox, frame["y"].as_f64().unwrap_or(0.0) + oy);
        let id = node["id"].as_str().unwrap_or_default().to_string();
        out.push(json!({
            "id": id, "name": node["name"], "type": row_type(node),
            "dx": x, "dy": y,
            "width": frame["width"].as_f64().unwrap_or(0.0), "height": frame["height"].as_f64().unwrap_or(0.0),
            "version": "1.0", "page_id": page_id, "index_in_page": out.len(),
            "options": options(node), "group_id": parent, "is_lib_comp": node["type"] == "component",
        }));
        // Root frames are placed on the canvas; their contents relative to them.
        let origin = if parent.is_none() { (0.0, 0.0) } else { (x, y) };
        for child in node["children"].as_array().into_iter().flatten().rev() {
            stack.push((child, origin, Some(id.clone())));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_flatten_the_tree_in_order_with_page_offsets() {
        let tree = json!([{
            "id": "1:1", "type": "container", "name": "screen",
            "props": {"frame": {"x": 100, "y": 50, "width": 375, "height": 812},
                      "style": {"fills": [{"type": "solid", "color": "#FFFFFF"}]}},
            "children": [
                {"id": "1:2", "type": "container", "name": "card",
                 "props": {"frame": {"x": 16, "y": 100, "width": 343, "height": 200}},
                 "children": [{"id": "1:3", "type": "text", "name": "title",
                               "props": {"frame": {"x": 8, "y": 8, "width": 100, "height": 20}, "text": "Hi",
                                         "textStyle": {"style": {"fontFamily": "Inter", "fontSize": 16, "fontWeight": 500, "color": "#0F172A"},
                                                       "align": {"horizontal": "left"}}},
                               "children": []}]},
                {"id": "1:4", "type": "vector", "name": "arrow", "props": {"frame": {"x": 0, "y": 0, "width": 24, "height": 24}}, "children": []}
            ]
        }]);
        let rows = rows(&tree, 7);
        let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["1:1", "1:2", "1:3", "1:4"]);
        assert_eq!(rows[0]["options"]["color"], "#FFFFFF");
        assert_eq!(
            (rows[1]["dx"].as_f64(), rows[1]["dy"].as_f64()),
            (Some(16.0), Some(100.0)),
            "inside the root frame"
        );
        assert_eq!((rows[2]["dx"].as_f64(), rows[2]["dy"].as_f64()), (Some(24.0), Some(108.0)));
        assert_eq!((rows[2]["type"].as_str(), rows[2]["options"]["fontWeight"].as_str()), (Some("text"), Some("w500")));
        assert_eq!(rows[2]["group_id"], "1:2");
        assert_eq!((rows[3]["type"].as_str(), rows[3]["index_in_page"].as_u64()), (Some("icon"), Some(3)));
        assert!(rows.iter().all(|r| r["page_id"] == 7));
    }
}
