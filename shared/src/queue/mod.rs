//! The job queue: tasks (assign, claim, result, progress, heartbeat, cancel,
//! presence), reads and dead letters, metrics, and Idempotency-Key records.
//! Each request becomes the named arguments of one SQL function in
//! `migrations/`.

pub mod idempotency;
pub mod metrics;
pub mod reads;
pub mod tasks;
