//! The schema cache: tables and views with their columns, the foreign key
//! relationships between them (many-to-one, one-to-many, one-to-one and
//! many-to-many through a junction table, derived as v13's
//! `SchemaCache.hs` derives them), functions, and the time zone names.
//! Loaded before the gateway serves, and again on
//! `NOTIFY pgrst, 'reload schema'`.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use tokio_postgres::Client;

/// `(schema, name)`.
pub type Qi = (String, String);

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Column {
    pub name: String,
    /// The type requests are coerced to: built-in types without their
    /// modifier, domains as their base type (`data_type` in PostgREST).
    #[serde(rename = "type")]
    pub data_type: String,
    /// The column's own type with its modifier (`character varying(20)`).
    pub nominal_type: String,
    /// The default expression, for `Prefer: missing=default`.
    pub default: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub columns: Vec<Column>,
    /// Ordered by name, as PostgREST orders them (Location, on_conflict).
    pub primary_key: Vec<String>,
    pub is_view: bool,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cardinality {
    /// The origin holds the foreign key: `[(origin col, target col)]`.
    ManyToOne {
        constraint: String,
        columns: Vec<(String, String)>,
    },
    /// The target holds the foreign key: `[(origin col, target col)]`.
    OneToMany {
        constraint: String,
        columns: Vec<(String, String)>,
    },
    /// A many-to-one whose columns are unique (`parent`: the referenced end).
    OneToOne {
        constraint: String,
        columns: Vec<(String, String)>,
        parent: bool,
    },
    ManyToMany(Junction),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Junction {
    pub table: Qi,
    pub constraint1: String,
    pub constraint2: String,
    /// `[(origin col, junction col)]`.
    pub source_columns: Vec<(String, String)>,
    /// `[(target col, junction col)]`.
    pub target_columns: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Relationship {
    pub table: Qi,
    pub foreign_table: Qi,
    pub is_self: bool,
    pub cardinality: Cardinality,
    pub foreign_is_view: bool,
}

impl Relationship {
    pub fn is_to_one(&self) -> bool {
        matches!(self.cardinality, Cardinality::ManyToOne { .. } | Cardinality::OneToOne { .. })
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Arg {
    pub name: String,
    #[serde(rename = "type")]
    pub pg_type: String,
    pub has_default: bool,
    pub variadic: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Volatility {
    Volatile,
    Stable,
    Immutable,
}

#[derive(Debug, Clone)]
pub struct Function {
    pub schema: String,
    pub name: String,
    pub args: Vec<Arg>,
    pub returns_set: bool,
    /// A row type (table, composite or OUT parameters), else a scalar.
    pub returns_composite: bool,
    /// The relation a row type is named after (a table's name lets the
    /// result embed that table's relationships).
    pub return_type_name: String,
    pub returns_void: bool,
    pub volatility: Volatility,
}

impl Function {
    pub fn returns_scalar(&self) -> bool {
        !self.returns_set && !self.returns_composite
    }
    pub fn returns_set_of_scalar(&self) -> bool {
        self.returns_set && !self.returns_composite
    }
    pub fn returns_single(&self) -> bool {
        !self.returns_set
    }
    /// The table name a composite result is read as.
    pub fn table_name(&self) -> Option<&str> {
        self.returns_composite.then_some(self.return_type_name.as_str())
    }
}

#[derive(Debug, Default)]
pub struct SchemaCache {
    pub tables: HashMap<Qi, Table>,
    /// Keyed by the origin table.
    pub relationships: HashMap<Qi, Vec<Relationship>>,
    pub functions: HashMap<Qi, Vec<Function>>,
    pub timezones: HashSet<String>,
}

const TABLES: &str = "
SELECT n.nspname::text, c.relname::text, c.relkind IN ('v', 'm'),
  coalesce((
    SELECT json_agg(json_build_object(
      'name', a.attname::text,
      'type', CASE
                WHEN t.typtype = 'd' AND bt.typnamespace = 'pg_catalog'::regnamespace THEN format_type(t.typbasetype, NULL)
                WHEN t.typtype = 'd' THEN format_type(a.atttypid, a.atttypmod)
                WHEN t.typnamespace = 'pg_catalog'::regnamespace THEN format_type(a.atttypid, NULL)
                ELSE format_type(a.atttypid, a.atttypmod) END,
      'nominal_type', format_type(a.atttypid, a.atttypmod),
      'default', CASE
                   WHEN t.typbasetype <> 0 AND ad.adbin IS NULL THEN pg_get_expr(t.typdefaultbin, 0)
                   WHEN a.attidentity = 'd' THEN format('nextval(%L)', seq.objid::regclass)
                   WHEN a.attgenerated = 's' THEN NULL
                   ELSE pg_get_expr(ad.adbin, ad.adrelid) END
    ) ORDER BY a.attnum)
    FROM pg_attribute a
    JOIN pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    LEFT JOIN pg_depend seq ON seq.refobjid = a.attrelid AND seq.refobjsubid = a.attnum AND seq.deptype = 'i'
                           AND seq.classid = 'pg_class'::regclass
    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]')::text,
  coalesce((SELECT json_agg(a.attname::text ORDER BY a.attname)
            FROM pg_constraint k JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey)
            WHERE k.conrelid = c.oid AND k.contype = 'p'), '[]')::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY ($1) AND c.relkind IN ('r', 'v', 'm', 'f', 'p') AND NOT c.relispartition";

/// Every foreign key (all schemas: a junction may live elsewhere), with
/// whether its columns are also unique (one-to-one).
const FOREIGN_KEYS: &str = "
WITH pks_uniques AS (
  SELECT conrelid, array_agg(key ORDER BY key) AS cols
  FROM pg_constraint, LATERAL unnest(conkey) AS _(key)
  WHERE contype IN ('p', 'u') AND connamespace <> 'pg_catalog'::regnamespace
  GROUP BY oid, conrelid)
SELECT ns1.nspname::text, tab.relname::text, ns2.nspname::text, other.relname::text,
  k.conrelid = k.confrelid, k.conname::text, info.pairs::text,
  info.cols IN (SELECT cols FROM pks_uniques WHERE conrelid = k.conrelid),
  other.relkind IN ('v', 'm')
FROM pg_constraint k
JOIN LATERAL (
  SELECT json_agg(json_build_array(cols.attname::text, refs.attname::text) ORDER BY ord) AS pairs,
         array_agg(cols.attnum ORDER BY cols.attnum) AS cols
  FROM unnest(k.conkey, k.confkey) WITH ORDINALITY AS _(col, ref, ord)
  JOIN pg_attribute cols ON cols.attrelid = k.conrelid AND cols.attnum = col
  JOIN pg_attribute refs ON refs.attrelid = k.confrelid AND refs.attnum = ref
) AS info ON true
JOIN pg_namespace ns1 ON ns1.oid = k.connamespace
JOIN pg_class tab ON tab.oid = k.conrelid
JOIN pg_class other ON other.oid = k.confrelid
JOIN pg_namespace ns2 ON ns2.oid = other.relnamespace
WHERE k.contype = 'f' AND k.conparentid = 0
ORDER BY k.conrelid, k.conname";

/// Functions callable over `/rpc/`: every argument named, or one unnamed
/// argument of a type the body can be (json, jsonb, text, xml, bytea).
const FUNCTIONS: &str = "
WITH args AS (
  SELECT p.oid,
    json_agg(json_build_object('name', coalesce(x.name, ''), 'type', x.type::regtype::text,
                               'has_default', x.idx > p.pronargs - p.pronargdefaults,
                               'variadic', coalesce(x.mode = 'v', false)) ORDER BY x.idx) AS list,
    CASE count(*) - count(x.name)
      WHEN 0 THEN true
      WHEN 1 THEN (array_agg(x.type))[1] IN ('bytea'::regtype, 'json'::regtype, 'jsonb'::regtype, 'text'::regtype, 'xml'::regtype)
      ELSE false END AS callable
  FROM pg_proc p, unnest(p.proargnames, p.proargtypes, p.proargmodes) WITH ORDINALITY AS x(name, type, mode, idx)
  WHERE x.type IS NOT NULL
  GROUP BY p.oid, p.pronargs, p.pronargdefaults)
SELECT n.nspname::text, p.proname::text, p.provolatile::text, p.proretset,
  p.prorettype = 'void'::regtype,
  (t.typtype = 'c' OR coalesce(p.proargmodes::text[] && '{t,b,o}', false)),
  coalesce(comp.relname, t.typname)::text,
  coalesce(a.list, '[]')::text
FROM pg_proc p
LEFT JOIN args a ON a.oid = p.oid
JOIN pg_namespace n ON n.oid = p.pronamespace
JOIN pg_type t ON t.oid = p.prorettype
LEFT JOIN pg_class comp ON comp.oid = t.typrelid
WHERE n.nspname = ANY ($1) AND p.prokind = 'f' AND t.oid <> 'trigger'::regtype AND coalesce(a.callable, true)";

/// A foreign key as the catalogue gives it.
#[derive(Debug, Clone)]
pub struct ForeignKey {
    pub table: Qi,
    pub foreign_table: Qi,
    pub constraint: String,
    pub columns: Vec<(String, String)>,
    pub one_to_one: bool,
    pub foreign_is_view: bool,
}

impl SchemaCache {
    pub async fn load(client: &Client, schemas: &[String]) -> Result<SchemaCache, tokio_postgres::Error> {
        let mut cache = SchemaCache::default();
        for row in client.query(TABLES, &[&schemas]).await? {
            let columns: Vec<Column> = serde_json::from_str(row.get(3)).unwrap_or_default();
            let primary_key: Vec<String> = serde_json::from_str(row.get(4)).unwrap_or_default();
            cache.tables.insert((row.get(0), row.get(1)), Table { columns, primary_key, is_view: row.get(2) });
        }
        let mut keys = Vec::new();
        for row in client.query(FOREIGN_KEYS, &[]).await? {
            let pairs: Vec<(String, String)> = serde_json::from_str(row.get(6)).unwrap_or_default();
            keys.push(ForeignKey {
                table: (row.get(0), row.get(1)),
                foreign_table: (row.get(2), row.get(3)),
                constraint: row.get(5),
                columns: pairs,
                one_to_one: row.get(7),
                foreign_is_view: row.get(8),
            });
        }
        for rel in relationships(&keys, &cache.tables, schemas) {
            cache.relationships.entry(rel.table.clone()).or_default().push(rel);
        }
        for row in client.query(FUNCTIONS, &[&schemas]).await? {
            let volatility = match row.get::<_, String>(2).as_str() {
                "i" => Volatility::Immutable,
                "s" => Volatility::Stable,
                _ => Volatility::Volatile,
            };
            let f = Function {
                schema: row.get(0),
                name: row.get(1),
                volatility,
                returns_set: row.get(3),
                returns_void: row.get(4),
                returns_composite: row.get(5),
                return_type_name: row.get(6),
                args: serde_json::from_str(row.get(7)).unwrap_or_default(),
            };
            cache.functions.entry((f.schema.clone(), f.name.clone())).or_default().push(f);
        }
        for row in client.query("SELECT name FROM pg_catalog.pg_timezone_names", &[]).await? {
            cache.timezones.insert(row.get(0));
        }
        Ok(cache)
    }
}

/// Every relationship the foreign keys give, both ways, plus many-to-many
/// through junction tables whose foreign key columns are all in their
/// primary key. Only between exposed schemas, through exposed junctions.
pub fn relationships(keys: &[ForeignKey], tables: &HashMap<Qi, Table>, schemas: &[String]) -> Vec<Relationship> {
    let mut rels: Vec<Relationship> = keys
        .iter()
        .map(|k| Relationship {
            table: k.table.clone(),
            foreign_table: k.foreign_table.clone(),
            is_self: k.table == k.foreign_table,
            cardinality: if k.one_to_one {
                Cardinality::OneToOne { constraint: k.constraint.clone(), columns: k.columns.clone(), parent: false }
            } else {
                Cardinality::ManyToOne { constraint: k.constraint.clone(), columns: k.columns.clone() }
            },
            foreign_is_view: k.foreign_is_view,
        })
        .collect();
    let is_view = |qi: &Qi| tables.get(qi).is_some_and(|t| t.is_view);
    let mut many_to_many = Vec::new();
    for a in keys {
        for b in keys {
            if a.table != b.table || a.constraint == b.constraint {
                continue;
            }
            let pk: HashSet<&String> = tables.get(&a.table).map(|t| t.primary_key.iter().collect()).unwrap_or_default();
            let all_in_pk = a.columns.iter().chain(&b.columns).all(|(c, _)| pk.contains(c));
            if !all_in_pk {
                continue;
            }
            many_to_many.push(Relationship {
                table: a.foreign_table.clone(),
                foreign_table: b.foreign_table.clone(),
                is_self: a.foreign_table == b.foreign_table,
                cardinality: Cardinality::ManyToMany(Junction {
                    table: a.table.clone(),
                    constraint1: a.constraint.clone(),
                    constraint2: b.constraint.clone(),
                    source_columns: a.columns.iter().map(|(jc, c)| (c.clone(), jc.clone())).collect(),
                    target_columns: b.columns.iter().map(|(jc, c)| (c.clone(), jc.clone())).collect(),
                }),
                foreign_is_view: is_view(&b.foreign_table),
            });
        }
    }
    rels.extend(many_to_many);
    let inverse: Vec<Relationship> = rels
        .iter()
        .filter_map(|r| {
            let swap = |cols: &[(String, String)]| cols.iter().map(|(a, b)| (b.clone(), a.clone())).collect();
            let cardinality = match &r.cardinality {
                Cardinality::ManyToOne { constraint, columns } => {
                    Cardinality::OneToMany { constraint: constraint.clone(), columns: swap(columns) }
                }
                Cardinality::OneToOne { constraint, columns, parent } => {
                    Cardinality::OneToOne { constraint: constraint.clone(), columns: swap(columns), parent: !parent }
                }
                _ => return None,
            };
            Some(Relationship {
                table: r.foreign_table.clone(),
                foreign_table: r.table.clone(),
                is_self: r.is_self,
                cardinality,
                foreign_is_view: is_view(&r.table),
            })
        })
        .collect();
    rels.extend(inverse);
    rels.retain(|r| {
        let exposed = |qi: &Qi| schemas.contains(&qi.0);
        let junction_exposed = match &r.cardinality {
            Cardinality::ManyToMany(j) => exposed(&j.table),
            _ => true,
        };
        exposed(&r.table) && exposed(&r.foreign_table) && junction_exposed
    });
    rels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qi(n: &str) -> Qi {
        ("api".into(), n.into())
    }

    fn table(pk: &[&str]) -> Table {
        Table { columns: Vec::new(), primary_key: pk.iter().map(|s| s.to_string()).collect(), is_view: false }
    }

    fn fk(t: &str, ft: &str, cons: &str, cols: &[(&str, &str)], one_to_one: bool) -> ForeignKey {
        ForeignKey {
            table: qi(t),
            foreign_table: qi(ft),
            constraint: cons.into(),
            columns: cols.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            one_to_one,
            foreign_is_view: false,
        }
    }

    #[test]
    fn relationships_both_ways_and_through_junctions() {
        let tables: HashMap<Qi, Table> = [
            (qi("films"), table(&["id"])),
            (qi("directors"), table(&["id"])),
            (qi("actors"), table(&["id"])),
            (qi("roles"), table(&["actor_id", "film_id"])),
            (qi("technical_specs"), table(&["film_id"])),
        ]
        .into_iter()
        .collect();
        let keys = vec![
            fk("films", "directors", "films_director_id_fkey", &[("director_id", "id")], false),
            fk("roles", "films", "roles_film_id_fkey", &[("film_id", "id")], false),
            fk("roles", "actors", "roles_actor_id_fkey", &[("actor_id", "id")], false),
            fk("technical_specs", "films", "technical_specs_film_id_fkey", &[("film_id", "id")], true),
        ];
        let rels = relationships(&keys, &tables, &["api".to_string()]);
        let from = |t: &str, ft: &str| -> Vec<&Relationship> {
            rels.iter().filter(|r| r.table == qi(t) && r.foreign_table == qi(ft)).collect()
        };
        assert!(matches!(from("films", "directors")[0].cardinality, Cardinality::ManyToOne { .. }));
        let o2m = &from("directors", "films")[0].cardinality;
        assert_eq!(
            *o2m,
            Cardinality::OneToMany {
                constraint: "films_director_id_fkey".into(),
                columns: vec![("id".into(), "director_id".into())]
            }
        );
        let Cardinality::ManyToMany(j) = &from("films", "actors")[0].cardinality else { panic!("{rels:?}") };
        assert_eq!(j.table, qi("roles"));
        assert_eq!(j.source_columns, vec![("id".to_string(), "film_id".to_string())]);
        assert_eq!(j.target_columns, vec![("id".to_string(), "actor_id".to_string())]);
        assert!(matches!(from("films", "technical_specs")[0].cardinality, Cardinality::OneToOne { parent: true, .. }));
        assert!(from("films", "technical_specs")[0].is_to_one());
        assert!(!from("directors", "films")[0].is_to_one());
        assert!(rels.iter().all(|r| r.table.0 == "api"));
        let hidden = relationships(&keys, &tables, &["other".to_string()]);
        assert!(hidden.is_empty(), "unexposed schemas have no relationships");
    }
}
