//! The target-independent core of cogo-edge. Everything here builds for
//! wasm32 and natively and is unit-tested natively; the clock and the HTTP
//! transport are always passed in.

// Errors are the cold path; boxing them would only add noise.
#![allow(clippy::result_large_err)]

pub mod artifacts;
pub mod auth;
pub mod body;
pub mod channels;
pub mod chat;
pub mod config;
pub mod cors;
pub mod creatego;
pub mod error;
pub mod figma;
pub mod figma_reverse;
pub mod health;
pub mod http;
pub mod idempotency;
pub mod jobs;
pub mod jwks;
pub mod metrics;
pub mod openapi;
pub mod postgrest;
pub mod query;
pub mod ratelimit;
pub mod reads;
pub mod router;
pub mod routes;
pub mod sse;
pub mod storage;
pub mod time;

pub use error::ApiError;
