//! The read plan (v13's `Plan.hs`): the parsed `select` becomes a tree of
//! nodes, one per resource, each with its filters, order and range; every
//! embed is matched to one foreign key relationship (PGRST200 when none,
//! PGRST201 when several) and gets the aliases and join conditions its
//! lateral subquery needs. Pure: the schema cache and the parsed query in,
//! the plan out; `sql.rs` renders it.

use super::error::PgrstError;
use super::query::{
    Aggregate, Direction, EmbedPath, Field, Filter, JoinType, JsonOperand, LogicTree, Nulls, Operation, OrderTerm,
    QueryParams, Range, SelectItem,
};
use super::schema::{Cardinality, Qi, Relationship, SchemaCache};

/// The name of the CTE a write or a call returns its rows in.
pub const SOURCE: &str = "pgrst_source";

/// A column reference as the planner resolved it against the schema cache.
#[derive(Debug, Clone, PartialEq)]
pub struct CField {
    pub name: String,
    pub json_path: Vec<super::query::JsonStep>,
    /// Arrows on a column that is not json/jsonb go through `to_jsonb`.
    pub to_json: bool,
    /// Full-text search on a column that is not a tsvector: its language.
    pub to_tsvector: Option<Option<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SelectField {
    pub field: CField,
    pub alias: Option<String>,
    pub cast: Option<String>,
    pub aggregate: Option<Aggregate>,
    pub aggregate_cast: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Logic {
    Filter {
        field: CField,
        negated: bool,
        operation: Operation,
    },
    /// `embed=is.null` / `embed=not.is.null` on an embedded resource.
    NullEmbed {
        negated: bool,
        agg_alias: String,
    },
    Expr {
        negated: bool,
        or: bool,
        children: Vec<Logic>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// The lateral alias of a to-one embed, for `order=rel(col)`.
    pub relation: Option<String>,
    pub field: CField,
    pub direction: Option<Direction>,
    pub nulls: Option<Nulls>,
}

/// Where a node reads from: a table, or the CTE of a write or a call
/// (aliased as the table so relationships and filters find it).
#[derive(Debug, Clone, PartialEq)]
pub enum From {
    Table(Qi),
    Source,
}

/// `(qualifier, column) = (qualifier, column)`; the qualifier is an alias
/// or a schema-qualified table.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinCondition {
    pub left: (Qualifier, String),
    pub right: (Qualifier, String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Qualifier {
    Alias(String),
    Table(Qi),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Spread {
    ToOne,
    /// Columns become correlated arrays; the node's order moves into the
    /// aggregate (`extra`: the order columns selected under `agg_alias_col_i`).
    ToMany {
        order: Vec<Order>,
        extra: Vec<(Option<String>, SelectField)>,
    },
}

/// What a parent selects from an embedded node.
#[derive(Debug, Clone, PartialEq)]
pub enum RelSelect {
    Object {
        name: String,
        agg_alias: String,
    },
    Array {
        name: String,
        agg_alias: String,
    },
    /// Nothing selected (`rel()`): the join only filters.
    Empty,
    Spread {
        agg_alias: String,
        columns: Vec<SpreadColumn>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpreadColumn {
    pub name: String,
    pub alias: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReadPlan {
    pub from: From,
    /// The alias of `from` in SQL (`pages_1`; the table's name for the CTE).
    pub alias: Option<String>,
    /// The table the node's columns belong to (for types and errors).
    pub table: Qi,
    pub select: Vec<SelectField>,
    pub where_: Vec<Logic>,
    pub order: Vec<Order>,
    pub range: Range,
    pub rel_name: String,
    pub rel_alias: Option<String>,
    pub rel_hint: Option<String>,
    pub join_type: Option<JoinType>,
    pub spread: Option<Spread>,
    pub relationship: Option<Relationship>,
    pub agg_alias: String,
    pub join_conditions: Vec<JoinCondition>,
    pub rel_selects: Vec<RelSelect>,
    pub depth: usize,
    pub children: Vec<ReadPlan>,
}

/// What the request does, for the parts of planning that differ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    Read,
    /// A write: the root reads the CTE; root filters belong to the write.
    Mutate,
    /// A call: the root reads the CTE.
    Call,
}

pub struct PlanOptions {
    pub max_rows: Option<i64>,
    pub aggregates_enabled: bool,
}

/// Plans `q` against `root` (a table, or for a call the name its result is
/// read as) in `schema`.
pub fn read_plan(
    cache: &SchemaCache,
    schema: &str,
    root: &str,
    q: &QueryParams,
    action: Action,
    options: &PlanOptions,
) -> Result<ReadPlan, PgrstError> {
    let table: Qi = (schema.to_string(), root.to_string());
    let mut plan = ReadPlan {
        from: if action == Action::Read { From::Table(table.clone()) } else { From::Source },
        alias: (action != Action::Read).then(|| root.to_string()),
        table: table.clone(),
        select: Vec::new(),
        where_: Vec::new(),
        order: Vec::new(),
        range: Range::default(),
        rel_name: root.to_string(),
        rel_alias: None,
        rel_hint: None,
        join_type: None,
        spread: None,
        relationship: None,
        agg_alias: String::new(),
        join_conditions: Vec::new(),
        rel_selects: Vec::new(),
        depth: 0,
        children: Vec::new(),
    };
    add_select(cache, &mut plan, &q.select, schema);
    add_relationships(cache, schema, &mut plan)?;
    let filters = q.filters.iter().map(|(path, f)| (path, Condition::Filter(f)));
    let trees = q.logic.iter().map(|(path, t)| (path, Condition::Tree(t)));
    for (path, condition) in filters.chain(trees) {
        if action == Action::Mutate && path.is_empty() {
            continue;
        }
        let node = find_node(&mut plan, path)?;
        let logic = match condition {
            Condition::Filter(f) => resolve_filter(cache, &node.table, f),
            Condition::Tree(t) => resolve_logic(cache, &node.table, t),
        };
        node.where_.push(logic);
    }
    for (path, terms) in &q.order {
        let node = find_node(&mut plan, path)?;
        let table = node.table.clone();
        node.order = terms.iter().map(|t| resolve_order(cache, &table, t)).collect();
    }
    if action != Action::Mutate {
        for (path, range) in &q.ranges {
            find_node(&mut plan, path)?.range = *range;
        }
    }
    add_json_aliases(&mut plan);
    add_related_orders(&mut plan)?;
    add_null_embed_filters(&mut plan);
    add_rel_selects(&mut plan);
    if !options.aggregates_enabled && uses_aggregates(&plan) {
        return Err(PgrstError::new(400, "PGRST123", "Use of aggregate functions is not allowed"));
    }
    add_to_many_spread_orders(&mut plan)?;
    if action != Action::Mutate {
        if let Some(max) = options.max_rows {
            restrict_ranges(&mut plan, max);
        }
    }
    Ok(plan)
}

/// A write's `WHERE`: the top level's filters and logic trees (the read
/// plan of a write leaves them out; they are the write's).
pub fn root_filters(cache: &SchemaCache, table: &Qi, q: &QueryParams) -> Vec<Logic> {
    let filters = q.filters.iter().filter(|(p, _)| p.is_empty()).map(|(_, f)| resolve_filter(cache, table, f));
    let trees = q.logic.iter().filter(|(p, _)| p.is_empty()).map(|(_, t)| resolve_logic(cache, table, t));
    filters.chain(trees).collect()
}

fn resolve_field(cache: &SchemaCache, table: &Qi, field: &Field, fts_lang: Option<Option<String>>) -> CField {
    let column = cache.tables.get(table).and_then(|t| t.column(&field.name));
    let data_type = column.map(|c| c.data_type.as_str()).unwrap_or("");
    CField {
        name: field.name.clone(),
        json_path: field.json_path.clone(),
        to_json: !matches!(data_type, "json" | "jsonb"),
        to_tsvector: if data_type == "tsvector" { None } else { fts_lang },
    }
}

/// A condition of the URL: one filter, or an `or`/`and` tree of them.
enum Condition<'a> {
    Filter(&'a Filter),
    Tree(&'a LogicTree),
}

fn resolve_filter(cache: &SchemaCache, table: &Qi, f: &Filter) -> Logic {
    let lang = match &f.operation {
        Operation::Fts(_, lang, _) => Some(lang.clone()),
        _ => None,
    };
    Logic::Filter {
        field: resolve_field(cache, table, &f.field, lang),
        negated: f.negated,
        operation: f.operation.clone(),
    }
}

fn resolve_logic(cache: &SchemaCache, table: &Qi, t: &LogicTree) -> Logic {
    match t {
        LogicTree::Filter(f) => resolve_filter(cache, table, f),
        LogicTree::Expr { negated, or, children } => Logic::Expr {
            negated: *negated,
            or: *or,
            children: children.iter().map(|c| resolve_logic(cache, table, c)).collect(),
        },
    }
}

fn resolve_order(cache: &SchemaCache, table: &Qi, t: &OrderTerm) -> Order {
    let field = match &t.relation {
        // A related column: its type is the embed's, unknown here.
        Some(_) => CField {
            name: t.field.name.clone(),
            json_path: t.field.json_path.clone(),
            to_json: true,
            to_tsvector: None,
        },
        None => resolve_field(cache, table, &t.field, None),
    };
    Order { relation: t.relation.clone(), field, direction: t.direction, nulls: t.nulls }
}

fn add_select(cache: &SchemaCache, node: &mut ReadPlan, items: &[SelectItem], schema: &str) {
    for item in items {
        match item {
            SelectItem::Field { field, alias, cast, aggregate, aggregate_cast } => {
                let field = resolve_field(cache, &node.table, field, None);
                node.select.push(SelectField {
                    field,
                    alias: alias.clone(),
                    cast: cast.clone(),
                    aggregate: *aggregate,
                    aggregate_cast: aggregate_cast.clone(),
                });
            }
            SelectItem::Relation { name, alias, hint, join, children } => {
                let mut child = child_node(schema, name, node.depth + 1);
                child.rel_alias = alias.clone();
                child.rel_hint = hint.clone();
                child.join_type = *join;
                add_select(cache, &mut child, children, schema);
                node.children.push(child);
            }
            SelectItem::Spread { name, hint, join, children } => {
                let mut child = child_node(schema, name, node.depth + 1);
                child.rel_hint = hint.clone();
                child.join_type = *join;
                child.spread = Some(Spread::ToOne);
                add_select(cache, &mut child, children, schema);
                node.children.push(child);
            }
        }
    }
}

fn child_node(schema: &str, name: &str, depth: usize) -> ReadPlan {
    let table = (schema.to_string(), name.to_string());
    ReadPlan {
        from: From::Table(table.clone()),
        alias: None,
        table,
        select: Vec::new(),
        where_: Vec::new(),
        order: Vec::new(),
        range: Range::default(),
        rel_name: name.to_string(),
        rel_alias: None,
        rel_hint: None,
        join_type: None,
        spread: None,
        relationship: None,
        agg_alias: String::new(),
        join_conditions: Vec::new(),
        rel_selects: Vec::new(),
        depth,
        children: Vec::new(),
    }
}

/// Matches every embed to its relationship, depth first.
fn add_relationships(cache: &SchemaCache, schema: &str, parent: &mut ReadPlan) -> Result<(), PgrstError> {
    // The CTE is aliased as the table: relationships are looked up by it.
    let origin = match (&parent.from, &parent.alias, parent.depth) {
        (From::Source, Some(a), _) => a.clone(),
        _ => parent.table.1.clone(),
    };
    let parent_alias = parent.alias.clone();
    let parent_qi = parent.table.clone();
    for child in &mut parent.children {
        let rel = find_relationship(cache, schema, &origin, &child.rel_name, child.rel_hint.as_deref())?;
        let depth = child.depth;
        let rel_table_name = rel.table.1.clone();
        child.agg_alias = format!("{rel_table_name}_{}_{depth}", child.rel_alias.as_deref().unwrap_or(&child.rel_name));
        child.table = rel.foreign_table.clone();
        child.from = From::Table(rel.foreign_table.clone());
        if child.spread.is_some() && !rel.is_to_one() {
            child.spread = Some(Spread::ToMany { order: Vec::new(), extra: Vec::new() });
            // Each column becomes its own array: `*` must name them.
            expand_star(cache, child, &rel.foreign_table);
        }
        let parent_q = match &parent_alias {
            Some(a) => Qualifier::Alias(a.clone()),
            None => Qualifier::Table(parent_qi.clone()),
        };
        match &rel.cardinality {
            // The junction joins implicitly (`FROM target, junction`): no alias.
            Cardinality::ManyToMany(j) => {
                child.alias = None;
                let target = Qualifier::Table(rel.foreign_table.clone());
                let junction = Qualifier::Table(j.table.clone());
                let mut conds: Vec<JoinCondition> = j
                    .target_columns
                    .iter()
                    .map(|(tc, jc)| JoinCondition {
                        left: (junction.clone(), jc.clone()),
                        right: (target.clone(), tc.clone()),
                    })
                    .collect();
                conds.extend(j.source_columns.iter().map(|(sc, jc)| JoinCondition {
                    left: (junction.clone(), jc.clone()),
                    right: (parent_q.clone(), sc.clone()),
                }));
                child.join_conditions = conds;
            }
            Cardinality::ManyToOne { columns, .. }
            | Cardinality::OneToMany { columns, .. }
            | Cardinality::OneToOne { columns, .. } => {
                let alias = format!("{}_{depth}", rel.foreign_table.1);
                child.alias = Some(alias.clone());
                child.join_conditions = columns
                    .iter()
                    .map(|(c, fc)| JoinCondition {
                        left: (Qualifier::Alias(alias.clone()), fc.clone()),
                        right: (parent_q.clone(), c.clone()),
                    })
                    .collect();
            }
        }
        child.relationship = Some(rel);
        add_relationships(cache, schema, child)?;
    }
    Ok(())
}

fn expand_star(cache: &SchemaCache, node: &mut ReadPlan, table: &Qi) {
    let Some(t) = cache.tables.get(table) else { return };
    let columns: Vec<SelectField> = t
        .columns
        .iter()
        .map(|c| SelectField {
            field: resolve_field(cache, table, &Field { name: c.name.clone(), json_path: Vec::new() }, None),
            alias: None,
            cast: None,
            aggregate: None,
            aggregate_cast: None,
        })
        .collect();
    let mut expanded = Vec::new();
    for s in std::mem::take(&mut node.select) {
        if s.field.name == "*" && s.field.json_path.is_empty() && s.aggregate.is_none() {
            expanded.extend(columns.iter().cloned());
        } else {
            expanded.push(s);
        }
    }
    node.select = expanded;
}

/// v13's `findRel`: by target name, constraint name or column, narrowed by
/// the hint; several matches are ambiguous (PGRST201), none is PGRST200.
pub fn find_relationship(
    cache: &SchemaCache,
    schema: &str,
    origin: &str,
    target: &str,
    hint: Option<&str>,
) -> Result<Relationship, PgrstError> {
    let origin_qi: Qi = (schema.to_string(), origin.to_string());
    let all: &[Relationship] = cache.relationships.get(&origin_qi).map(Vec::as_slice).unwrap_or(&[]);
    let candidates: Vec<&Relationship> = all.iter().filter(|r| r.foreign_table.0 == schema).collect();
    let single = |cols: &[(String, String)]| -> Option<(String, String)> {
        match cols {
            [one] => Some(one.clone()),
            _ => None,
        }
    };
    let fk_columns = |r: &Relationship| -> Option<Vec<(String, String)>> {
        match &r.cardinality {
            Cardinality::ManyToOne { columns, .. }
            | Cardinality::OneToMany { columns, .. }
            | Cardinality::OneToOne { columns, .. } => Some(columns.clone()),
            Cardinality::ManyToMany(_) => None,
        }
    };
    let constraint = |r: &Relationship| -> Option<String> {
        match &r.cardinality {
            Cardinality::ManyToOne { constraint, .. }
            | Cardinality::OneToMany { constraint, .. }
            | Cardinality::OneToOne { constraint, .. } => Some(constraint.clone()),
            Cardinality::ManyToMany(_) => None,
        }
    };
    let matches: Vec<&Relationship> = candidates
        .into_iter()
        .filter(|r| {
            let single_col = fk_columns(r).as_deref().and_then(single);
            let is_m2o = matches!(r.cardinality, Cardinality::ManyToOne { .. });
            let is_o2m = matches!(r.cardinality, Cardinality::OneToMany { .. });
            let target_is_table = r.foreign_table.1 == target;
            if r.is_self {
                return match hint {
                    None => {
                        (target_is_table && is_o2m) || (single_col.as_ref().is_some_and(|(c, _)| c == target) && is_m2o)
                    }
                    Some(h) => target_is_table && is_o2m && single_col.as_ref().is_some_and(|(_, fc)| fc == h),
                };
            }
            match hint {
                None => {
                    target_is_table
                        || (constraint(r).as_deref() == Some(target) && !r.foreign_is_view)
                        || (single_col.as_ref().is_some_and(|(c, _)| c == target) && !r.foreign_is_view)
                }
                Some(h) => {
                    target_is_table
                        && (constraint(r).as_deref() == Some(h)
                            || single_col.as_ref().is_some_and(|(c, fc)| c == h || fc == h)
                            || matches!(&r.cardinality, Cardinality::ManyToMany(j) if j.table.1 == h))
                }
            }
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(no_relationship(cache, schema, origin, target, hint)),
        several => Err(ambiguous(origin, target, several)),
    }
}

fn no_relationship(cache: &SchemaCache, schema: &str, parent: &str, child: &str, hint: Option<&str>) -> PgrstError {
    let details = format!(
        "Searched for a foreign key relationship between '{parent}' and '{child}'{} in the schema '{schema}', but no matches were found.",
        hint.map(|h| format!(" using the hint '{h}'")).unwrap_or_default()
    );
    let mut e = PgrstError::new(
        400,
        "PGRST200",
        format!("Could not find a relationship between '{parent}' and '{child}' in the schema cache"),
    )
    .with_details(details);
    // A close name as a hint: the parent's when it has no relationships,
    // else one of its targets'.
    let origins: Vec<&str> = cache.relationships.keys().filter(|(s, _)| s == schema).map(|(_, n)| n.as_str()).collect();
    let suggestion = match cache.relationships.get(&(schema.to_string(), parent.to_string())) {
        None => {
            super::fuzzy::closest(parent, &origins).map(|p| format!("Perhaps you meant '{p}' instead of '{parent}'."))
        }
        Some(rels) => {
            let targets: Vec<&str> = rels.iter().map(|r| r.foreign_table.1.as_str()).collect();
            if targets.contains(&child) {
                None
            } else {
                super::fuzzy::closest(child, &targets).map(|c| format!("Perhaps you meant '{c}' instead of '{child}'."))
            }
        }
    };
    if let Some(s) = suggestion {
        e = e.with_hint(s);
    }
    e
}

fn ambiguous(parent: &str, child: &str, rels: &[&Relationship]) -> PgrstError {
    let cols = |cs: &[String]| format!("({})", cs.join(", "));
    let details: Vec<serde_json::Value> = rels
        .iter()
        .map(|r| {
            let (cardinality, relationship) = match &r.cardinality {
                Cardinality::ManyToMany(j) => (
                    "many-to-many",
                    format!(
                        "{} using {}{} and {}{}",
                        j.table.1,
                        j.constraint1,
                        cols(&j.source_columns.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>()),
                        j.constraint2,
                        cols(&j.target_columns.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>())
                    ),
                ),
                Cardinality::ManyToOne { constraint, columns }
                | Cardinality::OneToMany { constraint, columns }
                | Cardinality::OneToOne { constraint, columns, .. } => (
                    match r.cardinality {
                        Cardinality::ManyToOne { .. } => "many-to-one",
                        Cardinality::OneToMany { .. } => "one-to-many",
                        _ => "one-to-one",
                    },
                    format!(
                        "{constraint} using {}{} and {}{}",
                        r.table.1,
                        cols(&columns.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>()),
                        r.foreign_table.1,
                        cols(&columns.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>())
                    ),
                ),
            };
            serde_json::json!({
                "cardinality": cardinality,
                "embedding": format!("{} with {}", r.table.1, r.foreign_table.1),
                "relationship": relationship,
            })
        })
        .collect();
    let hints: Vec<String> = rels
        .iter()
        .map(|r| {
            let name = match &r.cardinality {
                Cardinality::ManyToMany(j) => j.table.1.clone(),
                Cardinality::ManyToOne { constraint, .. }
                | Cardinality::OneToMany { constraint, .. }
                | Cardinality::OneToOne { constraint, .. } => constraint.clone(),
            };
            format!("'{}!{name}'", r.foreign_table.1)
        })
        .collect();
    let mut e = PgrstError::new(
        300,
        "PGRST201",
        format!("Could not embed because more than one relationship was found for '{parent}' and '{child}'"),
    )
    .with_hint(format!(
        "Try changing '{child}' to one of the following: {}. Find the desired relationship in the 'details' key.",
        hints.join(", ")
    ));
    e.details = serde_json::Value::Array(details);
    e
}

/// The node an embed path names (by name or alias), PGRST108 otherwise.
fn find_node<'a>(root: &'a mut ReadPlan, path: &EmbedPath) -> Result<&'a mut ReadPlan, PgrstError> {
    let mut node = root;
    for name in path {
        let found = node.children.iter().position(|c| c.rel_name == *name || c.rel_alias.as_deref() == Some(name));
        match found {
            Some(i) => node = &mut node.children[i],
            None => return Err(not_embedded(name)),
        }
    }
    Ok(node)
}

fn not_embedded(name: &str) -> PgrstError {
    PgrstError::new(400, "PGRST108", format!("'{name}' is not an embedded resource in this request"))
        .with_hint(format!("Verify that '{name}' is included in the 'select' query parameter."))
}

/// A JSON path without an alias is named after its last key.
fn add_json_aliases(node: &mut ReadPlan) {
    for s in &mut node.select {
        if s.alias.is_some() || s.aggregate.is_some() {
            continue;
        }
        let last_key = s.field.json_path.iter().rev().find_map(|step| match &step.operand {
            JsonOperand::Key(k) => Some(k.clone()),
            JsonOperand::Index(_) => None,
        });
        match s.field.json_path.last().map(|step| &step.operand) {
            Some(JsonOperand::Key(k)) => s.alias = Some(k.clone()),
            Some(JsonOperand::Index(_)) => s.alias = Some(last_key.unwrap_or_else(|| s.field.name.clone())),
            None => {}
        }
    }
    for c in &mut node.children {
        add_json_aliases(c);
    }
}

/// `order=rel(col)`: only on an embedded to-one resource.
fn add_related_orders(node: &mut ReadPlan) -> Result<(), PgrstError> {
    let table_name = node.table.1.clone();
    for o in &mut node.order {
        let Some(rel) = o.relation.clone() else { continue };
        let child = node.children.iter().find(|c| c.rel_alias.as_deref().unwrap_or(&c.rel_name) == rel);
        match child {
            Some(c) if c.relationship.as_ref().is_some_and(Relationship::is_to_one) => {
                o.relation = Some(c.agg_alias.clone())
            }
            Some(c) => {
                let name = c.rel_alias.clone().unwrap_or_else(|| c.rel_name.clone());
                return Err(PgrstError::new(400, "PGRST118", format!("A related order on '{name}' is not possible"))
                    .with_details(format!(
                        "'{table_name}' and '{name}' do not form a many-to-one or one-to-one relationship"
                    )));
            }
            None => return Err(not_embedded(&rel)),
        }
    }
    for c in &mut node.children {
        add_related_orders(c)?;
    }
    Ok(())
}

/// `rel=is.null` / `rel=not.is.null` on an embed tests the join, not a column.
fn add_null_embed_filters(node: &mut ReadPlan) {
    fn convert(l: &mut Logic, children: &[ReadPlan]) {
        match l {
            Logic::Expr { children: items, .. } => items.iter_mut().for_each(|i| convert(i, children)),
            Logic::Filter { field, negated, operation: Operation::Is(super::query::IsVal::Null) }
                if field.json_path.is_empty() =>
            {
                if let Some(c) = children.iter().find(|c| c.rel_alias.as_deref().unwrap_or(&c.rel_name) == field.name) {
                    *l = Logic::NullEmbed { negated: *negated, agg_alias: c.agg_alias.clone() };
                }
            }
            _ => {}
        }
    }
    let children = std::mem::take(&mut node.children);
    for l in &mut node.where_ {
        convert(l, &children);
    }
    node.children = children;
    for c in &mut node.children {
        add_null_embed_filters(c);
    }
}

/// What each parent selects from its embeds.
fn add_rel_selects(node: &mut ReadPlan) {
    for c in &mut node.children {
        add_rel_selects(c);
    }
    node.rel_selects = node.children.iter().map(rel_select).collect();
}

fn rel_select(child: &ReadPlan) -> RelSelect {
    if child.spread.is_some() {
        return RelSelect::Spread { agg_alias: child.agg_alias.clone(), columns: spread_columns(child) };
    }
    fn only_empty(n: &ReadPlan) -> bool {
        n.select.is_empty() && n.children.iter().all(only_empty)
    }
    if only_empty(child) {
        return RelSelect::Empty;
    }
    let name = child.rel_alias.clone().unwrap_or_else(|| child.rel_name.clone());
    if child.relationship.as_ref().is_some_and(Relationship::is_to_one) {
        RelSelect::Object { name, agg_alias: child.agg_alias.clone() }
    } else {
        RelSelect::Array { name, agg_alias: child.agg_alias.clone() }
    }
}

/// The output columns of a spread node: its fields, its embeds, and what
/// its own spreads lift.
fn spread_columns(node: &ReadPlan) -> Vec<SpreadColumn> {
    let mut out: Vec<SpreadColumn> = node
        .select
        .iter()
        .map(|s| SpreadColumn { name: s.alias.clone().unwrap_or_else(|| s.field.name.clone()), alias: None })
        .collect();
    for r in &node.rel_selects {
        match r {
            RelSelect::Object { name, .. } | RelSelect::Array { name, .. } => {
                out.push(SpreadColumn { name: name.clone(), alias: None })
            }
            RelSelect::Spread { columns, .. } => out.extend(
                columns.iter().map(|c| SpreadColumn { name: c.alias.clone().unwrap_or(c.name.clone()), alias: None }),
            ),
            RelSelect::Empty => {}
        }
    }
    out
}

fn uses_aggregates(node: &ReadPlan) -> bool {
    node.select.iter().any(|s| s.aggregate.is_some()) || node.children.iter().any(uses_aggregates)
}

/// A to-many spread orders its correlated arrays: the order columns are
/// selected under unique names and the order moves into the aggregate.
fn add_to_many_spread_orders(node: &mut ReadPlan) -> Result<(), PgrstError> {
    if let Some(Spread::ToMany { .. }) = node.spread {
        let has_agg = node.select.iter().any(|s| s.aggregate.is_some());
        if has_agg {
            return Err(PgrstError::new(400, "PGRST127", "Feature not implemented")
                .with_details("Aggregates are not implemented for one-to-many or many-to-many spreads."));
        }
        let order = std::mem::take(&mut node.order);
        let mut extra = Vec::new();
        let mut spread_order = Vec::new();
        for (i, o) in order.into_iter().enumerate() {
            let alias = format!("{}_{}_{}", node.agg_alias, o.field.name, i + 1);
            extra.push((
                o.relation.clone(),
                SelectField {
                    field: o.field.clone(),
                    alias: Some(alias.clone()),
                    cast: None,
                    aggregate: None,
                    aggregate_cast: None,
                },
            ));
            spread_order.push(Order {
                relation: None,
                field: CField { name: alias, json_path: Vec::new(), to_json: false, to_tsvector: None },
                direction: o.direction,
                nulls: o.nulls,
            });
        }
        node.spread = Some(Spread::ToMany { order: spread_order, extra });
    }
    for c in &mut node.children {
        add_to_many_spread_orders(c)?;
    }
    Ok(())
}

/// `db-max-rows` caps every resource's limit.
fn restrict_ranges(node: &mut ReadPlan, max: i64) {
    // `limit=0` stays zero.
    node.range.limit = Some(node.range.limit.map_or(max, |l| l.min(max)));
    for c in &mut node.children {
        restrict_ranges(c, max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgrst::query::parse;
    use crate::pgrst::schema::{relationships, Column, ForeignKey, Table};

    fn cache() -> SchemaCache {
        let col = |n: &str| Column {
            name: n.into(),
            data_type: "integer".into(),
            nominal_type: "integer".into(),
            default: None,
        };
        let table = |cols: &[&str], pk: &[&str]| Table {
            columns: cols.iter().map(|c| col(c)).collect(),
            primary_key: pk.iter().map(|s| s.to_string()).collect(),
            is_view: false,
        };
        let qi = |n: &str| ("api".to_string(), n.to_string());
        let mut c = SchemaCache::default();
        c.tables.insert(qi("orders"), table(&["id", "billing_address_id", "shipping_address_id"], &["id"]));
        c.tables.insert(qi("addresses"), table(&["id", "name"], &["id"]));
        c.tables.insert(qi("films"), table(&["id", "director_id"], &["id"]));
        c.tables.insert(qi("directors"), table(&["id"], &["id"]));
        let fk = |t: &str, ft: &str, cons: &str, col: &str| ForeignKey {
            table: qi(t),
            foreign_table: qi(ft),
            constraint: cons.into(),
            columns: vec![(col.into(), "id".into())],
            one_to_one: false,
            foreign_is_view: false,
        };
        let keys = vec![
            fk("orders", "addresses", "billing", "billing_address_id"),
            fk("orders", "addresses", "shipping", "shipping_address_id"),
            fk("films", "directors", "films_director_id_fkey", "director_id"),
        ];
        for r in relationships(&keys, &c.tables, &["api".to_string()]) {
            c.relationships.entry(r.table.clone()).or_default().push(r);
        }
        c
    }

    fn plan(q: &[(&str, &str)], root: &str) -> Result<ReadPlan, PgrstError> {
        let pairs: Vec<(String, String)> = q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let q = parse(&pairs, false)?;
        read_plan(&cache(), "api", root, &q, Action::Read, &PlanOptions { max_rows: None, aggregates_enabled: false })
    }

    #[test]
    fn ambiguous_embed_is_pgrst201_with_hints() {
        let e = plan(&[("select", "*,addresses(*)")], "orders").unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (300, "PGRST201"));
        assert_eq!(
            e.hint,
            serde_json::json!("Try changing 'addresses' to one of the following: 'addresses!billing', 'addresses!shipping'. Find the desired relationship in the 'details' key.")
        );
        assert_eq!(e.details[0]["relationship"], "billing using orders(billing_address_id) and addresses(id)");
        assert_eq!(e.details[0]["cardinality"], "many-to-one");
    }

    #[test]
    fn hints_pick_one_relationship() {
        let p =
            plan(&[("select", "b:addresses!billing(name),s:addresses!shipping_address_id(name)")], "orders").unwrap();
        assert_eq!(p.children[0].agg_alias, "orders_b_1");
        assert_eq!(p.children[0].alias.as_deref(), Some("addresses_1"));
        assert_eq!(
            p.children[1].join_conditions[0],
            JoinCondition {
                left: (Qualifier::Alias("addresses_1".into()), "id".into()),
                right: (Qualifier::Table(("api".into(), "orders".into())), "shipping_address_id".into())
            }
        );
        assert!(matches!(p.rel_selects[0], RelSelect::Object { .. }));
    }

    #[test]
    fn no_relationship_is_pgrst200() {
        let e = plan(&[("select", "*,films(*)")], "orders").unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "PGRST200"));
        assert_eq!(e.message, "Could not find a relationship between 'orders' and 'films' in the schema cache");
        let e = plan(&[("select", "*,directorz(*)")], "films").unwrap_err();
        assert_eq!(e.hint, serde_json::json!("Perhaps you meant 'directors' instead of 'directorz'."));
    }

    #[test]
    fn filters_on_unknown_embeds_are_pgrst108() {
        let e = plan(&[("select", "*"), ("directors.id", "eq.1")], "films").unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "PGRST108"));
    }

    #[test]
    fn related_order_needs_a_to_one_embed() {
        assert!(plan(&[("select", "*,directors(*)"), ("order", "directors(id).desc")], "films").is_ok());
        let e = plan(&[("select", "*,films(*)"), ("order", "films(id)")], "directors").unwrap_err();
        assert_eq!(e.code, "PGRST118");
    }

    #[test]
    fn an_embed_is_a_lateral_subquery_of_one_statement() {
        let p = plan(&[("select", "id,directors(id)"), ("id", "eq.1")], "films").unwrap();
        assert_eq!(
            crate::pgrst::sql::read_query(&p),
            "SELECT \"api\".\"films\".\"id\", row_to_json(\"films_directors_1\".*) AS \"directors\" \
             FROM \"api\".\"films\" LEFT JOIN LATERAL ( SELECT \"directors_1\".\"id\" FROM \"api\".\"directors\" AS \"directors_1\" \
             WHERE \"directors_1\".\"id\" = \"api\".\"films\".\"director_id\" ) AS \"films_directors_1\" ON TRUE \
             WHERE \"api\".\"films\".\"id\" = '1'"
        );
    }

    #[test]
    fn aggregates_need_the_setting() {
        assert_eq!(plan(&[("select", "id.sum()")], "films").unwrap_err().code, "PGRST123");
        assert!(plan(&[("select", "*,directors(count)")], "films").is_ok(), "count as a column is no aggregate");
    }
}
