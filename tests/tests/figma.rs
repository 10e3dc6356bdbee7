//! figma-compat through the real stack: the plugin's calls, its error
//! shape, and the larger body cap for whole Figma documents.

use std::sync::OnceLock;

use cogo_tests::{unique, EventStream, Stack};
use serde_json::{json, Value};

fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        Stack::builder()
            .var("FIGMA_MAX_BODY_BYTES", &CAP.to_string())
            .var("FIGMA_AGENT_EXECUTOR", AGENTS)
            .var("FIGMA_AGENT_WAIT_MS", "1500")
            .var("SSE_KEEPALIVE_MS", "300")
            .start()
    })
}

const AGENTS: &str = "figma-agents-under-test";
/// The stack's `FIGMA_MAX_BODY_BYTES`.
const CAP: usize = 3_000_000;

fn fixture(name: &str) -> Value {
    let path = cogo_tests::workspace_root().join("../shared/fixtures/figma").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn healthz_on_both_url_families() {
    for path in ["/functions/v1/figma-compat/healthz", "/figma-compat/healthz"] {
        let reply = stack().client_with(None).get(path).await;
        assert_eq!((reply.status, reply.json()["ok"].as_bool()), (200, Some(true)), "{path}");
    }
}

#[tokio::test]
async fn generate_converts_a_large_file_and_back() {
    let client = stack().client();
    // 1.9 MB: over the 1 MB default cap of other routes, under figma-compat's.
    let doc = fixture("rest-file-design-system-constraints.json");
    let project = "00000000-0000-4000-8000-000000000042";
    let reply = client.post("/figma-compat/uui/generate", &json!({"projectId": project, "figma_json": doc})).await;
    assert_eq!(reply.status, 200, "{}", &reply.text[..reply.text.len().min(300)]);
    let answer = reply.json();
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["trace_id"].as_str().map(str::len), Some(36));
    let result = &answer["result"];
    assert_eq!(result["cogo_ui_json"]["meta"]["project_id"], project);
    assert_eq!(
        result["uui_json"]["tree"].as_array().unwrap().len(),
        result["cogo_ui_json"]["tree"].as_array().unwrap().len()
    );

    let back = client
        .post("/functions/v1/figma-compat/figma/from-uui", &json!({"cogo_ui_json": result["cogo_ui_json"]}))
        .await;
    assert_eq!(back.status, 200);
    let figma_like = back.json()["figma_like"].clone();
    let again = client.post("/figma-compat/uui/generate", &json!({"figma_like": figma_like})).await.json();
    assert_eq!(
        again["result"]["cogo_ui_json"]["tree"], result["cogo_ui_json"]["tree"],
        "a fixed point through the edge"
    );

    // The plugin's seed form.
    let seed = json!({"cogo_ui_json": {"tree": [{"type": "container", "id": "root", "children": [{"type": "text", "id": "t", "props": {"text": "Welcome"}}]}]}});
    let seeded = client.post("/figma-compat/uui/generate", &seed).await.json();
    assert_eq!(seeded["result"]["uui_json"]["tree"][0]["children"][0]["kind"], "text");
}

#[tokio::test]
async fn errors_come_in_the_plugins_shape() {
    let client = stack().client();
    let bad = json!({"figma_json": {"document": {"type": "DOCUMENT", "children": [{"type": "CANVAS", "children": [{"id": "1:1"}]}]}}});
    let reply = client.post("/figma-compat/uui/generate", &bad).await;
    assert_eq!(reply.status, 400);
    let body = reply.json();
    assert_eq!((body["ok"].as_bool(), body["error"].as_str()), (Some(false), Some("invalid_figma_json")));
    assert_eq!(body["details"]["path"], "$.figma_json.pages[0].children[0].type");
    assert!(body["reason"].as_str().unwrap().contains("is missing"));
    let none = client.post("/figma-compat/uui/generate", &json!({"intent": "x"})).await;
    assert_eq!((none.status, none.json()["ok"].as_bool()), (400, Some(false)));
    let huge = vec![b' '; 3_100_000];
    let mut big = br#"{"figma_json":{}}"#.to_vec();
    big.extend(huge);
    // Raw, since the server may answer before it has read the whole body.
    let mut request = format!(
        "POST /figma-compat/uui/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        stack().service_key,
        big.len()
    )
    .into_bytes();
    request.extend(big);
    let (status, reply) = stack().raw(&request);
    assert_eq!(status, 413);
    let too_big: Value = serde_json::from_str(reply.split_once("\r\n\r\n").map_or("", |(_, body)| body)).unwrap();
    assert_eq!(too_big["error"], "payload_too_large");
    let anonymous = stack().client_with(None).post("/figma-compat/uui/generate", &json!({"figma_json": {}})).await;
    assert_eq!((anonymous.status, anonymous.json()["ok"].as_bool()), (401, Some(false)));
}

