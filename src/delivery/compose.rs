//! One subscriber's rendered digest, or an email about their subscription
//! (confirm, welcome, manage), to a signed MIME message with every
//! header a bulk sender owes: `List-Id`, `List-Unsubscribe` (HTTPS and
//! mailto), `List-Unsubscribe-Post` (RFC 8058), `Auto-Submitted`, a stable
//! `Message-ID`, and `multipart/alternative` with text before HTML.
//!
//! All header values go through lettre's encoder, which folds and
//! RFC 2047-encodes them, so nothing a title or a name contains can start a
//! header of its own.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig as LettreDkim, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart};
use lettre::{Address, Message};

use crate::config::{DigestConfig, DkimAlgorithm, DkimConfig};
use crate::model::{Subscriber, one_line};
use crate::render::digest::RenderedDigest;
use crate::render::subscription_mail::RenderedMail;

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("subscriber address {0:?} is not a valid email address")]
    BadAddress(String),
    #[error("building the message: {0}")]
    Build(String),
    #[error("DKIM key {path}: {message}")]
    DkimKey { path: String, message: String },
}

/// A message ready for any transport.
#[derive(Debug, Clone)]
pub struct Composed {
    pub message_id: String,
    pub envelope: lettre::address::Envelope,
    pub bytes: Vec<u8>,
}

/// The signer, built once per run from `[delivery.dkim]`.
pub struct Signer {
    config: LettreDkim,
}

impl Signer {
    pub fn load(dkim: &DkimConfig) -> Result<Signer, ComposeError> {
        let path = dkim.private_key_path.display().to_string();
        let pem =
            std::fs::read_to_string(&dkim.private_key_path).map_err(|e| ComposeError::DkimKey {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let algorithm = match dkim.algorithm {
            DkimAlgorithm::Rsa => DkimSigningAlgorithm::Rsa,
            DkimAlgorithm::Ed25519 => DkimSigningAlgorithm::Ed25519,
        };
        let key_error = |message| ComposeError::DkimKey {
            path: path.clone(),
            message,
        };
        let key = super::dkim_key::for_lettre(&pem, dkim.algorithm).map_err(key_error)?;
        let key = DkimSigningKey::new(&key, algorithm).map_err(|e| key_error(e.to_string()))?;
        // lettre's default signs only From, Subject, To and Date; RFC 8058 wants
        // the unsubscribe headers covered too.
        let headers = [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "List-Id",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
            // RFC 9477 wants CFBL-Address signed; absent, it signs its absence.
            "CFBL-Address",
            "Feedback-ID",
        ]
        .into_iter()
        .map(HeaderName::new_from_ascii_str)
        .collect();
        Ok(Signer {
            config: LettreDkim::new(
                dkim.selector.clone(),
                dkim.domain.clone(),
                key,
                headers,
                DkimCanonicalization {
                    header: DkimCanonicalizationType::Relaxed,
                    body: DkimCanonicalizationType::Relaxed,
                },
            ),
        })
    }
}

/// The `Subject` header, encoded as lettre encodes headers except that a
/// word that looks like an RFC 2047 encoded word (`=?utf-8?q?…?=`) is
/// encoded too: sent as it is, mail clients would decode it and show other
/// text than the author wrote.
fn subject_header(text: &str) -> Result<HeaderValue, ComposeError> {
    use email_encoding::headers::{rfc2047, writer::EmailWriter};
    use std::fmt::Write as _;

    let text = one_line(text);
    let mut encoded = String::new();
    let write = |encoded: &mut String| -> std::fmt::Result {
        let mut w = EmailWriter::new(encoded, "Subject: ".len(), 0, false);
        let mut pending = String::new();
        let flush = |pending: &mut String, w: &mut EmailWriter<'_>| -> std::fmt::Result {
            if !pending.is_empty() {
                let words = pending.trim_end_matches(' ');
                rfc2047::encode(words, w)?;
                for _ in words.len()..pending.len() {
                    w.space();
                }
                pending.clear();
            }
            Ok(())
        };
        for word in text.split_inclusive(' ') {
            if word.bytes().all(|b| (0x20..0x7f).contains(&b)) && !word.contains("=?") {
                flush(&mut pending, &mut w)?;
                w.folding().write_str(word)?;
            } else {
                pending.push_str(word);
            }
        }
        flush(&mut pending, &mut w)
    };
    write(&mut encoded).map_err(|_| ComposeError::Build("encoding the subject".into()))?;
    Ok(HeaderValue::dangerous_new_pre_encoded(
        HeaderName::new_from_ascii_str("Subject"),
        text,
        encoded,
    ))
}

/// `<digest-12.s42@example.org>`: the same for the same digest and subscriber,
/// so a resent copy is recognisably the same message.
pub fn message_id(digest: i64, subscriber: i64, from: &Address) -> String {
    format!("<digest-{digest}.s{subscriber}@{}>", from.domain())
}

pub struct Envelope<'a> {
    pub config: &'a DigestConfig,
    pub digest: i64,
    pub subscriber: &'a Subscriber,
    pub unsubscribe_url: &'a str,
    pub unsubscribe_token: &'a str,
    pub date: DateTime<Utc>,
    /// Where what comes back goes, when `[delivery] bounce_address` is set.
    pub returns: Option<Returns>,
}

