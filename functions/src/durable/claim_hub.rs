//! Long-poll claims (`task.claim` with `waitSeconds`). When the edge's own
//! claim finds nothing, the request waits in its executor's `ClaimHub`
//! (one Durable Object per executor). The hub records in the database that
//! claims are waiting for the executor (`cogo.claim_waiting`), so the
//! functions that make its jobs ready (enqueue, a retry, the reaper) name it
//! among their doorbells; when rung, the hub claims for its waiters in
//! arrival order, one claim at a time, until a claim comes back empty. A job
//! scheduled for later wakes the hub when it comes due. Nothing polls: the
//! hub touches the database when a waiter arrives that may have missed a
//! doorbell, when rung, and when a job comes due.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use cogo_shared::config::Config;
use cogo_shared::queue::doorbells::{dry_covers, Bell, ClaimWaiting};
use cogo_shared::queue::tasks::Claim;
use cogo_shared::time::unix_millis;
use futures::channel::oneshot;
use futures::future::{select, Either};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use worker::{durable_object, DurableObject, Env, Request, Response, State};

use super::DurableRequest;
use crate::runtime::{config, platform};

/// How long one registration of an executor's waiters lasts (at least;
/// longer for a wait that outlasts it).
const REGISTER_MS: f64 = 60_000.0;
/// Clocks differ between the edge, the hub and the database: a
/// registration counts as lapsed this much before its end, and a doorbell
/// this much before a claim counts as possibly after it.
const SKEW_MS: f64 = 1_000.0;
/// A job that was ready but locked by another claimer: look again after this.
const LOCKED_RETRY_MS: f64 = 100.0;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ClaimHubRequest {
    /// A claim that found nothing at the edge (started there at `since_ms`),
    /// to wait up to `wait_ms` for a job. Answered with the claimed jobs
    /// (the SQL function's rows), empty when the wait ended.
    Wait {
        executor_id: String,
        worker_id: String,
        lease_seconds: i64,
        type_prefix: Option<String>,
        limit: i64,
        wait_ms: u32,
        since_ms: f64,
    },
    /// A job of the executor may be ready; `relay` are doorbells to ring onwards.
    Ring { relay: Vec<Bell> },
}

impl DurableRequest for ClaimHubRequest {
    const BINDING: &'static str = "CLAIM_HUB";
}

struct Waiter {
    id: u64,
    claim: Claim,
    deadline_ms: f64,
    /// A claim for this waiter is on its way to the database.
    in_flight: bool,
    /// Its deadline passed while a claim was in flight: answer when it returns.
    expired: bool,
    answer: Option<oneshot::Sender<Vec<Value>>>,
}

#[derive(Default)]
struct Hub {
    waiters: Vec<Waiter>,
    next_id: u64,
    claiming: bool,
    /// A doorbell rang during a pass: another pass follows.
    dirty: bool,
    /// When the last doorbell rang (this clock).
    rung_ms: f64,
    /// When the database's record of waiters was last written, and until
    /// when it holds (this clock, minus the skew).
    registered_ms: f64,
    registered_until_ms: f64,
    /// The wake-up scheduled for a job coming due.
    timer_ms: Option<f64>,
}

impl Hub {
    fn answer(&mut self, id: u64, jobs: Vec<Value>) {
        if let Some(i) = self.waiters.iter().position(|w| w.id == id) {
            if let Some(answer) = self.waiters.remove(i).answer {
                let _ = answer.send(jobs);
            }
        }
    }
}

#[durable_object]
pub struct ClaimHub {
    env: Env,
    hub: Rc<RefCell<Hub>>,
}

impl DurableObject for ClaimHub {
    fn new(_state: State, env: Env) -> Self {
        ClaimHub { env, hub: Rc::default() }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        let request: ClaimHubRequest = super::receive(req).await?;
        let config = config::load(&self.env).map_err(|e| e.message)?;
        match request {
            ClaimHubRequest::Wait { executor_id, worker_id, lease_seconds, type_prefix, limit, wait_ms, since_ms } => {
                let claim = Claim { executor_id, worker_id, lease_seconds, type_prefix, limit };
                let jobs = self.wait(&config, claim, wait_ms, since_ms).await;
                Response::from_json(&jobs)
            }
            ClaimHubRequest::Ring { relay } => {
                self.hub.borrow_mut().rung_ms = js_sys::Date::now();
                let (hub, cfg) = (self.hub.clone(), config.clone());
                wasm_bindgen_futures::spawn_local(async move { pass(&hub, &cfg).await });
                super::ring(&self.env, relay).await;
                Ok(Response::empty()?.with_status(204))
            }
        }
    }
}

impl ClaimHub {
    async fn wait(&self, config: &Config, claim: Claim, wait_ms: u32, since_ms: f64) -> Vec<Value> {
        let now = js_sys::Date::now();
        let deadline_ms = now + f64::from(wait_ms);
        let (sender, receiver) = oneshot::channel();
        let (id, claim_now) = {
            let mut h = self.hub.borrow_mut();
            let id = h.next_id;
            h.next_id += 1;
            h.waiters.push(Waiter { id, claim, deadline_ms, in_flight: false, expired: false, answer: Some(sender) });
            // Claim at once unless the edge's empty claim already ran under
            // a registration that outlives this wait, with no doorbell since:
            // then any job made ready after it rings this hub.
            let covered = h.registered_ms + SKEW_MS <= since_ms && h.registered_until_ms >= deadline_ms;
            (id, !covered || h.rung_ms + SKEW_MS >= since_ms)
        };
        if claim_now {
            let (hub, config) = (self.hub.clone(), config.clone());
            wasm_bindgen_futures::spawn_local(async move { pass(&hub, &config).await });
        }
        let timeout = worker::Delay::from(Duration::from_millis(wait_ms.into()));
        let receiver = match select(receiver, timeout).await {
            Either::Left((jobs, _)) => return jobs.unwrap_or_default(),
            Either::Right((_, receiver)) => receiver,
        };
        {
            let mut h = self.hub.borrow_mut();
            let Some(w) = h.waiters.iter_mut().find(|w| w.id == id) else { return Vec::new() };
            if !w.in_flight {
                h.answer(id, Vec::new());
                return Vec::new();
            }
            w.expired = true;
        }
        // A claim for it is under way: what it claims is this waiter's.
        receiver.await.unwrap_or_default()
    }
}

