//! The IDE's read of a project through PostgREST (the local gateway, or
//! the one `POSTGREST_URL` names): one project with 20 pages of 50
//! components each, as one embedded select (one request, one SQL
//! statement) beside the same rows read in three requests (the project,
//! its pages, its components), alternating in the same run, under the
//! owner's JWT so row level security decides at every level.

use std::time::Instant;

use cogo_tests::{sql, Stack};
use serde_json::{json, Value};

use crate::stats::{ms_since, percentile};

const PROJECT: &str = "b3c4e0f0-0000-4000-8000-00000000be4c";
const OWNER: &str = "bench-owner";
const PAGES: i64 = 20;
const COMPONENTS_PER_PAGE: i64 = 50;

/// The project, its pages and components, made afresh (outside the timing).
async fn seed() {
    let db = sql().await;
    db.execute("DELETE FROM public.projects WHERE id = $1::text::uuid", &[&PROJECT]).await.unwrap();
    db.execute(
        "INSERT INTO public.projects (id, name, owner_id, source) VALUES ($1::text::uuid, 'bench project', $2, 'bench')",
        &[&PROJECT, &OWNER],
    )
    .await
    .unwrap();
    db.execute(
        "INSERT INTO public.pages (project_id, page_id, figma_id, name)
         SELECT $1::text::uuid, p, '0:' || p, 'Page ' || p FROM generate_series(1, $2::bigint) p",
        &[&PROJECT, &PAGES],
    )
    .await
    .unwrap();
    db.execute(
        "INSERT INTO public.components (project_id, page_id, id, name, type, dx, dy, width, height, index_in_page, options)
         SELECT $1::text::uuid, p, 'c' || p || '-' || i, 'Component ' || i, 'text', i * 4, p * 8, 120, 32, i,
                jsonb_build_object('text', 'Label ' || i, 'style', jsonb_build_object('fontSize', 14))
         FROM generate_series(1, $2::bigint) p, generate_series(1, $3::bigint) i",
        &[&PROJECT, &PAGES, &COMPONENTS_PER_PAGE],
    )
    .await
    .unwrap();
    db.batch_execute("ANALYZE public.projects; ANALYZE public.pages; ANALYZE public.components").await.unwrap();
}

/// One GET to PostgREST as the project's owner: its body's size and JSON.
async fn get(http: &reqwest::Client, url: &str, token: &str) -> (usize, Value) {
    let resp = http.get(url).header("apikey", token).bearer_auth(token).send().await.expect("request");
    let status = resp.status();
    let body = resp.bytes().await.unwrap();
    assert!(status.is_success(), "{url}: {status} {}", String::from_utf8_lossy(&body));
    (body.len(), serde_json::from_slice(&body).expect("JSON"))
}

pub async fn report(stack: &Stack, quick: bool) {
    seed().await;
    let token = stack.token(json!({"sub": OWNER, "role": "authenticated"}));
    let base = stack.postgrest_url();
    let http = reqwest::Client::new();
    let embedded = format!(
        "{base}/projects?select=*,pages(*,components(*))&id=eq.{PROJECT}&pages.order=page_id&pages.components.order=index_in_page"
    );
    let three = [
        format!("{base}/projects?id=eq.{PROJECT}"),
        format!("{base}/pages?project_id=eq.{PROJECT}&order=page_id"),
        format!("{base}/components?project_id=eq.{PROJECT}&order=page_id,index_in_page"),
    ];

    // Both read every row, or neither figure means anything.
    let (embedded_bytes, tree) = get(&http, &embedded, &token).await;
    let pages = tree[0]["pages"].as_array().expect("pages");
    let components: usize = pages.iter().map(|p| p["components"].as_array().map_or(0, Vec::len)).sum();
    assert_eq!((pages.len() as i64, components as i64), (PAGES, PAGES * COMPONENTS_PER_PAGE));
    let mut three_bytes = 0;
    let mut rows = 0;
    for url in &three {
        let (bytes, v) = get(&http, url, &token).await;
        three_bytes += bytes;
        rows += v.as_array().map_or(0, Vec::len);
    }
    assert_eq!(rows as i64, 1 + PAGES + PAGES * COMPONENTS_PER_PAGE);

    let samples = if quick { 60 } else { 200 };
    let (mut one, mut split) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    // Alternating, so both see the same machine; the first ten warm up.
    for i in 0..samples + 10 {
        let t = Instant::now();
        get(&http, &embedded, &token).await;
        let embedded_ms = ms_since(t);
        let t = Instant::now();
        for url in &three {
            get(&http, url, &token).await;
        }
        let three_ms = ms_since(t);
        if i >= 10 {
            one.push(embedded_ms);
            split.push(three_ms);
        }
    }
    let (one_p50, one_p99) = (percentile(&one, 0.5), percentile(&one, 0.99));
    let (split_p50, split_p99) = (percentile(&split, 0.5), percentile(&split, 0.99));
    println!(
        "\n{:<52} {:>10} {:>10} {:>10}",
        format!("gateway: 1 project x {PAGES} pages x {COMPONENTS_PER_PAGE} components"),
        "p50",
        "p99",
        "bytes"
    );
    println!(
        "{:<52} {one_p50:>8.2}ms {one_p99:>8.2}ms {embedded_bytes:>10}",
        "embedded select (1 request, 1 statement)"
    );
    println!(
        "{:<52} {split_p50:>8.2}ms {split_p99:>8.2}ms {three_bytes:>10}",
        "project, pages, components (3 requests)"
    );
    // Over loopback the three requests cost no network: each round trip
    // the embed saves is worth an RTT more against a remote PostgREST.
    println!("embedded / 3 requests, p50: {:.2}x (loopback: no network round trip to save)", one_p50 / split_p50);
}
