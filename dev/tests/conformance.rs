//! The gateway against PostgREST's documented wire behaviour: one request
//! and its expected response per test, over HTTP, on a private PostgreSQL
//! with the fixture in conformance_fixture.sql.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use cogo_dev::gateway::{serve, Config};
use cogo_dev::pg_cluster::{PgCluster, PgOptions};
use cogo_dev::process::{on_keeper_thread, port_open, scratch_dir, wait_until};
use cogo_dev::token;
use serde_json::{json, Value};

const SECRET: &str = "conformance-secret-of-at-least-32-characters";

struct Gateway {
    /// The gateway configured like the project's (pre-request, profiles, keys).
    base: String,
    /// The same database with PostgREST's other settings: max rows 2,
    /// extra search path, a nested role claim, aggregates, app settings.
    configured: String,
    /// Superuser URI, for changing the schema under the gateway.
    admin: String,
    /// The authenticator's URI, for starting more gateways.
    authenticator: String,
    _pg: PgCluster,
}

fn lookup(env: &[(&str, String)]) -> Config {
    Config::from_pairs(env.iter().map(|(k, v)| (k.to_string(), v.clone()))).unwrap()
}

fn default_env(uri: &str) -> Vec<(&'static str, String)> {
    vec![
        ("PGRST_DB_URI", uri.to_string()),
        ("PGRST_DB_SCHEMAS", "test,other".to_string()),
        ("PGRST_DB_ANON_ROLE", "anon".to_string()),
        ("PGRST_JWT_SECRET", SECRET.to_string()),
        ("PGRST_DB_PRE_REQUEST", "test.pre".to_string()),
        ("PGRST_DB_TX_END", "commit-allow-override".to_string()),
        ("GATEWAY_SECRET_KEYS", "sb_secret_conformance".to_string()),
        ("GATEWAY_PUBLISHABLE_KEYS", "sb_publishable_conformance".to_string()),
    ]
}

fn gateway() -> &'static Gateway {
    static GW: OnceLock<Gateway> = OnceLock::new();
    GW.get_or_init(|| {
        let dir = scratch_dir(Path::new(env!("CARGO_TARGET_TMPDIR")), "conformance").expect("scratch folder");
        on_keeper_thread(move || {
            let pg = PgCluster::start(PgOptions { dir, port: None, durable: false }).expect("start PostgreSQL");
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            let admin = pg.uri("postgres");
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(conn);
                client.batch_execute(include_str!("conformance_fixture.sql")).await.expect("fixture");
            });
            let authenticator = pg.uri("authenticator");
            let start = |config: Config| {
                let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
                let port = listener.local_addr().unwrap().port();
                rt.spawn(serve(config, listener, std::future::pending()));
                wait_until("gateway", Duration::from_secs(20), || port_open(port).then_some(())).unwrap();
                format!("http://127.0.0.1:{port}")
            };
            let base = start(lookup(&default_env(&authenticator)));
            let mut env = default_env(&authenticator);
            env.retain(|(k, _)| *k != "PGRST_DB_PRE_REQUEST");
            env.extend([
                ("PGRST_DB_MAX_ROWS", "2".to_string()),
                ("PGRST_DB_EXTRA_SEARCH_PATH", "public, other".to_string()),
                ("PGRST_JWT_ROLE_CLAIM_KEY", ".app_metadata.roles[?(@ ^== \"auth\")]".to_string()),
                ("PGRST_DB_AGGREGATES_ENABLED", "true".to_string()),
                ("PGRST_APP_SETTINGS_GREETING", "hello from the config".to_string()),
            ]);
            let configured = start(lookup(&env));
            // The runtime must outlive every test: it lives on this thread.
            std::mem::forget(rt);
            let gw = Gateway { base, configured, admin, authenticator, _pg: pg };
            for base in [&gw.base, &gw.configured] {
                wait_until("schema cache", Duration::from_secs(20), || {
                    (status_of(base, "/items") == 200).then_some(())
                })
                .unwrap();
            }
            gw
        })
    })
}

