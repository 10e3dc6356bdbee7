//! Live job events. One Durable Object per job (`JobHub`) holds the SSE
//! subscribers of that job, and records in the database that the job is
//! watched (`cogo.watch_job`, renewed with the keepalives) so that the
//! functions that change it name it among their doorbells; the edge rings
//! the hub after the change commits, and a job nobody watches rings nothing.
//! The hub then reads the committed events after the oldest position among
//! its subscribers, once, and writes each subscriber the frames it has not
//! had. A job's events commit in seq order (every change holds the job's
//! row lock), so reading after a seq never skips one, and positions make
//! duplicates impossible: a subscriber's replay and the live events are the
//! same read, which comes after the registration (so a change committing
//! meanwhile is either read or rung). Nothing polls: reads happen on a
//! subscription, a doorbell or a renewal only.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use cogo_shared::config::Config;
use cogo_shared::http::sse;
use cogo_shared::queue::doorbells::{Bell, WatchJob};
use cogo_shared::queue::reads::{JobEventsPage, JobGet};
use cogo_shared::realtime::chat;
use cogo_shared::time::iso8601;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use wasm_bindgen_futures::JsFuture;
use web_sys::{TransformStream, WritableStreamDefaultWriter};
use worker::{durable_object, DurableObject, Env, Request, Response, ResponseBody, State};

use super::DurableRequest;
use crate::runtime::{config, platform};

const PAGE: i64 = 1000;

/// How long one registration of the job's subscribers lasts; it is renewed
/// with the keepalives once less than two intervals of it are left.
fn watch_ms(keepalive_ms: u32) -> f64 {
    f64::from(keepalive_ms.saturating_mul(4).max(60_000))
}

/// What a job's hub is asked: a subscription (answered with the stream), or
/// a doorbell after a change committed (answered once the new events are
/// handed to the streams), with the doorbells it is to ring onwards.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum JobHubRequest {
    Subscribe { job_id: String, after: i64, format: Format },
    Notify { job_id: String, relay: Vec<Bell> },
}

impl DurableRequest for JobHubRequest {
    const BINDING: &'static str = "JOB_HUB";
}

/// How a subscriber's stream renders the job's events.
#[derive(Clone, Serialize, Deserialize)]
enum Format {
    /// Every event, `meta` first, `done` last, `ping` keepalives.
    Job,
    /// The chat protocol: `ready`, `chat.delta`, `chat.done` or `error`,
    /// `keepalive` frames.
    Chat { request_id: String, started_ms: i64 },
}

struct Subscriber {
    id: u64,
    format: Format,
    writer: WritableStreamDefaultWriter,
    /// The seq of the last event this subscriber has been written.
    last: i64,
}

#[derive(Default)]
struct Hub {
    job_id: Option<String>,
    subscribers: Vec<Subscriber>,
    next_id: u64,
    pumping: bool,
    /// A doorbell rang while a pump was running: read once more.
    dirty: bool,
    keepalive: bool,
    /// Until when (this clock, with a margin) the database knows the job
    /// is watched.
    watched_until_ms: f64,
}

impl Hub {
    fn drop_subscriber(&mut self, id: u64) {
        if let Some(i) = self.subscribers.iter().position(|s| s.id == id) {
            let _ = self.subscribers.remove(i).writer.close();
        }
    }
}

#[durable_object]
pub struct JobHub {
    env: Env,
    hub: Rc<RefCell<Hub>>,
}

impl DurableObject for JobHub {
    fn new(_state: State, env: Env) -> Self {
        JobHub { env, hub: Rc::default() }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        let request: JobHubRequest = super::receive(req).await?;
        let config = config::load(&self.env).map_err(|e| e.message)?;
        match request {
            JobHubRequest::Subscribe { job_id, after, format } => {
                self.hub.borrow_mut().job_id = Some(job_id.clone());
                let stream = TransformStream::new().map_err(worker::Error::from)?;
                let writer = stream.writable().get_writer().map_err(worker::Error::from)?;
                // Queued before the subscriber can be written anything else.
                let first = match &format {
                    Format::Job => sse::meta(&job_id, &iso8601(js_sys::Date::now() as i64)),
                    Format::Chat { .. } => sse::frame("ready", None, &json!({ "trace_id": job_id })),
                };
                let meta = enqueue(&writer, &first);
                {
                    let mut hub = self.hub.borrow_mut();
                    let id = hub.next_id;
                    hub.next_id += 1;
                    hub.subscribers.push(Subscriber { id, format, writer, last: after });
                }
                // The response goes out first; the stream fills as it is read.
                let (hub, config) = (self.hub.clone(), config.clone());
                wasm_bindgen_futures::spawn_local(async move {
                    let _ = meta.await;
                    register(&hub, &config).await;
                    pump(&hub, &config).await;
                    keepalive(hub, config).await;
                });
                sse_response(&stream)
            }
            JobHubRequest::Notify { job_id, relay } => {
                self.hub.borrow_mut().job_id = Some(job_id);
                futures::join!(pump(&self.hub, &config), super::ring(&self.env, relay));
                Ok(Response::empty()?.with_status(204))
            }
        }
    }
}

