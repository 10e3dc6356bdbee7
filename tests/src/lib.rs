//! The black-box test stack: a private PostgreSQL with the migrations
//! applied, the PostgREST-compatible gateway (or the PostgREST named by
//! `POSTGREST_URL`), and the release wasm in `workerd serve`, all on free
//! ports, all stopped when the test process ends, however it ends.

pub mod browser;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use cogo_dev::pg_cluster::{PgCluster, PgOptions};
use cogo_dev::process::{free_port, on_keeper_thread, port_open, scratch_dir, wait_until, Guarded};
use cogo_dev::token::random_hex;
use cogo_dev::{gateway, migrate, token};
use serde_json::Value;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf()
}

/// Runs the in-process gateways; its worker threads live as long as the process.
fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

/// The database every stack of this test process shares.
pub struct Database {
    /// Superuser URI, for tests that check rows directly.
    pub uri: String,
    pub jwt_secret: String,
    _cluster: PgCluster,
}

/// A superuser connection to the shared database, for checking rows.
pub async fn sql() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&database().uri, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
}

/// The one value of a one-row, one-column query, as the superuser.
pub async fn sql_one<T: tokio_postgres::types::FromSqlOwned>(
    query: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> T {
    sql().await.query_one(query, params).await.unwrap_or_else(|e| panic!("{query}: {e}")).get(0)
}

/// A name no other test uses (executor ids, types, keys).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", random_hex(6))
}

pub fn database() -> &'static Database {
    static DB: OnceLock<Database> = OnceLock::new();
    DB.get_or_init(|| {
        let dir = run_dir().join("pg");
        // Benchmarks ask for a durable cluster; tests do not need fsync.
        let durable = std::env::var("COGO_PG_DURABLE").is_ok_and(|v| v == "1");
        let cluster = on_keeper_thread(move || PgCluster::start(PgOptions { dir, port: None, durable }))
            .expect("start PostgreSQL");
        let uri = cluster.uri("postgres");
        // Tests call this from inside their own runtime, which cannot block.
        let applied = std::thread::scope(|s| {
            s.spawn(|| runtime().block_on(migrate::run(&uri, &workspace_root().join("migrations")))).join()
        })
        .expect("migration thread")
        .unwrap_or_else(|e| panic!("migrations: {e}"));
        assert!(!applied.is_empty(), "a new cluster applies every migration");
        Database { uri, jwt_secret: random_hex(32), _cluster: cluster }
    })
}

/// This process's folder under target/tmp.
fn run_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| scratch_dir(&workspace_root().join("target/tmp"), "run").expect("scratch folder"))
}

struct RunningGateway {
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Where the worker reaches PostgREST, and whether we can stop it.
enum Upstream {
    /// `reserved` holds the gateway's port from the start, so nothing the
    /// stack starts meanwhile (workerd's own ports) can take it.
    Local {
        port: u16,
        reserved: Mutex<Option<std::net::TcpListener>>,
        running: Mutex<Option<RunningGateway>>,
    },
    External {
        url: String,
    },
}

/// One worker in workerd over one PostgREST, on the shared database.
pub struct Stack {
    /// `http://127.0.0.1:<port>` of workerd.
    pub base_url: String,
    /// Every configured secret: no reply may ever contain one.
    secrets: Vec<String>,
    pub service_key: String,
    pub jwt_secret: String,
    upstream: Upstream,
    _workerd: Guarded,
}

/// Builds a stack; `vars` overrides or (with an empty value) removes worker bindings.
pub struct StackBuilder {
    vars: Vec<(String, String)>,
    external: bool,
    bucket: bool,
}

impl Default for StackBuilder {
    fn default() -> Self {
        StackBuilder { vars: Vec::new(), external: true, bucket: true }
    }
}

impl StackBuilder {
    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.push((name.into(), value.into()));
        self
    }

    /// Always start a local gateway, even when `POSTGREST_URL` is set
    /// (for tests that stop and start it).
    pub fn local_gateway(mut self) -> Self {
        self.external = false;
        self
    }

