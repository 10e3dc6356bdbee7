//! A private PostgreSQL cluster in a project folder, on a free port, with no
//! system service and no root-owned state. `initdb` and `postgres` refuse to
//! run as root, so as root they run as the `postgres` system user.

use std::ffi::CString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::{free_port, wait_until, Guarded};

pub struct PgOptions {
    /// Folder holding the cluster (created on first use, reused after).
    pub dir: PathBuf,
    /// `None` picks a free port.
    pub port: Option<u16>,
    /// `false` turns off fsync: for throwaway test clusters only.
    pub durable: bool,
}

pub struct PgCluster {
    pub port: u16,
    pub dir: PathBuf,
    server: Guarded,
}

impl PgCluster {
    /// Initialises the cluster if needed and starts it; returns once it
    /// accepts connections.
    pub fn start(opts: PgOptions) -> io::Result<PgCluster> {
        let bin = bin_dir()?;
        let owner = run_as_owner()?;
        let data = opts.dir.join("data");
        fs::create_dir_all(&opts.dir)?;
        if let Some((uid, gid)) = owner {
            chown(&opts.dir, uid, gid)?;
        }
        if !data.join("PG_VERSION").exists() {
            let _ = fs::remove_dir_all(&data);
            let mut initdb = Command::new(bin.join("initdb"));
            initdb
                .args(["-D"])
                .arg(&data)
                .args(["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"])
                .stdout(Stdio::null());
            as_owner(&mut initdb, owner);
            let out = initdb.output()?;
            if !out.status.success() {
                return Err(io::Error::other(format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr))));
            }
        }
        // A server killed without a clean shutdown leaves its pid file.
        let pid_file = data.join("postmaster.pid");
        if pid_file.exists() && !pid_alive(&pid_file) {
            fs::remove_file(&pid_file)?;
        }
        let port = match opts.port {
            Some(p) => p,
            None => free_port()?,
        };
        let mut server = Command::new(bin.join("postgres"));
        server
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", opts.dir.display()))
            .args(["-c", "max_connections=200", "-c", "shared_buffers=256MB"])
            .args(["-c", "log_min_messages=warning", "-c", "log_min_error_statement=panic"])
            .stdout(Stdio::null())
            .stderr(fs::File::create(opts.dir.join("server.log"))?);
        if !opts.durable {
            server.args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]);
        }
        as_owner(&mut server, owner);
        // SIGINT is PostgreSQL's fast shutdown: sessions end, data stays consistent.
        let mut server = Guarded::spawn("postgres", server, libc::SIGINT)?;
        let log = opts.dir.join("server.log");
        wait_until("postgres", Duration::from_secs(60), || {
            if !server.is_running() {
                return Some(false);
            }
            accepts_sessions(port).then_some(true)
        })?
        .then_some(())
        .ok_or_else(|| {
            io::Error::other(format!("postgres exited at start: {}", fs::read_to_string(&log).unwrap_or_default()))
        })?;
        Ok(PgCluster { port, dir: opts.dir, server })
    }

    /// A libpq URI for `user` on database `postgres` of this cluster.
    pub fn uri(&self, user: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/postgres", self.port)
    }

    pub fn stop(mut self) {
        self.server.stop(Duration::from_secs(30));
    }
}

/// True once the server answers a startup packet with authentication
/// rather than "the database system is starting up" (an open port is not
/// enough).
fn accepts_sessions(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let params = b"user\0postgres\0database\0postgres\0\0";
    let mut packet = Vec::with_capacity(8 + params.len());
    packet.extend_from_slice(&((8 + params.len()) as u32).to_be_bytes());
    packet.extend_from_slice(&196_608u32.to_be_bytes()); // protocol 3.0
    packet.extend_from_slice(params);
    let mut kind = [0u8; 1];
    stream.write_all(&packet).is_ok() && stream.read_exact(&mut kind).is_ok() && kind[0] == b'R'
}

fn pid_alive(pid_file: &Path) -> bool {
    let Ok(text) = fs::read_to_string(pid_file) else { return false };
    let Some(pid) = text.lines().next().and_then(|l| l.trim().parse::<i32>().ok()) else { return false };
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// The folder with `initdb` and `postgres`: `PG_BIN` if set, else `PATH`,
/// else the newest Debian-style `/usr/lib/postgresql/<v>/bin`.
pub fn bin_dir() -> io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("postgres").is_file() {
                return Ok(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, p)| p.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p).ok_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, "PostgreSQL server binaries not found: run scripts/setup or set PG_BIN")
    })
}

/// As root, the uid/gid of the `postgres` user; otherwise `None` (run as us).
fn run_as_owner() -> io::Result<Option<(u32, u32)>> {
    // SAFETY: plain libc queries; the passwd entry is copied out at once.
    unsafe {
        if libc::geteuid() != 0 {
            return Ok(None);
        }
        let name = CString::new("postgres").expect("no NUL");
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "running as root needs a `postgres` system user (apt-get install postgresql creates it)",
            ));
        }
        Ok(Some(((*pw).pw_uid, (*pw).pw_gid)))
    }
}

fn as_owner(cmd: &mut Command, owner: Option<(u32, u32)>) {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = owner {
        cmd.uid(uid).gid(gid).env("HOME", "/tmp");
    }
}

fn chown(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
}
