//! The target-independent core of cogo-edge. Everything here builds for
//! wasm32 and natively and is unit-tested natively; the clock and the HTTP
//! transport are always passed in.

// Errors are the cold path; boxing them would only add noise.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod config;
pub mod figma;
pub mod http;
pub mod postgrest;
pub mod queue;
pub mod realtime;
pub mod storage;
pub mod time;

pub use http::error::ApiError;
