//! Signed tokens for the links in emails (unsubscribe, preferences, confirm).
//!
//! A token names a purpose, a subscriber's random `token_id` and optionally an
//! expiry, and carries an HMAC-SHA256 over them with the site's secret. The
//! secret comes from `SHORTS_SECRET`, or else from a random key created once
//! beside the database with 0600 permissions; it never lives in config.toml.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SECRET_ENV: &str = "SHORTS_SECRET";
const SECRET_FILE: &str = "secret.key";

/// What a token lets its bearer do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Unsubscribe,
    Preferences,
    Confirm,
}

impl Purpose {
    fn tag(self) -> &'static str {
        match self {
            Purpose::Unsubscribe => "u",
            Purpose::Preferences => "p",
            Purpose::Confirm => "c",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the link is malformed")]
    Malformed,
    #[error("the link's signature does not match")]
    BadSignature,
    #[error("the link is for something else")]
    WrongPurpose,
    #[error("the link has expired")]
    Expired,
}

/// The signing key.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// `SHORTS_SECRET` if set, else the key file in `data_dir` (created on first use).
    pub fn load(data_dir: &Path) -> std::io::Result<Secret> {
        match std::env::var(SECRET_ENV) {
            Ok(value) if value.len() >= 16 => Ok(Secret(value.into_bytes())),
            Ok(_) => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{SECRET_ENV} is shorter than 16 characters; use a long random value"),
            )),
            Err(_) => Self::from_key_file(&data_dir.join(SECRET_FILE)),
        }
    }

    /// Like [`Secret::load`] but never creates the key file: with no secret
    /// anywhere, a throwaway one (for previews, whose links need not work).
    pub fn load_without_creating(data_dir: &Path) -> Secret {
        if let Ok(value) = std::env::var(SECRET_ENV) {
            return Secret(value.into_bytes());
        }
        match std::fs::read(data_dir.join(SECRET_FILE)) {
            Ok(bytes) if bytes.len() >= 32 => Secret(bytes),
            _ => Secret(random_id().into_bytes()),
        }
    }

    fn from_key_file(path: &Path) -> std::io::Result<Secret> {
        if let Ok(bytes) = std::fs::read(path)
            && bytes.len() >= 32
        {
            return Ok(Secret(bytes));
        }
        if let Some(parent) = path.parent() {
            crate::private::create_dir(parent)?;
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(std::io::Error::other)?;
        match crate::private::create_new_file(path) {
            Ok(mut file) => {
                file.write_all(&key)?;
                file.sync_all()?;
                Ok(Secret(key.to_vec()))
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok(Secret(std::fs::read(path)?))
            }
            Err(e) => Err(e),
        }
    }

    pub fn from_bytes(bytes: &[u8]) -> Secret {
        Secret(bytes.to_vec())
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(payload.as_bytes());
        mac
    }

    /// A URL-safe token for `purpose` and `token_id`, valid until `expires` if given.
    pub fn sign(&self, purpose: Purpose, token_id: &str, expires: Option<DateTime<Utc>>) -> String {
        let expiry = expires.map_or(String::new(), |t| t.timestamp().to_string());
        let payload = format!("{}.{token_id}.{expiry}", purpose.tag());
        let signature = URL_SAFE_NO_PAD.encode(self.mac(&payload).finalize().into_bytes());
        format!("{payload}.{signature}")
    }

    /// The `token_id` a token was signed for; the signature is compared in constant time.
    pub fn verify(
        &self,
        token: &str,
        purpose: Purpose,
        now: DateTime<Utc>,
    ) -> Result<String, TokenError> {
        let (payload, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        self.mac(payload)
            .verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;
        let mut parts = payload.splitn(3, '.');
        let (tag, token_id, expiry) = match (parts.next(), parts.next(), parts.next()) {
            (Some(tag), Some(id), Some(expiry)) => (tag, id, expiry),
            _ => return Err(TokenError::Malformed),
        };
        if tag != purpose.tag() {
            return Err(TokenError::WrongPurpose);
        }
        if !expiry.is_empty() {
            let expiry: i64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
            if now.timestamp() > expiry {
                return Err(TokenError::Expired);
            }
        }
        Ok(token_id.to_string())
    }
}

impl Secret {
    /// A short signature of `payload` for places whose length and case are
    /// not ours to keep, such as the local part of a return address (at most
    /// 64 characters, and some servers lower-case it): 16 lower-case hex
    /// digits, 64 bits of the HMAC, enough that a forged one is never guessed.
    pub fn short_signature(&self, payload: &str) -> String {
        let full = self.mac(payload).finalize().into_bytes();
        full.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `signature` is [`Secret::short_signature`] of `payload`,
    /// whatever its case; compared in constant time.
    pub fn verify_short_signature(&self, payload: &str, signature: &str) -> bool {
        let expected = self.short_signature(payload);
        let given = signature.to_ascii_lowercase();
        expected.len() == given.len()
            && expected
                .bytes()
                .zip(given.bytes())
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }
}

/// 128 random bits as 32 hex digits.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    // The OS random source failing is not recoverable in any useful way.
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 8, 8, 0, 0).unwrap()
    }

    #[test]
    fn signs_and_verifies() {
        let secret = Secret::from_bytes(b"0123456789abcdef0123456789abcdef");
        let token = secret.sign(Purpose::Unsubscribe, "abc123", None);
        assert_eq!(
            secret.verify(&token, Purpose::Unsubscribe, now()),
            Ok("abc123".into())
        );
        assert_eq!(
            secret.verify(&token, Purpose::Preferences, now()),
            Err(TokenError::WrongPurpose)
        );
        let other = Secret::from_bytes(b"another secret, another signature");
        assert_eq!(
            other.verify(&token, Purpose::Unsubscribe, now()),
            Err(TokenError::BadSignature)
        );
        let forged = token.replace("abc123", "abc124");
        assert_eq!(
            secret.verify(&forged, Purpose::Unsubscribe, now()),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            secret.verify("nonsense", Purpose::Unsubscribe, now()),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn expired_tokens_are_refused() {
        let secret = Secret::from_bytes(b"0123456789abcdef0123456789abcdef");
        let token = secret.sign(Purpose::Confirm, "x", Some(now()));
        assert!(secret.verify(&token, Purpose::Confirm, now()).is_ok());
        let later = now() + chrono::Duration::seconds(1);
        assert_eq!(
            secret.verify(&token, Purpose::Confirm, later),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn key_file_is_created_once_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/secret.key");
        let first = Secret::from_key_file(&path).unwrap();
        let second = Secret::from_key_file(&path).unwrap();
        assert_eq!(first.0, second.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
