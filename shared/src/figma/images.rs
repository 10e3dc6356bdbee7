//! The images that come with a Figma document. A figma-json-plugin dump
//! (`{objects, images: {<hash>: bytes}}`) carries the bytes themselves; the
//! REST image endpoints answer URL maps (`GET /v1/files/:key/images`: image
//! fills by `imageRef`; `GET /v1/images/:key`: node renders by node id),
//! which come beside the document as `figma_images`. Decoding, checking,
//! sniffing the type, where each image goes (the figma bucket, an inline
//! `data:` URL, or nowhere) and putting the links into a converted tree are
//! decided here; the edge stores the bytes.

use base64ct::{Base64, Base64Unpadded, Encoding};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::bad_input;
use crate::http::body::Body;
use crate::http::error::ApiError;

/// The most images one dump may carry. Each distinct image costs the edge a
/// storage lookup and, the first time, an upload (2 subrequests; with
/// Supabase Storage also a signing call): 20 keeps a conversion, with its
/// own few calls, inside the free plan's 50 subrequests per request on R2.
pub const MAX_DUMP_IMAGES: usize = 20;
/// The most decoded image bytes one dump may carry, all images together.
/// The body cap already bounds them (about 1.1 MB of base64 in the default
/// 1.5 MB); this holds if `FIGMA_MAX_BODY_BYTES` is raised.
pub const MAX_DUMP_IMAGE_BYTES: usize = 8 << 20;
/// Without a bucket, an image up to this size is inlined as a `data:` URL.
pub const INLINE_IMAGE_MAX_BYTES: usize = 64 << 10;
/// ... and the inlined images together up to this, so the answer stays small.
pub const INLINE_TOTAL_MAX_BYTES: usize = 256 << 10;
/// The most URLs the `figma_images` maps may hold, all maps together.
pub const MAX_IMAGE_LINKS: usize = 10_000;
/// The longest URL in a `figma_images` map: room for a `data:` URL of an
/// image under [`INLINE_IMAGE_MAX_BYTES`].
pub const MAX_LINK_BYTES: usize = 96 << 10;
/// The longest image hash (Figma's are 40 hex digits).
pub const MAX_HASH_CHARS: usize = 128;
/// How long the signed link to a stored image lives: long enough for a UI
/// tree to be rendered and kept a while, clamped to
/// `ARTIFACT_LINK_MAX_SECONDS`, the longest any link of this bundle lives.
pub const IMAGE_LINK_SECONDS: u32 = 7 * 86_400;

/// One image of a dump, decoded.
#[derive(Debug)]
pub struct DumpImage {
    /// The dump's key: the `imageHash` the fills name.
    pub hash: String,
    pub sha256: String,
    pub content_type: &'static str,
    pub size: usize,
    /// Taken (and so freed) when stored.
    pub bytes: Vec<u8>,
}

impl DumpImage {
    fn new(hash: String, bytes: Vec<u8>) -> DumpImage {
        DumpImage {
            hash,
            sha256: crate::hex(&Sha256::digest(&bytes)),
            content_type: content_type(&bytes),
            size: bytes.len(),
            bytes,
        }
    }

    /// Where it is kept in the figma bucket: by content, so each distinct
    /// image is stored once, whoever sends it and under whatever hash.
    pub fn key(&self) -> String {
        format!("images/{}", self.sha256)
    }

    /// The image as a `data:` URL.
    pub fn data_url(&self) -> String {
        format!("data:{};base64,{}", self.content_type, Base64::encode_string(&self.bytes))
    }

    /// Its entry in the answer's `images`.
    pub fn summary(&self, placement: Placement, url: Option<&str>) -> Value {
        json!({ "sha256": self.sha256, "bytes": self.size, "contentType": self.content_type,
                "url": url, "stored": placement.as_str() })
    }
}

