//! PostgREST's URL grammar: `select=`, filters with `not.`, `or=()` and
//! `and=()` trees, `order=`, `limit`/`offset`, `on_conflict`, `columns`.

use super::error::PgrstError;

#[derive(Debug, Clone, PartialEq)]
pub struct SelectItem {
    /// Column name, or a JSON path start (`data->a->>b` keeps the arrows).
    pub column: String,
    pub json_path: Vec<(String, String)>, // (arrow, key)
    pub alias: Option<String>,
    pub cast: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Cond { column: String, negated: bool, op: String, value: String },
    Group { negated: bool, or: bool, items: Vec<Filter> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderTerm {
    pub column: String,
    pub desc: bool,
    pub nulls: Option<bool>, // Some(true) = NULLS FIRST
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Query {
    pub select: Option<Vec<SelectItem>>,
    pub filters: Vec<Filter>,
    pub order: Vec<OrderTerm>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub on_conflict: Option<Vec<String>>,
    pub columns: Option<Vec<String>>,
    /// Parameters that are not reserved words (RPC arguments on GET).
    pub params: Vec<(String, String)>,
}

pub const OPERATORS: &[&str] = &[
    "eq",
    "neq",
    "gt",
    "gte",
    "lt",
    "lte",
    "like",
    "ilike",
    "match",
    "imatch",
    "is",
    "isdistinct",
    "in",
    "cs",
    "cd",
    "ov",
    "sl",
    "sr",
    "nxr",
    "nxl",
    "adj",
];

fn bad(message: impl Into<String>, details: impl Into<String>) -> PgrstError {
    PgrstError::new(400, "PGRST100", message).with_details(details)
}

/// Parses the decoded query pairs. `rpc_args` names parameters that are
/// function arguments rather than filters.
pub fn parse(pairs: &[(String, String)], rpc_args: &[String]) -> Result<Query, PgrstError> {
    let mut q = Query::default();
    for (key, value) in pairs {
        match key.as_str() {
            "select" => q.select = Some(parse_select(value)?),
            "order" => q.order = parse_order(value)?,
            "limit" => {
                q.limit = Some(value.parse().map_err(|_| bad("\"failed to parse limit parameter\"", value.clone()))?)
            }
            "offset" => {
                q.offset = Some(value.parse().map_err(|_| bad("\"failed to parse offset parameter\"", value.clone()))?)
            }
            "on_conflict" => q.on_conflict = Some(split_list(value)),
            "columns" => q.columns = Some(split_list(value)),
            "or" | "and" | "not.or" | "not.and" => {
                let negated = key.starts_with("not.");
                let or = key.ends_with("or");
                let inner = value
                    .strip_prefix('(')
                    .and_then(|v| v.strip_suffix(')'))
                    .ok_or_else(|| bad(format!("\"failed to parse logic tree ({value})\""), "expected parentheses"))?;
                q.filters.push(Filter::Group { negated, or, items: parse_logic_items(inner)? });
            }
            _ if rpc_args.contains(key) => q.params.push((key.clone(), value.clone())),
            _ => q.filters.push(parse_condition(key, value)?),
        }
    }
    Ok(q)
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

/// `col` + `[not.]op.value`.
pub fn parse_condition(column: &str, expr: &str) -> Result<Filter, PgrstError> {
    let (negated, rest) = match expr.strip_prefix("not.") {
        Some(r) => (true, r),
        None => (false, expr),
    };
    let (op, value) = rest.split_once('.').unwrap_or((rest, ""));
    if !OPERATORS.contains(&op) || (rest.find('.').is_none()) {
        return Err(bad(
            format!("\"failed to parse filter ({expr})\" (line 1, column {})", expr.len() + 1),
            "unexpected end of input expecting operator",
        ));
    }
    Ok(Filter::Cond { column: column.to_string(), negated, op: op.to_string(), value: value.to_string() })
}

/// Items of a logic tree: `a.eq.1,or(b.gt.2,c.is.null),not.and(...)`.
fn parse_logic_items(s: &str) -> Result<Vec<Filter>, PgrstError> {
    let mut items = Vec::new();
    for part in split_top_level(s)? {
        let part = part.trim();
        let (negated, body) = match part.strip_prefix("not.") {
            Some(b) if b.starts_with("or(") || b.starts_with("and(") => (true, b),
            _ => (false, part),
        };
        if let Some(inner) = body.strip_prefix("or(").or_else(|| body.strip_prefix("and(")) {
            let inner =
                inner.strip_suffix(')').ok_or_else(|| bad("\"failed to parse logic tree\"", part.to_string()))?;
            items.push(Filter::Group { negated, or: body.starts_with("or("), items: parse_logic_items(inner)? });
            continue;
        }
        let (column, expr) =
            part.split_once('.').ok_or_else(|| bad("\"failed to parse logic tree\"", part.to_string()))?;
        let mut cond = parse_condition(column, expr)?;
        if let Filter::Cond { value, .. } = &mut cond {
            *value = unquote(value);
        }
        items.push(cond);
    }
    Ok(items)
}

/// Splits on commas outside parentheses and double quotes.
fn split_top_level(s: &str) -> Result<Vec<String>, PgrstError> {
    let (mut out, mut cur, mut depth, mut quoted, mut escaped) = (Vec::new(), String::new(), 0i32, false, false);
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            '(' if !quoted => {
                depth += 1;
                cur.push(c);
            }
            ')' if !quoted => {
                depth -= 1;
                cur.push(c);
            }
            ',' if !quoted && depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    if quoted || depth != 0 {
        return Err(bad("\"failed to parse logic tree\"", "unbalanced quotes or parentheses"));
    }
    out.push(cur);
    Ok(out)
}

/// `"a,b"` -> `a,b`, with backslash escapes; values inside `in.(...)` lists
/// are handled by [`split_in_list`].
fn unquote(v: &str) -> String {
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        let mut out = String::new();
        let mut chars = v[1..v.len() - 1].chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else {
                out.push(c);
            }
        }
        out
    } else {
        v.to_string()
    }
}

/// `(a,"b,c",d)` -> [a, b,c, d].
pub fn split_in_list(v: &str) -> Result<Vec<String>, PgrstError> {
    let inner = v
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .ok_or_else(|| bad("\"failed to parse filter (in)\"", "expected a list in parentheses"))?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    Ok(split_top_level(inner)?.iter().map(|s| unquote(s.trim())).collect())
}

fn parse_select(v: &str) -> Result<Vec<SelectItem>, PgrstError> {
    let mut items = Vec::new();
    for raw in split_top_level(v)? {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        if raw.contains('(') {
            return Err(PgrstError::new(400, "PGRST200", "embedding resources is not supported by this gateway")
                .with_details(raw.to_string()));
        }
        let (alias, rest) = match raw.split_once(':') {
            Some((a, r)) if !r.starts_with(':') && !a.contains("->") => (Some(a.to_string()), r),
            _ => (None, raw),
        };
        let (expr, cast) = match rest.split_once("::") {
            Some((e, c)) => (e, Some(c.to_string())),
            None => (rest, None),
        };
        let (column, json_path) = parse_json_path(expr);
        items.push(SelectItem { column, json_path, alias, cast });
    }
    Ok(items)
}

/// `data->a->>b` -> ("data", [("->","a"), ("->>","b")]).
pub fn parse_json_path(expr: &str) -> (String, Vec<(String, String)>) {
    let Some(first) = expr.find("->") else { return (expr.to_string(), Vec::new()) };
    let column = expr[..first].to_string();
    let mut path = Vec::new();
    let mut rest = &expr[first..];
    while !rest.is_empty() {
        let arrow = if rest.starts_with("->>") { "->>" } else { "->" };
        rest = &rest[arrow.len()..];
        let end = rest.find("->").unwrap_or(rest.len());
        path.push((arrow.to_string(), rest[..end].to_string()));
        rest = &rest[end..];
    }
    (column, path)
}

fn parse_order(v: &str) -> Result<Vec<OrderTerm>, PgrstError> {
    let mut terms = Vec::new();
    for raw in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let mut parts = raw.split('.');
        let column = parts.next().unwrap_or_default().to_string();
        let mut term = OrderTerm { column, desc: false, nulls: None };
        for modifier in parts {
            match modifier {
                "asc" => term.desc = false,
                "desc" => term.desc = true,
                "nullsfirst" => term.nulls = Some(true),
                "nullslast" => term.nulls = Some(false),
                _ => {
                    return Err(bad(
                        format!("\"failed to parse order ({v})\""),
                        format!(
                            "unexpected \"{modifier}\" expecting \"asc\", \"desc\", \"nullsfirst\" or \"nullslast\""
                        ),
                    ))
                }
            }
        }
        terms.push(term);
    }
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn filters_and_negation() {
        let q = parse(&pairs(&[("age", "gte.18"), ("name", "not.like.A*")]), &[]).unwrap();
        assert_eq!(
            q.filters,
            vec![
                Filter::Cond { column: "age".into(), negated: false, op: "gte".into(), value: "18".into() },
                Filter::Cond { column: "name".into(), negated: true, op: "like".into(), value: "A*".into() },
            ]
        );
    }

    #[test]
    fn filter_without_operator_is_pgrst100() {
        let e = parse(&pairs(&[("age", "18")]), &[]).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "PGRST100"));
    }

    #[test]
    fn logic_trees_with_quotes() {
        let q = parse(&pairs(&[("or", r#"(name.eq."a,b",and(age.gt.1,age.lt.5),not.or(x.is.null))"#)]), &[]).unwrap();
        let Filter::Group { or, items, .. } = &q.filters[0] else { panic!() };
        assert!(*or);
        assert_eq!(items.len(), 3);
        assert!(matches!(&items[0], Filter::Cond { value, .. } if value == "a,b"));
        assert!(matches!(&items[1], Filter::Group { or: false, .. }));
        assert!(matches!(&items[2], Filter::Group { or: true, negated: true, .. }));
    }

    #[test]
    fn in_lists() {
        assert_eq!(split_in_list(r#"(1,"a,b",c)"#).unwrap(), vec!["1", "a,b", "c"]);
        assert!(split_in_list("()").unwrap().is_empty());
    }

    #[test]
    fn select_aliases_casts_and_json() {
        let q = parse(&pairs(&[("select", "id,full:name,age::text,data->a->>b")]), &[]).unwrap();
        let s = q.select.unwrap();
        assert_eq!(s[1].alias.as_deref(), Some("full"));
        assert_eq!(s[2].cast.as_deref(), Some("text"));
        assert_eq!(s[3].column, "data");
        assert_eq!(s[3].json_path, vec![("->".into(), "a".into()), ("->>".into(), "b".into())]);
    }

    #[test]
    fn order_terms() {
        let q = parse(&pairs(&[("order", "a.desc.nullslast,b")]), &[]).unwrap();
        assert_eq!(q.order[0], OrderTerm { column: "a".into(), desc: true, nulls: Some(false) });
        assert_eq!(q.order[1], OrderTerm { column: "b".into(), desc: false, nulls: None });
        assert!(parse(&pairs(&[("order", "a.sideways")]), &[]).is_err());
    }

    #[test]
    fn rpc_args_are_not_filters() {
        let q = parse(&pairs(&[("n", "5"), ("id", "eq.1")]), &["n".to_string()]).unwrap();
        assert_eq!(q.params, vec![("n".to_string(), "5".to_string())]);
        assert_eq!(q.filters.len(), 1);
    }
}
