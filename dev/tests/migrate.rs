//! The migration runner against a real PostgreSQL: ledger, re-runs, and
//! failures that leave nothing behind.

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
        std::fs::write(dir.join(name), sql).unwrap();
    }
    dir
}

fn add(dir: &Path, name: &str, sql: &str) {
    std::fs::write(dir.join(name), sql).unwrap();
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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
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
