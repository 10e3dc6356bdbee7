//! Child processes that cannot outlive the process that started them, free
//! ports, and waiting on a condition with a deadline.

use std::io;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command};
use std::time::{Duration, Instant};

/// A child process that is stopped when dropped and, through
/// `PR_SET_PDEATHSIG`, when this process dies without dropping it.
pub struct Guarded {
    child: Child,
    stop_signal: i32,
    name: String,
}

impl Guarded {
    /// Spawns `cmd`; `stop_signal` is what the child gets when we go away.
    pub fn spawn(name: &str, mut cmd: Command, stop_signal: i32) -> io::Result<Guarded> {
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, stop_signal as libc::c_ulong) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| io::Error::new(e.kind(), format!("starting {name}: {e}")))?;
        Ok(Guarded { child, stop_signal, name: name.to_string() })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child's piped stdin; it stays open while the guard lives.
    pub fn stdin(&mut self) -> Option<&mut ChildStdin> {
        self.child.stdin.as_mut()
    }

    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// Whether the child is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// How the child ended, once it has.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends the stop signal and waits up to `grace` before killing it.
    pub fn stop(&mut self, grace: Duration) {
        if !self.is_running() {
            return;
        }
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.child.id() as i32, self.stop_signal) };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !self.is_running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{} did not stop within {grace:?}; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Polls `ready` until it returns `Some`, or fails after `timeout` with
/// `what` in the message.
pub fn wait_until<T>(what: &str, timeout: Duration, mut ready: impl FnMut() -> Option<T>) -> io::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = ready() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, format!("{what} not ready after {timeout:?}")));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// True when something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

/// Runs `start` on a thread that then parks for the life of the process.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that spawned a child exits, so
/// children meant to live as long as a test binary (shared by many test
/// threads) must be spawned from a thread that never ends.
pub fn on_keeper_thread<T: Send + 'static>(start: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("child-keeper".into())
        .spawn(move || {
            let _ = tx.send(start());
            loop {
                std::thread::park();
            }
        })
        .expect("spawn keeper thread");
    rx.recv().expect("keeper thread panicked")
}

/// A fresh `<base>/<prefix>-<pid>` folder for this process. Folders of the
/// same prefix left by processes that have ended are removed first, so
/// crashed runs do not pile up.
pub fn scratch_dir(base: &Path, prefix: &str) -> io::Result<PathBuf> {
    for entry in std::fs::read_dir(base).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')).and_then(|p| p.parse().ok()) else {
            continue;
        };
        // SAFETY: signal 0 only asks whether the process exists.
        if unsafe { libc::kill(pid, 0) } != 0 {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = base.join(format!("{prefix}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
