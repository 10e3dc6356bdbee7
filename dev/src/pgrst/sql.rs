//! Plans -> SQL text, as v13's `QueryBuilder.hs`, `SqlFragment.hs` and
//! `Statements.hs` write it: one statement per request, embeds as lateral
//! subqueries aggregated with `json_agg`/`row_to_json`.
//!
//! Every identifier goes through [`ident`] and every value through
//! [`literal`], here and nowhere else. Casts and text search languages are
//! identifiers the parser allowed (letters, digits, `_`, `$`, spaces).

use super::plan::{From, JoinCondition, Logic, Order, Qualifier, ReadPlan, RelSelect, SelectField, Spread, SOURCE};
use super::query::{Direction, FtsOp, IsVal, JsonOperand, Nulls, Operation, QuantOp, Quantifier, Range, SimpleOp};
use super::schema::{Column, Function, Qi};

/// PostgreSQL cannot hold NUL in text; PostgREST cuts names and values there.
fn until_nul(s: &str) -> &str {
    s.split('\0').next().unwrap_or("")
}

pub fn ident(s: &str) -> String {
    format!("\"{}\"", until_nul(s).replace('"', "\"\""))
}

/// A string constant that reads the same whatever
/// `standard_conforming_strings` says: with a backslash it is an `E''`
/// string with the backslashes doubled.
pub fn literal(s: &str) -> String {
    let s = until_nul(s);
    let quoted = s.replace('\'', "''");
    if quoted.contains('\\') {
        format!("E'{}'", quoted.replace('\\', "\\\\"))
    } else {
        format!("'{quoted}'")
    }
}

pub fn qualified(qi: &Qi) -> String {
    format!("{}.{}", ident(&qi.0), ident(&qi.1))
}

fn qualifier(q: &Qualifier) -> String {
    match q {
        Qualifier::Alias(a) => ident(a),
        Qualifier::Table(qi) => qualified(qi),
    }
}

/// How a node's columns are qualified: its alias, else its table.
fn node_qualifier(node: &ReadPlan) -> String {
    match (&node.alias, &node.from) {
        (Some(a), _) => ident(a),
        (None, From::Table(qi)) => qualified(qi),
        (None, From::Source) => ident(SOURCE),
    }
}

fn column(qual: &str, name: &str) -> String {
    if name == "*" {
        format!("{qual}.*")
    } else {
        format!("{qual}.{}", ident(name))
    }
}

fn json_path(path: &[super::query::JsonStep]) -> String {
    path.iter()
        .map(|step| {
            let arrow = if step.text { "->>" } else { "->" };
            match &step.operand {
                JsonOperand::Key(k) => format!("{arrow}{}", literal(k)),
                JsonOperand::Index(i) => format!("{arrow}{}::int", literal(i)),
            }
        })
        .collect()
}

fn field(qual: &str, f: &super::plan::CField) -> String {
    let base = column(qual, &f.name);
    let with_path = if f.json_path.is_empty() {
        base
    } else if f.to_json {
        format!("to_jsonb({base}){}", json_path(&f.json_path))
    } else {
        format!("{base}{}", json_path(&f.json_path))
    };
    match &f.to_tsvector {
        Some(lang) => format!("to_tsvector({}{with_path})", fts_lang(lang)),
        None => with_path,
    }
}

fn fts_lang(lang: &Option<String>) -> String {
    lang.as_ref().map(|l| format!("{}, ", literal(l))).unwrap_or_default()
}

fn cast(expr: String, cast: &Option<String>) -> String {
    match cast {
        Some(c) => format!("CAST( {expr} AS {c} )"),
        None => expr,
    }
}

fn select_item(qual: &str, s: &SelectField) -> String {
    let mut expr = cast(field(qual, &s.field), &s.cast);
    if let Some(agg) = s.aggregate {
        expr = cast(format!("{}({expr})", agg.sql()), &s.aggregate_cast);
    }
    match &s.alias {
        Some(a) => format!("{expr} AS {}", ident(a)),
        None => expr,
    }
}

/// `{"a","b\"c"}`: a text array literal PostgreSQL can cast to any array.
pub fn array_literal(values: &[String]) -> String {
    let items: Vec<String> =
        values.iter().map(|v| format!("\"{}\"", until_nul(v).replace('\\', "\\\\").replace('"', "\\\""))).collect();
    literal(&format!("{{{}}}", items.join(",")))
}