#[tokio::test]
async fn the_large_file_flow_presign_put_ingest_result() {
    let client = stack().client();
    let project = "00000000-0000-4000-8000-0000000000aa";
    let presigned =
        client.post_ok("/figma-compat/uui/presign", &json!({"projectId": project, "fileName": "tag.json"})).await;
    assert_eq!(
        (presigned["bucket"].as_str(), presigned["key"].as_str()),
        (Some("figma"), Some(&*format!("uploads/{project}/tag.json")))
    );
    let doc = std::fs::read(cogo_tests::workspace_root().join("../shared/fixtures/figma/rest-govuk-tag.json")).unwrap();
    let put =
        reqwest::Client::new().put(presigned["signedUrl"].as_str().unwrap()).body(doc.clone()).send().await.unwrap();
    assert_eq!(put.status(), 201);
    let stored: Value = put.json().await.unwrap();
    let sha = stored["sha256"].as_str().unwrap().to_string();

    let pending =
        client.get("/figma-compat/uui/ingest/result?traceId=6b1f1f3e-8d3c-4a55-9a43-0d5c1f9a6e01").await.json();
    assert_eq!(pending["status"], "pending");
    let wrong = client
        .post(
            "/figma-compat/uui/ingest",
            &json!({"projectId": project, "storage_key": presigned["key"], "sha256": "0".repeat(64)}),
        )
        .await;
    assert_eq!((wrong.status, wrong.json()["error"].as_str()), (422, Some("checksum_mismatch")));
    let ingested = client
        .post_ok(
            "/figma-compat/uui/ingest",
            &json!({"projectId": project, "storage_key": presigned["key"], "sha256": sha}),
        )
        .await;
    let trace = ingested["trace_id"].as_str().unwrap();
    let result = client.get(&format!("/functions/v1/figma-compat/uui/ingest/result?trace_id={trace}")).await.json();
    assert_eq!(result["status"], "ready");
    assert_eq!(result["key"], format!("cogo_ui/{project}/{trace}.json"));
    let converted: Value = reqwest::get(result["signedUrl"].as_str().unwrap()).await.unwrap().json().await.unwrap();
    let direct = client
        .post_ok(
            "/figma-compat/uui/generate",
            &json!({"projectId": project, "figma_json": serde_json::from_slice::<Value>(&doc).unwrap()}),
        )
        .await;
    assert_eq!(converted, direct["result"], "the stored conversion is the one generate answers");

    let missing = client
        .post(
            "/figma-compat/uui/ingest",
            &json!({"projectId": project, "storage_key": format!("uploads/{project}/none.json")}),
        )
        .await;
    assert_eq!((missing.status, missing.json()["ok"].as_bool()), (404, Some(false)));
    let foreign = client
        .post("/figma-compat/uui/ingest", &json!({"projectId": project, "storage_key": "uploads/other/tag.json"}))
        .await;
    assert_eq!(foreign.json()["details"]["path"], "$.storage_key");
}

/// Every node of a converted tree.
fn count_nodes(tree: &Value) -> usize {
    tree.as_array().into_iter().flatten().map(|n| 1 + count_nodes(&n["children"])).sum()
}

