//! The local stack for a developer, and small tools around it.
//!
//! ```text
//! cogo-dev up [--port 8787] [--state DIR] [--cron-every SECONDS]
//!                                    PostgreSQL + migrations + gateway + wrangler dev,
//!                                    and the cron triggers of wrangler.toml
//! cogo-dev migrate <db-uri> [dir]    apply migrations/ to any PostgreSQL: new versioned
//!                                    files, then changed functions/ files
//! cogo-dev deploy --db <db-uri> [--var NAME:VALUE]... [--dry-run]
//!                                    check the configuration and secrets, migrate, and
//!                                    wrangler deploy (dry run: no account, nothing changed)
//! cogo-dev token <role> [sub] [--executor ID] [--ttl 30d]
//!                                    print a JWT signed with $SUPABASE_JWT_SECRET
//!                                    (a hosted project's) or .dev.vars' secret
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use cogo_dev::cron::{self, Schedule};
use cogo_dev::pg_cluster::{PgCluster, PgOptions};
use cogo_dev::process::{free_port, port_open, wait_until, Guarded};
use cogo_dev::{deploy, migrate, token};

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
        Some("token") => token_command(&args[1..]),
        Some("deploy") => deploy_command(&args[1..]).await,
        _ => Err(format!("usage: {UP_USAGE} | migrate <db-uri> [dir] | {TOKEN_USAGE} | {DEPLOY_USAGE}")),
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

const TOKEN_USAGE: &str =
    "token <service|worker|agent|user|anon> [sub] [--executor ID] [--ttl 30d]  (secret: $SUPABASE_JWT_SECRET, else .dev.vars)";

/// Prints a JWT signed with the project's secret: `SUPABASE_JWT_SECRET` from
/// the environment (a hosted project's), else the dev vars'.
fn token_command(args: &[String]) -> Result<()> {
    let request = token::parse_request(args).map_err(|why| format!("{why}\nusage: cogo-dev {TOKEN_USAGE}"))?;
    let secret = match std::env::var("SUPABASE_JWT_SECRET").ok().filter(|s| !s.is_empty()) {
        Some(secret) => secret,
        None => read_dev_vars(Path::new(".dev.vars"))?.jwt_secret,
    };
    println!("{}", token::sign(&secret, request.claims, request.ttl_secs));
    Ok(())
}

const DEPLOY_USAGE: &str = "deploy [--db <db-uri> | $DATABASE_URL] [--var NAME:VALUE]... [--dry-run]";

/// Checks, migrates and deploys, stopping at the first step that fails.
/// `--dry-run` does every step that needs no Cloudflare account: the
/// configuration, the migrations applied and rolled back, and wrangler's
/// own dry run (the build and bundle).
async fn deploy_command(args: &[String]) -> Result<()> {
    let (mut db, mut dry_run, mut overrides) = (None, false, Vec::new());
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dry-run" => dry_run = true,
            "--db" => db = args.next().cloned(),
            "--var" => {
                let pair = args.next().ok_or("--var needs NAME:VALUE")?;
                let (name, value) = pair.split_once(':').ok_or_else(|| format!("--var {pair}: expected NAME:VALUE"))?;
                overrides.push((name.to_string(), value.to_string()));
            }
            other => return Err(format!("unknown argument {other}; usage: cogo-dev {DEPLOY_USAGE}")),
        }
    }
    // From the environment, the password stays out of the process list.
    let db = db
        .or_else(|| std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()))
        .ok_or_else(|| format!("--db or DATABASE_URL is required; usage: cogo-dev {DEPLOY_USAGE}"))?;
    let text = std::fs::read_to_string("wrangler.toml").map_err(|e| format!("wrangler.toml: {e}"))?;
    let mut config = deploy::read_wrangler_toml(&text)?;
    config.vars.extend(overrides.iter().cloned());

    let secrets = if dry_run {
        println!("secrets     not checked in a dry run (wrangler secret list needs an account); assuming set");
        deploy::required_secrets(&config.vars).iter().map(|s| s.to_string()).collect()
    } else {
        let out = Command::new("wrangler")
            .args(["secret", "list", "--format", "json"])
            .output()
            .map_err(|e| format!("wrangler: {e}"))?;
        if !out.status.success() {
            return Err(format!("wrangler secret list failed:\n{}", String::from_utf8_lossy(&out.stderr)));
        }
        deploy::secret_names(&String::from_utf8_lossy(&out.stdout))?
    };
    let problems = deploy::problems(&config, &secrets);
    if !problems.is_empty() {
        return Err(format!("not deployed; fix these first:\n  {}", problems.join("\n  ")));
    }
    println!("config      ok");

    let dir = Path::new("migrations");
    let applied = if dry_run { migrate::dry_run(&db, dir).await } else { migrate::run(&db, dir).await };
    let applied = applied.map_err(|e| format!("migrations: {e}"))?;
    let verb = if dry_run { "would apply" } else { "applied" };
    println!(
        "migrations  {}",
        if applied.is_empty() { "up to date".into() } else { format!("{verb} {}", applied.join(", ")) }
    );

    let mut wrangler = Command::new("wrangler");
    wrangler.arg("deploy");
    for (name, value) in &overrides {
        wrangler.arg("--var").arg(format!("{name}:{value}"));
    }
    let outdir = Path::new("target/deploy-dry-run");
    if dry_run {
        wrangler.arg("--dry-run").arg("--outdir").arg(outdir);
    }
    let status = wrangler.status().map_err(|e| format!("wrangler: {e}"))?;
    if !status.success() {
        return Err(format!("wrangler deploy failed ({status})"));
    }
    if dry_run {
        let wasm: u64 = std::fs::read_dir(outdir)
            .map_err(|e| format!("{}: {e}", outdir.display()))?
            .flatten()
            .filter(|f| f.path().extension().is_some_and(|x| x == "wasm"))
            .filter_map(|f| f.metadata().ok().map(|m| m.len()))
            .sum();
        println!(
            "dry run     done: the bundle is in {} ({wasm} bytes of wasm); nothing was deployed",
            outdir.display()
        );
    }
    Ok(())
}

