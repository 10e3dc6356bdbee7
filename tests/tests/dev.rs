//! The stack as `scripts/dev` starts it: `cogo-dev up` (its own PostgreSQL,
//! the gateway, `wrangler dev` with the dev vars it writes), here with its
//! cron period shortened. Checked for what only that path does: the cron
//! ticker, the dev CORS origins the Figma plugin needs, and the dashboard
//! that `wrangler dev` serves from wrangler.toml's `[assets]` with the
//! sign-in link it prints.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cogo_dev::process::{free_port, on_keeper_thread, scratch_dir, wait_until, Guarded};
use cogo_dev::token;
use cogo_tests::{unique, workspace_root};
use hmac::{Hmac, Mac};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

/// What the tests need of a running `cogo-dev up`.
struct DevStack {
    base_url: String,
    jwt_secret: String,
    hmac_secret: String,
    /// What it printed up to "cogo-edge is running".
    started: String,
    _process: Guarded,
}

/// A value of the dev vars file `cogo-dev up` wrote.
fn dev_var(vars: &str, name: &str) -> String {
    vars.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("the dev vars have no {name}"))
        .to_string()
}

/// The `cogo-dev` binary the scripts run; cargo test builds only libraries
/// of other packages.
fn cogo_dev() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = workspace_root();
            let built = Command::new(env!("CARGO"))
                .args(["build", "--locked", "-p", "cogo-dev", "--bins"])
                .current_dir(&root)
                .status()
                .expect("cargo build");
            assert!(built.success(), "building cogo-dev");
            root.join("target/debug/cogo-dev")
        })
        .clone()
}

fn dev_stack() -> &'static DevStack {
    static STACK: OnceLock<DevStack> = OnceLock::new();
    STACK.get_or_init(|| {
        let root = workspace_root();
        let state = scratch_dir(&root.join("target/tmp"), "dev-stack").expect("scratch folder");
        let port = free_port().expect("free port");
        let log_path = state.join("cogo-dev.log");
        let log = std::fs::File::create(&log_path).expect("log");
        let mut cmd = Command::new(cogo_dev());
        cmd.args(["up", "--port", &port.to_string(), "--cron-every", "2", "--state"])
            .arg(&state)
            .current_dir(&root)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        let mut process = on_keeper_thread(move || Guarded::spawn("cogo-dev up", cmd, libc::SIGTERM)).expect("start");
        let read_log = |path: &PathBuf| {
            let mut text = String::new();
            let _ = std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text));
            text
        };
        // Its first start builds the wasm through wrangler's custom build.
        let up = wait_until("cogo-dev up", Duration::from_secs(300), || {
            let text = read_log(&log_path);
            if text.contains("cogo-edge is running") {
                Some(Ok(text))
            } else if !process.is_running() {
                Some(Err(text))
            } else {
                None
            }
        })
        .expect("cogo-dev up starts");
        let text = up.unwrap_or_else(|log| panic!("cogo-dev up exited:\n{log}"));
        assert!(text.contains("cron        * * * * * every 2s"), "it says the cron runs:\n{text}");
        let vars = std::fs::read_to_string(state.join("dev.vars")).expect("dev vars");
        DevStack {
            base_url: format!("http://127.0.0.1:{port}"),
            jwt_secret: dev_var(&vars, "SUPABASE_JWT_SECRET"),
            hmac_secret: dev_var(&vars, "EDGE_HMAC_SECRET"),
            started: text,
            _process: process,
        }
    })
}

fn service_token(stack: &DevStack) -> String {
    format!("Bearer {}", token::sign(&stack.jwt_secret, token::role_claims("service_role", "service"), 3600))
}

async fn post(stack: &DevStack, path: &str, headers: &[(&str, &str)], body: &Value) -> (u16, HeaderMap, Value) {
    let mut req = reqwest::Client::new().post(format!("{}{path}", stack.base_url)).json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    let text = resp.text().await.expect("body");
    (status, headers, serde_json::from_str(&text).unwrap_or_else(|_| json!({ "text": text })))
}

async fn preflight(stack: &DevStack, path: &str, origin: &str) -> (u16, HeaderMap) {
    let resp = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{}{path}", stack.base_url))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,apikey,content-type,idempotency-key,x-agent-id")
        .send()
        .await
        .expect("preflight");
    (resp.status().as_u16(), resp.headers().clone())
}

fn allow_origin(headers: &HeaderMap) -> Option<&str> {
    headers.get("access-control-allow-origin").and_then(|v| v.to_str().ok())
}

