//! DKIM private keys as OpenSSL and other tools write them, turned into the
//! one form lettre's signer reads for each algorithm: PKCS#1 PEM for RSA,
//! the base64 of the 32-byte seed for Ed25519.
//!
//! Accepted: `BEGIN RSA PRIVATE KEY` (PKCS#1: `openssl genrsa` before 3.0,
//! `openssl rsa -traditional`), `BEGIN PRIVATE KEY` (PKCS#8: `openssl genrsa`
//! since 3.0, `openssl genpkey` for either algorithm) and a bare base64 seed.
//! Owns only the format; signing is lettre's, and which file to read is
//! `[delivery.dkim]`'s.

use base64::Engine as _;
use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
use rsa::pkcs8::der::asn1::ObjectIdentifier;
use rsa::pkcs8::{DecodePrivateKey, PrivateKeyInfo, SecretDocument};

use crate::config::DkimAlgorithm;

/// RFC 8410's id for Ed25519 keys.
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// The key in `text`, in the form lettre reads for `algorithm`, or what is
/// wrong with it, in words that say what to do.
pub fn for_lettre(text: &str, algorithm: DkimAlgorithm) -> Result<String, String> {
    let text = text.trim();
    let label = text
        .strip_prefix("-----BEGIN ")
        .and_then(|rest| rest.split_once("-----"))
        .map(|(label, _)| label);
    match (label, algorithm) {
        (None, DkimAlgorithm::Ed25519) | (Some("RSA PRIVATE KEY"), DkimAlgorithm::Rsa) => {
            Ok(text.to_string())
        }
        (Some("PRIVATE KEY"), _) => from_pkcs8(text, algorithm),
        (Some("RSA PRIVATE KEY"), DkimAlgorithm::Ed25519) => Err(mismatch("an RSA", "rsa")),
        (Some("ENCRYPTED PRIVATE KEY"), _) => Err("the key is protected by a passphrase; \
             write it out without one (`openssl pkey -in KEY -out PLAIN`)"
            .to_string()),
        (Some("OPENSSH PRIVATE KEY"), _) => Err("this is an OpenSSH key; DKIM needs a PEM key \
             (`openssl genrsa -out dkim.pem 2048` or `openssl genpkey -algorithm ed25519`)"
            .to_string()),
        (Some(other), _) => Err(format!(
            "a PEM \"{other}\" is not a private key; expected \"PRIVATE KEY\" (PKCS#8) \
             or \"RSA PRIVATE KEY\" (PKCS#1)"
        )),
        (None, DkimAlgorithm::Rsa) => Err("expected a PEM private key (a line \
             \"-----BEGIN PRIVATE KEY-----\" or \"-----BEGIN RSA PRIVATE KEY-----\")"
            .to_string()),
    }
}

fn from_pkcs8(pem: &str, algorithm: DkimAlgorithm) -> Result<String, String> {
    let unreadable = |e: &dyn std::fmt::Display| format!("not a readable PKCS#8 key: {e}");
    let (_, document) = SecretDocument::from_pem(pem).map_err(|e| unreadable(&e))?;
    let info = PrivateKeyInfo::try_from(document.as_bytes()).map_err(|e| unreadable(&e))?;
    let oid = info.algorithm.oid;
    match algorithm {
        DkimAlgorithm::Rsa if oid == rsa::pkcs1::ALGORITHM_OID => {
            let key = rsa::RsaPrivateKey::from_pkcs8_der(document.as_bytes())
                .map_err(|e| unreadable(&e))?;
            let pem = key
                .to_pkcs1_pem(LineEnding::LF)
                .map_err(|e| unreadable(&e))?;
            Ok(pem.as_str().to_string())
        }
        DkimAlgorithm::Ed25519 if oid == ED25519 => ed25519_seed(info.private_key),
        DkimAlgorithm::Rsa if oid == ED25519 => Err(mismatch("an Ed25519", "ed25519")),
        DkimAlgorithm::Ed25519 if oid == rsa::pkcs1::ALGORITHM_OID => {
            Err(mismatch("an RSA", "rsa"))
        }
        _ => Err(format!(
            "a key of algorithm {oid}; DKIM signs with RSA (1.2.840.113549.1.1.1) \
             or Ed25519 (1.3.101.112)"
        )),
    }
}

/// RFC 8410: the private key is an OCTET STRING holding the 32-byte seed.
fn ed25519_seed(private_key: &[u8]) -> Result<String, String> {
    match private_key {
        [0x04, 32, seed @ ..] if seed.len() == 32 => {
            Ok(base64::engine::general_purpose::STANDARD.encode(seed))
        }
        _ => Err("not a readable Ed25519 key: its seed is not 32 bytes".to_string()),
    }
}

fn mismatch(kind: &str, algorithm: &str) -> String {
    format!("this is {kind} key; set `algorithm = \"{algorithm}\"` in [delivery.dkim]")
}

#[cfg(test)]
mod tests {
    use super::*;

    // `openssl genpkey -algorithm ed25519` and the same seed, base64.
    const ED25519_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIHDpjbJKwABwa0RU2y0ZcJDL884cIw9Vgz27Klb+D+i8
-----END PRIVATE KEY-----
";
    const ED25519_SEED: &str = "cOmNskrAAHBrRFTbLRlwkMvzzhwjD1WDPbsqVv4P6Lw=";

    #[test]
    fn an_ed25519_pkcs8_key_becomes_its_seed() {
        assert_eq!(
            for_lettre(ED25519_PKCS8, DkimAlgorithm::Ed25519).unwrap(),
            ED25519_SEED
        );
        assert_eq!(
            for_lettre(ED25519_SEED, DkimAlgorithm::Ed25519).unwrap(),
            ED25519_SEED
        );
    }

    /// The same RSA key as `openssl genrsa` wrote it (PKCS#8) becomes what
    /// `openssl rsa -traditional` makes of it (PKCS#1), byte for byte.
    #[test]
    fn an_rsa_pkcs8_key_becomes_its_pkcs1_form() {
        let fixture = |name| {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dkim");
            std::fs::read_to_string(dir.join(name)).unwrap()
        };
        let pkcs1 = fixture("rsa-pkcs1.pem");
        let converted = for_lettre(&fixture("rsa-pkcs8.pem"), DkimAlgorithm::Rsa).unwrap();
        assert_eq!(converted.trim(), pkcs1.trim());
        assert_eq!(
            for_lettre(&pkcs1, DkimAlgorithm::Rsa).unwrap(),
            pkcs1.trim()
        );
    }

    #[test]
    fn a_key_of_the_other_algorithm_says_which_to_set() {
        assert_eq!(
            for_lettre(ED25519_PKCS8, DkimAlgorithm::Rsa).unwrap_err(),
            "this is an Ed25519 key; set `algorithm = \"ed25519\"` in [delivery.dkim]"
        );
    }

    #[test]
    fn what_is_not_a_usable_key_is_named() {
        let cases = [
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n",
                "passphrase",
            ),
            ("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n", "OpenSSH key"),
            (
                "-----BEGIN PUBLIC KEY-----\nAAAA\n",
                "\"PUBLIC KEY\" is not a private key",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "not a readable PKCS#8 key",
            ),
            (
                "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
                "expected a PEM private key",
            ),
        ];
        for (text, expected) in cases {
            let error = for_lettre(text, DkimAlgorithm::Rsa).unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }
}
