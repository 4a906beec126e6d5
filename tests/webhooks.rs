//! `shorts serve`'s webhooks end to end, on the relays' documented example
//! payloads (`tests/fixtures/webhooks/`): Postmark's posted with Basic
//! auth, Amazon SES's inside SNS messages signed with a test key whose
//! certificate a local HTTPS stand-in for sns.us-west-2.amazonaws.com
//! serves. Each test checks the subscriber's standing, the suppression
//! list and the events, and that a replay or a forged request changes
//! nothing. Nothing here needs the network.

mod common;
#[path = "common/server.rs"]
mod server;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use rsa::pkcs8::DecodePrivateKey;
use serde_json::{Value, json};
use server::Server;
use shorts::model::SubscriberStatus;

const NOW: &str = "2026-06-08T08:00:00Z";
const TOPIC: &str = "arn:aws:sns:us-west-2:123456789012:MyTopic";
const PASSWORD: &str = "correct horse battery staple";
const CERT_URL: &str = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(common::fixture("webhooks").join(name)).expect("read a fixture")
}

fn fixture_path(name: &str) -> String {
    common::fixture("webhooks").join(name).display().to_string()
}

/// A site with both webhooks on and `emails` subscribed, served with the
/// Postmark password set and the SNS stand-in in place of AWS.
struct Site {
    dir: tempfile::TempDir,
    server: Server,
    sns: StandIn,
    http: Client,
}

impl Site {
    fn new(emails: &[&str]) -> Site {
        Site::with_config(
            emails,
            &format!(
                "[inbound.webhooks]\npostmark_token_env = \"SHORTS_TEST_POSTMARK\"\nsns_topic_arns = [\"{TOPIC}\"]\n"
            ),
        )
    }

    fn with_config(emails: &[&str], config: &str) -> Site {
        let dir = common::site_from("site");
        common::append_config(dir.path(), config);
        for email in emails {
            let out = common::shorts_at(dir.path(), NOW, &["subscribers", "add", email]);
            assert!(out.status.success(), "{}", common::stderr(&out));
        }
        let sns = StandIn::start();
        let (ca, address) = (fixture_path("test-ca.pem"), sns.address.clone());
        let env = [
            ("SHORTS_TEST_POSTMARK", PASSWORD),
            ("SHORTS_SNS_CA", ca.as_str()),
            ("SHORTS_SNS_CONNECT", address.as_str()),
        ];
        let server = Server::start_with(dir.path(), NOW, &env);
        Site {
            dir,
            server,
            sns,
            http: Client::new(),
        }
    }

    fn postmark(&self, credentials: Option<(&str, &str)>, body: &str) -> Response {
        let mut request = self
            .http
            .post(self.server.url("/webhooks/postmark"))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some((user, password)) = credentials {
            request = request.basic_auth(user, Some(password));
        }
        request.send().expect("post to /webhooks/postmark")
    }

    fn postmark_ok(&self, body: &str) -> String {
        let response = self.postmark(Some(("shorts", PASSWORD)), body);
        assert_eq!(response.status(), StatusCode::OK);
        response.text().expect("the answer")
    }

    fn sns(&self, message: &Value) -> Response {
        self.http
            .post(self.server.url("/webhooks/ses"))
            .header("content-type", "text/plain; charset=UTF-8")
            .header(
                "x-amz-sns-message-type",
                message["Type"].as_str().unwrap_or(""),
            )
            .body(message.to_string())
            .send()
            .expect("post to /webhooks/ses")
    }

    fn status(&self, email: &str) -> SubscriberStatus {
        common::store(self.dir.path())
            .subscriber_by_email(email)
            .expect("read the subscriber")
            .expect("the subscriber exists")
            .status
    }

    fn suppressed(&self, email: &str) -> Option<String> {
        common::store(self.dir.path())
            .suppression(email)
            .expect("read the suppression list")
            .map(|s| s.reason)
    }

    /// Every event recorded, as `kind email source`, oldest first.
    fn events(&self) -> Vec<String> {
        let db = rusqlite::Connection::open(self.dir.path().join("data/shorts.db"))
            .expect("open the database");
        let mut statement = db
            .prepare("SELECT kind, coalesce(email, '-'), source FROM events ORDER BY id")
            .expect("query the events");
        statement
            .query_map([], |row| {
                Ok(format!(
                    "{} {} {}",
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?
                ))
            })
            .expect("read the events")
            .collect::<Result<_, _>>()
            .expect("read the events")
    }
}

// ---------------------------------------------------------------- Postmark

