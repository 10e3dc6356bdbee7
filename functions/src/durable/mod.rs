//! The Durable Objects, one file each with its typed client: the job hubs
//! (live job events), claim hubs (long-poll claims), channel hubs
//! (broadcasts and presence), the rate limiter and the signature ledger.

pub mod channel_hub;
pub mod claim_hub;
pub mod job_hub;
pub mod rate_limiter;
pub mod signature_ledger;

use cogo_shared::queue::doorbells::{self, Bell};
use serde::de::DeserializeOwned;
use serde::Serialize;
use worker::{Env, Request, RequestInit, Response};

/// A request to one kind of Durable Object: its binding, and (as the JSON
/// body) the method and its arguments, so caller and object agree on a type
/// rather than on a URL built by hand.
pub trait DurableRequest: Serialize + DeserializeOwned {
    const BINDING: &'static str;
}

/// Sends `request` to the object called `name` of its binding.
pub async fn send<R: DurableRequest>(env: &Env, name: &str, request: &R) -> worker::Result<Response> {
    let stub = env.durable_object(R::BINDING)?.id_from_name(name)?.get_stub()?;
    let mut init = RequestInit::new();
    init.with_method(worker::Method::Post).with_body(Some(serde_json::to_string(request)?.into()));
    stub.fetch_with_request(Request::new_with_init("https://durable-object/", &init)?).await
}

/// The request an object's `fetch` was sent.
pub async fn receive<R: DurableRequest>(mut req: Request) -> worker::Result<R> {
    req.json().await
}

/// Rings one hub, handing it `onwards` to ring in turn. A hub that cannot
/// be reached is logged: its listeners catch up on its next doorbell (or
/// their deadline).
async fn ring_one(env: &Env, bell: &Bell, onwards: Vec<Bell>) {
    let sent = match bell {
        Bell::Job(job_id) => job_hub::ring(env, job_id, onwards).await,
        Bell::Executor(executor_id) => claim_hub::ring(env, executor_id, onwards).await,
    };
    if let Err(e) = sent {
        worker::console_error!("doorbell {bell:?} failed: {e}");
    }
}

/// Hands all of `bells` to the first one's hub to ring: one subrequest here,
/// for an invocation with many other calls to make (the cron).
pub async fn relay(env: &Env, mut bells: Vec<Bell>) {
    if bells.is_empty() {
        return;
    }
    let first = bells.remove(0);
    ring_one(env, &first, bells).await;
}

/// Rings `bells` after their change committed: up to
/// `doorbells::RINGS_PER_HOP` here, the rest handed to the first of them,
/// which rings them onwards the same way.
pub async fn ring(env: &Env, bells: Vec<Bell>) {
    let (now, rest) = doorbells::plan(bells);
    let rings = now.iter().map(|bell| ring_one(env, bell, Vec::new()));
    futures::join!(futures::future::join_all(rings), relay(env, rest));
}
