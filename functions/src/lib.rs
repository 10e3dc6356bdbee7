//! The worker's entry points: every request goes through the pipeline
//! (`pipeline.rs`), every cron tick through `cron.rs`. Handlers live under
//! `api/` (one file per group of the route table), Durable Objects under
//! `durable/`, runtime plumbing (config, transport, PostgREST, JWKS,
//! storage) under `runtime/`.

#![allow(clippy::result_large_err)] // errors are the cold path

mod api;
mod cron;
mod durable;
mod pipeline;
mod runtime;

use worker::{event, Context, Env, Request, Response, ScheduleContext, ScheduledEvent};

#[event(fetch)]
async fn fetch(request: Request, env: Env, worker_ctx: Context) -> worker::Result<Response> {
    pipeline::serve(request, env, worker_ctx).await
}

/// The cron trigger, every minute (wrangler.toml `[triggers]`).
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    cron::run(env).await
}
