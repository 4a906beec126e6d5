//! `POST /webhooks/postmark` and `POST /webhooks/ses`: relays reporting
//! bounces, complaints and unsubscribes, acted on as `shorts inbound` acts
//! on mail that comes back, into the same events.
//!
//! Owns authenticating each request before anything is read into the
//! database: Postmark's HTTP Basic auth (user `shorts`, the password from
//! `[inbound.webhooks] postmark_token_env`, compared in constant time);
//! for SNS the topic, the signing certificate's host and the RSA signature,
//! and the subscription handshake. What a report means belongs to
//! `inbound::{postmark, ses, sns}`, what it does to a subscriber to
//! `inbound::act`. Answers are one line of plain text.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sha2::Sha256;
use url::Url;

use super::{App, with_store};
use crate::http_client::HttpClient;
use crate::inbound::sns::Message;
use crate::inbound::{Context, Finding, Handled, Verdict, handle_reported, postmark, ses};

/// Request bodies on the webhook routes may be this large: a Postmark
/// bounce carries the whole returned message in `Content`.
pub const WEBHOOK_BODY: usize = 256 * 1024;
/// The user name Postmark must send with the password.
pub const POSTMARK_USER: &str = "shorts";
/// Test hooks (`tests/webhooks.rs`): a PEM file of the CA certificates to
/// trust instead of the built-in roots, and the address every HTTPS request
/// goes to. Never set in production.
pub const TEST_CA_ENV: &str = "SHORTS_SNS_CA";
pub const TEST_CONNECT_ENV: &str = "SHORTS_SNS_CONNECT";
/// Larger answers are not certificates or confirmations.
const FETCH_LIMIT: usize = 64 * 1024;
/// SNS rotates its signing certificate rarely; more than this many cached
/// ones means something is off, and the cache starts again.
const CACHED_CERTIFICATES: usize = 32;

/// What the webhook routes need, besides the store.
pub struct Webhooks {
    postmark_password: Option<String>,
    sns_topics: Vec<String>,
    https: HttpClient,
    /// Signing certificates (DER) by URL.
    certificates: Mutex<HashMap<String, Arc<Vec<u8>>>>,
}

impl Webhooks {
    /// `postmark_password`: the value of `postmark_token_env`, when set;
    /// `sns_topics`: the accepted topic ARNs (none: `/webhooks/ses` is off).
    pub fn new(
        postmark_password: Option<String>,
        sns_topics: Vec<String>,
        https: HttpClient,
    ) -> Self {
        Webhooks {
            postmark_password,
            sns_topics,
            https,
            certificates: Mutex::new(HashMap::new()),
        }
    }

    /// The signing certificate at `url` (already checked to be an SNS
    /// host), from the cache or fetched.
    async fn certificate(&self, url: &Url) -> Result<Arc<Vec<u8>>, String> {
        let cached = self.cache().get(url.as_str()).cloned();
        if let Some(der) = cached {
            return Ok(der);
        }
        let pem = self
            .https
            .get(url, FETCH_LIMIT)
            .await
            .map_err(|e| e.to_string())?;
        let der = CertificateDer::from_pem_slice(&pem)
            .map_err(|e| format!("{url} holds no PEM certificate ({e})"))?;
        webpki::EndEntityCert::try_from(&der)
            .map_err(|e| format!("{url} holds no usable certificate ({e:?})"))?;
        let der = Arc::new(der.to_vec());
        let mut cache = self.cache();
        if cache.len() >= CACHED_CERTIFICATES {
            cache.clear();
        }
        cache.insert(url.to_string(), Arc::clone(&der));
        Ok(der)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Vec<u8>>>> {
        self.certificates
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A plain-text answer; refusals are logged with their reason.
fn reply(status: StatusCode, text: &str) -> Response {
    if status.is_client_error() || status.is_server_error() {
        tracing::warn!(status = status.as_u16(), reason = text, "webhook refused");
    }
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{text}\n"),
    )
        .into_response()
}

fn not_configured(key: &str) -> Response {
    reply(
        StatusCode::NOT_FOUND,
        &format!("this webhook is off: `[inbound.webhooks] {key}` is not set"),
    )
}

pub async fn postmark(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(password) = &app.webhooks.postmark_password else {
        return not_configured("postmark_token_env");
    };
    if !basic_auth_matches(&headers, password) {
        let mut response = reply(
            StatusCode::UNAUTHORIZED,
            "the Basic auth credentials are missing or wrong",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"shorts webhooks\""),
        );
        return response;
    }
    match postmark::read(&body) {
        Ok(Some(event)) => act(&app, vec![(event.id, event.finding)], "webhook:postmark").await,
        Ok(None) => reply(StatusCode::OK, "not a record type shorts reads; ignored"),
        Err(why) => reply(StatusCode::BAD_REQUEST, &why),
    }
}

/// Whether `Authorization` is Basic with `shorts:<password>`; the
/// comparison takes the same time wherever the credentials differ.
fn basic_auth_matches(headers: &HeaderMap, password: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return false;
    };
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{POSTMARK_USER}:{password}");
    scheme.eq_ignore_ascii_case("basic") && same_in_constant_time(&given, expected.as_bytes())
}

/// Compares HMACs of both under one key: `verify_slice` is constant-time,
/// and the tags have one length whatever the inputs' lengths.
fn same_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    let mac = |bytes: &[u8]| {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"shorts webhook credentials")
            .expect("HMAC takes a key of any length");
        mac.update(bytes);
        mac
    };
    let tag = mac(b).finalize().into_bytes();
    mac(a).verify_slice(&tag).is_ok()
}