/// The type of image bytes from their first bytes: PNG, JPEG, GIF or WebP,
/// else `application/octet-stream`. Never the type the sender declares, so
/// a link to a stored image never serves, say, HTML.
pub fn content_type(bytes: &[u8]) -> &'static str {
    match bytes {
        [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, ..] => "image/png",
        [0xff, 0xd8, 0xff, ..] => "image/jpeg",
        [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => "image/gif",
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => "image/webp",
        _ => "application/octet-stream",
    }
}

const EXPECTED_BYTES: &str =
    "expected the image's bytes: an array of integers 0..=255, an index-keyed object of them, base64 or a data: URL";

/// The images of a figma-json-plugin dump (`{objects, images}`), each
/// decoded and checked; none for any other document. Nothing is decoded
/// before the count and the decoded size are known to be within bounds.
pub fn dump_images(doc: &Value) -> Result<Vec<DumpImage>, ApiError> {
    if doc.get("objects").is_none() {
        return Ok(Vec::new());
    }
    let images = match doc.get("images") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(images)) => images,
        Some(_) => return Err(bad_input("$.images", "expected an object of image hash to bytes")),
    };
    if images.len() > MAX_DUMP_IMAGES {
        return Err(ApiError::new(
            413,
            "too_many_images",
            format!("the dump carries {} images; at most {MAX_DUMP_IMAGES}", images.len()),
        )
        .with_details(json!({ "path": "$.images", "limit": MAX_DUMP_IMAGES })));
    }
    for hash in images.keys() {
        let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if hash.is_empty() || hash.len() > MAX_HASH_CHARS || !hash.chars().all(allowed) {
            let shown: String = hash.chars().take(40).collect();
            let reason = format!("the image hash {shown:?} is not 1 to {MAX_HASH_CHARS} letters, digits, - or _");
            return Err(bad_input("$.images", &reason));
        }
    }
    let declared: usize = images.values().map(decoded_len).sum();
    if declared > MAX_DUMP_IMAGE_BYTES {
        return Err(ApiError::new(
            413,
            "images_too_large",
            format!("the dump's images are {declared} bytes together; at most {MAX_DUMP_IMAGE_BYTES}"),
        )
        .with_details(json!({ "path": "$.images", "limit": MAX_DUMP_IMAGE_BYTES })));
    }
    images
        .iter()
        .map(|(hash, value)| Ok(DumpImage::new(hash.clone(), decode(value, &format!("$.images.{hash}"))?)))
        .collect()
}

/// How many bytes `value` decodes to, at most, judged from its length.
fn decoded_len(value: &Value) -> usize {
    match value {
        Value::Array(items) => items.len(),
        Value::Object(map) => map.len(),
        Value::String(s) => s.len() / 4 * 3 + 3,
        _ => 0,
    }
}

/// The bytes of one dump image, in any of the forms the plugin's versions
/// write: an array, `JSON.stringify(Uint8Array)`'s index-keyed object,
/// base64, or a base64 `data:` URL.
fn decode(value: &Value, path: &str) -> Result<Vec<u8>, ApiError> {
    let byte = |v: &Value, at: String| {
        v.as_u64()
            .and_then(|b| u8::try_from(b).ok())
            .ok_or_else(|| bad_input(&at, "expected a byte: an integer 0..=255"))
    };
    match value {
        Value::Array(items) => items.iter().enumerate().map(|(i, v)| byte(v, format!("{path}[{i}]"))).collect(),
        Value::Object(map) => {
            // Distinct canonical keys, each below the count: every index is
            // there exactly once.
            let mut out = vec![0u8; map.len()];
            for (key, v) in map {
                // Canonical indices only: "01" or "+1" would be a second name for a byte.
                let index =
                    key.parse::<usize>().ok().filter(|i| *i < map.len() && key == &i.to_string()).ok_or_else(|| {
                        let reason = format!("expected the keys \"0\" to \"{}\" of a byte array", map.len() - 1);
                        bad_input(&format!("{path}.{key}"), &reason)
                    })?;
                out[index] = byte(v, format!("{path}.{key}"))?;
            }
            Ok(out)
        }
        Value::String(s) => match s.strip_prefix("data:") {
            Some(rest) => {
                let (meta, data) =
                    rest.split_once(',').ok_or_else(|| bad_input(path, "a data: URL without a comma"))?;
                if !meta.to_ascii_lowercase().ends_with(";base64") {
                    return Err(bad_input(path, "expected a base64 data: URL (data:<type>;base64,...)"));
                }
                decode_base64(data, path)
            }
            None => decode_base64(s, path),
        },
        _ => Err(bad_input(path, EXPECTED_BYTES)),
    }
}