    /// No `ARTIFACTS` R2 binding, as on a deployment without a bucket.
    pub fn without_bucket(mut self) -> Self {
        self.bucket = false;
        self
    }

    pub fn start(self) -> Stack {
        let db = database();
        let external = std::env::var("POSTGREST_URL").ok().filter(|u| !u.is_empty() && self.external);
        let (upstream, jwt_secret, postgrest_var) = match external {
            Some(url) => {
                let secret = std::env::var("POSTGREST_JWT_SECRET")
                    .expect("POSTGREST_URL needs POSTGREST_JWT_SECRET (the PostgREST's jwt-secret)");
                (Upstream::External { url: url.clone() }, secret, ("POSTGREST_URL", url))
            }
            None => {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
                let port = listener.local_addr().expect("bound address").port();
                let upstream =
                    Upstream::Local { port, reserved: Mutex::new(Some(listener)), running: Mutex::new(None) };
                (upstream, db.jwt_secret.clone(), ("SUPABASE_URL", format!("http://127.0.0.1:{port}")))
            }
        };
        let service_key = token::sign(&jwt_secret, token::role_claims("service_role", "service"), 3600 * 24);
        let mut vars = vec![
            (postgrest_var.0.to_string(), postgrest_var.1),
            ("SUPABASE_SERVICE_ROLE_KEY".to_string(), service_key.clone()),
            ("SUPABASE_JWT_SECRET".to_string(), jwt_secret.clone()),
            ("ARTIFACT_SIGNING_SECRET".to_string(), random_hex(32)),
        ];
        for (name, value) in self.vars {
            vars.retain(|(n, _)| *n != name);
            if !value.is_empty() {
                vars.push((name, value));
            }
        }
        let (workerd, port) = start_workerd(&vars, self.bucket);
        let secrets = vars
            .iter()
            .filter(|(name, _)| name.contains("SECRET") || name.contains("KEY"))
            .map(|(_, value)| value.clone())
            .collect();
        let stack = Stack {
            base_url: format!("http://127.0.0.1:{port}"),
            secrets,
            service_key,
            jwt_secret,
            upstream,
            _workerd: workerd,
        };
        stack.start_gateway();
        stack
    }
}

