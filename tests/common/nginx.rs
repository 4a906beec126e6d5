//! A throwaway nginx for end-to-end tests through a real reverse proxy:
//! Debian's `nginx` package, run from a temporary folder that owns its whole
//! instance: nginx.conf, pid and lock files, error and access logs and every
//! `*_temp_path`. It listens on a free port of 127.0.0.1 and proxies `/` to
//! `127.0.0.1:upstream_port` with the `location` block of the README's
//! "`shorts serve`" section, read from README.md, so the test proxies exactly
//! as the README tells readers to. Nothing under /etc/nginx is read or
//! changed and the system's nginx is never started.
//!
//! Its master runs in the foreground (`daemon off`) as a child of the test,
//! leader of its own process group, with one worker (as `nobody` when the
//! test runs as root). Dropping [`Nginx`] stops the whole group (SIGTERM,
//! then SIGKILL) and removes the folder. Should the test process die without
//! dropping it (SIGKILL, Ctrl-C), a watchdog shell, in a process group of
//! its own too, sees its stdin close and does the same.
#![allow(dead_code)] // each test file uses its own subset

#[path = "daemon.rs"]
mod daemon;
#[path = "skip.rs"]
mod skip;

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use daemon::{Guarded, free_port, is_root, poll_until};

const NGINX: &str = "/usr/sbin/nginx";
/// The upstream address in the README's snippet, replaced by the test's.
const README_UPSTREAM: &str = "proxy_pass http://127.0.0.1:8080;";

/// A running nginx; dropping it stops it and removes its folder.
pub struct Nginx {
    /// Where it listens, on 127.0.0.1.
    pub port: u16,
    daemon: Guarded,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts an instance proxying to `127.0.0.1:upstream_port`, and waits
    /// until it accepts connections. None (with a printed reason) when nginx
    /// is not installed; panics instead when the environment sets
    /// `SHORTS_REQUIRE_NGINX`, or when nginx does not come up.
    pub fn start(upstream_port: u16) -> Option<Nginx> {
        let location = readme_location(&format!("127.0.0.1:{upstream_port}"));
        Nginx::start_with(&location, "")
    }

    /// Like [`Nginx::start`], but balancing round robin (nginx's default)
    /// between several upstreams, `serve` replicas on these ports: the
    /// README's `location` block with `proxy_pass` to an `upstream` of them.
    pub fn start_balancing(upstream_ports: &[u16]) -> Option<Nginx> {
        let servers: String = upstream_ports
            .iter()
            .map(|port| format!("        server 127.0.0.1:{port};\n"))
            .collect();
        let upstream = format!("    upstream shorts_replicas {{\n{servers}    }}\n");
        Nginx::start_with(&readme_location("shorts_replicas"), &upstream)
    }

    fn start_with(location: &str, upstream: &str) -> Option<Nginx> {
        if !Path::new(NGINX).exists() {
            let reason = format!(
                "{NGINX} is missing: the proxy tests need Debian's nginx \
                 (apt install nginx); .ci/run installs it"
            );
            skip::skip("SHORTS_REQUIRE_NGINX", &reason);
            return None;
        }
        // The port is free when picked but could be taken before nginx binds
        // it: then nginx exits, and another port is tried.
        let mut failures = Vec::new();
        for _ in 0..3 {
            match launch(location, upstream) {
                Ok(nginx) => return Some(nginx),
                Err(failure) => {
                    eprintln!("nginx did not start, trying again: {failure}");
                    failures.push(failure);
                }
            }
        }
        panic!("nginx did not start:\n{}", failures.join("\n---\n"));
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The access log once it has `lines` lines (or after 5 s): one per
    /// request, `$remote_addr`, the request line, the status, the
    /// `X-Forwarded-For` the client sent and the upstream that answered. nginx writes a request's line after
    /// its response went out, so a client can be ahead of the log.
    pub fn access_log(&self, lines: usize) -> String {
        let path = self.dir.path().join("access.log");
        poll_until(Duration::from_secs(5), || {
            std::fs::read_to_string(&path).is_ok_and(|log| log.lines().count() >= lines)
        });
        read(&path)
    }

    /// nginx's error log and what it printed before opening it.
    pub fn logs(&self) -> String {
        logs(self.dir.path())
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.daemon.stop("nginx");
    }
}

/// The README's `location / { … }` block for nginx, proxying to `upstream`
/// (`HOST:PORT`, or the name of an `upstream` block) instead of the
/// documented 127.0.0.1:8080.
fn readme_location(upstream: &str) -> String {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&readme).expect("read README.md");
    let section = readme
        .split("\n## `shorts serve`")
        .nth(1)
        .expect("README.md has a \"## `shorts serve`\" section");
    let snippet = section
        .split("```nginx\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the serve section of README.md has an nginx snippet");
    assert_eq!(
        snippet.matches(README_UPSTREAM).count(),
        1,
        "the README's nginx snippet has no {README_UPSTREAM:?}:\n{snippet}"
    );
    snippet.replace(README_UPSTREAM, &format!("proxy_pass http://{upstream};"))
}

