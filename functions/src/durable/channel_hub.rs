//! Broadcast channels (`agents:{id}`, `system:events`) and the workers'
//! presence stream: one Durable Object per channel (`ChannelHub`) writes
//! each message to its subscribers as it arrives and keeps the latest few
//! for clients that reconnect with Last-Event-ID. Nothing here touches the
//! database except a presence subscriber's first roster.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use cogo_shared::config::Config;
use cogo_shared::http::sse::frame;
use cogo_shared::queue::reads::WorkersActive;
use cogo_shared::realtime::channels::WORKERS;
use cogo_shared::time::iso8601;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use wasm_bindgen_futures::JsFuture;
use web_sys::{TransformStream, WritableStreamDefaultWriter};
use worker::{durable_object, DurableObject, Env, Request, Response, State};

use super::DurableRequest;
use crate::durable::job_hub::{enqueue, queue, sse_response};
use crate::runtime::{config, platform};

/// What a channel's hub is asked: a subscription (answered with the
/// stream), a message to publish, or a worker's heartbeat for the roster
/// (answered with the message's seq on the channel).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ChannelHubRequest {
    Subscribe { channel: String, after: Option<i64> },
    Publish { channel: String, kind: String, payload: Value },
    Heartbeat { row: Value },
}

impl DurableRequest for ChannelHubRequest {
    const BINDING: &'static str = "CHANNEL_HUB";
}

#[derive(Serialize, Deserialize)]
struct Published {
    seq: i64,
}
/// Messages kept for reconnecting clients.
const KEPT: usize = 100;

#[derive(Default)]
struct Channel {
    name: String,
    subscribers: Vec<(u64, WritableStreamDefaultWriter)>,
    next_id: u64,
    seq: i64,
    recent: VecDeque<(i64, String)>,
    /// Presence (the workers channel): worker id -> (last seen ms, its row).
    workers: BTreeMap<String, (f64, Value)>,
    timers: bool,
}

impl Channel {
    /// Numbers, frames, keeps and writes one message; answers its seq.
    fn publish(&mut self, kind: &str, payload: Value) -> i64 {
        self.seq += 1;
        let data = json!({ "channel": self.name, "type": kind, "payload": payload, "ts": now() });
        let text = frame(kind, Some(self.seq), &data);
        self.recent.push_back((self.seq, text.clone()));
        if self.recent.len() > KEPT {
            self.recent.pop_front();
        }
        self.broadcast(&text);
        self.seq
    }

    fn broadcast(&mut self, text: &str) {
        for (_, writer) in &self.subscribers {
            // A write to a client that left fails; the keepalive drops it.
            queue(writer, text);
        }
    }
}

fn now() -> String {
    iso8601(js_sys::Date::now() as i64)
}

#[durable_object]
pub struct ChannelHub {
    env: Env,
    channel: Rc<RefCell<Channel>>,
}

impl DurableObject for ChannelHub {
    fn new(_state: State, env: Env) -> Self {
        ChannelHub { env, channel: Rc::default() }
    }

    /// `GET /subscribe?channel=&after=` -> the stream; `POST /publish
    /// {type, payload}` -> `{seq}`; `POST /heartbeat {worker row}` (the
    /// workers channel) -> joined or updated.
    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        let request: ChannelHubRequest = super::receive(req).await?;
        let config = config::load(&self.env).map_err(|e| e.message)?;
        match request {
            ChannelHubRequest::Subscribe { channel, after } => {
                self.channel.borrow_mut().name = channel;
                self.subscribe(&config, after).await
            }
            ChannelHubRequest::Publish { channel, kind, payload } => {
                let mut hub = self.channel.borrow_mut();
                hub.name = channel;
                Response::from_json(&Published { seq: hub.publish(&kind, payload) })
            }
            ChannelHubRequest::Heartbeat { row } => {
                self.channel.borrow_mut().name = WORKERS.to_string();
                let id = row["worker_id"].as_str().unwrap_or_default().to_string();
                let mut channel = self.channel.borrow_mut();
                let kind = if channel.workers.contains_key(&id) { "worker.updated" } else { "worker.joined" };
                channel.workers.insert(id, (js_sys::Date::now(), row.clone()));
                let seq = channel.publish(kind, row);
                Response::from_json(&Published { seq })
            }
        }
    }
}

