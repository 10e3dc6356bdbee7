//! The migration runner against a real PostgreSQL: ledger, re-runs,
//! failures that leave nothing behind, repeatable files, and the rule that
//! each function has one current definition in `migrations/functions/`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cogo_dev::migrate::{self, MigrateError};
use cogo_dev::pg_cluster::{PgCluster, PgOptions};
use cogo_dev::process::{on_keeper_thread, scratch_dir};
use tokio_postgres::NoTls;

fn cluster() -> &'static PgCluster {
    static PG: OnceLock<PgCluster> = OnceLock::new();
    PG.get_or_init(|| {
        let dir = scratch_dir(Path::new(env!("CARGO_TARGET_TMPDIR")), "migrate-pg").expect("scratch folder");
        on_keeper_thread(move || PgCluster::start(PgOptions { dir, port: None, durable: false }))
            .expect("start PostgreSQL")
    })
}

/// A fresh database per test, so tests do not see each other's ledgers.
async fn fresh_db(name: &str) -> String {
    let admin = cluster().uri("postgres");
    let (client, conn) = tokio_postgres::connect(&admin, NoTls).await.unwrap();
    tokio::spawn(conn);
    client.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await.unwrap();
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    format!("{}/{name}", admin.rsplit_once('/').expect("uri has a database").0)
}

async fn query_strings(uri: &str, sql: &str) -> Vec<String> {
    let (client, conn) = tokio_postgres::connect(uri, NoTls).await.unwrap();
    tokio::spawn(conn);
    client.query(sql, &[]).await.unwrap().iter().map(|r| r.get::<_, String>(0)).collect()
}

fn dir_with(files: &[(&str, &str)]) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = scratch_dir(Path::new(env!("CARGO_TARGET_TMPDIR")), &format!("migrations{n}")).unwrap();
    for (name, sql) in files {
        add(&dir, name, sql);
    }
    dir
}

fn add(dir: &Path, name: &str, sql: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, sql).unwrap();
}

fn project_migrations() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations")
}

/// A copy of the project's migrations that a test may edit.
fn copy_of_project_migrations() -> PathBuf {
    let dir = dir_with(&[]);
    for m in migrate::load(&project_migrations())
        .unwrap()
        .iter()
        .chain(&migrate::load_repeatable(&project_migrations()).unwrap())
    {
        add(&dir, &m.name, &m.sql);
    }
    dir
}

#[tokio::test]
async fn applies_in_name_order_once() {
    let db = fresh_db("m_order").await;
    let dir = dir_with(&[
        ("0002_b.sql", "INSERT INTO t VALUES ('second');"),
        ("0001_a.sql", "CREATE TABLE t (v text); INSERT INTO t VALUES ('first');"),
        ("README.md", "not a migration"),
    ]);
    assert_eq!(migrate::run(&db, &dir).await.unwrap(), vec!["0001_a.sql", "0002_b.sql"]);
    assert_eq!(migrate::run(&db, &dir).await.unwrap(), Vec::<String>::new(), "a re-run is a no-op");
    assert_eq!(query_strings(&db, "SELECT v FROM t ORDER BY v").await, vec!["first", "second"]);
    assert_eq!(
        query_strings(&db, "SELECT name FROM cogo_migrations.ledger ORDER BY name").await,
        vec!["0001_a.sql", "0002_b.sql"]
    );
}

