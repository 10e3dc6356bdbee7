//! Peak heap memory of `uui/generate`'s work per input byte, measured with
//! a counting global allocator (its own test binary, so the allocator
//! counts nothing else): the body parsed to serde_json, a dump's images
//! decoded, `figma::generate`, the images placed, the outbox arguments, and
//! the answer serialised, in the handler's order. Over every fixture, over
//! large documents made by repeating fixture pages, and over dumps whose
//! image bytes fill the body; the largest document the default
//! `FIGMA_MAX_BODY_BYTES` admits must stay under the isolate budget.
//!
//! Native sizes are an upper bound for wasm32, where pointers (and so
//! `serde_json::Value`s) are half as large.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cogo_shared::config::DEFAULT_FIGMA_MAX_BODY_BYTES;
use cogo_shared::figma;
use cogo_shared::figma::images::{self, Placement};
use cogo_shared::http::body::Body;
use serde_json::{json, Value};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Counted as both blocks alive at once, as a copying realloc has them.
            grew(new_size);
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What a request of this budget may take of the isolate's 128 MB: the
/// rest is the runtime, the bundle and other requests.
const BUDGET: usize = 64 * 1024 * 1024;

struct Measured {
    peak: usize,
    nodes: usize,
    millis: u128,
}

/// `uui/generate` with a project, as the handler runs it, from the body's
/// bytes (counted: they are alive when the work starts) to the answer's.
fn generate(bytes: Vec<u8>) -> Measured {
    let started = Instant::now();
    let base = CURRENT.load(Ordering::Relaxed) - bytes.capacity();
    PEAK.store(CURRENT.load(Ordering::Relaxed), Ordering::Relaxed);
    let body = Body::parse(&bytes, usize::MAX).expect("parses");
    drop(bytes);
    let (dump, mut links) = figma::generate_images(&body).expect("images decode");
    let mut result = figma::generate(&body, Some("00000000-0000-4000-8000-000000000001")).expect("converts");
    drop(body);
    // Placed as without a bucket, the costlier way: inlined into the answer.
    let placements = images::placements(dump.iter().map(|image| image.size), false);
    for (image, placement) in dump.into_iter().zip(placements) {
        if placement == Placement::Inline {
            links.insert_fill(image.hash.clone(), image.data_url());
        }
    }
    links.attach(&mut result);
    let request = serde_json::to_vec(&figma::outbox_args("p", "t", Some("owner"), &result)).unwrap();
    drop(request);
    let nodes = count(&result["cogo_ui_json"]["tree"]);
    let answer = figma::generate_answer("t", result);
    drop(answer);
    Measured { peak: PEAK.load(Ordering::Relaxed) - base, nodes, millis: started.elapsed().as_millis() }
}

fn count(tree: &Value) -> usize {
    tree.as_array().into_iter().flatten().map(|n| 1 + count(&n["children"])).sum()
}

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/figma");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect();
    out.sort();
    assert!(out.len() >= 12, "the fixtures are there");
    out
}

/// A `uui/generate` body of the REST files' pages, repeated until the next
/// page would take it over `max` bytes.
fn repeated_pages(files: &[(String, Vec<u8>)], max: usize) -> Vec<u8> {
    let pages: Vec<Value> = files
        .iter()
        .filter(|(name, _)| name.starts_with("rest-file-"))
        .flat_map(|(_, bytes)| {
            let doc: Value = serde_json::from_slice(bytes).unwrap();
            doc["document"]["children"].as_array().unwrap().clone()
        })
        .collect();
    let sized: Vec<(usize, &Value)> = pages.iter().map(|p| (serde_json::to_vec(p).unwrap().len() + 1, p)).collect();
    let envelope = r#"{"projectId":"00000000-0000-4000-8000-000000000001","figma_json":{"document":{"type":"DOCUMENT","children":[]}}}"#;
    let (mut total, mut chosen) = (envelope.len(), Vec::new());
    'fill: loop {
        for (size, page) in &sized {
            if total + size > max {
                break 'fill;
            }
            total += size;
            chosen.push((*page).clone());
        }
    }
    let body = json!({ "projectId": "00000000-0000-4000-8000-000000000001",
                       "figma_json": { "document": { "type": "DOCUMENT", "children": chosen } } });
    serde_json::to_vec(&body).unwrap()
}