const UP_USAGE: &str = "cogo-dev up [--port N] [--state DIR] [--cron-every SECONDS]";

/// The settings `wrangler dev` reads, made on first use with random secrets.
struct DevVars {
    jwt_secret: String,
    cors_origins: String,
}

/// Settings added to the dev vars when missing, also in files made before
/// they existed. Dev CORS admits the Figma plugin (`null`) and local pages
/// on any port; production's default (wrangler.toml) stays closed.
fn dev_defaults() -> [(&'static str, String); 3] {
    [
        ("ARTIFACT_SIGNING_SECRET", token::random_hex(32)),
        ("EDGE_HMAC_SECRET", token::random_hex(32)),
        ("EDGE_CORS_ALLOW_ORIGINS", "null,http://localhost:*,http://127.0.0.1:*".to_string()),
    ]
}

fn read_dev_vars(path: &Path) -> Result<DevVars> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e} (run scripts/dev once)", path.display()))?;
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_string())
    };
    let jwt_secret =
        value("SUPABASE_JWT_SECRET").ok_or_else(|| format!("{} has no SUPABASE_JWT_SECRET", path.display()))?;
    Ok(DevVars { jwt_secret, cors_origins: value("EDGE_CORS_ALLOW_ORIGINS").unwrap_or_default() })
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
    // Settings added since the file was made are appended, keeping the rest.
    let mut text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let before = text.len();
    for (name, value) in dev_defaults() {
        if !text.lines().any(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with('='))) {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!("{name}={value}\n"));
        }
    }
    if text.len() != before {
        std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    read_dev_vars(path)
}

/// `cogo-dev up`'s options.
struct UpOptions {
    port: u16,
    /// Where the cluster, the gateway's env and (with `--state`) the dev vars
    /// and wrangler's local state live.
    state: PathBuf,
    vars: PathBuf,
    /// Where wrangler keeps local buckets and objects; its default without `--state`.
    persist_to: Option<PathBuf>,
    cron_every: Option<Duration>,
}

impl UpOptions {
    fn parse(root: &Path, args: &[String]) -> Result<UpOptions> {
        let mut options = UpOptions {
            port: 8787,
            state: root.join(".dev"),
            vars: root.join(".dev.vars"),
            persist_to: None,
            cron_every: None,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value; usage: {UP_USAGE}"))?;
            match flag.as_str() {
                "--port" => options.port = value.parse().map_err(|_| format!("bad port {value}"))?,
                "--state" => {
                    let dir = root.join(value);
                    options.vars = dir.join("dev.vars");
                    options.persist_to = Some(dir.join("wrangler"));
                    options.state = dir;
                }
                "--cron-every" => {
                    let seconds: u64 =
                        value.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                            format!("--cron-every takes a whole number of seconds above 0, got {value}")
                        })?;
                    options.cron_every = Some(Duration::from_secs(seconds));
                }
                _ => return Err(format!("unknown option {flag}; usage: {UP_USAGE}")),
            }
        }
        Ok(options)
    }
}

