//! The PostgREST-compatible gateway as a process, configured like PostgREST
//! (PGRST_* variables). A local stand-in: production uses hosted PostgREST.

use std::process::ExitCode;

use cogo_dev::gateway::{serve_ready, Config};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_pairs(std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cogo-gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    let host = std::env::var("PGRST_SERVER_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let listener = match tokio::net::TcpListener::bind((host.as_str(), config.port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cogo-gateway: cannot listen on {host}:{}: {e}", config.port);
            return ExitCode::FAILURE;
        }
    };
    let port = config.port;
    let stop = async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    // Said once the schema cache is loaded: from then on no request meets
    // a gateway without one.
    let ready = move || println!("gateway listening on http://{host}:{port}");
    match serve_ready(config, listener, stop, ready).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cogo-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}