/// Standard base64 (RFC 4648 section 4), with or without its padding.
fn decode_base64(s: &str, path: &str) -> Result<Vec<u8>, ApiError> {
    if let Some(at) = s.bytes().position(|b| !(b.is_ascii_alphanumeric() || b"+/=".contains(&b))) {
        return Err(bad_input(path, &format!("expected base64; character {at} is not")));
    }
    // One decoder (each is code in the wasm): padding, where there is any,
    // must make the length a multiple of 4 and is then dropped.
    let data = s.trim_end_matches('=');
    let padding = s.len() - data.len();
    if padding > 2 || (padding > 0 && !s.len().is_multiple_of(4)) {
        return Err(bad_input(path, "expected base64; its padding is wrong"));
    }
    Base64Unpadded::decode_vec(data).map_err(|_| bad_input(path, "expected base64; its length is wrong"))
}

/// Where a dump image goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Stored in the figma bucket; the fills link to it.
    Bucket,
    /// No bucket: the fills carry it as a `data:` URL.
    Inline,
    /// No bucket and over the inline caps: the fills carry no URL.
    Omitted,
}

impl Placement {
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Bucket => "bucket",
            Placement::Inline => "inline",
            Placement::Omitted => "omitted",
        }
    }
}

/// Where each image of `sizes` goes: all into the bucket when there is
/// one; else inline, in order, while each is within
/// [`INLINE_IMAGE_MAX_BYTES`] and all inlined ones within
/// [`INLINE_TOTAL_MAX_BYTES`]; the rest omitted.
pub fn placements(sizes: impl IntoIterator<Item = usize>, bucket: bool) -> Vec<Placement> {
    let mut inlined = 0;
    sizes
        .into_iter()
        .map(|size| {
            if bucket {
                Placement::Bucket
            } else if size <= INLINE_IMAGE_MAX_BYTES && inlined + size <= INLINE_TOTAL_MAX_BYTES {
                inlined += size;
                Placement::Inline
            } else {
                Placement::Omitted
            }
        })
        .collect()
}

/// Where the images of a converted tree can be fetched: image fills by
/// their `imageRef` (a dump's hash, or REST's image reference), node
/// renders by node id.
#[derive(Debug, Default)]
pub struct ImageLinks {
    // URLs as JSON strings, ready to be put into the tree (and a map type
    // the bundle has already: no second one in the wasm).
    fills: Map<String, Value>,
    renders: Map<String, Value>,
}

const EXPECTED_MAP: &str = "expected a Figma image map: {meta: {images}} (GET /v1/files/:key/images) or {images} (GET /v1/images/:key), or an array of them";

impl ImageLinks {
    /// The maps in a body's `figma_images` (also `figmaImages`): one REST
    /// answer, or an array of them.
    pub fn from_body(body: &Body) -> Result<ImageLinks, ApiError> {
        let mut links = ImageLinks::default();
        match body.value(&["figma_images", "figmaImages"]) {
            None => {}
            Some(Value::Array(answers)) => {
                for (i, answer) in answers.iter().enumerate() {
                    links.add_answer(answer, &format!("$.figma_images[{i}]"))?;
                }
            }
            Some(answer) => links.add_answer(answer, "$.figma_images")?,
        }
        Ok(links)
    }