/// A fresh folder, port and configuration, and a running nginx.
fn launch(location: &str, upstream: &str) -> Result<Nginx, String> {
    let dir = tempfile::Builder::new()
        .prefix("shorts-nginx.")
        .tempdir()
        .map_err(|e| format!("temporary folder: {e}"))?;
    let root = dir.path();
    // The worker (nobody, when we are root) goes in to its temp folders,
    // which the master creates and hands to it.
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod {}: {e}", root.display()))?;
    let port = free_port();
    let conf = root.join("nginx.conf");
    std::fs::write(&conf, config(root, port, location, upstream)?)
        .map_err(|e| format!("write {}: {e}", conf.display()))?;
    let daemon = Guarded::start(root, || spawn_master(root))?;
    let mut nginx = Nginx { port, daemon, dir };
    wait_until_listening(&mut nginx, Duration::from_secs(10))?;
    Ok(nginx)
}

/// nginx.conf: everything in `root`, one worker, `location` as the only
/// route of a server on 127.0.0.1:`port`, and `upstream` (an `upstream`
/// block, or nothing) beside it.
fn config(root: &Path, port: u16, location: &str, upstream: &str) -> Result<String, String> {
    let root = root
        .to_str()
        .filter(|root| !root.contains(|c: char| c.is_whitespace() || ";{}'\"$#".contains(c)))
        .ok_or("a temporary folder name nginx.conf can hold unquoted")?;
    // As root, the master switches its worker to an unprivileged user; with
    // no `user`, nginx would look for a group named "nobody", which Debian
    // calls nogroup.
    let user = if is_root() {
        format!("user nobody {};\n", nobody_group())
    } else {
        String::new()
    };
    let location = location
        .lines()
        .map(|line| format!("        {line}\n"))
        .collect::<String>();
    Ok(format!(
        "# A throwaway instance for shorts' tests (tests/common/nginx.rs).\n\
         {user}\
         daemon off;\n\
         master_process on;\n\
         worker_processes 1;\n\
         pid {root}/nginx.pid;\n\
         lock_file {root}/nginx.lock;\n\
         error_log {root}/error.log info;\n\
         events {{\n    worker_connections 128;\n}}\n\
         http {{\n\
         \x20   log_format proxied '$remote_addr \"$request\" $status xff=\"$http_x_forwarded_for\" up=$upstream_addr';\n\
         \x20   access_log {root}/access.log proxied;\n\
         \x20   client_body_temp_path {root}/client_body_temp;\n\
         \x20   proxy_temp_path {root}/proxy_temp;\n\
         \x20   fastcgi_temp_path {root}/fastcgi_temp;\n\
         \x20   uwsgi_temp_path {root}/uwsgi_temp;\n\
         \x20   scgi_temp_path {root}/scgi_temp;\n\
         {upstream}\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{port};\n\
         \x20       server_name localhost;\n\
         {location}\
         \x20   }}\n\
         }}\n"
    ))
}

/// `nginx -p ROOT -c ROOT/nginx.conf`: in the foreground (`daemon off`),
/// leader of a new process group, what it prints before its error log is
/// open going to `ROOT/stderr.log`.
fn spawn_master(root: &Path) -> Result<Child, String> {
    let stderr = std::fs::File::create(root.join("stderr.log"))
        .map_err(|e| format!("create stderr.log: {e}"))?;
    Command::new(NGINX)
        .arg("-p")
        .arg(root)
        .arg("-c")
        .arg(root.join("nginx.conf"))
        .current_dir(root)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("start {NGINX}: {e}"))
}

/// Polls until nginx accepts connections on its port; an error with its
/// logs if it exits first or does not within `timeout`.
fn wait_until_listening(nginx: &mut Nginx, timeout: Duration) -> Result<(), String> {
    let port = nginx.port;
    let mut exited = None;
    let listening = poll_until(timeout, || {
        if let Ok(Some(status)) = nginx.daemon.master.try_wait() {
            exited = Some(status);
            return true;
        }
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    match (listening, exited) {
        (true, None) => Ok(()),
        (_, Some(status)) => Err(format!("nginx exited ({status}):\n{}", nginx.logs())),
        (false, None) => Err(format!(
            "nginx not listening on 127.0.0.1:{port} after {timeout:?}:\n{}",
            nginx.logs()
        )),
    }
}

fn logs(root: &Path) -> String {
    format!(
        "{}{}",
        read(&root.join("stderr.log")),
        read(&root.join("error.log"))
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(no {}: {e})\n", path.display()))
}

/// The group of user nobody: Debian's nogroup, elsewhere nobody.
fn nobody_group() -> &'static str {
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    if groups.lines().any(|line| line.starts_with("nogroup:")) {
        "nogroup"
    } else {
        "nobody"
    }
}