/// The plugin's signature: hex HMAC-SHA256 of `"{x-ts}:{path}"`.
fn plugin_signature(secret: &str, path: &str) -> (String, String) {
    let ts = (token::unix_now() * 1000).to_string();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{ts}:{path}").as_bytes());
    let sig = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    (ts, sig)
}

#[tokio::test]
async fn the_figma_plugin_gets_in_from_a_null_origin_and_unlisted_origins_get_no_cors() {
    let stack = dev_stack();
    let path = "/figma-compat/uui/generate";

    let (status, headers) = preflight(stack, path, "null").await;
    assert_eq!((status, allow_origin(&headers)), (204, Some("null")));
    let allowed = headers["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    for header in ["authorization", "apikey", "content-type", "idempotency-key", "x-agent-id"] {
        assert!(allowed.split(", ").any(|h| h == header), "{header} not in {allowed}");
    }
    for local in ["http://localhost:5173", "http://127.0.0.1:3000"] {
        let (status, headers) = preflight(stack, path, local).await;
        assert_eq!((status, allow_origin(&headers)), (204, Some(local)));
    }

    let body = json!({"figma_json": {"type": "FRAME", "name": "Card", "x": 0, "y": 0, "width": 10, "height": 10,
                                      "children": [{"type": "TEXT", "name": "t", "characters": "Hello plugin",
                                                     "x": 0, "y": 0, "width": 10, "height": 10}]}});
    let (ts, sig) = plugin_signature(&stack.hmac_secret, path);
    let key = unique("plugin");
    let signed = [
        ("origin", "null"),
        ("x-ts", ts.as_str()),
        ("x-signature", sig.as_str()),
        ("x-agent-id", "figma-plugin"),
        ("idempotency-key", key.as_str()),
    ];
    let (status, headers, answer) = post(stack, path, &signed, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(allow_origin(&headers), Some("null"));
    let tree = &answer["result"]["cogo_ui_json"]["tree"];
    assert_eq!(tree[0]["children"][0]["props"]["text"], "Hello plugin", "{answer}");

    for unlisted in ["https://evil.example", "http://localhost.evil.example:5173"] {
        let (status, headers) = preflight(stack, path, unlisted).await;
        assert_eq!((status, allow_origin(&headers)), (403, None), "{unlisted}");
        let (ts, sig) = plugin_signature(&stack.hmac_secret, path);
        let request = [("origin", unlisted), ("x-ts", ts.as_str()), ("x-signature", sig.as_str())];
        let (_, headers, _) = post(stack, path, &request, &body).await;
        assert_eq!(allow_origin(&headers), None, "{unlisted}");
    }
}

#[tokio::test]
async fn a_job_whose_worker_vanished_is_claimed_again_without_anyone_releasing_it() {
    let stack = dev_stack();
    let auth = service_token(stack);
    let headers = [("authorization", auth.as_str())];
    let executor = unique("dev-cron");
    let (status, _, assigned) =
        post(stack, "/api/collab/task.assign", &headers, &json!({"type": "dev.cron", "executorId": executor})).await;
    assert_eq!(status, 200, "{assigned}");
    let job_id = assigned["jobId"].as_str().unwrap().to_string();

    let claim = |worker: &'static str, wait: u32| {
        let body = json!({"executorId": executor, "workerId": worker, "leaseSeconds": 15, "waitSeconds": wait});
        async move { post(stack, "/api/collab/task.claim", &headers, &body).await }
    };
    let (status, _, first) = claim("vanishing-worker", 0).await;
    assert_eq!((status, first["job"]["id"].as_str()), (200, Some(job_id.as_str())), "{first}");
    let lease_until = first["job"]["leaseUntil"].clone();
    let claimed_at = Instant::now();

    // The first worker never reports. Only the cron's reaper can give the
    // job back; long polls wait for it with a deadline.
    let deadline = claimed_at + Duration::from_secs(120);
    let second = loop {
        let (status, _, answer) = claim("second-worker", 20).await;
        assert_eq!(status, 200, "{answer}");
        if !answer["job"].is_null() {
            break answer;
        }
        assert!(Instant::now() < deadline, "the job was not released within 120 s (lease until {lease_until})");
    };
    assert_eq!(second["job"]["id"].as_str(), Some(job_id.as_str()), "{second}");
    assert!(claimed_at.elapsed() >= Duration::from_secs(14), "released only once its 15 s lease ended");
    assert_eq!(second["job"]["attempts"], 2, "{second}");
}