#[tokio::test]
async fn a_projects_conversion_reaches_its_creatego_rows_through_the_outbox() {
    let project = "00000000-0000-4000-8000-0000000000bb";
    let now = cogo_dev::token::unix_now();
    let user =
        format!("Bearer {}", stack().token(json!({"role": "authenticated", "sub": "designer-1", "exp": now + 600})));
    let client = stack().client_with(Some(&user));
    let doc = fixture("rest-govuk-cookie-banner.json");
    let mut counts = Vec::new();
    for _ in 0..2 {
        let answer =
            client.post_ok("/figma-compat/uui/generate", &json!({"projectId": project, "figma_json": doc})).await;
        let nodes = count_nodes(&answer["result"]["cogo_ui_json"]["tree"]) as i64;
        let trace = answer["trace_id"].as_str().unwrap().to_string();
        // The projection runs after the answer: wait for this trace's rows to be done.
        let db = cogo_tests::sql().await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let pending: i64 = db
                .query_one(
                    "SELECT count(*) FROM cogo.project_updates WHERE trace_id = $1 AND status <> 'done'",
                    &[&trace],
                )
                .await
                .unwrap()
                .get(0);
            if pending == 0 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the outbox rows of {trace} were not applied");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let row = db
            .query_one(
                "SELECT count(*), count(DISTINCT page_id), min(page_id), count(*) FILTER (WHERE type = 'text')
                 FROM public.components WHERE project_id = $1::text::uuid",
                &[&project],
            )
            .await
            .unwrap();
        let (rows, pages, page, texts): (i64, i64, i32, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
        assert_eq!((rows, pages, page), (nodes, 1, 1), "one CreateGo row per node, on page 1");
        assert!(texts > 0);
        let owner: Option<String> = db
            .query_one("SELECT owner_id FROM public.projects WHERE id = $1::text::uuid", &[&project])
            .await
            .unwrap()
            .get(0);
        assert_eq!(owner.as_deref(), Some("designer-1"));
        counts.push(rows);
    }
    assert_eq!(counts[0], counts[1], "projecting the same document again changes nothing");
}

#[tokio::test]
async fn agent_services_answer_when_the_agent_does_or_hand_off() {
    let client = stack().client();
    let project = "00000000-0000-4000-8000-0000000000cc";
    // An agent that takes one job and answers it.
    let agent = tokio::spawn(async move {
        let worker = stack().client();
        loop {
            let claimed =
                worker.post_ok("/api/collab/task.claim", &json!({"executorId": AGENTS, "workerId": "agent"})).await;
            let job = &claimed["job"];
            if job.is_null() {
                continue;
            }
            let result = json!({"symbols": [{"name": "Button"}]});
            let body = json!({"jobId": job["id"], "type": job["type"], "ok": true, "leaseToken": job["leaseToken"], "result": result});
            worker.post_ok("/api/collab/task.result", &body).await;
            return job["type"].as_str().unwrap().to_string();
        }
    });
    let answered = client.post("/figma-compat/uui/symbols/map", &json!({"projectId": project, "page_id": 1})).await;
    assert_eq!(answered.status, 200, "{}", answered.text);
    let answered = answered.json();
    assert_eq!(
        (answered["status"].as_str(), answered["result"]["symbols"][0]["name"].as_str()),
        (Some("completed"), Some("Button"))
    );
    let claimed_type =
        tokio::time::timeout(std::time::Duration::from_secs(20), agent).await.expect("the agent got the job");
    assert_eq!(claimed_type.unwrap(), "figma.uui.symbols.map");

    // Nobody answers within the wait: handed off, and the job is there to poll.
    let handed = client.post("/functions/v1/figma-compat/uui/bdd/generate", &json!({"projectId": project})).await;
    assert_eq!(handed.status, 202, "{}", handed.text);
    let trace = handed.json()["trace_id"].as_str().unwrap().to_string();
    let status = client.get(&format!("/functions/v1/trace-status?trace_id={trace}")).await.json();
    assert_eq!(status["status"], "pending");

    let bad = client.post("/figma-compat/uui/variables/derive", &json!({"projectId": "nope"})).await;
    assert_eq!((bad.status, bad.json()["ok"].as_bool()), (400, Some(false)));
    let page =
        client.post("/figma-compat/uui/variables/derive", &json!({"projectId": project, "page_id": "one"})).await;
    assert_eq!(page.status, 400);
    let unknown = client.post("/figma-compat/uui/teleport", &json!({"projectId": project})).await;
    assert_eq!((unknown.status, unknown.json()["ok"].as_bool()), (404, Some(false)));
}

fn user(sub: &str) -> String {
    let now = cogo_dev::token::unix_now();
    format!("Bearer {}", stack().token(json!({"role": "authenticated", "sub": sub, "exp": now + 600})))
}

fn fresh_project() -> String {
    let n = unique("p").bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
    format!("00000000-0000-4000-8000-{:012x}", n & 0xffff_ffff_ffff)
}

/// The project's CreateGo rows and its owner, read as the superuser.
async fn rows_and_owner(project: &str) -> (Vec<(String, String)>, Option<String>) {
    let db = cogo_tests::sql().await;
    let rows = db
        .query(
            "SELECT id, coalesce(name, '') FROM public.components WHERE project_id = $1::text::uuid ORDER BY id",
            &[&project],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let owner = db
        .query_opt("SELECT owner_id FROM public.projects WHERE id = $1::text::uuid", &[&project])
        .await
        .unwrap()
        .and_then(|r| r.get(0));
    (rows, owner)
}

async fn outbox_rows(project: &str) -> i64 {
    let db = cogo_tests::sql().await;
    db.query_one("SELECT count(*) FROM cogo.project_updates WHERE project_id = $1", &[&project]).await.unwrap().get(0)
}

/// Waits until the project's outbox rows are all projected.
async fn projected(project: &str) {
    let db = cogo_tests::sql().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let pending: i64 = db
            .query_one(
                "SELECT count(*) FROM cogo.project_updates WHERE project_id = $1 AND status <> 'done'",
                &[&project],
            )
            .await
            .unwrap()
            .get(0);
        if pending == 0 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the outbox rows of {project} were not applied");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn assert_not_found(reply: &cogo_tests::Reply, what: &str) {
    assert_eq!(reply.status, 404, "{what}: {}", reply.text);
    let body = reply.json();
    assert_eq!(body["ok"], false, "{what}: the plugin's error shape");
    assert!(body["error"].is_string() && body["reason"].is_string(), "{what}: {body}");
}

#[tokio::test]
async fn someone_elses_project_is_404_and_unchanged() {
    let (alice, bob) = (user(&unique("alice")), user(&unique("bob")));
    let (a, b) = (stack().client_with(Some(&alice)), stack().client_with(Some(&bob)));
    let project = fresh_project();
    let doc = fixture("rest-govuk-tag.json");
    a.post_ok("/figma-compat/uui/generate", &json!({"projectId": project, "figma_json": doc})).await;
    projected(&project).await;
    let before = rows_and_owner(&project).await;
    assert!(!before.0.is_empty());
    let outbox = outbox_rows(&project).await;

    let other = fixture("rest-govuk-cookie-banner.json");
    let refused = b.post("/figma-compat/uui/generate", &json!({"projectId": project, "figma_json": other})).await;
    assert_not_found(&refused, "generate into someone else's project");
    assert_eq!(refused.json()["error"], "project_not_found");
    assert_eq!(outbox_rows(&project).await, outbox, "no outbox row");
    stack().client().get("/functions/v1/leases-release").await;
    assert_eq!(rows_and_owner(&project).await, before, "A's rows and ownership are unchanged");
    // The owner still writes; the platform may write into any project.
    a.post_ok("/figma-compat/uui/generate", &json!({"projectId": project, "figma_json": doc})).await;
    stack().client().post_ok("/figma-compat/uui/generate", &json!({"projectId": project, "figma_json": doc})).await;
    projected(&project).await;
    assert_eq!(rows_and_owner(&project).await.1, before.1, "the platform's write does not change the owner");
}

#[tokio::test]
async fn the_first_user_of_a_project_id_owns_it() {
    let (alice, bob) = (user(&unique("alice")), user(&unique("bob")));
    let (a, b) = (stack().client_with(Some(&alice)), stack().client_with(Some(&bob)));
    let doc = fixture("rest-govuk-tag.json");
    // B uses a fresh id first: it is B's, and A's later conversion is 404.
    let project = fresh_project();
    b.post_ok("/figma-compat/uui/generate", &json!({"projectId": project, "figma_json": doc})).await;
    projected(&project).await;
    let bobs = rows_and_owner(&project).await;
    let refused = a.post("/figma-compat/uui/generate", &json!({"projectId": project, "figma_json": doc})).await;
    assert_not_found(&refused, "the second user of a project id");
    projected(&project).await;
    assert_eq!(rows_and_owner(&project).await, bobs, "the rows stay B's");

    // Two first users racing: exactly one wins.
    let project = fresh_project();
    let body = json!({"projectId": project, "cogo_ui_json": {"tree": [{"type": "container", "id": "root"}]}});
    let (one, two) =
        tokio::join!(a.post("/figma-compat/uui/generate", &body), b.post("/figma-compat/uui/generate", &body));
    let mut statuses = [one.status, two.status];
    statuses.sort();
    assert_eq!(statuses, [200, 404], "{} / {}", one.text, two.text);
    assert_eq!(outbox_rows(&project).await, 2, "only the winner's conversion is in the outbox");
}

#[tokio::test]
async fn someone_elses_uploads_and_results_are_404() {
    let (alice, bob) = (user(&unique("alice")), user(&unique("bob")));
    let (a, b) = (stack().client_with(Some(&alice)), stack().client_with(Some(&bob)));
    let project = fresh_project();
    let presigned =
        a.post_ok("/figma-compat/uui/presign", &json!({"projectId": project, "fileName": "tag.json"})).await;
    let key = presigned["key"].as_str().unwrap().to_string();
    assert!(key.starts_with(&format!("uploads/{project}/")) && key.ends_with("/tag.json"), "{key}");
    let doc = std::fs::read(cogo_tests::workspace_root().join("../shared/fixtures/figma/rest-govuk-tag.json")).unwrap();
    let put = reqwest::Client::new().put(presigned["signedUrl"].as_str().unwrap()).body(doc).send().await.unwrap();
    assert_eq!(put.status(), 201);
    let trace = a.post_ok("/figma-compat/uui/ingest", &json!({"projectId": project, "storage_key": key})).await
        ["trace_id"]
        .as_str()
        .unwrap()
        .to_string();
    let outbox = outbox_rows(&project).await;

    let presign = b.post("/figma-compat/uui/presign", &json!({"projectId": project, "fileName": "tag.json"})).await;
    assert_not_found(&presign, "presign for someone else's project");
    let ingest = b.post("/figma-compat/uui/ingest", &json!({"projectId": project, "storage_key": key})).await;
    assert_not_found(&ingest, "ingest of someone else's upload");
    // B's own project does not open A's upload either.
    let own = fresh_project();
    let sideways = b.post("/figma-compat/uui/ingest", &json!({"projectId": own, "storage_key": key})).await;
    assert_not_found(&sideways, "someone else's upload through one's own project");
    let result = b.get(&format!("/figma-compat/uui/ingest/result?traceId={trace}")).await;
    assert_not_found(&result, "someone else's ingest result");
    assert!(!result.text.contains("signedUrl") && !result.text.contains("cogo_ui/"), "no link: {}", result.text);
    assert_eq!(outbox_rows(&project).await, outbox, "nothing written");
    // Two callers' uploads never share a key.
    let bobs = b.post_ok("/figma-compat/uui/presign", &json!({"projectId": own, "fileName": "tag.json"})).await;
    assert_ne!(bobs["key"], key);
    let mine = a.get(&format!("/figma-compat/uui/ingest/result?traceId={trace}")).await.json();
    assert_eq!(mine["status"], "ready");
}

/// A JSON body of `size` bytes, sent without Content-Length (chunked): the status answered.
async fn post_chunked(path: &str, size: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = stack().base_url.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        stack().service_key
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut sent = 0;
    let chunk = vec![b' '; 64 * 1024];
    // The server may answer and close before all of it is sent.
    while sent < size {
        let part = &chunk[..chunk.len().min(size - sent)];
        let framed = [format!("{:x}\r\n", part.len()).as_bytes(), part, b"\r\n"].concat();
        if socket.write_all(&framed).await.is_err() {
            break;
        }
        sent += part.len();
    }
    let _ = socket.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {text:?}"))
}

#[tokio::test]
async fn a_body_over_the_cap_is_413_and_the_isolate_stays_healthy() {
    // Another user's live stream, open throughout.
    let carol = user(&unique("carol"));
    let executor = unique("sse");
    stack()
        .client_with(Some(&carol))
        .post_ok("/api/collab/task.assign", &json!({"type": "chat.message", "executorId": executor}))
        .await;
    let job =
        stack().client().post_ok("/api/collab/task.claim", &json!({"executorId": executor, "workerId": "w"})).await
            ["job"]
            .clone();
    let response = reqwest::Client::new()
        .get(stack().url(&format!("/functions/v1/job-events?id={}", job["id"].as_str().unwrap())))
        .header("authorization", &carol)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = EventStream::new(response);

    let mut over = br#"{"figma_json":{}}"#.to_vec();
    over.resize(CAP + 1, b' ');
    let client = stack().client();
    let (too_big, health) =
        tokio::join!(client.send_raw("POST", "/figma-compat/uui/generate", over), client.get("/api/collab/health"));
    assert_eq!(too_big.status, 413);
    let body = too_big.json();
    assert_eq!((body["ok"].as_bool(), body["error"].as_str()), (Some(false), Some("payload_too_large")));
    assert_eq!(body["details"]["limit"], CAP);
    assert_eq!(health.status, 200);
    // Without a Content-Length: refused once it passes the cap.
    assert_eq!(post_chunked("/figma-compat/uui/generate", CAP + 1).await, 413);
    // Exactly the cap is admitted (and is not a Figma document: 400, not 413).
    let mut at_cap = br#"{"figma_json":{}}"#.to_vec();
    at_cap.resize(CAP, b' ');
    assert_eq!(client.send_raw("POST", "/figma-compat/uui/generate", at_cap).await.status, 400);

    let body = json!({"jobId": job["id"], "leaseToken": job["leaseToken"], "delta": "still here"});
    stack().client().post_ok("/api/collab/task.progress", &body).await;
    let delivered = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let frame = stream.next().await.expect("the stream stays open");
            if frame.event == "progress" {
                return frame.data["delta"].clone();
            }
        }
    })
    .await
    .expect("the stream keeps delivering");
    assert_eq!(delivered, "still here");
    assert_eq!(stack().client().get("/api/collab/health").await.status, 200);
}

