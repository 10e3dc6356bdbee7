//! Chat over SSE as the SSE-first clients speak it. A message becomes a
//! `chat.message` job owned by the caller (its id is the trace id); the
//! agent that runs it reports text through `task.progress {delta}`, and
//! the caller's stream turns the job's events into `ready`, `chat.delta`,
//! `chat.done` or `error` frames.

use serde_json::{json, Map, Value};

use crate::http::body::Body;
use crate::http::error::ApiError;
use crate::http::sse::frame;
use crate::queue::tasks::{Enqueue, MAX_NAME};
use crate::time::unix_millis;

pub const JOB_TYPE: &str = "chat.message";
/// The executor chat jobs go to unless the gateway form names an agent.
pub const DEFAULT_EXECUTOR: &str = "chat";
const MAX_CONTENT_CHARS: usize = 100_000;

/// What `POST chat` was asked, in either form the clients send.
#[derive(Debug, PartialEq)]
pub struct ChatRequest {
    pub request_id: Option<String>,
    pub executor_id: String,
    /// The job payload: the message as sent, normalised to `content`.
    pub payload: Value,
    pub idempotency_key: Option<String>,
}

/// `{session_id, content, request_id?, idempotency_key?, model?}`, or the
/// gateway form `{projectId, text, messages?, lang?, agentId?}`, either
/// optionally wrapped as `{payload: {...}}`.
pub fn chat_request(body: &Body, header_key: Option<&str>) -> Result<ChatRequest, ApiError> {
    let wrapped = body.opt_object("payload")?.map(Body::from_map);
    let body = wrapped.as_ref().unwrap_or(body);
    let content = body.opt_str(&["content", "text"], MAX_CONTENT_CHARS)?;
    let session = body.opt_str(&["session_id", "sessionId", "projectId", "project_id"], MAX_NAME)?;
    let (Some(content), Some(session)) = (content, session) else {
        return Err(ApiError::bad_request(
            "missing_field",
            "content and session_id are required (or text and projectId)",
        )
        .with_details(json!({ "field": "content" })));
    };
    let mut payload = Map::new();
    payload.insert("session_id".into(), session.into());
    payload.insert("content".into(), content.into());
    for (name, key) in [("model", "model"), ("lang", "lang"), ("agentId", "agent_id")] {
        if let Some(v) = body.opt_str(&[name], MAX_NAME)? {
            payload.insert(key.into(), v.into());
        }
    }
    if let Some(messages) = body.opt_array("messages")? {
        payload.insert("messages".into(), messages.into());
    }
    let request_id = body.opt_str(&["request_id", "requestId"], MAX_NAME)?;
    if let Some(id) = &request_id {
        payload.insert("request_id".into(), id.clone().into());
    }
    let executor_id = body.opt_str(&["agentId"], MAX_NAME)?.unwrap_or_else(|| DEFAULT_EXECUTOR.to_string());
    let idempotency_key =
        body.opt_str(&["idempotency_key", "idempotencyKey"], MAX_NAME)?.or_else(|| header_key.map(str::to_string));
    Ok(ChatRequest { request_id, executor_id, payload: Value::Object(payload), idempotency_key })
}

/// The chat job, owned by `owner` (see `Principal::job_owner`); the
/// idempotency key lives in `scope` (the caller's, see
/// `idempotency::scope`), so two callers cannot collide.
pub fn enqueue_args(request: &ChatRequest, owner: Option<&str>, scope: &str) -> Enqueue {
    Enqueue {
        idempotency_key: request.idempotency_key.clone(),
        idempotency_scope: Some(scope.to_string()),
        ..Enqueue::new(JOB_TYPE, request.executor_id.as_str(), request.payload.clone(), owner)
    }
}

/// The frames of one committed event of a chat job: deltas as
/// `chat.delta`, success as `chat.done` (with `message_id` and `usage` from
/// the job's `result`), failure as `error`; other events have no frame.
/// `started_ms` is when the job was created.
pub fn chat_event_frames(
    event: &Value,
    result: &Value,
    request_id: &str,
    trace_id: &str,
    started_ms: i64,
) -> Option<(i64, String)> {
    let seq = event.get("seq")?.as_i64()?;
    let payload = event.get("payload").cloned().unwrap_or(Value::Null);
    let at_ms = event.get("created_at").and_then(Value::as_str).and_then(unix_millis).unwrap_or(started_ms);
    let text = match event.get("event_type")?.as_str()? {
        "progress" => {
            let delta = payload["progress"]["delta"].as_str()?;
            frame("chat.delta", Some(seq), &json!({ "request_id": request_id, "seq": seq, "delta": delta }))
        }
        "succeeded" => {
            let usage = match &result["usage"] {
                Value::Object(u) => Value::Object(u.clone()),
                _ => json!({ "prompt_tokens": 0, "completion_tokens": 0 }),
            };
            let message_id = result["message_id"].as_str().unwrap_or(trace_id);
            frame(
                "chat.done",
                Some(seq),
                &json!({ "request_id": request_id, "message_id": message_id, "usage": usage,
                         "trace_id": trace_id, "total_ms": (at_ms - started_ms).max(0) }),
            )
        }
        kind @ ("failed" | "dead_lettered" | "cancelled") => {
            let (code, message) = match kind {
                "cancelled" => ("cancelled", "the message was cancelled".to_string()),
                _ => {
                    let error = &payload["error"];
                    let message = error.as_str().or_else(|| error["message"].as_str()).unwrap_or("the agent failed");
                    ("agent_failed", message.to_string())
                }
            };
            frame(
                "error",
                Some(seq),
                &json!({ "code": code, "message": message, "retryable": kind != "cancelled", "trace_id": trace_id }),
            )
        }
        _ => return None,
    };
    Some((seq, text))
}

