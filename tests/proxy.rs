//! `shorts serve` behind a real reverse proxy: Debian's nginx
//! (tests/common/nginx.rs) with the README's `location` block, over real HTTP
//! on loopback. The subscription flow goes through it end to end, and the
//! sign-up limit is per real client: each test client connects from its own
//! loopback address (Linux routes all of 127.0.0.0/8 to `lo`), so nginx sees
//! distinct `$remote_addr`s and adds them to `X-Forwarded-For`, which serve
//! believes because nginx reaches it from 127.0.0.1, its one trusted proxy.
//! Skipped (with a printed reason) where nginx is not installed, but for the
//! last test, which needs no proxy.

mod common;
#[path = "common/nginx.rs"]
mod nginx;
#[path = "common/server.rs"]
mod server;
#[path = "common/smtp.rs"]
mod smtp;

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use common::{shorts_at, stderr, stdout};
use nginx::Nginx;
use reqwest::StatusCode;
use reqwest::blocking::Client;
use server::Server;
use smtp::SmtpServer;

const WEEK_1: &str = "2026-06-08T08:00:00Z";
/// The origin of the fixture's `base_url`, where a browser's form posts come from.
const SITE_ORIGIN: &str = "https://example.com";

/// An HTTP client whose connections come from loopback address `source`.
fn client_from(source: &str) -> Client {
    let source: IpAddr = source.parse().expect("a source address");
    Client::builder()
        .local_address(source)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The port `serve` listens on, for nginx's `proxy_pass`.
fn port_of(server: &Server) -> u16 {
    let (_, port) = server
        .base
        .rsplit_once(':')
        .expect("a port in the base URL");
    port.parse().expect("a numeric port")
}

/// `shorts subscribers list`.
fn subscribers(site: &Path) -> String {
    stdout(&shorts_at(site, WEEK_1, &["subscribers", "list"]))
}

/// A sign-up of `email` posted to `url` with `headers`; its status.
fn sign_up(http: &Client, url: &str, email: &str, headers: &[(&str, &str)]) -> StatusCode {
    let mut request = http.post(url).form(&[("email", email)]);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().unwrap().status()
}

/// The statuses of six sign-ups posted to `url` by `http`, the i-th of
/// `WHO.i@example.com` with the headers `headers(i)` gives.
fn six_sign_ups(
    http: &Client,
    url: &str,
    who: &str,
    headers: impl Fn(usize) -> Vec<(String, String)>,
) -> Vec<StatusCode> {
    (0..6)
        .map(|i| {
            let headers = headers(i);
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            sign_up(http, url, &format!("{who}.{i}@example.com"), &headers)
        })
        .collect()
}

/// Five sign-ups in 10 minutes per client, then 429.
const FIVE_THEN_LIMITED: [StatusCode; 6] = [
    StatusCode::OK,
    StatusCode::OK,
    StatusCode::OK,
    StatusCode::OK,
    StatusCode::OK,
    StatusCode::TOO_MANY_REQUESTS,
];

/// The path and query of the first link in `text` that contains `needle`
/// (`/confirm?token=`), from the path `needle` starts with: serve answers at
/// the root whatever `base_url`'s path.
fn link_path(text: &str, needle: &str) -> String {
    let link = text
        .split(|c: char| c.is_whitespace() || c == '<' || c == '>')
        .find(|word| word.contains(needle))
        .unwrap_or_else(|| panic!("no {needle} link in {text}"));
    link[link.find(needle.split('?').next().unwrap()).unwrap()..].to_string()
}

#[test]
fn sign_up_confirm_and_unsubscribe_through_nginx() {
    let smtp = SmtpServer::start();
    let site = common::serve_site_behind_proxy(smtp.port);
    let server = Server::start(site.path(), "2026-06-07T12:00:00Z");
    let Some(nginx) = Nginx::start(port_of(&server)) else {
        return;
    };
    let http = client_from("127.0.0.2");

    // The browser posts the form from the site's own pages.
    let signup = http
        .post(nginx.url("/subscribe"))
        .header("Origin", SITE_ORIGIN)
        .form(&[("email", "reader@example.com"), ("tracks", "llm")])
        .send()
        .unwrap();
    assert_eq!(signup.status(), StatusCode::OK, "{}", nginx.logs());
    assert!(signup.text().unwrap().contains("Check your inbox"));
    // Another site's form is refused through the proxy too.
    let cross_site = sign_up(
        &http,
        &nginx.url("/subscribe"),
        "victim@example.com",
        &[("Origin", "https://evil.example")],
    );
    assert_eq!(cross_site, StatusCode::FORBIDDEN);
    // Someone who never confirms.
    let unconfirmed = sign_up(&http, &nginx.url("/subscribe"), "never@example.com", &[]);
    assert_eq!(unconfirmed, StatusCode::OK);
    common::mail_queue_drained(site.path());

    let confirmation = smtp
        .received()
        .into_iter()
        .find(|m| m.to == ["reader@example.com"])
        .expect("a confirmation email");
    let mail = mailparse::parse_mail(&confirmation.data).unwrap();
    let confirm = link_path(&mail.subparts[0].get_body().unwrap(), "/confirm?token=");
    assert!(subscribers(site.path()).starts_with("pending"));

    // A mail scanner fetching the link through the proxy confirms nothing.
    let scanned = http.get(nginx.url(&confirm)).send().unwrap();
    assert_eq!(scanned.status(), StatusCode::OK);
    assert!(
        scanned
            .text()
            .unwrap()
            .contains("<button type=\"submit\">Confirm my subscription</button>")
    );
    assert!(subscribers(site.path()).starts_with("pending"));
    // The button does.
    let confirmed = http.post(nginx.url(&confirm)).send().unwrap();
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert!(confirmed.text().unwrap().contains("You are subscribed"));
    let list = subscribers(site.path());
    assert!(
        list.starts_with("active        reader@example.com"),
        "{list}"
    );
    // The welcome email, whose preferences link works through the proxy.
    common::mail_queue_drained(site.path());
    let welcome = text_of_last_mail_to(&smtp, "reader@example.com");
    assert!(welcome.contains("Welcome!"), "{welcome}");
    let preferences = http
        .get(nginx.url(&link_path(&welcome, "/preferences?token=")))
        .send()
        .unwrap();
    assert_eq!(preferences.status(), StatusCode::OK);
    // "I lost my link": signing up again sends the manage link, with the same answer.
    let again = sign_up(&http, &nginx.url("/subscribe"), "reader@example.com", &[]);
    assert_eq!(again, StatusCode::OK);
    common::mail_queue_drained(site.path());
    let manage = text_of_last_mail_to(&smtp, "reader@example.com");
    assert!(manage.contains("already subscribed"), "{manage}");
    assert!(manage.contains("/preferences?token="), "{manage}");

    // The digest's RFC 8058 one-click link, through the proxy.
    let out = shorts_at(site.path(), WEEK_1, &["digest", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let digest = smtp
        .received()
        .into_iter()
        .find(|m| {
            m.to == ["reader@example.com"] && m.data.windows(17).any(|w| w == b"List-Unsubscribe:")
        })
        .expect("the digest");
    let digest = mailparse::parse_mail(&digest.data).unwrap();
    use mailparse::MailHeaderMap;
    let header = digest.headers.get_first_value("List-Unsubscribe").unwrap();
    let unsubscribe = link_path(&header, "/unsubscribe?token=");
    let page = http.get(nginx.url(&unsubscribe)).send().unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(subscribers(site.path()).starts_with("active"));
    assert_eq!(
        common::one_click(&http, &nginx.url(&unsubscribe)),
        StatusCode::OK
    );
    assert!(subscribers(site.path()).starts_with("unsubscribed"));

    // Every request went through nginx, from the client's own address.
    let log = nginx.access_log(9);
    assert_eq!(log.lines().count(), 9, "{log}");
    assert!(
        log.lines().all(|line| line.starts_with("127.0.0.2 ")),
        "{log}"
    );

    // The unconfirmed sign-up is gone once it is older than seven days.
    let out = shorts_at(site.path(), "2026-06-14T12:00:01Z", &["publish"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list = subscribers(site.path());
    assert!(!list.contains("never@example.com"), "{list}");
    assert!(list.contains("reader@example.com"), "{list}");
}

/// The text part of the newest message to `address`.
fn text_of_last_mail_to(smtp: &SmtpServer, address: &str) -> String {
    let message = smtp
        .received()
        .into_iter()
        .rev()
        .find(|m| m.to == [address])
        .expect("a message");
    let mail = mailparse::parse_mail(&message.data).unwrap();
    mail.subparts[0].get_body().unwrap()
}

#[test]
fn behind_nginx_the_sign_up_limit_is_per_real_client() {
    let smtp = SmtpServer::start();
    let site = common::serve_site_behind_proxy(smtp.port);
    let server = Server::start(site.path(), WEEK_1);
    let Some(nginx) = Nginx::start(port_of(&server)) else {
        return;
    };
    let url = nginx.url("/subscribe");
    let a = client_from("127.0.0.2");
    let b = client_from("127.0.0.3");

    assert_eq!(
        six_sign_ups(&a, &url, "a", |_| Vec::new()),
        FIVE_THEN_LIMITED
    );
    // Another reader behind the same proxy still has its own five.
    assert_eq!(sign_up(&b, &url, "b@example.com", &[]), StatusCode::OK);
    assert_eq!(
        sign_up(&a, &url, "a.7@example.com", &[]),
        StatusCode::TOO_MANY_REQUESTS
    );

    let log = nginx.access_log(8);
    assert_eq!(log.matches("127.0.0.2 ").count(), 7, "{log}");
    assert_eq!(log.matches("127.0.0.3 ").count(), 1, "{log}");
}

#[test]
fn through_nginx_a_client_forging_x_forwarded_for_is_still_itself() {
    let smtp = SmtpServer::start();
    let site = common::serve_site_behind_proxy(smtp.port);
    let server = Server::start(site.path(), WEEK_1);
    let Some(nginx) = Nginx::start(port_of(&server)) else {
        return;
    };
    let url = nginx.url("/subscribe");
    let forger = client_from("127.0.0.4");
    let forged = |i: usize| {
        // The same address five times, then a fresh one: neither helps.
        let claimed = if i < 5 { "203.0.113.9" } else { "203.0.113.10" };
        vec![("X-Forwarded-For".to_string(), claimed.to_string())]
    };
    // nginx appends the real address, "203.0.113.9, 127.0.0.4", and serve
    // reads the right-most untrusted hop.
    assert_eq!(
        six_sign_ups(&forger, &url, "forger", forged),
        FIVE_THEN_LIMITED
    );
    // Nor did the forger use up the budget of the address it claimed.
    let other = client_from("127.0.0.5");
    let claimed = [("X-Forwarded-For", "203.0.113.9")];
    assert_eq!(
        sign_up(&other, &url, "other@example.com", &claimed),
        StatusCode::OK
    );
    let log = nginx.access_log(7);
    assert!(
        log.contains("127.0.0.4 \"POST /subscribe HTTP/1.1\" 429 xff=\"203.0.113.10\""),
        "{log}"
    );
}

#[test]
fn straight_to_serve_an_untrusted_client_cannot_forge_its_address() {
    let smtp = SmtpServer::start();
    let site = common::serve_site_behind_proxy(smtp.port);
    // serve listens on 127.0.0.1 and trusts only 127.0.0.1: a client that
    // connects from 127.0.0.2 is not a proxy, whatever it sends.
    let server = Server::start(site.path(), WEEK_1);
    let url = server.url("/subscribe");
    let direct = client_from("127.0.0.2");
    let forged = |i: usize| {
        let hop = format!("198.51.100.{i}");
        vec![
            ("X-Forwarded-For".to_string(), format!("{hop}, 127.0.0.1")),
            ("Forwarded".to_string(), format!("for={hop}")),
        ]
    };
    assert_eq!(
        six_sign_ups(&direct, &url, "direct", forged),
        FIVE_THEN_LIMITED
    );
    // The limit is that address's: another one signs up.
    let other = client_from("127.0.0.3");
    assert_eq!(
        sign_up(&other, &url, "other@example.com", &[]),
        StatusCode::OK
    );
}

/// The upstream that answered each request in nginx's access log, in order
/// (`up=127.0.0.1:PORT`).
fn upstreams(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| line.rsplit_once(" up=").map(|(_, up)| up.to_string()))
        .collect()
}

/// Two `serve` replicas behind nginx (round robin), sharing one database
/// (the site's SQLite file on one host, or PostgreSQL in `.ci/run`'s second
/// pass): the sign-up limit is the client's across both, each email is
/// sent once although both replicas' senders drain the queue, and a link
/// signed by one works on the other.
#[test]
fn two_replicas_behind_nginx_share_the_limit_the_queue_and_the_links() {
    let smtp = SmtpServer::start();
    let site = common::serve_site_behind_proxy(smtp.port);
    let replicas = [
        Server::start(site.path(), "2026-06-07T12:00:00Z"),
        Server::start(site.path(), "2026-06-07T12:00:00Z"),
    ];
    let ports = replicas.each_ref().map(port_of);
    let Some(nginx) = Nginx::start_balancing(&ports) else {
        return;
    };
    let url = nginx.url("/subscribe");
    let http = client_from("127.0.0.2");

    // Round robin sends the six to both replicas, three each: a limit per
    // replica would take them all.
    assert_eq!(
        six_sign_ups(&http, &url, "r", |_| Vec::new()),
        FIVE_THEN_LIMITED
    );
    let sign_ups = upstreams(&nginx.access_log(6));
    for port in ports {
        let answered = sign_ups
            .iter()
            .filter(|up| up.ends_with(&format!(":{port}")));
        assert_eq!(answered.count(), 3, "{sign_ups:?}");
    }
    common::mail_queue_drained(site.path());
    let received = smtp.received();
    for i in 0..5 {
        let address = format!("r.{i}@example.com");
        let to_them = received.iter().filter(|m| m.to == [address.as_str()]);
        assert_eq!(to_them.count(), 1, "one confirmation to {address}");
    }
    assert!(!received.iter().any(|m| m.to == ["r.5@example.com"]));

    // A link one replica signed, followed on both: the page from one, the
    // button's post to the other.
    let confirm = link_path(
        &text_of_last_mail_to(&smtp, "r.0@example.com"),
        "/confirm?token=",
    );
    let page = http.get(nginx.url(&confirm)).send().unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let confirmed = http.post(nginx.url(&confirm)).send().unwrap();
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert!(confirmed.text().unwrap().contains("You are subscribed"));
    common::mail_queue_drained(site.path());
    let welcome = text_of_last_mail_to(&smtp, "r.0@example.com");
    assert!(welcome.contains("Welcome!"), "{welcome}");
    let welcomes = smtp
        .received()
        .iter()
        .filter(|m| m.to == ["r.0@example.com"])
        .count();
    assert_eq!(welcomes, 2, "the confirmation and one welcome");

    // The welcome's unsubscribe link, on both replicas again.
    let unsubscribe = link_path(&welcome, "/unsubscribe?token=");
    let page = http.get(nginx.url(&unsubscribe)).send().unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        common::one_click(&http, &nginx.url(&unsubscribe)),
        StatusCode::OK
    );
    let list = subscribers(site.path());
    assert!(list.contains("unsubscribed  r.0@example.com"), "{list}");

    let log = nginx.access_log(10);
    let links = upstreams(&log)[6..].to_vec();
    assert_eq!(links.len(), 4, "{log}");
    assert!(
        links[0] != links[1] && links[2] != links[3],
        "each link's page and post on different replicas: {links:?}"
    );
}