/// The addresses mail that comes back is sent to: the envelope sender (a
/// VERP address naming this delivery, see `verp`) and the plain address
/// complaint feedback loops report to (`CFBL-Address`, RFC 9477).
#[derive(Debug, Clone)]
pub struct Returns {
    pub envelope_sender: Address,
    pub feedback: Address,
}

/// A header whose value lettre encodes as it needs.
fn header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

/// `Feedback-ID` (Gmail's feedback loop): `campaign:kind:sender`, the same
/// for every copy of one digest so complaint rates can be told apart by digest.
fn feedback_id(campaign: &str, kind: &str, from: &Address) -> String {
    format!("{campaign}:{kind}:{}", from.domain())
}

/// Adds the headers that route complaints back (`Feedback-ID` always,
/// `CFBL-Address` with a bounce address), both covered by DKIM.
fn with_feedback(
    builder: lettre::message::MessageBuilder,
    feedback_id: String,
    returns: Option<&Returns>,
) -> lettre::message::MessageBuilder {
    let builder = builder.raw_header(header("Feedback-ID", feedback_id));
    match returns {
        Some(returns) => builder.raw_header(header(
            "CFBL-Address",
            format!("{}; report=arf", returns.feedback),
        )),
        None => builder,
    }
}

/// A digest's subject and its two parts, encoded for the message.
pub struct DigestParts {
    pub subject: String,
    pub text: Body,
    pub html: Body,
}

impl DigestParts {
    /// The parts of one subscriber's rendered copy, encoded for it alone.
    pub fn of(digest: &RenderedDigest) -> DigestParts {
        DigestParts {
            subject: digest.subject.clone(),
            text: Body::new(digest.text.clone()),
            html: Body::new(digest.html.clone()),
        }
    }
}

pub fn compose(
    envelope: &Envelope<'_>,
    digest: DigestParts,
    signer: Option<&Signer>,
) -> Result<Composed, ComposeError> {
    let config = envelope.config;
    let subscriber = envelope.subscriber;
    let address: Address = subscriber
        .email
        .parse()
        .map_err(|_| ComposeError::BadAddress(subscriber.email.clone()))?;
    let name = Some(one_line(&subscriber.name)).filter(|n| !n.is_empty());
    let message_id = message_id(envelope.digest, subscriber.id, &config.from.email);
    let builder = Message::builder()
        .from(config.from.clone())
        .to(Mailbox::new(name, address))
        .raw_header(subject_header(&digest.subject)?)
        .date(SystemTime::from(envelope.date))
        .message_id(Some(message_id.clone()));
    let builder = with_list_unsubscribe(
        builder,
        config,
        envelope.unsubscribe_url,
        envelope.unsubscribe_token,
    )
    .raw_header(header("Auto-Submitted", "auto-generated".to_string()));
    let campaign = format!("digest-{}", envelope.digest);
    let mut builder = with_feedback(
        builder,
        feedback_id(&campaign, "digest", &config.from.email),
        envelope.returns.as_ref(),
    );
    if let Some(reply_to) = &config.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    let message = builder
        .multipart(MultiPart::alternative_plain_html(digest.text, digest.html))
        .map_err(|e| ComposeError::Build(e.to_string()))?;
    signed(message, message_id, signer, envelope.returns.as_ref())
}

/// An email about a subscription (see `render::subscription_mail`), as it
/// goes out.
pub struct Notice<'a> {
    pub config: &'a DigestConfig,
    /// `confirm`, `welcome`, `manage`: names its campaign for `Feedback-ID`.
    pub kind: &'static str,
    pub to: &'a str,
    pub rendered: &'a RenderedMail,
    /// The same for every try of one queued email, so a copy sent again
    /// after a crash is recognisably the same message.
    pub message_id: String,
    pub date: DateTime<Utc>,
    /// The unsubscribe link and token, for emails to a subscriber; a
    /// confirmation goes to someone not subscribed yet and has none.
    pub unsubscribe: Option<(&'a str, &'a str)>,
}

