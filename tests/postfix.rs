//! The Postfix harness (tests/common/postfix.rs) against Debian's real
//! Postfix: mail relayed to a test SMTP server that rejects a recipient comes
//! back as a DSN to the VERP envelope sender, in the bounce Maildir or
//! through a pipe command, which Postfix retries when it exits 75.
//!
//! Skipped, with a message, where Postfix is not installed or the test is not
//! root; `.ci/run` installs it and sets `SHORTS_REQUIRE_POSTFIX=1`, which
//! turns the skip into a failure.

#[path = "common/postfix.rs"]
mod postfix;
#[path = "common/smtp.rs"]
mod smtp;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::{Address, Message, SmtpTransport, Transport};
use postfix::{BounceDelivery, Postfix};
use smtp::SmtpServer;

const DOMAIN: &str = "shorts.example.org";
const VERP: &str = "bounces+d1-2-abcdef@shorts.example.org";
const TIMEOUT: Duration = Duration::from_secs(30);
const USER_UNKNOWN: &str = "5.1.1 <gone@example.net>: Recipient address rejected: User unknown";

/// A relay that accepts everyone but gone@example.net (550 5.1.1, always).
fn relay() -> SmtpServer {
    let relay = SmtpServer::start();
    relay.fail_with("gone@example.net", &[550; 10], USER_UNKNOWN);
    relay
}

/// Sends a short message to `to` through Postfix, envelope sender [`VERP`].
fn submit(postfix: &Postfix, to: &str) {
    let envelope = Envelope::new(
        Some(VERP.parse().expect("VERP address")),
        vec![to.parse::<Address>().expect("recipient address")],
    )
    .expect("envelope");
    let message = Message::builder()
        .from("Shorts <digest@shorts.example.org>".parse().expect("From"))
        .to(to.parse().expect("To"))
        .subject("Digest 1")
        .envelope(envelope)
        .body("Hello\n".to_string())
        .expect("build the message");
    SmtpTransport::builder_dangerous("127.0.0.1")
        .port(postfix.smtp_port)
        .build()
        .send(&message)
        .expect("Postfix accepts the message");
}

/// Asserts that `raw` is a DSN to [`VERP`] reporting `status` for `recipient`.
fn assert_dsn(raw: &[u8], recipient: &str, status: &str) {
    let mail = mailparse::parse_mail(raw).expect("parse the DSN");
    let text = String::from_utf8_lossy(raw);
    assert_eq!(mail.ctype.mimetype, "multipart/report", "{text}");
    let report_type = mail.ctype.params.get("report-type").map(String::as_str);
    assert_eq!(report_type, Some("delivery-status"), "{text}");
    let header = |name| mail.headers.iter().find(|h| h.get_key_ref() == name);
    let delivered_to = header("Delivered-To").map(|h| h.get_value());
    assert_eq!(delivered_to.as_deref(), Some(VERP), "{text}");
    let original_to = header("X-Original-To").map(|h| h.get_value());
    assert_eq!(original_to.as_deref(), Some(VERP), "{text}");
    let report = mail
        .subparts
        .iter()
        .find(|part| part.ctype.mimetype == "message/delivery-status")
        .expect("a message/delivery-status part");
    let fields = report.get_body().expect("the delivery-status fields");
    assert!(
        fields.contains(&format!("Final-Recipient: rfc822; {recipient}")),
        "{fields}"
    );
    assert!(fields.contains(&format!("Status: {status}")), "{fields}");
    assert!(fields.contains("Action: failed"), "{fields}");
}

/// A folder where the pipe command, run as nobody, can write.
fn folder_for_nobody() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
        .expect("open the folder to nobody");
    dir
}

/// The files in `dir` whose names end with `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("read the folder")
        .map(|entry| entry.expect("folder entry").path())
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect()
}

fn sh(script: String) -> BounceDelivery {
    BounceDelivery::Pipe {
        command: vec!["/bin/sh".to_string(), "-c".to_string(), script],
    }
}

