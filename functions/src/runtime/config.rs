//! The typed config, parsed from `Env` on the first request of an isolate
//! and kept for its life (vars and secrets cannot change under a running
//! isolate).

use std::cell::OnceCell;
use std::rc::Rc;

use cogo_shared::config::{Config, ConfigError};
use cogo_shared::ApiError;
use worker::Env;

thread_local! {
    static CONFIG: OnceCell<Result<Rc<Config>, ConfigError>> = const { OnceCell::new() };
}

pub fn load(env: &Env) -> Result<Rc<Config>, ApiError> {
    CONFIG.with(|cell| {
        cell.get_or_init(|| Config::from_lookup(|name| env.var(name).ok().map(|v| v.to_string())).map(Rc::new))
            .clone()
            .map_err(|e| {
                worker::console_error!("configuration error: {e}");
                ApiError::new(500, "config_error", e.to_string())
            })
    })
}
