//! PostgREST's URL grammar (v13's `ApiRequest/QueryParams.hs`): the
//! `select` tree with embeds and spreads, filters and logic trees that may
//! target an embedded resource (`pages.title=eq.x`, `pages.or=(...)`),
//! `order` (also on a to-one embed: `order=rel(col).desc`), `limit` and
//! `offset` per resource, `columns` and `on_conflict`.
//!
//! Parsing only: nothing here knows the schema or writes SQL. Every name a
//! client sends stays data until `sql.rs` quotes it.

use super::error::PgrstError;

/// Nesting of embedded resources a `select` may ask for. PostgREST has no
/// limit; one keeps a request from building a statement without end.
pub const MAX_EMBED_DEPTH: usize = 10;
/// Select items across the whole tree, and terms in one logic tree.
pub const MAX_ITEMS: usize = 1000;
/// Nesting of `and`/`or` trees.
pub const MAX_LOGIC_DEPTH: usize = 20;

/// A column and the JSON path applied to it (`data->a->>b`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    pub name: String,
    pub json_path: Vec<JsonStep>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JsonStep {
    /// `->>` (text) rather than `->` (json).
    pub text: bool,
    pub operand: JsonOperand,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JsonOperand {
    Key(String),
    /// An array index, kept as its digits (`-1` counts from the end).
    Index(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Avg,
    Count,
    Max,
    Min,
    Sum,
}

impl Aggregate {
    pub fn sql(self) -> &'static str {
        match self {
            Aggregate::Avg => "AVG",
            Aggregate::Count => "COUNT",
            Aggregate::Max => "MAX",
            Aggregate::Min => "MIN",
            Aggregate::Sum => "SUM",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinType {
    Inner,
    Left,
}

/// One item of `select`, with its children for embeds and spreads.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    Field {
        field: Field,
        alias: Option<String>,
        cast: Option<String>,
        aggregate: Option<Aggregate>,
        aggregate_cast: Option<String>,
    },
    Relation {
        name: String,
        alias: Option<String>,
        hint: Option<String>,
        join: Option<JoinType>,
        children: Vec<SelectItem>,
    },
    Spread {
        name: String,
        hint: Option<String>,
        join: Option<JoinType>,
        children: Vec<SelectItem>,
    },
}

impl SelectItem {
    pub fn star() -> SelectItem {
        SelectItem::Field {
            field: Field { name: "*".into(), json_path: Vec::new() },
            alias: None,
            cast: None,
            aggregate: None,
            aggregate_cast: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimpleOp {
    NotEqual,
    Contains,
    Contained,
    Overlap,
    StrictlyLeft,
    StrictlyRight,
    NotExtendsRight,
    NotExtendsLeft,
    Adjacent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantOp {
    Equal,
    GreaterThanEqual,
    GreaterThan,
    LessThanEqual,
    LessThan,
    Like,
    ILike,
    Match,
    IMatch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    Any,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsVal {
    Null,
    NotNull,
    True,
    False,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FtsOp {
    /// `fts`: to_tsquery
    Fts,
    /// `plfts`: plainto_tsquery
    Plain,
    /// `phfts`: phraseto_tsquery
    Phrase,
    /// `wfts`: websearch_to_tsquery
    Websearch,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    Simple(SimpleOp, String),
    Quant(QuantOp, Option<Quantifier>, String),
    In(Vec<String>),
    Is(IsVal),
    IsDistinct(String),
    Fts(FtsOp, Option<String>, String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub field: Field,
    pub negated: bool,
    pub operation: Operation,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LogicTree {
    Filter(Filter),
    Expr { negated: bool, or: bool, children: Vec<LogicTree> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nulls {
    First,
    Last,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderTerm {
    /// `Some(rel)` for `rel(col)`: a column of a to-one embed.
    pub relation: Option<String>,
    pub field: Field,
    pub direction: Option<Direction>,
    pub nulls: Option<Nulls>,
}

/// The embed path a parameter applies to: `[]` is the top level,
/// `["pages", "components"]` the components embedded in pages.
pub type EmbedPath = Vec<String>;

/// `limit` and `offset` of one resource, as given.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub offset: i64,
    pub limit: Option<i64>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct QueryParams {
    /// `select`, `*` when absent.
    pub select: Vec<SelectItem>,
    pub filters: Vec<(EmbedPath, Filter)>,
    pub logic: Vec<(EmbedPath, LogicTree)>,
    pub order: Vec<(EmbedPath, Vec<OrderTerm>)>,
    pub ranges: Vec<(EmbedPath, Range)>,
    pub columns: Option<Vec<String>>,
    pub on_conflict: Option<Vec<String>>,
    /// Parameters without an operator: the arguments of a GET/HEAD RPC.
    pub rpc_params: Vec<(String, String)>,
}

impl QueryParams {
    /// The top level's range.
    pub fn top_range(&self) -> Range {
        self.ranges.iter().find(|(p, _)| p.is_empty()).map(|(_, r)| *r).unwrap_or_default()
    }
}

const RESERVED: [&str; 3] = ["select", "columns", "on_conflict"];
const RESERVED_EMBEDDABLE: [&str; 5] = ["order", "limit", "offset", "and", "or"];

/// Parses the decoded query pairs. `rpc_read` (GET/HEAD on `/rpc/`) lets
/// a parameter without an operator through as a function argument.
pub fn parse(pairs: &[(String, String)], rpc_read: bool) -> Result<QueryParams, PgrstError> {
    let mut q = QueryParams { select: vec![SelectItem::star()], ..Default::default() };
    let mut limits: Vec<(EmbedPath, i64)> = Vec::new();
    let mut offsets: Vec<(EmbedPath, i64)> = Vec::new();
    for (key, value) in pairs {
        let last_word = key.rsplit('.').next().unwrap_or(key);
        match key.as_str() {
            "select" => {
                q.select = parse_select(value)?;
                continue;
            }
            "columns" => {
                q.columns = Some(parse_columns(value, "columns")?);
                continue;
            }
            "on_conflict" => {
                q.on_conflict = Some(parse_columns(value, "on_conflict")?);
                continue;
            }
            _ => {}
        }
        if RESERVED_EMBEDDABLE.contains(&last_word) {
            match last_word {
                "order" => q.order.push((parse_tree_path(key)?.0, parse_order(value)?)),
                // Not a number: ignored, as PostgREST ignores it.
                "limit" => {
                    if let Ok(n) = value.trim().parse::<i64>() {
                        limits.push((parse_tree_path(key)?.0, n));
                    }
                }
                "offset" => {
                    if let Ok(n) = value.trim().parse::<i64>() {
                        offsets.push((parse_tree_path(key)?.0, n));
                    }
                }
                _ => q.logic.push(parse_logic_param(key, value)?),
            }
            continue;
        }
        if RESERVED.contains(&key.as_str()) {
            continue;
        }
        let (path, field) = parse_tree_path(key)?;
        match parse_op_expr(value, false) {
            Ok((negated, operation)) => q.filters.push((path, Filter { field, negated, operation })),
            Err(_) if rpc_read => q.rpc_params.push((key.clone(), value.clone())),
            Err(e) => return Err(e.into_error(&format!("failed to parse filter ({value})"))),
        }
    }
    for (path, limit) in limits {
        let offset = offsets.iter().find(|(p, _)| *p == path).map_or(0, |(_, o)| *o);
        q.ranges.push((path, Range { offset, limit: Some(limit) }));
    }
    for (path, offset) in offsets {
        if !q.ranges.iter().any(|(p, _)| *p == path) {
            q.ranges.push((path, Range { offset, limit: None }));
        }
    }
    check_bounds(&q)?;
    Ok(q)
}

fn check_bounds(q: &QueryParams) -> Result<(), PgrstError> {
    fn walk(items: &[SelectItem], depth: usize, count: &mut usize) -> Result<(), PgrstError> {
        if depth > MAX_EMBED_DEPTH {
            return Err(too_big(format!("resources may be embedded at most {MAX_EMBED_DEPTH} levels deep")));
        }
        for item in items {
            *count += 1;
            if *count > MAX_ITEMS {
                return Err(too_big(format!("select may have at most {MAX_ITEMS} items")));
            }
            if let SelectItem::Relation { children, .. } | SelectItem::Spread { children, .. } = item {
                walk(children, depth + 1, count)?;
            }
        }
        Ok(())
    }
    walk(&q.select, 0, &mut 0)
}

fn too_big(details: String) -> PgrstError {
    PgrstError::new(400, "PGRST100", "\"the request is too large to plan\"").with_details(details)
}

/// A parse failure: where (0-based character index) and what.
#[derive(Debug)]
pub struct ParseFail {
    pos: usize,
    details: String,
}

impl ParseFail {
    /// PostgREST's shape: the message names the parameter and the position
    /// as Parsec shows it, the details say what was expected.
    fn into_error(self, source: &str) -> PgrstError {
        PgrstError::new(400, "PGRST100", format!("\"{source}\" (line 1, column {})", self.pos + 1))
            .with_details(self.details)
    }
}

type PResult<T> = Result<T, ParseFail>;

/// A small cursor over the characters of one parameter.
struct Cursor {
    chars: Vec<char>,
    pos: usize,
}

impl Cursor {
    fn new(s: &str) -> Cursor {
        Cursor { chars: s.chars().collect(), pos: 0 }
    }
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }
    fn starts_with(&self, s: &str) -> bool {
        (self.pos..).zip(s.chars()).all(|(i, c)| self.chars.get(i) == Some(&c))
    }
    fn eat(&mut self, s: &str) -> bool {
        if self.starts_with(s) {
            self.pos += s.chars().count();
            true
        } else {
            false
        }
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
    }
    fn rest(&self) -> String {
        self.chars[self.pos..].iter().collect()
    }
    fn fail<T>(&self, expecting: &str) -> PResult<T> {
        let unexpected = match self.peek() {
            Some(c) => format!("unexpected \"{c}\""),
            None => "unexpected end of input".to_string(),
        };
        Err(ParseFail { pos: self.pos, details: format!("{unexpected} expecting {expecting}") })
    }
    fn expect(&mut self, s: &str) -> PResult<()> {
        if self.eat(s) {
            Ok(())
        } else {
            self.fail(&format!("\"{s}\""))
        }
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | ' ' | '$')
}

/// `"quoted \" name"`: backslash escapes any character.
fn quoted(cur: &mut Cursor) -> PResult<Option<String>> {
    if cur.peek() != Some('"') {
        return Ok(None);
    }
    cur.pos += 1;
    let mut out = String::new();
    loop {
        match cur.peek() {
            None => return cur.fail("\"\\\"\""),
            Some('"') => {
                cur.pos += 1;
                return Ok(Some(out));
            }
            Some('\\') => {
                cur.pos += 1;
                match cur.peek() {
                    Some(c) => {
                        out.push(c);
                        cur.pos += 1;
                    }
                    None => return cur.fail("any character"),
                }
            }
            Some(c) => {
                out.push(c);
                cur.pos += 1;
            }
        }
    }
}

/// Runs of `allowed` characters joined by single dashes that do not start
/// an arrow (`a-b` is one name, `a->b` a JSON path).
fn dashed(cur: &mut Cursor, allowed: fn(char) -> bool) -> Option<String> {
    let start = cur.pos;
    let mut out = String::new();
    loop {
        let run_start = cur.pos;
        while cur.peek().is_some_and(allowed) {
            out.push(cur.peek().unwrap());
            cur.pos += 1;
        }
        if cur.pos == run_start {
            if out.is_empty() {
                cur.pos = start;
                return None;
            }
            // A dash followed by nothing usable: give it back.
            cur.pos -= 1;
            out.pop();
            break;
        }
        if cur.peek() == Some('-') && cur.chars.get(cur.pos + 1) != Some(&'>') {
            out.push('-');
            cur.pos += 1;
            continue;
        }
        break;
    }
    Some(out.trim().to_string()).filter(|s| !s.is_empty())
}

/// `pFieldName`: a quoted name or dash-separated identifiers.
fn field_name(cur: &mut Cursor) -> PResult<String> {
    if let Some(q) = quoted(cur)? {
        return Ok(q);
    }
    match dashed(cur, is_ident_char) {
        Some(name) => Ok(name),
        None => cur.fail("field name (* or [a..z0..9_$])"),
    }
}

fn json_path(cur: &mut Cursor) -> PResult<Vec<JsonStep>> {
    let mut steps = Vec::new();
    loop {
        let text = if cur.eat("->>") {
            true
        } else if cur.eat("->") {
            false
        } else {
            return Ok(steps);
        };
        steps.push(JsonStep { text, operand: json_operand(cur)? });
    }
}

fn json_operand(cur: &mut Cursor) -> PResult<JsonOperand> {
    // An index: digits (optionally negative) ending where the path ends.
    let start = cur.pos;
    let mut digits = String::new();
    if cur.peek() == Some('-') {
        digits.push('-');
        cur.pos += 1;
    }
    while cur.peek().is_some_and(|c| c.is_ascii_digit()) {
        digits.push(cur.peek().unwrap());
        cur.pos += 1;
    }
    let ends = cur.at_end() || ["->", "::", ".", ",", ")"].iter().any(|s| cur.starts_with(s));
    if digits.chars().any(|c| c.is_ascii_digit()) && ends {
        return Ok(JsonOperand::Index(digits));
    }
    cur.pos = start;
    if let Some(q) = quoted(cur)? {
        return Ok(JsonOperand::Key(q));
    }
    match dashed(cur, |c| !"(-:.,>)".contains(c)) {
        Some(k) => Ok(JsonOperand::Key(k)),
        None => cur.fail("any non reserved character different from: .,>()"),
    }
}

fn field(cur: &mut Cursor) -> PResult<Field> {
    cur.skip_ws();
    let name = field_name(cur)?;
    let json_path = json_path(cur)?;
    cur.skip_ws();
    Ok(Field { name, json_path })
}

/// `pIdentifier`, used for casts and text search configurations.
fn identifier(cur: &mut Cursor) -> PResult<String> {
    let start = cur.pos;
    while cur.peek().is_some_and(is_ident_char) {
        cur.pos += 1;
    }
    let s: String = cur.chars[start..cur.pos].iter().collect::<String>().trim().to_string();
    if s.is_empty() {
        cur.pos = start;
        return cur.fail("letter or digit");
    }
    Ok(s)
}

// ---- select ------------------------------------------------------------------

pub fn parse_select(v: &str) -> Result<Vec<SelectItem>, PgrstError> {
    let mut cur = Cursor::new(v);
    let source = format!("failed to parse select parameter ({v})");
    // Like v13's Parsec parser, what follows the last item is ignored.
    select_forest(&mut cur, 0).map_err(|e| e.into_error(&source))
}

fn select_forest(cur: &mut Cursor, depth: usize) -> PResult<Vec<SelectItem>> {
    let mut items = Vec::new();
    cur.skip_ws();
    if cur.at_end() || cur.peek() == Some(')') {
        return Ok(items);
    }
    loop {
        if depth > MAX_EMBED_DEPTH {
            return Err(ParseFail {
                pos: cur.pos,
                details: format!("resources may be embedded at most {MAX_EMBED_DEPTH} levels deep"),
            });
        }
        items.push(select_item(cur, depth)?);
        cur.skip_ws();
        if cur.eat(",") {
            cur.skip_ws();
            continue;
        }
        return Ok(items);
    }
}

fn select_item(cur: &mut Cursor, depth: usize) -> PResult<SelectItem> {
    cur.skip_ws();
    let start = cur.pos;
    if cur.eat("...") {
        let name = field_name(cur)?;
        let (hint, join) = embed_params(cur)?;
        cur.expect("(")?;
        let children = select_forest(cur, depth + 1)?;
        cur.expect(")")?;
        return Ok(SelectItem::Spread { name, hint, join, children });
    }
    if let Some(relation) = try_relation(cur, depth)? {
        return Ok(relation);
    }
    cur.pos = start;
    field_select(cur)
}

/// The head of an embed: alias, name, hint and join type.
type EmbedHead = (Option<String>, String, Option<String>, Option<JoinType>);

/// `[alias:]name[!hint][!inner|!left](...)`, or `None` (cursor restored)
/// when the item is not an embed.
fn try_relation(cur: &mut Cursor, depth: usize) -> PResult<Option<SelectItem>> {
    let start = cur.pos;
    let attempt = (|| -> PResult<Option<EmbedHead>> {
        let first = field_name(cur)?;
        let (alias, name) = if cur.peek() == Some(':') && cur.chars.get(cur.pos + 1) != Some(&':') {
            cur.pos += 1;
            (Some(first), field_name(cur)?)
        } else {
            (None, first)
        };
        if name == "count" {
            return Ok(None);
        }
        let (hint, join) = embed_params(cur)?;
        if cur.peek() != Some('(') {
            return Ok(None);
        }
        Ok(Some((alias, name, hint, join)))
    })();
    match attempt {
        Ok(Some((alias, name, hint, join))) => {
            cur.expect("(")?;
            let children = select_forest(cur, depth + 1)?;
            cur.expect(")")?;
            Ok(Some(SelectItem::Relation { name, alias, hint, join, children }))
        }
        _ => {
            cur.pos = start;
            Ok(None)
        }
    }
}

fn embed_params(cur: &mut Cursor) -> PResult<(Option<String>, Option<JoinType>)> {
    let (mut hint, mut join) = (None, None);
    for _ in 0..2 {
        if !cur.eat("!") {
            break;
        }
        let p = field_name(cur)?;
        match p.as_str() {
            "inner" if join.is_none() => join = Some(JoinType::Inner),
            "left" if join.is_none() => join = Some(JoinType::Left),
            _ if hint.is_none() => hint = Some(p),
            _ => return cur.fail("\"(\""),
        }
    }
    Ok((hint, join))
}

fn at_item_end(cur: &Cursor) -> bool {
    cur.at_end() || matches!(cur.peek(), Some(')' | ','))
}

fn field_select(cur: &mut Cursor) -> PResult<SelectItem> {
    cur.skip_ws();
    if cur.eat("*") {
        cur.skip_ws();
        if at_item_end(cur) {
            return Ok(SelectItem::star());
        }
        return cur.fail("\",\", \")\" or end of input");
    }
    let start = cur.pos;
    // `[alias:]count()[::cast]`
    let alias_then = |cur: &mut Cursor| -> PResult<Option<String>> {
        let s = cur.pos;
        if let Ok(a) = field_name(cur) {
            if cur.peek() == Some(':') && cur.chars.get(cur.pos + 1) != Some(&':') {
                cur.pos += 1;
                return Ok(Some(a));
            }
        }
        cur.pos = s;
        Ok(None)
    };
    let alias = alias_then(cur)?;
    if cur.eat("count()") {
        let aggregate_cast = if cur.eat("::") { Some(identifier(cur)?) } else { None };
        cur.skip_ws();
        if at_item_end(cur) {
            return Ok(SelectItem::Field {
                field: Field { name: "*".into(), json_path: Vec::new() },
                alias,
                cast: None,
                aggregate: Some(Aggregate::Count),
                aggregate_cast,
            });
        }
        cur.pos = start;
        let _ = alias_then(cur)?;
    }
    let f = field(cur)?;
    let cast = if cur.eat("::") { Some(identifier(cur)?) } else { None };
    let mut aggregate = None;
    let before_agg = cur.pos;
    if cur.eat(".") {
        for (name, agg) in [
            ("sum()", Aggregate::Sum),
            ("avg()", Aggregate::Avg),
            ("count()", Aggregate::Count),
            ("max()", Aggregate::Max),
            ("min()", Aggregate::Min),
        ] {
            if cur.eat(name) {
                aggregate = Some(agg);
                break;
            }
        }
        if aggregate.is_none() {
            cur.pos = before_agg;
        }
    }
    let aggregate_cast = if aggregate.is_some() && cur.eat("::") { Some(identifier(cur)?) } else { None };
    cur.skip_ws();
    if !at_item_end(cur) {
        return cur.fail("\"->\", \"::\", \".\", \",\" or end of input");
    }
    Ok(SelectItem::Field { field: f, alias, cast, aggregate, aggregate_cast })
}

// ---- filters -------------------------------------------------------------------

/// `a.b.c->d`: the embed path `[a, b]` and the field `c->d`.
pub fn parse_tree_path(key: &str) -> Result<(EmbedPath, Field), PgrstError> {
    let mut cur = Cursor::new(key);
    let source = format!("failed to parse tree path ({key})");
    let parsed = (|| -> PResult<(EmbedPath, Field)> {
        let mut names = vec![field_name(&mut cur)?];
        while cur.eat(".") {
            names.push(field_name(&mut cur)?);
        }
        // Like v13's Parsec parser, what follows the path is ignored.
        let json_path = json_path(&mut cur)?;
        let name = names.pop().expect("one name at least");
        Ok((names, Field { name, json_path }))
    })();
    parsed.map_err(|e| e.into_error(&source))
}

/// `[not.]op.value`; `in_logic` reads values as a logic tree does (up to
/// the next `,` or `)`, or a quoted or `{...}` value).
fn parse_op_expr(v: &str, in_logic: bool) -> Result<(bool, Operation), ParseFail> {
    let mut cur = Cursor::new(v);
    let r = op_expr(&mut cur, in_logic)?;
    if !cur.at_end() {
        return cur.fail("end of input");
    }
    Ok(r)
}

fn op_expr(cur: &mut Cursor, in_logic: bool) -> PResult<(bool, Operation)> {
    let negated = cur.eat("not.");
    let start = cur.pos;
    let mut word = String::new();
    while cur.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
        word.push(cur.peek().unwrap());
        cur.pos += 1;
    }
    let single = |cur: &mut Cursor| -> PResult<String> {
        cur.expect(".")?;
        if in_logic {
            logic_value(cur)
        } else {
            let s = cur.rest();
            cur.pos = cur.chars.len();
            Ok(s)
        }
    };
    let operation = match word.as_str() {
        "in" => {
            cur.expect(".")?;
            Operation::In(list_value(cur)?)
        }
        "is" => {
            cur.expect(".")?;
            let mut val = String::new();
            while cur.peek().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') {
                val.push(cur.peek().unwrap());
                cur.pos += 1;
            }
            let is = match val.to_ascii_lowercase().as_str() {
                "null" => IsVal::Null,
                "not_null" => IsVal::NotNull,
                "true" => IsVal::True,
                "false" => IsVal::False,
                "unknown" => IsVal::Unknown,
                _ => return cur.fail("isVal: (null, not_null, true, false, unknown)"),
            };
            Operation::Is(is)
        }
        "isdistinct" => Operation::IsDistinct(single(cur)?),
        "fts" | "plfts" | "phfts" | "wfts" => {
            let op = match word.as_str() {
                "fts" => FtsOp::Fts,
                "plfts" => FtsOp::Plain,
                "phfts" => FtsOp::Phrase,
                _ => FtsOp::Websearch,
            };
            let lang = if cur.eat("(") {
                let l = identifier(cur)?;
                cur.expect(")")?;
                Some(l)
            } else {
                None
            };
            Operation::Fts(op, lang, single(cur)?)
        }
        _ => {
            let simple = match word.as_str() {
                "neq" => Some(SimpleOp::NotEqual),
                "cs" => Some(SimpleOp::Contains),
                "cd" => Some(SimpleOp::Contained),
                "ov" => Some(SimpleOp::Overlap),
                "sl" => Some(SimpleOp::StrictlyLeft),
                "sr" => Some(SimpleOp::StrictlyRight),
                "nxr" => Some(SimpleOp::NotExtendsRight),
                "nxl" => Some(SimpleOp::NotExtendsLeft),
                "adj" => Some(SimpleOp::Adjacent),
                _ => None,
            };
            if let Some(op) = simple {
                Operation::Simple(op, single(cur)?)
            } else {
                let quant = match word.as_str() {
                    "eq" => QuantOp::Equal,
                    "gte" => QuantOp::GreaterThanEqual,
                    "gt" => QuantOp::GreaterThan,
                    "lte" => QuantOp::LessThanEqual,
                    "lt" => QuantOp::LessThan,
                    "like" => QuantOp::Like,
                    "ilike" => QuantOp::ILike,
                    "match" => QuantOp::Match,
                    "imatch" => QuantOp::IMatch,
                    _ => {
                        cur.pos = start;
                        return cur.fail("operator (eq, gt, ...)");
                    }
                };
                let quantifier = if cur.eat("(any)") {
                    Some(Quantifier::Any)
                } else if cur.eat("(all)") {
                    Some(Quantifier::All)
                } else {
                    None
                };
                Operation::Quant(quant, quantifier, single(cur)?)
            }
        }
    };
    Ok((negated, operation))
}

/// `(a,"b,c",d)`: at least one element; `()` is one empty element, which
/// matches nothing.
fn list_value(cur: &mut Cursor) -> PResult<Vec<String>> {
    cur.skip_ws();
    cur.expect("(")?;
    cur.skip_ws();
    let mut items = Vec::new();
    loop {
        items.push(list_element(cur)?);
        if items.len() > MAX_ITEMS * 10 {
            return cur.fail("a shorter list");
        }
        if cur.eat(",") {
            continue;
        }
        break;
    }
    cur.skip_ws();
    cur.expect(")")?;
    cur.skip_ws();
    Ok(items)
}

/// A quoted value when nothing but `,` or `)` follows its closing quote;
/// otherwise the cursor is left where it was.
fn whole_quoted(cur: &mut Cursor) -> Option<String> {
    let start = cur.pos;
    if let Ok(Some(q)) = quoted(cur) {
        if matches!(cur.peek(), Some(',' | ')') | None) {
            return Some(q);
        }
    }
    cur.pos = start;
    None
}

/// A quoted element only when nothing but `,` or `)` follows it.
fn list_element(cur: &mut Cursor) -> PResult<String> {
    if let Some(q) = whole_quoted(cur) {
        return Ok(q);
    }
    let mut out = String::new();
    while let Some(c) = cur.peek().filter(|c| *c != ',' && *c != ')') {
        out.push(c);
        cur.pos += 1;
    }
    Ok(out)
}

fn logic_value(cur: &mut Cursor) -> PResult<String> {
    if let Some(q) = whole_quoted(cur) {
        return Ok(q);
    }
    let start = cur.pos;
    if cur.peek() == Some('{') {
        let mut out = String::new();
        while let Some(c) = cur.peek() {
            out.push(c);
            cur.pos += 1;
            if c == '}' {
                return Ok(out);
            }
            if c == '{' && out.len() > 1 {
                break;
            }
        }
        cur.pos = start;
    }
    let mut out = String::new();
    while let Some(c) = cur.peek().filter(|c| *c != ',' && *c != ')') {
        out.push(c);
        cur.pos += 1;
    }
    Ok(out)
}

/// `or=(...)`, `pages.not.and=(...)`.
fn parse_logic_param(key: &str, value: &str) -> Result<(EmbedPath, LogicTree), PgrstError> {
    let parts: Vec<&str> = key.split('.').collect();
    let op = *parts.last().expect("split yields one part at least");
    let negated = parts.contains(&"not");
    let path: EmbedPath = parts[..parts.len() - 1].iter().filter(|p| **p != "not").map(|p| p.to_string()).collect();
    let text = format!("{}{op}{value}", if negated { "not." } else { "" });
    let source = format!("failed to parse logic tree ({value})");
    let mut cur = Cursor::new(&text);
    let tree = logic_expr(&mut cur, 0).map_err(|e| e.into_error(&source))?;
    if !cur.at_end() {
        return Err(cur.fail::<()>("end of input").unwrap_err().into_error(&source));
    }
    Ok((path, tree))
}

fn logic_expr(cur: &mut Cursor, depth: usize) -> PResult<LogicTree> {
    if depth > MAX_LOGIC_DEPTH {
        return cur.fail(&format!("logic trees at most {MAX_LOGIC_DEPTH} levels deep"));
    }
    let negated = cur.eat("not.");
    let or = if cur.eat("or") {
        true
    } else if cur.eat("and") {
        false
    } else {
        return cur.fail("logic operator (and, or)");
    };
    cur.skip_ws();
    cur.expect("(")?;
    let mut children = Vec::new();
    loop {
        cur.skip_ws();
        children.push(logic_item(cur, depth + 1)?);
        if children.len() > MAX_ITEMS {
            return cur.fail("fewer terms");
        }
        cur.skip_ws();
        if cur.eat(",") {
            continue;
        }
        break;
    }
    cur.expect(")")?;
    cur.skip_ws();
    Ok(LogicTree::Expr { negated, or, children })
}

/// A filter `col.op.value`, else a nested `[not.]and(...)`/`or(...)`.
fn logic_item(cur: &mut Cursor, depth: usize) -> PResult<LogicTree> {
    let start = cur.pos;
    let as_filter = (|| -> PResult<LogicTree> {
        let f = field(cur)?;
        cur.expect(".")?;
        let (negated, operation) = op_expr(cur, true)?;
        Ok(LogicTree::Filter(Filter { field: f, negated, operation }))
    })();
    match as_filter {
        Ok(t) => Ok(t),
        Err(filter_fail) => {
            cur.pos = start;
            logic_expr(cur, depth).map_err(|e| if e.pos > filter_fail.pos { e } else { filter_fail })
        }
    }
}

// ---- order, columns ----------------------------------------------------------------

pub fn parse_order(v: &str) -> Result<Vec<OrderTerm>, PgrstError> {
    let mut cur = Cursor::new(v);
    let source = format!("failed to parse order ({v})");
    let parsed = (|| -> PResult<Vec<OrderTerm>> {
        let mut terms = Vec::new();
        loop {
            cur.skip_ws();
            terms.push(order_term(&mut cur)?);
            cur.skip_ws();
            if cur.eat(",") {
                continue;
            }
            if !cur.at_end() {
                return cur.fail("\",\" or end of input");
            }
            return Ok(terms);
        }
    })();
    parsed.map_err(|e| e.into_error(&source))
}

fn order_term(cur: &mut Cursor) -> PResult<OrderTerm> {
    let start = cur.pos;
    // `rel(col)`: a to-one embed's column.
    let relation = (|| -> PResult<Option<(String, Field)>> {
        let rel = field_name(cur)?;
        if !cur.eat("(") {
            return Ok(None);
        }
        let f = field(cur)?;
        cur.expect(")")?;
        Ok(Some((rel, f)))
    })();
    let (relation, field) = match relation {
        Ok(Some((rel, f))) => (Some(rel), f),
        _ => {
            cur.pos = start;
            (None, field(cur)?)
        }
    };
    let mut direction = None;
    let mut nulls = None;
    let mut modifiers = 0;
    while cur.peek() == Some('.') && modifiers < 2 {
        cur.pos += 1;
        modifiers += 1;
        if direction.is_none() && nulls.is_none() && cur.eat("asc") {
            direction = Some(Direction::Asc);
        } else if direction.is_none() && nulls.is_none() && cur.eat("desc") {
            direction = Some(Direction::Desc);
        } else if nulls.is_none() && cur.eat("nullsfirst") {
            nulls = Some(Nulls::First);
        } else if nulls.is_none() && cur.eat("nullslast") {
            nulls = Some(Nulls::Last);
        } else if direction.is_none() && nulls.is_none() {
            return cur.fail("\"asc\", \"desc\", \"nullsfirst\" or \"nullslast\"");
        } else {
            return cur.fail("\"nullsfirst\" or \"nullslast\"");
        }
    }
    if !(cur.at_end() || cur.peek() == Some(',')) {
        return cur.fail("\",\" or end of input");
    }
    Ok(OrderTerm { relation, field, direction, nulls })
}

/// `columns`/`on_conflict`: names, quoted or not (postgrest-js quotes them).
pub fn parse_columns(v: &str, param: &str) -> Result<Vec<String>, PgrstError> {
    let mut cur = Cursor::new(v);
    let source = format!("failed to parse {param} parameter ({v})");
    let parsed = (|| -> PResult<Vec<String>> {
        let mut names = Vec::new();
        loop {
            cur.skip_ws();
            names.push(field_name(&mut cur)?);
            if names.len() > MAX_ITEMS {
                return cur.fail("fewer columns");
            }
            cur.skip_ws();
            if cur.eat(",") {
                continue;
            }
            if !cur.at_end() {
                return cur.fail("\",\" or end of input");
            }
            return Ok(names);
        }
    })();
    parsed.map_err(|e| e.into_error(&source))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn f(name: &str) -> Field {
        Field { name: name.into(), json_path: Vec::new() }
    }

    #[test]
    fn filters_and_negation() {
        let q = parse(&pairs(&[("age", "gte.18"), ("name", "not.like.A*")]), false).unwrap();
        assert_eq!(
            q.filters,
            vec![
                (
                    vec![],
                    Filter {
                        field: f("age"),
                        negated: false,
                        operation: Operation::Quant(QuantOp::GreaterThanEqual, None, "18".into())
                    }
                ),
                (
                    vec![],
                    Filter {
                        field: f("name"),
                        negated: true,
                        operation: Operation::Quant(QuantOp::Like, None, "A*".into())
                    }
                ),
            ]
        );
    }

    #[test]
    fn filter_without_operator_is_pgrst100() {
        let e = parse(&pairs(&[("age", "18")]), false).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "PGRST100"));
        assert!(e.message.starts_with("\"failed to parse filter (18)\""), "{}", e.message);
    }

    #[test]
    fn rpc_reads_take_operatorless_params_as_arguments() {
        let q = parse(&pairs(&[("n", "5"), ("id", "eq.1")]), true).unwrap();
        assert_eq!(q.rpc_params, vec![("n".to_string(), "5".to_string())]);
        assert_eq!(q.filters.len(), 1);
    }

    #[test]
    fn quantifiers_and_full_text_search() {
        let q = parse(
            &pairs(&[("a", "like(any).{x*,y*}"), ("b", "ilike(all).{%a%}"), ("t", "fts(english).cat & dog")]),
            false,
        )
        .unwrap();
        assert_eq!(q.filters[0].1.operation, Operation::Quant(QuantOp::Like, Some(Quantifier::Any), "{x*,y*}".into()));
        assert_eq!(q.filters[1].1.operation, Operation::Quant(QuantOp::ILike, Some(Quantifier::All), "{%a%}".into()));
        assert_eq!(q.filters[2].1.operation, Operation::Fts(FtsOp::Fts, Some("english".into()), "cat & dog".into()));
        let q = parse(&pairs(&[("t", "not.wfts.a b")]), false).unwrap();
        assert!(q.filters[0].1.negated);
        assert_eq!(q.filters[0].1.operation, Operation::Fts(FtsOp::Websearch, None, "a b".into()));
    }

    #[test]
    fn filters_on_embedded_resources() {
        let q = parse(&pairs(&[("pages.components.name", "eq.x"), ("pages.order", "title.desc")]), false).unwrap();
        assert_eq!(q.filters[0].0, vec!["pages".to_string(), "components".to_string()]);
        assert_eq!(q.filters[0].1.field, f("name"));
        assert_eq!(q.order[0].0, vec!["pages".to_string()]);
    }

    #[test]
    fn logic_trees_with_quotes_arrays_and_paths() {
        let q = parse(
            &pairs(&[("or", r#"(name.eq."a,b",and(age.gt.1,age.lt.5),not.or(x.is.null),tags.cs.{a,b})"#)]),
            false,
        )
        .unwrap();
        let (path, LogicTree::Expr { or, children, negated }) = &q.logic[0] else { panic!() };
        assert!(path.is_empty() && *or && !*negated);
        assert_eq!(children.len(), 4);
        assert!(
            matches!(&children[0], LogicTree::Filter(Filter { operation: Operation::Quant(_, _, v), .. }) if v == "a,b")
        );
        assert!(matches!(&children[1], LogicTree::Expr { or: false, .. }));
        assert!(matches!(&children[2], LogicTree::Expr { or: true, negated: true, .. }));
        assert!(
            matches!(&children[3], LogicTree::Filter(Filter { operation: Operation::Simple(SimpleOp::Contains, v), .. }) if v == "{a,b}")
        );
        let q = parse(&pairs(&[("pages.not.and", "(a.eq.1,b.eq.2)")]), false).unwrap();
        assert_eq!(q.logic[0].0, vec!["pages".to_string()]);
        assert!(matches!(&q.logic[0].1, LogicTree::Expr { negated: true, or: false, .. }));
    }

    #[test]
    fn in_lists() {
        let q = parse(&pairs(&[("id", r#"in.(1,"a,b",c)"#), ("x", "in.()")]), false).unwrap();
        assert_eq!(q.filters[0].1.operation, Operation::In(vec!["1".into(), "a,b".into(), "c".into()]));
        assert_eq!(q.filters[1].1.operation, Operation::In(vec!["".into()]));
    }

    #[test]
    fn select_fields_aliases_casts_json_and_aggregates() {
        let s = parse_select("id,full:name,age::text,data->a->>b,data->0,amount.sum(),n:count()").unwrap();
        assert!(matches!(&s[1], SelectItem::Field { alias: Some(a), .. } if a == "full"));
        assert!(matches!(&s[2], SelectItem::Field { cast: Some(c), .. } if c == "text"));
        let SelectItem::Field { field, .. } = &s[3] else { panic!() };
        assert_eq!(field.name, "data");
        assert_eq!(
            field.json_path,
            vec![
                JsonStep { text: false, operand: JsonOperand::Key("a".into()) },
                JsonStep { text: true, operand: JsonOperand::Key("b".into()) }
            ]
        );
        let SelectItem::Field { field, .. } = &s[4] else { panic!() };
        assert_eq!(field.json_path[0].operand, JsonOperand::Index("0".into()));
        assert!(matches!(&s[5], SelectItem::Field { aggregate: Some(Aggregate::Sum), .. }));
        assert!(
            matches!(&s[6], SelectItem::Field { aggregate: Some(Aggregate::Count), alias: Some(a), .. } if a == "n")
        );
    }

    #[test]
    fn select_embeds_hints_joins_spreads() {
        let s = parse_select("title,director:directors!billing!inner(id,last_name),...films(t:title),roles(count),x()")
            .unwrap();
        let SelectItem::Relation { name, alias, hint, join, children } = &s[1] else { panic!("{s:?}") };
        assert_eq!(
            (name.as_str(), alias.as_deref(), hint.as_deref()),
            ("directors", Some("director"), Some("billing"))
        );
        assert_eq!(*join, Some(JoinType::Inner));
        assert_eq!(children.len(), 2);
        assert!(matches!(&s[2], SelectItem::Spread { name, .. } if name == "films"));
        let SelectItem::Relation { children, .. } = &s[3] else { panic!() };
        assert!(matches!(&children[0], SelectItem::Field { field, aggregate: None, .. } if field.name == "count"));
        assert!(matches!(&s[4], SelectItem::Relation { children, .. } if children.is_empty()));
        let s = parse_select("pages!left(*)").unwrap();
        assert!(matches!(&s[0], SelectItem::Relation { join: Some(JoinType::Left), hint: None, .. }));
    }

    #[test]
    fn select_quoted_and_dashed_names() {
        let s = parse_select(r#""my col","a\"b",some-name"#).unwrap();
        let names: Vec<String> = s
            .iter()
            .map(|i| match i {
                SelectItem::Field { field, .. } => field.name.clone(),
                _ => panic!(),
            })
            .collect();
        assert_eq!(names, vec!["my col", "a\"b", "some-name"]);
    }

    #[test]
    fn select_errors_are_pgrst100() {
        for bad in ["id,", "pages(id", "a::", "*x", "a.b"] {
            let e = parse_select(bad).unwrap_err();
            assert_eq!(e.code, "PGRST100", "{bad}");
            assert!(e.message.starts_with("\"failed to parse select parameter"), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn embedding_depth_is_bounded() {
        let deep = format!("{}id{}", "a(".repeat(MAX_EMBED_DEPTH + 1), ")".repeat(MAX_EMBED_DEPTH + 1));
        assert_eq!(parse_select(&deep).unwrap_err().code, "PGRST100");
        let ok = format!("{}id{}", "a(".repeat(MAX_EMBED_DEPTH), ")".repeat(MAX_EMBED_DEPTH));
        assert!(parse_select(&ok).is_ok());
    }

    #[test]
    fn order_terms() {
        let o = parse_order("a.desc.nullslast,b,clients(name).asc,c.nullsfirst").unwrap();
        assert_eq!(
            o[0],
            OrderTerm { relation: None, field: f("a"), direction: Some(Direction::Desc), nulls: Some(Nulls::Last) }
        );
        assert_eq!(o[1], OrderTerm { relation: None, field: f("b"), direction: None, nulls: None });
        assert_eq!(o[2].relation.as_deref(), Some("clients"));
        assert_eq!(o[3].nulls, Some(Nulls::First));
        assert!(parse_order("a.sideways").is_err());
    }

    #[test]
    fn columns_quoted_or_not() {
        assert_eq!(parse_columns(r#""title","slug""#, "columns").unwrap(), vec!["title", "slug"]);
        assert_eq!(parse_columns("title, slug", "columns").unwrap(), vec!["title", "slug"]);
        assert_eq!(parse_columns(r#""we""ird""#, "columns").unwrap_err().code, "PGRST100");
    }

    #[test]
    fn ranges_per_resource() {
        let q =
            parse(&pairs(&[("limit", "2"), ("offset", "1"), ("pages.limit", "5"), ("x.offset", "3")]), false).unwrap();
        assert_eq!(q.top_range(), Range { offset: 1, limit: Some(2) });
        assert!(q.ranges.contains(&(vec!["pages".into()], Range { offset: 0, limit: Some(5) })));
        assert!(q.ranges.contains(&(vec!["x".into()], Range { offset: 3, limit: None })));
    }
}