/// The readable side of `stream` as an event-stream response.
pub(crate) fn sse_response(stream: &TransformStream) -> worker::Result<Response> {
    let mut response = Response::from_body(ResponseBody::Stream(stream.readable()))?;
    for (name, value) in sse::HEADERS {
        response.headers_mut().set(name, value)?;
    }
    Ok(response)
}

/// Queues `text` as one chunk, for a caller that learns of a departed
/// client another way.
pub(crate) fn queue(writer: &WritableStreamDefaultWriter, text: &str) {
    let _promise = writer.write_with_chunk(&js_sys::Uint8Array::from(text.as_bytes()));
}

/// Queues `text` as one chunk; the future settles when the client has
/// taken it, or fails once the client is gone.
pub(crate) fn enqueue(writer: &WritableStreamDefaultWriter, text: &str) -> JsFuture {
    JsFuture::from(writer.write_with_chunk(&js_sys::Uint8Array::from(text.as_bytes())))
}

/// Registers the job as watched (or renews it) when the registration would
/// lapse within two keepalive intervals. A failure is logged; the next
/// keepalive tries again, and the pump after it catches up.
async fn register(hub: &Rc<RefCell<Hub>>, config: &Config) -> bool {
    let now = js_sys::Date::now();
    let ttl = watch_ms(config.sse_keepalive_ms);
    let job_id = {
        let h = hub.borrow();
        if h.watched_until_ms - now > 2.0 * f64::from(config.sse_keepalive_ms) {
            return false;
        }
        h.job_id.clone().unwrap_or_default()
    };
    let seconds = (ttl / 1000.0) as i64;
    match platform::call(config, WatchJob { job_id: job_id.clone(), seconds }).await {
        // A second short of what the database holds: clocks differ.
        Ok(_) => hub.borrow_mut().watched_until_ms = now + ttl - 1000.0,
        Err(e) => worker::console_error!("job hub {job_id}: registering its subscribers failed: {e}"),
    }
    true
}

/// Reads what the subscribers lack and hands it to them, until no doorbell
/// rang meanwhile. One pump at a time; a second caller marks the hub dirty.
async fn pump(hub: &Rc<RefCell<Hub>>, config: &Config) {
    {
        let mut h = hub.borrow_mut();
        if h.pumping {
            h.dirty = true;
            return;
        }
        h.pumping = true;
    }
    loop {
        hub.borrow_mut().dirty = false;
        deliver(hub, config).await;
        let mut h = hub.borrow_mut();
        if !h.dirty {
            h.pumping = false;
            return;
        }
    }
}

async fn deliver(hub: &Rc<RefCell<Hub>>, config: &Config) {
    let (job_id, mut after) = {
        let h = hub.borrow();
        let Some(from) = h.subscribers.iter().map(|s| s.last).min() else { return };
        (h.job_id.clone().unwrap_or_default(), from)
    };
    loop {
        let args = JobEventsPage { job_id: job_id.clone(), after, limit: PAGE };
        let page = match platform::call(config, args).await {
            Ok(page) => page,
            Err(e) => {
                worker::console_error!("job hub {job_id}: reading events failed: {e}");
                return;
            }
        };
        let now = iso8601(js_sys::Date::now() as i64);
        let events: Vec<&Value> = page["items"].as_array().into_iter().flatten().collect();
        let job_frames: Vec<(i64, String, bool)> = events
            .iter()
            .filter_map(|event| {
                let terminal = event["event_type"].as_str().and_then(sse::terminal_status).is_some();
                sse::job_event_frames(event, &now).map(|(seq, text)| (seq, text, terminal))
            })
            .collect();
        let result = chat_result(hub, config, &job_id, &events).await;
        // Every subscriber's frames are queued at once, so a slow reader
        // delays nobody else; each frame is one chunk, whole.
        let mut pending = Vec::new();
        let mut finished = Vec::new();
        for s in hub.borrow_mut().subscribers.iter_mut() {
            let frames: Vec<(i64, String, bool)> = match &s.format {
                Format::Job => job_frames.iter().filter(|(seq, _, _)| *seq > s.last).cloned().collect(),
                Format::Chat { request_id, started_ms } => events
                    .iter()
                    .filter(|e| e["seq"].as_i64().is_some_and(|seq| seq > s.last))
                    .filter_map(|e| {
                        let terminal = e["event_type"].as_str().and_then(sse::terminal_status).is_some();
                        chat::chat_event_frames(e, &result, request_id, &job_id, *started_ms)
                            .map(|(seq, text)| (seq, text, terminal))
                    })
                    .collect(),
            };
            // A chat stream skips the events it has no frame for; its
            // position still moves past them.
            if let Some(newest) = events.iter().filter_map(|e| e["seq"].as_i64()).max().filter(|n| *n > s.last) {
                s.last = newest;
            }
            for (_, text, _) in &frames {
                pending.push((s.id, enqueue(&s.writer, text)));
            }
            if frames.iter().any(|(_, _, terminal)| *terminal) {
                finished.push(s.id);
            }
        }
        // The stream ends after the job's terminal event.
        for id in finished {
            hub.borrow_mut().drop_subscriber(id);
        }
        watch(hub, pending);
        match page["next"].as_i64() {
            Some(next) => after = next,
            None => return,
        }
    }
}