impl Stack {
    /// The stack most tests share.
    pub fn shared() -> &'static Stack {
        static STACK: OnceLock<Stack> = OnceLock::new();
        STACK.get_or_init(|| StackBuilder::default().start())
    }

    pub fn builder() -> StackBuilder {
        StackBuilder::default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// What the worker has logged so far (its console output).
    pub fn log_text(&self) -> String {
        let port = self.base_url.rsplit(':').next().unwrap_or_default();
        std::fs::read_to_string(run_dir().join(format!("workerd-{port}.log"))).unwrap_or_default()
    }

    /// The PostgREST base URL the worker talks to.
    pub fn postgrest_url(&self) -> String {
        match &self.upstream {
            Upstream::Local { port, .. } => format!("http://127.0.0.1:{port}/rest/v1"),
            Upstream::External { url } => url.clone(),
        }
    }

    /// Starts the local gateway (no-op with an external PostgREST or when running).
    pub fn start_gateway(&self) {
        let Upstream::Local { port, reserved, running } = &self.upstream else { return };
        let mut running = running.lock().unwrap();
        if running.is_some() {
            return;
        }
        let reserved = reserved.lock().unwrap().take();
        let db = database();
        let env = [
            ("PGRST_DB_URI", db.uri.replace("postgres@", "authenticator@")),
            ("PGRST_DB_SCHEMAS", "public,cogo".to_string()),
            ("PGRST_DB_ANON_ROLE", "anon".to_string()),
            ("PGRST_JWT_SECRET", self.jwt_secret.clone()),
            ("PGRST_DB_POOL", "10".to_string()),
        ];
        let config = gateway::Config::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
            .expect("gateway config");
        let port = *port;
        let (stop, stopped) = oneshot::channel::<()>();
        let done = runtime().spawn(async move {
            let listener = match reserved {
                Some(listener) => {
                    listener.set_nonblocking(true)?;
                    tokio::net::TcpListener::from_std(listener)?
                }
                None => tokio::net::TcpListener::bind(("127.0.0.1", port)).await?,
            };
            gateway::serve(config, listener, async move {
                let _ = stopped.await;
            })
            .await
        });
        // Like PostgREST, it answers 503 until its schema cache is loaded.
        wait_until("gateway", Duration::from_secs(20), || {
            (http_status(port, "/").is_some_and(|s| s != 503)).then_some(())
        })
        .expect("gateway starts");
        *running = Some(RunningGateway { stop, done });
    }

    /// Stops the local gateway and waits until its port refuses connections.
    pub fn stop_gateway(&self) {
        let Upstream::Local { port, running, .. } = &self.upstream else { return };
        let Some(gw) = running.lock().unwrap().take() else { return };
        let _ = gw.stop.send(());
        wait_until("gateway stop", Duration::from_secs(20), || gw.done.is_finished().then_some(()))
            .expect("gateway stops");
        wait_until("gateway port closed", Duration::from_secs(5), || (!port_open(*port)).then_some(()))
            .expect("port closes");
    }

    /// One raw HTTP/1.1 exchange, for requests no client library sends (two
    /// Host headers, unknown methods) and for bodies the server may refuse
    /// before reading them: a write the server cut short is not an error, the
    /// answer is still read. Answers the status and the whole reply as text.
    pub fn raw(&self, request: &[u8]) -> (u16, String) {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.base_url.trim_start_matches("http://")).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        // Written beside the read, so an early answer is read as it arrives,
        // before the server's close can reset the connection.
        let mut writer = stream.try_clone().expect("clone");
        let request = request.to_vec();
        let written = std::thread::spawn(move || {
            let _ = writer.write_all(&request);
        });
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
        let _ = stream.shutdown(std::net::Shutdown::Both);
        let _ = written.join();
        let text = String::from_utf8_lossy(&out).to_string();
        (text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0), text)
    }

    /// Runs the cron handler once, as the every-minute trigger does, and
    /// waits for it to finish.
    pub async fn run_cron(&self) {
        let reply = reqwest::get(self.url("/cdn-cgi/local/scheduled?cron=*+*+*+*+*")).await.expect("cron trigger");
        let status = reply.status().as_u16();
        assert_eq!((status, reply.text().await.unwrap_or_default().as_str()), (200, "ok"), "the cron handler");
    }

    /// A client that calls as the service role.
    pub fn client(&self) -> Client<'_> {
        self.client_with(Some(&format!("Bearer {}", self.service_key)))
    }

    /// A client sending `authorization` (or no credential at all).
    pub fn client_with(&self, authorization: Option<&str>) -> Client<'_> {
        Client { stack: self, http: reqwest::Client::new(), authorization: authorization.map(str::to_string) }
    }

    /// A JWT signed with this stack's secret.
    pub fn token(&self, claims: Value) -> String {
        token::sign(&self.jwt_secret, claims, 3600)
    }
}

/// The status of a bare `GET path` on 127.0.0.1:`port`, if anything answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// The release wasm in workerd, started through Miniflare (as `wrangler
/// dev` does) for its local R2 bucket and Durable Objects, with `vars` as
/// text bindings (and the R2 bucket unless `bucket` is false). Answers the
/// guard and the port.
fn start_workerd(vars: &[(String, String)], bucket: bool) -> (Guarded, u16) {
    // A free port can be taken by another process between choosing it and
    // binding it: Miniflare then exits at once, and another port is tried.
    const ATTEMPTS: usize = 3;
    for attempt in 1..=ATTEMPTS {
        match try_start_workerd(vars, bucket) {
            Ok(started) => return started,
            Err(log) if attempt < ATTEMPTS && log.contains("ERR_ADDRESS_IN_USE") => continue,
            Err(log) => panic!("miniflare exited at start:\n{log}"),
        }
    }
    unreachable!("the last attempt returns or panics")
}

