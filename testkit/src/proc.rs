//! Child processes owned by a test: killed (SIGKILL, with their process group) when the owner
//! drops them, so a failing test leaves nothing running; and waiting for a port to answer.

use std::{
    path::Path,
    process::{Child, Command},
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, kill, killpg},
    unistd::Pid,
};

use crate::ports::Ports;

/// A child process killed when dropped, with the ports reserved for it.
#[derive(Debug)]
pub struct Proc {
    /// The child.
    pub child: Child,
    ports: Option<Ports>,
    group: bool,
}

impl Proc {
    /// Owns `child`.
    pub fn new(child: Child) -> Self {
        Self {
            child,
            ports: None,
            group: false,
        }
    }

    /// Spawns `cmd` in a process group of its own (so [`Proc::kill_group`] and drop take its
    /// children too, as a crashed host would), with stdout and stderr appended to `log`.
    pub fn spawn_logged(cmd: &mut Command, log: &Path) -> Self {
        use std::os::unix::process::CommandExt;
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let child = cmd
            .stdout(out.try_clone().expect("dup log"))
            .stderr(out)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        Self {
            child,
            ports: None,
            group: true,
        }
    }

    /// Keeps `ports` reserved as long as this process lives.
    #[must_use]
    pub fn holding(mut self, ports: Ports) -> Self {
        self.ports = Some(ports);
        self
    }

    /// Keeps `ports` reserved as long as this process lives (in place).
    pub fn hold(&mut self, ports: Ports) {
        self.ports = Some(ports);
    }

    /// Hands the reserved ports over (to the process that takes this one's place).
    pub fn take_ports(&mut self) -> Option<Ports> {
        self.ports.take()
    }

    /// Waits up to `deadline` for the child to exit by itself; whether it did. Async, so the
    /// caller's other tasks (players, connection pools) keep running meanwhile.
    pub async fn wait_exit(&mut self, deadline: Duration) -> bool {
        let start = Instant::now();
        loop {
            if self.child.try_wait().ok().flatten().is_some() {
                return true;
            }
            if start.elapsed() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The child's pid.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child's pid as a signal target (always a real child: never 0 or -1, which would
    /// reach the caller's group or every process).
    fn pid(&self) -> Pid {
        let raw = i32::try_from(self.child.id()).expect("pid fits i32");
        assert!(raw > 1, "not a child pid: {raw}");
        Pid::from_raw(raw)
    }

    /// Kills the child and everything in its process group (SIGKILL) and reaps it. Signals go
    /// through `kill(2)`/`killpg(2)` directly: a `kill` command given a negative id can be
    /// read as "every process".
    pub fn kill_group(&mut self) {
        if self.group && self.child.try_wait().ok().flatten().is_none() {
            let _ = killpg(self.pid(), Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM (a graceful stop) to the child alone.
    pub fn terminate(&self) {
        self.signal(Signal::SIGTERM);
    }

    /// Sends `sig` to the child alone (e.g. `SIGHUP`: reload).
    pub fn signal(&self, sig: Signal) {
        kill(self.pid(), sig).unwrap_or_else(|e| panic!("{sig} to {}: {e}", self.child.id()));
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// Waits (up to 30 s) until something accepts connections on loopback `port`.
pub fn wait_tcp(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (up to 30 s) until `{url}/readyz` answers (any status); fails with `log` otherwise.
pub async fn wait_answers(http: &reqwest::Client, url: &str, log: &Path) {
    let start = Instant::now();
    while http.get(format!("{url}/readyz")).send().await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{url} did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `check` every 20 ms until it is true; fails the test after `deadline`.
pub async fn eventually<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < deadline,
            "{what}: not within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `sig` to process `pid` that is not a child of this one (a daemon). Refuses pids that
/// would address a group or every process.
///
/// # Errors
/// As `kill(2)` (no such process, not permitted).
pub fn signal_pid(pid: i32, sig: Signal) -> nix::Result<()> {
    assert!(pid > 1, "not a process id: {pid}");
    kill(Pid::from_raw(pid), sig)
}
