//! The dashboard (served at `/` as static assets, `dashboard/`) in a real
//! browser against the real stack: tests/dashboard/run.mjs drives Debian's
//! chromium with playwright-core through one scenario per test and prints
//! what it saw; the assertions are here. Screenshots of every page go to
//! target/test-output/dashboard/. axe-core runs on every page: no serious
//! or critical violation is allowed.

use std::sync::OnceLock;

use cogo_tests::{browser, Stack};
use serde_json::{json, Value};

/// An opaque service key (`EDGE_SERVICE_KEYS`), to sign in with a key
/// rather than a JWT.
const SERVICE_KEY: &str = "sb_secret_dashboard-test-key-0123456789";

/// One stack for these tests; workers leave 3 s after their last heartbeat
/// (20 s by default) so the leave is seen quickly.
fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        Stack::builder().var("WORKERS_ACTIVE_WINDOW_MS", "3000").var("EDGE_SERVICE_KEYS", SERVICE_KEY).start()
    })
}

/// One browser scenario at a time: two chromiums on two shared cores make
/// the waits flaky, and the overview's counts are exact only when no other
/// scenario assigns jobs meanwhile.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `scenario` and answers its report, after checking that it passed,
/// that axe found nothing serious or critical on any page it visited, and
/// that the page threw nothing.
fn run(scenario: &str) -> Value {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let report = browser::scenario(stack(), scenario, json!({ "key": SERVICE_KEY }));
    assert_eq!(report["ok"], true, "{scenario} failed: {}", report["error"].as_str().unwrap_or_default());
    for (page, found) in report["violations"].as_object().expect("axe ran") {
        assert_eq!(found, &json!([]), "axe: serious or critical violations on {page}");
    }
    assert_eq!(report["pageErrors"], json!([]), "{scenario}: uncaught errors in the page");
    report
}

fn seqs(v: &Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(|s| s.as_i64().unwrap()).collect()
}

#[tokio::test]
async fn the_dashboard_is_served_at_the_root_beside_the_api() {
    let client = stack().client_with(None);
    let page = client.get("/").await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    assert!(page.text.contains("/app.js") && page.text.contains("/app.css"), "{}", page.text);
    // Nothing is loaded from elsewhere, so it works offline.
    assert!(!page.text.contains("http://") && !page.text.contains("https://"), "{}", page.text);
    for asset in ["/app.js", "/app.css"] {
        assert_eq!(client.get(asset).await.status, 200, "{asset}");
    }
    assert_eq!(client.get("/api/collab/health").await.status, 200, "the API is still the worker's");
    let unknown = client.get("/no-such-page").await;
    assert_eq!((unknown.status, unknown.json()["error"]["code"].as_str()), (404, Some("not_found")));
}

#[test]
fn the_overview_counts_and_charts_follow_assigned_jobs_without_a_reload() {
    let r = run("overview");
    assert_eq!(r["after"]["queued"].as_i64().unwrap(), r["before"]["queued"].as_i64().unwrap() + 3, "{r}");
    assert_eq!(r["after"]["enqueued"].as_i64().unwrap(), r["before"]["enqueued"].as_i64().unwrap() + 3, "{r}");
    assert_eq!(r["executorRow"], 3, "the queue by executor shows the new executor's 3 jobs");
    assert_eq!(r["sameUrl"], true, "no navigation happened");
    assert!(r["overflow390"].as_i64().unwrap() <= 0, "the overview fits 390 px: {r}");
}