#[test]
fn a_postmark_hard_bounce_bounces_and_suppresses_once() {
    let site = Site::new(&["john@example.com", "ada@example.com"]);
    let answer = site.postmark_ok(&fixture("postmark-bounce.json"));
    assert_eq!(
        answer.trim(),
        "hard bounce from john@example.com: now bounced"
    );
    assert_eq!(site.status("john@example.com"), SubscriberStatus::Bounced);
    assert_eq!(
        site.suppressed("john@example.com").as_deref(),
        Some("hard bounce (no status)")
    );
    assert_eq!(site.status("ada@example.com"), SubscriberStatus::Active);
    let events = site.events();
    assert_eq!(events, ["hard_bounce john@example.com webhook:postmark"]);
    // Postmark retries until it gets a 2xx: the same ID changes nothing.
    let again = site.postmark_ok(&fixture("postmark-bounce.json"));
    assert!(again.contains("already handled"), "{again}");
    assert_eq!(site.events(), events);
}

#[test]
fn a_postmark_complaint_unsubscribes_even_with_a_large_dump() {
    let site = Site::new(&["john@example.com"]);
    // The dump of the abuse report makes the body larger than the 16 KiB
    // the forms may send.
    let mut complaint: Value =
        serde_json::from_str(&fixture("postmark-spam-complaint.json")).unwrap();
    complaint["Content"] = json!("x".repeat(100 * 1024));
    let answer = site.postmark_ok(&complaint.to_string());
    assert_eq!(
        answer.trim(),
        "complaint from john@example.com: now unsubscribed"
    );
    assert_eq!(
        site.status("john@example.com"),
        SubscriberStatus::Unsubscribed
    );
    assert!(site.suppressed("john@example.com").is_some());
}

#[test]
fn postmark_suppressions_become_bounces_and_unsubscribes() {
    let site = Site::new(&["bounced-address@wildbit.com", "john@example.com"]);
    // The documented example: Postmark suppressed the address after a hard bounce.
    site.postmark_ok(&fixture("postmark-subscription-change.json"));
    assert_eq!(
        site.status("bounced-address@wildbit.com"),
        SubscriberStatus::Bounced
    );
    // The reader used Postmark's unsubscribe link.
    let mut change: Value =
        serde_json::from_str(&fixture("postmark-subscription-change.json")).unwrap();
    change["Recipient"] = json!("john@example.com");
    change["SuppressionReason"] = json!("ManualSuppression");
    site.postmark_ok(&change.to_string());
    assert_eq!(
        site.status("john@example.com"),
        SubscriberStatus::Unsubscribed
    );
    assert_eq!(site.suppressed("john@example.com"), None);
}

#[test]
fn postmark_requests_without_the_password_change_nothing() {
    let site = Site::new(&["john@example.com"]);
    let bounce = fixture("postmark-bounce.json");
    for credentials in [
        None,
        Some(("shorts", "wrong password")),
        Some(("admin", PASSWORD)),
        Some(("shorts", "")),
    ] {
        let response = site.postmark(credentials, &bounce);
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{credentials:?}"
        );
        assert!(response.headers().contains_key("www-authenticate"));
    }
    let broken = site.postmark(Some(("shorts", PASSWORD)), "{\"RecordType\": \"Bounce\"");
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    let opened = site.postmark_ok(r#"{"RecordType":"Open","Recipient":"john@example.com"}"#);
    assert!(opened.contains("ignored"), "{opened}");
    assert_eq!(site.status("john@example.com"), SubscriberStatus::Active);
    assert_eq!(site.suppressed("john@example.com"), None);
    assert!(site.events().is_empty(), "{:?}", site.events());
}

#[test]
fn webhooks_are_off_until_configured() {
    let site = Site::with_config(&["john@example.com"], "");
    let postmark = site.postmark(Some(("shorts", PASSWORD)), &fixture("postmark-bounce.json"));
    assert_eq!(postmark.status(), StatusCode::NOT_FOUND);
    let ses = site.sns(&signed(notification(&fixture("ses-bounce.json")), "2"));
    assert_eq!(ses.status(), StatusCode::NOT_FOUND);
    assert_eq!(site.status("john@example.com"), SubscriberStatus::Active);
    assert!(site.sns.requests().is_empty());
}

#[test]
fn serve_will_not_start_without_the_postmark_password() {
    let dir = common::site_from("site");
    common::append_config(
        dir.path(),
        "[inbound.webhooks]\npostmark_token_env = \"SHORTS_TEST_UNSET_PASSWORD\"\n",
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_shorts"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("SHORTS_TEST_UNSET_PASSWORD")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start shorts serve");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().expect("poll shorts serve").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("shorts serve started without the Postmark password");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("wait for shorts serve");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        common::stderr(&out).contains("names SHORTS_TEST_UNSET_PASSWORD, which is not set"),
        "{}",
        common::stderr(&out)
    );
}

