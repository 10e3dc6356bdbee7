//! The local stack for a developer, and small tools around it.
//!
//! ```text
//! cogo-dev up [--port 8787]          PostgreSQL + migrations + gateway + wrangler dev
//! cogo-dev migrate <db-uri> [dir]    apply migrations/ to any PostgreSQL: new versioned
//!                                    files, then changed functions/ files
//! cogo-dev token <role> [sub]        print a JWT signed with .dev.vars' secret
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use cogo_dev::pg_cluster::{PgCluster, PgOptions};
use cogo_dev::process::{free_port, port_open, wait_until, Guarded};
use cogo_dev::{migrate, token};

type Result<T> = std::result::Result<T, String>;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("up") => up(&args[1..]).await,
        Some("migrate") if args.len() >= 2 => {
            let dir = args.get(2).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("migrations"));
            migrate::run(&args[1], &dir).await.map(|applied| report_applied(&applied)).map_err(|e| e.to_string())
        }
        Some("token") if args.len() >= 2 => read_dev_vars(Path::new(".dev.vars")).map(|vars| {
            let sub = args.get(2).map(String::as_str).unwrap_or("dev-user");
            println!("{}", token::sign(&vars.jwt_secret, token::role_claims(&args[1], sub), 30 * 24 * 3600));
        }),
        _ => Err("usage: cogo-dev up [--port N] | migrate <db-uri> [dir] | token <role> [sub]".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cogo-dev: {e}");
            ExitCode::FAILURE
        }
    }
}

fn report_applied(applied: &[String]) {
    if applied.is_empty() {
        println!("migrations: up to date");
    }
    for name in applied {
        println!("migrations: applied {name}");
    }
}

/// The secrets `wrangler dev` reads, created with random values on first use.
struct DevVars {
    jwt_secret: String,
}

fn read_dev_vars(path: &Path) -> Result<DevVars> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e} (run scripts/dev once)", path.display()))?;
    let jwt_secret = text
        .lines()
        .find_map(|l| l.strip_prefix("SUPABASE_JWT_SECRET="))
        .map(|v| v.trim().trim_matches('"').to_string())
        .ok_or_else(|| format!("{} has no SUPABASE_JWT_SECRET", path.display()))?;
    Ok(DevVars { jwt_secret })
}

