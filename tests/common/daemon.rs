//! What the throwaway Postfix and nginx instances share: a master process
//! in a process group of its own, a watchdog shell that stops that group
//! and removes its folder should the test process die, and the stop that
//! the instance's `Drop` runs. Included by `postfix.rs` and `nginx.rs`.
#![allow(dead_code)] // each harness uses its own subset

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(10);

/// A running master and the watchdog that outlives the test for it.
pub struct Guarded {
    pub master: Child,
    watchdog: Child,
}

impl Guarded {
    /// Starts the watchdog for `root`, then the master with `spawn_master`,
    /// and tells the watchdog the master's process group.
    pub fn start(
        root: &Path,
        spawn_master: impl FnOnce() -> Result<Child, String>,
    ) -> Result<Guarded, String> {
        let mut watchdog = spawn_watchdog(root)?;
        let master = match spawn_master() {
            Ok(master) => master,
            Err(failure) => {
                let _ = watchdog.kill();
                let _ = watchdog.wait();
                return Err(failure);
            }
        };
        let mut guarded = Guarded { master, watchdog };
        let group = guarded.master.id();
        let stdin = guarded
            .watchdog
            .stdin
            .as_mut()
            .expect("the watchdog's stdin");
        writeln!(stdin, "{group}").map_err(|e| format!("arm the watchdog: {e}"))?;
        Ok(guarded)
    }

    /// SIGTERM to the master's process group (the master passes it on to
    /// its children), up to 5 s for the master to exit, then SIGKILL to
    /// whatever is left of the group.
    pub fn stop(&mut self, name: &str) {
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
        let group = format!("-{}", self.master.id());
        signal("TERM", &group);
        let exited = poll_until(Duration::from_secs(5), || {
            matches!(self.master.try_wait(), Ok(Some(_)) | Err(_))
        });
        if !exited {
            eprintln!("{name} ignored SIGTERM for 5 s; killing it");
        }
        signal("KILL", &group);
        let _ = self.master.wait();
    }

    /// Whether the master is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.master.try_wait(), Ok(None))
    }
}

/// A shell, in a process group of its own (Ctrl-C does not reach it), that
/// reads the master's process group from stdin and then waits: stdin
/// closing means the test process died, so it stops that group and removes
/// `root`. (Postfix's master clears a parent-death signal when it switches
/// its effective uid, so `setpriv --pdeathsig` is no help.)
fn spawn_watchdog(root: &Path) -> Result<Child, String> {
    let root = root.to_str().filter(|root| !root.contains('\''));
    let root = root.ok_or("a temporary folder name the shell can quote")?;
    let script = format!(
        "trap '' INT HUP; read -r group || exit; read -r _; \
         kill -s TERM -- -$group; sleep 1; kill -s KILL -- -$group; rm -rf '{root}'"
    );
    Command::new("/bin/sh")
        .args(["-c", &script])
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start the watchdog shell: {e}"))
}

/// `kill -s SIGNAL -- TARGET`, quietly: the target may be gone already.
fn signal(signal: &str, target: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--", target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Polls `done` every 10 ms until it holds or `timeout` passes.
pub fn poll_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// Whether this process runs as root (`/proc/self` belongs to the effective user).
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid()).ok() == Some(0)
}