// ------------------------------------------------------------- Amazon SES

/// The documented SNS notification carrying `ses` (an SES notification) for our topic.
fn notification(ses: &str) -> Value {
    let mut message: Value = serde_json::from_str(&fixture("sns-notification.json")).unwrap();
    message["Message"] = json!(ses);
    message["TopicArn"] = json!(TOPIC);
    message["SigningCertURL"] = json!(CERT_URL);
    message
}

#[test]
fn ses_bounces_and_complaints_signed_by_sns_are_acted_on() {
    let site = Site::new(&[
        "jane@example.com",
        "richard@example.com",
        "mary@example.com",
    ]);
    let bounce = signed(notification(&fixture("ses-bounce.json")), "1");
    let response = site.sns(&bounce);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.text().unwrap().trim(),
        "hard bounce from jane@example.com: now bounced"
    );
    let mut complaint = notification(&fixture("ses-complaint.json"));
    complaint["MessageId"] = json!("7f0fb2a5-3b8c-5f0e-9bd4-7e3c0a4d6c11");
    let complaint = signed(complaint, "2");
    assert_eq!(site.sns(&complaint).status(), StatusCode::OK);
    assert_eq!(site.status("jane@example.com"), SubscriberStatus::Bounced);
    assert_eq!(
        site.status("richard@example.com"),
        SubscriberStatus::Unsubscribed
    );
    assert_eq!(site.status("mary@example.com"), SubscriberStatus::Active);
    assert!(site.suppressed("jane@example.com").is_some());
    assert!(site.suppressed("richard@example.com").is_some());
    let events = site.events();
    assert_eq!(
        events,
        [
            "hard_bounce jane@example.com webhook:ses",
            "complaint richard@example.com webhook:ses"
        ]
    );
    // A delivery notification on the same topic needs nothing, and records nothing.
    let mut delivery = notification(&fixture("ses-delivery.json"));
    delivery["MessageId"] = json!("0d8a4c7e-5f0b-5b6a-8f4e-2c1d9e3b7a55");
    let response = site.sns(&signed(delivery, "2"));
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().unwrap().contains("nothing to do"));
    // SNS redelivers with the same MessageId: nothing changes again.
    assert_eq!(site.sns(&bounce).status(), StatusCode::OK);
    assert_eq!(site.sns(&complaint).status(), StatusCode::OK);
    assert_eq!(site.events(), events);
    // The certificate was fetched once, over TLS, from the SNS host's path.
    assert_eq!(
        site.sns.requests(),
        ["/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"]
    );
}

#[test]
fn forged_or_foreign_sns_messages_change_nothing() {
    let site = Site::new(&["jane@example.com"]);
    let genuine = signed(notification(&fixture("ses-bounce.json")), "2");
    let mut tampered = genuine.clone();
    tampered["Message"] = json!(fixture("ses-bounce.json").replace("\"General\"", "\"NoEmail\""));
    let mut retimed = genuine.clone();
    retimed["Timestamp"] = json!("2012-05-02T00:54:07.000Z");
    let mut other_topic = notification(&fixture("ses-bounce.json"));
    other_topic["TopicArn"] = json!("arn:aws:sns:us-west-2:123456789012:SomeoneElsesTopic");
    let mut foreign_host = notification(&fixture("ses-bounce.json"));
    foreign_host["SigningCertURL"] = json!(
        "https://sns.us-west-2.amazonaws.com.attacker.example/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
    );
    let mut plain_http = notification(&fixture("ses-bounce.json"));
    plain_http["SigningCertURL"] = json!(CERT_URL.replace("https:", "http:"));
    let mut unsigned = genuine.clone();
    unsigned["Signature"] = json!("EXAMPLEw6JRN...");
    let mut version_3 = genuine.clone();
    version_3["SignatureVersion"] = json!("3");
    for (what, message) in [
        ("a tampered message", tampered),
        ("a tampered timestamp", retimed),
        ("another topic", signed(other_topic, "2")),
        ("a foreign certificate host", signed(foreign_host, "2")),
        ("a certificate over http", signed(plain_http, "2")),
        ("the example's signature", unsigned),
        ("an unknown signature version", version_3),
    ] {
        let response = site.sns(&message);
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
    }
    let not_sns = site.sns(&json!({"notificationType": "Bounce"}));
    assert_eq!(not_sns.status(), StatusCode::BAD_REQUEST);
    assert_eq!(site.status("jane@example.com"), SubscriberStatus::Active);
    assert_eq!(site.suppressed("jane@example.com"), None);
    assert!(site.events().is_empty(), "{:?}", site.events());
    // Only the genuine host was ever asked for a certificate.
    assert!(
        site.sns
            .requests()
            .iter()
            .all(|path| path.starts_with("/SimpleNotificationService-")),
        "{:?}",
        site.sns.requests()
    );
}

