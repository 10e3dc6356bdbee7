//! Local stand-ins for the hosted services cogo-edge runs against. Nothing
//! here ships to the edge.

pub mod pgrst;
/// The PostgREST-compatible gateway.
pub use pgrst as gateway;
pub mod cron;
pub mod deploy;
pub mod migrate;
pub mod pg_cluster;
pub mod process;
pub mod token;
