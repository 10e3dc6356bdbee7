//! The migration runner: applies the versioned files `migrations/*.sql` in
//! file-name order, once each, then re-applies every repeatable file
//! `migrations/functions/*.sql` (functions, triggers and their grants, each
//! the current definition) whose checksum changed since it was last applied,
//! also in file-name order. A versioned file may start with a
//! `-- replaces: <names>` line (the baseline that squashed older files): a
//! database whose ledger has every replaced name records it without running
//! it. Each file runs in its own transaction together
//! with its ledger row, so a failed file leaves nothing behind and a re-run
//! skips what is already applied. Works against any PostgreSQL (the local
//! cluster or a Supabase database). `migrations/README.md` states the rule.

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio_postgres::{GenericClient, NoTls};

/// The folder of `dir` holding the repeatable files.
pub const REPEATABLE_DIR: &str = "functions";

/// Serialises concurrent runners on one database.
const LOCK_KEY: i64 = 0x0063_6f67_6f6d_6967; // "cogomig"

#[derive(Debug)]
pub enum MigrateError {
    Io(PathBuf, std::io::Error),
    Db(String),
    /// A file that was applied has since been edited.
    Changed {
        name: String,
    },
    Failed {
        name: String,
        error: String,
    },
    /// A file that replaces others, on a database that applied only some of
    /// them: neither running it nor recording it would be right.
    PartlyReplaced {
        name: String,
        applied: Vec<String>,
        missing: Vec<String>,
    },
}

impl fmt::Display for MigrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MigrateError::Io(p, e) => write!(f, "reading {}: {e}", p.display()),
            MigrateError::Db(e) => write!(f, "database: {e}"),
            MigrateError::Changed { name } => {
                write!(
                    f,
                    "migration {name} was changed after it was applied; add a new migration instead \
                     (functions and triggers change in migrations/{REPEATABLE_DIR}/)"
                )
            }
            MigrateError::Failed { name, error } => {
                write!(f, "migration {name} failed (nothing of it applied): {error}")
            }
            MigrateError::PartlyReplaced { name, applied, missing } => write!(
                f,
                "migration {name} replaces files of which this database applied only some \
                 (applied: {}; missing: {}): it is half-migrated; apply the missing files with the \
                 runner of the release that still had them, then run this one",
                applied.join(", "),
                missing.join(", ")
            ),
        }
    }
}

impl std::error::Error for MigrateError {}

fn db_err(e: tokio_postgres::Error) -> MigrateError {
    MigrateError::Db(describe(&e))
}

/// The server's message for a database error, which `Display` leaves out.
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{} ({}){}",
            db.message(),
            db.code().code(),
            db.detail().map(|d| format!(": {d}")).unwrap_or_default()
        ),
        None => e.to_string(),
    }
}

pub struct Migration {
    pub name: String,
    pub sql: String,
    pub sha256: String,
    /// The files this one replaces, from its `-- replaces:` first line.
    pub replaces: Vec<String>,
    /// Earlier checksums of this file, from its `-- amends:` header lines:
    /// a database that applied one of them is recorded with the current
    /// checksum, not refused and not run again.
    pub amends: Vec<String>,
}

/// The header that names the files a baseline replaces.
pub const REPLACES_HEADER: &str = "-- replaces:";

/// The names on a `-- replaces: a.sql b.sql` first line, none without one.
pub fn replaced_names(sql: &str) -> Vec<String> {
    let first = sql.lines().next().unwrap_or_default();
    match first.strip_prefix(REPLACES_HEADER) {
        Some(names) => names.split_whitespace().map(str::to_string).collect(),
        None => Vec::new(),
    }
}

/// The header that names earlier checksums of an amended file. An applied
/// file may be amended only so that running the new text where the old ran
/// would change nothing (guards such as `IF NOT EXISTS`): databases that
/// ran the old text keep their schema.
pub const AMENDS_HEADER: &str = "-- amends:";

/// The checksums on `-- amends: <sha256> ...` lines of the leading comment.
pub fn amended_checksums(sql: &str) -> Vec<String> {
    sql.lines()
        .take_while(|l| l.starts_with("--"))
        .filter_map(|l| l.strip_prefix(AMENDS_HEADER))
        .flat_map(|shas| shas.split_whitespace().map(str::to_string))
        .collect()
}

/// The versioned files: the `.sql` files of `dir`, sorted by name.
pub fn load(dir: &Path) -> Result<Vec<Migration>, MigrateError> {
    load_files(dir, "")
}

/// The repeatable files of `dir` (none when it has no such folder), sorted by
/// name and named as in the ledger: `functions/jobs.sql`.
pub fn load_repeatable(dir: &Path) -> Result<Vec<Migration>, MigrateError> {
    let dir = dir.join(REPEATABLE_DIR);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    load_files(&dir, &format!("{REPEATABLE_DIR}/"))
}

fn load_files(dir: &Path, prefix: &str) -> Result<Vec<Migration>, MigrateError> {
    let entries = std::fs::read_dir(dir).map_err(|e| MigrateError::Io(dir.into(), e))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let sql = std::fs::read_to_string(&path).map_err(|e| MigrateError::Io(path.clone(), e))?;
            let sha256 = Sha256::digest(sql.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
            let name = format!("{prefix}{}", path.file_name().unwrap_or_default().to_string_lossy());
            let replaces = replaced_names(&sql);
            let amends = amended_checksums(&sql);
            Ok(Migration { name, sql, sha256, replaces, amends })
        })
        .collect()
}