/// Starts Miniflare on a free port; `Err` with its log when it exits at start.
fn try_start_workerd(vars: &[(String, String)], bucket: bool) -> Result<(Guarded, u16), String> {
    use std::io::{BufRead, BufReader, Write};
    let root = workspace_root();
    let build = root.join("functions/build");
    assert!(
        build.join("index.js").is_file() && build.join("index_bg.wasm").is_file(),
        "no release wasm in {}: run scripts/build (scripts/test does)",
        build.display()
    );
    assert!(
        root.join("dashboard/dist/index.html").is_file(),
        "no dashboard in dashboard/dist: run scripts/build (scripts/test does)"
    );
    let node = root.join("node_modules/.bin/node");
    assert!(node.is_file(), "node missing: run scripts/setup");
    let port = free_port().expect("free port");
    let options = serde_json::json!({
        "build": build,
        "port": port,
        "bucket": bucket,
        "vars": vars.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect::<serde_json::Map<_, _>>(),
    });
    let log_path = run_dir().join(format!("workerd-{port}.log"));
    let log = std::fs::File::create(&log_path).expect("workerd log");
    let mut cmd = std::process::Command::new(node);
    cmd.arg(root.join("tests/stack/miniflare.mjs"))
        .current_dir(&root)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(log.try_clone().expect("log handle"));
    // SIGTERM on our death lets it stop workerd; so does its stdin closing.
    let mut child = on_keeper_thread(move || Guarded::spawn("miniflare", cmd, libc::SIGTERM)).expect("start miniflare");
    writeln!(child.stdin().expect("piped stdin"), "{options}").expect("send options");
    // Its output goes to the log, all of it (a full pipe would stall it);
    // the line announcing the URL also says it is ready.
    let stdout = child.take_stdout().expect("piped stdout");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut log = log;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("{\"url\"") {
                let _ = ready_tx.send(line);
            } else {
                let _ = writeln!(log, "{line}");
            }
        }
    });
    let ready = wait_until("miniflare", Duration::from_secs(60), || match ready_rx.try_recv() {
        Ok(_) => Some(true),
        Err(_) if !child.is_running() => Some(false),
        Err(_) => None,
    })
    .expect("miniflare listens");
    if !ready {
        return Err(std::fs::read_to_string(&log_path).unwrap_or_default());
    }
    Ok((child, port))
}

/// An HTTP client bound to one stack.
pub struct Client<'s> {
    stack: &'s Stack,
    http: reqwest::Client,
    authorization: Option<String>,
}

/// A response with its body read.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Client<'_> {
    pub async fn send(&self, method: &str, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.request(method, path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        self.finish(req, method, path).await
    }

    /// Sends `body` as it is, labelled JSON.
    pub async fn send_raw(&self, method: &str, path: &str, body: Vec<u8>) -> Reply {
        let req = self.request(method, path).header("content-type", "application/json").body(body);
        self.finish(req, method, path).await
    }

    fn request(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method.parse().expect("method"), self.stack.url(path));
        match &self.authorization {
            Some(auth) => req.header("authorization", auth),
            None => req,
        }
    }

    /// Sends, reads the body, and fails the test if a configured secret
    /// appears anywhere in the reply.
    async fn finish(&self, req: reqwest::RequestBuilder, method: &str, path: &str) -> Reply {
        let resp = req.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let reply = Reply { status, headers, text: resp.text().await.expect("body") };
        for secret in &self.stack.secrets {
            assert!(!reply.text.contains(secret.as_str()), "a configured secret leaked into a response body");
            for (name, value) in &reply.headers {
                let value = value.to_str().unwrap_or_default();
                assert!(!value.contains(secret.as_str()), "a configured secret leaked into header {name}");
            }
        }
        reply
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send("POST", path, Some(body), &[]).await
    }

    /// POSTs and insists on 200, returning the JSON body.
    pub async fn post_ok(&self, path: &str, body: &Value) -> Value {
        let reply = self.post(path, body).await;
        assert_eq!(reply.status, 200, "POST {path} {body}: {}", reply.text);
        reply.json()
    }
}

