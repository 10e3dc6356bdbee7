//! The example browser worker (`examples/browser-worker/worker.py`) against
//! the real stack: it screenshots pages served here with headless Chromium,
//! through the public API only. Each test runs its own worker on its own
//! executor and waits on what the worker logs, one line per job.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cogo_dev::process::Guarded;
use cogo_tests::{sql_one, unique, workspace_root, Answer, Client, Recorded, Recorder, Stack};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const PAGE: &str = "<!doctype html><title>shot</title><body style=\"margin:0;background:#1e90ff\"><h1>cogo</h1>";

/// Any path: a small page.
fn page(_: &Recorded) -> Answer {
    (200, vec![("content-type", "text/html".to_string())], PAGE.as_bytes().to_vec())
}

/// The example worker as a child process, its log lines collected.
struct Worker {
    process: Guarded,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Worker {
    /// A worker for `executor`, with a token scoped to it; `settings` add
    /// to (or override) the environment. Heartbeats every second, so a
    /// cancel is seen at once.
    fn start(stack: &Stack, executor: &str, settings: &[(&str, &str)]) -> Worker {
        let token = stack.token(json!({"role": "worker", "sub": unique("shooter"), "executor_id": executor}));
        let mut cmd = Command::new("python3");
        cmd.arg(workspace_root().join("examples/browser-worker/worker.py"))
            .env("COGO_URL", &stack.base_url)
            .env("COGO_TOKEN", token)
            .env("COGO_EXECUTOR", executor)
            .env("COGO_HEARTBEAT_SECONDS", "1")
            .envs(settings.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut process = Guarded::spawn("browser worker", cmd, libc::SIGTERM).expect("python3");
        let stdout = process.take_stdout().expect("piped stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        // Echoed, so a failing test shows what the worker did.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("[worker] {line}");
                let _ = tx.send(line);
            }
        });
        Worker { process, lines, seen: Vec::new() }
    }

    /// The first line the worker logged (or logs within `within`) containing `text`.
    async fn line(&mut self, text: &str, within: Duration) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(text)) {
            return line.clone();
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Ok(None) => panic!("the worker ended before logging {text:?}"),
                Err(_) => panic!("the worker logged no {text:?} within {within:?}"),
            }
        }
    }

    fn terminate(&self) {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.process.id() as i32, libc::SIGTERM) };
    }

    /// The worker's exit code, once it has exited (within `within`).
    async fn exit_code(&mut self, within: Duration) -> i32 {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.process.exit_status() {
                return status.code().unwrap_or_else(|| panic!("the worker was killed: {status}"));
            }
            assert!(Instant::now() < deadline, "the worker still runs {within:?} later");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A page that loads only when the test says so: Chromium's request waits
/// on an open connection, so a test knows a job is in Chromium's hands.
struct HeldPage {
    listener: TcpListener,
}

impl HeldPage {
    async fn new() -> HeldPage {
        HeldPage { listener: TcpListener::bind("127.0.0.1:0").await.expect("bind") }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/held", self.listener.local_addr().expect("address").port())
    }

    /// Waits for Chromium to ask for the page; the connection, held. A
    /// connection that closes without asking (one a killed Chromium had
    /// opened ahead) is passed over.
    async fn request(&self) -> TcpStream {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let accepted = tokio::time::timeout_at(deadline, self.listener.accept()).await;
            let (mut socket, _) = accepted.expect("Chromium asks for the page within 30 s").expect("accept");
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await.expect("a request within 30 s") {
                    Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            if head.is_empty() {
                continue;
            }
            assert!(head.starts_with(b"GET /held "), "{}", String::from_utf8_lossy(&head));
            return socket;
        }
    }

    /// Answers the held request, and every later one, with the page.
    fn release(self, held: TcpStream) {
        async fn answer(mut socket: TcpStream) {
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{PAGE}",
                PAGE.len()
            );
            let _ = socket.write_all(reply.as_bytes()).await;
        }
        tokio::spawn(async move {
            answer(held).await;
            while let Ok((socket, _)) = self.listener.accept().await {
                tokio::spawn(answer(socket));
            }
        });
    }
}

async fn assign(client: &Client<'_>, executor: &str, payload: Value, max_attempts: Option<u32>) -> String {
    let mut body = json!({"type": "browser.screenshot", "executorId": executor, "payload": payload});
    if let Some(n) = max_attempts {
        body["maxAttempts"] = n.into();
    }
    client.post_ok("/api/collab/task.assign", &body).await["jobId"].as_str().expect("jobId").to_string()
}