/// Applies the versioned files in `dir` that are not in the ledger yet, then
/// the repeatable files that are new or changed; returns the names applied by
/// this call, in that order (a baseline recorded without running, because the
/// database has every file it replaces, is among them).
pub async fn run(db_uri: &str, dir: &Path) -> Result<Vec<String>, MigrateError> {
    apply_to(db_uri, dir, false).await
}

/// What [`run`] would apply, found by applying it all in one transaction
/// that is then rolled back: the SQL is checked against the real database
/// and nothing changes (a deploy's dry run).
pub async fn dry_run(db_uri: &str, dir: &Path) -> Result<Vec<String>, MigrateError> {
    apply_to(db_uri, dir, true).await
}

async fn apply_to(db_uri: &str, dir: &Path, roll_back: bool) -> Result<Vec<String>, MigrateError> {
    let versioned = load(dir)?;
    let repeatable = load_repeatable(dir)?;
    let (mut client, conn) = tokio_postgres::connect(db_uri, NoTls).await.map_err(db_err)?;
    let conn = tokio::spawn(conn);
    let result = if roll_back {
        async {
            let mut tx = client.transaction().await.map_err(db_err)?;
            let applied = apply(&mut tx, &versioned, &repeatable).await?;
            tx.rollback().await.map_err(db_err)?;
            Ok(applied)
        }
        .await
    } else {
        apply(&mut client, &versioned, &repeatable).await
    };
    drop(client);
    let _ = conn.await;
    result
}

async fn apply(
    client: &mut impl GenericClient,
    versioned: &[Migration],
    repeatable: &[Migration],
) -> Result<Vec<String>, MigrateError> {
    client.execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY]).await.map_err(db_err)?;
    // Repeatable files have a ledger of their own: `ledger` keeps meaning
    // "versioned files applied", as on databases migrated before they existed.
    client
        .batch_execute(
            "CREATE SCHEMA IF NOT EXISTS cogo_migrations;
             CREATE TABLE IF NOT EXISTS cogo_migrations.ledger (
               name text PRIMARY KEY,
               sha256 text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now());
             CREATE TABLE IF NOT EXISTS cogo_migrations.repeatable (
               name text PRIMARY KEY,
               sha256 text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .map_err(db_err)?;
    let mut applied = Vec::new();
    for m in versioned {
        let row = client
            .query_opt("SELECT sha256 FROM cogo_migrations.ledger WHERE name = $1", &[&m.name])
            .await
            .map_err(db_err)?;
        match row.map(|row| row.get::<_, String>(0)) {
            Some(sha) if sha == m.sha256 => continue,
            Some(sha) if m.amends.contains(&sha) => {
                client
                    .execute("UPDATE cogo_migrations.ledger SET sha256 = $2 WHERE name = $1", &[&m.name, &m.sha256])
                    .await
                    .map_err(db_err)?;
                continue;
            }
            Some(_) => return Err(MigrateError::Changed { name: m.name.clone() }),
            None => {}
        }
        if !m.replaces.is_empty() {
            let present: Vec<String> = client
                .query("SELECT name FROM cogo_migrations.ledger WHERE name = ANY($1)", &[&m.replaces])
                .await
                .map_err(db_err)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let (applied_old, missing): (Vec<String>, Vec<String>) =
                m.replaces.iter().cloned().partition(|old| present.contains(old));
            if missing.is_empty() {
                // The database has what this file would create: record it.
                client
                    .execute("INSERT INTO cogo_migrations.ledger (name, sha256) VALUES ($1, $2)", &[&m.name, &m.sha256])
                    .await
                    .map_err(db_err)?;
                applied.push(m.name.clone());
                continue;
            }
            if !applied_old.is_empty() {
                return Err(MigrateError::PartlyReplaced { name: m.name.clone(), applied: applied_old, missing });
            }
        }
        apply_file(client, m, "INSERT INTO cogo_migrations.ledger (name, sha256) VALUES ($1, $2)").await?;
        applied.push(m.name.clone());
    }
    // After the versioned files, so a definition can use the tables and
    // columns they add, and wins over any older one they contain.
    for m in repeatable {
        let row = client
            .query_opt("SELECT sha256 FROM cogo_migrations.repeatable WHERE name = $1", &[&m.name])
            .await
            .map_err(db_err)?;
        if row.is_some_and(|row| row.get::<_, String>(0) == m.sha256) {
            continue;
        }
        apply_file(
            client,
            m,
            "INSERT INTO cogo_migrations.repeatable (name, sha256) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET sha256 = excluded.sha256, applied_at = now()",
        )
        .await?;
        applied.push(m.name.clone());
    }
    // PostgREST (hosted or ours) reloads its schema cache on this.
    client.batch_execute("NOTIFY pgrst, 'reload schema'").await.map_err(db_err)?;
    client.execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY]).await.map_err(db_err)?;
    Ok(applied)
}

/// Runs one file and records it with `ledger_sql` (taking name and checksum)
/// in one transaction.
async fn apply_file(client: &mut impl GenericClient, m: &Migration, ledger_sql: &str) -> Result<(), MigrateError> {
    let failed = |e: tokio_postgres::Error| MigrateError::Failed { name: m.name.clone(), error: describe(&e) };
    let tx = client.transaction().await.map_err(db_err)?;
    tx.batch_execute(&m.sql).await.map_err(failed)?;
    tx.execute(ledger_sql, &[&m.name, &m.sha256]).await.map_err(failed)?;
    tx.commit().await.map_err(failed)
}
