//! The job queue: tasks (assign, claim, result, progress, heartbeat, cancel,
//! presence), reads and dead letters, metrics, Idempotency-Key records, and
//! the doorbells a change rings.
//! Each request becomes the named arguments of one SQL function in
//! `migrations/`.

pub mod doorbells;
pub mod idempotency;
pub mod metrics;
pub mod reads;
pub mod tasks;
