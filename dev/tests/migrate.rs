//! The migration runner against a real PostgreSQL: ledger, re-runs,
//! failures that leave nothing behind, repeatable files, the baseline that
//! replaces `0001`..`0011` (recorded without running where they were
//! applied), and the rule that each function has one current definition in
//! `migrations/functions/`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cogo_dev::migrate::{self, MigrateError};
use cogo_dev::pg_cluster::{PgCluster, PgOptions};
use cogo_dev::process::{on_keeper_thread, scratch_dir};
use sha2::Digest;
use tokio_postgres::NoTls;

fn cluster() -> &'static PgCluster {
    static PG: OnceLock<PgCluster> = OnceLock::new();
    PG.get_or_init(|| {
        let dir = scratch_dir(Path::new(env!("CARGO_TARGET_TMPDIR")), "migrate-pg").expect("scratch folder");
        on_keeper_thread(move || PgCluster::start(PgOptions { dir, port: None, durable: false }))
            .expect("start PostgreSQL")
    })
}

/// Held by the tests that apply the project's migrations: roles belong to
/// the cluster, and two databases creating the same missing role at once
/// collide.
async fn project_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
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
    let _serial = project_lock().await;
    let db = fresh_db("m_project").await;
    let dir = project_migrations();
    let applied = migrate::run(&db, &dir).await.unwrap();
    assert_eq!(applied.first().map(String::as_str), Some("0001_baseline.sql"));
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
async fn an_amended_file_is_recorded_with_its_new_checksum_where_the_old_one_ran() {
    let db = fresh_db("m_amended").await;
    let old = "CREATE TABLE amended_a (id int);";
    let dir = dir_with(&[("0001_a.sql", old)]);
    migrate::run(&db, &dir).await.unwrap();
    let old_sha: String = sha2::Sha256::digest(old.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    add(&dir, "0001_a.sql", &format!("-- amends: {old_sha}\nCREATE TABLE IF NOT EXISTS amended_a (id int);"));
    assert_eq!(migrate::run(&db, &dir).await.unwrap(), Vec::<String>::new(), "recorded, not run again");
    let recorded = query_strings(&db, "SELECT sha256 FROM cogo_migrations.ledger WHERE name = '0001_a.sql'").await;
    assert_ne!(recorded, vec![old_sha], "the ledger holds the new checksum");
    add(&dir, "0001_a.sql", "CREATE TABLE amended_a (id bigint);");
    assert!(matches!(migrate::run(&db, &dir).await, Err(MigrateError::Changed { .. })), "an edit that does not say so");
}

#[tokio::test]
async fn a_project_that_already_has_the_creatego_tables_keeps_them_and_their_rows() {
    let _serial = project_lock().await;
    let db = fresh_db("m_existing_public").await;
    let (client, conn) = tokio_postgres::connect(&db, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(
            "CREATE TABLE public.projects (id uuid PRIMARY KEY, name text);
             CREATE TABLE public.pages (project_id uuid NOT NULL REFERENCES public.projects (id), page_id integer NOT NULL,
                                        name text, PRIMARY KEY (project_id, page_id));
             CREATE TABLE public.components (project_id uuid NOT NULL, page_id integer NOT NULL, id text NOT NULL,
                                             type text NOT NULL, index_in_page integer NOT NULL,
                                             PRIMARY KEY (project_id, page_id, id));
             INSERT INTO public.projects VALUES ('00000000-0000-4000-8000-0000000000aa', 'the IDE''s');",
        )
        .await
        .unwrap();
    migrate::run(&db, &project_migrations()).await.unwrap();
    assert_eq!(query_strings(&db, "SELECT name FROM public.projects").await, vec!["the IDE's"]);
    let columns = query_strings(
        &db,
        "SELECT column_name::text FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = 'pages' ORDER BY ordinal_position",
    )
    .await;
    assert_eq!(columns, vec!["project_id", "page_id", "name", "figma_id", "updated_at"]);
}

#[tokio::test]
async fn a_dry_run_checks_every_file_against_the_database_and_changes_nothing() {
    let _serial = project_lock().await;
    let db = fresh_db("m_dry_run").await;
    let dir = project_migrations();
    let would = migrate::dry_run(&db, &dir).await.unwrap();
    assert_eq!(would.first().map(String::as_str), Some("0001_baseline.sql"));
    let schemas = "SELECT nspname::text FROM pg_namespace WHERE nspname IN ('cogo', 'cogo_migrations') ORDER BY 1";
    assert_eq!(query_strings(&db, schemas).await, Vec::<String>::new(), "nothing left behind");
    assert_eq!(migrate::run(&db, &dir).await.unwrap(), would, "the run applies what the dry run named");
    assert!(migrate::dry_run(&db, &dir).await.unwrap().is_empty());

    let broken = dir_with(&[("0001_a.sql", "CREATE TABLE dry_a (id int);"), ("0002_b.sql", "SELECT no_such_fn();")]);
    let other = fresh_db("m_dry_run_broken").await;
    match migrate::dry_run(&other, &broken).await {
        Err(MigrateError::Failed { name, .. }) => assert_eq!(name, "0002_b.sql"),
        other => panic!("expected the failing file to be named, got {other:?}"),
    }
    let tables = "SELECT tablename::text FROM pg_tables WHERE tablename = 'dry_a'";
    assert_eq!(query_strings(&other, tables).await, Vec::<String>::new());
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

/// Every function of `cogo` and `public` with its definition and grants
/// (sorted: the order of GRANTs does not change who may call), and every
/// trigger, as the catalogue renders them.
async fn definitions(uri: &str) -> Vec<String> {
    let mut all = query_strings(
        uri,
        "SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')\n'
                || pg_get_functiondef(p.oid) || 'grants '
                || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(p.proacl) a), 'default')
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

/// The files the baseline replaced, as they were applied, with the commit
/// that last had each: read from the repository's history, so the tree does
/// not hold them twice.
const REPLACED: [(&str, &str); 11] = [
    ("53298be", "0001_roles_and_schema.sql"),
    ("53298be", "0002_jobs.sql"),
    ("53298be", "0003_job_functions.sql"),
    ("53298be", "0004_idempotency.sql"),
    ("53298be", "0005_row_level_security.sql"),
    ("53298be", "0006_read_api.sql"),
    ("53298be", "0007_artifacts.sql"),
    ("53298be", "0008_job_event_streams.sql"),
    ("53298be", "0009_project_updates.sql"),
    ("aa003e4", "0010_tenant_scopes.sql"),
    ("aa003e4", "0011_project_owners.sql"),
];

/// The commit before the squash, whose `migrations/functions/` a database
/// migrated by the previous release has applied.
const BEFORE_SQUASH: &str = "aa003e4";

/// `path` as of `commit`, or None (with a note) when the history is not
/// available, as in a source tarball or a shallow clone.
/// Whether `commit` has `path` (false also without git: then `from_history`
/// of the replaced files has already skipped the test).
fn in_history(commit: &str, path: &str) -> bool {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["cat-file", "-e", &format!("{commit}:{path}")])
        .output();
    out.is_ok_and(|out| out.status.success())
}

fn from_history(commit: &str, path: &str) -> Option<String> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out =
        std::process::Command::new("git").arg("-C").arg(&repo).args(["show", &format!("{commit}:{path}")]).output();
    match out {
        Ok(out) if out.status.success() => Some(String::from_utf8(out.stdout).expect("utf-8 migration")),
        Ok(out) => {
            eprintln!(
                "skipped: no {commit}:{path} in the git history ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            None
        }
        Err(e) => {
            eprintln!("skipped: git is not available ({e})");
            None
        }
    }
}

/// The replaced files in order, as (name, sql); None without the history.
fn replaced_files() -> Option<Vec<(String, String)>> {
    REPLACED
        .iter()
        .map(|(commit, name)| Some((name.to_string(), from_history(commit, &format!("migrations/{name}"))?)))
        .collect()
}

/// A folder with the migrations of the release before the squash: the
/// replaced files and that release's `functions/`.
fn migrations_before_squash() -> Option<PathBuf> {
    let dir = dir_with(&[]);
    for (name, sql) in replaced_files()? {
        add(&dir, &name, &sql);
    }
    for m in migrate::load_repeatable(&project_migrations()).unwrap() {
        let path = format!("migrations/{}", m.name);
        // A file added since that release: it had none.
        if in_history(BEFORE_SQUASH, &path) {
            add(&dir, &m.name, &from_history(BEFORE_SQUASH, &path)?);
        }
    }
    Some(dir)
}

#[test]
fn the_baseline_names_every_replaced_file() {
    let versioned = migrate::load(&project_migrations()).unwrap();
    let baseline = &versioned[0];
    assert_eq!(baseline.name, "0001_baseline.sql", "the baseline sorts first");
    let names: Vec<&str> = REPLACED.iter().map(|(_, name)| *name).collect();
    assert_eq!(baseline.replaces, names);
    assert!(versioned.iter().skip(1).all(|m| m.replaces.is_empty()), "one baseline");
    assert!(versioned.iter().all(|m| !names.contains(&m.name.as_str())), "the replaced files are gone");
}

/// Applies versioned files as the runner did before repeatable files
/// existed: each in a transaction with its row in the ledger, nothing more.
async fn apply_versioned_the_old_way(uri: &str, files: &[(String, String)]) {
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
    for (name, sql) in files {
        let sha256: String = sha2::Sha256::digest(sql.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        let tx = client.transaction().await.unwrap();
        tx.batch_execute(sql).await.unwrap_or_else(|e| panic!("{name}: {}", migrate::describe(&e)));
        tx.execute("INSERT INTO cogo_migrations.ledger (name, sha256) VALUES ($1, $2)", &[name, &sha256])
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
}

/// `pg_dump --schema-only` of schemas cogo and public: tables, indexes,
/// policies, functions, triggers, grants and default privileges. Blocks (and
/// grants, one by one) are sorted, so only what exists counts, not the order
/// pg_dump breaks ties in or the order privileges were granted in.
fn schema_dump(uri: &str) -> Vec<String> {
    // Beside the server binary (`bin_dir` may be a folder of links to some).
    let bin = cogo_dev::pg_cluster::bin_dir().expect("PostgreSQL binaries");
    let server = std::fs::canonicalize(bin.join("postgres")).unwrap_or_else(|_| bin.join("postgres"));
    let pg_dump = [bin.join("pg_dump"), server.with_file_name("pg_dump")]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| "pg_dump".into());
    let out = std::process::Command::new(pg_dump)
        .args(["--schema-only", "--schema=cogo", "--schema=public", "--no-tablespaces", "--dbname", uri])
        .output()
        .expect("run pg_dump");
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut blocks = Vec::new();
    for block in text.split("\n\n") {
        // Comments name dump ids; \restrict keys are random per dump; and a
        // GRANT stands alone, as the order of grants does not matter.
        let mut kept = Vec::new();
        for line in block.lines().filter(|l| !l.starts_with("--") && !l.starts_with("\\")) {
            if line.starts_with("GRANT ") || line.starts_with("REVOKE ") {
                blocks.push(line.to_string());
            } else {
                kept.push(line);
            }
        }
        let kept = kept.join("\n").trim().to_string();
        if !kept.is_empty() {
            blocks.push(kept);
        }
    }
    blocks.sort();
    blocks
}

/// A database as a fresh install leaves it, with what it was applied.
async fn fresh_install(name: &str) -> (String, Vec<String>) {
    let db = fresh_db(name).await;
    let applied = migrate::run(&db, &project_migrations()).await.unwrap();
    (db, applied)
}

/// Both databases have the same schema and definitions, and a re-run of
/// the runner applies and changes nothing on either.
async fn assert_same_schema(fresh: &str, upgraded: &str) {
    let expected = definitions(fresh).await;
    assert!(expected.iter().any(|d| d.starts_with("cogo.enqueue(") && d.contains("p_idempotency_scope")));
    assert!(expected.iter().any(|d| d.starts_with("jobs: CREATE TRIGGER jobs_count_deleted")));
    similar_asserts(&definitions(upgraded).await, &expected);
    let dump = schema_dump(fresh);
    assert!(dump.iter().any(|b| b.starts_with("CREATE POLICY jobs_owner_reads")), "{dump:?}");
    assert!(dump.iter().any(|b| b.contains("idempotency_scope text DEFAULT ''::text NOT NULL")), "{dump:?}");
    similar_asserts(&schema_dump(upgraded), &dump);
    for db in [fresh, upgraded] {
        assert!(migrate::run(db, &project_migrations()).await.unwrap().is_empty(), "a re-run applies nothing");
        similar_asserts(&definitions(db).await, &expected);
        similar_asserts(&schema_dump(db), &dump);
    }
}

/// assert_eq on dumps, naming the blocks that differ rather than printing both.
fn similar_asserts(got: &[String], expected: &[String]) {
    let what = "schemas";
    let only_got: Vec<&String> = got.iter().filter(|b| !expected.contains(b)).collect();
    let only_expected: Vec<&String> = expected.iter().filter(|b| !got.contains(b)).collect();
    assert!(
        only_got.is_empty() && only_expected.is_empty() && got.len() == expected.len(),
        "{what} differ\nonly in the upgraded database:\n{}\n\nonly in the fresh one:\n{}",
        only_got.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n\n"),
        only_expected.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n\n")
    );
}

#[tokio::test]
async fn a_fresh_database_runs_the_baseline_then_the_functions() {
    let _serial = project_lock().await;
    let dir = project_migrations();
    let versioned: Vec<String> = migrate::load(&dir).unwrap().into_iter().map(|m| m.name).collect();
    let repeatable: Vec<String> = migrate::load_repeatable(&dir).unwrap().into_iter().map(|m| m.name).collect();
    assert!(!repeatable.is_empty());
    let (fresh, applied) = fresh_install("m_fresh").await;
    assert_eq!(applied, [versioned.clone(), repeatable].concat(), "versioned files first, then functions/");
    assert_eq!(query_strings(&fresh, "SELECT name FROM cogo_migrations.ledger ORDER BY name").await, versioned);
}

/// The project's versioned files: the baseline, then the files after it,
/// which every database runs.
fn versioned_files() -> Vec<String> {
    migrate::load(&project_migrations()).unwrap().into_iter().map(|m| m.name).collect()
}

/// A database migrated with the replaced files before repeatable files
/// existed: the runner records the baseline without running it, applies
/// every function file, and the result is the fresh install's schema.
#[tokio::test]
async fn a_database_from_the_replaced_files_converges_with_a_fresh_one() {
    let _serial = project_lock().await;
    let Some(old) = replaced_files() else { return };
    let repeatable: Vec<String> =
        migrate::load_repeatable(&project_migrations()).unwrap().into_iter().map(|m| m.name).collect();
    let (fresh, _) = fresh_install("m_converge_fresh").await;

    let deployed = fresh_db("m_converge_deployed").await;
    apply_versioned_the_old_way(&deployed, &old).await;
    let applied = migrate::run(&deployed, &project_migrations()).await.unwrap();
    let versioned = versioned_files();
    assert_eq!(applied, [versioned.clone(), repeatable].concat());
    let ledger = query_strings(&deployed, "SELECT name FROM cogo_migrations.ledger ORDER BY name").await;
    assert_eq!(ledger.len(), 11 + versioned.len(), "the replaced files' rows stay, beside the baseline's: {ledger:?}");
    assert!(ledger.contains(&"0001_baseline.sql".to_string()));

    assert_same_schema(&fresh, &deployed).await;
}

/// A database migrated by the release before the squash (the replaced files
/// and that release's functions/): only the baseline is new, and the
/// function files that changed since are applied again.
#[tokio::test]
async fn a_database_of_the_previous_release_converges_with_a_fresh_one() {
    let _serial = project_lock().await;
    let Some(before) = migrations_before_squash() else { return };
    let (fresh, _) = fresh_install("m_previous_fresh").await;

    let deployed = fresh_db("m_previous_deployed").await;
    migrate::run(&deployed, &before).await.unwrap();
    let then = migrate::load_repeatable(&before).unwrap();
    let changed: Vec<String> = migrate::load_repeatable(&project_migrations())
        .unwrap()
        .into_iter()
        .filter(|now| !then.iter().any(|t| t.name == now.name && t.sha256 == now.sha256))
        .map(|now| now.name)
        .collect();
    let applied = migrate::run(&deployed, &project_migrations()).await.unwrap();
    assert_eq!(applied, [versioned_files(), changed].concat(), "the baseline, later files, new or changed functions/");

    assert_same_schema(&fresh, &deployed).await;
}

#[tokio::test]
async fn a_baseline_runs_on_a_new_database_and_is_only_recorded_where_its_files_were_applied() {
    let baseline = "-- replaces: 0001_a.sql 0002_b.sql\nCREATE TABLE a (id int); CREATE TABLE b (id int);";
    let later = ("0002_later.sql", "CREATE TABLE later (id int);");

    // New database: the baseline runs.
    let db = fresh_db("m_baseline_new").await;
    let dir = dir_with(&[("0001_baseline.sql", baseline), later]);
    assert_eq!(migrate::run(&db, &dir).await.unwrap(), vec!["0001_baseline.sql", "0002_later.sql"]);
    assert_eq!(
        query_strings(
            &db,
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
        )
        .await,
        vec!["a", "b", "later"]
    );

    // Every replaced file applied: recorded, not run (it would fail on the
    // existing tables), and later files still run.
    let db = fresh_db("m_baseline_old").await;
    let old = dir_with(&[("0001_a.sql", "CREATE TABLE a (id int);"), ("0002_b.sql", "CREATE TABLE b (id int);")]);
    migrate::run(&db, &old).await.unwrap();
    assert_eq!(migrate::run(&db, &dir).await.unwrap(), vec!["0001_baseline.sql", "0002_later.sql"]);
    assert_eq!(
        query_strings(&db, "SELECT name FROM cogo_migrations.ledger ORDER BY name").await,
        vec!["0001_a.sql", "0001_baseline.sql", "0002_b.sql", "0002_later.sql"],
        "the replaced files' rows stay and are ignored"
    );
    assert!(migrate::run(&db, &dir).await.unwrap().is_empty(), "a re-run is a no-op");
    // The baseline's checksum is kept like any file's.
    add(&dir, "0001_baseline.sql", &format!("{baseline}\n-- edited"));
    assert!(
        matches!(migrate::run(&db, &dir).await.unwrap_err(), MigrateError::Changed { name } if name == "0001_baseline.sql")
    );

    // Only some applied: a half-migrated database is refused, nothing recorded.
    let db = fresh_db("m_baseline_half").await;
    let half = dir_with(&[("0001_a.sql", "CREATE TABLE a (id int);")]);
    migrate::run(&db, &half).await.unwrap();
    let dir = dir_with(&[("0001_baseline.sql", baseline), later]);
    let err = migrate::run(&db, &dir).await.unwrap_err();
    match &err {
        MigrateError::PartlyReplaced { name, applied, missing } => {
            assert_eq!(name, "0001_baseline.sql");
            assert_eq!(applied, &["0001_a.sql"]);
            assert_eq!(missing, &["0002_b.sql"]);
        }
        other => panic!("expected PartlyReplaced, got {other}"),
    }
    assert!(err.to_string().contains("half-migrated"), "{err}");
    assert_eq!(query_strings(&db, "SELECT name FROM cogo_migrations.ledger").await, vec!["0001_a.sql"]);
}

#[tokio::test]
async fn editing_a_function_file_reapplies_only_that_file() {
    let _serial = project_lock().await;
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
    for m in migrate::load(&dir).unwrap() {
        assert!(
            statements(&m.sql).iter().all(|(created, _, _)| !created),
            "{} creates a function or trigger: those live in migrations/functions/ (migrations/README.md)",
            m.name
        );
    }
    let mut defined = std::collections::BTreeMap::new();
    for m in migrate::load_repeatable(&dir).unwrap() {
        for (created, kind, name) in statements(&m.sql) {
            if created {
                defined.entry((kind, name)).or_insert_with(Vec::new).push(m.name.clone());
            }
        }
    }
    for (key, files) in &defined {
        assert_eq!(files.len(), 1, "{key:?} is defined more than once: {files:?}");
    }
    // What the replaced files left defined (dropped for good means dropped
    // and not created again) each has its definition in functions/.
    let Some(old) = replaced_files() else { return };
    let mut live = std::collections::BTreeSet::new();
    for (_, sql) in &old {
        for (created, kind, name) in statements(sql) {
            if created {
                live.insert((kind, name));
            } else {
                live.remove(&(kind, name));
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
}

/// 0006's per-minute rollup behind metrics-history: the fold takes each
/// finished minute once, and the history reads the same before and after it.
#[tokio::test]
async fn the_minute_rollup_folds_each_minute_once_and_changes_no_figure() {
    let _serial = project_lock().await;
    let (db, _) = fresh_install("m_job_minutes").await;
    let (mut client, conn) = tokio_postgres::connect(&db, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(
            "SELECT cogo.enqueue('t', 'e') FROM generate_series(1, 6);
             SELECT count(*) FROM cogo.claim('e', 'w', 60, NULL, 3);
             SELECT cogo.complete(id, true) FROM cogo.jobs WHERE status = 'running' LIMIT 1;
             SELECT cogo.cancel(id) FROM cogo.jobs WHERE status = 'queued' LIMIT 1;
             -- The log as 40 and 20 minutes of traffic would have left it, seq order kept.
             UPDATE cogo.job_events SET created_at = created_at - interval '40 minutes' WHERE seq <= 6;
             UPDATE cogo.job_events SET created_at = created_at - interval '20 minutes' WHERE seq > 6;
             SELECT cogo.enqueue('t', 'e');",
        )
        .await
        .unwrap();
    let history = "SELECT (cogo.metrics_history(3600, 60) - 'ts')::text";
    let tx = client.transaction().await.unwrap();
    let before: String = tx.query_one(history, &[]).await.unwrap().get(0);
    let fold: String = tx.query_one("SELECT cogo.fold_job_minutes()->>'minutes'", &[]).await.unwrap().get(0);
    let after: String = tx.query_one(history, &[]).await.unwrap().get(0);
    let again: String = tx.query_one("SELECT cogo.fold_job_minutes()->>'minutes'", &[]).await.unwrap().get(0);
    let folded: String = tx
        .query_one(
            "SELECT sum(enqueued)::text || ' ' || sum(claimed) || ' ' || sum(cancelled) FROM cogo.job_minutes",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    tx.commit().await.unwrap();
    assert_eq!((fold.as_str(), again.as_str()), ("2", "0"), "two busy minutes, each folded once");
    assert_eq!(folded, "6 3 1", "the folded minutes hold the backdated events, not the one after them");
    assert_eq!(after, before, "folding changes no figure");
    let history: serde_json::Value = serde_json::from_str(&after).unwrap();
    let points = history["points"].as_array().unwrap();
    let total = |k: &str| points.iter().map(|p| p[k].as_i64().unwrap()).sum::<i64>();
    assert_eq!((total("enqueued"), total("claimed"), total("succeeded"), total("cancelled")), (7, 3, 1, 1));
    let depths: Vec<i64> = points.iter().map(|p| p["queueDepth"].as_i64().unwrap()).collect();
    assert_eq!(depths.last(), Some(&3), "6 + 1 enqueued, 3 claimed, 1 cancelled from the queue");
    assert_eq!(depths.iter().max(), Some(&6), "all six waited until the claims 20 minutes ago");
    assert_eq!(depths[0], 0, "nothing was queued an hour ago");
}
