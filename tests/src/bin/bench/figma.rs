//! The conversion time of every Figma fixture, natively and through workerd.

use std::time::Instant;

use cogo_tests::Stack;
use serde_json::{json, Value};

use crate::stats::percentile;

/// Conversion time of each Figma fixture: natively (the converter alone,
/// median of repeated runs) and end to end through workerd (uui/generate).
pub async fn report(stack: &Stack) {
    println!("\n{:<48} {:>10} {:>12} {:>12}", "figma-compat uui/generate", "size", "native", "workerd");
    let dir = cogo_tests::workspace_root().join("../shared/fixtures/figma");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    let http = reqwest::Client::new();
    for path in files.iter().filter(|p| p.extension().is_some_and(|x| x == "json")) {
        let text = std::fs::read_to_string(path).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        let runs = if text.len() > 500_000 { 10 } else { 50 };
        let mut native = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            let parsed: Value = serde_json::from_str(&text).unwrap();
            cogo_shared::figma::convert(&parsed, None).unwrap();
            native.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let body = serde_json::to_vec(&json!({ "figma_json": doc })).unwrap();
        let mut edge = Vec::new();
        for i in 0..runs.min(20) + 2 {
            let t = Instant::now();
            let resp = http
                .post(stack.url("/functions/v1/figma-compat/uui/generate"))
                .header("authorization", format!("Bearer {}", stack.service_key))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success(), "{}", path.display());
            resp.bytes().await.unwrap();
            if i >= 2 {
                edge.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        println!(
            "{:<48} {:>8.0}KB {:>10.2}ms {:>10.2}ms",
            path.file_name().unwrap().to_string_lossy(),
            text.len() as f64 / 1024.0,
            percentile(&native, 0.5),
            percentile(&edge, 0.5)
        );
    }
}
