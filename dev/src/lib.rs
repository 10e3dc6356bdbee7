//! Local stand-ins for the hosted services cogo-edge runs against. Nothing
//! here ships to the edge.

pub mod gateway;
pub mod migrate;
pub mod pg_cluster;
pub mod process;
pub mod token;
