//! Query AST -> SQL text. Every identifier and value is quoted here and
//! nowhere else; the cluster must run with standard_conforming_strings=on.

use super::error::PgrstError;
use super::query::{split_in_list, Filter, OrderTerm, SelectItem};

pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// A column reference, with a JSON path applied when given.
fn column_expr(column: &str, path: &[(String, String)]) -> String {
    let mut out = ident(column);
    for (arrow, key) in path {
        let key = match key.parse::<i64>() {
            Ok(n) => n.to_string(),
            Err(_) => literal(key),
        };
        out = format!("{out}{arrow}{key}");
    }
    out
}

/// The select list; `*` expands to `columns` so extra internal columns of
/// a source never leak into the body.
pub fn select_list(select: &Option<Vec<SelectItem>>, columns: &[String]) -> String {
    let star = || columns.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
    let Some(items) = select else { return star() };
    items
        .iter()
        .map(|item| {
            if item.column == "*" {
                return star();
            }
            let mut expr = column_expr(&item.column, &item.json_path);
            if let Some(cast) = &item.cast {
                // Casts are type names: letters, digits, spaces, brackets only.
                let safe: String = cast.chars().filter(|c| c.is_ascii_alphanumeric() || " _[]".contains(*c)).collect();
                expr = format!("({expr})::{safe}");
            }
            let name = item.alias.clone().or_else(|| item.json_path.last().map(|(_, k)| k.clone()));
            match name {
                Some(n) => format!("{expr} AS {}", ident(&n)),
                None if item.cast.is_some() => format!("{expr} AS {}", ident(&item.column)),
                None => expr,
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn where_clause(filters: &[Filter]) -> Result<String, PgrstError> {
    if filters.is_empty() {
        return Ok(String::new());
    }
    let parts = filters.iter().map(filter_sql).collect::<Result<Vec<_>, _>>()?;
    Ok(format!(" WHERE {}", parts.join(" AND ")))
}

fn filter_sql(f: &Filter) -> Result<String, PgrstError> {
    match f {
        Filter::Group { negated, or, items } => {
            let parts = items.iter().map(filter_sql).collect::<Result<Vec<_>, _>>()?;
            let joined = format!("({})", parts.join(if *or { " OR " } else { " AND " }));
            Ok(if *negated { format!("NOT {joined}") } else { joined })
        }
        Filter::Cond { column, negated, op, value } => {
            let (col, path) = super::query::parse_json_path(column);
            let c = column_expr(&col, &path);
            let sql = match op.as_str() {
                "eq" => format!("{c} = {}", literal(value)),
                "neq" => format!("{c} <> {}", literal(value)),
                "gt" => format!("{c} > {}", literal(value)),
                "gte" => format!("{c} >= {}", literal(value)),
                "lt" => format!("{c} < {}", literal(value)),
                "lte" => format!("{c} <= {}", literal(value)),
                "like" => format!("{c} LIKE {}", literal(&value.replace('*', "%"))),
                "ilike" => format!("{c} ILIKE {}", literal(&value.replace('*', "%"))),
                "match" => format!("{c} ~ {}", literal(value)),
                "imatch" => format!("{c} ~* {}", literal(value)),
                "isdistinct" => format!("{c} IS DISTINCT FROM {}", literal(value)),
                "is" => match value.to_ascii_lowercase().as_str() {
                    "null" => format!("{c} IS NULL"),
                    "not_null" => format!("{c} IS NOT NULL"),
                    "true" => format!("{c} IS TRUE"),
                    "false" => format!("{c} IS FALSE"),
                    "unknown" => format!("{c} IS UNKNOWN"),
                    _ => {
                        return Err(PgrstError::new(
                            400,
                            "PGRST100",
                            format!("\"failed to parse filter (is.{value})\""),
                        )
                        .with_details("unexpected value, expecting null, not_null, true, false or unknown"))
                    }
                },
                "in" => {
                    let items = split_in_list(value)?;
                    if items.is_empty() {
                        // PostgREST: an empty list matches nothing.
                        "false".to_string()
                    } else {
                        format!("{c} IN ({})", items.iter().map(|i| literal(i)).collect::<Vec<_>>().join(", "))
                    }
                }
                "cs" => format!("{c} @> {}", literal(value)),
                "cd" => format!("{c} <@ {}", literal(value)),
                "ov" => format!("{c} && {}", literal(value)),
                "sl" => format!("{c} << {}", literal(value)),
                "sr" => format!("{c} >> {}", literal(value)),
                "nxr" => format!("{c} &< {}", literal(value)),
                "nxl" => format!("{c} &> {}", literal(value)),
                "adj" => format!("{c} -|- {}", literal(value)),
                other => {
                    return Err(PgrstError::new(400, "PGRST100", format!("\"unknown operator {other}\"")));
                }
            };
            Ok(if *negated { format!("NOT ({sql})") } else { sql })
        }
    }
}

pub fn order_clause(order: &[OrderTerm]) -> String {
    if order.is_empty() {
        return String::new();
    }
    let terms: Vec<String> = order
        .iter()
        .map(|t| {
            let (col, path) = super::query::parse_json_path(&t.column);
            let mut s = column_expr(&col, &path);
            s.push_str(if t.desc { " DESC" } else { " ASC" });
            match t.nulls {
                Some(true) => s.push_str(" NULLS FIRST"),
                Some(false) => s.push_str(" NULLS LAST"),
                None => {}
            }
            s
        })
        .collect();
    format!(" ORDER BY {}", terms.join(", "))
}

pub fn limit_clause(limit: Option<i64>, offset: Option<i64>) -> String {
    let mut s = String::new();
    if let Some(l) = limit {
        s.push_str(&format!(" LIMIT {l}"));
    }
    if let Some(o) = offset.filter(|o| *o > 0) {
        s.push_str(&format!(" OFFSET {o}"));
    }
    s
}

/// The outer statement every read and write ends with: one row of
/// (total, page count, body, response.headers, response.status).
pub fn wrap(source_cte: &str, inner_select: &str, total: &str, body: &str) -> String {
    format!(
        "WITH pgrst_source AS ({source_cte}) SELECT {total}, pg_catalog.count(_postgrest_t)::text, {body}, \
         nullif(current_setting('response.headers', true), ''), nullif(current_setting('response.status', true), '') \
         FROM ({inner_select}) _postgrest_t"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_defeats_injection() {
        assert_eq!(literal("a'; DROP TABLE x; --"), "'a''; DROP TABLE x; --'");
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
    }

    #[test]
    fn in_filter_lists_literals() {
        let f = Filter::Cond { column: "id".into(), negated: false, op: "in".into(), value: "(1,2,\"a'b\")".into() };
        assert_eq!(filter_sql(&f).unwrap(), "\"id\" IN ('1', '2', 'a''b')");
        let f = Filter::Cond { column: "id".into(), negated: true, op: "in".into(), value: "()".into() };
        assert_eq!(filter_sql(&f).unwrap(), "NOT (false)");
    }
}
