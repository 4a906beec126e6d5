//! A throwaway Postfix for end-to-end tests of bounce handling: Debian's real
//! `postfix` package, run as root from a temporary folder that owns its whole
//! instance: main.cf and master.cf, queue, data directory, log (`maillog`)
//! and the bounce Maildir. Its smtpd listens on a free loopback port and
//! relays, without authentication, to `[127.0.0.1]:relay_port` (a test SMTP
//! server), except mail for the bounce domain, which it delivers itself:
//! into a Maildir, or through a pipe command. Nothing under /etc/postfix is
//! changed and the system's Postfix is never started.
//!
//! Its master daemon runs in the foreground as a child of the test, leader
//! of its own process group; dropping [`Postfix`] stops the whole group and
//! removes the folder. Should the test process die without dropping it
//! (SIGKILL, Ctrl-C), a watchdog shell, in a process group of its own too,
//! sees its stdin close and does the same.
#![allow(dead_code)] // each test file uses its own subset

#[path = "daemon.rs"]
mod daemon;
#[path = "skip.rs"]
mod skip;

use std::io::Read;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use daemon::{Guarded, free_port, is_root, poll_until};

const POSTFIX: &str = "/usr/sbin/postfix";
const MASTER: &str = "/usr/lib/postfix/sbin/master";
/// The local part whose mailbox gets the bounce domain's mail; with
/// `recipient_delimiter = +`, `bounces+TOKEN@domain` lands there too.
const BOUNCE_MAILBOX: &str = "bounces";
/// The master.cf service that pipes the bounce domain's mail to a command.
const PIPE_SERVICE: &str = "bouncepipe";
const POLL: Duration = Duration::from_millis(20);

/// How mail for the bounce domain is delivered.
#[derive(Debug, Clone)]
pub enum BounceDelivery {
    /// virtual(8) writes it into [`Postfix::maildir`] (files owned by nobody).
    Maildir,
    /// pipe(8) runs `command` (an argv, taken literally, as user nobody) once
    /// per message, with the message on stdin and `Return-Path:`,
    /// `Delivered-To:` (the VERP address) and `X-Original-To:` prepended.
    /// Exit status per sysexits: 0 delivered, 75 deferred (Postfix retries
    /// within 1 to 2 s), others bounce.
    Pipe { command: Vec<String> },
}

/// A running Postfix instance; dropping it stops it and removes its folder.
pub struct Postfix {
    /// Its smtpd, on 127.0.0.1: relays for 127.0.0.0/8 without authentication.
    pub smtp_port: u16,
    /// The bounce mailbox, a Maildir (`new/` holds what was delivered).
    pub maildir: PathBuf,
    daemon: Guarded,
    dir: tempfile::TempDir,
}

impl Postfix {
    /// Starts an instance relaying to `[127.0.0.1]:relay_port` and keeping mail
    /// for `bounce_domain`. None (with a printed reason) when Postfix is not
    /// installed or we are not root; panics instead when the environment sets
    /// `SHORTS_REQUIRE_POSTFIX`, or when Postfix does not come up.
    pub fn start(
        relay_port: u16,
        bounce_domain: &str,
        delivery: BounceDelivery,
    ) -> Option<Postfix> {
        Postfix::start_with(relay_port, bounce_domain, delivery, &[])
    }

    /// [`Postfix::start`] with extra main.cf settings, which override the
    /// harness's: e.g. `("maximal_queue_lifetime", "0")` bounces a deferred
    /// message at its first retry instead of after an hour.
    pub fn start_with(
        relay_port: u16,
        bounce_domain: &str,
        delivery: BounceDelivery,
        main_cf: &[(&str, &str)],
    ) -> Option<Postfix> {
        if let Some(reason) = unavailable() {
            skip::skip("SHORTS_REQUIRE_POSTFIX", &reason);
            return None;
        }
        let instance = Instance {
            relay_port,
            bounce_domain,
            delivery: &delivery,
            main_cf,
        };
        // The port is free when picked but could be taken before master binds
        // it: then master exits, and another port is tried.
        let mut failures = Vec::new();
        for _ in 0..3 {
            match instance.launch() {
                Ok(postfix) => return Some(postfix),
                Err(failure) => {
                    eprintln!("Postfix did not start, trying again: {failure}");
                    failures.push(failure);
                }
            }
        }
        panic!("Postfix did not start:\n{}", failures.join("\n---\n"));
    }

    /// Waits until no message is queued (maildrop, incoming, active, deferred
    /// or hold), polling the queue folders; false if some still are after
    /// `timeout`.
    pub fn wait_for_empty_queue(&self, timeout: Duration) -> bool {
        poll_until(timeout, || self.queued() == 0)
    }