/// The job's result, when a chat subscriber is about to be told it
/// succeeded (`chat.done` carries its `message_id` and `usage`).
async fn chat_result(hub: &Rc<RefCell<Hub>>, config: &Config, job_id: &str, events: &[&Value]) -> Value {
    let chatting = hub.borrow().subscribers.iter().any(|s| matches!(s.format, Format::Chat { .. }));
    if !chatting || !events.iter().any(|e| e["event_type"] == "succeeded") {
        return Value::Null;
    }
    match platform::call(config, JobGet { job_id: job_id.to_string() }).await {
        Ok(job) => job["result"].clone(),
        Err(e) => {
            worker::console_error!("job hub {job_id}: reading the result failed: {e}");
            Value::Null
        }
    }
}

/// A keepalive to every subscriber at the configured interval while any
/// remain (one loop per hub), renewing the job's registration as it goes;
/// a failed write means the client left.
async fn keepalive(hub: Rc<RefCell<Hub>>, config: Rc<Config>) {
    if std::mem::replace(&mut hub.borrow_mut().keepalive, true) {
        return;
    }
    loop {
        worker::Delay::from(Duration::from_millis(config.sse_keepalive_ms.into())).await;
        if !hub.borrow().subscribers.is_empty() && register(&hub, &config).await {
            // Whatever a failed registration kept from ringing.
            pump(&hub, &config).await;
        }
        let now = iso8601(js_sys::Date::now() as i64);
        let (ping, keepalive) = (sse::ping(&now), sse::frame("keepalive", None, &json!({ "ts": now })));
        let writes: Vec<(u64, JsFuture)> = hub
            .borrow()
            .subscribers
            .iter()
            .map(|s| (s.id, enqueue(&s.writer, if matches!(s.format, Format::Job) { &ping } else { &keepalive })))
            .collect();
        if writes.is_empty() {
            hub.borrow_mut().keepalive = false;
            return;
        }
        watch(&hub, writes);
    }
}

/// Drops the subscribers whose queued writes fail (the client left),
/// without making the hub wait for slow readers.
fn watch(hub: &Rc<RefCell<Hub>>, writes: Vec<(u64, JsFuture)>) {
    let hub = hub.clone();
    wasm_bindgen_futures::spawn_local(async move {
        for (id, write) in writes {
            if write.await.is_err() {
                hub.borrow_mut().drop_subscriber(id);
            }
        }
    });
}

/// The job's event stream from `after` on; `chat` = `(request id, when the
/// job was created)` renders it in the chat protocol.
pub async fn subscribe(env: &Env, job_id: &str, after: i64, chat: Option<(&str, i64)>) -> worker::Result<Response> {
    let format = match chat {
        Some((request_id, started_ms)) => Format::Chat { request_id: request_id.to_string(), started_ms },
        None => Format::Job,
    };
    super::send(env, job_id, &JobHubRequest::Subscribe { job_id: job_id.to_string(), after, format }).await
}

/// Rings the job's hub (after a change committed), handing it `relay` to
/// ring onwards.
pub async fn ring(env: &Env, job_id: &str, relay: Vec<Bell>) -> worker::Result<Response> {
    super::send(env, job_id, &JobHubRequest::Notify { job_id: job_id.to_string(), relay }).await
}