    fn add_answer(&mut self, answer: &Value, path: &str) -> Result<(), ApiError> {
        let failed = match (&answer["error"], &answer["err"]) {
            (Value::Bool(true), _) => Some("error"),
            (_, err) if !err.is_null() => Some("err"),
            _ => None,
        };
        if let Some(key) = failed {
            let why = answer["err"].as_str().or(answer["message"].as_str()).unwrap_or("error");
            let reason = format!("the image map is a failed answer: {why}");
            return Err(bad_input(&format!("{path}.{key}"), &reason));
        }
        match image_map(answer) {
            Some(ImageMap::Fills(map)) => self.add_map(map, &format!("{path}.meta.images"), true),
            Some(ImageMap::Renders(map)) => self.add_map(map, &format!("{path}.images"), false),
            None => Err(bad_input(path, EXPECTED_MAP)),
        }
    }

    fn add_map(&mut self, map: &Map<String, Value>, path: &str, fills: bool) -> Result<(), ApiError> {
        if self.fills.len() + self.renders.len() + map.len() > MAX_IMAGE_LINKS {
            return Err(ApiError::new(
                413,
                "too_many_image_links",
                format!("figma_images holds more than {MAX_IMAGE_LINKS} URLs"),
            )
            .with_details(json!({ "path": path, "limit": MAX_IMAGE_LINKS })));
        }
        for (key, url) in map {
            let at = format!("{path}.{key}");
            let url = match url {
                // A node Figma could not render.
                Value::Null => continue,
                Value::String(url) => url,
                _ => return Err(bad_input(&at, "expected a URL string or null")),
            };
            let scheme = url.get(..url.find(':').unwrap_or(0)).unwrap_or_default().to_ascii_lowercase();
            if !matches!(scheme.as_str(), "https" | "http" | "data") {
                return Err(bad_input(&at, "expected an http, https or data: URL"));
            }
            if url.len() > MAX_LINK_BYTES {
                return Err(bad_input(&at, &format!("the URL is longer than {MAX_LINK_BYTES} bytes")));
            }
            let into = if fills { &mut self.fills } else { &mut self.renders };
            into.insert(key.clone(), url.as_str().into());
        }
        Ok(())
    }

    /// Links image fills naming `hash` to `url` (over what a map said: these
    /// are the bytes the document itself carried).
    pub fn insert_fill(&mut self, hash: String, url: String) {
        self.fills.insert(hash, url.into());
    }

    pub fn is_empty(&self) -> bool {
        self.fills.is_empty() && self.renders.is_empty()
    }

    /// Puts the links into a conversion's trees (`cogo_ui_json` and
    /// `uui_json`): `url` on each image paint whose `imageRef` has one, and
    /// `render: {url}` in the props of each node that has a render.
    pub fn attach(&self, result: &mut Value) {
        if self.is_empty() {
            return;
        }
        for (form, props) in [("cogo_ui_json", "props"), ("uui_json", "attrs")] {
            let tree = result.get_mut(form).and_then(|f| f.get_mut("tree")).and_then(Value::as_array_mut);
            for node in tree.into_iter().flatten() {
                self.attach_node(node, props);
            }
        }
    }

    fn attach_node(&self, node: &mut Value, props_key: &str) {
        // `get_mut`, never indexing: an index would add the keys it misses.
        let render = node["figma"]["id"].as_str().and_then(|id| self.renders.get(id));
        if let Some(props) = node.get_mut(props_key).and_then(Value::as_object_mut) {
            if let Some(url) = render {
                props.insert("render".into(), json!({ "url": url }));
            }
            if let Some(style) = props.get_mut("style") {
                let fills = style.get_mut("fills").and_then(Value::as_array_mut).into_iter().flatten();
                for paint in fills {
                    self.attach_paint(paint);
                }
                let strokes = style.get_mut("stroke").and_then(|s| s.get_mut("paints")).and_then(Value::as_array_mut);
                for paint in strokes.into_iter().flatten() {
                    self.attach_paint(paint);
                }
            }
        }
        for child in node.get_mut("children").and_then(Value::as_array_mut).into_iter().flatten() {
            self.attach_node(child, props_key);
        }
    }

    fn attach_paint(&self, paint: &mut Value) {
        let Some(paint) = paint.as_object_mut().filter(|p| p.get("type").is_some_and(|t| t == "image")) else {
            return;
        };
        if let Some(url) = paint.get("imageRef").and_then(Value::as_str).and_then(|r| self.fills.get(r)) {
            paint.insert("url".into(), url.clone());
        }
    }
}