#[test]
fn a_signed_subscription_confirmation_is_confirmed_at_sns_only() {
    let site = Site::new(&[]);
    let mut confirmation: Value =
        serde_json::from_str(&fixture("sns-subscription-confirmation.json")).unwrap();
    confirmation["SigningCertURL"] = json!(CERT_URL);
    let response = site.sns(&signed(confirmation.clone(), "1"));
    assert_eq!(response.status(), StatusCode::OK);
    let subscribe_path = "/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37...";
    assert!(
        site.sns.requests().iter().any(|p| p == subscribe_path),
        "{:?}",
        site.sns.requests()
    );
    // A confirmation that would send the server elsewhere is refused, signed or not.
    confirmation["SubscribeURL"] = json!("https://attacker.example/?Action=ConfirmSubscription");
    let before = site.sns.requests().len();
    let response = site.sns(&signed(confirmation, "1"));
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(site.sns.requests().len(), before);
}

// ------------------------------------------------------ signing and SNS

/// `message` with `SignatureVersion` and the `Signature` SNS would make with
/// the test key: SHA1withRSA for "1", SHA256withRSA for "2".
fn signed(mut message: Value, version: &str) -> Value {
    message["SignatureVersion"] = json!(version);
    let text = string_to_sign(&message);
    let key_pem = fixture("sns-signing.key");
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(&key_pem).expect("the test key");
    let (algorithm, prefix): (_, &[u8]) = match version {
        "1" => (
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &[
                0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
                0x14,
            ],
        ),
        _ => (
            &ring::digest::SHA256,
            &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
        ),
    };
    let digest = ring::digest::digest(algorithm, text.as_bytes());
    let padding = rsa::Pkcs1v15Sign {
        hash_len: Some(digest.as_ref().len()),
        prefix: prefix.into(),
    };
    let signature = key.sign(padding, digest.as_ref()).expect("sign");
    message["Signature"] = json!(base64::engine::general_purpose::STANDARD.encode(signature));
    message
}

/// AWS's string to sign, written out independently of `shorts`'s.
fn string_to_sign(message: &Value) -> String {
    let names: &[&str] = if message["Type"] == "Notification" {
        &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ]
    } else {
        &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ]
    };
    names
        .iter()
        .filter_map(|name| {
            message[*name]
                .as_str()
                .map(|value| format!("{name}\n{value}\n"))
        })
        .collect()
}

/// A stand-in for sns.us-west-2.amazonaws.com on loopback: HTTPS with a
/// certificate for that name from the test CA; serves the signing
/// certificate at any `/SimpleNotificationService-*.pem` and 200 to a
/// subscription confirmation, and remembers every path asked for.
struct StandIn {
    address: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl StandIn {
    fn start() -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stand-in");
        let address = listener.local_addr().expect("its address").to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let config = Arc::new(tls_config());
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (config, seen) = (Arc::clone(&config), Arc::clone(&seen));
                std::thread::spawn(move || answer(stream, config, &seen));
            }
        });
        StandIn { address, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn tls_config() -> rustls::ServerConfig {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(fixture_path("sns-host.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture_path("sns-host.key")).unwrap();
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap()
}

fn answer(
    stream: std::net::TcpStream,
    config: Arc<rustls::ServerConfig>,
    seen: &Mutex<Vec<String>>,
) {
    let Ok(connection) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(connection, stream);
    let mut request_line = String::new();
    let mut reader = BufReader::new(&mut tls);
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    seen.lock().unwrap().push(path.clone());
    let (status, body) =
        if path.starts_with("/SimpleNotificationService-") && path.ends_with(".pem") {
            ("200 OK", fixture("sns-signing.pem"))
        } else if path.starts_with("/?Action=ConfirmSubscription") {
            ("200 OK", "<ConfirmSubscriptionResponse/>".to_string())
        } else {
            ("404 Not Found", String::new())
        };
    let _ = write!(
        tls,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.conn.send_close_notify();
    let _ = tls.flush();
}