#[test]
fn a_running_jobs_page_follows_progress_timeline_and_its_artifact() {
    let r = run("job");
    let seen: Vec<(i64, String)> = r["seen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["pct"].as_i64().unwrap(), s["step"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(seen, [(10, "fetch".into()), (55, "render".into()), (90, "upload".into())]);
    assert_eq!(seqs(&r["timeline"]), seqs(&r["api"]), "the timeline is the job's whole event log, in order");
    assert_eq!(r["linkStatus"], 200, "the artifact's signed link works");
    assert_eq!(r["linkSame"], true, "and serves the uploaded bytes");
    assert_eq!(r["preview"], 8, "the image is previewed");
    assert_eq!(r["scriptLinks"], 0, "a worker's javascript: URL is not made a link");
}

#[test]
fn a_cut_stream_reconnects_and_catches_up_without_gaps_or_repeats() {
    let r = run("reconnect");
    let timeline = seqs(&r["timeline"]);
    assert_eq!(timeline, seqs(&r["api"]), "every event once, in order: {r}");
    assert!(timeline.len() >= 8, "created, claimed, 5 progress, succeeded: {timeline:?}");
    assert!(r["connections"].as_i64().unwrap() >= 2, "the page opened a new connection");
}

#[test]
fn a_dead_letter_is_retried_from_the_page_and_a_filtered_set_after_a_dry_run() {
    let r = run("dlq");
    assert!(r["errorsShown"].as_str().unwrap().contains("boom one"), "every attempt's error: {r}");
    assert_eq!(r["single"]["type"], r["type"], "the letter's job again: {r}");
    assert_eq!(r["single"]["status"], "queued", "the retried letter is a new queued job: {r}");
    let pending: Vec<i64> = seqs(&r["pendingBefore"]);
    assert_eq!(pending.len(), 2);
    assert_eq!(r["dryCount"], 2, "the dry run shows the two letters not yet retried: {r}");
    for id in &pending {
        assert!(r["dryText"].as_str().unwrap().contains(&id.to_string()), "{r}");
    }
    assert_eq!(r["doneCount"], 2);
    let letters = r["lettersAfter"].as_array().unwrap();
    assert_eq!(letters.len(), 3);
    assert!(letters.iter().all(|d| d["retried"].is_string()), "every letter now names its new job: {r}");
}

#[test]
fn a_user_sees_only_their_own_jobs_and_no_metrics_or_dead_letters() {
    let r = run("user");
    assert_eq!(r["nav"], json!(["Jobs", "Chat"]), "{r}");
    assert_eq!(r["landing"], "Jobs");
    let mut shown: Vec<&str> = r["shown"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let mut mine: Vec<&str> = r["mine"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    shown.sort_unstable();
    mine.sort_unstable();
    assert_eq!(shown, mine, "only their own jobs");
    assert!(r["dlqPage"].as_str().unwrap().contains("service role"), "{r}");
    assert!(r["other"].as_str().unwrap().contains("job_not_found"), "someone else's job is not found: {r}");
}

#[test]
fn workers_join_and_leave_live_and_an_agents_channel_streams() {
    let r = run("workers");
    let row = r["row"].as_str().unwrap();
    assert!(row.contains("busy") && row.contains("2 / 4") && row.contains("1.2.3"), "{row}");
    let log = r["log"].as_str().unwrap();
    for (w, what) in [(&r["second"], "joined"), (&r["first"], "left"), (&r["second"], "left")] {
        assert!(log.contains(&format!("{} {what}", w.as_str().unwrap())), "{what}: {log}");
    }
}

#[test]
fn chat_renders_the_agents_streamed_deltas() {
    let r = run("chat");
    assert_eq!(r["reply"], "Hello, world");
    assert!(r["outcome"].as_str().unwrap().starts_with("done"), "{r}");
}

#[test]
fn every_page_is_usable_at_390_px_signed_in_with_a_key_and_a_queued_job_is_cancelled() {
    let r = run("narrow");
    for (page, overflow) in r["overflow"].as_object().unwrap() {
        assert!(overflow.as_i64().unwrap() <= 0, "{page} scrolls sideways at 390 px: {overflow}");
    }
    assert_eq!(r["who"], "platform (service role)", "the key signs in as the platform");
    assert_eq!(r["cancelled"], "cancelled", "{r}");
    assert_eq!(r["cancelButtons"], 0, "a finished job offers no cancel");
}
