//! Artifacts through the real stack: upload links, streamed uploads into
//! the local R2 bucket, signed download links with ranges, and the
//! Supabase Storage backend against a local server that records requests.

use cogo_tests::{unique, Answer, Client, Recorded, Recorder, Stack};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

const SECRET: &str = "artifact-link-secret-for-the-tests-0123456789";

fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| Stack::builder().var("ARTIFACT_SIGNING_SECRET", SECRET).start())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Pseudo-random bytes (a fixed LCG: reproducible, not compressible).
fn bytes(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}

/// A running job of a fresh executor, owned by `owner` when given: (id, lease token).
async fn running_job(stack: &Stack, owner: Option<&Client<'_>>) -> (String, String) {
    let executor = unique("art");
    let service = stack.client();
    let assigner = owner.unwrap_or(&service);
    assigner.post_ok("/api/collab/task.assign", &json!({"type": "demo.art", "executorId": executor})).await;
    let job = service.post_ok("/api/collab/task.claim", &json!({"executorId": executor, "workerId": "w"})).await["job"]
        .clone();
    (job["id"].as_str().unwrap().to_string(), job["leaseToken"].as_str().unwrap().to_string())
}

async fn upload_url(stack: &Stack, job: &str, token: &str, name: &str) -> Value {
    let body = json!({"jobId": job, "leaseToken": token, "name": name, "mime": "application/x-test"});
    stack.client().post_ok("/functions/v1/artifact-upload-url", &body).await
}