/// `trace-status`'s status: `pending` while the job waits or runs, then
/// `completed` or `failed`.
pub fn trace_status(job_status: &str) -> &'static str {
    match job_status {
        "succeeded" => "completed",
        "failed" | "dead" | "cancelled" => "failed",
        _ => "pending",
    }
}

/// Whether the caller takes a stream (`Accept: text/event-stream`).
pub fn wants_stream(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.split(',').any(|t| t.trim().starts_with("text/event-stream")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::body::DEFAULT_MAX_BODY;

    fn body(s: &str) -> Body {
        Body::parse(s.as_bytes(), DEFAULT_MAX_BODY).unwrap()
    }

    #[test]
    fn both_forms_become_one_payload() {
        let sse =
            chat_request(&body(r#"{"session_id":"s","content":"hi","request_id":"r","model":"m"}"#), None).unwrap();
        assert_eq!(sse.payload, json!({"session_id": "s", "content": "hi", "request_id": "r", "model": "m"}));
        assert_eq!((sse.request_id.as_deref(), sse.executor_id.as_str()), (Some("r"), DEFAULT_EXECUTOR));
        let gateway =
            chat_request(&body(r#"{"payload":{"projectId":"p","text":"yo","agentId":"a1","messages":[]}}"#), Some("k"))
                .unwrap();
        assert_eq!(gateway.payload["content"], "yo");
        assert_eq!(gateway.payload["session_id"], "p");
        assert_eq!((gateway.executor_id.as_str(), gateway.idempotency_key.as_deref()), ("a1", Some("k")));
        let user = enqueue_args(&gateway, Some("u"), "Chat|authenticated:u");
        assert_eq!(
            (user.idempotency_key.as_deref(), user.idempotency_scope.as_deref()),
            (Some("k"), Some("Chat|authenticated:u"))
        );
        let platform = enqueue_args(&gateway, None, "Chat|service_role:service");
        assert_eq!(
            (platform.idempotency_scope.as_deref(), platform.owner_id.is_none()),
            (Some("Chat|service_role:service"), true)
        );
        for bad in [r#"{"content":"hi"}"#, r#"{"session_id":"s"}"#, r#"{"session_id":"s","content":5}"#] {
            assert_eq!(chat_request(&body(bad), None).unwrap_err().status, 400, "{bad}");
        }
    }

    #[test]
    fn job_events_become_chat_frames() {
        let delta = json!({"seq": 5, "event_type": "progress", "payload": {"progress": {"delta": "He"}}});
        let (seq, text) = chat_event_frames(&delta, &Value::Null, "r", "t", 0).unwrap();
        assert_eq!(seq, 5);
        assert_eq!(text, "id: 5\nevent: chat.delta\ndata: {\"delta\":\"He\",\"request_id\":\"r\",\"seq\":5}\n\n");
        let pct_only = json!({"seq": 6, "event_type": "progress", "payload": {"progress": {"pct": 5}}});
        assert!(chat_event_frames(&pct_only, &Value::Null, "r", "t", 0).is_none());
        let done = json!({"seq": 9, "event_type": "succeeded", "created_at": "1970-01-01T00:00:01.500Z"});
        let result = json!({"usage": {"prompt_tokens": 3, "completion_tokens": 4}});
        let (_, text) = chat_event_frames(&done, &result, "r", "t", 1000).unwrap();
        let data: Value = serde_json::from_str(text.lines().nth(2).unwrap().strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(
            data,
            json!({"request_id": "r", "message_id": "t", "usage": {"prompt_tokens": 3, "completion_tokens": 4},
                               "trace_id": "t", "total_ms": 500})
        );
        let dead = json!({"seq": 9, "event_type": "dead_lettered", "payload": {"error": "boom"}});
        assert!(chat_event_frames(&dead, &Value::Null, "r", "t", 0).unwrap().1.contains("\"code\":\"agent_failed\""));
        assert!(chat_event_frames(&json!({"seq": 1, "event_type": "claimed"}), &Value::Null, "r", "t", 0).is_none());
    }

    #[test]
    fn statuses_and_accept() {
        assert_eq!(
            (trace_status("running"), trace_status("succeeded"), trace_status("dead")),
            ("pending", "completed", "failed")
        );
        assert!(wants_stream(Some("text/event-stream")));
        assert!(wants_stream(Some("application/json, text/event-stream;q=0.9")));
        assert!(!wants_stream(Some("application/json")) && !wants_stream(None));
    }
}
