//! The README's exit-code table, row by row, for every command that can hit
//! each row: 0 success, 1 problems in the input, 2 a bad command line, 3 the
//! work failed, 73 the lock is held, 75 a temporary failure.

mod common;
#[path = "common/smtp.rs"]
mod smtp;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{append_config, shorts_at, site_from, stderr};

/// A Monday just after the fixture's first weekly slot, with two shorts due.
const MONDAY: &str = "2026-06-08T09:00:00Z";

const DIGEST: &str = r#"
[digest]
schedule = "0 8 * * MON"
from = "Fixture Digest <digest@example.com>"
postal_address = "Fixture Ltd, 1 Test Street, Testville"
"#;

/// One row of the table for one command: how to break the site, what to
/// run, what it must exit with, and what stderr must say.
struct Case {
    name: &'static str,
    setup: fn(&Path),
    args: &'static [&'static str],
    code: i32,
    says: &'static str,
}

fn nothing(_: &Path) {}

fn with_digest(site: &Path) {
    append_config(site, DIGEST);
}

fn with_subscriber(site: &Path) {
    with_digest(site);
    let out = shorts_at(site, MONDAY, &["subscribers", "add", "ada@example.com"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn with_maildir(site: &Path) {
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(site.join("Maildir").join(sub)).unwrap();
    }
}

fn with_csv(site: &Path) {
    std::fs::write(site.join("people.csv"), "email,name\nbob@example.com,Bob\n").unwrap();
}

fn with_bad_short(site: &Path) {
    std::fs::write(
        site.join("content/shorts/broken.md"),
        "+++\ntitle = \"Broken\"\ndate = 2026-06-01\nsummary = \"x\"\ntrack = \"nope\"\n+++\nBody\n",
    )
    .unwrap();
}

fn with_unknown_variable(site: &Path) {
    std::fs::create_dir_all(site.join("templates")).unwrap();
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/short.html");
    let text = std::fs::read_to_string(built_in).unwrap();
    // Line 6 of the built-in short.html names `short.date_iso`.
    let broken = text.replacen("short.date_iso", "short.no_such_variable", 1);
    assert_ne!(broken, text);
    std::fs::write(site.join("templates/short.html"), broken).unwrap();
}

fn with_unknown_digest_variable(site: &Path) {
    with_digest(site);
    std::fs::create_dir_all(site.join("templates")).unwrap();
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/digest.txt");
    let text = std::fs::read_to_string(built_in).unwrap();
    // Line 13 of the built-in digest.txt names `short.title`.
    let broken = text.replacen("short.title", "short.titel", 1);
    assert_ne!(broken, text);
    std::fs::write(site.join("templates/digest.txt"), broken).unwrap();
}

fn with_unknown_column(site: &Path) {
    std::fs::write(site.join("people.csv"), "email,nmae\nbob@example.com,Bob\n").unwrap();
}

fn with_unset_password(site: &Path) {
    with_subscriber(site);
    append_config(
        site,
        "[delivery]\ntransport = \"smtp\"\n[delivery.smtp]\nhost = \"127.0.0.1\"\nport = 2525\ntls = \"none\"\nusername = \"digest\"\npassword_env = \"SHORTS_TEST_UNSET_PASSWORD\"\n",
    );
}

fn with_port_bind(site: &Path) {
    append_config(site, "[server]\nbind = \"8081\"\n");
}

/// A path under a regular file can never be created, even by root.
fn with_output_under_a_file(site: &Path) {
    std::fs::write(site.join("blocker"), "a file, not a folder").unwrap();
    common::edit_config(
        site,
        "[site]",
        "[build]\noutput_dir = \"blocker/public\"\n\n[site]",
    );
}

fn with_preview_under_a_file(site: &Path) {
    with_digest(site);
    std::fs::write(site.join("blocker"), "a file, not a folder").unwrap();
    common::edit_config(
        site,
        "[site]",
        "[build]\npreview_dir = \"blocker/preview\"\n\n[site]",
    );
}

fn with_database_under_a_file(site: &Path) {
    std::fs::write(site.join("blocker"), "a file, not a folder").unwrap();
    common::edit_config(
        site,
        "[site]",
        "[build]\ndatabase = \"blocker/shorts.db\"\n\n[site]",
    );
}

fn with_smtp_down(site: &Path) {
    with_smtp(site, common::unused_port(), "tls = \"none\"");
}

/// `[delivery]` through the SMTP server on loopback `port`; `smtp` adds keys.
fn with_smtp(site: &Path, port: u16, smtp: &str) {
    with_subscriber(site);
    append_config(
        site,
        &format!(
            "[delivery]\ntransport = \"smtp\"\n[delivery.smtp]\nhost = \"127.0.0.1\"\nport = {port}\nattempts = 2\nbackoff_ms = 10\n{smtp}\n"
        ),
    );
}

fn with_missing_ca_file(site: &Path) {
    with_smtp(site, 2525, "ca_file = \"certs/relay-ca.pem\"");
}

/// A relay whose certificate a CA signed that nothing trusts here.
fn with_untrusted_relay(site: &Path) {
    let server = smtp::SmtpServer::start_tls("localhost");
    with_smtp(site, server.port, "tls = \"starttls\"");
}

/// A server answering every RCPT with 451, and a streak of one stops the run.
fn with_deferring_relay(site: &Path) {
    let server = smtp::SmtpServer::start();
    server.refuse_all(451);
    with_smtp(
        site,
        server.port,
        "tls = \"none\"\nmax_consecutive_failures = 1",
    );
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    // 0: success
    Case { name: "check", setup: nothing, args: &["check"], code: 0, says: "" },
    Case { name: "build", setup: nothing, args: &["build"], code: 0, says: "" },
    Case { name: "publish", setup: with_subscriber, args: &["publish"], code: 0, says: "" },
    Case { name: "digest preview", setup: with_digest, args: &["digest", "preview"], code: 0, says: "" },
    Case { name: "digest send", setup: with_subscriber, args: &["digest", "send"], code: 0, says: "" },
    Case { name: "digest send --dry-run", setup: with_subscriber, args: &["digest", "send", "--dry-run"], code: 0, says: "" },
    Case { name: "subscribers add", setup: nothing, args: &["subscribers", "add", "bob@example.com"], code: 0, says: "" },
    Case { name: "subscribers remove", setup: with_subscriber, args: &["subscribers", "remove", "ada@example.com"], code: 0, says: "" },
    Case { name: "subscribers list", setup: with_subscriber, args: &["subscribers", "list"], code: 0, says: "" },
    Case { name: "subscribers import", setup: with_csv, args: &["subscribers", "import", "people.csv"], code: 0, says: "" },
    Case { name: "subscribers export", setup: with_subscriber, args: &["subscribers", "export"], code: 0, says: "" },
    Case { name: "--help", setup: nothing, args: &["--help"], code: 0, says: "" },
    Case { name: "subscribers show", setup: with_subscriber, args: &["subscribers", "show", "ada@example.com"], code: 0, says: "" },
    Case { name: "digest status", setup: with_subscriber, args: &["digest", "status"], code: 0, says: "" },
    Case { name: "inbound, an empty message on stdin", setup: nothing, args: &["inbound"], code: 0, says: "" },
    Case { name: "inbound --maildir", setup: with_maildir, args: &["inbound", "--maildir", "Maildir"], code: 0, says: "" },
    // 1: problems in config, content, templates or a CSV file
    Case { name: "check, bad short", setup: with_bad_short, args: &["check"], code: 1, says: "content/shorts/broken.md:5: unknown track" },
    Case { name: "build, bad short", setup: with_bad_short, args: &["build"], code: 1, says: "content/shorts/broken.md:5:" },
    Case { name: "publish, bad short", setup: with_bad_short, args: &["publish"], code: 1, says: "content/shorts/broken.md:5:" },
    Case { name: "digest send, bad short", setup: |s| { with_subscriber(s); with_bad_short(s) }, args: &["digest", "send"], code: 1, says: "content/shorts/broken.md:5:" },
    Case { name: "check, unknown template variable", setup: with_unknown_variable, args: &["check"], code: 1, says: "templates/short.html:6: cannot render" },
    Case { name: "check, unknown digest template variable", setup: with_unknown_digest_variable, args: &["check"], code: 1, says: "templates/digest.txt:13: cannot render" },
    Case { name: "build, unknown template variable", setup: with_unknown_variable, args: &["build"], code: 1, says: "no_such_variable" },
    Case { name: "digest preview without [digest]", setup: nothing, args: &["digest", "preview"], code: 1, says: "no [digest] section" },
    Case { name: "digest send without [digest]", setup: nothing, args: &["digest", "send"], code: 1, says: "no [digest] section" },
    Case { name: "subscribers add, bad address", setup: nothing, args: &["subscribers", "add", "not-an-address"], code: 1, says: "is not an email address" },
    Case { name: "subscribers import, unknown column", setup: with_unknown_column, args: &["subscribers", "import", "people.csv"], code: 1, says: "people.csv:1: unknown column \"nmae\"" },
    Case { name: "subscribers import, missing file", setup: nothing, args: &["subscribers", "import", "nobody.csv"], code: 1, says: "nobody.csv: cannot read this file" },
    Case { name: "check, password_env unset", setup: with_unset_password, args: &["check"], code: 1, says: "SHORTS_TEST_UNSET_PASSWORD" },
    Case { name: "digest send, password_env unset", setup: with_unset_password, args: &["digest", "send"], code: 1, says: "SHORTS_TEST_UNSET_PASSWORD" },
    Case { name: "publish, password_env unset", setup: with_unset_password, args: &["publish"], code: 1, says: "SHORTS_TEST_UNSET_PASSWORD" },
    Case { name: "check, ca_file missing", setup: with_missing_ca_file, args: &["check"], code: 1, says: "`delivery.smtp.ca_file`: cannot read certs/relay-ca.pem" },
    Case { name: "digest send, ca_file missing", setup: with_missing_ca_file, args: &["digest", "send"], code: 1, says: "`delivery.smtp.ca_file`" },
    Case { name: "check --smtp, certificate not trusted", setup: with_untrusted_relay, args: &["check", "--smtp"], code: 1, says: "certificate is not trusted" },
    Case { name: "serve, [server] bind without a port", setup: with_port_bind, args: &["serve"], code: 1, says: "`server.bind`" },
    Case { name: "schedule, bad config", setup: with_port_bind, args: &["schedule"], code: 1, says: "`server.bind`" },
    Case { name: "subscribers show, unknown address", setup: nothing, args: &["subscribers", "show", "nobody@example.com"], code: 1, says: "is not a subscriber and has no history" },
    Case { name: "digest status, no such digest", setup: with_subscriber, args: &["digest", "status", "9"], code: 1, says: "there is no digest 9" },
    Case { name: "inbound --maildir, bad config", setup: with_port_bind, args: &["inbound", "--maildir", "Maildir"], code: 1, says: "`server.bind`" },
    // 2: the command line is wrong
    Case { name: "unknown command", setup: nothing, args: &["frobnicate"], code: 2, says: "unrecognized subcommand" },
    Case { name: "digest send --period yesterday", setup: with_digest, args: &["digest", "send", "--period", "yesterday"], code: 2, says: "expected a date like 2026-06-08" },
    Case { name: "digest preview --period yesterday", setup: with_digest, args: &["digest", "preview", "--period", "yesterday"], code: 2, says: "expected a date like 2026-06-08" },
    Case { name: "serve --bind 8081", setup: nothing, args: &["serve", "--bind", "8081"], code: 2, says: "expected HOST:PORT" },
    Case { name: "digest preview --subscriber unknown", setup: with_digest, args: &["digest", "preview", "--subscriber", "nobody@example.com"], code: 2, says: "no such subscriber" },
    // 3: the input is fine but the work failed
    Case { name: "build, output not writable", setup: with_output_under_a_file, args: &["build"], code: 3, says: "blocker" },
    Case { name: "publish, output not writable", setup: with_output_under_a_file, args: &["publish"], code: 3, says: "blocker" },
    Case { name: "digest preview, folder not writable", setup: with_preview_under_a_file, args: &["digest", "preview"], code: 3, says: "blocker" },
    Case { name: "subscribers list, database not creatable", setup: with_database_under_a_file, args: &["subscribers", "list"], code: 3, says: "blocker" },
    Case { name: "inbound --maildir, not a Maildir", setup: nothing, args: &["inbound", "--maildir", "content"], code: 3, says: "not a Maildir" },
    Case { name: "digest send, certificate not trusted", setup: with_untrusted_relay, args: &["digest", "send"], code: 3, says: "set `ca_file` in [delivery.smtp]" },
    Case { name: "publish, certificate not trusted", setup: with_untrusted_relay, args: &["publish"], code: 3, says: "certificate is not trusted" },
    // 75: a temporary failure
    Case { name: "digest send, SMTP down", setup: with_smtp_down, args: &["digest", "send"], code: 75, says: "1 delivery waits for the next run" },
    Case { name: "publish, SMTP down", setup: with_smtp_down, args: &["publish"], code: 75, says: "1 delivery waits for the next run" },
    Case { name: "digest send, server deferring everyone", setup: with_deferring_relay, args: &["digest", "send"], code: 75, says: "deferred 1 message in a row" },
    // From stdin every failure is temporary, so that the mail server keeps the message.
    Case { name: "inbound, bad config", setup: with_port_bind, args: &["inbound"], code: 75, says: "`server.bind`" },
    Case { name: "inbound, database not creatable", setup: with_database_under_a_file, args: &["inbound"], code: 75, says: "blocker" },
];

#[test]
fn every_row_of_the_exit_code_table() {
    let mut wrong = Vec::new();
    for case in CASES {
        let site = site_from("site");
        (case.setup)(site.path());
        let out = shorts_at(site.path(), MONDAY, case.args);
        let err = stderr(&out);
        if out.status.code() != Some(case.code) || !err.contains(case.says) {
            wrong.push(format!(
                "{}: exit {:?}, expected {} with {:?} on stderr; stderr:\n{err}",
                case.name,
                out.status.code(),
                case.code,
                case.says
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// 73: every command that takes the run lock, while this process holds it.
#[test]
fn a_held_lock_is_exit_73_for_every_command_that_takes_it() {
    let site = site_from("site");
    with_subscriber(site.path());
    let _held = shorts::lock::RunLock::acquire(&site.path().join("data")).expect("lock");
    for args in [&["build"][..], &["publish"], &["digest", "send"]] {
        let out = shorts_at(site.path(), MONDAY, args);
        assert_eq!(out.status.code(), Some(73), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("holds"), "{args:?}: {}", stderr(&out));
    }
}

/// 0 for the long-running commands: they stop cleanly on SIGTERM.
#[test]
fn serve_and_schedule_exit_0_on_sigterm() {
    for args in [&["serve", "--bind", "127.0.0.1:0"][..], &["schedule"]] {
        let site = site_from("site");
        with_digest(site.path());
        let child = Command::new(env!("CARGO_BIN_EXE_shorts"))
            .args(args)
            .current_dir(site.path())
            .env("SHORTS_NOW", MONDAY)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start shorts");
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(killed.success());
        let out = child.wait_with_output().expect("wait for shorts");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
}