async fn put(url: &str, data: Vec<u8>) -> (u16, Value) {
    let resp =
        reqwest::Client::new().put(url).header("content-type", "application/x-test").body(data).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get(url: &str, range: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(url);
    if let Some(r) = range {
        req = req.header("range", r);
    }
    req.send().await.unwrap()
}

async fn sign(client: &Client<'_>, path: &str) -> (u16, Value) {
    let reply = client.get(&format!("/functions/v1/sign-artifact?bucket=artifacts&path={path}&expires=3600")).await;
    (reply.status, serde_json::from_str(&reply.text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn upload_sign_download_is_byte_identical_with_ranges() {
    let stack = stack();
    let (job, token) = running_job(stack, None).await;
    for (name, size) in [("empty.bin", 0usize), ("one.bin", 1), ("five-mb.bin", 5 * 1024 * 1024)] {
        let data = bytes(size);
        let link = upload_url(stack, &job, &token, name).await;
        assert_eq!(link["method"], "PUT");
        assert_eq!(link["path"], format!("{job}/{name}"));
        let (status, stored) = put(link["url"].as_str().unwrap(), data.clone()).await;
        assert_eq!(status, 201, "{name}: {stored}");
        assert_eq!(stored["artifact"]["size"], size, "{name}");
        assert_eq!(stored["artifact"]["sha256"], sha256(&data), "{name}: hashed on the way in");
        assert_eq!(stored["artifact"]["mime"], "application/x-test");

        let (status, signed) = sign(&stack.client(), &format!("{job}/{name}")).await;
        assert_eq!(status, 200, "{signed}");
        assert_eq!((signed["bucket"].as_str(), signed["expires"].as_i64()), (Some("artifacts"), Some(3600)));
        let url = signed["url"].as_str().unwrap().to_string();
        let resp = get(&url, None).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/x-test");
        assert!(resp.headers().get("etag").is_some());
        let got = resp.bytes().await.unwrap();
        assert_eq!(sha256(&got), sha256(&data), "{name}: downloaded bytes are the uploaded ones");
        if size > 1000 {
            for (range, start, end) in
                [("bytes=0-9", 0, 9), ("bytes=-5", size - 5, size - 1), ("bytes=4000000-", 4_000_000, size - 1)]
            {
                let resp = get(&url, Some(range)).await;
                assert_eq!(resp.status(), 206, "{range}");
                assert_eq!(resp.headers()["content-range"], format!("bytes {start}-{end}/{size}").as_str());
                assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[start..=end], "{range}");
            }
            let resp = get(&url, Some(&format!("bytes={size}-"))).await;
            assert_eq!(resp.status(), 416);
            assert_eq!(resp.headers()["content-range"], format!("bytes */{size}").as_str());
        }
    }
    let listed = stack.client().get(&format!("/functions/v1/artifacts-list?jobId={job}")).await.json();
    assert_eq!(listed["count"], 3);
}

/// The status of `GET target` sent byte for byte, so no client library
/// resolves `..` or `%2E%2E` before the server sees them.
async fn raw_get_status(stack: &Stack, target: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = stack.base_url.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    socket.read_exact(&mut head).await.unwrap();
    std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap()
}

fn signature(method: &str, path: &str, exp: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{method}\nartifacts\n{path}\n{exp}").as_bytes());
    hex(&mac.finalize().into_bytes())
}

#[tokio::test]
async fn changed_or_expired_links_are_403_and_traversal_is_400() {
    let stack = stack();
    let (job, token) = running_job(stack, None).await;
    let link = upload_url(stack, &job, &token, "a.txt").await;
    assert_eq!(put(link["url"].as_str().unwrap(), b"hello".to_vec()).await.0, 201);
    let path = format!("{job}/a.txt");
    let (_, signed) = sign(&stack.client(), &path).await;
    let url = signed["url"].as_str().unwrap().to_string();
    assert_eq!(get(&url, None).await.status(), 200);

    let (base, query) = url.split_once('?').unwrap();
    let exp: i64 = query.split('&').find_map(|p| p.strip_prefix("exp=")).unwrap().parse().unwrap();
    let sig = query.split('&').find_map(|p| p.strip_prefix("sig=")).unwrap().to_string();
    let mut flipped = sig.clone();
    flipped.replace_range(0..1, if sig.starts_with('0') { "1" } else { "0" });
    let code = |resp: reqwest::Response| async move {
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.unwrap_or(Value::Null)["error"]["code"].as_str().unwrap_or("").to_string())
    };
    for (label, candidate) in [
        ("signature", format!("{base}?exp={exp}&sig={flipped}")),
        ("path", format!("{}?exp={exp}&sig={sig}", base.replace("a.txt", "b.txt"))),
        ("expiry", format!("{base}?exp={}&sig={sig}", exp + 1)),
        ("no signature", format!("{base}?exp={exp}")),
    ] {
        assert_eq!(code(get(&candidate, None).await).await, (403, "invalid_signature".into()), "{label}");
    }
    // The GET link does not let anyone PUT.
    assert_eq!(put(&url, b"overwrite".to_vec()).await.0, 403, "method");
    // Correctly signed, but past its expiry.
    let past = 1_000_000;
    let expired = format!("{base}?exp={past}&sig={}", signature("GET", &path, past));
    assert_eq!(code(get(&expired, None).await).await, (403, "link_expired".into()));

    for traversal in ["..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "a%00b", "%252e%252e/x", "a//b", "a%5Cb", "a%0Ab"] {
        let target = format!("/functions/v1/artifact/artifacts/{traversal}?exp={exp}&sig={sig}");
        assert_eq!(raw_get_status(stack, &target).await, 400, "{traversal}");
        let (status, _) = sign(&stack.client(), traversal).await;
        assert_eq!(status, 400, "sign-artifact {traversal}");
    }
    // Plain `..` and `%2E%2E` segments are resolved by the runtime's URL
    // parser before the bundle sees the request: they can only name another
    // path, whose signature does not match.
    for dots in ["a/../b", "a/%2E%2E/b", "../../etc/passwd"] {
        let target = format!("/functions/v1/artifact/artifacts/{job}/{dots}?exp={exp}&sig={sig}");
        assert_eq!(raw_get_status(stack, &target).await, 403, "{dots}");
    }
}

#[tokio::test]
async fn someone_elses_artifact_is_404_and_uploads_need_the_lease() {
    let stack = stack();
    let now = cogo_dev::token::unix_now();
    let user =
        |sub: &str| format!("Bearer {}", stack.token(json!({"role": "authenticated", "sub": sub, "exp": now + 600})));
    let (alice_auth, bob_auth) = (user(&unique("alice")), user(&unique("bob")));
    let (alice, bob) = (stack.client_with(Some(&alice_auth)), stack.client_with(Some(&bob_auth)));
    let (job, token) = running_job(stack, Some(&alice)).await;
    let link = upload_url(stack, &job, &token, "mine.txt").await;
    assert_eq!(put(link["url"].as_str().unwrap(), b"secret plans".to_vec()).await.0, 201);
    let path = format!("{job}/mine.txt");
    assert_eq!(sign(&alice, &path).await.0, 200, "the owner may sign");
    let (status, answer) = sign(&bob, &path).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("artifact_not_found")));
    let (status, answer) = sign(&stack.client(), &format!("{job}/missing.txt")).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("object_not_found")));

    // An upload link needs the job's current lease.
    let stale = json!({"jobId": job, "leaseToken": "6b1f1f3e-8d3c-4a55-9a43-0d5c1f9a6e01", "name": "x.txt"});
    let reply = stack.client().post("/functions/v1/artifact-upload-url", &stale).await;
    assert_eq!((reply.status, reply.json()["error"]["code"].as_str()), (409, Some("lease_lost")));
    stack.client().post_ok("/api/collab/task.result", &json!({"jobId": job, "type": "demo.art", "ok": true})).await;
    let done = json!({"jobId": job, "leaseToken": token, "name": "late.txt"});
    let reply = stack.client().post("/functions/v1/artifact-upload-url", &done).await;
    assert_eq!((reply.status, reply.json()["error"]["code"].as_str()), (409, Some("not_running")));
    let missing = json!({"jobId": job, "name": "x.txt"});
    assert_eq!(stack.client().post("/functions/v1/artifact-upload-url", &missing).await.status, 400);
    let traversal = json!({"jobId": job, "leaseToken": token, "name": "../x.txt"});
    assert_eq!(stack.client().post("/functions/v1/artifact-upload-url", &traversal).await.status, 400);
}

