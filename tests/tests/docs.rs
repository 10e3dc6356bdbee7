//! `/docs` in a real browser (headless Chromium): every operation of
//! `/docs.json` is rendered, whatever its body types, with no console error.

use cogo_tests::{workspace_root, Stack};
use serde_json::Value;

#[tokio::test]
async fn the_docs_page_renders_every_operation_without_a_console_error() {
    let stack = Stack::shared();
    let root = workspace_root();
    let out = root.join("target/test-output");
    std::fs::create_dir_all(&out).expect("output folder");
    let screenshot = out.join("docs.png");
    let run = tokio::process::Command::new(root.join("node_modules/.bin/node"))
        .arg(root.join("tests/browser/docs.mjs"))
        .arg(&stack.base_url)
        .arg(&screenshot)
        .current_dir(&root)
        .output()
        .await
        .expect("node");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("a JSON report");
    assert_eq!(report["errors"], serde_json::json!([]), "console errors");
    assert!(report["operations"].as_u64().unwrap() >= 45, "{report}");
    assert_eq!(report["rendered"], report["operations"], "{report}");
    assert_eq!(report["emptyBodies"], serde_json::json!([]), "{report}");
    assert!(std::fs::metadata(&screenshot).expect("a screenshot").len() > 0);
}