/// The status of a bare GET, read off the status line.
fn status_of(base: &str, path: &str) -> u16 {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else { return 0 };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut head = [0u8; 12];
    if stream.read_exact(&mut head).is_err() {
        return 0;
    }
    std::str::from_utf8(&head[9..12]).ok().and_then(|s| s.parse().ok()).unwrap_or(0)
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn call(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Reply {
    call_at(&gateway().base, method, path, headers, body).await
}

/// A request to the gateway with PostgREST's other settings.
async fn configured(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Reply {
    call_at(&gateway().configured, method, path, headers, body).await
}

async fn call_at(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Reply {
    let url = format!("{base}{path}");
    let mut req = reqwest::Client::new().request(method.parse().unwrap(), url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    Reply { status, headers, text: resp.text().await.unwrap() }
}

async fn get(path: &str) -> Reply {
    call("GET", path, &[], None).await
}

async fn get_owned(path: String) -> Reply {
    get(&path).await
}

fn jwt(role: &str, sub: &str) -> String {
    format!("Bearer {}", token::sign(SECRET, token::role_claims(role, sub), 3600))
}

fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["code"], code, "{body}");
    for key in ["message", "details", "hint"] {
        assert!(body.get(key).is_some(), "error body has {key}: {body}");
    }
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

// ---- reads: select, filters, order, paging --------------------------------

#[tokio::test]
async fn read_all_rows_as_json_array() {
    let r = get("/items?select=id&order=id").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json; charset=utf-8"));
    assert_eq!(r.json(), json!([{"id": 1}, {"id": 2}, {"id": 3}, {"id": 4}, {"id": 5}]));
    assert_eq!(r.header("content-range"), Some("0-4/*"));
}

#[tokio::test]
async fn select_aliases_and_casts() {
    let r = get("/items?select=ident:id,qty::text,name&id=eq.1").await;
    assert_eq!(r.json(), json!([{"ident": 1, "qty": "5", "name": "apple"}]));
}

#[tokio::test]
async fn select_json_path() {
    let r = get("/items?select=id,data->a->>b&id=eq.2").await;
    assert_eq!(r.json(), json!([{"id": 2, "b": "2"}]));
}

#[tokio::test]
async fn filter_eq_and_neq() {
    assert_eq!(ids(&get("/items?select=id&name=eq.cherry").await.json()), vec![3]);
    assert_eq!(ids(&get("/items?select=id&id=neq.1&order=id").await.json()), vec![2, 3, 4, 5]);
}

#[tokio::test]
async fn filter_comparisons() {
    assert_eq!(ids(&get("/items?select=id&qty=gt.5&order=id").await.json()), vec![3, 5]);
    assert_eq!(ids(&get("/items?select=id&qty=gte.5&order=id").await.json()), vec![1, 3, 5]);
    assert_eq!(ids(&get("/items?select=id&qty=lt.5&order=id").await.json()), vec![4]);
    assert_eq!(ids(&get("/items?select=id&qty=lte.5&order=id").await.json()), vec![1, 4]);
}

#[tokio::test]
async fn filter_like_with_star() {
    assert_eq!(ids(&get("/items?select=id&name=like.*an*&order=id").await.json()), vec![2, 5]);
}

#[tokio::test]
async fn filter_ilike_is_case_insensitive() {
    assert_eq!(ids(&get("/items?select=id&name=ilike.egg*").await.json()), vec![5]);
    assert!(get("/items?select=id&name=like.egg*").await.json().as_array().unwrap().is_empty());
}

#[tokio::test]
async fn filter_is_null_true_false() {
    assert_eq!(ids(&get("/items?select=id&qty=is.null").await.json()), vec![2]);
    assert_eq!(ids(&get("/items?select=id&active=is.false").await.json()), vec![2]);
    assert_eq!(ids(&get("/items?select=id&active=is.true&order=id").await.json()), vec![1, 3, 5]);
    assert_eq!(ids(&get("/items?select=id&active=is.unknown").await.json()), vec![4]);
}

#[tokio::test]
async fn filter_in_with_quoted_comma() {
    let r = get("/items?select=id&name=in.(apple,%22date,%20dried%22)&order=id").await;
    assert_eq!(ids(&r.json()), vec![1, 4]);
}

#[tokio::test]
async fn filter_in_empty_list_matches_nothing() {
    assert_eq!(get("/items?select=id&id=in.()").await.json(), json!([]));
}

#[tokio::test]
async fn filter_array_contains_and_contained() {
    assert_eq!(ids(&get("/items?select=id&tags=cs.{red}&order=id").await.json()), vec![1, 3]);
    assert_eq!(ids(&get("/items?select=id&tags=cd.{red,fruit}&order=id").await.json()), vec![1, 3, 4]);
}

#[tokio::test]
async fn filter_jsonb_contains() {
    let r = get("/items?select=id&data=cs.%7B%22a%22%3A%7B%22b%22%3A5%7D%7D").await;
    assert_eq!(ids(&r.json()), vec![5]);
}

#[tokio::test]
async fn filter_not_negates() {
    assert_eq!(ids(&get("/items?select=id&qty=not.is.null&qty=not.gt.5&order=id").await.json()), vec![1, 4]);
}

#[tokio::test]
async fn filter_or_tree() {
    let r = get("/items?select=id&or=(qty.gt.10,name.eq.apple)&order=id").await;
    assert_eq!(ids(&r.json()), vec![1, 3]);
}

#[tokio::test]
async fn filter_nested_and_inside_or() {
    let r = get("/items?select=id&or=(id.eq.2,and(qty.gte.5,qty.lte.7))&order=id").await;
    assert_eq!(ids(&r.json()), vec![1, 2, 5]);
}

#[tokio::test]
async fn filter_not_or() {
    let r = get("/items?select=id&not.or=(id.eq.1,id.eq.2)&order=id").await;
    assert_eq!(ids(&r.json()), vec![3, 4, 5]);
}

#[tokio::test]
async fn filter_or_with_quoted_value() {
    let r = get("/items?select=id&or=(name.eq.%22date,%20dried%22,id.eq.3)&order=id").await;
    assert_eq!(ids(&r.json()), vec![3, 4]);
}

#[tokio::test]
async fn filter_without_operator_is_pgrst100() {
    assert_error(&get("/items?id=1").await, 400, "PGRST100");
}

#[tokio::test]
async fn unknown_column_is_42703() {
    assert_error(&get("/items?nope=eq.1").await, 400, "42703");
}

#[tokio::test]
async fn bad_value_for_type_is_22p02() {
    assert_error(&get("/items?id=eq.abc").await, 400, "22P02");
}

#[tokio::test]
async fn injection_in_filter_value_is_just_a_value() {
    let r = get("/items?select=id&name=eq.x%27%3B%20DROP%20TABLE%20test.items%3B%20--").await;
    assert_eq!(r.json(), json!([]));
    assert_eq!(get("/items?select=id&id=eq.1").await.json(), json!([{"id": 1}]), "table still there");
}

#[tokio::test]
async fn injection_in_column_name_stays_a_name() {
    // As in v13, a filter's key ends where its name ends: the rest is ignored.
    let r = get("/items?select=id&name%22%3B%20DROP%20TABLE%20test.items%3B%20--=eq.1").await;
    assert_eq!((r.status, r.json()), (200, json!([])));
    let r = get("/items?select=id&%22name%5C%22%3B%20DROP%20TABLE%20test.items%3B%20--%22=eq.1").await;
    assert_error(&r, 400, "42703");
    assert_eq!(r.json()["message"], "column items.name\"; DROP TABLE test.items; -- does not exist");
    assert_eq!(get("/items?select=id&id=eq.1").await.json(), json!([{"id": 1}]), "table still there");
}

#[tokio::test]
async fn order_desc_nullslast() {
    let r = get("/items?select=id&order=qty.desc.nullslast").await;
    assert_eq!(ids(&r.json()), vec![3, 5, 1, 4, 2]);
}

#[tokio::test]
async fn order_asc_nullsfirst_then_second_key() {
    let r = get("/items?select=id&order=active.asc.nullsfirst,id.desc").await;
    assert_eq!(ids(&r.json()), vec![4, 2, 5, 3, 1]);
}

#[tokio::test]
async fn order_with_bad_modifier_is_400() {
    assert_error(&get("/items?order=id.sideways").await, 400, "PGRST100");
}

#[tokio::test]
async fn limit_and_offset() {
    let r = get("/items?select=id&order=id&limit=2&offset=1").await;
    assert_eq!(ids(&r.json()), vec![2, 3]);
    assert_eq!(r.header("content-range"), Some("1-2/*"));
}

#[tokio::test]
async fn count_exact_with_partial_range_is_206() {
    let r = call("GET", "/items?select=id&order=id&limit=2", &[("Prefer", "count=exact")], None).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("0-1/5"));
    assert_eq!(r.header("preference-applied"), Some("count=exact"));
}

#[tokio::test]
async fn count_exact_with_everything_is_200() {
    let r = call("GET", "/items?select=id", &[("Prefer", "count=exact")], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-range"), Some("0-4/5"));
}

#[tokio::test]
async fn count_exact_on_no_rows() {
    let r = call("GET", "/items?id=eq.999", &[("Prefer", "count=exact")], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-range"), Some("*/0"));
    assert_eq!(r.json(), json!([]));
}

#[tokio::test]
async fn range_header_pages() {
    let r = call("GET", "/items?select=id&order=id", &[("Range-Unit", "items"), ("Range", "2-3")], None).await;
    assert_eq!(ids(&r.json()), vec![3, 4]);
    assert_eq!(r.header("content-range"), Some("2-3/*"));
}

#[tokio::test]
async fn offset_past_the_end_with_count_is_416() {
    let r = call("GET", "/items?offset=10", &[("Prefer", "count=exact")], None).await;
    assert_error(&r, 416, "PGRST103");
}

#[tokio::test]
async fn negative_limit_is_416() {
    assert_error(&get("/items?limit=-1").await, 416, "PGRST103");
}

#[tokio::test]
async fn head_has_headers_and_no_body() {
    let r = call("HEAD", "/items?order=id", &[("Prefer", "count=exact")], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-range"), Some("0-4/5"));
    assert_eq!(r.text, "");
}

#[tokio::test]
async fn views_are_readable() {
    assert_eq!(ids(&get("/active_items?order=id").await.json()), vec![1, 3, 5]);
}

#[tokio::test]
async fn unknown_table_is_pgrst205() {
    assert_error(&get("/nope").await, 404, "PGRST205");
}

// ---- singular responses -----------------------------------------------------

const OBJECT: (&str, &str) = ("Accept", "application/vnd.pgrst.object+json");

#[tokio::test]
async fn singular_object() {
    let r = call("GET", "/items?select=id,name&id=eq.1", &[OBJECT], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/vnd.pgrst.object+json; charset=utf-8"));
    assert_eq!(r.json(), json!({"id": 1, "name": "apple"}));
}

#[tokio::test]
async fn singular_with_many_rows_is_406() {
    let r = call("GET", "/items", &[OBJECT], None).await;
    assert_error(&r, 406, "PGRST116");
    assert_eq!(r.json()["details"], "The result contains 5 rows");
    assert_eq!(r.json()["message"], "Cannot coerce the result to a single JSON object");
}

#[tokio::test]
async fn singular_with_no_rows_is_406() {
    let r = call("GET", "/items?id=eq.999", &[OBJECT], None).await;
    assert_error(&r, 406, "PGRST116");
    assert_eq!(r.json()["details"], "The result contains 0 rows");
}

#[tokio::test]
async fn singular_write_of_many_rows_is_rolled_back() {
    let svc = jwt("service_role", "svc");
    let body = r#"[{"id": 801, "body": "a"}, {"id": 802, "body": "b"}]"#;
    let r = call("POST", "/notes", &[("Authorization", &svc), OBJECT, ("Prefer", "return=representation")], Some(body))
        .await;
    assert_error(&r, 406, "PGRST116");
    assert_eq!(get("/notes?id=in.(801,802)").await.json(), json!([]), "nothing was inserted");
}

// ---- inserts, upserts, updates, deletes --------------------------------------

fn svc() -> String {
    jwt("service_role", "svc")
}

#[tokio::test]
async fn insert_minimal_is_201_without_body() {
    let r = call("POST", "/notes", &[("Authorization", &svc())], Some(r#"{"id": 101, "body": "hello"}"#)).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.text, "");
    assert_eq!(get("/notes?id=eq.101&select=body").await.json(), json!([{"body": "hello"}]));
}

#[tokio::test]
async fn insert_representation_returns_rows() {
    let r = call(
        "POST",
        "/notes?select=id,body",
        &[("Authorization", &svc()), ("Prefer", "return=representation")],
        Some(r#"[{"id": 111, "body": "a"}, {"id": 112, "body": "b"}]"#),
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json(), json!([{"id": 111, "body": "a"}, {"id": 112, "body": "b"}]));
    assert_eq!(r.header("preference-applied"), Some("return=representation"));
}

#[tokio::test]
async fn insert_uses_column_defaults() {
    let r = call(
        "POST",
        "/notes?select=n",
        &[("Authorization", &svc()), ("Prefer", "return=representation")],
        Some(r#"{"id": 121}"#),
    )
    .await;
    assert_eq!(r.json(), json!([{"n": 0}]));
}

#[tokio::test]
async fn insert_headers_only_gives_location() {
    let r =
        call("POST", "/notes", &[("Authorization", &svc()), ("Prefer", "return=headers-only")], Some(r#"{"id": 131}"#))
            .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("location"), Some("/notes?id=eq.131"));
}

#[tokio::test]
async fn insert_with_mismatched_keys_is_pgrst102() {
    let r =
        call("POST", "/notes", &[("Authorization", &svc())], Some(r#"[{"id": 141}, {"id": 142, "body": "x"}]"#)).await;
    assert_error(&r, 400, "PGRST102");
    assert_eq!(r.json()["message"], "All object keys must match");
}

#[tokio::test]
async fn invalid_json_body_is_pgrst102() {
    let r = call("POST", "/notes", &[("Authorization", &svc())], Some("{nope")).await;
    assert_error(&r, 400, "PGRST102");
}

#[tokio::test]
async fn insert_unknown_column_is_pgrst204() {
    let r = call("POST", "/notes", &[("Authorization", &svc())], Some(r#"{"id": 151, "nope": 1}"#)).await;
    assert_error(&r, 400, "PGRST204");
}

#[tokio::test]
async fn duplicate_key_is_409() {
    let body = r#"{"id": 161}"#;
    assert_eq!(call("POST", "/notes", &[("Authorization", &svc())], Some(body)).await.status, 201);
    assert_error(&call("POST", "/notes", &[("Authorization", &svc())], Some(body)).await, 409, "23505");
}

#[tokio::test]
async fn foreign_key_violation_is_409() {
    let r = call("POST", "/children", &[("Authorization", &svc())], Some(r#"{"id": 1, "note_id": 99999}"#)).await;
    assert_error(&r, 409, "23503");
}

#[tokio::test]
async fn not_null_violation_is_400() {
    let r = call("POST", "/items", &[("Authorization", &svc())], Some(r#"{"id": 900}"#)).await;
    // service_role has no INSERT on items: privilege is checked before the constraint.
    assert_error(&r, 403, "42501");
    let r = call("POST", "/notes", &[("Authorization", &svc())], Some(r#"{"body": "no id"}"#)).await;
    assert_error(&r, 400, "23502");
}

#[tokio::test]
async fn upsert_merge_duplicates_updates_and_is_200_when_nothing_new() {
    let auth = svc();
    call("POST", "/notes", &[("Authorization", &auth)], Some(r#"{"id": 171, "body": "old"}"#)).await;
    let r = call(
        "POST",
        "/notes",
        &[("Authorization", &auth), ("Prefer", "resolution=merge-duplicates,return=representation")],
        Some(r#"{"id": 171, "body": "new"}"#),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()[0]["body"], "new");
    assert_eq!(r.header("preference-applied"), Some("resolution=merge-duplicates, return=representation"));
}

#[tokio::test]
async fn upsert_merge_with_a_new_row_is_201() {
    let r = call(
        "POST",
        "/notes",
        &[("Authorization", &svc()), ("Prefer", "resolution=merge-duplicates")],
        Some(r#"[{"id": 181, "body": "x"}]"#),
    )
    .await;
    assert_eq!(r.status, 201);
}

#[tokio::test]
async fn upsert_ignore_duplicates_keeps_the_old_row() {
    let auth = svc();
    call("POST", "/notes", &[("Authorization", &auth)], Some(r#"{"id": 191, "body": "keep"}"#)).await;
    let r = call(
        "POST",
        "/notes",
        &[("Authorization", &auth), ("Prefer", "resolution=ignore-duplicates,return=representation")],
        Some(r#"{"id": 191, "body": "drop"}"#),
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json(), json!([]));
    assert_eq!(get("/notes?id=eq.191&select=body").await.json(), json!([{"body": "keep"}]));
}

#[tokio::test]
async fn upsert_on_conflict_column() {
    let auth = svc();
    call("POST", "/notes", &[("Authorization", &auth)], Some(r#"{"id": 201, "tag": "t201", "body": "a"}"#)).await;
    let r = call(
        "POST",
        "/notes?on_conflict=tag",
        &[("Authorization", &auth), ("Prefer", "resolution=merge-duplicates,return=representation")],
        Some(r#"{"id": 201, "tag": "t201", "body": "b"}"#),
    )
    .await;
    assert_eq!((r.status, r.json()[0]["body"].clone()), (200, json!("b")));
}

#[tokio::test]
async fn patch_with_filter_is_204_with_range() {
    let auth = svc();
    call(
        "POST",
        "/notes",
        &[("Authorization", &auth)],
        Some(r#"[{"id": 211, "body": "a"}, {"id": 212, "body": "a"}]"#),
    )
    .await;
    let r = call("PATCH", "/notes?id=in.(211,212)", &[("Authorization", &auth)], Some(r#"{"body": "b"}"#)).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("content-range"), Some("0-1/*"));
    assert_eq!(get("/notes?id=in.(211,212)&select=body").await.json(), json!([{"body": "b"}, {"body": "b"}]));
}

#[tokio::test]
async fn patch_representation_is_200() {
    let auth = svc();
    call("POST", "/notes", &[("Authorization", &auth)], Some(r#"{"id": 221, "body": "a"}"#)).await;
    let r = call(
        "PATCH",
        "/notes?id=eq.221&select=id,body",
        &[("Authorization", &auth), ("Prefer", "return=representation")],
        Some(r#"{"body": "z"}"#),
    )
    .await;
    assert_eq!((r.status, r.json()), (200, json!([{"id": 221, "body": "z"}])));
}

#[tokio::test]
async fn delete_with_filter() {
    let auth = svc();
    call("POST", "/notes", &[("Authorization", &auth)], Some(r#"{"id": 231}"#)).await;
    let r = call("DELETE", "/notes?id=eq.231", &[("Authorization", &auth), ("Prefer", "return=representation")], None)
        .await;
    assert_eq!((r.status, ids(&r.json())), (200, vec![231]));
    let r = call("DELETE", "/notes?id=eq.231", &[("Authorization", &auth)], None).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("content-range"), Some("*/*"));
}

#[tokio::test]
async fn tx_rollback_preference_is_honoured_when_allowed() {
    let r = call(
        "POST",
        "/notes",
        &[("Authorization", &svc()), ("Prefer", "tx=rollback,return=representation")],
        Some(r#"{"id": 241}"#),
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()[0]["id"], 241);
    assert_eq!(get("/notes?id=eq.241").await.json(), json!([]), "rolled back");
}

// ---- RPC ------------------------------------------------------------------------

#[tokio::test]
async fn rpc_scalar_post() {
    let r = call("POST", "/rpc/add", &[], Some(r#"{"a": 2, "b": 3}"#)).await;
    assert_eq!((r.status, r.json()), (200, json!(5)));
}

#[tokio::test]
async fn rpc_scalar_get_on_stable_function() {
    assert_eq!(get("/rpc/add?a=1&b=41").await.json(), json!(42));
    assert_eq!(get("/rpc/hello").await.json(), json!("hi"));
}

#[tokio::test]
async fn rpc_setof_rows_with_filters_and_select() {
    let r = get("/rpc/items_over?min=4&select=id,qty&order=qty.desc&qty=lt.20").await;
    assert_eq!(r.json(), json!([{"id": 5, "qty": 7}, {"id": 1, "qty": 5}]));
}

#[tokio::test]
async fn rpc_default_argument_may_be_omitted() {
    assert_eq!(ids(&get("/rpc/items_over?select=id").await.json()), vec![1, 3, 5]);
}

#[tokio::test]
async fn rpc_setof_scalar_is_array() {
    assert_eq!(call("POST", "/rpc/numbers", &[], Some(r#"{"n": 3}"#)).await.json(), json!([1, 2, 3]));
}

#[tokio::test]
async fn rpc_out_parameters_give_an_object() {
    assert_eq!(get("/rpc/pair?x=4").await.json(), json!({"doubled": 8, "label": "n4"}));
}

#[tokio::test]
async fn rpc_void_is_204() {
    let r = call("POST", "/rpc/noop", &[], Some("{}")).await;
    assert_eq!((r.status, r.text.as_str()), (204, ""));
}

#[tokio::test]
async fn rpc_unknown_function_is_pgrst202() {
    assert_error(&call("POST", "/rpc/nope", &[], Some("{}")).await, 404, "PGRST202");
}

#[tokio::test]
async fn rpc_wrong_argument_names_is_pgrst202() {
    let r = call("POST", "/rpc/add", &[], Some(r#"{"a": 1, "c": 2}"#)).await;
    assert_error(&r, 404, "PGRST202");
    assert_eq!(r.json()["message"], "Could not find the function test.add(a, c) in the schema cache");
}

#[tokio::test]
async fn rpc_get_on_volatile_function_is_405() {
    let auth = svc();
    call("POST", "/notes", &[("Authorization", &auth)], Some(r#"{"id": 251}"#)).await;
    let r = call("GET", "/rpc/bump?note=251", &[("Authorization", &auth)], None).await;
    assert_error(&r, 405, "25006");
    assert_eq!(call("POST", "/rpc/bump", &[("Authorization", &auth)], Some(r#"{"note": 251}"#)).await.json(), json!(1));
}

#[tokio::test]
async fn rpc_single_unnamed_json_parameter_gets_the_body() {
    let r = call("POST", "/rpc/echo", &[], Some(r#"{"any": ["thing", 1]}"#)).await;
    assert_eq!(r.json(), json!({"any": ["thing", 1]}));
}

#[tokio::test]
async fn rpc_json_argument_keeps_json_strings() {
    let r = call("POST", "/rpc/tag_json", &[], Some(r#"{"doc": "just a string"}"#)).await;
    assert_eq!(r.json(), json!({"got": "just a string"}));
}

#[tokio::test]
async fn rpc_raise_p0001_is_400_with_detail_and_hint() {
    let r = call("POST", "/rpc/fail", &[], Some("{}")).await;
    assert_error(&r, 400, "P0001");
    assert_eq!(r.json(), json!({"code": "P0001", "message": "nope", "details": "some detail", "hint": "some hint"}));
}

#[tokio::test]
async fn rpc_custom_pt_status() {
    let r = call("POST", "/rpc/pay", &[], Some("{}")).await;
    assert_error(&r, 402, "PT402");
    assert_eq!(r.json()["message"], "payment required");
}

#[tokio::test]
async fn response_status_and_headers_gucs() {
    let r = call("POST", "/rpc/teapot", &[], Some("{}")).await;
    assert_eq!(r.status, 418);
    assert_eq!(r.header("x-custom"), Some("yes"));
    assert_eq!(r.json(), json!("short and stout"));
}

// ---- request settings, roles and JWT -------------------------------------------

#[tokio::test]
async fn request_settings_reach_sql() {
    let auth = jwt("authenticated", "user-1");
    let r = call("GET", "/rpc/whoami", &[("Authorization", &auth), ("X-Test", "hello")], None).await;
    let body = r.json();
    assert_eq!(body["role"], "authenticated");
    assert_eq!(body["method"], "GET");
    assert_eq!(body["path"], "/rpc/whoami");
    assert_eq!(body["sub"], "user-1");
    assert_eq!(body["header"], "hello");
    assert_eq!(body["search_path"], "\"test\", \"public\"");
}

#[tokio::test]
async fn no_token_runs_as_anon_with_role_claim() {
    let body = get("/rpc/whoami").await.json();
    assert_eq!((body["role"].as_str(), body["claim_role"].as_str()), (Some("anon"), Some("anon")));
}

#[tokio::test]
async fn bad_signature_is_401_pgrst301() {
    let forged = format!(
        "Bearer {}",
        token::sign("another-secret-of-at-least-32-chars!!", token::role_claims("service_role", "x"), 60)
    );
    let r = call("GET", "/items", &[("Authorization", &forged)], None).await;
    assert_error(&r, 401, "PGRST301");
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer error=\"invalid_token\""));
}

#[tokio::test]
async fn malformed_token_is_401() {
    let r = call("GET", "/items", &[("Authorization", "Bearer not.a.jwt.at.all")], None).await;
    assert_error(&r, 401, "PGRST301");
}

#[tokio::test]
async fn expired_token_is_401_pgrst303() {
    let expired = token::sign(SECRET, json!({"role": "authenticated", "exp": 1_000_000}), 60);
    let r = call("GET", "/items", &[("Authorization", &format!("Bearer {expired}"))], None).await;
    assert_error(&r, 401, "PGRST303");
    assert_eq!(r.json()["message"], "JWT expired");
    assert!(r.header("www-authenticate").is_some());
}

#[tokio::test]
async fn anon_without_privilege_is_401() {
    let r = get("/private").await;
    assert_error(&r, 401, "42501");
}

#[tokio::test]
async fn authenticated_without_privilege_is_403() {
    let r = call("POST", "/active_items", &[("Authorization", &jwt("authenticated", "u"))], Some(r#"{"id": 1}"#)).await;
    assert_error(&r, 403, "42501");
}

#[tokio::test]
async fn row_level_security_uses_the_jwt_sub() {
    let alice =
        call("GET", "/private?select=id&order=id", &[("Authorization", &jwt("authenticated", "alice"))], None).await;
    assert_eq!(ids(&alice.json()), vec![1, 3]);
    let bob = call("GET", "/private?select=id", &[("Authorization", &jwt("authenticated", "bob"))], None).await;
    assert_eq!(ids(&bob.json()), vec![2]);
}

#[tokio::test]
async fn pre_request_function_can_refuse() {
    let r = call("GET", "/items", &[("X-Block", "yes")], None).await;
    assert_error(&r, 403, "PT403");
    assert_eq!(r.json()["message"], "blocked by pre-request");
}

// ---- schemas --------------------------------------------------------------------

#[tokio::test]
async fn accept_profile_switches_schema() {
    let r = call("GET", "/rpc/ping", &[("Accept-Profile", "other")], None).await;
    assert_eq!(r.json(), json!("other"));
    assert_eq!(r.header("content-profile"), Some("other"));
}

#[tokio::test]
async fn content_profile_for_writes() {
    let r = call("POST", "/rpc/ping", &[("Content-Profile", "other")], Some("{}")).await;
    assert_eq!(r.json(), json!("other"));
}

#[tokio::test]
async fn unknown_profile_is_pgrst106() {
    let r = call("GET", "/items", &[("Accept-Profile", "secret")], None).await;
    assert_error(&r, 406, "PGRST106");
    assert_eq!(r.json()["message"], "Invalid schema: secret");
    assert_eq!(r.json()["hint"], "Only the following schemas are exposed: test, other");
}

#[tokio::test]
async fn default_schema_is_the_first() {
    assert_eq!(get("/items?id=eq.1&select=id").await.header("content-profile"), Some("test"));
}

// ---- Supabase's /rest/v1 and apikey -----------------------------------------------

#[tokio::test]
async fn rest_v1_without_apikey_is_401() {
    let r = get("/rest/v1/items").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["message"], "No API key found in request");
}

#[tokio::test]
async fn rest_v1_with_wrong_apikey_is_401() {
    let r = call("GET", "/rest/v1/items", &[("apikey", "sb_publishable_wrong")], None).await;
    assert_eq!((r.status, r.json()["message"].as_str()), (401, Some("Invalid API key")));
}

#[tokio::test]
async fn rest_v1_publishable_key_runs_as_anon() {
    let r = call("GET", "/rest/v1/rpc/whoami", &[("apikey", "sb_publishable_conformance")], None).await;
    assert_eq!(r.json()["role"], "anon");
}

#[tokio::test]
async fn rest_v1_secret_key_runs_as_service_role() {
    let r = call("GET", "/rest/v1/rpc/whoami", &[("apikey", "sb_secret_conformance")], None).await;
    assert_eq!(r.json()["role"], "service_role");
}

#[tokio::test]
async fn rest_v1_jwt_apikey_and_bearer() {
    let user = jwt("authenticated", "alice");
    let anon_key = token::sign(SECRET, json!({"role": "anon"}), 3600);
    let r = call("GET", "/rest/v1/rpc/whoami", &[("apikey", &anon_key), ("Authorization", &user)], None).await;
    assert_eq!((r.json()["role"].as_str(), r.json()["sub"].as_str()), (Some("authenticated"), Some("alice")));
    let r = call("GET", "/rest/v1/items?select=id&id=eq.1&apikey=sb_publishable_conformance", &[], None).await;
    assert_eq!(r.json(), json!([{"id": 1}]), "apikey as a URL parameter, not taken for a filter");
}

#[tokio::test]
async fn oversized_body_is_413() {
    let big = format!(r#"{{"id": 1, "body": "{}"}}"#, "x".repeat(11 * 1024 * 1024));
    let r = call("POST", "/notes", &[("Authorization", &svc())], Some(&big)).await;
    assert_eq!(r.status, 413);
}

#[tokio::test]
async fn unsupported_method_is_405() {
    let r = call("PUT", "/rpc/add", &[], Some("{}")).await;
    assert_error(&r, 405, "PGRST101");
}

// ---- bulk writes: columns, missing=default, counts, max-affected ------------------

#[tokio::test]
async fn bulk_insert_with_quoted_columns_ignores_other_keys() {
    // postgrest-js quotes every name in `columns`.
    let r = call(
        "POST",
        "/notes?columns=%22id%22,%22body%22&select=id,body,tag",
        &[("Authorization", &svc()), ("Prefer", "return=representation")],
        Some(r#"[{"id": 301, "body": "a", "tag": "ignored"}, {"id": 302, "body": "b"}]"#),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json(), json!([{"id": 301, "body": "a", "tag": null}, {"id": 302, "body": "b", "tag": null}]));
}

#[tokio::test]
async fn columns_naming_an_unknown_column_is_pgrst204() {
    let r = call("POST", "/notes?columns=id,nope", &[("Authorization", &svc())], Some(r#"[{"id": 311}]"#)).await;
    assert_error(&r, 400, "PGRST204");
    assert_eq!(r.json()["message"], "Could not find the 'nope' column of 'notes' in the schema cache");
}

#[tokio::test]
async fn missing_default_fills_absent_keys_with_column_defaults() {
    let body = r#"[{"id": 321, "body": "x"}, {"id": 322, "body": "y", "n": 7}]"#;
    let r = call(
        "POST",
        "/notes?columns=id,body,n&select=id,n",
        &[("Authorization", &svc()), ("Prefer", "return=representation, missing=default")],
        Some(body),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json(), json!([{"id": 321, "n": 0}, {"id": 322, "n": 7}]));
    assert_eq!(r.header("preference-applied"), Some("missing=default, return=representation"));
    // Without it an absent key is NULL, which n (NOT NULL) refuses.
    let r = call(
        "POST",
        "/notes?columns=id,body,n",
        &[("Authorization", &svc())],
        Some(r#"[{"id": 323, "body": "x"}, {"id": 324, "n": 1}]"#),
    )
    .await;
    assert_error(&r, 400, "23502");
}

#[tokio::test]
async fn counts_on_insert_update_delete() {
    let auth = svc();
    let r = call(
        "POST",
        "/notes",
        &[("Authorization", &auth), ("Prefer", "count=exact")],
        Some(r#"[{"id": 331}, {"id": 332}, {"id": 333}]"#),
    )
    .await;
    assert_eq!((r.status, r.header("content-range")), (201, Some("*/3")));
    assert_eq!(r.header("preference-applied"), Some("count=exact"));
    let r = call(
        "PATCH",
        "/notes?id=in.(331,332)",
        &[("Authorization", &auth), ("Prefer", "count=exact")],
        Some(r#"{"body": "z"}"#),
    )
    .await;
    assert_eq!((r.status, r.header("content-range")), (204, Some("0-1/2")));
    let r = call("DELETE", "/notes?id=in.(331,332,333)", &[("Authorization", &auth), ("Prefer", "count=exact")], None)
        .await;
    assert_eq!((r.status, r.header("content-range")), (204, Some("*/3")));
    let r = call("DELETE", "/notes?id=eq.331", &[("Authorization", &auth), ("Prefer", "count=exact")], None).await;
    assert_eq!(r.header("content-range"), Some("*/0"));
}

#[tokio::test]
async fn max_affected_with_strict_handling_refuses_and_rolls_back() {
    let auth = svc();
    call(
        "POST",
        "/notes",
        &[("Authorization", &auth)],
        Some(r#"[{"id": 341, "body": "a"}, {"id": 342, "body": "a"}]"#),
    )
    .await;
    let strict = ("Prefer", "handling=strict, max-affected=1");
    let r =
        call("PATCH", "/notes?id=in.(341,342)", &[("Authorization", &auth), strict], Some(r#"{"body": "b"}"#)).await;
    assert_error(&r, 400, "PGRST124");
    assert_eq!(r.json()["message"], "Query result exceeds max-affected preference constraint");
    assert_eq!(r.json()["details"], "The query affects 2 rows");
    assert_eq!(get("/notes?id=in.(341,342)&select=body").await.json(), json!([{"body": "a"}, {"body": "a"}]));
    let r = call("DELETE", "/notes?id=in.(341,342)", &[("Authorization", &auth), strict], None).await;
    assert_error(&r, 400, "PGRST124");
    // Within the limit, and echoed.
    let r = call("PATCH", "/notes?id=eq.341", &[("Authorization", &auth), strict], Some(r#"{"body": "c"}"#)).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("preference-applied"), Some("handling=strict, max-affected=1"));
    // Lenient (the default): ignored.
    let r =
        call("DELETE", "/notes?id=in.(341,342)", &[("Authorization", &auth), ("Prefer", "max-affected=1")], None).await;
    assert_eq!(r.status, 204);
    assert_eq!(get("/notes?id=in.(341,342)").await.json(), json!([]));
}

#[tokio::test]
async fn unknown_preferences_with_strict_handling_are_pgrst122() {
    let r = call("GET", "/items", &[("Prefer", "handling=strict, nope=1")], None).await;
    assert_error(&r, 400, "PGRST122");
    assert_eq!(r.json()["details"], "Invalid preferences: nope=1");
    assert_eq!(call("GET", "/items?id=eq.1", &[("Prefer", "nope=1")], None).await.status, 200);
}

// ---- singular answers for writes ----------------------------------------------

#[tokio::test]
async fn singular_insert_answers_an_object() {
    let r = call(
        "POST",
        "/notes?select=id,body",
        &[("Authorization", &svc()), OBJECT, ("Prefer", "return=representation")],
        Some(r#"{"id": 351, "body": "one"}"#),
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("content-type"), Some("application/vnd.pgrst.object+json; charset=utf-8"));
    assert_eq!(r.json(), json!({"id": 351, "body": "one"}));
}

#[tokio::test]
async fn singular_update_and_delete_of_many_rows_are_406_and_rolled_back() {
    let auth = svc();
    call(
        "POST",
        "/notes",
        &[("Authorization", &auth)],
        Some(r#"[{"id": 361, "body": "a"}, {"id": 362, "body": "a"}]"#),
    )
    .await;
    // Even without a representation asked for.
    let r =
        call("PATCH", "/notes?id=in.(361,362)", &[("Authorization", &auth), OBJECT], Some(r#"{"body": "b"}"#)).await;
    assert_error(&r, 406, "PGRST116");
    assert_eq!(r.json()["details"], "The result contains 2 rows");
    let r = call("DELETE", "/notes?id=in.(361,362)", &[("Authorization", &auth), OBJECT], None).await;
    assert_error(&r, 406, "PGRST116");
    assert_eq!(get("/notes?id=in.(361,362)&select=body").await.json(), json!([{"body": "a"}, {"body": "a"}]));
    let r = call(
        "PATCH",
        "/notes?id=eq.361&select=body",
        &[("Authorization", &auth), OBJECT, ("Prefer", "return=representation")],
        Some(r#"{"body": "c"}"#),
    )
    .await;
    assert_eq!((r.status, r.json()), (200, json!({"body": "c"})));
}

// ---- RPC: array, composite and variadic arguments; counts ----------------------

#[tokio::test]
async fn rpc_array_argument_over_post() {
    let r = call("POST", "/rpc/sum_ids", &[], Some(r#"{"ids": [1, 2, 3]}"#)).await;
    assert_eq!((r.status, r.json()), (200, json!(6)), "{}", r.text);
    let r = call("POST", "/rpc/items_named?select=id", &[], Some(r#"{"names": ["apple", "date, dried"]}"#)).await;
    assert_eq!(r.json(), json!([{"id": 1}, {"id": 4}]));
}

#[tokio::test]
async fn rpc_composite_argument_over_post() {
    let r = call("POST", "/rpc/norm1", &[], Some(r#"{"p": {"x": -3, "y": 4}}"#)).await;
    assert_eq!((r.status, r.json()), (200, json!(7)), "{}", r.text);
}

#[tokio::test]
async fn rpc_variadic_argument_over_post_and_get() {
    assert_eq!(call("POST", "/rpc/vsum", &[], Some(r#"{"nums": [4, 5]}"#)).await.json(), json!(9));
    assert_eq!(get("/rpc/vsum?nums=1&nums=2&nums=3").await.json(), json!(6));
}

#[tokio::test]
async fn rpc_counts_and_ranges() {
    let r = call(
        "POST",
        "/rpc/items_named?select=id&limit=1",
        &[("Prefer", "count=exact")],
        Some(r#"{"names": ["apple", "cherry"]}"#),
    )
    .await;
    assert_eq!((r.status, r.header("content-range")), (206, Some("0-0/2")));
    assert_eq!(r.header("preference-applied"), Some("count=exact"));
    let r = call("GET", "/rpc/add?a=1&b=2", &[("Prefer", "count=exact")], None).await;
    assert_eq!((r.status, r.header("content-range")), (200, Some("0-0/1")));
}

#[tokio::test]
async fn rpc_count_of_a_volatile_function() {
    let auth = svc();
    call("POST", "/notes", &[("Authorization", &auth)], Some(r#"[{"id": 371}, {"id": 372}]"#)).await;
    let r = call(
        "POST",
        "/rpc/bump_all?select=id,n",
        &[("Authorization", &auth), ("Prefer", "count=exact")],
        Some(r#"{"ids": [371, 372]}"#),
    )
    .await;
    assert_eq!((r.status, r.header("content-range")), (200, Some("0-1/2")));
    assert_eq!(r.json(), json!([{"id": 371, "n": 1}, {"id": 372, "n": 1}]));
}

#[tokio::test]
async fn rpc_max_affected() {
    let auth = svc();
    let strict = ("Prefer", "handling=strict, max-affected=1");
    let r = call("POST", "/rpc/add", &[strict], Some(r#"{"a": 1, "b": 2}"#)).await;
    assert_error(&r, 400, "PGRST128");
    call("POST", "/notes", &[("Authorization", &auth)], Some(r#"[{"id": 381}, {"id": 382}]"#)).await;
    let r = call("POST", "/rpc/bump_all", &[("Authorization", &auth), strict], Some(r#"{"ids": [381, 382]}"#)).await;
    assert_error(&r, 400, "PGRST124");
    assert_eq!(get("/notes?id=in.(381,382)&select=n").await.json(), json!([{"n": 0}, {"n": 0}]), "rolled back");
}

#[tokio::test]
async fn rpc_head_has_content_range_and_no_body() {
    let r = call("HEAD", "/rpc/items_over?min=4", &[("Prefer", "count=exact")], None).await;
    assert_eq!((r.status, r.header("content-range"), r.text.as_str()), (200, Some("0-2/3"), ""));
}

#[tokio::test]
async fn rpc_ambiguous_and_missing_functions() {
    let r = call("POST", "/rpc/add", &[], Some(r#"{"a": 1}"#)).await;
    assert_error(&r, 404, "PGRST202");
    assert_eq!(
        r.json()["details"],
        "Searched for the function test.add with parameter a or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache."
    );
    assert_eq!(r.json()["hint"], "Perhaps you meant to call the function test.add(a, b)");
    let r = call("POST", "/rpc/ad", &[], Some("{}")).await;
    assert_eq!(r.json()["message"], "Could not find the function test.ad without parameters in the schema cache");
    assert_eq!(r.json()["hint"], "Perhaps you meant to call the function test.add");
}

// ---- full-text search and quantifiers ----------------------------------------------

#[tokio::test]
async fn full_text_search_operators() {
    let q = |f: &str| get_owned(format!("/docs?select=id&order=id&{f}"));
    assert_eq!(ids(&q("tsv=fts(english).fat%20%26%20rat").await.json()), vec![1, 4]);
    assert_eq!(ids(&q("body=plfts(english).fat%20rats").await.json()), vec![1, 4]);
    assert_eq!(ids(&q("body=phfts(english).fat%20cats").await.json()), vec![1]);
    assert_eq!(ids(&q("body=wfts(english).cat%20-dog").await.json()), vec![1, 2]);
    assert_eq!(ids(&q("tsv=not.fts(english).cat").await.json()), vec![4]);
    assert_eq!(ids(&q("or=(tsv.fts(english).dog,tsv.fts(english).mat)").await.json()), vec![2, 3]);
}

#[tokio::test]
async fn like_and_ilike_with_any_and_all() {
    let q = |f: &str| get_owned(format!("/items?select=id&order=id&{f}"));
    assert_eq!(ids(&q("name=like(any).%7Ba*,c*%7D").await.json()), vec![1, 3]);
    assert_eq!(ids(&q("name=ilike(all).%7B*A*,*N*%7D").await.json()), vec![2, 5]);
    assert_eq!(ids(&q("id=eq(any).%7B1,3%7D").await.json()), vec![1, 3]);
    assert_eq!(ids(&q("id=gt(all).%7B1,2%7D").await.json()), vec![3, 4, 5]);
    assert_eq!(ids(&q("name=not.like(any).%7Ba*,c*%7D").await.json()), vec![2, 4, 5]);
}

// ---- representations: stripped nulls, CSV, error texts ----------------------------

#[tokio::test]
async fn stripped_nulls_for_arrays_and_objects() {
    let accept = ("Accept", "application/vnd.pgrst.array+json;nulls=stripped");
    let r = call("GET", "/items?select=id,qty,active&id=in.(2,4)&order=id", &[accept], None).await;
    assert_eq!(r.header("content-type"), Some("application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8"));
    assert_eq!(r.json(), json!([{"id": 2, "active": false}, {"id": 4, "qty": 0}]));
    let accept = ("Accept", "application/vnd.pgrst.object+json;nulls=stripped");
    let r = call("GET", "/items?select=id,qty&id=eq.2", &[accept], None).await;
    assert_eq!(r.header("content-type"), Some("application/vnd.pgrst.object+json;nulls=stripped; charset=utf-8"));
    assert_eq!(r.json(), json!({"id": 2}));
}

#[tokio::test]
async fn csv_answers() {
    let r = call("GET", "/items?select=id,name,qty&id=in.(1,2,4)&order=id", &[("Accept", "text/csv")], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(r.text, "id,name,qty\n1,apple,5\n2,banana,\n4,\"date, dried\",0");
}

#[tokio::test]
async fn unavailable_media_type_is_pgrst107() {
    let r = call("GET", "/items", &[("Accept", "text/plain")], None).await;
    assert_error(&r, 406, "PGRST107");
    assert_eq!(r.json()["message"], "None of these media types are available: text/plain");
}

#[tokio::test]
async fn errors_are_json_with_charset_and_proxy_status() {
    let r = get("/items?nope=eq.1").await;
    assert_error(&r, 400, "42703");
    assert_eq!(r.header("content-type"), Some("application/json; charset=utf-8"));
    assert_eq!(r.header("proxy-status"), Some("PostgREST; error=42703"));
    assert_eq!(r.json()["message"], "column items.nope does not exist");
}

#[tokio::test]
async fn unknown_table_hint_names_a_close_one() {
    let r = get("/itemz").await;
    assert_error(&r, 404, "PGRST205");
    assert_eq!(r.json()["message"], "Could not find the table 'test.itemz' in the schema cache");
    assert_eq!(r.json()["hint"], "Perhaps you meant the table 'test.items'");
}

// ---- preferences and ranges ---------------------------------------------------------

#[tokio::test]
async fn tx_preference_is_applied_and_echoed() {
    let r = call(
        "POST",
        "/notes",
        &[("Authorization", &svc()), ("Prefer", "tx=rollback, return=minimal")],
        Some(r#"{"id": 391}"#),
    )
    .await;
    assert_eq!(r.header("preference-applied"), Some("return=minimal, tx=rollback"));
    assert_eq!(get("/notes?id=eq.391").await.json(), json!([]));
    let r = call("GET", "/items?id=eq.1", &[("Prefer", "tx=commit")], None).await;
    assert_eq!(r.header("preference-applied"), Some("tx=commit"));
}

#[tokio::test]
async fn timezone_preference_sets_the_session_time_zone() {
    let r = call("GET", "/items?select=created&id=eq.1", &[("Prefer", "timezone=America/Los_Angeles")], None).await;
    assert_eq!(r.json(), json!([{"created": "2025-12-31T16:00:00-08:00"}]));
    assert_eq!(r.header("preference-applied"), Some("timezone=America/Los_Angeles"));
    let r = call("GET", "/items?select=created&id=eq.1", &[("Prefer", "timezone=Nowhere/Special")], None).await;
    assert_eq!(r.header("preference-applied"), None, "an unknown zone is not applied");
}

#[tokio::test]
async fn nul_in_a_parameter_is_refused_as_postgresql_refuses_it() {
    assert_error(&get("/items?name=eq.a%00b").await, 400, "22021");
}

#[tokio::test]
async fn an_empty_filter_value_is_no_operator() {
    assert_error(&get("/items?name=").await, 400, "PGRST100");
    assert_eq!(get("/rpc/app_setting?name=").await.json(), json!(null), "an empty argument for an RPC");
}

#[tokio::test]
async fn insert_of_an_empty_object_takes_every_default() {
    let r = call(
        "POST",
        "/docs_defaults?select=id,label",
        &[("Authorization", &svc()), ("Prefer", "return=representation")],
        Some("{}"),
    )
    .await;
    assert_eq!((r.status, r.json()), (201, json!([{"id": 1, "label": "none"}])), "{}", r.text);
    let r = call(
        "POST",
        "/docs_defaults?select=id",
        &[("Authorization", &svc()), ("Prefer", "return=representation")],
        Some("[{}, {}]"),
    )
    .await;
    assert_eq!(r.json(), json!([{"id": 2}, {"id": 3}]));
}

#[tokio::test]
async fn head_with_count_has_the_counted_range() {
    let r = call("HEAD", "/items?limit=2", &[("Prefer", "count=exact")], None).await;
    assert_eq!((r.status, r.header("content-range"), r.text.as_str()), (206, Some("0-1/5"), ""));
}

#[tokio::test]
async fn planned_count_is_the_planner_estimate() {
    let r = call("GET", "/items?select=id&limit=1", &[("Prefer", "count=planned")], None).await;
    assert_eq!((r.status, r.header("content-range")), (206, Some("0-0/5")));
    assert_eq!(r.header("preference-applied"), Some("count=planned"));
}

#[tokio::test]
async fn range_header_with_limit_and_bad_ranges() {
    let r = call("GET", "/items?select=id&order=id&limit=3", &[("Range", "1-4")], None).await;
    assert_eq!(ids(&r.json()), vec![2, 3]);
    let r = call("GET", "/items", &[("Range", "3-1")], None).await;
    assert_error(&r, 416, "PGRST103");
    let r = call("GET", "/items?select=id&order=id&limit=0", &[("Prefer", "count=exact")], None).await;
    assert_eq!((r.json(), r.header("content-range")), (json!([]), Some("*/5")));
}

// ---- configuration: max rows, extra search path, role claim, aggregates, app settings

#[tokio::test]
async fn max_rows_caps_reads_and_estimated_counts_use_the_planner_past_it() {
    let r = configured("GET", "/items?select=id&order=id", &[("Prefer", "count=estimated")], None).await;
    assert_eq!(ids(&r.json()), vec![1, 2]);
    assert_eq!((r.status, r.header("content-range")), (206, Some("0-1/5")));
    let r = configured("GET", "/items?select=id&order=id&id=lt.3", &[("Prefer", "count=estimated")], None).await;
    assert_eq!((r.status, r.header("content-range")), (200, Some("0-1/2")), "exact below max rows");
}

#[tokio::test]
async fn extra_search_path_and_app_settings() {
    let body = configured("GET", "/rpc/whoami", &[], None).await.json();
    assert_eq!(body["search_path"], "\"test\", \"public\", \"other\"");
    let r = configured("GET", "/rpc/app_setting?name=GREETING", &[], None).await;
    assert_eq!(r.json(), json!("hello from the config"));
    assert_eq!(get("/rpc/app_setting?name=GREETING").await.json(), json!(null), "unset without the variable");
}

#[tokio::test]
async fn role_claim_key_reads_a_nested_claim() {
    let t = token::sign(SECRET, json!({"sub": "u9", "app_metadata": {"roles": ["reader", "authenticated"]}}), 3600);
    let body = configured("GET", "/rpc/whoami", &[("Authorization", &format!("Bearer {t}"))], None).await.json();
    assert_eq!((body["role"].as_str(), body["claim_role"].as_str()), (Some("authenticated"), Some("authenticated")));
}

#[tokio::test]
async fn aggregates_only_when_enabled() {
    let r = configured("GET", "/items?select=qty.sum(),n:count()", &[], None).await;
    assert_eq!(r.json(), json!([{"sum": 32, "n": 5}]), "{}", r.text);
    // Grouped by the other fields (and capped at max rows like any read).
    let r = configured("GET", "/items?select=active,count()&active=not.is.null&order=active", &[], None).await;
    assert_eq!(r.json(), json!([{"active": false, "count": 1}, {"active": true, "count": 3}]));
    let r = get("/items?select=qty.sum()").await;
    assert_error(&r, 400, "PGRST123");
    assert_eq!(r.json()["message"], "Use of aggregate functions is not allowed");
}

// ---- the schema cache --------------------------------------------------------------

#[tokio::test]
async fn notify_reloads_the_schema_cache() {
    let (client, conn) = tokio_postgres::connect(&gateway().admin, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
        .batch_execute("CREATE TABLE test.late (id integer PRIMARY KEY); GRANT SELECT ON test.late TO anon; INSERT INTO test.late VALUES (7)")
        .await
        .unwrap();
    assert_error(&get("/late").await, 404, "PGRST205");
    client.batch_execute("NOTIFY pgrst, 'reload schema'").await.unwrap();
    let mut answer = get("/late").await;
    for _ in 0..100 {
        if answer.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        answer = get("/late").await;
    }
    assert_eq!(answer.json(), json!([{"id": 7}]));
}

#[tokio::test]
async fn a_new_gateway_never_answers_503() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(lookup(&default_env(&gateway().authenticator)), listener, async move {
        let _ = stopped.await;
    }));
    // Sent at once: it waits for the schema cache instead of a 503.
    let r = call_at(&base, "GET", "/items?select=id&id=eq.1", &[], None).await;
    assert_eq!((r.status, r.json()), (200, json!([{"id": 1}])));
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

// ---- resource embedding -----------------------------------------------------------

#[tokio::test]
async fn embed_many_to_one_as_object() {
    let r = get("/films?select=title,directors(id,last_name)&id=in.(3,5)&order=id").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json(),
        json!([
            {"title": "Workers Leaving The Lumière Factory In Lyon", "directors": {"id": 2, "last_name": "Lumière"}},
            {"title": "Orphan", "directors": null}
        ])
    );
}

#[tokio::test]
async fn embed_with_an_alias() {
    let r = get("/films?select=title,director:directors(last_name)&id=eq.4").await;
    assert_eq!(r.json(), json!([{"title": "The Haunted Castle", "director": {"last_name": "Méliès"}}]));
}

#[tokio::test]
async fn embed_one_to_many_as_array() {
    let r = get("/directors?select=last_name,films(title)&id=in.(2,4)&order=id").await;
    assert_eq!(
        r.json(),
        json!([
            {"last_name": "Lumière", "films": [{"title": "Workers Leaving The Lumière Factory In Lyon"}]},
            {"last_name": "Yet", "films": []}
        ])
    );
}

#[tokio::test]
async fn embed_many_to_many_through_the_junction() {
    let r = get("/films?select=title,actors(last_name)&id=eq.1&actors.order=last_name").await;
    assert_eq!(
        r.json(),
        json!([{"title": "Pulp Fiction", "actors": [{"last_name": "Jackson"}, {"last_name": "Thurman"}, {"last_name": "Travolta"}]}])
    );
    let r = get("/actors?select=first_name,films(title)&id=eq.3").await;
    assert_eq!(r.json(), json!([{"first_name": "Harvey", "films": [{"title": "Reservoir Dogs"}]}]));
}

#[tokio::test]
async fn embed_one_to_one() {
    let r = get("/films?select=title,technical_specs(camera)&id=in.(1,3)&order=id").await;
    assert_eq!(
        r.json(),
        json!([
            {"title": "Pulp Fiction", "technical_specs": {"camera": "Arriflex 35-III"}},
            {"title": "Workers Leaving The Lumière Factory In Lyon", "technical_specs": null}
        ])
    );
}

#[tokio::test]
async fn nested_embeds_with_order_at_each_level() {
    let r = get("/directors?select=last_name,films(title,roles(character,actors(last_name)))&id=eq.1&films.order=year&films.roles.order=character.desc").await;
    assert_eq!(
        r.json(),
        json!([{
            "last_name": "Tarantino",
            "films": [
                {"title": "Reservoir Dogs", "roles": [{"character": "Mr. White", "actors": {"last_name": "Keitel"}}]},
                {"title": "Pulp Fiction", "roles": [
                    {"character": "Vincent Vega", "actors": {"last_name": "Travolta"}},
                    {"character": "Mia Wallace", "actors": {"last_name": "Thurman"}},
                    {"character": "Jules", "actors": {"last_name": "Jackson"}}
                ]}
            ]
        }])
    );
}

#[tokio::test]
async fn filters_and_or_on_embedded_resources_leave_the_top_level_alone() {
    let r = get("/films?select=id,roles(character)&roles.character=in.(Jules,%22Mia%20Wallace%22)&roles.order=character&id=in.(1,2)&order=id").await;
    assert_eq!(
        r.json(),
        json!([{"id": 1, "roles": [{"character": "Jules"}, {"character": "Mia Wallace"}]}, {"id": 2, "roles": []}])
    );
    let r = get("/films?select=id,roles(character)&roles.or=(character.eq.Jules,character.eq.Vincent%20Vega)&roles.order=character&id=eq.1").await;
    assert_eq!(r.json(), json!([{"id": 1, "roles": [{"character": "Jules"}, {"character": "Vincent Vega"}]}]));
}

#[tokio::test]
async fn limit_and_offset_on_embedded_resources() {
    let r = get("/directors?select=id,films(title)&films.order=year&films.limit=1&films.offset=1&id=eq.1").await;
    assert_eq!(r.json(), json!([{"id": 1, "films": [{"title": "Pulp Fiction"}]}]));
}

#[tokio::test]
async fn filters_on_aliased_embeds_of_the_same_table() {
    let r =
        get("/directors?select=id,old:films(title),new:films(title)&old.year=lt.1993&new.year=gt.1993&id=eq.1").await;
    assert_eq!(r.json(), json!([{"id": 1, "old": [{"title": "Reservoir Dogs"}], "new": [{"title": "Pulp Fiction"}]}]));
}

#[tokio::test]
async fn inner_embed_filters_the_top_level_and_its_count() {
    let r = call(
        "GET",
        "/films?select=title,actors!inner(first_name)&actors.first_name=eq.Jehanne",
        &[("Prefer", "count=exact")],
        None,
    )
    .await;
    assert_eq!(r.json(), json!([{"title": "The Haunted Castle", "actors": [{"first_name": "Jehanne"}]}]));
    assert_eq!(r.header("content-range"), Some("0-0/1"));
    let r = get("/films?select=id,directors!inner(id)&order=id").await;
    assert_eq!(ids(&r.json()), vec![1, 2, 3, 4], "no director, no film");
    let r = get("/films?select=id,directors!left(id)&order=id").await;
    assert_eq!(ids(&r.json()), vec![1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn null_filters_on_embeds_and_empty_embeds() {
    let r = get("/films?select=id,actors(id)&actors=not.is.null&order=id").await;
    assert_eq!(ids(&r.json()), vec![1, 2, 4]);
    let r = get("/films?select=id,nominations()&nominations=is.null&order=id").await;
    assert_eq!(r.json(), json!([{"id": 3}, {"id": 4}, {"id": 5}]));
    let r = get("/films?select=id,actors(),directors()&or=(actors.is.null,directors.is.null)&order=id").await;
    assert_eq!(ids(&r.json()), vec![3, 5]);
    let r = call(
        "GET",
        "/films?select=title,actors()&actors.first_name=eq.Jehanne&actors=not.is.null",
        &[("Prefer", "count=exact")],
        None,
    )
    .await;
    assert_eq!(r.json(), json!([{"title": "The Haunted Castle"}]));
    assert_eq!(r.header("content-range"), Some("0-0/1"));
}

#[tokio::test]
async fn order_by_a_to_one_embed() {
    let r = get("/films?select=id,directors(last_name)&order=directors(last_name).desc.nullslast,id&id=lt.6").await;
    assert_eq!(ids(&r.json()), vec![1, 2, 4, 3, 5], "Tarantino, Méliès, Lumière, then no director");
    let r = get("/directors?select=id,films(id)&order=films(id)").await;
    assert_error(&r, 400, "PGRST118");
    assert_eq!(r.json()["message"], "A related order on 'films' is not possible");
    let r = get("/films?select=id&order=directors(last_name)").await;
    assert_error(&r, 400, "PGRST108");
}

#[tokio::test]
async fn spread_to_one_lifts_columns() {
    let r =
        get("/films?select=title,...directors(director_first_name:first_name,director_last_name:last_name)&id=eq.3")
            .await;
    assert_eq!(
        r.json(),
        json!([{"title": "Workers Leaving The Lumière Factory In Lyon", "director_first_name": "Louis", "director_last_name": "Lumière"}])
    );
}

#[tokio::test]
async fn spread_to_many_gives_correlated_arrays() {
    let r =
        get("/directors?select=first_name,...films(film_titles:title,film_years:year)&id=eq.1&films.order=year").await;
    assert_eq!(
        r.json(),
        json!([{"first_name": "Quentin", "film_titles": ["Reservoir Dogs", "Pulp Fiction"], "film_years": [1992, 1994]}])
    );
}

#[tokio::test]
async fn spreads_of_every_column() {
    let r = get("/films?select=title,...directors(*)&id=eq.3").await;
    assert_eq!(
        r.json(),
        json!([{"title": "Workers Leaving The Lumière Factory In Lyon", "id": 2, "first_name": "Louis", "last_name": "Lumière"}])
    );
    let r = get("/directors?select=last_name,...films(*)&id=eq.2").await;
    assert_eq!(
        r.json(),
        json!([{"last_name": "Lumière", "id": [3], "director_id": [2], "title": ["Workers Leaving The Lumière Factory In Lyon"], "year": [1895]}])
    );
}

#[tokio::test]
async fn spread_a_junction_table() {
    let r = get("/films?select=title,actors:roles(character,...actors(first_name,last_name))&id=eq.4").await;
    assert_eq!(
        r.json(),
        json!([{"title": "The Haunted Castle", "actors": [{"character": "The Woman", "first_name": "Jehanne", "last_name": "d'Alcy"}]}])
    );
}

#[tokio::test]
async fn ambiguous_embed_is_300_pgrst201() {
    let r = get("/orders?select=*,addresses(*)").await;
    assert_error(&r, 300, "PGRST201");
    assert_eq!(
        r.json(),
        json!({
            "code": "PGRST201",
            "details": [
                {"cardinality": "many-to-one", "embedding": "orders with addresses", "relationship": "billing using orders(billing_address_id) and addresses(id)"},
                {"cardinality": "many-to-one", "embedding": "orders with addresses", "relationship": "shipping using orders(shipping_address_id) and addresses(id)"}
            ],
            "hint": "Try changing 'addresses' to one of the following: 'addresses!billing', 'addresses!shipping'. Find the desired relationship in the 'details' key.",
            "message": "Could not embed because more than one relationship was found for 'orders' and 'addresses'"
        })
    );
}

#[tokio::test]
async fn hints_disambiguate_both_ways() {
    let r = get(
        "/orders?select=name,billing_address:addresses!billing(name),shipping_address:addresses!shipping(name)&id=eq.1",
    )
    .await;
    assert_eq!(
        r.json(),
        json!([{"name": "Water Filter", "billing_address": {"name": "home"}, "shipping_address": {"name": "work"}}])
    );
    let r = get("/orders?select=name,addresses!shipping_address_id(name)&id=eq.1").await;
    assert_eq!(r.json(), json!([{"name": "Water Filter", "addresses": {"name": "work"}}]), "a column as the hint");
    let r = get("/addresses?select=name,billing_orders:orders!billing(name),shipping_orders:orders!shipping(name)&id=eq.1&billing_orders.order=name&shipping_orders.order=name").await;
    assert_eq!(
        r.json(),
        json!([{"name": "home", "billing_orders": [{"name": "Coffee Machine"}, {"name": "Water Filter"}], "shipping_orders": [{"name": "Coffee Machine"}]}])
    );
}

#[tokio::test]
async fn no_relationship_is_400_pgrst200() {
    let r = get("/films?select=*,addresses(*)").await;
    assert_error(&r, 400, "PGRST200");
    assert_eq!(
        r.json()["message"],
        "Could not find a relationship between 'films' and 'addresses' in the schema cache"
    );
    assert_eq!(
        r.json()["details"],
        "Searched for a foreign key relationship between 'films' and 'addresses' in the schema 'test', but no matches were found."
    );
    let r = get("/orders?select=*,addresses!nope(*)").await;
    assert_error(&r, 400, "PGRST200");
    assert_eq!(
        r.json()["details"],
        "Searched for a foreign key relationship between 'orders' and 'addresses' using the hint 'nope' in the schema 'test', but no matches were found."
    );
    let r = get("/films?select=*,directorz(*)").await;
    assert_eq!(r.json()["hint"], "Perhaps you meant 'directors' instead of 'directorz'.");
}

#[tokio::test]
async fn embedded_count() {
    let r = get("/directors?select=last_name,films(count)&order=id").await;
    assert_eq!(
        r.json(),
        json!([
            {"last_name": "Tarantino", "films": [{"count": 2}]},
            {"last_name": "Lumière", "films": [{"count": 1}]},
            {"last_name": "Méliès", "films": [{"count": 1}]},
            {"last_name": "Yet", "films": [{"count": 0}]}
        ])
    );
}

#[tokio::test]
async fn filter_on_a_resource_not_embedded_is_pgrst108() {
    let r = get("/films?select=id&actors.first_name=eq.John").await;
    assert_error(&r, 400, "PGRST108");
    assert_eq!(r.json()["message"], "'actors' is not an embedded resource in this request");
    assert_eq!(r.json()["hint"], "Verify that 'actors' is included in the 'select' query parameter.");
}

#[tokio::test]
async fn embeds_after_writes_and_calls() {
    let auth = svc();
    let r = call(
        "POST",
        "/films?select=title,director:directors(last_name)",
        &[("Authorization", &auth), ("Prefer", "return=representation"), OBJECT],
        Some(r#"{"id": 100, "director_id": 1, "title": "Kill Bill", "year": 2003}"#),
    )
    .await;
    assert_eq!(
        (r.status, r.json()),
        (201, json!({"title": "Kill Bill", "director": {"last_name": "Tarantino"}})),
        "{}",
        r.text
    );
    let r = call(
        "DELETE",
        "/films?id=eq.100&select=id,technical_specs(camera)",
        &[("Authorization", &auth), ("Prefer", "return=representation")],
        None,
    )
    .await;
    assert_eq!(r.json(), json!([{"id": 100, "technical_specs": null}]));
    let r = get("/rpc/getallfilms?select=title,directors(last_name)&title=like.*Workers*").await;
    assert_eq!(
        r.json(),
        json!([{"title": "Workers Leaving The Lumière Factory In Lyon", "directors": {"last_name": "Lumière"}}])
    );
}

#[tokio::test]
async fn embedding_respects_row_level_security() {
    let path = "/projects?select=id,name,pages(page_id,title,components(id,kind))&pages.order=page_id&pages.components.order=id";
    let alice = call("GET", path, &[("Authorization", &jwt("authenticated", "alice"))], None).await;
    assert_eq!(
        alice.json(),
        json!([{"id": 1, "name": "Alice's app", "pages": [
            {"page_id": 1, "title": "Home", "components": [{"id": "c1", "kind": "text"}, {"id": "c2", "kind": "button"}]},
            {"page_id": 2, "title": "About", "components": [{"id": "c3", "kind": "image"}]}
        ]}])
    );
    // Bob embedding from the pages side never reaches Alice's rows.
    let bob = call(
        "GET",
        "/pages?select=title,projects(name),components(id)",
        &[("Authorization", &jwt("authenticated", "bob"))],
        None,
    )
    .await;
    assert_eq!(
        bob.json(),
        json!([{"title": "Bob home", "projects": {"name": "Bob's app"}, "components": [{"id": "c9"}]}])
    );
    let r =
        call("GET", "/projects?select=*,components(*)", &[("Authorization", &jwt("authenticated", "bob"))], None).await;
    assert_error(&r, 400, "PGRST200");
}

#[tokio::test]
async fn embedding_names_and_aliases_cannot_inject_sql() {
    // An alias with quotes and SQL is one output key, nothing more.
    let r = get("/films?select=id,%22d%5C%22)%3B%20DROP%20TABLE%20test.films%3B%20--%22:directors(last_name)&id=eq.3")
        .await;
    assert_eq!(r.json(), json!([{"id": 3, "d\"); DROP TABLE test.films; --": {"last_name": "Lumière"}}]));
    // A hint or a target with SQL finds no relationship.
    let r = get("/films?select=id,directors!%22x%27%3B%20DROP%20TABLE%20test.films%3B%20--%22(id)").await;
    assert_error(&r, 400, "PGRST200");
    let r = get("/films?select=id,%22directors%5C%22%20x%22(id)").await;
    assert_error(&r, 400, "PGRST200");
    // Values and JSON keys on embeds stay values.
    let r =
        get("/directors?select=id,films(title)&films.title=eq.x%27)%3B%20DROP%20TABLE%20test.films%3B%20--&id=eq.1")
            .await;
    assert_eq!(r.json(), json!([{"id": 1, "films": []}]));
    let r = get("/items?select=id,data-%3E%3E%22a%27)%3B%20DROP%20TABLE%20test.items%3B%20--%22&id=eq.1").await;
    assert_eq!(r.json(), json!([{"id": 1, "a'); DROP TABLE test.items; --": null}]));
    assert_eq!(get("/films?select=id&id=eq.1").await.json(), json!([{"id": 1}]), "films still there");
    assert_eq!(get("/items?select=id&id=eq.1").await.json(), json!([{"id": 1}]), "items still there");
}

#[tokio::test]
async fn embedding_depth_is_bounded() {
    let deep = format!("/films?select={}id{}", "directors(films(".repeat(6), "))".repeat(6));
    let r = get(&deep).await;
    assert_error(&r, 400, "PGRST100");
}

// ---- dev only: not PostgREST behaviour -------------------------------------

#[tokio::test]
async fn request_counter_counts_requests() {
    let read = || async { get(cogo_dev::gateway::REQUEST_COUNTER).await.json()["requests"].as_u64().unwrap() };
    let before = read().await;
    get("/items").await;
    get("/no/such/path").await;
    // Other tests run meanwhile, so only a lower bound holds.
    assert!(read().await >= before + 2);
}