#[tokio::test]
async fn a_failed_migration_leaves_nothing_half_applied() {
    let db = fresh_db("m_fail").await;
    let dir = dir_with(&[("0001_ok.sql", "CREATE TABLE ok_table (id int);")]);
    migrate::run(&db, &dir).await.unwrap();
    add(&dir, "0002_bad.sql", "CREATE TABLE half (id int); INSERT INTO half VALUES (1); SELECT no_such_function();");
    add(&dir, "0003_later.sql", "CREATE TABLE later (id int);");
    let err = migrate::run(&db, &dir).await.unwrap_err();
    match &err {
        MigrateError::Failed { name, error } => {
            assert_eq!(name, "0002_bad.sql");
            assert!(error.contains("no_such_function"), "{error}");
        }
        other => panic!("expected Failed, got {other}"),
    }
    let tables = query_strings(
        &db,
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .await;
    assert_eq!(tables, vec!["ok_table"], "neither the failed file nor any later one left anything");
    assert_eq!(query_strings(&db, "SELECT name FROM cogo_migrations.ledger").await, vec!["0001_ok.sql"]);

    // Fixed, it applies together with the ones after it.
    add(&dir, "0002_bad.sql", "CREATE TABLE half (id int);");
    assert_eq!(migrate::run(&db, &dir).await.unwrap(), vec!["0002_bad.sql", "0003_later.sql"]);
}

#[tokio::test]
async fn editing_an_applied_migration_is_refused() {
    let db = fresh_db("m_edit").await;
    let dir = dir_with(&[("0001_a.sql", "CREATE TABLE a (id int);")]);
    migrate::run(&db, &dir).await.unwrap();
    add(&dir, "0001_a.sql", "CREATE TABLE a (id bigint);");
    let err = migrate::run(&db, &dir).await.unwrap_err();
    assert!(matches!(&err, MigrateError::Changed { name } if name == "0001_a.sql"), "{err}");
    assert!(err.to_string().contains("add a new migration instead"));
}

#[tokio::test]
async fn concurrent_runners_apply_each_file_once() {
    let db = fresh_db("m_race").await;
    let dir =
        dir_with(&[("0001_a.sql", "CREATE TABLE raced (id int);"), ("0002_b.sql", "INSERT INTO raced VALUES (1);")]);
    let (a, b) = tokio::join!(migrate::run(&db, &dir), migrate::run(&db, &dir));
    let mut applied = a.unwrap();
    applied.extend(b.unwrap());
    applied.sort();
    assert_eq!(applied, vec!["0001_a.sql", "0002_b.sql"]);
    assert_eq!(query_strings(&db, "SELECT count(*)::text FROM raced").await, vec!["1"]);
}

#[tokio::test]
async fn the_project_migrations_apply_and_create_the_roles() {
    let db = fresh_db("m_project").await;
    let dir = project_migrations();
    let applied = migrate::run(&db, &dir).await.unwrap();
    assert_eq!(applied.first().map(String::as_str), Some("0001_roles_and_schema.sql"));
    let roles = query_strings(
        &db,
        "SELECT rolname::text FROM pg_roles \
         WHERE rolname IN ('anon','authenticated','service_role','worker','authenticator') ORDER BY 1",
    )
    .await;
    assert_eq!(roles, vec!["anon", "authenticated", "authenticator", "service_role", "worker"]);
    assert_eq!(query_strings(&db, "SELECT cogo.health()").await, vec!["ok"]);
    assert!(migrate::run(&db, &dir).await.unwrap().is_empty());
}

#[tokio::test]
async fn repeatable_files_apply_after_the_versioned_ones_and_again_when_changed() {
    let db = fresh_db("m_repeat").await;
    let dir = dir_with(&[
        ("functions/b.sql", "CREATE OR REPLACE FUNCTION b() RETURNS text LANGUAGE sql AS $$ SELECT v FROM t $$;"),
        ("functions/a.sql", "CREATE OR REPLACE FUNCTION a() RETURNS text LANGUAGE sql AS $$ SELECT 'one' $$;"),
        ("0001_t.sql", "CREATE TABLE t (v text); INSERT INTO t VALUES ('from t');"),
    ]);
    assert_eq!(migrate::run(&db, &dir).await.unwrap(), vec!["0001_t.sql", "functions/a.sql", "functions/b.sql"]);
    assert_eq!(migrate::run(&db, &dir).await.unwrap(), Vec::<String>::new(), "unchanged files are skipped");
    assert_eq!(query_strings(&db, "SELECT b()").await, vec!["from t"]);

    add(&dir, "functions/a.sql", "CREATE OR REPLACE FUNCTION a() RETURNS text LANGUAGE sql AS $$ SELECT 'two' $$;");
    assert_eq!(migrate::run(&db, &dir).await.unwrap(), vec!["functions/a.sql"]);
    assert_eq!(query_strings(&db, "SELECT a()").await, vec!["two"]);
    let sha = migrate::load_repeatable(&dir).unwrap()[0].sha256.clone();
    assert_eq!(
        query_strings(&db, "SELECT sha256 FROM cogo_migrations.repeatable WHERE name = 'functions/a.sql'").await,
        vec![sha]
    );
    assert_eq!(
        query_strings(&db, "SELECT name FROM cogo_migrations.ledger").await,
        vec!["0001_t.sql"],
        "repeatable files stay out of the versioned ledger"
    );
}

#[tokio::test]
async fn a_failed_repeatable_file_is_rolled_back_and_named() {
    let db = fresh_db("m_repeat_fail").await;
    let good = "CREATE OR REPLACE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT 'good' $$;";
    let dir = dir_with(&[("0001_a.sql", "CREATE TABLE a (id int);"), ("functions/f.sql", good)]);
    migrate::run(&db, &dir).await.unwrap();
    add(
        &dir,
        "functions/f.sql",
        "CREATE OR REPLACE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT 'bad' $$; SELECT no_such_function();",
    );
    let err = migrate::run(&db, &dir).await.unwrap_err();
    assert!(matches!(&err, MigrateError::Failed { name, .. } if name == "functions/f.sql"), "{err}");
    assert_eq!(query_strings(&db, "SELECT f()").await, vec!["good"], "the previous definition stays");
    add(&dir, "functions/f.sql", good);
    assert_eq!(migrate::run(&db, &dir).await.unwrap(), Vec::<String>::new(), "the ledger kept the good checksum");
}

/// Every function of `cogo` and `public` with its definition and grants, and
/// every trigger, as the catalogue renders them.
async fn definitions(uri: &str) -> Vec<String> {
    let mut all = query_strings(
        uri,
        "SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')\n'
                || pg_get_functiondef(p.oid) || 'grants ' || coalesce(p.proacl::text, 'default')
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname IN ('cogo', 'public') ORDER BY 1",
    )
    .await;
    all.extend(
        query_strings(
            uri,
            "SELECT c.relname || ': ' || pg_get_triggerdef(t.oid) || ' enabled ' || t.tgenabled::text
             FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE NOT t.tgisinternal AND n.nspname IN ('cogo', 'public') ORDER BY 1",
        )
        .await,
    );
    all
}

/// Applies the versioned files as the runner did before repeatable files
/// existed: each in a transaction with its row in the ledger, nothing more.
async fn apply_versioned_the_old_way(uri: &str, dir: &Path) {
    let (mut client, conn) = tokio_postgres::connect(uri, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(
            "CREATE SCHEMA cogo_migrations;
             CREATE TABLE cogo_migrations.ledger (
               name text PRIMARY KEY, sha256 text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .unwrap();
    for m in migrate::load(dir).unwrap() {
        let tx = client.transaction().await.unwrap();
        tx.batch_execute(&m.sql).await.unwrap_or_else(|e| panic!("{}: {}", m.name, migrate::describe(&e)));
        tx.execute("INSERT INTO cogo_migrations.ledger (name, sha256) VALUES ($1, $2)", &[&m.name, &m.sha256])
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
}

#[tokio::test]
async fn a_deployed_database_converges_with_a_fresh_one() {
    let dir = project_migrations();
    let versioned: Vec<String> = migrate::load(&dir).unwrap().into_iter().map(|m| m.name).collect();
    let repeatable: Vec<String> = migrate::load_repeatable(&dir).unwrap().into_iter().map(|m| m.name).collect();
    assert!(!repeatable.is_empty());

    let fresh = fresh_db("m_converge_fresh").await;
    let applied = migrate::run(&fresh, &dir).await.unwrap();
    assert_eq!(applied, [versioned.clone(), repeatable.clone()].concat(), "versioned files first, then functions/");

    let deployed = fresh_db("m_converge_deployed").await;
    apply_versioned_the_old_way(&deployed, &dir).await;
    assert_eq!(migrate::run(&deployed, &dir).await.unwrap(), repeatable, "only the repeatable files are new");

    let expected = definitions(&fresh).await;
    assert!(expected.iter().any(|d| d.starts_with("cogo.enqueue(") && d.contains("p_idempotency_scope")));
    assert_eq!(definitions(&deployed).await, expected);

    for db in [&fresh, &deployed] {
        assert!(migrate::run(db, &dir).await.unwrap().is_empty(), "a re-run applies nothing");
        assert_eq!(definitions(db).await, expected, "and changes nothing");
    }
}

#[tokio::test]
async fn editing_a_function_file_reapplies_only_that_file() {
    let db = fresh_db("m_edit_function").await;
    let dir = copy_of_project_migrations();
    migrate::run(&db, &dir).await.unwrap();
    let health = dir.join("functions/health.sql");
    let sql = std::fs::read_to_string(&health).unwrap();
    add(&dir, "functions/health.sql", &sql.replace("SELECT 'ok'::text", "SELECT 'still ok'::text"));
    assert_eq!(migrate::run(&db, &dir).await.unwrap(), vec!["functions/health.sql"]);
    assert_eq!(query_strings(&db, "SELECT cogo.health()").await, vec!["still ok"]);
    assert!(migrate::run(&db, &dir).await.unwrap().is_empty());
}

/// What a SQL text creates or drops, in order: (`created`, kind, name), with
/// kind `function` or `trigger` and the name as written (`cogo.enqueue`).
fn statements(sql: &str) -> Vec<(bool, &'static str, String)> {
    let code: String = sql.lines().map(|l| l.split("--").next().unwrap_or_default().to_lowercase() + "\n").collect();
    let words: Vec<&str> = code.split_whitespace().collect();
    let mut found = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let created = match *w {
            "create" => true,
            "drop" => false,
            _ => continue,
        };
        let mut rest = words[i + 1..].iter().copied();
        let mut kind = rest.next();
        if created && kind == Some("or") {
            rest.next(); // replace
            kind = rest.next();
        }
        let kind = match kind {
            Some("function") => "function",
            Some("trigger") => "trigger",
            _ => continue,
        };
        let mut name = rest.next().unwrap_or_default();
        if !created && name == "if" {
            rest.next(); // exists
            name = rest.next().unwrap_or_default();
        }
        found.push((created, kind, name.split('(').next().unwrap_or_default().to_string()));
    }
    found
}

#[test]
fn every_function_and_trigger_has_one_current_definition() {
    let dir = project_migrations();
    // What the versioned files leave defined: dropped for good means dropped
    // and not created again.
    let mut live = std::collections::BTreeSet::new();
    for m in migrate::load(&dir).unwrap() {
        let found = statements(&m.sql);
        if m.name.as_str() >= "0012" {
            assert!(
                found.iter().all(|(created, _, _)| !created),
                "{} creates a function or trigger: those live in migrations/functions/ (migrations/README.md)",
                m.name
            );
        }
        for (created, kind, name) in found {
            if created {
                live.insert((kind, name));
            } else {
                live.remove(&(kind, name));
            }
        }
    }
    let mut defined = std::collections::BTreeMap::new();
    for m in migrate::load_repeatable(&dir).unwrap() {
        for (created, kind, name) in statements(&m.sql) {
            if created {
                defined.entry((kind, name)).or_insert_with(Vec::new).push(m.name.clone());
            }
        }
    }
    assert!(
        live.contains(&("function", "cogo.enqueue".into())) && live.contains(&("trigger", "jobs_count_deleted".into())),
        "the parser finds the history's definitions: {live:?}"
    );
    for key in &live {
        assert!(defined.contains_key(key), "{key:?} has no definition in migrations/functions/");
    }
    for (key, files) in &defined {
        assert_eq!(files.len(), 1, "{key:?} is defined more than once: {files:?}");
    }
}