fn ensure_dev_vars(path: &Path) -> Result<DevVars> {
    if !path.exists() {
        let secret = token::random_hex(32);
        let service = token::sign(&secret, token::role_claims("service_role", "service"), 10 * 365 * 24 * 3600);
        let text = format!(
            "# Local secrets for wrangler dev, made by scripts/dev. Never commit this file.\n\
             SUPABASE_JWT_SECRET={secret}\n\
             SUPABASE_SERVICE_ROLE_KEY={service}\n"
        );
        std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
        println!("created {} with new random secrets", path.display());
    }
    // Secrets added since the file was made are appended, keeping the rest.
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    if !text.lines().any(|l| l.starts_with("ARTIFACT_SIGNING_SECRET=")) {
        let line = format!(
            "{}ARTIFACT_SIGNING_SECRET={}\n",
            if text.ends_with('\n') { "" } else { "\n" },
            token::random_hex(32)
        );
        std::fs::write(path, text + &line).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    read_dev_vars(path)
}

async fn up(args: &[String]) -> Result<()> {
    let port: u16 = match args {
        [flag, p] if flag == "--port" => p.parse().map_err(|_| format!("bad port {p}"))?,
        [] => 8787,
        _ => return Err("usage: cogo-dev up [--port N]".into()),
    };
    if port_open(port) {
        return Err(format!("127.0.0.1:{port} is already in use (another scripts/dev?)"));
    }
    let root = std::env::current_dir().map_err(|e| e.to_string())?;
    let vars = ensure_dev_vars(&root.join(".dev.vars"))?;

    let pg = PgCluster::start(PgOptions { dir: root.join(".dev/pg"), port: None, durable: true })
        .map_err(|e| format!("PostgreSQL: {e}"))?;
    println!("postgres    {}  (data in .dev/pg)", pg.uri("postgres"));
    let applied = migrate::run(&pg.uri("postgres"), &root.join("migrations")).await.map_err(|e| e.to_string())?;
    report_applied(&applied);

    let gateway_port = free_port().map_err(|e| e.to_string())?;
    let gateway_env = [
        ("PGRST_DB_URI", pg.uri("authenticator")),
        ("PGRST_DB_SCHEMAS", "public,cogo".into()),
        ("PGRST_DB_ANON_ROLE", "anon".into()),
        ("PGRST_JWT_SECRET", vars.jwt_secret.clone()),
        ("PGRST_SERVER_PORT", gateway_port.to_string()),
    ];
    // Written out so the gateway can be stopped and started by hand.
    let env_file: String = gateway_env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(root.join(".dev/gateway.env"), env_file).map_err(|e| e.to_string())?;
    let gateway_bin = std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("cogo-gateway");
    let mut gateway_cmd = Command::new(&gateway_bin);
    gateway_cmd.envs(gateway_env.iter().map(|(k, v)| (*k, v.as_str())));
    let _gateway = Guarded::spawn("gateway", gateway_cmd, libc::SIGTERM).map_err(|e| e.to_string())?;
    wait_until("gateway", Duration::from_secs(20), || port_open(gateway_port).then_some(()))
        .map_err(|e| e.to_string())?;
    let supabase_url = format!("http://127.0.0.1:{gateway_port}");
    println!("gateway     {supabase_url}/rest/v1  (PostgREST-compatible; env in .dev/gateway.env)");

    // wrangler runs in its own process group: killing only its node process
    // would leave its workerd children running.
    let mut wrangler = Command::new("wrangler");
    wrangler
        .args(["dev", "--ip", "127.0.0.1", "--port", &port.to_string(), "--show-interactive-dev-session=false"])
        .arg("--var")
        .arg(format!("SUPABASE_URL:{supabase_url}"));
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt;
        wrangler.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let wrangler = Guarded::spawn("wrangler", wrangler, libc::SIGTERM).map_err(|e| e.to_string())?;
    let group = WranglerGroup(wrangler.id() as i32);

    let health = format!("http://127.0.0.1:{port}/api/collab/health");
    let ready = tokio::task::spawn_blocking(move || {
        wait_until("wrangler dev", Duration::from_secs(300), || port_open(port).then_some(()))
    });
    tokio::select! {
        r = ready => r.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?,
        _ = shutdown_signal() => return Ok(()),
    }
    let user = token::sign(
        &vars.jwt_secret,
        token::role_claims("authenticated", "00000000-0000-4000-8000-000000000001"),
        30 * 24 * 3600,
    );
    let worker = token::sign(&vars.jwt_secret, token::role_claims("worker", "dev-worker"), 30 * 24 * 3600);
    let service = token::sign(&vars.jwt_secret, token::role_claims("service_role", "service"), 30 * 24 * 3600);
    println!(
        "\ncogo-edge is running:\n  worker      http://127.0.0.1:{port}\n  health      {health}\n\n\
         tokens (30 days; more with `cogo-dev token <role> [sub]`):\n  \
         SERVICE_TOKEN={service}\n  WORKER_TOKEN={worker}\n  USER_TOKEN={user}\n\n\
         try: curl {health}\nCtrl-C stops everything."
    );
    shutdown_signal().await;
    println!("\nstopping...");
    drop(group);
    drop(_gateway);
    pg.stop();
    Ok(())
}

/// Stops wrangler's whole process group when dropped.
struct WranglerGroup(i32);

impl Drop for WranglerGroup {
    fn drop(&mut self) {
        // SAFETY: signalling a process group we created.
        unsafe { libc::kill(-self.0, libc::SIGTERM) };
        let gone = wait_until("wrangler stop", Duration::from_secs(10), || {
            // SAFETY: signal 0 only asks whether any member is left.
            (unsafe { libc::kill(-self.0, 0) } != 0).then_some(())
        });
        if gone.is_err() {
            // SAFETY: as above.
            unsafe { libc::kill(-self.0, libc::SIGKILL) };
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
