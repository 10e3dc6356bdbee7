//! What the handlers run on: the config read once per isolate, the fetch
//! transport, PostgREST calls as the platform or the caller, the JWKS cache
//! and the storage backends.

pub mod config;
pub mod jwks;
pub mod platform;
pub mod storage;
pub mod transport;