/// Builds and signs an email about a subscription, with the headers a
/// digest has that belong to it: `List-Unsubscribe` (RFC 2369, one-click
/// RFC 8058) only on emails to a subscriber.
pub fn notice(
    notice: &Notice<'_>,
    signer: Option<&Signer>,
    returns: Option<&Returns>,
) -> Result<Composed, ComposeError> {
    let config = notice.config;
    let address: Address = notice
        .to
        .parse()
        .map_err(|_| ComposeError::BadAddress(notice.to.to_string()))?;
    let mut builder = Message::builder()
        .from(config.from.clone())
        .to(Mailbox::new(None, address))
        .raw_header(subject_header(&notice.rendered.subject)?)
        .date(SystemTime::from(notice.date))
        .message_id(Some(notice.message_id.clone()))
        .raw_header(header("Auto-Submitted", "auto-generated".to_string()));
    if let Some((url, token)) = notice.unsubscribe {
        builder = with_list_unsubscribe(builder, config, url, token);
    }
    if let Some(reply_to) = &config.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    let message = with_feedback(
        builder,
        feedback_id(notice.kind, "subscription", &config.from.email),
        returns,
    )
    .multipart(MultiPart::alternative_plain_html(
        notice.rendered.text.clone(),
        notice.rendered.html.clone(),
    ))
    .map_err(|e| ComposeError::Build(e.to_string()))?;
    signed(message, notice.message_id.clone(), signer, returns)
}

/// `List-Id`, and `List-Unsubscribe` with its one-click companion: the
/// link, and a `mailto:` naming the token for clients that only mail.
fn with_list_unsubscribe(
    builder: lettre::message::MessageBuilder,
    config: &DigestConfig,
    url: &str,
    token: &str,
) -> lettre::message::MessageBuilder {
    let mailto = format!(
        "mailto:{}?subject=unsubscribe%20{token}",
        config.unsubscribe_mailto
    );
    builder
        .raw_header(header("List-Id", config.list_id.clone()))
        .raw_header(header("List-Unsubscribe", format!("<{url}>, <{mailto}>")))
        .raw_header(header(
            "List-Unsubscribe-Post",
            "List-Unsubscribe=One-Click".to_string(),
        ))
}