    /// Waits for the queue to drain, failing with Postfix's log if it does not.
    pub fn drain(&self, timeout: Duration) {
        assert!(
            self.wait_for_empty_queue(timeout),
            "{} messages still queued after {timeout:?}:\n{}",
            self.queued(),
            self.log()
        );
    }

    /// How many messages are in the queue.
    pub fn queued(&self) -> usize {
        ["maildrop", "incoming", "active", "deferred", "hold"]
            .iter()
            .map(|queue| count_files(&self.queue_dir().join(queue)))
            .sum()
    }

    /// The messages delivered to the bounce mailbox so far (Maildir `new/`),
    /// oldest first (Maildir names start with the delivery time).
    pub fn bounce_messages(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new(); // nothing delivered yet: virtual creates it
        };
        let mut messages: Vec<PathBuf> = entries
            .map(|entry| entry.expect("read the bounce Maildir").path())
            .collect();
        messages.sort();
        messages
    }

    /// The instance's config_directory, for Postfix's own commands (as root):
    /// `postqueue -c DIR -p` lists its queue, `postqueue -c DIR -f` flushes it.
    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    /// Postfix's log so far, for failure messages.
    pub fn log(&self) -> String {
        read_log(self.dir.path())
    }

    fn queue_dir(&self) -> PathBuf {
        self.dir.path().join("queue")
    }

    /// Waits until smtpd greets with 220; the error has the log.
    fn wait_until_listening(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.daemon.master.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("master exited ({status}):\n{}", self.log()));
            }
            if greets(self.smtp_port) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("no SMTP greeting in {timeout:?}:\n{}", self.log()));
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        self.daemon.stop("Postfix master");
    }
}

/// Why Postfix cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    if !Path::new(POSTFIX).exists() || !Path::new(MASTER).exists() {
        return Some(format!(
            "{POSTFIX} is missing: the Postfix test needs Debian's postfix \
             (apt install postfix); .ci/run installs it"
        ));
    }
    if !is_root() {
        return Some("the Postfix test must run as root (Postfix's master does)".to_string());
    }
    None
}

/// What one instance is made of.
struct Instance<'a> {
    relay_port: u16,
    bounce_domain: &'a str,
    delivery: &'a BounceDelivery,
    main_cf: &'a [(&'a str, &'a str)],
}

