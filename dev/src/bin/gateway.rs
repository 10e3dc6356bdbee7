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
    let (host, port) = (config.server_host.clone(), config.server_port);
    let listener = match tokio::net::TcpListener::bind((host.as_str(), port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cogo-gateway: cannot listen on {host}:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The real port (PGRST_SERVER_PORT=0 picks a free one).
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    println!("gateway listening on http://{host}:{port}");
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