#[tokio::test]
async fn an_upload_over_the_cap_is_refused_and_generate_reports_its_time() {
    let client = stack().client();
    let project = fresh_project();
    let presigned =
        client.post_ok("/figma-compat/uui/presign", &json!({"projectId": project, "fileName": "big.json"})).await;
    let put = reqwest::Client::new()
        .put(presigned["signedUrl"].as_str().unwrap())
        .body(vec![b' '; CAP + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 413);
    let refused: Value = put.json().await.unwrap();
    assert_eq!(refused["error"]["details"]["limit"], CAP, "{refused}");

    let reply = client.post("/figma-compat/uui/generate", &json!({"figma_json": fixture("rest-govuk-tag.json")})).await;
    assert_eq!(reply.status, 200);
    let timing = reply.header("server-timing").expect("Server-Timing");
    assert!(timing.starts_with("convert;dur="), "{timing}");
}

// ---- Images: figma-json-plugin dumps with their bytes, REST image maps ----

/// The image hash the dump fixture's fill names.
const HASH: &str = "459d44e506315e435060e18b94e213e166c52f62";

fn sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    cogo_shared::hex(&Sha256::digest(bytes))
}

/// A real PNG, 2x2 RGB pixels coloured from `seed` (each test its own
/// image), made here: signature, IHDR, one IDAT of a stored zlib block, IEND.
fn png(seed: &str) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in bytes {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend(kind);
        out.extend(data);
        let crc = crc32(&out[start..]);
        out.extend(crc.to_be_bytes());
    }
    use sha2::Digest;
    let pixels = &sha2::Sha256::digest(seed.as_bytes())[..12];
    // Two scanlines, each a filter byte (none) and two RGB pixels.
    let raw: Vec<u8> = pixels.chunks(6).flat_map(|row| std::iter::once(0).chain(row.iter().copied())).collect();
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    let len = raw.len() as u16;
    let mut zlib = vec![0x78, 0x01, 0x01];
    zlib.extend(len.to_le_bytes());
    zlib.extend((!len).to_le_bytes());
    zlib.extend(&raw);
    zlib.extend(((b << 16) | a).to_be_bytes());
    let mut ihdr = Vec::new();
    ihdr.extend(2u32.to_be_bytes());
    ihdr.extend(2u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn base64(bytes: &[u8]) -> String {
    use base64ct::Encoding;
    base64ct::Base64::encode_string(bytes)
}

/// `bytes` in each form the plugin's versions write them.
fn encodings(bytes: &[u8]) -> Vec<(&'static str, Value)> {
    let indexed: serde_json::Map<String, Value> =
        bytes.iter().enumerate().map(|(i, b)| (i.to_string(), json!(b))).collect();
    vec![
        ("array", json!(bytes)),
        ("index-keyed object", Value::Object(indexed)),
        ("base64", json!(base64(bytes))),
        ("data URL", json!(format!("data:image/png;base64,{}", base64(bytes)))),
    ]
}

/// figma-json-plugin's dump of the fixture's objects, with `images`.
fn dump(images: Value) -> Value {
    json!({"objects": fixture("plugin-dump-frame-image-gradient-text.json"), "images": images,
           "components": {}, "componentSets": {}, "styles": {}})
}

/// Every image paint of a converted tree (fills and strokes), of either
/// form (`props` in cogo_ui_json, `attrs` in uui_json).
fn image_paints(tree: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for node in tree.as_array().into_iter().flatten() {
        let style = &node.get("props").unwrap_or(&node["attrs"])["style"];
        let paints = style["fills"].as_array().into_iter().chain(style["stroke"]["paints"].as_array()).flatten();
        out.extend(paints.filter(|p| p["type"] == "image").cloned());
        out.extend(image_paints(&node["children"]));
    }
    out
}

/// The tree without the image paints' `url`s.
fn without_urls(mut value: Value) -> Value {
    match &mut value {
        Value::Object(map) => {
            if map.get("type").is_some_and(|t| t == "image") && map.contains_key("imageRef") {
                map.remove("url");
            }
            for v in map.values_mut() {
                *v = without_urls(v.take());
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| *v = without_urls(v.take())),
        _ => {}
    }
    value
}

/// The characters of every visible TEXT node of plugin nodes.
fn visible_texts(nodes: &Value, out: &mut Vec<String>) {
    for node in nodes.as_array().into_iter().flatten().filter(|n| n["visible"] != false) {
        if node["type"] == "TEXT" {
            out.push(node["characters"].as_str().unwrap().to_string());
        }
        visible_texts(&node["children"], out);
    }
}

fn texts(tree: &Value, out: &mut Vec<String>) {
    for node in tree.as_array().into_iter().flatten() {
        out.extend(node["props"]["text"].as_str().map(str::to_string));
        texts(&node["children"], out);
    }
}

/// Whether the figma bucket holds `images/<sha>`, asked through sign-artifact
/// (a storage lookup: 404 object_not_found when it is not there).
async fn stored(sha: &str) -> bool {
    let reply = stack().client().get(&format!("/functions/v1/sign-artifact?bucket=figma&path=images/{sha}")).await;
    assert!(matches!(reply.status, 200 | 404), "{}", reply.text);
    reply.status == 200
}

async fn download(url: &str) -> (Option<String>, Vec<u8>) {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200, "GET {url}");
    let kind = response.headers().get("content-type").map(|t| t.to_str().unwrap().to_string());
    (kind, response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn a_dump_with_image_bytes_converts_in_every_encoding_and_links_the_stored_bytes() {
    let client = stack().client();
    let image = png(&unique("dump"));
    let sha = sha256(&image);
    assert!(!stored(&sha).await, "a fresh image");
    let objects = fixture("plugin-dump-frame-image-gradient-text.json");
    let bare = client.post_ok("/figma-compat/uui/generate", &json!({"figma_json": objects})).await["result"].clone();
    let mut expected_texts = Vec::new();
    visible_texts(&objects, &mut expected_texts);
    assert_eq!(expected_texts.len(), 2, "the fixture's two texts");
    let mut links = Vec::new();
    for (form, encoded) in encodings(&image) {
        let reply =
            client.post("/figma-compat/uui/generate", &json!({"figma_json": dump(json!({ HASH: encoded }))})).await;
        assert_eq!(reply.status, 200, "{form}: {}", reply.text);
        let result = reply.json()["result"].clone();
        let paints = image_paints(&result["cogo_ui_json"]["tree"]);
        assert_eq!(paints.len(), 1, "{form}");
        assert_eq!(paints[0]["imageRef"], HASH);
        let url = paints[0]["url"].as_str().unwrap_or_else(|| panic!("{form}: no url")).to_string();
        assert_eq!(image_paints(&result["uui_json"]["tree"])[0]["url"], url, "{form}: uui_json too");
        let (kind, bytes) = download(&url).await;
        assert_eq!((kind.as_deref(), sha256(&bytes)), (Some("image/png"), sha.clone()), "{form}: the stored bytes");
        assert_eq!(
            result["images"][HASH],
            json!({"sha256": sha, "bytes": image.len(), "contentType": "image/png", "url": url, "stored": "bucket"}),
            "{form}"
        );
        let mut shown = Vec::new();
        texts(&result["cogo_ui_json"]["tree"], &mut shown);
        for text in &expected_texts {
            assert!(shown.contains(text), "{form}: {text:?} was lost");
        }
        let mut enveloped = without_urls(result.clone());
        enveloped.as_object_mut().unwrap().remove("images");
        assert_eq!(enveloped, bare, "{form}: the same tree as the bare objects, but for the url");
        links.push(url.split_once('?').unwrap().0.to_string());
    }
    // Content-addressed: every conversion links the one object.
    assert!(links.iter().all(|l| *l == links[0] && l.ends_with(&format!("/figma/images/{sha}"))), "{links:?}");
    assert!(stored(&sha).await);
}

#[tokio::test]
async fn a_dump_into_someone_elses_project_is_404_and_stores_no_image() {
    let (alice, bob) = (user(&unique("alice")), user(&unique("bob")));
    let project = fresh_project();
    let doc = fixture("rest-govuk-tag.json");
    stack()
        .client_with(Some(&alice))
        .post_ok("/figma-compat/uui/generate", &json!({"projectId": project, "figma_json": doc}))
        .await;
    let outbox = outbox_rows(&project).await;
    let image = png(&unique("intruder"));
    let sha = sha256(&image);
    let body = json!({"projectId": project, "figma_json": dump(json!({ HASH: base64(&image) }))});
    let refused = stack().client_with(Some(&bob)).post("/figma-compat/uui/generate", &body).await;
    assert_not_found(&refused, "a dump into someone else's project");
    assert!(!stored(&sha).await, "the refused dump's image was not stored");
    assert_eq!(outbox_rows(&project).await, outbox, "no outbox row");
}

#[tokio::test]
async fn bad_image_bytes_are_400_with_their_path_and_nothing_is_stored() {
    let client = stack().client();
    let good = png(&unique("good"));
    let mut bad: Vec<Value> = png(&unique("bad")).iter().map(|b| json!(b)).collect();
    bad[12] = json!(256);
    let body = json!({"figma_json": dump(json!({ HASH: base64(&good), "0badhash": bad }))});
    let reply = client.post("/figma-compat/uui/generate", &body).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    let refused = reply.json();
    assert_eq!((refused["ok"].as_bool(), refused["error"].as_str()), (Some(false), Some("invalid_figma_json")));
    assert_eq!(refused["details"]["path"], "$.figma_json.images.0badhash[12]");
    assert!(refused["reason"].as_str().unwrap().contains("0..=255"), "{refused}");
    assert!(!stored(&sha256(&good)).await, "the good image of a refused dump is not stored");

    let base64 =
        client.post("/figma-compat/uui/generate", &json!({"figma_json": dump(json!({ HASH: "iVBO!" }))})).await;
    assert_eq!(base64.json()["details"]["path"], format!("$.figma_json.images.{HASH}"));
    // A REST image map has no nodes: where it belongs is named.
    let map = json!({"error": false, "status": 200, "meta": {"images": {"r": "https://example.com/r.png"}}});
    let alone = client.post("/figma-compat/uui/generate", &json!({"figma_json": map})).await;
    assert_eq!(alone.status, 400);
    assert_eq!(alone.json()["details"]["path"], "$.figma_json");
    assert!(alone.json()["reason"].as_str().unwrap().contains("figma_images"), "{}", alone.text);
}

#[tokio::test]
async fn rest_image_maps_link_a_files_image_fills_and_renders() {
    let client = stack().client();
    let doc = fixture("rest-file-not-pink-presentation.json");
    let mut refs = Vec::new();
    fn collect(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("imageRef").and_then(Value::as_str) {
                    out.push(r.to_string());
                }
                m.values().for_each(|v| collect(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    collect(&doc, &mut refs);
    refs.sort();
    refs.dedup();
    assert!(refs.len() >= 2, "{refs:?}");
    let url = |r: &str| format!("https://s3-alpha.figma.com/img/{r}");
    let fills: serde_json::Map<String, Value> = refs.iter().map(|r| (r.clone(), json!(url(r)))).collect();
    let frame = doc["document"]["children"][0]["children"][0]["id"].as_str().unwrap().to_string();
    let body = json!({
        "figma_json": doc,
        "figma_images": [
            {"error": false, "status": 200, "meta": {"images": fills}},
            {"err": null, "images": {frame.clone(): "https://s3-alpha.figma.com/render/frame.png", "0:0": null}},
        ],
    });
    let result = client.post_ok("/figma-compat/uui/generate", &body).await["result"].clone();
    let paints = image_paints(&result["cogo_ui_json"]["tree"]);
    assert!(!paints.is_empty());
    for paint in &paints {
        assert_eq!(paint["url"].as_str(), Some(url(paint["imageRef"].as_str().unwrap()).as_str()), "{paint}");
    }
    let rendered =
        result["cogo_ui_json"]["tree"].as_array().unwrap().iter().find(|n| n["figma"]["id"] == frame.as_str());
    assert_eq!(rendered.unwrap()["props"]["render"]["url"], "https://s3-alpha.figma.com/render/frame.png");
    assert!(result.get("images").is_none(), "no dump, no images summary");

    let bad =
        json!({"figma_json": {"id": "1:1", "type": "FRAME"}, "figma_images": {"meta": {"images": {"r": "ftp://x"}}}});
    let refused = client.post("/figma-compat/uui/generate", &bad).await;
    assert_eq!(
        (refused.status, refused.json()["details"]["path"].as_str()),
        (400, Some("$.figma_images.meta.images.r"))
    );
}

#[tokio::test]
async fn an_uploaded_dump_is_ingested_with_its_images_linked() {
    let client = stack().client();
    let project = fresh_project();
    let image = png(&unique("ingest"));
    let presigned =
        client.post_ok("/figma-compat/uui/presign", &json!({"projectId": project, "fileName": "dump.json"})).await;
    let doc = serde_json::to_vec(&dump(json!({ HASH: base64(&image) }))).unwrap();
    let put = reqwest::Client::new().put(presigned["signedUrl"].as_str().unwrap()).body(doc).send().await.unwrap();
    assert_eq!(put.status(), 201);
    let ingested = client
        .post_ok("/figma-compat/uui/ingest", &json!({"projectId": project, "storage_key": presigned["key"]}))
        .await;
    let trace = ingested["trace_id"].as_str().unwrap();
    let ready = client.get(&format!("/figma-compat/uui/ingest/result?traceId={trace}")).await.json();
    let (_, converted) = download(ready["signedUrl"].as_str().unwrap()).await;
    let converted: Value = serde_json::from_slice(&converted).unwrap();
    let paints = image_paints(&converted["cogo_ui_json"]["tree"]);
    let (kind, bytes) = download(paints[0]["url"].as_str().expect("a linked fill")).await;
    assert_eq!((kind.as_deref(), sha256(&bytes)), (Some("image/png"), sha256(&image)));
    assert_eq!(converted["images"][HASH]["stored"], "bucket");
}

#[tokio::test]
async fn without_a_bucket_small_images_are_inlined_and_large_ones_omitted() {
    let stack = Stack::builder().without_bucket().start();
    let image = png(&unique("inline"));
    let large = vec![7u8; cogo_shared::figma::images::INLINE_IMAGE_MAX_BYTES + 1];
    let body = json!({"figma_json": dump(json!({ HASH: image.clone(), "large": base64(&large) }))});
    let result = stack.client().post_ok("/figma-compat/uui/generate", &body).await["result"].clone();
    let url = image_paints(&result["cogo_ui_json"]["tree"])[0]["url"].as_str().unwrap().to_string();
    let inlined = url.strip_prefix("data:image/png;base64,").unwrap_or_else(|| panic!("{url}"));
    use base64ct::Encoding;
    assert_eq!(base64ct::Base64::decode_vec(inlined).unwrap(), image);
    assert_eq!(result["images"][HASH]["stored"], "inline");
    assert_eq!(
        result["images"]["large"],
        json!({"sha256": sha256(&large), "bytes": large.len(), "contentType": "application/octet-stream",
               "url": null, "stored": "omitted"})
    );
}

/// Supabase Storage that keeps which objects were uploaded, so its HEAD
/// answers as the real one does.
fn remembering_storage(request: &cogo_tests::Recorded) -> cogo_tests::Answer {
    static UPLOADED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let object = |prefix: &str| request.path.strip_prefix(prefix).map(str::to_string);
    let json_answer =
        |v: Value| (200, vec![("content-type", "application/json".to_string())], v.to_string().into_bytes());
    match request.method.as_str() {
        "POST" if request.path.starts_with("/storage/v1/object/sign/") => {
            json_answer(json!({"signedURL": format!("{}?token=tok", request.path.trim_start_matches("/storage/v1"))}))
        }
        "POST" => {
            UPLOADED.lock().unwrap().extend(object("/storage/v1/object/"));
            json_answer(json!({"Key": "k"}))
        }
        "HEAD"
            if object("/storage/v1/object/authenticated/").is_some_and(|o| UPLOADED.lock().unwrap().contains(&o)) =>
        {
            (200, vec![("etag", "\"e\"".to_string()), ("content-type", "image/png".to_string())], Vec::new())
        }
        _ => (404, vec![], Vec::new()),
    }
}

#[tokio::test]
async fn the_same_image_is_stored_once_through_supabase_storage() {
    let recorder = cogo_tests::Recorder::start(remembering_storage).await;
    let base = format!("http://127.0.0.1:{}/storage/v1", recorder.port);
    let stack = Stack::builder().var("STORAGE_BACKEND", "supabase").var("SUPABASE_STORAGE_URL", &base).start();
    let image = png(&unique("once"));
    let sha = sha256(&image);
    let mut urls = Vec::new();
    for encoded in [json!(image.clone()), json!(base64(&image))] {
        let body = json!({"figma_json": dump(json!({ HASH: encoded }))});
        let result = stack.client().post_ok("/figma-compat/uui/generate", &body).await["result"].clone();
        urls.push(image_paints(&result["cogo_ui_json"]["tree"])[0]["url"].clone());
    }
    let object = format!("figma/images/{sha}");
    assert_eq!(urls, vec![json!(format!("{base}/object/sign/{object}?token=tok")); 2]);
    let requests = recorder.requests();
    let uploads: Vec<_> =
        requests.iter().filter(|r| r.method == "POST" && r.path.ends_with(&format!("/object/{object}"))).collect();
    assert_eq!(uploads.len(), 1, "two conversions, one upload");
    assert_eq!((sha256(&uploads[0].body), uploads[0].header("content-type")), (sha.clone(), Some("image/png")));
    let heads = requests.iter().filter(|r| r.method == "HEAD" && r.path.ends_with(&object)).count();
    assert_eq!(heads, 2, "each conversion looks first");
    let sign = requests.iter().find(|r| r.path.ends_with(&format!("/sign/{object}"))).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&sign.body).unwrap(),
        json!({"expiresIn": 86_400}),
        "7 days, clamped to ARTIFACT_LINK_MAX_SECONDS"
    );
}