/// One request a [`Recorder`] received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A [`Recorder`]'s answer: status, extra headers, body.
pub type Answer = (u16, Vec<(&'static str, String)>, Vec<u8>);

/// A local HTTP server that records every request and answers each with
/// what `answer` returns for it: a stand-in for an upstream API whose
/// requests a test checks.
pub struct Recorder {
    pub port: u16,
    pub seen: std::sync::Arc<Mutex<Vec<Recorded>>>,
}

impl Recorder {
    pub async fn start(answer: fn(&Recorded) -> Answer) -> Recorder {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut raw = Vec::new();
                    let mut buf = [0u8; 65536];
                    // Headers, then the body by Content-Length or chunked encoding.
                    let head_end = loop {
                        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => raw.extend_from_slice(&buf[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
                    let mut lines = head.split("\r\n");
                    let mut start = lines.next().unwrap_or_default().split(' ');
                    let (method, path) =
                        (start.next().unwrap_or_default().to_string(), start.next().unwrap_or_default().to_string());
                    let headers: Vec<(String, String)> = lines
                        .filter_map(|l| {
                            l.split_once(':').map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                        })
                        .collect();
                    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
                    let chunked = get("transfer-encoding").is_some_and(|t| t.contains("chunked"));
                    let length: usize = get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
                    let mut body = raw[head_end..].to_vec();
                    loop {
                        let complete = if chunked { body.ends_with(b"0\r\n\r\n") } else { body.len() >= length };
                        if complete {
                            break;
                        }
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => body.extend_from_slice(&buf[..n]),
                        }
                    }
                    if chunked {
                        body = dechunk(&body);
                    }
                    let request = Recorded { method, path, headers, body };
                    let (status, extra, reply) = answer(&request);
                    log.lock().unwrap().push(request);
                    let mut out =
                        format!("HTTP/1.1 {status} X\r\nconnection: close\r\ncontent-length: {}\r\n", reply.len());
                    for (name, value) in extra {
                        out.push_str(&format!("{name}: {value}\r\n"));
                    }
                    out.push_str("\r\n");
                    let _ = socket.write_all(out.as_bytes()).await;
                    let _ = socket.write_all(&reply).await;
                });
            }
        });
        Recorder { port, seen }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.seen.lock().unwrap().clone()
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..i]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&raw[i + 2..i + 2 + size]);
        raw = &raw[i + 2 + size + 2..];
    }
    out
}

/// One Server-Sent Events frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub id: Option<i64>,
    pub event: String,
    pub data: Value,
}

/// Reads an SSE response frame by frame, as the clients do: frames split
/// on a blank line, fields by their literal `id: `, `event: `, `data: `
/// prefixes.
pub struct EventStream {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl EventStream {
    pub fn new(response: reqwest::Response) -> EventStream {
        EventStream { response, buffer: Vec::new() }
    }

    /// The next frame, or `None` when the server ended the stream.
    pub async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let raw: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let text = String::from_utf8(raw).expect("frames are UTF-8");
                let mut frame = Frame { id: None, event: String::new(), data: Value::Null };
                for line in text.lines() {
                    if let Some(id) = line.strip_prefix("id: ") {
                        frame.id = Some(id.parse().expect("numeric id"));
                    } else if let Some(event) = line.strip_prefix("event: ") {
                        frame.event = event.to_string();
                    } else if let Some(data) = line.strip_prefix("data: ") {
                        frame.data = serde_json::from_str(data).expect("one-line JSON data");
                    }
                }
                return Some(frame);
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk),
                _ => {
                    assert!(self.buffer.iter().all(u8::is_ascii_whitespace), "the stream ended inside a frame");
                    return None;
                }
            }
        }
    }

    /// Frames until the stream ends, failing after `deadline`.
    pub async fn to_end(&mut self, deadline: Duration) -> Vec<Frame> {
        let mut frames = Vec::new();
        tokio::time::timeout(deadline, async {
            while let Some(frame) = self.next().await {
                frames.push(frame);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the stream did not end within {deadline:?}; got {frames:?}"));
        frames
    }
}
