//! The dashboard's browser scenarios (tests/dashboard/run.mjs: Debian's
//! chromium driven by playwright-core), run against a stack: for the
//! browser tests and `scripts/bench --dashboard`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use cogo_dev::process::wait_until;
use serde_json::{json, Value};

use crate::{workspace_root, Stack};

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs scenario `name` with tokens of every kind for `stack` (and `extra`
/// merged into its configuration) and answers the report it printed.
/// Panics if it printed none; a scenario that failed reports `ok: false`.
pub fn scenario(stack: &Stack, name: &str, extra: Value) -> Value {
    let root = workspace_root();
    assert!(std::path::Path::new(CHROMIUM).is_file(), "{CHROMIUM} missing: run scripts/setup");
    let mut config = json!({
        "baseUrl": stack.base_url,
        "chromium": CHROMIUM,
        "axe": root.join("node_modules/axe-core/axe.min.js"),
        "outDir": root.join("target/test-output/dashboard"),
        "tokens": {
            "service": stack.service_key,
            "worker": stack.token(json!({"role": "worker", "sub": "dash-worker"})),
            "user": stack.token(json!({"role": "authenticated", "sub": "dash-user-a"})),
            "otherUser": stack.token(json!({"role": "authenticated", "sub": "dash-user-b"})),
        },
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        config[k] = v.clone();
    }
    let mut child = Command::new(root.join("node_modules/.bin/node"))
        .arg(root.join("tests/dashboard/run.mjs"))
        .arg(name)
        .current_dir(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node");
    writeln!(child.stdin.take().expect("stdin"), "{config}").expect("send config");
    if wait_until("the browser scenario", Duration::from_secs(300), || child.try_wait().ok().flatten()).is_err() {
        let _ = child.kill();
    }
    let output = child.wait_with_output().expect("scenario output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout.lines().rev().find_map(|l| serde_json::from_str(l).ok()).unwrap_or_else(|| {
        panic!("{name}: no report\nstdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&output.stderr))
    })
}