fn filter(qual: &str, l: &Logic) -> String {
    match l {
        Logic::Expr { negated, or, children } => {
            let parts: Vec<String> = children.iter().map(|c| filter(qual, c)).collect();
            let joined = format!("({})", parts.join(if *or { " OR " } else { " AND " }));
            if *negated {
                format!("NOT {joined}")
            } else {
                format!(" {joined}")
            }
        }
        Logic::NullEmbed { negated, agg_alias } => {
            format!("{} IS {}DISTINCT FROM NULL", ident(agg_alias), if *negated { "" } else { "NOT " })
        }
        Logic::Filter { field: f, negated, operation } => {
            let c = field(qual, f);
            let not = if *negated { "NOT " } else { "" };
            let star = |v: &str| v.replace('*', "%");
            let quantified = |q: &Option<Quantifier>, v: String| match q {
                Some(Quantifier::Any) => format!("ANY({v})"),
                Some(Quantifier::All) => format!("ALL({v})"),
                None => v,
            };
            let rest = match operation {
                Operation::Simple(op, v) => {
                    let op = match op {
                        SimpleOp::NotEqual => "<>",
                        SimpleOp::Contains => "@>",
                        SimpleOp::Contained => "<@",
                        SimpleOp::Overlap => "&&",
                        SimpleOp::StrictlyLeft => "<<",
                        SimpleOp::StrictlyRight => ">>",
                        SimpleOp::NotExtendsRight => "&<",
                        SimpleOp::NotExtendsLeft => "&>",
                        SimpleOp::Adjacent => "-|-",
                    };
                    format!("{op} {}", literal(v))
                }
                Operation::Quant(op, q, v) => {
                    let (sql_op, value) = match op {
                        QuantOp::Equal => ("=", literal(v)),
                        QuantOp::GreaterThanEqual => (">=", literal(v)),
                        QuantOp::GreaterThan => (">", literal(v)),
                        QuantOp::LessThanEqual => ("<=", literal(v)),
                        QuantOp::LessThan => ("<", literal(v)),
                        QuantOp::Like => ("like", literal(&star(v))),
                        QuantOp::ILike => ("ilike", literal(&star(v))),
                        QuantOp::Match => ("~", literal(v)),
                        QuantOp::IMatch => ("~*", literal(v)),
                    };
                    format!("{sql_op} {}", quantified(q, value))
                }
                Operation::In(values) if values.len() == 1 && values[0].is_empty() => "= ANY('{}')".to_string(),
                Operation::In(values) => format!("= ANY ({})", array_literal(values)),
                Operation::Is(v) => format!(
                    "IS {}",
                    match v {
                        IsVal::Null => "NULL",
                        IsVal::NotNull => "NOT NULL",
                        IsVal::True => "TRUE",
                        IsVal::False => "FALSE",
                        IsVal::Unknown => "UNKNOWN",
                    }
                ),
                Operation::IsDistinct(v) => format!("IS DISTINCT FROM {}", literal(v)),
                Operation::Fts(op, lang, v) => {
                    let f = match op {
                        FtsOp::Fts => "to_tsquery",
                        FtsOp::Plain => "plainto_tsquery",
                        FtsOp::Phrase => "phraseto_tsquery",
                        FtsOp::Websearch => "websearch_to_tsquery",
                    };
                    format!("@@ {f}({}{})", fts_lang(lang), literal(v))
                }
            };
            format!("{not}{c} {rest}")
        }
    }
}

fn join_condition(j: &JoinCondition) -> String {
    format!("{} = {}", column(&qualifier(&j.left.0), &j.left.1), column(&qualifier(&j.right.0), &j.right.1))
}

fn order_clause(qual: &str, order: &[Order]) -> String {
    if order.is_empty() {
        return String::new();
    }
    let terms: Vec<String> = order
        .iter()
        .map(|o| {
            let q = match &o.relation {
                Some(rel) => ident(rel),
                None => qual.to_string(),
            };
            let mut s = field(&q, &o.field);
            match o.direction {
                Some(Direction::Asc) => s.push_str(" ASC"),
                Some(Direction::Desc) => s.push_str(" DESC"),
                None => {}
            }
            match o.nulls {
                Some(Nulls::First) => s.push_str(" NULLS FIRST"),
                Some(Nulls::Last) => s.push_str(" NULLS LAST"),
                None => {}
            }
            s
        })
        .collect();
    format!(" ORDER BY {}", terms.join(", "))
}

