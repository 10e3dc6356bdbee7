//! The transport seam implemented with the runtime's `fetch`, with a
//! deadline so a hung upstream cannot hold a request forever.

use std::time::Duration;

use cogo_shared::http::{ApiResponse, HttpRequest, Transport, TransportError};
use futures::future::{select, Either};
use worker::{AbortController, Delay, Fetch, Headers, Request, RequestInit};

pub struct FetchTransport {
    pub timeout: Duration,
}

impl Transport for FetchTransport {
    async fn send(&self, request: HttpRequest) -> Result<ApiResponse, TransportError> {
        let unreachable = |e: worker::Error| TransportError::Unreachable(e.to_string());
        let headers = Headers::new();
        for (name, value) in &request.headers {
            headers.append(name, value).map_err(unreachable)?;
        }
        let mut init = RequestInit::new();
        init.with_method(request.method.as_str().to_string().into()).with_headers(headers);
        if let Some(body) = &request.body {
            init.with_body(Some(js_sys::Uint8Array::from(body.as_slice()).into()));
        }
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
