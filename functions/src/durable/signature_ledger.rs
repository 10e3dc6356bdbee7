//! A signed request is accepted once: a Durable Object per signature (its
//! canonical lower-case hex, so another spelling is the same object)
//! remembers it for longer than the signature's time window, then forgets.
//! The `v1` and `path` forms sign their timestamp, so once forgotten they
//! are outside the window; the `body` form does not, which is why it is off
//! by default (`EDGE_HMAC_SCHEMES`).

use std::time::Duration;

use cogo_shared::auth::HMAC_WINDOW_SECS;
use cogo_shared::ApiError;
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, State};

use super::DurableRequest;

/// The only question the ledger answers: is this the signature's first use?
#[derive(Serialize, Deserialize)]
struct FirstUse;

impl DurableRequest for FirstUse {
    const BINDING: &'static str = "SIGNATURES";
}

#[durable_object]
pub struct SignatureLedger {
    state: State,
}

impl DurableObject for SignatureLedger {
    fn new(state: State, _env: Env) -> Self {
        SignatureLedger { state }
    }

    /// Answers 200 the first time, 409 every time after.
    async fn fetch(&self, _req: Request) -> worker::Result<Response> {
        let storage = self.state.storage();
        if storage.get::<bool>("seen").await?.unwrap_or(false) {
            return Response::empty().map(|r| r.with_status(409));
        }
        storage.put("seen", true).await?;
        // Past both sides of the window a replay fails on its timestamp anyway.
        storage.set_alarm(Duration::from_secs(2 * HMAC_WINDOW_SECS as u64 + 60)).await?;
        Response::empty()
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.state.storage().delete_all().await?;
        Response::empty()
    }
}

/// 401 when `signature` (canonical, from `authenticate`) was already used. If the ledger cannot answer, the
/// request goes through (logged), as with the rate limiter.
pub async fn first_use(env: &Env, signature: &str) -> Result<(), ApiError> {
    let answer = async { Ok::<_, worker::Error>(super::send(env, signature, &FirstUse).await?.status_code()) };
    match answer.await {
        Ok(409) => Err(ApiError::new(401, "replayed_signature", "this signed request was already used")
            .with_header("WWW-Authenticate", "Bearer realm=\"cogo-edge\", error=\"invalid_token\"")),
        Ok(_) => Ok(()),
        Err(e) => {
            worker::console_error!("signature ledger unavailable, accepting the request: {e}");
            Ok(())
        }
    }
}
