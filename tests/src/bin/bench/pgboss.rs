//! The peer: pg-boss 12 running the same loops (tests/bench/pgboss.mjs)
//! against the stack's PostgreSQL. It is not a project dependency: the
//! bench installs it into a folder of its own under target/ when missing.

use std::path::PathBuf;
use std::time::Duration;

use cogo_tests::{database, workspace_root};
use serde_json::Value;

use crate::stats::Run;

pub struct PgBoss {
    dir: PathBuf,
    pub version: String,
}

impl PgBoss {
    /// `npm install`s pg-boss@12 into target/bench-pgboss unless it is
    /// there; `Err` says why it could not be.
    pub async fn install() -> Result<PgBoss, String> {
        let dir = workspace_root().join("target/bench-pgboss");
        let manifest = dir.join("node_modules/pg-boss/package.json");
        if !manifest.is_file() {
            eprintln!("installing pg-boss@12 into {}", dir.display());
            let out = tokio::process::Command::new("npm")
                .args(["install", "--no-save", "--no-audit", "--no-fund", "--prefix"])
                .arg(&dir)
                .arg("pg-boss@12")
                .output()
                .await
                .map_err(|e| format!("npm: {e}"))?;
            if !out.status.success() {
                return Err(format!("npm install pg-boss@12 failed: {}", String::from_utf8_lossy(&out.stderr)));
            }
        }
        let text = std::fs::read_to_string(&manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
        let version = serde_json::from_str::<Value>(&text).map_err(|e| e.to_string())?["version"]
            .as_str()
            .unwrap_or("?")
            .to_string();
        Ok(PgBoss { dir, version })
    }

    /// Seeds `jobs` (untimed) and drains them with `loops` loops of fetch
    /// `batch` + complete, in a schema made afresh.
    pub async fn run(&self, jobs: i64, batch: i64, loops: usize) -> Run {
        let root = workspace_root();
        let out = tokio::process::Command::new(root.join("node_modules/.bin/node"))
            .arg(root.join("tests/bench/pgboss.mjs"))
            .arg(&self.dir)
            .arg(&database().uri)
            .args([jobs.to_string(), batch.to_string(), loops.to_string()])
            .output()
            .await
            .expect("run node");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "pgboss.mjs: {}{}", stdout, String::from_utf8_lossy(&out.stderr));
        let reply: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("pgboss.mjs JSON");
        Run {
            jobs: reply["jobs"].as_u64().unwrap() as usize,
            elapsed: Duration::from_secs_f64(reply["seconds"].as_f64().unwrap()),
            claim_p50: reply["fetchP50Ms"].as_f64().unwrap(),
        }
    }
}
