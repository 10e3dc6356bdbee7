//! The gateway as the real `@supabase/supabase-js` sees it (installed by
//! scripts/setup): supabase_js.mjs reads a project with its pages and
//! their components in one embedded select, upserts components in bulk
//! and calls an RPC with an array argument, as the owner and as another
//! user; row level security keeps the other user's rows out of each.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cogo_dev::gateway::{serve, Config};
use cogo_dev::pg_cluster::{PgCluster, PgOptions};
use cogo_dev::process::{on_keeper_thread, port_open, scratch_dir, wait_until};
use cogo_dev::token;
use serde_json::{json, Value};

const SECRET: &str = "supabase-js-secret-of-at-least-32-characters";
const ANON_KEY: &str = "sb_publishable_supabase_js_test";

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("dev/ sits in the workspace")
}

#[test]
fn supabase_js_reads_upserts_and_calls_under_rls() {
    let root = workspace_root();
    let node = root.join("node_modules/.bin/node");
    assert!(
        node.exists() && root.join("node_modules/@supabase/supabase-js").exists(),
        "node_modules lacks node 22 or @supabase/supabase-js: run scripts/setup"
    );
    let dir = scratch_dir(Path::new(env!("CARGO_TARGET_TMPDIR")), "supabase-js").expect("scratch folder");
    let (port, _pg) = on_keeper_thread(move || {
        let pg = PgCluster::start(PgOptions { dir, port: None, durable: false }).expect("start PostgreSQL");
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let admin = pg.uri("postgres");
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            client.batch_execute(include_str!("supabase_js_fixture.sql")).await.expect("fixture");
        });
        // As a Supabase project configures PostgREST.
        let env = [
            ("PGRST_DB_URI", pg.uri("authenticator")),
            ("PGRST_DB_SCHEMAS", "public".to_string()),
            ("PGRST_DB_ANON_ROLE", "anon".to_string()),
            ("PGRST_JWT_SECRET", SECRET.to_string()),
            ("PGRST_DB_MAX_ROWS", "1000".to_string()),
            ("GATEWAY_PUBLISHABLE_KEYS", ANON_KEY.to_string()),
        ];
        let config = Config::from_pairs(env.iter().map(|(k, v)| (k.to_string(), v.clone()))).unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        rt.spawn(serve(config, listener, std::future::pending()));
        wait_until("gateway", Duration::from_secs(20), || port_open(port).then_some(())).unwrap();
        // The runtime serves until the test process ends.
        std::mem::forget(rt);
        (port, pg)
    });
    let user =
        |sub: &str| token::sign(SECRET, json!({"sub": sub, "role": "authenticated", "aud": "authenticated"}), 3600);
    let out = Command::new(&node)
        .arg(root.join("dev/tests/supabase_js.mjs"))
        .env("SUPABASE_URL", format!("http://127.0.0.1:{port}"))
        .env("ANON_KEY", ANON_KEY)
        .env("ALICE_TOKEN", user("alice"))
        .env("BOB_TOKEN", user("bob"))
        .output()
        .expect("run node");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "supabase_js.mjs failed: {stderr}");
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{stderr}", String::from_utf8_lossy(&out.stdout)));

    // One embedded select: the project, its pages, their components.
    assert_eq!(r["aliceTree"]["error"], Value::Null, "{}", r["aliceTree"]);
    assert_eq!(
        r["aliceTree"]["data"],
        json!({
            "id": "11111111-1111-4111-8111-111111111111",
            "name": "Alice's app",
            "pages": [
                {"page_id": 1, "name": "Home", "components": [
                    {"id": "c1", "name": "Title", "type": "text", "index_in_page": 0},
                    {"id": "c2", "name": "Go", "type": "button", "index_in_page": 1}
                ]},
                {"page_id": 2, "name": "About", "components": [
                    {"id": "c3", "name": "Logo", "type": "image", "index_in_page": 0}
                ]}
            ]
        })
    );
    // Bob reads nothing of Alice's project, and only his own tree.
    assert_eq!((&r["bobTree"]["data"], &r["bobTree"]["error"]), (&Value::Null, &Value::Null), "{}", r["bobTree"]);
    assert_eq!(
        r["bobProjects"]["data"],
        json!([{"name": "Bob's app", "pages": [{"name": "Bob home", "components": [{"id": "c1"}]}]}])
    );

    // The bulk upsert: c1 updated, c4 inserted; the count is exact.
    assert_eq!(r["aliceUpsert"]["error"], Value::Null, "{}", r["aliceUpsert"]);
    assert_eq!(r["aliceUpsert"]["status"], 201);
    assert_eq!(r["aliceUpsert"]["count"], 2);
    assert_eq!(
        r["aliceUpsert"]["data"],
        json!([{"id": "c1", "name": "Heading", "dx": 12}, {"id": "c4", "name": "Footer", "dx": 0}])
    );
    // Keys that differ between rows: the missing one is NULL, which dx refuses...
    assert_eq!(r["aliceUpsertNulls"]["status"], 400, "{}", r["aliceUpsertNulls"]);
    assert_eq!(r["aliceUpsertNulls"]["error"]["code"], "23502");
    // ... unless defaultToNull: false, and then it is the column default.
    assert_eq!(r["aliceUpsertDefaults"]["error"], Value::Null, "{}", r["aliceUpsertDefaults"]);
    assert_eq!(
        r["aliceUpsertDefaults"]["data"],
        json!([{"id": "c5", "dx": 3, "version": "1.0"}, {"id": "c6", "dx": 0, "version": "1.0"}])
    );
    // Bob cannot write into Alice's project.
    assert_eq!(r["bobUpsert"]["status"], 403, "{}", r["bobUpsert"]);
    assert_eq!(r["bobUpsert"]["error"]["code"], "42501");

    // The RPC with an array argument sees only the caller's rows.
    assert_eq!(r["aliceRpc"]["error"], Value::Null, "{}", r["aliceRpc"]);
    assert_eq!(
        r["aliceRpc"]["data"],
        json!([
            {"id": "c1", "name": "Heading", "page_id": 1},
            {"id": "c2", "name": "Go", "page_id": 1},
            {"id": "c4", "name": "Footer", "page_id": 2}
        ])
    );
    assert_eq!(r["bobRpc"]["data"], json!([{"id": "c1", "name": "Bob title", "page_id": 1}]));
    assert_eq!(r["aliceCount"]["count"], 6);
    assert_eq!(
        (&r["aliceRpcCount"]["count"], &r["aliceRpcCount"]["data"]),
        (&json!(2), &json!([{"id": "c1"}, {"id": "c2"}]))
    );

    // The query builder's other requests.
    assert_eq!(r["likeAnyOf"]["data"], json!([{"id": "c1"}, {"id": "c2"}]), "{}", r["likeAnyOf"]);
    assert_eq!(r["ilikeAllOf"]["data"], json!([{"id": "c2"}, {"id": "c3"}]), "Go, Logo: {}", r["ilikeAllOf"]);
    assert_eq!(r["textSearch"]["data"], json!([{"id": "c1"}]), "{}", r["textSearch"]);
    assert_eq!(r["websearch"]["data"], json!([{"id": "c3"}, {"id": "c4"}]), "{}", r["websearch"]);
    assert_eq!(r["stripNulls"]["data"], json!([{"id": "c2"}]), "{}", r["stripNulls"]);
    assert_eq!(r["csv"]["data"], "page_id,name\n1,Home\n2,About", "{}", r["csv"]);
    assert_eq!(r["maxAffected"]["error"]["code"], "PGRST124", "{}", r["maxAffected"]);
    assert_eq!(
        (&r["insertCount"]["status"], &r["insertCount"]["count"]),
        (&json!(201), &json!(1)),
        "{}",
        r["insertCount"]
    );
    let pages = &r["aliceAfter"]["data"]["pages"];
    let names = |page: &Value| -> Vec<String> {
        page["components"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(names(&pages[0]), vec!["Heading", "Go"]);
    assert_eq!(names(&pages[1]), vec!["Logo", "Footer", "Badge", "Icon"]);
}
