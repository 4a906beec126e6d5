//! `shorts inbound` end to end: a digest goes out through a real SMTP
//! server with VERP return paths, then what comes back — delivery status
//! notifications, an ARF complaint, a `mailto:` unsubscribe, an
//! auto-reply, and hostile messages — is piped to the binary or left in a
//! Maildir, and the database is checked for exactly the changes each
//! should make.

mod common;
#[path = "common/smtp.rs"]
mod smtp;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use common::{stderr, stdout};
use mailparse::MailHeaderMap;
use shorts::model::SubscriberStatus;
use smtp::SmtpServer;

const WEEK_1: &str = "2026-06-08T08:00:00Z";
const LATER: &str = "2026-06-09T10:00:00Z";

/// A site that sent digest 1 through a real SMTP server to `emails`, with
/// return paths at bounces@example.com; returns what each recipient got.
fn sent_digest(emails: &[&str]) -> (tempfile::TempDir, HashMap<String, smtp::Received>) {
    let server = SmtpServer::start();
    let site = common::smtp_digest_site(server.port, "");
    common::edit_config(
        site.path(),
        "[delivery]\n",
        "[delivery]\nbounce_address = \"bounces@example.com\"\n",
    );
    for email in emails {
        let out = common::shorts_at(site.path(), WEEK_1, &["subscribers", "add", email]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = common::shorts_at(site.path(), WEEK_1, &["digest", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let received = server
        .received()
        .into_iter()
        .map(|r| (r.to[0].clone(), r))
        .collect();
    (site, received)
}

/// `shorts inbound` with `message` on standard input.
fn inbound(site: &Path, message: &[u8]) -> Output {
    inbound_at(site, LATER, message)
}

fn inbound_at(site: &Path, now: &str, message: &[u8]) -> Output {
    let mut child = common::shorts_command(site, now)
        .arg("inbound")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start shorts inbound");
    let mut stdin = child.stdin.take().expect("stdin");
    // A reader that stops early must not fail the test with EPIPE.
    let _ = stdin.write_all(message);
    drop(stdin);
    child.wait_with_output().expect("wait for shorts inbound")
}

fn inbound_ok(site: &Path, message: &[u8]) -> String {
    let out = inbound(site, message);
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status.code(),
        stderr(&out)
    );
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    stdout(&out)
}

fn status(site: &Path, email: &str) -> SubscriberStatus {
    common::store(site)
        .subscriber_by_email(email)
        .expect("read the subscriber")
        .expect("the subscriber exists")
        .status
}

/// A delivery status notification (RFC 3464) as Postfix writes one.
fn dsn(to: &str, recipient: &str, action: &str, status: &str, diagnostic: &str) -> Vec<u8> {
    format!(
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n\
To: {to}\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
Message-ID: <dsn-{status}-{recipient}>\r\n\
Auto-Submitted: auto-replied\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"R\"\r\n\
\r\n\
--R\r\n\
Content-Type: text/plain\r\n\
\r\n\
I'm sorry to have to inform you that your message could not be delivered.\r\n\
--R\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example.net\r\n\
\r\n\
Final-Recipient: rfc822; {recipient}\r\n\
Action: {action}\r\n\
Status: {status}\r\n\
Diagnostic-Code: smtp; {diagnostic}\r\n\
\r\n\
--R--\r\n"
    )
    .into_bytes()
}

/// An abuse report (RFC 5965) returning `original`, sent to the plain
/// CFBL address: only the original's List-Unsubscribe names the reader.
fn arf(original: &[u8]) -> Vec<u8> {
    let mut message = b"From: fbl@isp.example\r\n\
To: bounces@example.com\r\n\
Subject: Abuse report\r\n\
Message-ID: <arf-1@isp.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\r\n\
\r\n\
--F\r\n\
Content-Type: text/plain\r\n\
\r\n\
This is an abuse report.\r\n\
--F\r\n\
Content-Type: message/feedback-report\r\n\
\r\n\
Feedback-Type: abuse\r\n\
User-Agent: isp-fbl/1.0\r\n\
Version: 1\r\n\
Original-Rcpt-To: redacted@example.com\r\n\
\r\n\
--F\r\n\
Content-Type: message/rfc822\r\n\
\r\n"
        .to_vec();
    message.extend_from_slice(original);
    message.extend_from_slice(b"\r\n--F--\r\n");
    message
}

/// What a mail client sends for the `mailto:` of `List-Unsubscribe`.
fn mailto_unsubscribe(original: &[u8], from: &str) -> Vec<u8> {
    let mail = mailparse::parse_mail(original).expect("parse the digest");
    let header = mail
        .headers
        .get_first_value("List-Unsubscribe")
        .expect("List-Unsubscribe");
    let mailto = header
        .split(['<', '>'])
        .find(|part| part.starts_with("mailto:"))
        .expect("a mailto: link");
    let (address, query) = mailto["mailto:".len()..]
        .split_once('?')
        .expect("a subject");
    let subject = query
        .strip_prefix("subject=")
        .expect("subject=")
        .replace("%20", " ");
    format!(
        "From: {from}\r\nTo: {address}\r\nSubject: {subject}\r\nMessage-ID: <unsub-{from}>\r\n\r\nThis message was sent by my mail client.\r\n"
    )
    .into_bytes()
}

#[test]
fn bounces_complaints_and_unsubscribes_act_on_the_right_subscribers_once() {
    let emails = [
        "gone@example.com",
        "full@example.com",
        "spam@example.com",
        "leaver@example.com",
        "away@example.com",
    ];
    let (site, received) = sent_digest(&emails);
    let site = site.path();
    let return_path = |email: &str| received[email].from.trim_matches(['<', '>']).to_string();

    let hard = dsn(
        &return_path("gone@example.com"),
        "gone@example.com",
        "failed",
        "5.1.1",
        "550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown",
    );
    assert!(inbound_ok(site, &hard).contains("hard bounce from gone@example.com: now bounced"));
    let soft = dsn(
        &return_path("full@example.com"),
        "full@example.com",
        "delayed",
        "4.2.2",
        "452 4.2.2 Mailbox full",
    );
    assert!(inbound_ok(site, &soft).contains("1 of 3 soft bounces"));
    let complaint = arf(&received["spam@example.com"].data);
    assert!(
        inbound_ok(site, &complaint).contains("complaint from spam@example.com: now unsubscribed")
    );
    let unsubscribe =
        mailto_unsubscribe(&received["leaver@example.com"].data, "leaver@example.com");
    assert!(
        inbound_ok(site, &unsubscribe)
            .contains("unsubscribe from leaver@example.com: now unsubscribed")
    );
    let vacation = format!(
        "From: away@example.com\r\nTo: {}\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <away-1>\r\n\r\nI am away until Monday.\r\n",
        return_path("away@example.com")
    );
    assert!(
        inbound_ok(site, vacation.as_bytes())
            .contains("auto reply from away@example.com: recorded")
    );

    assert_eq!(status(site, "gone@example.com"), SubscriberStatus::Bounced);
    assert_eq!(status(site, "full@example.com"), SubscriberStatus::Active);
    assert_eq!(
        status(site, "spam@example.com"),
        SubscriberStatus::Unsubscribed
    );
    assert_eq!(
        status(site, "leaver@example.com"),
        SubscriberStatus::Unsubscribed
    );
    assert_eq!(status(site, "away@example.com"), SubscriberStatus::Active);

    // The same messages again (an MTA retrying, a Maildir read twice): nothing more.
    for message in [&hard, &soft, &complaint, &unsubscribe] {
        assert!(inbound_ok(site, message).contains("already handled; nothing changed"));
    }
    let counts = digest_status_json(site);
    assert_eq!(counts["hard_bounces"], 1, "{counts}");
    assert_eq!(counts["soft_bounces"], 1, "{counts}");
    assert_eq!(counts["complaints"], 1, "{counts}");
    assert_eq!(counts["unsubscribes"], 1, "{counts}");
    assert_eq!(counts["auto_replies"], 1, "{counts}");
    assert_eq!(counts["sent"], 5, "{counts}");

    let show = common::shorts_at(site, LATER, &["subscribers", "show", "gone@example.com"]);
    let shown = stdout(&show);
    assert!(show.status.success(), "{}", stderr(&show));
    for expected in [
        "status: bounced",
        "digest 1: Sent",
        "hard bounce digest 1 5.1.1",
        "suppressed: hard bounce (5.1.1)",
    ] {
        assert!(shown.contains(expected), "{expected:?} not in:\n{shown}");
    }
    suppression_survives_add_import_and_export(site);
}

fn digest_status_json(site: &Path) -> serde_json::Value {
    let out = common::shorts_at(site, LATER, &["digest", "status", "1", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("digest status --json is JSON")
}

/// A complained-about address is never mailed again: not by `add`, not by
/// an import (even of a file that says `active`), and `export` says why.
fn suppression_survives_add_import_and_export(site: &Path) {
    let add = common::shorts_at(site, LATER, &["subscribers", "add", "spam@example.com"]);
    assert_eq!(add.status.code(), Some(1), "{}", stdout(&add));
    assert!(
        stderr(&add).contains("spam@example.com is suppressed (complaint"),
        "{}",
        stderr(&add)
    );
    let removed = common::shorts_at(site, LATER, &["subscribers", "remove", "spam@example.com"]);
    assert!(removed.status.success());
    let csv = site.join("back.csv");
    std::fs::write(
        &csv,
        "email,status\nspam@example.com,active\nnew@example.com,active\n",
    )
    .unwrap();
    let import = common::shorts_at(site, LATER, &["subscribers", "import", "back.csv"]);
    assert!(import.status.success(), "{}", stderr(&import));
    assert!(
        stdout(&import).contains("skipped spam@example.com: suppressed"),
        "{}",
        stdout(&import)
    );
    assert!(
        common::store(site)
            .subscriber_by_email("spam@example.com")
            .unwrap()
            .is_none()
    );
    let export = stdout(&common::shorts_at(site, LATER, &["subscribers", "export"]));
    assert!(
        export.starts_with("email,name,tracks,tags,status,cadence,suppressed\n"),
        "{export}"
    );
    assert!(
        export.contains(
            "spam@example.com,,,,unsubscribed,,complaint (reported as spam) since 2026-06-09"
        ),
        "{export}"
    );
    assert!(
        export.contains("gone@example.com,,,,bounced,weekly,hard bounce (5.1.1) since 2026-06-09"),
        "{export}"
    );
    // Lifting the suppression (the reader asked the author to come back) lets `add` work again.
    let lift = common::shorts_at(
        site,
        LATER,
        &["subscribers", "unsuppress", "spam@example.com"],
    );
    assert!(
        stdout(&lift).contains("no longer suppressed (was: complaint"),
        "{}",
        stderr(&lift)
    );
    let again = common::shorts_at(
        site,
        LATER,
        &["subscribers", "unsuppress", "spam@example.com"],
    );
    assert_eq!(again.status.code(), Some(1));
    let export = stdout(&common::shorts_at(site, LATER, &["subscribers", "export"]));
    assert!(!export.contains("spam@example.com"), "{export}");
    // The export imports again as it is, changing nothing.
    std::fs::write(&csv, &export).unwrap();
    let again = common::shorts_at(site, LATER, &["subscribers", "import", "back.csv"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains(" 0 added, 0 updated"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn hostile_and_unmatched_messages_are_kept_and_change_no_one() {
    let (site, received) = sent_digest(&["ada@example.com"]);
    let site = site.path();
    let real = received["ada@example.com"]
        .from
        .trim_matches(['<', '>'])
        .to_string();
    let (local, domain) = real.split_once('@').unwrap();
    let flipped = if local.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{flipped}@{domain}", &local[..local.len() - 1]);
    let another_subscriber = real.replacen("-1-", "-2-", 1);
    let gone = |to: &str| {
        dsn(
            to,
            "ada@example.com",
            "failed",
            "5.1.1",
            "550 5.1.1 User unknown",
        )
    };
    let mut many_parts =
        String::from("From: x@example.net\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n");
    for _ in 0..10_000 {
        many_parts.push_str("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n");
    }
    let huge = {
        let mut m = b"From: MAILER-DAEMON@x.example\r\nSubject: Undelivered\r\n\r\n".to_vec();
        m.resize(30 * 1024 * 1024, b'a');
        m
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("forged token", gone(&forged), "not signed by this site"),
        (
            "another subscriber's token",
            gone(&another_subscriber),
            "not signed by this site",
        ),
        (
            "no token",
            gone("bounces@example.com"),
            "no return path of the form bounces+",
        ),
        (
            "not a bounce",
            b"From: someone@example.net\r\nSubject: hello\r\n\r\nhi".to_vec(),
            "not a delivery report",
        ),
        (
            "binary junk",
            vec![0xff, 0x00, b'\n', 0x80, b':'],
            "not a delivery report",
        ),
        (
            "10,000 parts",
            many_parts.into_bytes(),
            "more than 1000 MIME parts",
        ),
        ("30 MB", huge, "over the 10485760-byte limit"),
    ];
    for (what, message, reason) in &cases {
        let out = inbound_ok(site, message);
        assert!(
            out.contains("not acted on") && out.contains(reason),
            "{what}: {out}"
        );
    }
    assert_eq!(status(site, "ada@example.com"), SubscriberStatus::Active);
    let kept = std::fs::read_dir(site.join("data/inbound/new"))
        .unwrap()
        .count();
    assert_eq!(kept, cases.len(), "every message not acted on is kept");
}

#[test]
fn a_maildir_is_read_once_and_nothing_in_it_is_deleted() {
    let (site, received) = sent_digest(&["gone@example.com", "ok@example.com"]);
    let site = site.path();
    let maildir = site.join("Maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    let to = received["gone@example.com"]
        .from
        .trim_matches(['<', '>'])
        .to_string();
    std::fs::write(
        maildir.join("new/1.bounce"),
        dsn(
            &to,
            "gone@example.com",
            "failed",
            "5.1.1",
            "550 5.1.1 User unknown",
        ),
    )
    .unwrap();
    std::fs::write(
        maildir.join("cur/2.junk:2,S"),
        b"Subject: spam for you\r\n\r\nbuy",
    )
    .unwrap();
    let run = || common::shorts_at(site, LATER, &["inbound", "--maildir", "Maildir"]);
    let out = run();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("2 messages read, 1 acted on or recorded, 1 not recognised"),
        "{}",
        stdout(&out)
    );
    assert!(maildir.join(".processed/cur/1.bounce:2,").exists());
    assert!(maildir.join(".unrecognised/cur/2.junk:2,S").exists());
    assert_eq!(std::fs::read_dir(maildir.join("new")).unwrap().count(), 0);
    assert_eq!(status(site, "gone@example.com"), SubscriberStatus::Bounced);
    assert_eq!(status(site, "ok@example.com"), SubscriberStatus::Active);
    // Read again: the moved messages are not in new/ or cur/, nothing happens.
    let again = run();
    assert!(
        stdout(&again).contains("0 messages read"),
        "{}",
        stdout(&again)
    );
    let events = common::store(site).events_for("gone@example.com").unwrap();
    assert_eq!(events.len(), 1);
    // Not a Maildir: a clear error, exit 3, nothing touched.
    let wrong = common::shorts_at(site, LATER, &["inbound", "--maildir", "content"]);
    assert_eq!(wrong.status.code(), Some(3));
    assert!(
        stderr(&wrong).contains("not a Maildir"),
        "{}",
        stderr(&wrong)
    );
}

#[test]
fn from_standard_input_every_failure_asks_the_mail_server_to_retry() {
    let (site, _) = sent_digest(&["ada@example.com"]);
    let site = site.path();
    common::append_config(site, "\n[inbound]\nsoft_bounce_limit = 0\n");
    let out = inbound(site, b"Subject: x\r\n\r\ny");
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("`inbound.soft_bounce_limit` must be at least 1"),
        "{}",
        stderr(&out)
    );
    // The same error from a Maildir run is the usual exit 1: no server waits on it.
    let maildir = common::shorts_at(site, LATER, &["inbound", "--maildir", "x"]);
    assert_eq!(maildir.status.code(), Some(1));
}

#[test]
fn a_mail_server_piping_many_bounces_at_once_loses_none() {
    let emails: Vec<String> = (0..8).map(|i| format!("r{i}@example.com")).collect();
    let refs: Vec<&str> = emails.iter().map(String::as_str).collect();
    let (site, received) = sent_digest(&refs);
    let site = site.path();
    // Postfix runs one pipe per message, in parallel: all write one SQLite file.
    let children: Vec<_> = emails
        .iter()
        .map(|email| {
            let to = received[email].from.trim_matches(['<', '>']).to_string();
            let message = dsn(&to, email, "failed", "5.1.1", "550 5.1.1 User unknown");
            let mut child = common::shorts_command(site, LATER)
                .arg("inbound")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start shorts inbound");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(&message)
                .expect("write the message");
            child
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{:?} {}", out.status, stderr(&out));
    }
    for email in &emails {
        assert_eq!(status(site, email), SubscriberStatus::Bounced, "{email}");
    }
}

#[test]
fn a_message_handled_from_stdin_and_found_again_in_a_maildir_is_a_replay() {
    // What a crash between the commit and the move leaves: the event is
    // recorded, the message still waits. Reading it again changes nothing.
    let (site, received) = sent_digest(&["full@example.com"]);
    let site = site.path();
    let to = received["full@example.com"]
        .from
        .trim_matches(['<', '>'])
        .to_string();
    let soft = dsn(
        &to,
        "full@example.com",
        "failed",
        "5.2.2",
        "552 5.2.2 Mailbox full",
    );
    assert!(inbound_ok(site, &soft).contains("1 of 3 soft bounces"));
    let maildir = site.join("Maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    std::fs::write(maildir.join("new/1.soft"), &soft).unwrap();
    let out = common::shorts_at(site, LATER, &["inbound", "--maildir", "Maildir"]);
    assert!(
        stdout(&out).contains("already handled; nothing changed"),
        "{}",
        stdout(&out)
    );
    assert!(maildir.join(".processed/cur/1.soft:2,").exists());
    let soft_bounces = common::store(site).events_for("full@example.com").unwrap();
    assert_eq!(soft_bounces.len(), 1, "counted once");
}

#[test]
fn an_old_return_path_has_expired_and_a_forward_that_failed_is_only_soft() {
    let (site, received) = sent_digest(&["ada@example.com"]);
    let site = site.path();
    let to = received["ada@example.com"]
        .from
        .trim_matches(['<', '>'])
        .to_string();
    let gone = dsn(
        &to,
        "ada@example.com",
        "failed",
        "5.1.1",
        "550 5.1.1 User unknown",
    );
    // 90 days (`[inbound] expire_days`) after digest 1 went out, its return paths are dead.
    let late = inbound_at(site, "2026-09-07T08:00:01Z", &gone);
    assert!(late.status.success(), "{}", stderr(&late));
    assert!(
        stdout(&late).contains("expired after 90 days"),
        "{}",
        stdout(&late)
    );
    assert_eq!(status(site, "ada@example.com"), SubscriberStatus::Active);
    // Ada forwards to an address that no longer exists: that says nothing
    // certain about hers, so it counts as a soft bounce.
    let forward = dsn(
        &to,
        "ada.old@elsewhere.example",
        "failed",
        "5.1.1",
        "550 5.1.1 User unknown",
    );
    assert!(
        inbound_ok(site, &forward)
            .contains("soft bounce from ada@example.com: 1 of 3 soft bounces")
    );
    assert_eq!(status(site, "ada@example.com"), SubscriberStatus::Active);
}