async fn up(args: &[String]) -> Result<()> {
    let root = std::env::current_dir().map_err(|e| e.to_string())?;
    let options = UpOptions::parse(&root, args)?;
    let port = options.port;
    if port_open(port) {
        return Err(format!("127.0.0.1:{port} is already in use (another scripts/dev?)"));
    }
    let wrangler_toml =
        std::fs::read_to_string(root.join("wrangler.toml")).map_err(|e| format!("wrangler.toml: {e}"))?;
    let schedule = Schedule::new(&cron::crons_of_wrangler_toml(&wrangler_toml)?, options.cron_every)?;
    std::fs::create_dir_all(&options.state).map_err(|e| format!("{}: {e}", options.state.display()))?;
    let vars = ensure_dev_vars(&options.vars)?;

    let pg_dir = options.state.join("pg");
    let pg = PgCluster::start(PgOptions { dir: pg_dir.clone(), port: None, durable: true })
        .map_err(|e| format!("PostgreSQL: {e}"))?;
    println!("postgres    {}  (data in {})", pg.uri("postgres"), pg_dir.display());
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
    std::fs::write(options.state.join("gateway.env"), env_file).map_err(|e| e.to_string())?;
    let gateway_bin = std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("cogo-gateway");
    let mut gateway_cmd = Command::new(&gateway_bin);
    gateway_cmd.envs(gateway_env.iter().map(|(k, v)| (*k, v.as_str())));
    let _gateway = Guarded::spawn("gateway", gateway_cmd, libc::SIGTERM).map_err(|e| e.to_string())?;
    wait_until("gateway", Duration::from_secs(20), || port_open(gateway_port).then_some(()))
        .map_err(|e| e.to_string())?;
    let supabase_url = format!("http://127.0.0.1:{gateway_port}");
    println!(
        "gateway     {supabase_url}/rest/v1  (PostgREST-compatible; env in {})",
        options.state.join("gateway.env").display()
    );

    // wrangler runs in its own process group: killing only its node process
    // would leave its workerd children running.
    let mut wrangler = Command::new("wrangler");
    wrangler
        .args(["dev", "--ip", "127.0.0.1", "--port", &port.to_string(), "--show-interactive-dev-session=false"])
        // /__scheduled runs the cron handler: the ticker below calls it.
        .arg("--test-scheduled")
        .arg("--env-file")
        .arg(&options.vars)
        .arg("--var")
        .arg(format!("SUPABASE_URL:{supabase_url}"));
    if let Some(dir) = &options.persist_to {
        wrangler.arg("--persist-to").arg(dir);
    }
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt;
        wrangler.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let group = WranglerGroup(Guarded::spawn("wrangler", wrangler, libc::SIGTERM).map_err(|e| e.to_string())?);

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
    let cron_line = if schedule.is_empty() {
        "none in wrangler.toml".to_string()
    } else {
        format!("{} -> GET /__scheduled", schedule.describe())
    };
    let ticker = tokio::spawn(cron::tick(port, schedule));
    println!(
        "\ncogo-edge is running:\n  worker      http://127.0.0.1:{port}\n  \
         dashboard   http://127.0.0.1:{port}/#token={service}\n  health      {health}\n  \
         cron        {cron_line}\n  CORS        {} (dev vars in {})\n\n\
         tokens (30 days; more with `cogo-dev token <role> [sub]`):\n  \
         SERVICE_TOKEN={service}\n  WORKER_TOKEN={worker}\n  USER_TOKEN={user}\n\n\
         try: curl {health}\nCtrl-C stops everything.",
        vars.cors_origins,
        options.vars.display()
    );
    shutdown_signal().await;
    println!("\nstopping...");
    ticker.abort();
    drop(group);
    drop(_gateway);
    pg.stop();
    Ok(())
}

/// Wrangler, the leader of its own process group; the whole group is
/// stopped when dropped.
struct WranglerGroup(Guarded);

impl Drop for WranglerGroup {
    fn drop(&mut self) {
        let group = self.0.id() as i32;
        // SAFETY: signalling a process group we created.
        unsafe { libc::kill(-group, libc::SIGTERM) };
        let gone = wait_until("wrangler stop", Duration::from_secs(10), || {
            // Reaps the leader: a zombie still counts as a member of its group.
            self.0.is_running();
            // SAFETY: signal 0 only asks whether any member is left.
            (unsafe { libc::kill(-group, 0) } != 0).then_some(())
        });
        if gone.is_err() {
            // SAFETY: as above.
            unsafe { libc::kill(-group, libc::SIGKILL) };
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
