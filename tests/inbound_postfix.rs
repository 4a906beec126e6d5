//! The whole loop through Debian's real Postfix: `shorts digest send` relays
//! through Postfix to a test SMTP server that refuses chosen recipients
//! after Postfix accepted their messages, so Postfix itself writes the
//! delivery status notifications and delivers them to the VERP address —
//! piped to `shorts inbound` as Postfix's `pipe` transport runs it (as
//! nobody, with no environment), or into a Maildir that `shorts inbound
//! --maildir` reads. Exactly the refused subscribers change.
//!
//! Skipped, with a message, where Postfix is not installed or the test is
//! not root; `.ci/run` installs it and sets `SHORTS_REQUIRE_POSTFIX=1`.

mod common;
#[path = "common/postfix.rs"]
mod postfix;
#[path = "common/smtp.rs"]
mod smtp;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{stderr, stdout};
use postfix::{BounceDelivery, Postfix};
use shorts::model::SubscriberStatus;
use smtp::SmtpServer;

const DOMAIN: &str = "shorts.example.org";
const WEEK_1: &str = "2026-06-08T08:00:00Z";
const TIMEOUT: Duration = Duration::from_secs(30);
const SUBSCRIBERS: [&str; 4] = [
    "ok@example.net",
    "gone@example.net",
    "busy@example.net",
    "other@example.net",
];

/// The relay behind Postfix: gone@ does not exist (550 5.1.1), busy@ is
/// deferred for ever (451), the others are accepted.
fn relay() -> SmtpServer {
    let relay = SmtpServer::start();
    relay.fail_with(
        "gone@example.net",
        &[550; 10],
        "5.1.1 <gone@example.net>: Recipient address rejected: User unknown",
    );
    relay.fail("busy@example.net", &[451; 100]);
    relay
}

/// Postfix gives up on a deferred message at its first retry, so busy@'s
/// delay becomes a (temporary, 4.x.x) bounce within the test.
const EXPIRE_AT_FIRST_RETRY: [(&str, &str); 2] = [
    ("maximal_queue_lifetime", "0"),
    ("bounce_queue_lifetime", "0"),
];

/// The fixture site, owned by nobody (Postfix's pipe runs as nobody), with
/// its own copy of the binary where nobody can run it.
fn site_for_nobody() -> tempfile::TempDir {
    let site = common::site_from("site");
    let bin = site.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin folder");
    std::fs::copy(env!("CARGO_BIN_EXE_shorts"), bin.join("shorts")).expect("copy shorts");
    site
}

fn give_to_nobody(dir: &Path) {
    let out = Command::new("chown")
        .args(["-R", "nobody:"])
        .arg(dir)
        .output()
        .expect("run chown");
    assert!(out.status.success(), "chown: {}", stderr(&out));
}

/// How a test runs `shorts` on its site: `shorts_at` as root, or
/// [`as_nobody`].
type Run = fn(&Path, &str, &[&str]) -> std::process::Output;

/// Runs the site's own copy of `shorts` as nobody, as Postfix's pipe will,
/// so that nothing it writes is root's.
fn as_nobody(site: &Path, now: &str, args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(site.join("bin/shorts"))
        .args(args)
        .current_dir(site)
        .env("SHORTS_NOW", now)
        .env_remove("RUST_LOG")
        .output()
        .expect("run setpriv")
}