enum ImageMap<'a> {
    /// `GET /v1/files/:key/images`: `{error, status, meta: {images: {<imageRef>: url}}}`.
    Fills(&'a Map<String, Value>),
    /// `GET /v1/images/:key`: `{err, images: {<node id>: url | null}}`.
    Renders(&'a Map<String, Value>),
}

/// The map of a REST image answer, if `answer` is one. A dump also has
/// `images`, but of bytes, beside its `objects`.
fn image_map(answer: &Value) -> Option<ImageMap<'_>> {
    if let Some(map) = answer["meta"]["images"].as_object() {
        return Some(ImageMap::Fills(map));
    }
    let map = answer["images"].as_object()?;
    (answer.get("objects").is_none() && answer.get("type").is_none()).then_some(ImageMap::Renders(map))
}

/// Whether `doc` is a REST image map rather than a document: it has no
/// nodes, so it is refused as one, with where it belongs.
pub(crate) fn is_image_map(doc: &Value) -> bool {
    doc.get("document").is_none() && doc.get("nodes").is_none() && image_map(doc).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R'];

    fn dump(bytes: Value) -> Value {
        json!({ "objects": [], "images": { "459d44e506315e435060e18b94e213e166c52f62": bytes } })
    }

    fn path_of(e: ApiError) -> (u16, String) {
        (e.status, e.details.unwrap()["path"].as_str().unwrap().to_string())
    }

    #[test]
    fn every_byte_encoding_decodes_to_the_same_image() {
        let array = json!(PNG);
        let indexed: Map<String, Value> = PNG.iter().enumerate().map(|(i, b)| (i.to_string(), json!(b))).collect();
        let base64 = Base64::encode_string(PNG);
        let unpadded = base64.trim_end_matches('=').to_string();
        let data_url = format!("data:image/png;base64,{base64}");
        for encoded in [array, Value::Object(indexed), json!(base64), json!(unpadded), json!(data_url)] {
            let images = dump_images(&dump(encoded.clone())).unwrap();
            assert_eq!(images.len(), 1, "{encoded}");
            let image = &images[0];
            assert_eq!(image.bytes, PNG, "{encoded}");
            assert_eq!((image.size, image.content_type), (PNG.len(), "image/png"));
            assert_eq!(image.sha256, crate::hex(&Sha256::digest(PNG)));
            assert_eq!(image.key(), format!("images/{}", image.sha256));
            assert_eq!(image.hash, "459d44e506315e435060e18b94e213e166c52f62");
        }
    }

    #[test]
    fn bad_bytes_name_their_path_and_what_was_expected() {
        let h = "$.images.459d44e506315e435060e18b94e213e166c52f62";
        let mut bytes: Vec<Value> = PNG.iter().map(|b| json!(b)).collect();
        bytes[12] = json!(256);
        let e = dump_images(&dump(json!(bytes))).unwrap_err();
        assert!(e.message.contains("0..=255"), "{}", e.message);
        assert_eq!(path_of(e), (400, format!("{h}[12]")));
        assert_eq!(path_of(dump_images(&dump(json!([1, -1]))).unwrap_err()).1, format!("{h}[1]"));
        assert_eq!(path_of(dump_images(&dump(json!([1, "2"]))).unwrap_err()).1, format!("{h}[1]"));
        assert_eq!(path_of(dump_images(&dump(json!({"0": 1, "2": 3}))).unwrap_err()).1, format!("{h}.2"));
        assert_eq!(path_of(dump_images(&dump(json!({"0": 1, "01": 3}))).unwrap_err()).1, format!("{h}.01"));
        assert_eq!(path_of(dump_images(&dump(json!({"0": 1, "1": 300}))).unwrap_err()).1, format!("{h}.1"));
        let e = dump_images(&dump(json!("iVBO!w0K"))).unwrap_err();
        assert!(e.message.contains("character 4"), "{}", e.message);
        assert_eq!(path_of(e).1, h);
        assert_eq!(path_of(dump_images(&dump(json!("iVBORw0KG"))).unwrap_err()).1, h, "a length base64 cannot have");
        for (padded, ok) in [
            ("AQI=", true),
            ("AQ==", true),
            ("AQ", true),
            ("AQ=", false),
            ("AQI==", false),
            ("A===", false),
            ("A=QI", false),
        ] {
            assert_eq!(dump_images(&dump(json!(padded))).is_ok(), ok, "{padded}");
        }
        assert_eq!(path_of(dump_images(&dump(json!("data:image/png,abc"))).unwrap_err()).1, h, "not base64");
        let e = dump_images(&dump(json!(true))).unwrap_err();
        assert!(e.message.contains("base64 or a data: URL"), "{}", e.message);
        assert_eq!(path_of(e).1, h);
        let e = dump_images(&json!({"objects": [], "images": [1, 2]})).unwrap_err();
        assert_eq!(path_of(e).1, "$.images");
        let e = dump_images(&json!({"objects": [], "images": {"a.b": [1]}})).unwrap_err();
        assert_eq!(path_of(e).1, "$.images");
    }

    #[test]
    fn dumps_are_bounded_in_count_and_bytes() {
        let many: Map<String, Value> = (0..=MAX_DUMP_IMAGES).map(|i| (format!("h{i}"), json!([1]))).collect();
        let e = dump_images(&json!({"objects": [], "images": many})).unwrap_err();
        assert_eq!((e.status, e.code, &e.details.unwrap()["limit"]), (413, "too_many_images", &json!(MAX_DUMP_IMAGES)));
        let big = "A".repeat(MAX_DUMP_IMAGE_BYTES / 3 * 4 + 4);
        let e = dump_images(&json!({"objects": [], "images": {"h": big}})).unwrap_err();
        assert_eq!(
            (e.status, e.code, &e.details.unwrap()["limit"]),
            (413, "images_too_large", &json!(MAX_DUMP_IMAGE_BYTES))
        );
        assert!(dump_images(&json!({"objects": [], "images": {}})).unwrap().is_empty());
        assert!(dump_images(&json!({"document": {}, "images": {"h": [1]}})).unwrap().is_empty(), "not a dump");
    }

    #[test]
    fn types_are_sniffed_from_the_bytes() {
        assert_eq!(content_type(PNG), "image/png");
        assert_eq!(content_type(&[0xff, 0xd8, 0xff, 0xe0]), "image/jpeg");
        assert_eq!(content_type(b"GIF89a..."), "image/gif");
        assert_eq!(content_type(b"RIFF\x10\0\0\0WEBPVP8 "), "image/webp");
        assert_eq!(content_type(b"<html><script>"), "application/octet-stream");
        assert_eq!(content_type(&[]), "application/octet-stream");
        let image = DumpImage::new("h".into(), b"GIF89a".to_vec());
        assert_eq!(image.data_url(), "data:image/gif;base64,R0lGODlh");
    }

    #[test]
    fn images_go_to_the_bucket_else_inline_within_the_caps_else_nowhere() {
        use Placement::*;
        let sizes = [10, INLINE_IMAGE_MAX_BYTES, INLINE_IMAGE_MAX_BYTES + 1, 0];
        assert_eq!(placements(sizes, true), [Bucket; 4]);
        assert_eq!(placements(sizes, false), [Inline, Inline, Omitted, Inline]);
        // The total cap: four full-size images fit, the fifth does not, a small one still may.
        let full = INLINE_IMAGE_MAX_BYTES;
        assert_eq!(INLINE_TOTAL_MAX_BYTES, 4 * full, "the test assumes four fit");
        assert_eq!(
            placements([full, full, full, full, full, 0], false),
            [Inline, Inline, Inline, Inline, Omitted, Inline]
        );
        assert!(placements([], false).is_empty());
    }

    fn body(v: Value) -> Body {
        Body::parse(v.to_string().as_bytes(), 1 << 20).unwrap()
    }

    #[test]
    fn rest_image_maps_link_fills_and_renders() {
        let fills = json!({"error": false, "status": 200, "meta": {"images": {"ref1": "https://s3/ref1.png"}}});
        let renders = json!({"err": null, "images": {"1:2": "https://s3/render.png", "1:3": null}});
        let links = ImageLinks::from_body(&body(json!({"figma_images": [fills, renders]}))).unwrap();
        let node = |props: &str| {
            json!({"id": "1:2", "figma": {"id": "1:2"}, props: {"style": {
                "fills": [{"type": "image", "imageRef": "ref1"}, {"type": "image", "imageRef": "other"}, {"type": "solid"}],
                "stroke": {"paints": [{"type": "image", "imageRef": "ref1"}]}}},
                "children": [{"id": "1:3", "figma": {"id": "1:3"}, props: {}, "children": []}]})
        };
        let mut result = json!({"cogo_ui_json": {"tree": [node("props")]}, "uui_json": {"tree": [node("attrs")]}});
        links.attach(&mut result);
        for (form, props) in [("cogo_ui_json", "props"), ("uui_json", "attrs")] {
            let n = &result[form]["tree"][0];
            assert_eq!(n[props]["style"]["fills"][0]["url"], "https://s3/ref1.png", "{form}");
            assert!(n[props]["style"]["fills"][1].get("url").is_none(), "no link, no url");
            assert!(n[props]["style"]["fills"][2].get("url").is_none());
            assert_eq!(n[props]["style"]["stroke"]["paints"][0]["url"], "https://s3/ref1.png");
            assert_eq!(n[props]["render"]["url"], "https://s3/render.png");
            assert!(n["children"][0][props].get("render").is_none(), "a null render is none");
            assert_eq!(n["children"][0][props], json!({}), "nothing added where nothing links");
        }
        let one = ImageLinks::from_body(&body(
            json!({"figmaImages": {"meta": {"images": {"r": "data:image/png;base64,AA=="}}}}),
        ));
        assert_eq!(one.unwrap().fills["r"], "data:image/png;base64,AA==");
        assert!(ImageLinks::from_body(&body(json!({}))).unwrap().is_empty());
    }

    #[test]
    fn bad_image_maps_name_their_path() {
        let refused = |v: Value| path_of(ImageLinks::from_body(&body(json!({ "figma_images": v }))).unwrap_err());
        assert_eq!(refused(json!({"meta": {"images": {"r": 3}}})), (400, "$.figma_images.meta.images.r".into()));
        assert_eq!(
            refused(json!({"images": {"1:2": "javascript:alert(1)"}})),
            (400, "$.figma_images.images.1:2".into())
        );
        assert_eq!(refused(json!([{"images": {}}, {"x": 1}])), (400, "$.figma_images[1]".into()));
        assert_eq!(refused(json!({"err": "Invalid key", "images": {}})), (400, "$.figma_images.err".into()));
        assert_eq!(refused(json!({"error": true, "status": 403, "meta": {}})), (400, "$.figma_images.error".into()));
        assert_eq!(refused(json!("https://x")).1, "$.figma_images");
        let long = format!("https://{}", "a".repeat(MAX_LINK_BYTES));
        assert_eq!(refused(json!({"meta": {"images": {"r": long}}})).1, "$.figma_images.meta.images.r");
        let many: Map<String, Value> = (0..=MAX_IMAGE_LINKS).map(|i| (i.to_string(), json!("https://x"))).collect();
        let e = ImageLinks::from_body(&body(json!({"figma_images": {"images": many}}))).unwrap_err();
        assert_eq!((e.status, e.code), (413, "too_many_image_links"));
    }

    #[test]
    fn a_dumps_own_bytes_win_over_a_map() {
        let map = json!({"figma_images": {"meta": {"images": {"h": "https://elsewhere"}}}});
        let mut links = ImageLinks::from_body(&body(map)).unwrap();
        links.insert_fill("h".into(), "https://ours".into());
        assert_eq!(links.fills["h"], "https://ours");
    }
}