/// Claims for the waiters in arrival order until a claim comes back empty
/// (per type prefix), and again while doorbells rang meanwhile. One pass at
/// a time; the database's record of waiters is renewed on the way.
async fn pass(hub: &Rc<RefCell<Hub>>, config: &Config) {
    {
        let mut h = hub.borrow_mut();
        if h.claiming {
            h.dirty = true;
            return;
        }
        h.claiming = true;
    }
    loop {
        let mut due_ms: Option<f64> = None;
        let mut dry: Vec<Option<String>> = Vec::new();
        let ids: Vec<u64> = {
            let mut h = hub.borrow_mut();
            h.dirty = false;
            // A request the runtime cancelled (its client left) is no
            // waiter: claiming for it would strand the job until its lease ends.
            h.waiters.retain(|w| w.in_flight || w.answer.as_ref().is_some_and(|a| !a.is_canceled()));
            h.waiters.iter().map(|w| w.id).collect()
        };
        for id in ids {
            let started = js_sys::Date::now();
            let (claim, wait_seconds) = {
                let mut h = hub.borrow_mut();
                let registered_until_ms = h.registered_until_ms;
                let Some(w) = h.waiters.iter_mut().find(|w| w.id == id && !w.expired) else { continue };
                if dry.iter().any(|prefix| dry_covers(prefix, &w.claim.type_prefix)) {
                    continue;
                }
                w.in_flight = true;
                let register = (registered_until_ms < w.deadline_ms)
                    .then(|| ((w.deadline_ms - started + SKEW_MS).max(REGISTER_MS) / 1000.0).ceil() as i64);
                (w.claim.clone(), register)
            };
            let prefix = claim.type_prefix.clone();
            let answer = platform::call(config, ClaimWaiting { claim, wait_seconds }).await;
            let mut h = hub.borrow_mut();
            let Some(w) = h.waiters.iter_mut().find(|w| w.id == id) else { continue };
            w.in_flight = false;
            let expired = w.expired;
            match answer {
                Ok(answer) => {
                    if let Some(seconds) = wait_seconds {
                        h.registered_ms = js_sys::Date::now();
                        h.registered_until_ms = started + seconds as f64 * 1000.0 - SKEW_MS;
                    }
                    let jobs = answer["jobs"].as_array().cloned().unwrap_or_default();
                    if !jobs.is_empty() || expired {
                        h.answer(id, jobs);
                    }
                    if answer["jobs"].as_array().is_none_or(Vec::is_empty) {
                        dry.push(prefix);
                        if let Some(due) = answer["dueAt"].as_str().and_then(unix_millis) {
                            let at = (due as f64).max(js_sys::Date::now() + LOCKED_RETRY_MS);
                            due_ms = Some(due_ms.map_or(at, |d: f64| d.min(at)));
                        }
                    }
                }
                Err(e) => {
                    worker::console_error!("claim hub {}: claim failed: {e}", w.claim.executor_id);
                    if expired {
                        h.answer(id, Vec::new());
                    }
                    // The database is unwell: try the rest again in a second.
                    due_ms = Some(js_sys::Date::now() + 1000.0);
                    break;
                }
            }
        }
        let mut h = hub.borrow_mut();
        if h.dirty {
            continue;
        }
        h.claiming = false;
        if let Some(at) = due_ms.filter(|_| !h.waiters.is_empty()) {
            schedule(hub, &mut h, at, config);
        }
        return;
    }
}

/// A pass at `at_ms` (this clock), unless one is scheduled sooner.
fn schedule(hub: &Rc<RefCell<Hub>>, h: &mut Hub, at_ms: f64, config: &Config) {
    if h.timer_ms.is_some_and(|t| t <= at_ms) {
        return;
    }
    h.timer_ms = Some(at_ms);
    let (hub, config) = (hub.clone(), config.clone());
    wasm_bindgen_futures::spawn_local(async move {
        let delay = (at_ms - js_sys::Date::now()).max(0.0) as u64;
        worker::Delay::from(Duration::from_millis(delay)).await;
        let mine = hub.borrow().timer_ms == Some(at_ms);
        if mine {
            hub.borrow_mut().timer_ms = None;
            pass(&hub, &config).await;
        }
    });
}

/// Waits in the executor's hub for up to `wait_ms` for `claim` to claim
/// something; `since_ms` is when the edge's own (empty) claim started.
pub async fn wait(env: &Env, claim: Claim, wait_ms: u32, since_ms: f64) -> worker::Result<Vec<Value>> {
    let executor_id = claim.executor_id.clone();
    let request = ClaimHubRequest::Wait {
        executor_id: claim.executor_id,
        worker_id: claim.worker_id,
        lease_seconds: claim.lease_seconds,
        type_prefix: claim.type_prefix,
        limit: claim.limit,
        wait_ms,
        since_ms,
    };
    super::send(env, &executor_id, &request).await?.json().await
}

/// Rings the executor's claim hub, handing it `relay` to ring onwards.
pub async fn ring(env: &Env, executor_id: &str, relay: Vec<Bell>) -> worker::Result<Response> {
    super::send(env, executor_id, &ClaimHubRequest::Ring { relay }).await
}