/// Sends digest 1 through Postfix on `port` to every subscriber.
fn send_digest(site: &Path, port: u16, run: Run) {
    common::append_config(
        site,
        &format!(
            r#"
[digest]
schedule = "0 8 * * MON"
from = "Fixture Digest <digest@{DOMAIN}>"
postal_address = "Fixture Ltd, 1 Test Street, Testville"

[delivery]
transport = "smtp"
bounce_address = "bounces@{DOMAIN}"

[delivery.smtp]
host = "127.0.0.1"
port = {port}
tls = "none"

[inbound]
# The test's digest is dated June 2026; Postfix's pipe runs on today's clock.
expire_days = 36500
"#
        ),
    );
    for email in SUBSCRIBERS {
        let out = run(site, WEEK_1, &["subscribers", "add", email]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = run(site, WEEK_1, &["digest", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Exactly gone@ is bounced, busy@ has one soft bounce and is still
/// active, and the relay got the digests of the two others.
fn assert_only_the_refused_changed(site: &Path, relay: &SmtpServer, log: &str) {
    let store = common::store(site);
    let status = |email: &str| store.subscriber_by_email(email).unwrap().unwrap().status;
    assert_eq!(
        status("gone@example.net"),
        SubscriberStatus::Bounced,
        "{log}"
    );
    for email in ["ok@example.net", "busy@example.net", "other@example.net"] {
        assert_eq!(status(email), SubscriberStatus::Active, "{email}");
    }
    let gone = store.events_for("gone@example.net").unwrap();
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert_eq!(
        (gone[0].kind.as_str(), gone[0].status.as_deref()),
        ("hard_bounce", Some("5.1.1"))
    );
    assert_eq!(gone[0].digest, Some(1));
    let busy = store.events_for("busy@example.net").unwrap();
    assert_eq!(busy.len(), 1, "{busy:?}");
    assert_eq!(busy[0].kind, "soft_bounce");
    for email in ["ok@example.net", "other@example.net"] {
        assert!(store.events_for(email).unwrap().is_empty(), "{email}");
    }
    let mut delivered: Vec<String> = relay.received().iter().map(|r| r.to[0].clone()).collect();
    delivered.sort();
    assert_eq!(delivered, ["ok@example.net", "other@example.net"]);
}

#[test]
fn postfix_pipes_its_bounces_to_shorts_inbound_and_only_the_refused_change() {
    let relay = relay();
    let site = site_for_nobody();
    let config = site.path().join("config.toml");
    let command = vec![
        site.path().join("bin/shorts").display().to_string(),
        "--config".to_string(),
        config.display().to_string(),
        "inbound".to_string(),
    ];
    let Some(postfix) = Postfix::start_with(
        relay.port,
        DOMAIN,
        BounceDelivery::Pipe { command },
        &EXPIRE_AT_FIRST_RETRY,
    ) else {
        return;
    };
    // Postfix pipes a bounce as soon as the relay refuses, which may be
    // before `digest send` has returned: the site must be nobody's before
    // the send, and the send must write only what nobody owns.
    give_to_nobody(site.path());
    send_digest(site.path(), postfix.smtp_port, as_nobody);
    postfix.drain(TIMEOUT);
    assert_only_the_refused_changed(site.path(), &relay, &postfix.log());
    assert!(postfix.bounce_messages().is_empty(), "all were piped");
}

#[test]
fn postfix_delivers_its_bounces_to_a_maildir_that_shorts_inbound_reads() {
    let relay = relay();
    let Some(postfix) = Postfix::start_with(
        relay.port,
        DOMAIN,
        BounceDelivery::Maildir,
        &EXPIRE_AT_FIRST_RETRY,
    ) else {
        return;
    };
    let site = common::site_from("site");
    send_digest(site.path(), postfix.smtp_port, common::shorts_at);
    postfix.drain(TIMEOUT);
    assert_eq!(postfix.bounce_messages().len(), 2, "{}", postfix.log());

    let maildir = postfix.maildir.display().to_string();
    let out = common::shorts_at(
        site.path(),
        "2026-06-09T08:00:00Z",
        &["inbound", "--maildir", &maildir],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("2 messages read, 2 acted on or recorded, 0 not recognised"),
        "{}",
        stdout(&out)
    );
    assert_only_the_refused_changed(site.path(), &relay, &postfix.log());
    assert!(postfix.bounce_messages().is_empty(), "moved out of new/");
    let processed = std::fs::read_dir(postfix.maildir.join(".processed/cur"))
        .unwrap()
        .count();
    assert_eq!(processed, 2, "kept, not deleted");
}
