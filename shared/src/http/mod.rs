//! Plain HTTP values and the transport seam. The edge sends requests with
//! the runtime's `fetch`; native tests pass a fake.

pub mod body;
pub mod cors;
pub mod error;
pub mod health;
pub mod openapi;
pub mod query;
pub mod router;
pub mod routes;
pub mod sse;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

impl Method {
    pub fn parse(s: &str) -> Option<Method> {
        Some(match s {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }
}

/// An outgoing request.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// A response, either received from upstream or about to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ApiResponse {
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> ApiResponse {
        ApiResponse {
            status,
            headers: vec![("Content-Type".into(), "application/json; charset=utf-8".into())],
            body: serde_json::to_vec(value).expect("JSON values always serialise"),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Why a request got no HTTP answer at all.
#[derive(Debug, Clone, PartialEq)]
pub enum TransportError {
    /// Refused, reset, DNS: nothing answered.
    Unreachable(String),
    TimedOut,
}

/// Sends one request. Implemented over `fetch` at the edge.
#[allow(async_fn_in_trait)] // single-threaded runtime: no Send bound wanted
pub trait Transport {
    async fn send(&self, request: HttpRequest) -> Result<ApiResponse, TransportError>;
}
