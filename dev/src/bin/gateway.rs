//! The PostgREST-compatible gateway as a process, configured like PostgREST
//! (PGRST_* variables). A local stand-in: production uses hosted PostgREST.

use std::process::ExitCode;

use cogo_dev::gateway::{serve, Config};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_lookup(|k| std::env::var(k).ok()) {
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
    println!("gateway listening on http://{host}:{}", config.port);
    let stop = async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    match serve(config, listener, stop).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cogo-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}