fn limit_offset(r: &Range) -> String {
    if r.limit.is_none() && r.offset == 0 {
        return String::new();
    }
    let limit = r.limit.map_or("ALL".to_string(), |l| l.to_string());
    format!(" LIMIT {limit} OFFSET {}", r.offset)
}

fn from_clause(node: &ReadPlan) -> String {
    let mut s = match &node.from {
        From::Table(qi) => format!(" FROM {}", qualified(qi)),
        From::Source => format!(" FROM {}", ident(SOURCE)),
    };
    if let Some(a) = &node.alias {
        s.push_str(&format!(" AS {}", ident(a)));
    }
    if let Some(super::schema::Cardinality::ManyToMany(j)) = node.relationship.as_ref().map(|r| &r.cardinality) {
        s.push_str(&format!(", {}", qualified(&j.table)));
    }
    s
}

/// `GROUP BY` the plain fields when any field is aggregated.
fn group_by(qual: &str, node: &ReadPlan) -> String {
    if !node.select.iter().any(|s| s.aggregate.is_some()) {
        return String::new();
    }
    let mut terms: Vec<String> = node
        .select
        .iter()
        .filter(|s| s.aggregate.is_none())
        .map(|s| match &s.alias {
            Some(a) => ident(a),
            None => field(qual, &s.field),
        })
        .collect();
    for r in &node.rel_selects {
        match r {
            RelSelect::Object { name, .. } | RelSelect::Array { name, .. } => terms.push(ident(name)),
            RelSelect::Spread { agg_alias, columns } => terms.extend(
                columns.iter().map(|c| format!("{}.{}", ident(agg_alias), ident(c.alias.as_ref().unwrap_or(&c.name)))),
            ),
            RelSelect::Empty => {}
        }
    }
    if terms.is_empty() {
        String::new()
    } else {
        format!(" GROUP BY {}", terms.join(", "))
    }
}

/// Embeds aggregate to `json`, where PostgREST casts every level to
/// `jsonb`: the same values without parsing each level's JSON again (a
/// 1 x 20 x 50 project tree builds 3-4x faster). `jsonb` stays where a
/// `GROUP BY` needs equality on the embedded values (aggregates).
fn embed_cast(parent: &ReadPlan) -> &'static str {
    if parent.select.iter().any(|s| s.aggregate.is_some()) {
        "::jsonb"
    } else {
        ""
    }
}

/// One resource and its embeds as one `SELECT`.
pub fn read_query(node: &ReadPlan) -> String {
    let qual = node_qualifier(node);
    let cast = embed_cast(node);
    let mut selects: Vec<String> = if node.select.is_empty() && node.children.is_empty() {
        vec![format!("{qual}.*")]
    } else {
        node.select.iter().map(|s| select_item(&qual, s)).collect()
    };
    if let Some(Spread::ToMany { extra, .. }) = &node.spread {
        for (rel, s) in extra {
            let q = rel.as_ref().map(|r| ident(r)).unwrap_or_else(|| qual.clone());
            selects.push(select_item(&q, s));
        }
    }
    for r in &node.rel_selects {
        match r {
            RelSelect::Object { name, agg_alias } => {
                selects.push(format!("row_to_json({}.*){cast} AS {}", ident(agg_alias), ident(name)))
            }
            RelSelect::Array { name, agg_alias } => {
                selects.push(format!("COALESCE( {0}.{0}, '[]') AS {1}", ident(agg_alias), ident(name)))
            }
            RelSelect::Spread { agg_alias, columns } => {
                for c in columns {
                    let mut s = column(&ident(agg_alias), &c.name);
                    if let Some(a) = &c.alias {
                        s.push_str(&format!(" AS {}", ident(a)));
                    }
                    selects.push(s);
                }
            }
            RelSelect::Empty => {}
        }
    }
    let joins: String = node.children.iter().zip(&node.rel_selects).map(|(c, r)| join(c, r, cast)).collect();
    let mut conditions: Vec<String> = node.where_.iter().map(|l| filter(&qual, l)).collect();
    conditions.extend(node.join_conditions.iter().map(join_condition));
    let where_ = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
    format!(
        "SELECT {}{}{joins}{where_}{}{}{}",
        selects.join(", "),
        from_clause(node),
        group_by(&qual, node),
        order_clause(&qual, &node.order),
        limit_offset(&node.range)
    )
}

