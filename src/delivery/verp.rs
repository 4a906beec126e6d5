//! The return path that names its delivery (VERP): every message goes out
//! with the envelope sender `<local>+<token>@<domain>` built from
//! `[delivery] bounce_address`, so a bounce that comes back to it is matched
//! to the digest and subscriber it is about without reading its body.
//!
//! The token is signed with the site's secret (a bounce is evidence against a
//! subscriber, so it must not be forgeable) and uses only lower-case letters,
//! digits and hyphens, since servers may change the case of a local part.
//! This module builds and reads the address; acting on a bounce is not its job.

use lettre::Address;

use super::compose::Returns;
use crate::tokens::Secret;

/// What a message that can come back was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Digest `digest` to subscriber `subscriber`.
    Digest { digest: i64, subscriber: i64 },
    /// The double opt-in email to subscriber `subscriber`.
    Confirmation { subscriber: i64 },
}

/// Why a return address was not recognised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerpError {
    #[error("{0:?} is not an address at the bounce address's domain with a `+` token")]
    NotOurs(String),
    #[error("the token {0:?} is malformed")]
    Malformed(String),
    #[error("the token {0:?} is not signed by this site")]
    Forged(String),
}

impl Sent {
    /// The signed part: `d12-345` or `c345`.
    fn payload(self) -> String {
        match self {
            Sent::Digest { digest, subscriber } => format!("d{digest}-{subscriber}"),
            Sent::Confirmation { subscriber } => format!("c{subscriber}"),
        }
    }

    fn from_payload(payload: &str) -> Option<Sent> {
        if let Some(rest) = payload.strip_prefix('d') {
            let (digest, subscriber) = rest.split_once('-')?;
            return Some(Sent::Digest {
                digest: digest.parse().ok()?,
                subscriber: subscriber.parse().ok()?,
            });
        }
        let subscriber = payload.strip_prefix('c')?.parse().ok()?;
        Some(Sent::Confirmation { subscriber })
    }
}

/// The envelope sender for `sent`: `bounces+d12-345-<signature>@example.org`.
pub fn return_path(bounce: &Address, secret: &Secret, sent: Sent) -> Address {
    let payload = sent.payload();
    let signature = secret.short_signature(&format!("verp.{payload}"));
    let local = format!("{}+{payload}-{signature}", bounce.user());
    // The user part of a valid address, a `+` and [a-z0-9-]: always valid.
    Address::new(local, bounce.domain()).unwrap_or_else(|_| bounce.clone())
}

/// Where what comes back from `sent` goes, when there is a `bounce` address.
pub fn returns(bounce: Option<&Address>, secret: &Secret, sent: Sent) -> Option<Returns> {
    bounce.map(|bounce| Returns {
        envelope_sender: return_path(bounce, secret, sent),
        feedback: bounce.clone(),
    })
}

/// What `address` (a bounce's recipient, or a DSN's original envelope
/// sender) says was sent, if it is one of ours and its signature holds.
pub fn read(address: &str, bounce: &Address, secret: &Secret) -> Result<Sent, VerpError> {
    let not_ours = || VerpError::NotOurs(address.to_string());
    let address = address.trim().trim_matches(['<', '>']);
    let (local, domain) = address.rsplit_once('@').ok_or_else(not_ours)?;
    let (user, token) = local.split_once('+').ok_or_else(not_ours)?;
    if !domain.eq_ignore_ascii_case(bounce.domain()) || !user.eq_ignore_ascii_case(bounce.user()) {
        return Err(not_ours());
    }
    let token = token.to_ascii_lowercase();
    let malformed = || VerpError::Malformed(token.clone());
    let (payload, signature) = token.rsplit_once('-').ok_or_else(malformed)?;
    let sent = Sent::from_payload(payload).ok_or_else(malformed)?;
    if !secret.verify_short_signature(&format!("verp.{payload}"), signature) {
        return Err(VerpError::Forged(token.clone()));
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::from_bytes(b"0123456789abcdef0123456789abcdef")
    }

    fn bounce() -> Address {
        "bounces@shorts.example.org".parse().unwrap()
    }

    #[test]
    fn a_return_path_reads_back_as_what_was_sent() {
        for sent in [
            Sent::Digest {
                digest: 12,
                subscriber: 345,
            },
            Sent::Confirmation { subscriber: 7 },
        ] {
            let address = return_path(&bounce(), &secret(), sent);
            assert!(address.user().starts_with("bounces+"), "{address}");
            assert!(address.user().len() <= 64, "RFC 5321 local part limit");
            assert_eq!(
                read(AsRef::<str>::as_ref(&address), &bounce(), &secret()),
                Ok(sent)
            );
            // Some servers upper-case the local part, others the domain.
            let shouted = format!("<{}>", address.to_string().to_ascii_uppercase());
            assert_eq!(read(&shouted, &bounce(), &secret()), Ok(sent));
        }
    }

    #[test]
    fn forged_foreign_and_malformed_addresses_are_refused() {
        let sent = Sent::Digest {
            digest: 1,
            subscriber: 2,
        };
        let address = return_path(&bounce(), &secret(), sent).to_string();
        let other = Secret::from_bytes(b"another secret, another signature");
        assert!(matches!(
            read(&address, &bounce(), &other),
            Err(VerpError::Forged(_))
        ));
        // The same signature moved to another subscriber.
        let moved = address.replace("d1-2-", "d1-3-");
        assert!(matches!(
            read(&moved, &bounce(), &secret()),
            Err(VerpError::Forged(_))
        ));
        for foreign in [
            "bounces@shorts.example.org",
            "someone+d1-2-00@shorts.example.org",
            &address.replace("shorts.example.org", "example.com"),
        ] {
            assert!(
                matches!(
                    read(foreign, &bounce(), &secret()),
                    Err(VerpError::NotOurs(_))
                ),
                "{foreign}"
            );
        }
        for malformed in [
            "bounces+d1@shorts.example.org",
            "bounces+x1-00@shorts.example.org",
        ] {
            assert!(
                matches!(
                    read(malformed, &bounce(), &secret()),
                    Err(VerpError::Malformed(_))
                ),
                "{malformed}"
            );
        }
    }
}
