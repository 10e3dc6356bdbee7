//! The transport seam implemented with the runtime's `fetch`, with a
//! deadline so a hung upstream cannot hold a request forever.
//!
//! Every PostgREST call goes through here, so it stays close to the
//! platform: the global `fetch` (no `worker::Request` wrapper, which reads
//! `request.cf` and copies the request), a deadline the runtime enforces
//! itself (`AbortSignal.timeout`, instead of a wasm timer raced against the
//! call), and the answer read whole with one `arrayBuffer()` instead of
//! chunk by chunk through a stream reader.

use std::time::Duration;

use cogo_shared::http::{ApiResponse, HttpRequest, Transport, TransportError};
use js_sys::{Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Headers, RequestInit, Response};
use worker::FixedLengthStream;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch, catch)]
    fn global_fetch(url: &str, init: &RequestInit) -> Result<Promise, JsValue>;
}

pub struct FetchTransport {
    pub timeout: Duration,
}

impl Transport for FetchTransport {
    async fn send(&self, request: HttpRequest) -> Result<ApiResponse, TransportError> {
        let body = request.body.as_deref().map(|b| Uint8Array::from(b).into());
        self.fetch(&request, body).await
    }
}

impl FetchTransport {
    /// Sends `request` with `body` streamed (uploads).
    pub async fn send_stream(
        &self,
        request: &HttpRequest,
        body: FixedLengthStream,
    ) -> Result<ApiResponse, TransportError> {
        let stream: worker::worker_sys::FixedLengthStream = body.into();
        self.fetch(request, Some(stream.readable().into())).await
    }

    async fn fetch(&self, request: &HttpRequest, body: Option<JsValue>) -> Result<ApiResponse, TransportError> {
        let headers = Headers::new().map_err(failure)?;
        for (name, value) in &request.headers {
            headers.append(name, value).map_err(failure)?;
        }
        let init = RequestInit::new();
        init.set_method(request.method.as_str());
        init.set_headers(&headers);
        if let Some(body) = &body {
            init.set_body(body);
        }
        // Covers the body read as well as the answer's head.
        let timeout_ms = u32::try_from(self.timeout.as_millis()).unwrap_or(u32::MAX);
        init.set_signal(Some(&AbortSignal::timeout_with_u32(timeout_ms)));
        let response: Response = JsFuture::from(global_fetch(&request.url, &init).map_err(failure)?)
            .await
            .map_err(failure)?
            .unchecked_into();
        let status = response.status();
        let headers = worker::Headers(response.headers()).entries().collect();
        let buffer = JsFuture::from(response.array_buffer().map_err(failure)?).await.map_err(failure)?;
        Ok(ApiResponse { status, headers, body: Uint8Array::new(&buffer).to_vec() })
    }
}

/// The deadline's abort surfaces as a `TimeoutError`; anything else means
/// nothing usable answered.
fn failure(error: JsValue) -> TransportError {
    let name = js_sys::Reflect::get(&error, &"name".into()).ok().and_then(|n| n.as_string());
    if name.as_deref() == Some("TimeoutError") {
        return TransportError::TimedOut;
    }
    let message = error.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message()));
    TransportError::Unreachable(message.unwrap_or_else(|| format!("{error:?}")))
}