fn join(child: &ReadPlan, rel_select: &RelSelect, cast: &str) -> String {
    let inner = child.join_type == Some(super::query::JoinType::Inner);
    let agg = ident(&child.agg_alias);
    let lateral = |sub: String, cond: &str| {
        format!(" {} JOIN LATERAL ( {sub} ) AS {agg} ON {cond}", if inner { "INNER" } else { "LEFT" })
    };
    let sub = read_query(child);
    let array_agg = |extra: String| format!("SELECT json_agg({agg}){cast} AS {agg}{extra} FROM ({sub} ) AS {agg}");
    let cond = if inner { format!("{agg} IS NOT NULL") } else { "TRUE".to_string() };
    match (rel_select, &child.spread) {
        (RelSelect::Object { .. }, _) => lateral(sub.clone(), "TRUE"),
        (RelSelect::Spread { columns, .. }, Some(Spread::ToMany { order, .. })) => {
            let order_sql = order_clause(&agg, order);
            let extra: String = columns
                .iter()
                .map(|c| {
                    format!(
                        ", COALESCE(json_agg({agg}.{}{order_sql}),'[]'){cast} AS {}",
                        ident(&c.name),
                        ident(c.alias.as_ref().unwrap_or(&c.name))
                    )
                })
                .collect();
            lateral(array_agg(extra), &cond)
        }
        (RelSelect::Spread { .. }, _) => lateral(sub.clone(), "TRUE"),
        // An empty embed of a to-one resource joins like an object.
        (RelSelect::Empty, _) if child.relationship.as_ref().is_some_and(|r| r.is_to_one()) => {
            lateral(sub.clone(), "TRUE")
        }
        (RelSelect::Array { .. } | RelSelect::Empty, _) => lateral(array_agg(String::new()), &cond),
    }
}

/// The rows a count counts: the root's filters, and `EXISTS` for inner
/// joins and null filters on embeds (no limit, no embeds selected).
pub fn count_query(node: &ReadPlan) -> String {
    let qual = node_qualifier(node);
    let mut conditions: Vec<String> = node.where_.iter().map(|l| count_filter(&qual, node, l)).collect();
    conditions.extend(node.join_conditions.iter().map(join_condition));
    conditions.extend(
        node.children
            .iter()
            .filter(|c| c.join_type == Some(super::query::JoinType::Inner))
            .map(|c| format!("EXISTS ({} )", count_query(c))),
    );
    let where_ = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
    format!("SELECT 1{}{where_}", from_clause(node))
}

fn count_filter(qual: &str, node: &ReadPlan, l: &Logic) -> String {
    match l {
        Logic::Expr { negated, or, children } => {
            let parts: Vec<String> = children.iter().map(|c| count_filter(qual, node, c)).collect();
            format!("{} ({})", if *negated { "NOT" } else { "" }, parts.join(if *or { " OR " } else { " AND " }))
        }
        Logic::NullEmbed { negated, agg_alias } => match node.children.iter().find(|c| c.agg_alias == *agg_alias) {
            Some(c) => format!("{}EXISTS ({})", if *negated { "" } else { "NOT " }, count_query(c)),
            None => "true".into(),
        },
        other => filter(qual, other),
    }
}

// ---- writes --------------------------------------------------------------------

/// A column of the body as its JSON is read: name and the type it is read as.
pub struct BodyColumn<'a> {
    pub name: &'a str,
    pub pg_type: &'a str,
    /// Its default expression, when `missing=default` applies.
    pub default: Option<&'a str>,
}

