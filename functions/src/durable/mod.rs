//! The Durable Objects, one file each with its typed client: the job hubs
//! (live job events), channel hubs (broadcasts and presence), the rate
//! limiter and the signature ledger.

pub mod channel_hub;
pub mod job_hub;
pub mod rate_limiter;
pub mod signature_ledger;

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
