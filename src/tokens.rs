//! Signed tokens for the links in emails (unsubscribe, preferences, confirm).
//!
//! A token names a purpose, a subscriber's random `token_id` and optionally an
//! expiry, and carries an HMAC-SHA256 over them with the site's secret. The
//! secret comes from `SHORTS_SECRET`, or else from a random key created once
//! in `data/` with 0600 permissions; it never lives in config.toml. A
//! database shared by several hosts (PostgreSQL) takes `SHORTS_SECRET`
//! only: a key file would be one host's, and the links it signs would not
//! work on the others.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::store::Location;

pub const SECRET_ENV: &str = "SHORTS_SECRET";
/// The key file in `data/`, for a database of this host's own.
pub const SECRET_FILE: &str = "secret.key";
/// How `SHORTS_SECRET` says it holds a key's bytes in base64.
const BASE64_PREFIX: &str = "base64:";

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

/// Why there is no signing key to use.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "{SECRET_ENV} is shorter than 16 characters (16 bytes after `base64:`); use a long random value"
    )]
    TooShort,
    #[error("{SECRET_ENV} starts with `base64:` but what follows is not base64")]
    NotBase64,
    #[error(
        "the database {database} is shared by every host that uses it, so they must sign links with one key: set {SECRET_ENV} to the same long random value on each (`openssl rand -base64 32` makes one); a key file in data/ would be this host's alone, and links it signs would fail on the others"
    )]
    SharedDatabase { database: String },
    #[error("the signing key {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
}

impl SecretError {
    /// A setting to fix (exit 1), not a failure of the run.
    pub fn is_setting(&self) -> bool {
        !matches!(self, SecretError::KeyFile { .. })
    }
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
    /// `SHORTS_SECRET` if set; else, for a database of this host's own (an
    /// SQLite file), the key file in `data_dir` (created on first use).
    pub fn load(data_dir: &Path, database: &Location) -> Result<Secret, SecretError> {
        Self::resolve(std::env::var(SECRET_ENV).ok(), data_dir, database)
    }

    /// `SHORTS_SECRET`'s value: the key itself, or `base64:` and the key's
    /// bytes in base64, which carries a key file over to the environment
    /// (`SHORTS_SECRET=base64:$(base64 -w0 data/secret.key)`), so the links
    /// in emails sent before a move to a shared database keep working.
    fn from_env_value(value: String) -> Result<Secret, SecretError> {
        let key = match value.strip_prefix(BASE64_PREFIX) {
            Some(encoded) => base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| SecretError::NotBase64)?,
            None => value.into_bytes(),
        };
        if key.len() < 16 {
            return Err(SecretError::TooShort);
        }
        Ok(Secret(key))
    }

    /// [`Secret::load`] with `SHORTS_SECRET`'s value given.
    fn resolve(
        from_env: Option<String>,
        data_dir: &Path,
        database: &Location,
    ) -> Result<Secret, SecretError> {
        match (from_env, database) {
            (Some(value), _) => Self::from_env_value(value),
            (None, Location::Postgres(_)) => Err(SecretError::SharedDatabase {
                database: database.to_string(),
            }),
            (None, Location::File(_)) => {
                let path = data_dir.join(SECRET_FILE);
                Self::from_key_file(&path).map_err(|source| SecretError::KeyFile {
                    path: path.display().to_string(),
                    source,
                })
            }
        }
    }

    /// Like [`Secret::load`] but never creates the key file: with no secret
    /// anywhere, a throwaway one (for previews, whose links need not work).
    pub fn load_without_creating(data_dir: &Path) -> Secret {
        if let Some(secret) = std::env::var(SECRET_ENV)
            .ok()
            .and_then(|value| Self::from_env_value(value).ok())
        {
            return secret;
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
    fn a_shared_database_takes_the_secret_from_the_environment_only() {
        let dir = tempfile::tempdir().unwrap();
        let shared = Location::Postgres("postgres://shorts:hunter2@db.internal/list".into());
        let refused = Secret::resolve(None, dir.path(), &shared).unwrap_err();
        assert!(refused.is_setting());
        let message = refused.to_string();
        assert!(message.contains("set SHORTS_SECRET"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
        assert!(
            !dir.path().join(SECRET_FILE).exists(),
            "no key file is made"
        );
        let value = "a long random value, the same on every host".to_string();
        let secret = Secret::resolve(Some(value.clone()), dir.path(), &shared).unwrap();
        assert_eq!(secret.0, value.into_bytes());
        assert!(matches!(
            Secret::resolve(Some("short".into()), dir.path(), &shared),
            Err(SecretError::TooShort)
        ));
        let own = Location::File(dir.path().join("shorts.db"));
        let from_file = Secret::resolve(None, dir.path(), &own).unwrap();
        assert!(dir.path().join(SECRET_FILE).exists());
        assert_eq!(from_file.0.len(), 32);
    }

    #[test]
    fn a_key_file_carries_over_to_the_environment_in_base64() {
        let dir = tempfile::tempdir().unwrap();
        let own = Location::File(dir.path().join("shorts.db"));
        let from_file = Secret::resolve(None, dir.path(), &own).unwrap();
        let encoded = base64::engine::general_purpose::STANDARD.encode(&from_file.0);
        let shared = Location::Postgres("postgres://db.internal/list".into());
        // As `$(base64 -w0 …)` gives it, or with the newline plain `base64` adds.
        for value in [format!("base64:{encoded}"), format!("base64:{encoded}\n")] {
            let carried = Secret::resolve(Some(value), dir.path(), &shared).unwrap();
            let token = from_file.sign(Purpose::Unsubscribe, "abc", None);
            assert_eq!(
                carried.verify(&token, Purpose::Unsubscribe, now()),
                Ok("abc".into())
            );
        }
        assert!(matches!(
            Secret::resolve(Some("base64:not base64!".into()), dir.path(), &shared),
            Err(SecretError::NotBase64)
        ));
        assert!(matches!(
            Secret::resolve(Some("base64:c2hvcnQ=".into()), dir.path(), &shared),
            Err(SecretError::TooShort)
        ));
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