pub async fn ses(State(app): State<Arc<App>>, body: Bytes) -> Response {
    if app.webhooks.sns_topics.is_empty() {
        return not_configured("sns_topic_arns");
    }
    let message = match authenticate(&app, &body).await {
        Ok(message) => message,
        Err(refusal) => return refusal,
    };
    match message.kind.as_str() {
        "Notification" => notification(&app, &message).await,
        "SubscriptionConfirmation" => confirm_subscription(&app, &message).await,
        _ => {
            tracing::warn!(topic = %message.topic_arn, "SNS says this endpoint is unsubscribed from the topic: SES reports no longer arrive");
            reply(StatusCode::OK, "unsubscribe confirmation noted")
        }
    }
}

/// The message in `body` if SNS sent it for one of our topics; the
/// certificate is fetched only from an SNS host, after the topic matched.
async fn authenticate(app: &App, body: &[u8]) -> Result<Message, Response> {
    let forbidden = |e: &dyn std::fmt::Display| reply(StatusCode::FORBIDDEN, &e.to_string());
    let message =
        Message::parse(body).map_err(|e| reply(StatusCode::BAD_REQUEST, &e.to_string()))?;
    message
        .check_topic(&app.webhooks.sns_topics)
        .map_err(|e| forbidden(&e))?;
    let url = message.signing_cert_url().map_err(|e| forbidden(&e))?;
    let certificate = app.webhooks.certificate(&url).await.map_err(|e| {
        reply(
            StatusCode::BAD_GATEWAY,
            &format!("cannot fetch the signing certificate: {e}"),
        )
    })?;
    message.verify(&certificate).map_err(|e| forbidden(&e))?;
    Ok(message)
}

/// An SES notification: every recipient it names is acted on; a
/// delivery notification needs nothing.
async fn notification(app: &Arc<App>, message: &Message) -> Response {
    let findings: Vec<Finding> = ses::findings(&message.message)
        .unwrap_or_else(|| {
            vec![Finding::unrecognised(
                "an SNS notification that is not an SES bounce, complaint or delivery",
            )]
        })
        .into_iter()
        .filter(|f| f.verdict != Verdict::Delivered)
        .collect();
    if findings.is_empty() {
        return reply(StatusCode::OK, "a delivery notification: nothing to do");
    }
    let id = format!("sns:{}", message.message_id);
    let events = findings.into_iter().map(|f| (id.clone(), f)).collect();
    act(app, events, "webhook:ses").await
}

/// Confirms the subscription by opening its SubscribeURL (an SNS host
/// only); when that fails, the URL is logged so a person can open it, and
/// the 502 makes SNS send the confirmation again.
async fn confirm_subscription(app: &App, message: &Message) -> Response {
    let url = match message.subscribe_url() {
        Ok(url) => url,
        Err(e) => return reply(StatusCode::FORBIDDEN, &e.to_string()),
    };
    match app.webhooks.https.get(&url, FETCH_LIMIT).await {
        Ok(_) => {
            tracing::info!(topic = %message.topic_arn, "SNS subscription confirmed");
            reply(StatusCode::OK, "subscription confirmed")
        }
        Err(e) => {
            tracing::warn!(topic = %message.topic_arn, subscribe_url = %url, error = %e, "could not confirm the SNS subscription; open SubscribeURL to confirm it by hand");
            reply(
                StatusCode::BAD_GATEWAY,
                &format!("could not confirm the subscription: {e}"),
            )
        }
    }
}

/// Acts on each `(event id, finding)` as reported by `source`, in one
/// blocking task; answers with what each did.
async fn act(app: &Arc<App>, events: Vec<(String, Finding)>, source: &'static str) -> Response {
    let shared = Arc::clone(app);
    let handled = with_store(app, move |store| {
        let ctx = Context {
            store,
            secret: &shared.secret,
            bounce: shared.config.delivery.bounce_address.as_ref(),
            settings: &shared.config.inbound,
            now: (shared.clock)(),
        };
        events
            .iter()
            .map(|(id, finding)| handle_reported(finding, id, source, &ctx))
            .collect::<Result<Vec<Handled>, _>>()
    })
    .await;
    match handled {
        Ok(handled) => {
            let lines: Vec<String> = handled.iter().map(Handled::to_string).collect();
            for line in &lines {
                tracing::info!(source, "{line}");
            }
            reply(StatusCode::OK, &lines.join("\n"))
        }
        Err(problem) => problem.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn basic_auth_wants_user_shorts_and_the_password() {
        let encode = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let good = format!("Basic {}", encode("shorts:s3cret"));
        assert!(basic_auth_matches(&with_authorization(&good), "s3cret"));
        for bad in [
            format!("Basic {}", encode("shorts:s3cre")),
            format!("Basic {}", encode("shorts:s3cret2")),
            format!("Basic {}", encode("other:s3cret")),
            format!("Bearer {}", encode("shorts:s3cret")),
            "Basic not-base64!".to_string(),
            "Basic".to_string(),
        ] {
            assert!(
                !basic_auth_matches(&with_authorization(&bad), "s3cret"),
                "{bad}"
            );
        }
        assert!(!basic_auth_matches(&HeaderMap::new(), "s3cret"));
    }
}
