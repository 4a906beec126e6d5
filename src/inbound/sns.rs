//! Amazon SNS messages as SNS posts them to an HTTP(S) endpoint, and
//! whether one is genuine: its topic is one we subscribed to, its signing
//! certificate comes from an SNS host, and its signature verifies with that
//! certificate (AWS's "Verifying the signatures of Amazon SNS messages").
//!
//! Pure: this module fetches nothing. The caller fetches the certificate
//! from [`Message::signing_cert_url`] only after that has passed the host
//! check here, and hands its bytes to [`Message::verify`].

use base64::Engine as _;
use ring::signature;
use rustls::pki_types::{AlgorithmIdentifier, CertificateDer, InvalidSignature, alg_id};
use serde::Deserialize;
use url::Url;

/// The JSON document of an SNS HTTP(S) request.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Message {
    #[serde(rename = "Type")]
    pub kind: String,
    pub message_id: String,
    pub topic_arn: String,
    pub message: String,
    pub timestamp: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(rename = "SubscribeURL", alias = "SubscribeUrl", default)]
    pub subscribe_url: Option<String>,
    pub signature_version: String,
    pub signature: String,
    #[serde(rename = "SigningCertURL", alias = "SigningCertUrl")]
    pub signing_cert_url: String,
}

/// Why an SNS message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnsError {
    #[error("the body is not an SNS message: {0}")]
    NotSns(String),
    #[error(
        "SNS message type {0:?} is not Notification, SubscriptionConfirmation or UnsubscribeConfirmation"
    )]
    UnknownType(String),
    #[error("topic {0} is not in `[inbound.webhooks] sns_topic_arns`")]
    UnknownTopic(String),
    #[error("{0}")]
    BadUrl(String),
    #[error("SignatureVersion {0:?} is neither \"1\" (SHA1withRSA) nor \"2\" (SHA256withRSA)")]
    UnknownSignatureVersion(String),
    #[error("the signing certificate cannot be read: {0}")]
    BadCertificate(String),
    #[error("the signature does not match the message and its signing certificate")]
    BadSignature,
}

impl Message {
    /// Parses an SNS request body.
    pub fn parse(body: &[u8]) -> Result<Message, SnsError> {
        let message: Message =
            serde_json::from_slice(body).map_err(|e| SnsError::NotSns(e.to_string()))?;
        match message.kind.as_str() {
            "Notification" | "SubscriptionConfirmation" | "UnsubscribeConfirmation" => Ok(message),
            other => Err(SnsError::UnknownType(other.to_string())),
        }
    }

    /// Refuses a topic not in `topics` (exact ARNs).
    pub fn check_topic(&self, topics: &[String]) -> Result<(), SnsError> {
        if topics.iter().any(|t| t == &self.topic_arn) {
            Ok(())
        } else {
            Err(SnsError::UnknownTopic(self.topic_arn.clone()))
        }
    }

    /// The signing certificate's URL, once it is known to be an SNS
    /// certificate: `https://sns.<region>.amazonaws.com/SimpleNotificationService-….pem`.
    pub fn signing_cert_url(&self) -> Result<Url, SnsError> {
        let url = sns_url(&self.signing_cert_url, "SigningCertURL")?;
        let path = url.path();
        let is_cert = path.starts_with("/SimpleNotificationService-")
            && path.ends_with(".pem")
            && url.query().is_none();
        if is_cert {
            Ok(url)
        } else {
            Err(SnsError::BadUrl(format!(
                "SigningCertURL {} is not an SNS certificate (/SimpleNotificationService-….pem)",
                self.signing_cert_url
            )))
        }
    }

    /// The URL that confirms a subscription, once it is known to be SNS's.
    pub fn subscribe_url(&self) -> Result<Url, SnsError> {
        let url = self.subscribe_url.as_deref().unwrap_or("");
        sns_url(url, "SubscribeURL")
    }

    /// The text SNS signed: each field's name and value, one per line, in
    /// the order AWS documents for the message type.
    pub fn string_to_sign(&self) -> String {
        let fields: &[(&str, Option<&str>)] = if self.kind == "Notification" {
            &[
                ("Message", Some(&self.message)),
                ("MessageId", Some(&self.message_id)),
                ("Subject", self.subject.as_deref()),
                ("Timestamp", Some(&self.timestamp)),
                ("TopicArn", Some(&self.topic_arn)),
                ("Type", Some(&self.kind)),
            ]
        } else {
            &[
                ("Message", Some(&self.message)),
                ("MessageId", Some(&self.message_id)),
                ("SubscribeURL", self.subscribe_url.as_deref()),
                ("Timestamp", Some(&self.timestamp)),
                ("Token", self.token.as_deref()),
                ("TopicArn", Some(&self.topic_arn)),
                ("Type", Some(&self.kind)),
            ]
        };
        fields
            .iter()
            .filter_map(|(name, value)| value.map(|v| format!("{name}\n{v}\n")))
            .collect()
    }

    /// Checks the signature against `certificate` (DER, from the checked
    /// [`Message::signing_cert_url`]).
    pub fn verify(&self, certificate: &[u8]) -> Result<(), SnsError> {
        let algorithm: &dyn rustls::pki_types::SignatureVerificationAlgorithm =
            match self.signature_version.as_str() {
                "1" => &RSA_PKCS1_SHA1,
                "2" => webpki::ring::RSA_PKCS1_2048_8192_SHA256,
                other => return Err(SnsError::UnknownSignatureVersion(other.to_string())),
            };
        let signature = base64::engine::general_purpose::STANDARD
            .decode(self.signature.trim())
            .map_err(|_| SnsError::BadSignature)?;
        let der = CertificateDer::from(certificate);
        let cert = webpki::EndEntityCert::try_from(&der)
            .map_err(|e| SnsError::BadCertificate(format!("{e:?}")))?;
        cert.verify_signature(algorithm, self.string_to_sign().as_bytes(), &signature)
            .map_err(|_| SnsError::BadSignature)
    }
}