impl<'a> BodyColumn<'a> {
    pub fn of(c: &'a Column, apply_default: bool) -> BodyColumn<'a> {
        BodyColumn {
            name: &c.name,
            pg_type: &c.data_type,
            default: if apply_default { c.default.as_deref() } else { None },
        }
    }
}

/// v13's `fromJsonBodyF`: the body as rows (`pgrst_body`), typed by the
/// columns; with defaults merged under the given keys (`missing=default`).
pub fn from_json_body(
    body: &str,
    columns: &[BodyColumn],
    is_object: bool,
    with_select: bool,
    limit_one: bool,
) -> String {
    let with_defaults = columns.iter().any(|c| c.default.is_some());
    let named: Vec<String> = columns.iter().map(|c| format!("\"pgrst_body\".{}", ident(c.name))).collect();
    let parsed: Vec<String> = columns.iter().map(|c| ident(c.name)).collect();
    let typed: Vec<String> = columns.iter().map(|c| format!("{} {}", ident(c.name), c.pg_type)).collect();
    let json_type = if with_defaults { "jsonb" } else { "json" };
    let mut s = String::new();
    if with_select {
        s.push_str(&format!("SELECT {} ", named.join(", ")));
    }
    s.push_str(&format!("FROM (SELECT {}::{json_type} AS json_data) pgrst_payload, ", literal(body)));
    let source = if with_defaults {
        let defaults: Vec<String> =
            columns.iter().filter_map(|c| c.default.map(|d| format!("{}, {d}", literal(c.name)))).collect();
        let defs = format!("jsonb_build_object({})", defaults.join(","));
        if is_object {
            s.push_str(&format!("LATERAL (SELECT {defs} || pgrst_payload.json_data AS val) pgrst_json_defs, "));
        } else {
            s.push_str(&format!(
                "LATERAL (SELECT jsonb_agg({defs} || elem) AS val from jsonb_array_elements(pgrst_payload.json_data) elem) pgrst_json_defs, "
            ));
        }
        "pgrst_json_defs.val"
    } else {
        "pgrst_payload.json_data"
    };
    let (elements, to_record, to_recordset) = if with_defaults {
        ("jsonb_array_elements", "jsonb_to_record", "jsonb_to_recordset")
    } else {
        ("json_array_elements", "json_to_record", "json_to_recordset")
    };
    let rows = if columns.is_empty() {
        if is_object {
            "(values(1)) _ ".to_string()
        } else {
            format!("{elements}({source}) _ ")
        }
    } else {
        format!(
            "{}({source}) AS _({}) {}",
            if is_object { to_record } else { to_recordset },
            typed.join(", "),
            if limit_one { "LIMIT 1" } else { "" }
        )
    };
    s.push_str(&format!("LATERAL (SELECT {} FROM {rows}) pgrst_body ", parsed.join(", ")));
    s
}

/// `RETURNING` what the response needs: `1` (to count) when nothing.
pub fn returning(table: &Qi, columns: &[String]) -> String {
    if columns.is_empty() {
        return "RETURNING 1".into();
    }
    let cols: Vec<String> = columns.iter().map(|c| column(&qualified(table), c)).collect();
    format!("RETURNING {}", cols.join(", "))
}

/// Counts inserted rows of an upsert in a setting, as PostgREST does:
/// up once per candidate row, down once per conflict that updates.
fn count_inserted(add: bool) -> String {
    let (sign, stop) = if add { ("+", "0") } else { ("-", "-1") };
    format!(
        "set_config('pgrst.inserted', (coalesce(nullif(current_setting('pgrst.inserted', true), '')::int, 0) {sign} 1)::text, true) <> '{stop}'"
    )
}

pub enum OnConflict<'a> {
    None,
    Ignore(&'a [String]),
    Merge(&'a [String]),
}

pub fn insert_query(
    table: &Qi,
    columns: &[BodyColumn],
    body: &str,
    is_object: bool,
    on_conflict: OnConflict,
    returning_columns: &[String],
) -> String {
    let cols: Vec<String> = columns.iter().map(|c| ident(c.name)).collect();
    let mut s = format!(
        "INSERT INTO {}{}",
        qualified(table),
        if cols.is_empty() { " ".to_string() } else { format!("({}) ", cols.join(", ")) }
    );
    s.push_str(&from_json_body(body, columns, is_object, true, false));
    let merge = matches!(on_conflict, OnConflict::Merge(_));
    if merge {
        s.push_str(&format!("WHERE {}", count_inserted(true)));
    }
    match on_conflict {
        OnConflict::None => {}
        OnConflict::Ignore(keys) | OnConflict::Merge(keys) if keys.is_empty() => {}
        OnConflict::Ignore(keys) => {
            let k: Vec<String> = keys.iter().map(|c| ident(c)).collect();
            s.push_str(&format!(" ON CONFLICT({}) DO NOTHING", k.join(", ")));
        }
        OnConflict::Merge(keys) => {
            let k: Vec<String> = keys.iter().map(|c| ident(c)).collect();
            if cols.is_empty() {
                s.push_str(&format!(" ON CONFLICT({}) DO NOTHING", k.join(", ")));
            } else {
                let sets: Vec<String> = cols.iter().map(|c| format!("{c} = EXCLUDED.{c}")).collect();
                s.push_str(&format!(
                    " ON CONFLICT({}) DO UPDATE SET {}WHERE {}",
                    k.join(", "),
                    sets.join(", "),
                    count_inserted(false)
                ));
            }
        }
    }
    s.push(' ');
    s.push_str(&returning(table, returning_columns));
    s
}

pub fn update_query(
    table: &Qi,
    columns: &[BodyColumn],
    body: &str,
    is_object: bool,
    filters: &[Logic],
    returning_columns: &[String],
) -> String {
    if columns.is_empty() {
        // Nothing to set: no row changes, and `select` still resolves.
        let cols = if returning_columns.is_empty() {
            "NULL".to_string()
        } else {
            returning_columns.iter().map(|c| column(&ident(&table.1), c)).collect::<Vec<_>>().join(", ")
        };
        return format!("SELECT {cols} FROM {} WHERE false", qualified(table));
    }
    let sets: Vec<String> =
        columns.iter().map(|c| format!("{} = \"pgrst_body\".{}", ident(c.name), ident(c.name))).collect();
    format!(
        "UPDATE {} SET {} {}{} {}",
        qualified(table),
        sets.join(", "),
        from_json_body(body, columns, is_object, false, false),
        where_clause(&qualified(table), filters),
        returning(table, returning_columns)
    )
}

pub fn delete_query(table: &Qi, filters: &[Logic], returning_columns: &[String]) -> String {
    format!(
        "DELETE FROM {} {} {}",
        qualified(table),
        where_clause(&qualified(table), filters),
        returning(table, returning_columns)
    )
}

fn where_clause(qual: &str, filters: &[Logic]) -> String {
    if filters.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = filters.iter().map(|l| filter(qual, l)).collect();
    format!(" WHERE {}", parts.join(" AND "))
}

// ---- calls ---------------------------------------------------------------------

/// How the arguments reach the function.
pub enum CallArgs<'a> {
    /// The JSON body, read by the named parameters' types.
    Json { body: &'a str, is_object: bool },
    /// Text values (GET and HEAD); a variadic parameter takes every value.
    Direct(&'a [(String, Vec<String>)]),
    /// The whole body as the one unnamed parameter.
    Single(&'a str),
}

/// Types that would cut a value to their length read it whole (v13).
fn unbounded(pg_type: &str) -> &str {
    match pg_type {
        "bit" => "bit varying",
        "bit[]" => "bit varying[]",
        "character" => "character varying",
        "character[]" => "character varying[]",
        other => other,
    }
}

/// The `pgrst_source` of a call: `named` are the parameters given.
pub fn call_query(f: &Function, named: &[&super::schema::Arg], args: CallArgs) -> String {
    let qi = (f.schema.clone(), f.name.clone());
    let scalar = f.returns_scalar() || f.returns_set_of_scalar();
    let call_it = |arguments: String| {
        if scalar {
            format!("(SELECT {}({arguments}) pgrst_scalar) pgrst_call", qualified(&qi))
        } else {
            format!("{}({arguments}) pgrst_call", qualified(&qi))
        }
    };
    let variadic = |a: &super::schema::Arg| if a.variadic { "VARIADIC " } else { "" };
    let from = match args {
        CallArgs::Single(body) => {
            let t = f.args.first().map(|a| a.pg_type.as_str()).unwrap_or("json");
            format!("FROM {}", call_it(format!("{}::{}", literal(body), unbounded(t))))
        }
        _ if named.is_empty() => format!("FROM {}", call_it(String::new())),
        CallArgs::Json { body, is_object } => {
            let columns: Vec<BodyColumn> = named
                .iter()
                .map(|a| BodyColumn { name: &a.name, pg_type: unbounded(&a.pg_type), default: None })
                .collect();
            let params: Vec<String> = named
                .iter()
                .map(|a| format!("{}{} := pgrst_body.{}", variadic(a), ident(&a.name), ident(&a.name)))
                .collect();
            format!(
                "{}, LATERAL {}",
                from_json_body(body, &columns, is_object, false, true),
                call_it(params.join(", "))
            )
        }
        CallArgs::Direct(values) => {
            let params: Vec<String> = named
                .iter()
                .map(|a| {
                    let given = values.iter().find(|(n, _)| *n == a.name).map(|(_, v)| v.as_slice()).unwrap_or(&[]);
                    let value = if a.variadic {
                        array_literal(given)
                    } else {
                        given.last().map(|v| literal(v)).unwrap_or_else(|| "NULL".into())
                    };
                    format!("{}{} := {value}::{}", variadic(a), ident(&a.name), unbounded(&a.pg_type))
                })
                .collect();
            format!("FROM {}", call_it(params.join(", ")))
        }
    };
    let select = if scalar { "pgrst_call.pgrst_scalar".to_string() } else { "\"pgrst_call\".*".to_string() };
    format!("SELECT {select} {from}")
}

// ---- statements ----------------------------------------------------------------

/// How the body is aggregated (v13's media handlers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Handler {
    /// A JSON array (`strip`: `json_strip_nulls`).
    Array {
        strip: bool,
    },
    /// One JSON object (`vnd.pgrst.object`).
    Single {
        strip: bool,
    },
    Csv,
    /// A GeoJSON FeatureCollection (needs PostGIS's `ST_AsGeoJSON`).
    GeoJson,
    /// No body: minimal writes, HEAD.
    None,
}

/// What a call's result looks like to the handlers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Returns {
    pub scalar: bool,
    pub set_of_scalar: bool,
    pub single_composite: bool,
}

fn strip(on: bool, s: &str) -> String {
    if on {
        format!("json_strip_nulls({s})")
    } else {
        s.to_string()
    }
}

pub fn body_expr(handler: Handler, returns: Returns) -> String {
    match handler {
        Handler::None => "''::text".into(),
        Handler::GeoJson => "json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(ST_AsGeoJSON(_postgrest_t)::json), '[]'))::text".into(),
        Handler::Csv => "(SELECT coalesce(string_agg(a.k, ','), '') FROM (SELECT json_object_keys(r)::text as k FROM ( SELECT row_to_json(hh) as r from pgrst_source as hh limit 1) s) a) || '\n' || coalesce(string_agg(substring(_postgrest_t::text, 2, length(_postgrest_t::text) - 2), '\n'), '')".into(),
        Handler::Single { strip: s } => {
            let t = if returns.scalar { "_postgrest_t.pgrst_scalar" } else { "_postgrest_t" };
            format!("coalesce({}, 'null')::text", strip(s, &format!("json_agg({t})->0")))
        }
        Handler::Array { strip: s } => {
            if returns.single_composite {
                format!("coalesce({}, 'null')::text", strip(s, "json_agg(_postgrest_t)->0"))
            } else if returns.scalar {
                format!("coalesce({}, 'null')::text", strip(s, "json_agg(_postgrest_t.pgrst_scalar)->0"))
            } else if returns.set_of_scalar {
                format!("coalesce({}, '[]')::text", strip(s, "json_agg(_postgrest_t.pgrst_scalar)"))
            } else {
                format!("coalesce({}, '[]')::text", strip(s, "json_agg(_postgrest_t)"))
            }
        }
    }
}

const TAIL: &str =
    "nullif(current_setting('response.headers', true), ''), nullif(current_setting('response.status', true), '')";

/// Every statement answers one row: total, page count, body,
/// response.headers, response.status, inserted, location.
pub fn read_statement(read: &str, count: Option<&str>, body: &str) -> String {
    let (count_cte, total) = match count {
        Some(c) => (format!(", pgrst_source_count AS ({c})"), "(SELECT pg_catalog.count(*) FROM pgrst_source_count)"),
        None => (String::new(), "null::bigint"),
    };
    format!(
        "WITH pgrst_source AS ( {read} ){count_cte} SELECT {total}, pg_catalog.count(_postgrest_t), {body}, {TAIL}, NULL::text, NULL::text FROM ( SELECT * FROM pgrst_source ) _postgrest_t"
    )
}

pub fn write_statement(
    mutation: &str,
    select: Option<&str>,
    body: &str,
    upsert: bool,
    location_pk: Option<&[String]>,
) -> String {
    let inserted = if upsert { "nullif(current_setting('pgrst.inserted', true),'')::int" } else { "NULL::int" };
    let location = match location_pk {
        Some(pk) if !pk.is_empty() => {
            let keys: Vec<String> = pk.iter().map(|k| literal(k)).collect();
            format!(
                "CASE WHEN pg_catalog.count(_postgrest_t) = 1 THEN (WITH data AS (SELECT row_to_json(_) AS row FROM pgrst_source AS _ LIMIT 1) SELECT json_agg(json_build_array(json_data.key, coalesce('eq.' || json_data.value, 'is.null')))::text FROM data CROSS JOIN json_each_text(data.row) AS json_data WHERE json_data.key IN ({})) END",
                keys.join(", ")
            )
        }
        _ => "NULL::text".into(),
    };
    let from = select.map_or_else(|| "SELECT * FROM pgrst_source".to_string(), str::to_string);
    format!(
        "WITH pgrst_source AS ({mutation}) SELECT NULL::bigint, pg_catalog.count(_postgrest_t), {body}, {TAIL}, {inserted}, {location} FROM ({from}) _postgrest_t"
    )
}

pub fn call_statement(call: &str, read: &str, count: Option<&str>, body: &str, single: bool) -> String {
    let (count_cte, total) = match count {
        Some(c) => (format!(", pgrst_source_count AS ({c}) "), "(SELECT pg_catalog.count(*) FROM pgrst_source_count)"),
        None => (" ".to_string(), "null::bigint"),
    };
    let page = if single { "1" } else { "pg_catalog.count(_postgrest_t)" };
    format!(
        "WITH pgrst_source AS ({call}){count_cte}SELECT {total}, {page}, {body}, {TAIL}, NULL::text, NULL::text FROM ({read}) _postgrest_t"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgrst::plan::CField;

    #[test]
    fn quoting_defeats_injection() {
        assert_eq!(literal("a'; DROP TABLE x; --"), "'a''; DROP TABLE x; --'");
        assert_eq!(literal("back\\'slash"), "E'back\\\\''slash'");
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(ident("cut\0here\"; DROP"), "\"cut\"");
        assert_eq!(literal("cut\0'; DROP"), "'cut'");
    }

    #[test]
    fn array_literals_escape_quotes_and_backslashes() {
        assert_eq!(array_literal(&["a".into(), "b\"c".into(), "d\\".into()]), "E'{\"a\",\"b\\\\\"c\",\"d\\\\\\\\\"}'");
    }

    fn cfield(name: &str) -> CField {
        CField { name: name.into(), json_path: Vec::new(), to_json: true, to_tsvector: None }
    }

    #[test]
    fn filters_render_as_postgrest_does() {
        let l = |op: Operation| Logic::Filter { field: cfield("id"), negated: false, operation: op };
        assert_eq!(
            filter("\"t\"", &l(Operation::In(vec!["1".into(), "a'b".into()]))),
            "\"t\".\"id\" = ANY ('{\"1\",\"a''b\"}')"
        );
        assert_eq!(filter("\"t\"", &l(Operation::In(vec!["".into()]))), "\"t\".\"id\" = ANY('{}')");
        assert_eq!(
            filter("\"t\"", &l(Operation::Quant(QuantOp::Like, Some(Quantifier::Any), "{a*,b*}".into()))),
            "\"t\".\"id\" like ANY('{a%,b%}')"
        );
        let fts = Logic::Filter {
            field: CField { to_tsvector: Some(Some("english".into())), ..cfield("body") },
            negated: true,
            operation: Operation::Fts(FtsOp::Plain, Some("english".into()), "fat cats".into()),
        };
        assert_eq!(
            filter("\"t\"", &fts),
            "NOT to_tsvector('english', \"t\".\"body\") @@ plainto_tsquery('english', 'fat cats')"
        );
    }
}
