//! One subscriber's rendered digest to a signed MIME message with every
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
use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, Message};

use crate::config::{DigestConfig, DkimAlgorithm, DkimConfig};
use crate::model::Subscriber;
use crate::render::digest::RenderedDigest;

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
        let key =
            DkimSigningKey::new(pem.trim(), algorithm).map_err(|e| ComposeError::DkimKey {
                path,
                message: format!(
                    "{e} (RSA keys are PKCS#1 PEM, Ed25519 keys base64 of the 32-byte seed)"
                ),
            })?;
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
}

pub fn compose(
    envelope: &Envelope<'_>,
    digest: &RenderedDigest,
    signer: Option<&Signer>,
) -> Result<Composed, ComposeError> {
    let config = envelope.config;
    let subscriber = envelope.subscriber;
    let address: Address = subscriber
        .email
        .parse()
        .map_err(|_| ComposeError::BadAddress(subscriber.email.clone()))?;
    let name = (!subscriber.name.is_empty()).then(|| subscriber.name.clone());
    let message_id = message_id(envelope.digest, subscriber.id, &config.from.email);
    let mailto = format!(
        "mailto:{}?subject=unsubscribe%20{}",
        config.unsubscribe_mailto, envelope.unsubscribe_token
    );
    let raw = |name: &'static str, value: String| {
        HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
    };
    let mut builder = Message::builder()
        .from(config.from.clone())
        .to(Mailbox::new(name, address))
        .subject(digest.subject.clone())
        .date(SystemTime::from(envelope.date))
        .message_id(Some(message_id.clone()))
        .raw_header(raw("List-Id", config.list_id.clone()))
        .raw_header(raw(
            "List-Unsubscribe",
            format!("<{}>, <{mailto}>", envelope.unsubscribe_url),
        ))
        .raw_header(raw(
            "List-Unsubscribe-Post",
            "List-Unsubscribe=One-Click".to_string(),
        ))
        .raw_header(raw("Auto-Submitted", "auto-generated".to_string()));
    if let Some(reply_to) = &config.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    let mut message = builder
        .multipart(MultiPart::alternative_plain_html(
            digest.text.clone(),
            digest.html.clone(),
        ))
        .map_err(|e| ComposeError::Build(e.to_string()))?;
    if let Some(signer) = signer {
        message.sign(&signer.config);
    }
    Ok(Composed {
        message_id,
        envelope: message.envelope().clone(),
        bytes: message.formatted(),
    })
}
