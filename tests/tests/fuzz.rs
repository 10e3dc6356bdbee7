//! A property-based fuzz run of the whole API from its own OpenAPI
//! document: schemathesis (installed by scripts/setup into .venv) generates
//! requests from /docs.json, sends them to the real stack as the service
//! role, and fails on any 5xx and on any answer the document does not allow
//! (status, content type, headers, body schema). Fixed seed, so a failure
//! reproduces. The data-acceptance checks stay off: an opaque cursor or a
//! reused Idempotency-Key is schema-valid and still rightly refused.

use std::process::{Command, Stdio};
use std::time::Duration;

use cogo_dev::process::{scratch_dir, wait_until};
use cogo_tests::{workspace_root, Stack};

#[test]
fn the_api_answers_what_its_openapi_document_says_for_generated_requests() {
    let root = workspace_root();
    let schemathesis = root.join(".venv/bin/schemathesis");
    assert!(schemathesis.is_file(), "schemathesis missing: run scripts/setup");
    // Generated claims may ask to wait 20 s for jobs that never come.
    let stack = Stack::builder().var("CLAIM_MAX_WAIT_SECONDS", "1").start();
    // Its caches and reports go to a scratch folder, not the work tree.
    let scratch = scratch_dir(&root.join("target/tmp"), "fuzz").expect("scratch folder");
    let mut child = Command::new(schemathesis)
        .current_dir(&scratch)
        .env("HYPOTHESIS_STORAGE_DIRECTORY", scratch.join("hypothesis"))
        .args(["run", &stack.url("/docs.json")])
        .args(["-H", &format!("Authorization: Bearer {}", stack.service_key)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", "30", "--seed", "20261123", "--generation-database", "none"])
        .args(["--workers", "1", "--request-timeout", "10", "--no-color", "--continue-on-failure"])
        // Event streams stay open until their job ends, or forever (tests/streams.rs).
        .args(["--exclude-operation-id", "JobEventStream", "--exclude-operation-id", "ChannelStream"])
        .args(["--exclude-operation-id", "WorkersStream"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start schemathesis");
    let status = wait_until("schemathesis", Duration::from_secs(20 * 60), || child.try_wait().ok().flatten());
    let status = match status {
        Ok(status) => status,
        Err(e) => {
            let _ = child.kill();
            panic!("{e}");
        }
    };
    let output = child.wait_with_output().expect("schemathesis output");
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(status.success(), "schemathesis found answers the document does not allow:\n{report}");
    let summary = report.lines().rev().find(|l| l.contains("passed") || l.contains("cases")).unwrap_or_default();
    println!("schemathesis: {summary}");
}
