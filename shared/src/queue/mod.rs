//! The job queue: tasks (assign, claim, result, progress, heartbeat, cancel,
//! presence), reads and dead letters, metrics and their per-minute history,
//! Idempotency-Key records, the
//! doorbells a change rings, and the retention of finished jobs.
//! Each request becomes the named arguments of one SQL function in
//! `migrations/`.

pub mod doorbells;
pub mod history;
pub mod idempotency;
pub mod metrics;
pub mod reads;
pub mod retention;
pub mod tasks;