/// `cogo-dev token` as an operator runs it for a hosted project: the
/// project's secret from the environment, a worker scoped to one executor.
fn cli_token(stack: &DevStack, args: &[&str]) -> String {
    let out = Command::new(cogo_dev())
        .arg("token")
        .args(args)
        .env("SUPABASE_JWT_SECRET", &stack.jwt_secret)
        .output()
        .expect("cogo-dev token");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").trim().to_string()
}

#[tokio::test]
async fn a_worker_token_from_the_cli_serves_only_its_executor_and_expires() {
    let stack = dev_stack();
    let executor = unique("cli-exec");
    let worker =
        format!("Bearer {}", cli_token(stack, &["worker", "cli-worker", "--executor", &executor, "--ttl", "1h"]));
    let headers = [("authorization", worker.as_str())];
    let claim = |executor: String| {
        let body = json!({"executorId": executor, "workerId": "cli-worker"});
        async move { post(stack, "/api/collab/task.claim", &headers, &body).await }
    };
    let (status, _, answer) = claim(executor.clone()).await;
    assert_eq!((status, &answer["job"]), (200, &Value::Null), "its own executor: {answer}");
    let (status, _, answer) = claim(unique("other-exec")).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("executor_forbidden")), "{answer}");

    let token = cli_token(stack, &["worker", "w", "--ttl", "90s"]);
    let claims = jwt_compact::UntrustedToken::new(&token)
        .expect("a JWT")
        .deserialize_claims_unchecked::<Value>()
        .expect("claims");
    let (issued, expires) = (claims.issued_at.expect("iat"), claims.expiration.expect("exp"));
    assert_eq!((expires - issued).num_seconds(), 90);
}

/// A database of its own on the shared test cluster, with nothing in it.
async fn empty_database() -> String {
    let name = unique("deploy").replace('-', "_");
    cogo_tests::sql().await.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create database");
    let admin = &cogo_tests::database().uri;
    format!("{}/{name}", admin.rsplit_once('/').expect("a database in the URI").0)
}

async fn tables_in(uri: &str) -> i64 {
    let (client, conn) = tokio_postgres::connect(uri, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(conn);
    let row = client
        .query_one("SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')", &[])
        .await
        .expect("count tables");
    row.get(0)
}

fn deploy(args: &[&str]) -> (bool, String) {
    let out = Command::new(cogo_dev()).arg("deploy").args(args).current_dir(workspace_root()).output().expect("deploy");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test]
async fn a_deploy_dry_run_checks_the_configuration_migrations_and_bundle_and_changes_nothing() {
    let db = empty_database().await;
    // wrangler.toml as committed: no PostgREST origin, no public URL.
    let (ok, out) = deploy(&["--dry-run", "--db", &db]);
    assert!(!ok, "{out}");
    assert!(out.contains("SUPABASE_URL is empty") && out.contains("PUBLIC_URL is empty"), "{out}");
    let (ok, out) = deploy(&[
        "--dry-run",
        "--db",
        &db,
        "--var",
        "SUPABASE_URL:http://abc.supabase.co",
        "--var",
        "PUBLIC_URL:https://edge.example.com",
    ]);
    assert!(!ok && out.contains("SUPABASE_URL must be https://"), "{out}");
    assert_eq!(tables_in(&db).await, 0, "a refused deploy touches nothing");

    let (ok, out) = deploy(&[
        "--dry-run",
        "--db",
        &db,
        "--var",
        "SUPABASE_URL:https://abc.supabase.co",
        "--var",
        "PUBLIC_URL:https://edge.example.com",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("config      ok") && out.contains("would apply 0001_baseline.sql"), "{out}");
    assert!(out.contains("nothing was deployed"), "{out}");
    assert_eq!(tables_in(&db).await, 0, "the migrations were checked and rolled back");
    let bundle = workspace_root().join("target/deploy-dry-run");
    assert!(std::fs::read_dir(&bundle)
        .expect("the bundle")
        .flatten()
        .any(|f| f.path().extension().is_some_and(|x| x == "wasm")));
}

#[tokio::test]
async fn wrangler_dev_serves_the_dashboard_and_the_printed_sign_in_link_works() {
    let stack = dev_stack();
    let page = reqwest::get(format!("{}/", stack.base_url)).await.expect("GET /");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("/app.js"), "the dashboard's page");
    let link = format!("dashboard   {}/#token=", stack.base_url);
    let token = stack
        .started
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(&link))
        .unwrap_or_else(|| panic!("no sign-in link printed:\n{}", stack.started));
    // The dashboard's first call with it: a platform-only read.
    let reply = reqwest::Client::new()
        .get(format!("{}/functions/v1/metrics-history?window=1m&step=1m", stack.base_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200, "the link signs in as the platform");
}