fn storage_answer(request: &Recorded) -> Answer {
    match request.method.as_str() {
        "POST" if request.path.starts_with("/storage/v1/object/sign/") => {
            let path = request.path.trim_start_matches("/storage/v1");
            (
                200,
                vec![("content-type", "application/json".into())],
                json!({"signedURL": format!("{path}?token=tok")}).to_string().into_bytes(),
            )
        }
        "POST" => (200, vec![("content-type", "application/json".into())], br#"{"Key":"k"}"#.to_vec()),
        "HEAD" if request.path.ends_with("/missing.txt") => (400, vec![], Vec::new()),
        "HEAD" => (200, vec![("etag", "\"e\"".into()), ("content-type", "text/plain".into())], Vec::new()),
        _ => (404, vec![], Vec::new()),
    }
}

#[tokio::test]
async fn the_supabase_storage_backend_sends_what_storage_expects() {
    let recorder = Recorder::start(storage_answer).await;
    let base = format!("http://127.0.0.1:{}/storage/v1", recorder.port);
    let stack = Stack::builder()
        .var("ARTIFACT_SIGNING_SECRET", SECRET)
        .var("STORAGE_BACKEND", "supabase")
        .var("SUPABASE_STORAGE_URL", &base)
        .var("MAX_ARTIFACT_BYTES", "100000")
        .start();
    let (job, token) = running_job(&stack, None).await;
    let body = json!({"jobId": job, "leaseToken": token, "name": "report 1.txt", "mime": "text/plain"});
    let link = stack.client().post_ok("/functions/v1/artifact-upload-url", &body).await;
    let data = bytes(70_000);
    let resp = reqwest::Client::new()
        .put(link["url"].as_str().unwrap())
        .header("content-type", "text/plain")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let stored: Value = resp.json().await.unwrap();
    assert_eq!(stored["artifact"]["sha256"], sha256(&data));

    let signed =
        stack.client().get(&format!("/functions/v1/sign-artifact?path={job}/report%201.txt&expires=120")).await;
    assert_eq!(signed.status, 200, "{}", signed.text);
    assert_eq!(signed.json()["url"], format!("{base}/object/sign/artifacts/{job}/report%201.txt?token=tok"));
    let missing = stack.client().get(&format!("/functions/v1/sign-artifact?path={job}/missing.txt")).await;
    assert_eq!(missing.status, 404);

    let requests = recorder.requests();
    let upload = requests.iter().find(|r| r.method == "POST" && !r.path.contains("/sign/")).expect("an upload");
    assert_eq!(upload.path, format!("/storage/v1/object/artifacts/{job}/report%201.txt"));
    assert_eq!(upload.header("authorization"), Some(format!("Bearer {}", stack.service_key).as_str()));
    assert_eq!(upload.header("apikey"), Some(stack.service_key.as_str()));
    assert_eq!(upload.header("x-upsert"), Some("true"));
    assert_eq!(upload.header("content-type"), Some("text/plain"));
    assert_eq!(sha256(&upload.body), sha256(&data), "the bytes reach Storage unchanged");
    let head = requests.iter().find(|r| r.method == "HEAD").expect("an existence check");
    assert_eq!(head.path, format!("/storage/v1/object/authenticated/artifacts/{job}/report%201.txt"));
    let sign = requests.iter().find(|r| r.path.contains("/object/sign/")).expect("a sign request");
    assert_eq!(serde_json::from_slice::<Value>(&sign.body).unwrap(), json!({"expiresIn": 120}));
}
