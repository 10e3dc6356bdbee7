//! Server-Sent Events as the existing clients parse them: the literal
//! prefixes `id: `, `event: ` and `data: ` (with the space), one-line JSON,
//! and a blank line after each frame, which is written whole in one chunk.
//! A job's stream carries one frame per committed job event (`id:` is the
//! event's seq, `event:` its type), framed by `meta` first and `done` after
//! the terminal event, with `ping` keepalives.

use serde_json::{json, Map, Value};

pub const CONTENT_TYPE: &str = "text/event-stream; charset=utf-8";
/// The headers every stream carries (the SSE-first clients' list).
pub const HEADERS: &[(&str, &str)] = &[
    ("Content-Type", CONTENT_TYPE),
    ("Cache-Control", "no-cache"),
    ("Connection", "keep-alive"),
    ("X-Accel-Buffering", "no"),
];
/// Version of the envelope in `meta`.
pub const ENVELOPE_VERSION: &str = "1";

/// One frame. `data` is serialised on one line (JSON escapes newlines).
pub fn frame(event: &str, id: Option<i64>, data: &Value) -> String {
    let id = id.map(|id| format!("id: {id}\n")).unwrap_or_default();
    format!("{id}event: {event}\ndata: {data}\n\n")
}

pub fn meta(job_id: &str, ts: &str) -> String {
    frame("meta", None, &json!({ "envelope_version": ENVELOPE_VERSION, "job_id": job_id, "ts": ts }))
}

pub fn ping(ts: &str) -> String {
    frame("ping", None, &json!({ "ts": ts }))
}

/// The status a job ends in with this event, if it is a terminal one.
pub fn terminal_status(event_type: &str) -> Option<&'static str> {
    match event_type {
        "succeeded" => Some("succeeded"),
        "failed" => Some("failed"),
        "dead_lettered" => Some("dead"),
        "cancelled" => Some("cancelled"),
        _ => None,
    }
}

/// The frame of one committed job event (as `cogo.event_json` renders it),
/// with its payload's fields at the top of `data` beside `seq`, `job_id`,
/// `type` and `created_at`; a progress event also lifts its progress
/// object's fields (`pct`, `delta`, ...) there, as the clients read them.
/// A terminal event is followed by `done`.
pub fn job_event_frames(event: &Value, ts: &str) -> Option<(i64, String)> {
    let seq = event.get("seq")?.as_i64()?;
    let kind = event.get("event_type")?.as_str()?;
    let mut data = Map::new();
    if let Some(Value::Object(payload)) = event.get("payload") {
        if let Some(Value::Object(progress)) = payload.get("progress").filter(|_| kind == "progress") {
            data.extend(progress.clone());
        }
        data.extend(payload.clone());
    }
    for key in ["seq", "job_id", "created_at"] {
        data.insert(key.into(), event.get(key).cloned().unwrap_or(Value::Null));
    }
    data.insert("type".into(), kind.into());
    let mut out = frame(kind, Some(seq), &Value::Object(data));
    if let Some(status) = terminal_status(kind) {
        out.push_str(&frame("done", None, &json!({ "status": status, "job_id": event["job_id"], "ts": ts })));
    }
    Some((seq, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_use_the_literal_prefixes_and_one_line_json() {
        let f = frame("progress", Some(7), &json!({ "text": "two\nlines" }));
        assert_eq!(f, "id: 7\nevent: progress\ndata: {\"text\":\"two\\nlines\"}\n\n");
        assert_eq!(frame("ping", None, &json!({})), "event: ping\ndata: {}\n\n");
        assert!(meta("j", "t").starts_with("event: meta\ndata: {\"envelope_version\":\"1\""));
    }

    #[test]
    fn progress_fields_are_lifted_and_terminal_events_add_done() {
        let progress = json!({"seq": 3, "job_id": "j", "event_type": "progress", "created_at": "t",
                              "payload": {"progress": {"pct": 40, "delta": "hi"}, "step": "s"}});
        let (seq, text) = job_event_frames(&progress, "now").unwrap();
        assert_eq!(seq, 3);
        let data: Value = serde_json::from_str(text.lines().nth(2).unwrap().strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(
            (data["pct"].clone(), data["delta"].clone(), data["step"].clone()),
            (json!(40), json!("hi"), json!("s"))
        );
        assert_eq!((data["seq"].clone(), data["type"].clone()), (json!(3), json!("progress")));
        assert!(!text.contains("event: done"));

        let done = json!({"seq": 9, "job_id": "j", "event_type": "dead_lettered", "payload": {"status": "dead"}});
        let (_, text) = job_event_frames(&done, "now").unwrap();
        let frames: Vec<&str> = text.split("\n\n").filter(|f| !f.is_empty()).collect();
        assert_eq!(frames.len(), 2);
        assert!(frames[0].starts_with("id: 9\nevent: dead_lettered\n"));
        assert_eq!(frames[1], "event: done\ndata: {\"job_id\":\"j\",\"status\":\"dead\",\"ts\":\"now\"}");
        assert!(job_event_frames(&json!({"event_type": "x"}), "now").is_none());
    }
}