/// `text` as a URL on an SNS host: https, `sns.<region>.amazonaws.com`
/// (or `.amazonaws.com.cn`), the default port, no user name.
pub fn sns_url(text: &str, field: &str) -> Result<Url, SnsError> {
    let bad = |why: &str| SnsError::BadUrl(format!("{field} {text:?} {why}"));
    let url = Url::parse(text).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if url.scheme() != "https" {
        return Err(bad("is not https"));
    }
    if url.port().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(bad("has a port or a user name"));
    }
    let host = url.host_str().unwrap_or("");
    if is_sns_host(host) {
        Ok(url)
    } else {
        Err(bad("is not on an SNS host (sns.<region>.amazonaws.com)"))
    }
}

/// `sns.<region>.amazonaws.com` or `sns.<region>.amazonaws.com.cn`, where
/// a region is lower-case letters, digits and hyphens.
fn is_sns_host(host: &str) -> bool {
    let Some(rest) = host.strip_prefix("sns.") else {
        return false;
    };
    let region = rest
        .strip_suffix(".amazonaws.com")
        .or_else(|| rest.strip_suffix(".amazonaws.com.cn"));
    region.is_some_and(|r| {
        r.len() >= 3
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

/// SHA1withRSA, what SNS signs with under SignatureVersion 1 (its default).
/// webpki has no SHA-1 algorithm, since certificates must not use it; ring
/// keeps one for verifying legacy signatures such as these.
#[derive(Debug)]
struct RsaSha1;

static RSA_PKCS1_SHA1: RsaSha1 = RsaSha1;

/// sha1WithRSAEncryption (1.2.840.113549.1.1.5) with NULL parameters.
const SHA1_WITH_RSA: AlgorithmIdentifier = AlgorithmIdentifier::from_slice(&[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05, 0x00,
]);

impl rustls::pki_types::SignatureVerificationAlgorithm for RsaSha1 {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        signature::UnparsedPublicKey::new(
            &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            public_key,
        )
        .verify(message, signature)
        .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_ENCRYPTION
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        SHA1_WITH_RSA
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: &str) -> Message {
        Message {
            kind: kind.into(),
            message_id: "id-1".into(),
            topic_arn: "arn:aws:sns:us-west-2:123456789012:MyTopic".into(),
            message: "Hello world!".into(),
            timestamp: "2012-05-02T00:54:06.655Z".into(),
            subject: None,
            token: Some("tok".into()),
            subscribe_url: Some(
                "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription".into(),
            ),
            signature_version: "2".into(),
            signature: String::new(),
            signing_cert_url:
                "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-abc.pem".into(),
        }
    }

    #[test]
    fn the_string_to_sign_follows_the_documented_order() {
        let mut notification = message("Notification");
        assert_eq!(
            notification.string_to_sign(),
            "Message\nHello world!\nMessageId\nid-1\nTimestamp\n2012-05-02T00:54:06.655Z\n\
             TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\nType\nNotification\n"
        );
        notification.subject = Some("My First Message".into());
        assert!(
            notification
                .string_to_sign()
                .contains("MessageId\nid-1\nSubject\nMy First Message\nTimestamp\n")
        );
        assert_eq!(
            message("SubscriptionConfirmation").string_to_sign(),
            "Message\nHello world!\nMessageId\nid-1\n\
             SubscribeURL\nhttps://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription\n\
             Timestamp\n2012-05-02T00:54:06.655Z\nToken\ntok\n\
             TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\nType\nSubscriptionConfirmation\n"
        );
    }

    #[test]
    fn only_sns_hosts_are_trusted() {
        let mut m = message("Notification");
        assert!(m.signing_cert_url().is_ok());
        for url in [
            "http://sns.us-west-2.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.us-west-2.amazonaws.com.evil.example/SimpleNotificationService-abc.pem",
            "https://evil.example/sns.us-west-2.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.us-west-2.amazonaws.com:8443/SimpleNotificationService-abc.pem",
            "https://x@sns.us-west-2.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://s3.us-west-2.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.us-west-2.amazonaws.com/bucket/cert.pem",
            "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-abc.pem?x=1",
            "not a url",
        ] {
            m.signing_cert_url = url.into();
            assert!(m.signing_cert_url().is_err(), "{url}");
        }
        assert!(is_sns_host("sns.cn-north-1.amazonaws.com.cn"));
        assert!(!is_sns_host("sns.amazonaws.com"));
        m.subscribe_url = Some("https://attacker.example/?Action=ConfirmSubscription".into());
        assert!(m.subscribe_url().is_err());
    }

    #[test]
    fn unknown_types_topics_and_versions_are_refused() {
        let m = message("Notification");
        assert!(m.check_topic(std::slice::from_ref(&m.topic_arn)).is_ok());
        assert_eq!(
            m.check_topic(&["arn:aws:sns:us-west-2:123456789012:Other".into()]),
            Err(SnsError::UnknownTopic(m.topic_arn.clone()))
        );
        let mut v3 = m.clone();
        v3.signature_version = "3".into();
        assert!(matches!(
            v3.verify(b""),
            Err(SnsError::UnknownSignatureVersion(_))
        ));
        assert!(matches!(
            Message::parse(br#"{"Type":"Other"}"#),
            Err(SnsError::NotSns(_))
        ));
        assert!(matches!(
            m.verify(b"not a certificate"),
            Err(SnsError::BadCertificate(_)) | Err(SnsError::BadSignature)
        ));
    }
}