#[test]
fn a_rejected_recipient_comes_back_as_a_dsn_in_the_bounce_maildir() {
    let relay = relay();
    let Some(postfix) = Postfix::start(relay.port, DOMAIN, BounceDelivery::Maildir) else {
        return;
    };
    submit(&postfix, "ok@example.net");
    submit(&postfix, "gone@example.net");
    postfix.drain(TIMEOUT);

    let received = relay.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].to, ["ok@example.net"]);
    assert_eq!(received[0].from, VERP, "the envelope sender is kept");
    assert_eq!(
        relay.attempts("gone@example.net"),
        1,
        "a 5xx is not retried"
    );

    let bounces = postfix.bounce_messages();
    assert_eq!(bounces.len(), 1, "{bounces:?}\n{}", postfix.log());
    let dsn = std::fs::read(&bounces[0]).expect("read the DSN");
    assert_dsn(&dsn, "gone@example.net", "5.1.1");
    let words: Vec<&str> = std::str::from_utf8(&dsn)
        .expect("a UTF-8 DSN")
        .split_whitespace()
        .collect();
    let diagnostic = format!("Diagnostic-Code: smtp; 550 {USER_UNKNOWN}");
    assert!(
        words.join(" ").contains(&diagnostic),
        "the relay's words, unfolded: {}",
        words.join(" ")
    );
}

#[test]
fn a_deferred_recipient_bounces_when_the_queue_lifetime_runs_out() {
    let relay = SmtpServer::start();
    relay.fail("busy@example.net", &[451; 100]);
    let expire_at_first_retry = [
        ("maximal_queue_lifetime", "0"),
        ("bounce_queue_lifetime", "0"),
    ];
    let Some(postfix) = Postfix::start_with(
        relay.port,
        DOMAIN,
        BounceDelivery::Maildir,
        &expire_at_first_retry,
    ) else {
        return;
    };
    submit(&postfix, "busy@example.net");
    postfix.drain(TIMEOUT);
    assert_eq!(relay.attempts("busy@example.net"), 1, "{}", postfix.log());

    let bounces = postfix.bounce_messages();
    assert_eq!(bounces.len(), 1, "{bounces:?}\n{}", postfix.log());
    let dsn = std::fs::read(&bounces[0]).expect("read the DSN");
    assert_dsn(&dsn, "busy@example.net", "4.0.0");
}

#[test]
fn the_pipe_command_gets_each_dsn_on_stdin() {
    let relay = relay();
    let out = folder_for_nobody();
    // $$ is the shell's pid: the harness passes the argv to pipe(8) literally.
    let delivery = sh(format!("cat > {}/$$.eml", out.path().display()));
    let Some(postfix) = Postfix::start(relay.port, DOMAIN, delivery) else {
        return;
    };
    submit(&postfix, "gone@example.net");
    postfix.drain(TIMEOUT);

    let piped = files_ending(out.path(), ".eml");
    assert_eq!(piped.len(), 1, "{piped:?}\n{}", postfix.log());
    let dsn = std::fs::read(&piped[0]).expect("read the piped DSN");
    assert_dsn(&dsn, "gone@example.net", "5.1.1");
    assert!(
        postfix.bounce_messages().is_empty(),
        "nothing in the Maildir"
    );
}

#[test]
fn postfix_retries_a_pipe_command_that_exits_75() {
    let relay = relay();
    let out = folder_for_nobody();
    let dir = out.path().display();
    // The first call defers (EX_TEMPFAIL), the second keeps the message.
    let delivery = sh(format!(
        "echo call >> {dir}/calls; \
         if [ $(wc -l < {dir}/calls) -lt 2 ]; then cat > /dev/null; exit 75; fi; \
         cat > {dir}/dsn.eml"
    ));
    let Some(postfix) = Postfix::start(relay.port, DOMAIN, delivery) else {
        return;
    };
    submit(&postfix, "gone@example.net");
    postfix.drain(TIMEOUT);

    let calls = std::fs::read_to_string(out.path().join("calls")).expect("read calls");
    assert_eq!(calls.lines().count(), 2, "{}", postfix.log());
    let dsn = std::fs::read(out.path().join("dsn.eml")).expect("read the piped DSN");
    assert_dsn(&dsn, "gone@example.net", "5.1.1");
}