impl Instance<'_> {
    /// A fresh folder and port, Postfix's queue folders, and a running master.
    fn launch(&self) -> Result<Postfix, String> {
        let dir = tempfile::Builder::new()
            .prefix("shorts-postfix.")
            .tempdir()
            .map_err(|e| format!("temporary folder: {e}"))?;
        let root = dir.path();
        let smtp_port = free_port();
        make_folders(root)?;
        let etc = root.join("etc");
        write(&etc.join("main.cf"), &self.main_cf(root))?;
        write(&etc.join("master.cf"), &self.master_cf(smtp_port))?;
        let daemon = Guarded::start(root, || spawn_master(root))?;
        let mut postfix = Postfix {
            smtp_port,
            maildir: root.join("mail").join(BOUNCE_MAILBOX),
            daemon,
            dir,
        };
        postfix.wait_until_listening(Duration::from_secs(30))?;
        Ok(postfix)
    }

    fn main_cf(&self, root: &Path) -> String {
        let root = root.display();
        let domain = self.bounce_domain;
        let (uid, gid) = user("nobody");
        let base = [
            ("compatibility_level", "3.6".to_string()),
            ("queue_directory", format!("{root}/queue")),
            ("data_directory", format!("{root}/data")),
            ("mail_owner", "postfix".to_string()),
            ("setgid_group", "postdrop".to_string()),
            // No syslog in containers: postlogd writes here instead.
            ("maillog_file", format!("{root}/maillog")),
            ("maillog_file_prefixes", root.to_string()),
            ("inet_interfaces", "127.0.0.1".to_string()),
            ("inet_protocols", "ipv4".to_string()),
            ("myhostname", "postfix.test".to_string()),
            ("mydestination", String::new()),
            ("alias_maps", String::new()),
            ("alias_database", String::new()),
            ("mynetworks", "127.0.0.0/8".to_string()),
            ("smtpd_peername_lookup", "no".to_string()),
            ("smtpd_error_sleep_time", "0".to_string()),
            ("in_flow_delay", "0".to_string()),
            ("relayhost", format!("[127.0.0.1]:{}", self.relay_port)),
            ("smtp_tls_security_level", "none".to_string()),
            ("smtpd_tls_security_level", "none".to_string()),
            // No postmaster notices: they would be relayed to the test server.
            ("notify_classes", String::new()),
            ("recipient_delimiter", "+".to_string()),
            ("virtual_mailbox_domains", domain.to_string()),
            ("virtual_mailbox_base", format!("{root}/mail")),
            (
                "virtual_mailbox_maps",
                format!("inline:{{ {BOUNCE_MAILBOX}@{domain}={BOUNCE_MAILBOX}/ }}"),
            ),
            ("virtual_uid_maps", format!("static:{uid}")),
            ("virtual_gid_maps", format!("static:{gid}")),
            // Retries in 1 to 2 s. Not a backoff of 1s: qmgr takes deferred
            // messages dated up to 1 s ahead, so a scan right after a
            // deferral could find the message still locked by its delivery
            // agent, and qmgr then sets it aside for 60 s ("skipped, still
            // being delivered"), one run in 30.
            ("queue_run_delay", "1s".to_string()),
            ("minimal_backoff_time", "2s".to_string()),
            ("maximal_backoff_time", "4s".to_string()),
            ("maximal_queue_lifetime", "1h".to_string()),
            ("bounce_queue_lifetime", "1h".to_string()),
            ("delay_warning_time", "0".to_string()),
        ];
        let mut settings: Vec<(String, String)> = base
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect();
        if let BounceDelivery::Pipe { .. } = self.delivery {
            let transport = format!("inline:{{ {domain}={PIPE_SERVICE}: }}");
            settings.push(("transport_maps".to_string(), transport));
            // pipe's D flag (Delivered-To:) needs one recipient per delivery.
            let limit = format!("{PIPE_SERVICE}_destination_recipient_limit");
            settings.push((limit, "1".to_string()));
        }
        for (name, value) in self.main_cf {
            settings.push((name.to_string(), value.to_string()));
        }
        dedup_last_wins(settings)
            .iter()
            .map(|(name, value)| format!("{name} = {value}\n"))
            .collect()
    }

    /// The services used, none chrooted, smtpd on 127.0.0.1:`smtp_port`.
    fn master_cf(&self, smtp_port: u16) -> String {
        let mut services = format!(
            "127.0.0.1:{smtp_port} inet n - n - - smtpd\n\
             pickup unix n - n 60 1 pickup\n\
             cleanup unix n - n - 0 cleanup\n\
             qmgr unix n - n 300 1 qmgr\n\
             rewrite unix - - n - - trivial-rewrite\n\
             bounce unix - - n - 0 bounce\n\
             defer unix - - n - 0 bounce\n\
             trace unix - - n - 0 bounce\n\
             verify unix - - n - 1 verify\n\
             flush unix n - n 1000? 0 flush\n\
             proxymap unix - - n - - proxymap\n\
             smtp unix - - n - - smtp\n\
             relay unix - - n - - smtp\n\
             showq unix n - n - - showq\n\
             error unix - - n - - error\n\
             retry unix - - n - - error\n\
             discard unix - - n - - discard\n\
             local unix - n n - - local\n\
             virtual unix - n n - - virtual\n\
             anvil unix - - n - 1 anvil\n\
             scache unix - - n - 1 scache\n\
             postlog unix-dgram n - n - 1 postlogd\n"
        );
        if let BounceDelivery::Pipe { command } = self.delivery {
            services.push_str(&format!(
                "{PIPE_SERVICE} unix - n n - - pipe\n  flags=DORq user=nobody argv={}\n",
                pipe_argv(command)
            ));
        }
        services
    }
}

