//! The Durable Objects, one file each with its typed client: the job hubs
//! (live job events), channel hubs (broadcasts and presence), the rate
//! limiter and the signature ledger.

pub mod channel_hub;
pub mod job_hub;
pub mod rate_limiter;
pub mod signature_ledger;
