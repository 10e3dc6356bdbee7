//! The schema cache: tables, views and functions of the exposed schemas,
//! loaded at start and on `NOTIFY pgrst, 'reload schema'`.

use std::collections::HashMap;

use serde::Deserialize;
use tokio_postgres::Client;

#[derive(Debug, Clone)]
pub struct Relation {
    pub columns: Vec<String>,
    pub primary_key: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Arg {
    pub name: String,
    #[serde(rename = "type")]
    pub pg_type: String,
    pub has_default: bool,
}

#[derive(Debug, Clone)]
pub struct Function {
    pub args: Vec<Arg>,
    pub returns_set: bool,
    /// The return type's columns when it is a row type (table, composite
    /// or OUT parameters); `None` for a scalar.
    pub row_columns: Option<Vec<String>>,
    pub returns_void: bool,
    pub volatile: bool,
}

#[derive(Debug, Default)]
pub struct SchemaCache {
    pub relations: HashMap<(String, String), Relation>,
    pub functions: HashMap<(String, String), Vec<Function>>,
}

const RELATIONS: &str = "
SELECT n.nspname::text, c.relname::text,
  coalesce((SELECT json_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]')::text,
  coalesce((SELECT json_agg(a.attname::text ORDER BY array_position(i.indkey::int2[], a.attnum))
            FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
            WHERE i.indrelid = c.oid AND i.indisprimary), '[]')::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY ($1) AND c.relkind IN ('r', 'v', 'm', 'f', 'p')";

const FUNCTIONS: &str = "
SELECT n.nspname::text, p.proname::text, p.provolatile = 'v', p.proretset, p.prorettype = 'void'::regtype,
  CASE WHEN rt.typrelid <> 0 THEN
         (SELECT json_agg(a.attname::text ORDER BY a.attnum)::text FROM pg_attribute a
          WHERE a.attrelid = rt.typrelid AND a.attnum > 0 AND NOT a.attisdropped)
       WHEN p.proargmodes IS NOT NULL AND p.prorettype = 'record'::regtype THEN
         (SELECT json_agg(x.name ORDER BY x.ord)::text
          FROM unnest(p.proargnames, p.proargmodes) WITH ORDINALITY AS x(name, mode, ord)
          WHERE x.mode IN ('o', 'b', 't'))
  END,
  coalesce((
    SELECT json_agg(json_build_object('name', coalesce(a.name, ''), 'type', format_type(a.type, NULL),
                                      'has_default', a.pos > p.pronargs - p.pronargdefaults) ORDER BY a.pos)
    FROM (SELECT x.name, x.type, row_number() OVER (ORDER BY x.ord) AS pos
          FROM unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]),
                      coalesce(p.proargmodes, array_fill('i'::\"char\", ARRAY[p.pronargs::int])),
                      coalesce(p.proargnames, array_fill(''::text, ARRAY[coalesce(array_length(p.proallargtypes, 1), p.pronargs::int)])))
               WITH ORDINALITY AS x(type, mode, name, ord)
          WHERE x.mode IN ('i', 'b', 'v')) a), '[]')::text
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
JOIN pg_type rt ON rt.oid = p.prorettype
WHERE n.nspname = ANY ($1) AND p.prokind = 'f'";

impl SchemaCache {
    pub async fn load(client: &Client, schemas: &[String]) -> Result<SchemaCache, tokio_postgres::Error> {
        let mut cache = SchemaCache::default();
        for row in client.query(RELATIONS, &[&schemas]).await? {
            let columns: Vec<String> = serde_json::from_str(row.get(2)).unwrap_or_default();
            let primary_key: Vec<String> = serde_json::from_str(row.get(3)).unwrap_or_default();
            cache.relations.insert((row.get(0), row.get(1)), Relation { columns, primary_key });
        }
        for row in client.query(FUNCTIONS, &[&schemas]).await? {
            let row_columns: Option<String> = row.get(5);
            let args: Vec<Arg> = serde_json::from_str(row.get(6)).unwrap_or_default();
            let f = Function {
                volatile: row.get(2),
                returns_set: row.get(3),
                returns_void: row.get(4),
                row_columns: row_columns.and_then(|c| serde_json::from_str(&c).ok()),
                args,
            };
            cache.functions.entry((row.get(0), row.get(1))).or_default().push(f);
        }
        Ok(cache)
    }
}

impl Function {
    /// Whether `names` (the arguments given) fit this function: every given
    /// name is an argument, every argument without a default is given.
    pub fn accepts(&self, names: &[&str]) -> bool {
        names.iter().all(|n| self.args.iter().any(|a| a.name == *n))
            && self.args.iter().all(|a| a.has_default || names.contains(&a.name.as_str()))
    }

    /// One unnamed json/jsonb parameter: the whole body is the argument.
    pub fn takes_body(&self) -> bool {
        self.args.len() == 1
            && self.args[0].name.is_empty()
            && matches!(self.args[0].pg_type.as_str(), "json" | "jsonb")
    }
}
