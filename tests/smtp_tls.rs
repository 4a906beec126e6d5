//! The relay's certificate, verified for real: `digest send` and
//! `check --smtp` against a local SMTP server that offers STARTTLS with a
//! certificate from a test CA (`tests/fixtures/tls/`, made by
//! `scripts/test_certs.sh`). Without `ca_file` the certificate is not
//! trusted; with it, the digest goes out; a certificate for another name is
//! refused even then.

mod common;
#[path = "common/smtp.rs"]
mod smtp;

use std::path::Path;

use common::{delivery_states, shorts_at, stderr, stdout};
use shorts::store::DeliveryState;
use smtp::SmtpServer;

/// Monday 2026-06-08, two hours after the 08:00 Berlin slot.
const WEEK_1: &str = "2026-06-08T08:00:00Z";

/// Subscribers of every site here: more than the pool's connections, so a
/// run that went on after a refused certificate would show.
const SUBSCRIBERS: usize = 6;

/// A site sending through `server` with STARTTLS; with `trust_test_ca`,
/// `ca_file` names the test CA by a path relative to the config file, as the
/// README shows it.
fn tls_site(server: &SmtpServer, trust_test_ca: bool) -> tempfile::TempDir {
    let ca_file = if trust_test_ca {
        "ca_file = \"certs/relay-ca.pem\""
    } else {
        ""
    };
    let site = common::smtp_digest_site(
        server.port,
        &format!("pool_size = 2\nattempts = 3\nbackoff_ms = 20\ntimeout_secs = 5\n{ca_file}"),
    );
    common::edit_config(site.path(), "tls = \"none\"", "tls = \"starttls\"");
    std::fs::create_dir_all(site.path().join("certs")).expect("create certs/");
    std::fs::copy(
        smtp::tls_fixture("ca.pem"),
        site.path().join("certs/relay-ca.pem"),
    )
    .expect("copy the test CA");
    for i in 0..SUBSCRIBERS {
        let out = run(
            site.path(),
            &["subscribers", "add", &format!("r{i}@example.com")],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    site
}

fn run(site: &Path, args: &[&str]) -> std::process::Output {
    shorts_at(site, WEEK_1, args)
}

/// `digest send` stopped by the settings: exit 3 and every delivery still
/// waiting, nothing sent, and no connection tried again (each try is one
/// EHLO; two connections may have started at once).
fn assert_stopped_at_once(site: &Path, server: &SmtpServer, says: &str) -> String {
    let out = run(site, &["digest", "send"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains(says), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{}", server.port)),
        "names the server: {err}"
    );
    assert!(server.received().is_empty());
    assert_eq!(server.all_attempts(), 0, "no message was offered");
    assert!(
        server.greetings() <= 2,
        "no retries: {} sessions",
        server.greetings()
    );
    let states = delivery_states(site);
    assert!(
        states
            .iter()
            .all(|(state, _)| matches!(state, DeliveryState::Deferred | DeliveryState::Sending)),
        "the digest waits: {states:?}"
    );
    err
}

/// `check --smtp` finds the same problem in the settings: exit 1.
fn assert_check_refuses(site: &Path, says: &str) {
    let out = run(site, &["check", "--smtp"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(says), "{err}");
}

#[test]
fn a_certificate_from_a_private_ca_is_not_trusted_without_ca_file() {
    let server = SmtpServer::start_tls("localhost");
    let site = tls_site(&server, false);
    let says = "its certificate is not trusted";
    let err = assert_stopped_at_once(site.path(), &server, says);
    assert!(
        err.contains("set `ca_file` in [delivery.smtp]"),
        "says what to set: {err}"
    );
    assert_check_refuses(site.path(), says);
    assert_check_refuses(site.path(), "`ca_file`");
    assert!(server.received().is_empty(), "check sends nothing");
}

#[test]
fn with_ca_file_the_relay_is_verified_and_the_digest_delivered() {
    let server = SmtpServer::start_tls("localhost");
    let site = tls_site(&server, true);
    let out = run(site.path(), &["check", "--smtp"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("connected, TLS and login as configured"),
        "{}",
        stdout(&out)
    );
    let out = run(site.path(), &["digest", "send"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(server.received().len(), SUBSCRIBERS);
    assert_eq!(
        delivery_states(site.path()),
        [(DeliveryState::Sent, SUBSCRIBERS)]
    );
}

#[test]
fn a_certificate_for_another_name_is_refused_even_from_a_trusted_ca() {
    let server = SmtpServer::start_tls("wrong-host");
    let site = tls_site(&server, true);
    let says = "the certificate's name does not match `host`";
    let err = assert_stopped_at_once(site.path(), &server, says);
    assert!(
        err.contains("relay.example.net"),
        "names what the certificate is for: {err}"
    );
    assert_check_refuses(site.path(), says);
}