impl ChannelHub {
    async fn subscribe(&self, config: &Config, after: Option<i64>) -> worker::Result<Response> {
        let stream = TransformStream::new().map_err(worker::Error::from)?;
        let writer = stream.writable().get_writer().map_err(worker::Error::from)?;
        let name = self.channel.borrow().name.clone();
        // Queued in this order: ready, what was missed, then live messages.
        queue(&writer, &frame("ready", None, &json!({ "channel": name })));
        if name == WORKERS {
            self.load_roster(config).await;
            for (_, row) in self.channel.borrow().workers.values() {
                queue(&writer, &frame("worker.joined", None, &json!({ "channel": name, "payload": row })));
            }
        }
        {
            let mut channel = self.channel.borrow_mut();
            if let Some(after) = after {
                for (_, text) in channel.recent.iter().filter(|(seq, _)| *seq > after) {
                    queue(&writer, text);
                }
            }
            let id = channel.next_id;
            channel.next_id += 1;
            channel.subscribers.push((id, writer));
        }
        if !std::mem::replace(&mut self.channel.borrow_mut().timers, true) {
            wasm_bindgen_futures::spawn_local(timers(self.channel.clone(), config.clone()));
        }
        sse_response(&stream)
    }

    /// The active workers from the database, for a presence subscriber's
    /// first frames (this object may be new, or have slept).
    async fn load_roster(&self, config: &Config) {
        let window = config.workers_window_ms / 1000;
        match platform::call(config, WorkersActive { window_seconds: window.max(1).into() }).await {
            Ok(active) => {
                let mut channel = self.channel.borrow_mut();
                for row in active["items"].as_array().into_iter().flatten() {
                    let seen =
                        row["last_seen_at"].as_str().and_then(cogo_shared::time::unix_millis).unwrap_or_default();
                    let id = row["worker_id"].as_str().unwrap_or_default().to_string();
                    channel.workers.entry(id).or_insert((seen as f64, row.clone()));
                }
            }
            Err(e) => worker::console_error!("workers roster: {e}"),
        }
    }
}

/// While anyone listens: keepalives, dropping clients that left, and (the
/// workers channel) a `worker.left` once a worker's heartbeat is older
/// than the active window.
async fn timers(channel: Rc<RefCell<Channel>>, config: Config) {
    let tick = config.sse_keepalive_ms.min(config.workers_window_ms / 4).max(100);
    let mut since_keepalive = 0;
    loop {
        worker::Delay::from(Duration::from_millis(tick.into())).await;
        since_keepalive += tick;
        let cutoff = js_sys::Date::now() - f64::from(config.workers_window_ms);
        let gone: Vec<String> = {
            let c = channel.borrow();
            c.workers.iter().filter(|(_, (seen, _))| *seen < cutoff).map(|(id, _)| id.clone()).collect()
        };
        for id in gone {
            let mut c = channel.borrow_mut();
            if let Some((_, row)) = c.workers.remove(&id) {
                c.publish("worker.left", row);
            }
        }
        if since_keepalive >= config.sse_keepalive_ms {
            since_keepalive = 0;
            let text = frame("keepalive", None, &json!({ "ts": now() }));
            let writes: Vec<(u64, JsFuture)> =
                channel.borrow().subscribers.iter().map(|(id, w)| (*id, enqueue(w, &text))).collect();
            for (id, write) in writes {
                if write.await.is_err() {
                    channel.borrow_mut().subscribers.retain(|(s, _)| *s != id);
                }
            }
        }
        if channel.borrow().subscribers.is_empty() {
            channel.borrow_mut().timers = false;
            return;
        }
    }
}

pub async fn subscribe(env: &Env, name: &str, after: Option<i64>) -> worker::Result<Response> {
    super::send(env, name, &ChannelHubRequest::Subscribe { channel: name.to_string(), after }).await
}

/// Publishes one message; answers its seq on the channel.
pub async fn publish(env: &Env, name: &str, kind: &str, payload: &Value) -> worker::Result<i64> {
    let request =
        ChannelHubRequest::Publish { channel: name.to_string(), kind: kind.to_string(), payload: payload.clone() };
    let published: Published = super::send(env, name, &request).await?.json().await?;
    Ok(published.seq)
}

/// A heartbeat's presence: the workers stream and the agent's channel.
pub async fn heartbeat(env: Env, row: Value) {
    if let Err(e) = super::send(&env, WORKERS, &ChannelHubRequest::Heartbeat { row: row.clone() }).await {
        worker::console_error!("workers presence: {e}");
    }
    if let Some(agent) = row["agent_id"].as_str() {
        if let Err(e) = publish(&env, &format!("agents:{agent}"), "presence", &row).await {
            worker::console_error!("agent presence: {e}");
        }
    }
}