async fn job(client: &Client<'_>, id: &str) -> Value {
    let reply = client.get(&format!("/api/collab/job/{id}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()
}

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG: {:?}", &bytes[..bytes.len().min(16)]);
    assert_eq!(&bytes[12..16], b"IHDR", "the first chunk is IHDR");
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn screenshots_each_page_at_its_size_and_takes_the_next_job_with_each_result() {
    let stack = Stack::shared();
    let site = Recorder::start(page).await;
    let executor = unique("browser");
    // A user asks for the screenshots, so the links are signed for their owner.
    let user = format!("Bearer {}", stack.token(json!({"role": "authenticated", "sub": unique("user")})));
    let user = stack.client_with(Some(&user));
    let sizes = [(640, 400), (320, 240), (1024, 160)];
    let mut jobs = Vec::new();
    for (i, (width, height)) in sizes.iter().enumerate() {
        let url = format!("http://127.0.0.1:{}/page/{i}", site.port);
        jobs.push(assign(&user, &executor, json!({"url": url, "width": width, "height": height}), None).await);
    }
    // Started after the jobs are queued: the first comes from a claim, the
    // others with the result before them.
    let mut worker = Worker::start(stack, &executor, &[]);
    for id in &jobs {
        worker.line(&format!("job {id} succeeded"), MINUTE).await;
    }

    let mut records = Vec::new();
    for (i, (id, (width, height))) in jobs.iter().zip(sizes).enumerate() {
        let summary = user.get(&format!("/api/collab/job/{id}/summary")).await.json();
        let (record, artifacts) = (&summary["job"], summary["artifacts"].as_array().unwrap());
        let path = format!("{id}/screenshot.png");
        assert_eq!(record["status"], "succeeded");
        assert_eq!(record["result"]["path"], path.as_str(), "{record}");
        assert_eq!(
            (record["result"]["width"].as_u64(), record["result"]["height"].as_u64()),
            (Some(width), Some(height))
        );
        assert_eq!(artifacts.len(), 1, "the upload, once: {artifacts:?}");
        assert_eq!((artifacts[0]["path"].as_str(), artifacts[0]["mime"].as_str()), (Some(&*path), Some("image/png")));
        let events: Vec<_> = summary["events"].as_array().unwrap().iter().map(|e| e["event_type"].clone()).collect();
        assert_eq!(events, ["created", "claimed", "progress", "progress", "succeeded"]);

        let signed = user.get(&format!("/functions/v1/sign-artifact?bucket=artifacts&path={path}")).await;
        assert_eq!(signed.status, 200, "{}", signed.text);
        let download = reqwest::get(signed.json()["url"].as_str().unwrap()).await.expect("download");
        assert_eq!(
            (download.status().as_u16(), download.headers()["content-type"].to_str().unwrap()),
            (200, "image/png")
        );
        let png = download.bytes().await.unwrap();
        assert_eq!(png_size(&png), (width as u32, height as u32), "job {i}");
        let sha256: String = Sha256::digest(&png).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(artifacts[0]["sha256"].as_str(), Some(sha256.as_str()));
        records.push(record.clone());
    }
    // The pages were Chromium's to load.
    let seen = site.requests();
    for i in 0..sizes.len() {
        let request = seen.iter().find(|r| r.path == format!("/page/{i}")).expect("the page was fetched");
        let agent = request.header("user-agent").unwrap_or_default();
        assert!(agent.contains("HeadlessChrome"), "{agent}");
    }
    // One round trip per job: each next job was claimed in the transaction
    // that recorded the result before it (now() is the transaction's time).
    for pair in records.windows(2) {
        assert_eq!(pair[0]["finished_at"], pair[1]["started_at"], "{} then {}", pair[0], pair[1]);
    }
}

#[tokio::test]
async fn bad_urls_and_pages_that_do_not_load_fail_with_a_clear_error() {
    let stack = Stack::shared();
    let client = stack.client();
    let executor = unique("browser-bad");
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let cases = [
        (json!({"url": "file:///etc/passwd"}), "invalid_url", "file:///etc/passwd"),
        (json!({"url": "javascript:alert(1)"}), "invalid_url", "javascript:alert(1)"),
        (json!({"width": 800}), "invalid_url", "payload.url must be an http or https URL"),
        (json!({"url": "https://example.com", "width": 100_000}), "invalid_payload", "payload.width"),
        (json!(["https://example.com"]), "invalid_payload", "must be an object"),
        (json!({"url": format!("http://127.0.0.1:{closed}/")}), "page_load_failed", "ERR_CONNECTION_REFUSED"),
    ];
    let mut jobs = Vec::new();
    // One attempt each: the queue would retry them, and fail them again.
    for (payload, _, _) in &cases {
        jobs.push(assign(&client, &executor, payload.clone(), Some(1)).await);
    }
    let mut worker = Worker::start(stack, &executor, &[]);
    for (id, (payload, code, words)) in jobs.iter().zip(&cases) {
        worker.line(&format!("job {id} dead"), MINUTE).await;
        let record = job(&client, id).await;
        assert_eq!(record["error"]["code"], *code, "{payload}: {record}");
        let message = record["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{payload}: {message}");
    }
    worker.terminate();
    assert_eq!(worker.exit_code(MINUTE).await, 0);
}

#[tokio::test]
async fn a_cancel_is_acknowledged_and_the_worker_goes_on_to_the_next_job() {
    let stack = Stack::shared();
    let client = stack.client();
    let site = Recorder::start(page).await;
    let held = HeldPage::new().await;
    let executor = unique("browser-cancel");
    let cancelled = assign(&client, &executor, json!({"url": held.url()}), None).await;
    let next = format!("http://127.0.0.1:{}/next", site.port);
    let next = assign(&client, &executor, json!({"url": next, "width": 300, "height": 200}), None).await;
    let mut worker = Worker::start(stack, &executor, &[]);
    let _loading = held.request().await;

    let answer = client.post_ok("/api/collab/task.cancel", &json!({"jobId": cancelled})).await;
    assert_eq!(answer["cancelRequested"], true);
    worker.line(&format!("job {cancelled} cancelled"), MINUTE).await;
    worker.line(&format!("job {next} succeeded"), MINUTE).await;
    let (was, then) = (job(&client, &cancelled).await, job(&client, &next).await);
    assert_eq!((was["status"].as_str(), was["error"]["code"].as_str()), (Some("cancelled"), Some("cancelled")));
    assert_eq!(was["finished_at"], then["started_at"], "the next job came with the acknowledgement");
}

#[tokio::test]
async fn sigterm_while_waiting_for_a_job_exits_at_once() {
    let stack = Stack::shared();
    let executor = unique("browser-idle");
    let mut worker = Worker::start(stack, &executor, &[]);
    // Inside its long poll: the claim waits in the executor's hub.
    let deadline = Instant::now() + MINUTE;
    while sql_one::<i64>(
        "SELECT count(*) FROM cogo.claim_waiters WHERE executor_id = $1 AND waiting_until > now()",
        &[&executor],
    )
    .await
        == 0
    {
        assert!(Instant::now() < deadline, "the worker never waited for a job");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stopping = Instant::now();
    worker.terminate();
    assert_eq!(worker.exit_code(MINUTE).await, 0);
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(3), "stopped after {took:?}, not cutting its 20 s long poll short");
    worker.line("stopped", MINUTE).await;
}

#[tokio::test]
async fn sigterm_during_a_job_finishes_it_and_takes_no_other() {
    let stack = Stack::shared();
    let client = stack.client();
    let held = HeldPage::new().await;
    let executor = unique("browser-finish");
    let current = assign(&client, &executor, json!({"url": held.url()}), None).await;
    let queued = assign(&client, &executor, json!({"url": held.url()}), None).await;
    let mut worker = Worker::start(stack, &executor, &[]);
    let loading = held.request().await;

    worker.terminate();
    worker.line("stopping: the current job has 30s to finish", MINUTE).await;
    held.release(loading);
    worker.line(&format!("job {current} succeeded"), MINUTE).await;
    assert_eq!(worker.exit_code(MINUTE).await, 0);
    let left = job(&client, &queued).await;
    assert_eq!((left["status"].as_str(), left["attempts"].as_i64()), (Some("queued"), Some(0)), "{left}");
}

#[tokio::test]
async fn sigterm_during_a_job_past_the_grace_period_gives_it_back() {
    let stack = Stack::shared();
    let client = stack.client();
    let held = HeldPage::new().await;
    let executor = unique("browser-release");
    let id = assign(&client, &executor, json!({"url": held.url()}), None).await;
    let mut worker = Worker::start(stack, &executor, &[("COGO_GRACE_SECONDS", "1")]);
    let _never_answered = held.request().await;

    worker.terminate();
    worker.line(&format!("job {id} queued"), MINUTE).await;
    assert_eq!(worker.exit_code(MINUTE).await, 0);
    let given_back = job(&client, &id).await;
    assert_eq!(given_back["status"], "queued", "not left running under a dead lease: {given_back}");
    assert_eq!(given_back["error"]["code"], "worker_stopping");

    // Another worker takes it up.
    let mut successor = Worker::start(stack, &executor, &[]);
    let loading = held.request().await;
    held.release(loading);
    successor.line(&format!("job {id} succeeded"), MINUTE).await;
    assert_eq!(job(&client, &id).await["attempts"], 2);
}