/// The message as it goes out: DKIM-signed when there is a signer, from the
/// VERP envelope sender when there is one.
fn signed(
    mut message: Message,
    message_id: String,
    signer: Option<&Signer>,
    returns: Option<&Returns>,
) -> Result<Composed, ComposeError> {
    if let Some(signer) = signer {
        message.sign(&signer.config);
    }
    let envelope = match returns {
        Some(returns) => lettre::address::Envelope::new(
            Some(returns.envelope_sender.clone()),
            message.envelope().to().to_vec(),
        )
        .map_err(|e| ComposeError::Build(e.to_string()))?,
        None => message.envelope().clone(),
    };
    Ok(Composed {
        message_id,
        envelope,
        bytes: message.formatted(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SubscriberStatus;
    use std::path::Path;

    fn digest_config() -> DigestConfig {
        DigestConfig {
            schedule: "0 8 * * MON".parse().unwrap(),
            schedule_text: "0 8 * * MON".into(),
            from: "Shorts <digest@example.org>".parse().unwrap(),
            reply_to: None,
            subject: String::new(),
            postal_address: "1 Street".into(),
            list_id: "Shorts <digest.example.org>".into(),
            unsubscribe_mailto: "unsubscribe@example.org".parse().unwrap(),
            grace: chrono::Duration::hours(24),
            cadences: Vec::new(),
        }
    }

    fn rendered(subject: &str) -> RenderedDigest {
        RenderedDigest {
            subject: subject.into(),
            html: "<p>html</p>".into(),
            text: "text".into(),
            count: 1,
        }
    }

    /// Subscriber 7, reader@example.com.
    fn reader(name: &str, status: SubscriberStatus) -> Subscriber {
        Subscriber {
            id: 7,
            email: "reader@example.com".into(),
            name: name.into(),
            tracks: vec![],
            tags: vec![],
            status,
            token_id: "t".into(),
            cadence: String::new(),
            paused: false,
        }
    }

    /// A bounce address at example.org, with the VERP sender `local`.
    fn returns(local: &str) -> Returns {
        Returns {
            envelope_sender: format!("{local}@example.org").parse().unwrap(),
            feedback: "bounces@example.org".parse().unwrap(),
        }
    }

    /// Both complaint-routing headers, once each, as composed.
    fn assert_feedback_headers(message: &str, feedback_id: &str) {
        for header in [
            format!("\r\nFeedback-ID: {feedback_id}\r\n"),
            "\r\nCFBL-Address: bounces@example.org; report=arf\r\n".to_string(),
        ] {
            assert_eq!(
                message.matches(&header).count(),
                1,
                "{header:?} in {message}"
            );
        }
    }

    /// Digest 3 to subscriber 7, named `name`.
    fn composed(
        name: &str,
        subject: &str,
        signer: Option<&Signer>,
        returns: Option<Returns>,
    ) -> Composed {
        let config = digest_config();
        let subscriber = reader(name, SubscriberStatus::Active);
        let envelope = Envelope {
            config: &config,
            digest: 3,
            subscriber: &subscriber,
            unsubscribe_url: "https://example.org/unsubscribe?token=abc",
            unsubscribe_token: "abc",
            date: DateTime::UNIX_EPOCH,
            returns,
        };
        let composed = compose(&envelope, DigestParts::of(&rendered(subject)), signer).unwrap();
        assert_eq!(composed.message_id, "<digest-3.s7@example.org>");
        composed
    }

    fn compose_for(name: &str, subject: &str, signer: Option<&Signer>) -> String {
        String::from_utf8(composed(name, subject, signer, None).bytes).unwrap()
    }

    /// The header block: everything before the first empty line.
    fn header_names(message: &str) -> Vec<String> {
        message
            .split("\r\n\r\n")
            .next()
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with([' ', '\t']))
            .filter_map(|l| l.split(':').next())
            .map(str::to_ascii_lowercase)
            .collect()
    }

    #[test]
    fn line_breaks_in_names_and_subjects_cannot_add_headers() {
        let message = compose_for(
            "Eve\r\nBcc: victim@example.net",
            "Hello\r\nBcc: victim@example.net\r\n\r\nbody",
            None,
        );
        let names = header_names(&message);
        assert!(!names.contains(&"bcc".to_string()), "{message}");
        for once in [
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "list-id",
            "list-unsubscribe",
            "list-unsubscribe-post",
        ] {
            assert_eq!(
                names.iter().filter(|n| *n == once).count(),
                1,
                "{once} once in:\n{message}"
            );
        }
    }

    /// A signer with a fixed Ed25519 key; the folder holds the key file.
    fn ed25519_signer() -> (tempfile::TempDir, Signer) {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("dkim.key");
        // An Ed25519 seed: 32 bytes, base64.
        std::fs::write(&key, "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=").unwrap();
        let signer = Signer::load(&DkimConfig {
            domain: "example.org".into(),
            selector: "shorts".into(),
            private_key_path: key,
            algorithm: DkimAlgorithm::Ed25519,
        })
        .unwrap();
        (dir, signer)
    }

    fn signer_for(key: &str, algorithm: DkimAlgorithm) -> Signer {
        let key = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/dkim")
            .join(key);
        Signer::load(&DkimConfig {
            domain: "example.org".into(),
            selector: "shorts".into(),
            private_key_path: key,
            algorithm,
        })
        .unwrap()
    }

    /// What `openssl genrsa` (PKCS#8 since OpenSSL 3), `openssl rsa
    /// -traditional` (PKCS#1) and `openssl genpkey -algorithm ed25519` write
    /// all sign; `.ci/run` has dkimpy verify a PKCS#8 key's signatures.
    #[test]
    fn keys_as_openssl_writes_them_sign() {
        for (key, algorithm, tag) in [
            ("rsa-pkcs8.pem", DkimAlgorithm::Rsa, "a=rsa-sha256"),
            ("rsa-pkcs1.pem", DkimAlgorithm::Rsa, "a=rsa-sha256"),
            (
                "ed25519-pkcs8.pem",
                DkimAlgorithm::Ed25519,
                "a=ed25519-sha256",
            ),
        ] {
            let signer = signer_for(key, algorithm);
            let composed = notice_for("confirm", None, Some(&signer), None);
            let message = String::from_utf8(composed.bytes).unwrap();
            assert!(message.contains(tag), "{key}: {message}");
        }
    }

    #[test]
    fn a_key_of_the_wrong_algorithm_is_refused_with_the_setting_to_change() {
        let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dkim/rsa-pkcs8.pem");
        let error = Signer::load(&DkimConfig {
            domain: "example.org".into(),
            selector: "shorts".into(),
            private_key_path: key.clone(),
            algorithm: DkimAlgorithm::Ed25519,
        })
        .err()
        .unwrap();
        assert_eq!(
            error.to_string(),
            format!(
                "DKIM key {}: this is an RSA key; set `algorithm = \"rsa\"` in [delivery.dkim]",
                key.display()
            )
        );
    }

    fn rendered_mail() -> RenderedMail {
        RenderedMail {
            subject: "Confirm your subscription to Site".into(),
            text: "https://example.org/confirm?token=x".into(),
            html: "<p>confirm</p>".into(),
        }
    }

    fn notice_for(
        kind: &'static str,
        unsubscribe: Option<(&str, &str)>,
        signer: Option<&Signer>,
        returns: Option<&Returns>,
    ) -> Composed {
        let when = chrono::DateTime::parse_from_rfc3339("2026-06-08T09:00:00Z").unwrap();
        let notice = Notice {
            config: &digest_config(),
            kind,
            to: "reader@example.com",
            rendered: &rendered_mail(),
            message_id: "<confirm-1@example.org>".into(),
            date: when.to_utc(),
            unsubscribe,
        };
        super::notice(&notice, signer, returns).unwrap()
    }

    #[test]
    fn subscription_emails_are_signed_like_digests() {
        let (_dir, signer) = ed25519_signer();
        let text = |composed: Composed| String::from_utf8(composed.bytes).unwrap();
        assert!(
            text(notice_for("confirm", None, Some(&signer), None))
                .contains("DKIM-Signature: v=1; a=ed25519-sha256; d=example.org;")
        );
        assert!(!text(notice_for("confirm", None, None, None)).contains("DKIM-Signature"));
        let returns = returns("bounces+c7-0123456789abcdef");
        let composed = notice_for("confirm", None, None, Some(&returns));
        assert_eq!(composed.envelope.from(), Some(&returns.envelope_sender));
        let message = text(composed);
        assert_feedback_headers(&message, "confirm:subscription:example.org");
    }

    #[test]
    fn only_emails_to_a_subscriber_carry_list_unsubscribe() {
        let names = |composed: Composed| header_names(&String::from_utf8(composed.bytes).unwrap());
        let confirm = names(notice_for("confirm", None, None, None));
        assert!(
            !confirm.iter().any(|h| h.starts_with("list-")),
            "{confirm:?}"
        );
        let unsubscribe = Some(("https://example.org/unsubscribe?token=t", "t"));
        let welcome = names(notice_for("welcome", unsubscribe, None, None));
        for header in ["list-id", "list-unsubscribe", "list-unsubscribe-post"] {
            assert!(welcome.iter().any(|h| h == header), "{header}: {welcome:?}");
        }
    }

    #[test]
    fn dkim_signature_covers_the_unsubscribe_headers() {
        let (_dir, signer) = ed25519_signer();
        let message = compose_for("Reader", "Digest", Some(&signer));
        let signature: String = message
            .split("\r\n")
            .skip_while(|l| !l.starts_with("DKIM-Signature:"))
            .take_while(|l| l.starts_with("DKIM-Signature:") || l.starts_with([' ', '\t']))
            .collect();
        assert!(signature.contains("d=example.org"), "{signature}");
        assert!(signature.contains("a=ed25519-sha256"), "{signature}");
        assert!(signature.contains("c=relaxed/relaxed"), "{signature}");
        let signed = signature
            .split("h=")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_ascii_lowercase();
        for header in [
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "list-unsubscribe",
            "list-unsubscribe-post",
            "cfbl-address",
            "feedback-id",
        ] {
            assert!(
                signed.split(':').any(|h| h.trim() == header),
                "{header} not in h={signed}"
            );
        }
    }

    #[test]
    fn a_bounce_address_sets_the_envelope_sender_and_the_feedback_headers() {
        let returns = returns("bounces+d3-7-0123456789abcdef");
        let composed = composed("", "Digest", None, Some(returns.clone()));
        assert_eq!(composed.envelope.from(), Some(&returns.envelope_sender));
        assert_eq!(
            composed.envelope.to(),
            ["reader@example.com".parse::<Address>().unwrap()]
        );
        let message = String::from_utf8(composed.bytes).unwrap();
        assert_feedback_headers(&message, "digest-3:digest:example.org");
        // The From header stays the author's: only the envelope changes.
        assert!(
            message.starts_with("From: Shorts <digest@example.org>\r\n"),
            "{message}"
        );
    }

    #[test]
    fn a_bad_dkim_key_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("bad.pem");
        std::fs::write(&key, "not a key").unwrap();
        let err = Signer::load(&DkimConfig {
            domain: "example.org".into(),
            selector: "s".into(),
            private_key_path: key.clone(),
            algorithm: DkimAlgorithm::Rsa,
        })
        .err()
        .unwrap();
        assert!(
            err.to_string()
                .starts_with(&format!("DKIM key {}", key.display())),
            "{err}"
        );
    }
}
