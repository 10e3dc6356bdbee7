//! The transport seam implemented with the runtime's `fetch`, with a
//! deadline so a hung upstream cannot hold a request forever.

use std::time::Duration;

use cogo_shared::http::{ApiResponse, HttpRequest, Transport, TransportError};
use futures::future::{select, Either};
use wasm_bindgen::JsValue;
use worker::{AbortController, Delay, Fetch, FixedLengthStream, Headers, Request, RequestInit};

pub struct FetchTransport {
    pub timeout: Duration,
}

impl Transport for FetchTransport {
    async fn send(&self, request: HttpRequest) -> Result<ApiResponse, TransportError> {
        let body = request.body.as_deref().map(|b| js_sys::Uint8Array::from(b).into());
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
        let unreachable = |e: worker::Error| TransportError::Unreachable(e.to_string());
        let headers = Headers::new();
        for (name, value) in &request.headers {
            headers.append(name, value).map_err(unreachable)?;
        }
        let mut init = RequestInit::new();
        init.with_method(request.method.as_str().to_string().into()).with_headers(headers).with_body(body);
        let outgoing = Request::new_with_init(&request.url, &init).map_err(unreachable)?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let fetch = Fetch::Request(outgoing);
        let call = Box::pin(async {
            let mut response = fetch.send_with_signal(&signal).await?;
            let status = response.status_code();
            let headers = response.headers().entries().collect();
            let body = response.bytes().await?;
            Ok::<_, worker::Error>(ApiResponse { status, headers, body })
        });
        // Bound to a local so the pending call is dropped before `fetch`.
        let outcome = match select(call, Delay::from(self.timeout)).await {
            Either::Left((result, _)) => result.map_err(unreachable),
            Either::Right(_) => {
                controller.abort();
                Err(TransportError::TimedOut)
            }
        };
        outcome
    }
}