/// A `uui/generate` body of the plugin dump fixture's objects with image
/// bytes (`encode`d), each image within the inline cap, filling the body
/// to near `max` bytes.
fn dump_at(files: &[(String, Vec<u8>)], max: usize, encode: fn(&[u8]) -> Value) -> Vec<u8> {
    let objects = &files.iter().find(|(name, _)| name.starts_with("plugin-dump-")).expect("the dump fixture").1;
    let objects: Value = serde_json::from_slice(objects).unwrap();
    let image: Vec<u8> = (0..images::INLINE_IMAGE_MAX_BYTES).map(|i| (i * 7 % 251) as u8).collect();
    let per_byte = serde_json::to_vec(&encode(&image)).unwrap().len().div_ceil(image.len());
    // Room for the envelope and the images' keys.
    let mut left = max - serde_json::to_vec(&objects).unwrap().len() - 2_000;
    let mut images = serde_json::Map::new();
    while images.len() < images::MAX_DUMP_IMAGES && left >= per_byte {
        let encoded = encode(&image[..image.len().min(left / per_byte)]);
        left -= serde_json::to_vec(&encoded).unwrap().len();
        images.insert(format!("{:040x}", images.len()), encoded);
    }
    let body = json!({ "projectId": "00000000-0000-4000-8000-000000000001",
                       "figma_json": { "objects": objects, "images": images } });
    serde_json::to_vec(&body).unwrap()
}

fn index_keyed(bytes: &[u8]) -> Value {
    Value::Object(bytes.iter().enumerate().map(|(i, b)| (i.to_string(), json!(b))).collect())
}

fn array(bytes: &[u8]) -> Value {
    json!(bytes)
}

fn body_of(doc: &[u8]) -> Vec<u8> {
    let doc: Value = serde_json::from_slice(doc).unwrap();
    serde_json::to_vec(&json!({ "projectId": "00000000-0000-4000-8000-000000000001", "figma_json": doc })).unwrap()
}

#[test]
fn generate_peak_memory_per_input_byte_stays_within_the_isolate_budget() {
    let files = fixtures();
    let mut worst: f64 = 0.0;
    let mut report = |name: &str, bytes: Vec<u8>| {
        let n = bytes.len();
        let m = generate(bytes);
        let ratio = m.peak as f64 / n as f64;
        worst = worst.max(ratio);
        eprintln!(
            "{name}: {n} bytes, {} nodes, peak {} bytes = {ratio:.1} per input byte, {} ms",
            m.nodes, m.peak, m.millis
        );
        (n, m, ratio)
    };
    for (name, doc) in &files {
        report(name, body_of(doc));
    }
    let cap = DEFAULT_FIGMA_MAX_BODY_BYTES;
    // A dump's bytes as JSON numbers are the most heap per body byte.
    for (form, encode) in [("index-keyed", index_keyed as fn(&[u8]) -> Value), ("array", array)] {
        let (n, _, _) = report(&format!("a dump, {form} image bytes, near the cap"), dump_at(&files, cap, encode));
        assert!(n <= cap && n > cap / 2, "{form}: {n} bytes is near the {cap}-byte cap");
    }
    // Repeated pages well past the cap: the ratio holds as documents grow.
    let (n_big, _, big_ratio) = report("repeated pages, 3x the cap", repeated_pages(&files, 3 * cap));
    assert!(n_big > 2 * cap);
    let (n, at_cap, ratio) = report("repeated pages, the cap", repeated_pages(&files, cap));
    assert!(n <= cap && n > cap / 2, "{n} bytes is near the {cap}-byte cap");
    // Scaled to exactly the cap, plus the body's copy on the JavaScript side.
    let at_exactly_the_cap = (ratio * cap as f64) as usize + cap;
    eprintln!(
        "worst ratio {worst:.1}; at the cap ({cap} bytes): peak {} bytes, {at_exactly_the_cap} with the body's JS copy \
         (budget {BUDGET}); 3x the cap: {big_ratio:.1} per byte",
        at_cap.peak
    );
    assert!(at_exactly_the_cap < BUDGET, "{at_exactly_the_cap} bytes at the cap is over the {BUDGET}-byte budget");
    assert!(at_cap.nodes < figma::MAX_NODES, "the node limit admits every document under the byte cap");
    assert!(worst * (cap as f64) + (cap as f64) < BUDGET as f64, "every fixture, scaled to the cap, fits the budget");
}
