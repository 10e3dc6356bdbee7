//! figma-compat through the real stack: the plugin's calls, its error
//! shape, and the larger body cap for whole Figma documents.

use std::sync::OnceLock;

use cogo_tests::Stack;
use serde_json::{json, Value};

fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        Stack::builder()
            .var("FIGMA_MAX_BODY_BYTES", "3000000")
            .var("FIGMA_AGENT_EXECUTOR", AGENTS)
            .var("FIGMA_AGENT_WAIT_MS", "1500")
            .start()
    })
}

const AGENTS: &str = "figma-agents-under-test";

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
    let too_big = client.send_raw("POST", "/figma-compat/uui/generate", big).await;
    assert_eq!(too_big.status, 413);
    assert_eq!(too_big.json()["error"], "payload_too_large");
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