/// `command` as pipe(8)'s argv: `$` doubled so that pipe expands nothing,
/// arguments with spaces in `{ }` (master.cf's quoting).
fn pipe_argv(command: &[String]) -> String {
    assert!(!command.is_empty(), "BounceDelivery::Pipe needs a command");
    command
        .iter()
        .map(|arg| {
            assert!(
                !arg.contains(['{', '}', '\n']) && arg.trim() == arg && !arg.is_empty(),
                "pipe argument {arg:?}: no braces, newlines or outer spaces"
            );
            let arg = arg.replace('$', "$$");
            if arg.contains(char::is_whitespace) {
                format!("{{ {arg} }}")
            } else {
                arg
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Settings in order, each name once, with its last value.
fn dedup_last_wins(settings: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut kept: Vec<(String, String)> = Vec::new();
    for (name, value) in settings {
        match kept.iter_mut().find(|(kept_name, _)| *kept_name == name) {
            Some(slot) => slot.1 = value,
            None => kept.push((name, value)),
        }
    }
    kept
}

/// The folders Postfix insists on, as /etc/postfix/postfix-files makes
/// them (`postfix check` would, but its post-install takes 1-3 s): path under
/// the instance, owned by `postfix` (else root), group `postdrop` (else
/// root), mode.
const FOLDERS: &[(&str, bool, bool, u32)] = &[
    ("data", true, false, 0o700),
    ("queue/active", true, false, 0o700),
    ("queue/bounce", true, false, 0o700),
    ("queue/corrupt", true, false, 0o700),
    ("queue/defer", true, false, 0o700),
    ("queue/deferred", true, false, 0o700),
    ("queue/flush", true, false, 0o700),
    ("queue/hold", true, false, 0o700),
    ("queue/incoming", true, false, 0o700),
    ("queue/private", true, false, 0o700),
    ("queue/maildrop", true, true, 0o730),
    ("queue/public", true, true, 0o710),
    ("queue/pid", false, false, 0o755),
    ("queue/saved", true, false, 0o700),
    ("queue/trace", true, false, 0o700),
];

/// The instance's folder tree: everyone may enter the root (virtual and
/// pipe run as nobody), `etc/` and `queue/` are root's, `mail/` is nobody's
/// and the rest as in [`FOLDERS`].
fn make_folders(root: &Path) -> Result<(), String> {
    make_folder(root, None, None, 0o755)?;
    make_folder(&root.join("etc"), Some(0), Some(0), 0o755)?;
    make_folder(&root.join("queue"), Some(0), Some(0), 0o755)?;
    let (nobody_uid, nobody_gid) = user("nobody");
    make_folder(
        &root.join("mail"),
        Some(nobody_uid),
        Some(nobody_gid),
        0o755,
    )?;
    let (postfix_uid, _) = user("postfix");
    let postdrop_gid = group("postdrop");
    for &(path, by_postfix, for_postdrop, mode) in FOLDERS {
        let uid = if by_postfix { postfix_uid } else { 0 };
        let gid = if for_postdrop { postdrop_gid } else { 0 };
        make_folder(&root.join(path), Some(uid), Some(gid), mode)?;
    }
    Ok(())
}

/// Creates `path` (unless it exists) with that owner and mode.
fn make_folder(path: &Path, uid: Option<u32>, gid: Option<u32>, mode: u32) -> Result<(), String> {
    let fail = |what: &str, e: std::io::Error| format!("{what} {}: {e}", path.display());
    if !path.exists() {
        std::fs::create_dir(path).map_err(|e| fail("mkdir", e))?;
    }
    std::os::unix::fs::chown(path, uid, gid).map_err(|e| fail("chown", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| fail("chmod", e))
}

/// `master -c ROOT/etc -d`: in the foreground, leader of a new process group.
fn spawn_master(root: &Path) -> Result<Child, String> {
    let etc = root.join("etc");
    Command::new(MASTER)
        .arg("-c")
        .arg(&etc)
        .arg("-d")
        .env("MAIL_CONFIG", &etc)
        .current_dir(root)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start {MASTER}: {e}"))
}

/// Whether something on 127.0.0.1:`port` answers with an SMTP greeting.
fn greets(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut greeting = [0u8; 4];
    stream.read_exact(&mut greeting).is_ok() && greeting.starts_with(b"220")
}

/// Regular files under `dir`, at any depth (deferred/ hashes into subfolders).
fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => count_files(&entry.path()),
            Ok(kind) if kind.is_file() => 1,
            _ => 0,
        })
        .sum()
}

/// A user's uid and gid, from /etc/passwd.
fn user(name: &str) -> (u32, u32) {
    let fields = entry("/etc/passwd", name);
    (id(&fields, 2), id(&fields, 3))
}

/// A group's gid, from /etc/group.
fn group(name: &str) -> u32 {
    id(&entry("/etc/group", name), 2)
}

/// The fields of `name`'s line in a passwd-like `file`.
fn entry(file: &str, name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("read {file}: {e}"));
    let line = text
        .lines()
        .find(|line| line.split(':').next() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in {file}: is Postfix installed?"));
    line.split(':').map(str::to_string).collect()
}

fn id(fields: &[String], index: usize) -> u32 {
    fields
        .get(index)
        .and_then(|field| field.parse().ok())
        .unwrap_or_else(|| panic!("no numeric id in field {index} of {fields:?}"))
}

/// Writes a configuration file dated 2000: Postfix rereads a main.cf
/// changed in the last second or two every 300 ms until it is older (1.5 s
/// at every start otherwise).
fn write(path: &Path, text: &str) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("write {}: {e}", path.display());
    std::fs::write(path, text).map_err(fail)?;
    let y2k = std::time::UNIX_EPOCH + Duration::from_secs(946_684_800);
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(y2k))
        .map_err(fail)
}

fn read_log(root: &Path) -> String {
    std::fs::read_to_string(root.join("maillog")).unwrap_or_else(|e| format!("(no maillog: {e})"))
}
