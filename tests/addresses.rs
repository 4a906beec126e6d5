//! Addresses and names that headers find hard: CR/LF, quotes, non-ASCII
//! (IDN domains, UTF-8 local parts). Each is encoded correctly on the wire
//! (checked on a real SMTP server's side) or refused with a clear error;
//! none adds a header or a recipient.

mod common;
#[path = "common/faulty_smtp.rs"]
mod faulty_smtp;

use std::path::Path;

use common::{shorts_at, stderr, stdout};
use faulty_smtp::FaultySmtp;
use mailparse::MailHeaderMap;
use shorts::model::SubscriberStatus;
use shorts::store::{NewSubscriber, Saved};

const WEEK_1: &str = "2026-06-08T08:00:00Z";

fn site(server: &FaultySmtp) -> tempfile::TempDir {
    common::smtp_digest_site(server.port, "")
}

fn add(site: &Path, email: &str, name: &str) -> std::process::Output {
    shorts_at(site, WEEK_1, &["subscribers", "add", email, "--name", name])
}

#[test]
fn hard_addresses_are_encoded_or_refused_and_names_cannot_add_headers() {
    let server = FaultySmtp::start();
    let site = site(&server);
    for (email, reason) in [
        (
            "a@example.org\r\nBcc: spy@evil.test",
            "is not an email address",
        ),
        ("josé@example.org", "SMTPUTF8"),
        (
            "\"two words\"@example.org",
            "quoted addresses are not supported",
        ),
        ("a@exa mple.org", "is not an email address"),
    ] {
        let out = add(site.path(), email, "");
        assert_eq!(out.status.code(), Some(1), "{email:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(reason), "{email:?}: {}", stderr(&out));
    }
    let out = add(
        site.path(),
        "user@exämple.org",
        "Zoë \"Q\" <x@evil.test>\r\nBcc: spy@evil.test",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("user@xn--exmple-cua.org"),
        "{}",
        stdout(&out)
    );
    let out = add(site.path(), "plain@example.org", "O'Brien, \"Pat\"");
    assert!(out.status.success(), "{}", stderr(&out));

    let out = shorts_at(site.path(), WEEK_1, &["digest", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let accepted = server.accepted();
    let mut recipients: Vec<String> = accepted.iter().flat_map(|m| m.to.clone()).collect();
    recipients.sort();
    assert_eq!(recipients, ["plain@example.org", "user@xn--exmple-cua.org"]);
    for message in &accepted {
        assert!(
            message.data.is_ascii(),
            "8-bit header or body without SMTPUTF8"
        );
        let mail = mailparse::parse_mail(&message.data).expect("MIME parses");
        assert!(mail.headers.get_first_header("Bcc").is_none());
        assert_eq!(mail.headers.get_all_headers("To").len(), 1);
        let to = mailparse::addrparse_header(mail.headers.get_first_header("To").expect("To"))
            .expect("To parses");
        let mailparse::MailAddr::Single(single) = &to[0] else {
            panic!("one address: {to:?}");
        };
        let expected_name = if single.addr == "plain@example.org" {
            "O'Brien, \"Pat\""
        } else {
            "Zoë \"Q\" <x@evil.test> Bcc: spy@evil.test"
        };
        assert_eq!(single.addr, message.to[0]);
        assert_eq!(single.display_name.as_deref(), Some(expected_name));
    }
}

#[test]
fn a_stored_address_no_message_can_be_built_for_fails_alone() {
    let server = FaultySmtp::start();
    let site = site(&server);
    // A row written before validation got stricter: the store takes any
    // address, only the commands and the form check them.
    let stored = NewSubscriber {
        email: "\"two words\"@example.org".into(),
        name: String::new(),
        tracks: Vec::new(),
        tags: Vec::new(),
        status: SubscriberStatus::Active,
        source: "cli".into(),
        consent_text: String::new(),
        cadence: None,
    };
    let now = chrono::DateTime::parse_from_rfc3339(WEEK_1)
        .expect("time")
        .to_utc();
    let saved = common::store(site.path()).save_subscriber(&stored, now);
    assert_eq!(saved.expect("save"), Saved::Added);
    assert!(add(site.path(), "second@example.org", "").status.success());
    let out = shorts_at(site.path(), WEEK_1, &["digest", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("1 sent") && stdout(&out).contains("1 failed"),
        "{}",
        stdout(&out)
    );
    let recipients: Vec<String> = server
        .accepted()
        .iter()
        .flat_map(|m| m.to.clone())
        .collect();
    assert_eq!(recipients, ["second@example.org"]);
}
