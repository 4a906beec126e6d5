//! `shorts digest send` against a real SMTP server (mailin-embedded on a
//! loopback port, started by the test), read back with mailparse, and the
//! ledger checked in the real SQLite file.

mod common;
#[path = "common/smtp.rs"]
mod smtp;

use std::path::Path;

use common::{delivery_states, shorts_at, stderr, stdout};
use mailparse::{MailHeaderMap, ParsedMail};
use shorts::store::DeliveryState;
use smtp::SmtpServer;

/// Monday 2026-06-08, two hours after the 08:00 Berlin slot.
const WEEK_1: &str = "2026-06-08T08:00:00Z";
const WEEK_2: &str = "2026-06-15T08:00:00Z";

fn digest_site(smtp_port: u16) -> tempfile::TempDir {
    let site = common::site_from("site");
    let config = format!(
        r#"
[digest]
schedule = "0 8 * * MON"
from = "Fixture Digest <digest@example.com>"
reply_to = "ada@example.com"
postal_address = "Fixture Ltd, 1 Test Street, Testville"

[delivery]
transport = "smtp"

[delivery.smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
pool_size = 2
attempts = 3
backoff_ms = 20
timeout_secs = 5
"#
    );
    common::append_config(site.path(), &config);
    site
}

fn run(site: &Path, now: &str, args: &[&str]) -> std::process::Output {
    shorts_at(site, now, args)
}

fn add(site: &Path, args: &[&str]) {
    let mut all = vec!["subscribers", "add"];
    all.extend_from_slice(args);
    let out = run(site, WEEK_1, &all);
    assert!(out.status.success(), "{}", stderr(&out));
}

fn parse(received: &smtp::Received) -> ParsedMail<'_> {
    mailparse::parse_mail(&received.data).expect("a parseable message")
}

fn by_recipient<'a>(received: &'a [smtp::Received], to: &str) -> Vec<&'a smtp::Received> {
    received
        .iter()
        .filter(|r| r.to.iter().any(|t| t == to))
        .collect()
}

fn parts(mail: &ParsedMail<'_>) -> (String, String) {
    assert_eq!(mail.ctype.mimetype, "multipart/alternative");
    assert_eq!(mail.subparts.len(), 2);
    assert_eq!(
        mail.subparts[0].ctype.mimetype, "text/plain",
        "text comes first"
    );
    assert_eq!(mail.subparts[1].ctype.mimetype, "text/html");
    (
        mail.subparts[0].get_body().unwrap(),
        mail.subparts[1].get_body().unwrap(),
    )
}

/// Every short any digest carried, with the digest's number, by id.
fn carried(site: &Path) -> Vec<(String, i64)> {
    let store = common::store(site);
    let mut carried: Vec<(String, i64)> = Vec::new();
    for digest in store.digests().unwrap() {
        for id in store.digest_short_ids(digest.number).unwrap() {
            carried.push((id, digest.number));
        }
    }
    carried.sort();
    carried
}

#[test]
fn sends_grouped_filtered_multipart_digests_once() {
    let server = SmtpServer::start();
    let site = digest_site(server.port);
    add(site.path(), &["all@example.com", "--name", "All Tracks"]);
    add(site.path(), &["llm@example.com", "--tracks", "llm"]);
    add(
        site.path(),
        &["quiet@example.com", "--tracks", "empty-track"],
    );

    let out = run(site.path(), WEEK_1, &["digest", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "digest #1: 2 sent, 1 skipped (nothing new in their tracks), 0 failed\n"
    );
    let received = server.received();
    assert_eq!(
        received.len(),
        2,
        "no email for a subscriber with nothing new"
    );
    assert!(by_recipient(&received, "quiet@example.com").is_empty());

    // The subscriber of every track: both sections, in config order, newest first.
    let all = parse(by_recipient(&received, "all@example.com")[0]);
    let headers = &all.headers;
    assert_eq!(
        headers.get_all_values("From"),
        ["\"Fixture Digest\" <digest@example.com>"]
    );
    assert_eq!(
        headers.get_all_values("To"),
        ["\"All Tracks\" <all@example.com>"]
    );
    assert_eq!(
        headers.get_all_values("Subject"),
        ["Fixture <Site> & Co #1: 2 new shorts"]
    );
    assert_eq!(
        headers.get_all_values("Message-ID"),
        ["<digest-1.s1@example.com>"]
    );
    assert_eq!(headers.get_all_values("Date").len(), 1);
    assert_eq!(
        headers.get_all_values("List-Id"),
        ["Fixture Site & Co <digest.example.com>"]
    );
    assert_eq!(
        headers.get_all_values("List-Unsubscribe-Post"),
        ["List-Unsubscribe=One-Click"]
    );
    assert_eq!(headers.get_all_values("Auto-Submitted"), ["auto-generated"]);
    let unsubscribe = headers.get_all_values("List-Unsubscribe");
    assert_eq!(unsubscribe.len(), 1);
    assert!(
        unsubscribe[0].starts_with("<https://example.com/notes/unsubscribe?token=u."),
        "{unsubscribe:?}"
    );
    assert!(
        unsubscribe[0].contains(">, <mailto:digest@example.com?subject=unsubscribe%20u."),
        "{unsubscribe:?}"
    );
    let (text, html) = parts(&all);
    for part in [&text, &html] {
        let llm = part.find("LLMs").expect("LLMs section");
        let retrieval = part.find("Retrieval &").expect("Retrieval section");
        assert!(llm < retrieval, "sections in config order");
        assert!(
            part.contains("https://example.com/notes/unsubscribe?token=u."),
            "visible unsubscribe link"
        );
        assert!(
            part.contains("Fixture Ltd, 1 Test Street, Testville"),
            "postal address"
        );
        assert!(
            !part.contains("A plain short"),
            "the back catalogue is not mailed"
        );
        assert!(!part.contains("Work in progress") && !part.contains("From the future"));
    }
    assert!(
        text.contains("* Tom & Jerry <script>alert(1)</script>"),
        "text is not HTML-escaped:\n{text}"
    );
    assert!(
        html.contains("Tom &amp; Jerry &lt;script&gt;"),
        "HTML escapes titles"
    );
    assert!(html.contains("style=\""), "CSS is inlined");
    assert!(
        html.contains("@media (prefers-color-scheme: dark)"),
        "dark mode rules are kept"
    );
    assert!(!html.contains("<img"), "no tracking pixel");

    // The llm-only subscriber gets only the LLMs section.
    let llm = parse(by_recipient(&received, "llm@example.com")[0]);
    let (text, html) = parts(&llm);
    assert!(text.contains("== LLMs =="), "{text}");
    assert!(
        !text.contains("Retrieval") && !html.contains("YAML front matter"),
        "{text}"
    );
    assert_eq!(
        llm.headers.get_all_values("Subject"),
        ["Fixture <Site> & Co #1: 1 new short"]
    );

    assert_eq!(
        delivery_states(site.path()),
        [(DeliveryState::Sent, 2), (DeliveryState::Skipped, 1)]
    );
    assert_eq!(
        carried(site.path()),
        [
            ("escaping".to_string(), 1),
            ("yaml-front-matter".to_string(), 1)
        ]
    );

    // Right after: nothing is due, nothing is sent.
    let out = run(site.path(), "2026-06-08T09:00:00Z", &["digest", "send"]);
    assert!(out.status.success());
    assert!(
        stdout(&out)
            .starts_with("nothing to send: digest #1 for 2026-06-08 08:00 CEST was already sent")
    );
    assert_eq!(server.received().len(), 2);
}

/// Each section of a digest's text part with the slugs of its shorts, in order.
fn text_sections(text: &str) -> Vec<(String, Vec<String>)> {
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if let Some(title) = line.strip_prefix("== ").and_then(|l| l.strip_suffix(" ==")) {
            sections.push((title.to_string(), Vec::new()));
        } else if let Some(url) = line.trim().strip_prefix("Read: ") {
            let slug = url.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            let section = sections.last_mut().expect("a short inside a section");
            section.1.push(slug.to_string());
        }
    }
    sections
}

fn write_short(site: &Path, slug: &str, track: &str, date: &str, tags: &[&str]) {
    let tags: Vec<String> = tags.iter().map(|t| format!("{t:?}")).collect();
    let text = format!(
        "+++\ntitle = \"Short {slug}\"\ndate = {date}\nsummary = \"About {slug}.\"\ntrack = \"{track}\"\ntags = [{}]\n+++\nBody.\n",
        tags.join(", ")
    );
    std::fs::write(site.join(format!("content/shorts/{slug}.md")), text).unwrap();
}

#[test]
fn tag_followers_get_the_shorts_of_their_tags_still_grouped_by_track() {
    let server = SmtpServer::start();
    let site = digest_site(server.port);
    // Besides the fixture's escaping (llm: Rust, c++, kv-cache) and
    // yaml-front-matter (retrieval: kv-cache, YAML).
    write_short(
        site.path(),
        "attention",
        "llm",
        "2026-06-06",
        &["attention"],
    );
    write_short(
        site.path(),
        "rerankers",
        "retrieval",
        "2026-06-04",
        &["reranking"],
    );
    add(site.path(), &["track@example.com", "--tracks", "llm"]);
    add(site.path(), &["tag@example.com", "--tags", "kv-cache"]);
    add(
        site.path(),
        &["both@example.com", "--tracks", "llm", "--tags", "yaml"],
    );
    add(
        site.path(),
        &["unused@example.com", "--tags", "not-yet-used"],
    );

    let out = run(site.path(), WEEK_1, &["digest", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "digest #1: 3 sent, 1 skipped (nothing new in their tracks), 0 failed\n"
    );
    let received = server.received();
    assert_eq!(received.len(), 3);
    assert!(by_recipient(&received, "unused@example.com").is_empty());
    let copy = |to: &str| {
        let messages = by_recipient(&received, to);
        assert_eq!(messages.len(), 1, "{to}");
        let mail = parse(messages[0]);
        let subject = mail.headers.get_first_value("Subject").unwrap();
        let (text, html) = parts(&mail);
        (subject, text_sections(&text), text, html)
    };
    let section = |title: &str, slugs: &[&str]| {
        (
            title.to_string(),
            slugs.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    };

    let (subject, sections, text, _) = copy("track@example.com");
    assert_eq!(
        sections,
        [section("LLMs", &["escaping", "attention"])],
        "{text}"
    );
    assert_eq!(subject, "Fixture <Site> & Co #1: 2 new shorts");
    assert!(text.contains("subscribed to LLMs of Fixture"), "{text}");

    // A tag across tracks: a section in each, and nothing else of those tracks.
    let (subject, sections, text, html) = copy("tag@example.com");
    assert_eq!(
        sections,
        [
            section("LLMs", &["escaping"]),
            section("Retrieval & embeddings", &["yaml-front-matter"])
        ],
        "{text}"
    );
    assert_eq!(subject, "Fixture <Site> & Co #1: 2 new shorts");
    assert!(
        text.contains("subscribed to tags: kv-cache of Fixture"),
        "{text}"
    );
    assert!(html.contains("subscribed to tags: kv-cache of"), "{html}");
    assert!(!html.contains("Short attention") && !html.contains("Short rerankers"));

    let (subject, sections, text, html) = copy("both@example.com");
    assert_eq!(
        sections,
        [
            section("LLMs", &["escaping", "attention"]),
            section("Retrieval & embeddings", &["yaml-front-matter"])
        ],
        "{text}"
    );
    assert_eq!(subject, "Fixture <Site> & Co #1: 3 new shorts");
    assert!(
        text.contains("subscribed to LLMs and tags: YAML of Fixture"),
        "{text}"
    );
    assert!(text.contains("Only new shorts in your tracks or with your tags"));
    assert!(!html.contains("Short rerankers"), "the tag, not the track");

    assert_eq!(
        delivery_states(site.path()),
        [(DeliveryState::Sent, 3), (DeliveryState::Skipped, 1)]
    );
    let carried: Vec<String> = carried(site.path()).into_iter().map(|(s, _)| s).collect();
    assert!(
        carried.contains(&"rerankers".to_string()),
        "a short no one follows is still carried, once: {carried:?}"
    );
}

#[test]
fn a_late_or_backdated_short_goes_out_in_the_next_digest() {
    let server = SmtpServer::start();
    let site = digest_site(server.port);
    add(site.path(), &["all@example.com"]);
    assert!(
        run(site.path(), WEEK_1, &["digest", "send"])
            .status
            .success()
    );
    // Committed after digest #1 went out, but dated before its slot.
    let late = "+++\ntitle = \"Committed late\"\ndate = 2026-06-07T12:00:00+02:00\nsummary = \"Backdated.\"\ntrack = \"llm\"\n+++\nBody.\n";
    std::fs::write(site.path().join("content/shorts/late.md"), late).unwrap();
    let out = run(site.path(), WEEK_2, &["digest", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "digest #2: 1 sent, 0 skipped (nothing new in their tracks), 0 failed\n"
    );
    let received = server.received();
    let (text, _) = parts(&parse(&received[1]));
    assert!(text.contains("Committed late"), "{text}");
    assert!(
        !text.contains("Tom & Jerry"),
        "digest #1's shorts are not sent again"
    );
    // Nothing new in week 3: no email at all.
    let out = run(site.path(), "2026-06-22T08:00:00Z", &["digest", "send"]);
    assert_eq!(
        stdout(&out),
        "nothing to send: no new shorts since the last digest (#2)\n"
    );
    assert_eq!(server.received().len(), 2);
}

#[test]
fn temporary_failures_are_retried_and_deliver_once() {
    let server = SmtpServer::start();
    let site = digest_site(server.port);
    for who in ["a", "b", "c"] {
        add(site.path(), &[&format!("{who}@example.com")]);
    }
    server.fail("b@example.com", &[451, 452]);
    let out = run(site.path(), WEEK_1, &["digest", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        server.attempts("b@example.com"),
        3,
        "two 4xx, then accepted"
    );
    let received = server.received();
    for who in ["a", "b", "c"] {
        assert_eq!(
            by_recipient(&received, &format!("{who}@example.com")).len(),
            1,
            "{who} once"
        );
    }
}

#[test]
fn temporary_failures_past_the_retries_wait_for_the_next_run() {
    let server = SmtpServer::start();
    let site = digest_site(server.port);
    add(site.path(), &["a@example.com"]);
    add(site.path(), &["b@example.com"]);
    server.fail("b@example.com", &[451, 451, 451]);
    let out = run(site.path(), WEEK_1, &["digest", "send"]);
    assert_eq!(
        out.status.code(),
        Some(75),
        "temporary failure: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out)
            .contains("1 delivery failed temporarily; run `shorts digest send` again to retry it"),
        "{}",
        stderr(&out)
    );
    let out = run(site.path(), "2026-06-08T09:00:00Z", &["digest", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "digest #1 (resumed): 1 sent, 0 skipped (nothing new in their tracks), 0 failed, 1 sent earlier\n"
    );
    let received = server.received();
    assert_eq!(by_recipient(&received, "a@example.com").len(), 1);
    assert_eq!(by_recipient(&received, "b@example.com").len(), 1);
}

#[test]
fn a_permanent_failure_is_recorded_and_the_others_get_theirs() {
    let server = SmtpServer::start();
    let site = digest_site(server.port);
    for who in ["a", "gone", "c"] {
        add(site.path(), &[&format!("{who}@example.com")]);
    }
    server.fail("gone@example.com", &[550, 550, 550, 550]);
    let out = run(site.path(), WEEK_1, &["digest", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "digest #1: 2 sent, 0 skipped (nothing new in their tracks), 1 failed\n"
    );
    assert_eq!(
        server.attempts("gone@example.com"),
        1,
        "a 5xx is not retried"
    );
    let failed: Vec<_> = common::all_deliveries(common::store(site.path()).as_ref())
        .into_iter()
        .filter(|d| d.state == DeliveryState::Failed)
        .collect();
    assert_eq!(failed.len(), 1);
    let error = failed[0].last_error.as_deref().unwrap_or_default();
    assert!(error.contains("550"), "{failed:?}");
    assert_eq!(server.received().len(), 2);
}

#[test]
fn three_permanent_failures_in_a_row_bounce_a_subscriber() {
    let server = SmtpServer::start();
    let site = digest_site(server.port);
    add(site.path(), &["gone@example.com"]);
    server.fail("gone@example.com", &[550, 550, 550, 550]);
    for (week, now) in [
        "2026-06-08T08:00:00Z",
        "2026-06-15T08:00:00Z",
        "2026-06-22T08:00:00Z",
    ]
    .iter()
    .enumerate()
    {
        let late = format!(
            "+++\ntitle = \"Week {week}\"\ndate = {}\nsummary = \"S\"\ntrack = \"llm\"\n+++\nBody.\n",
            &now[..10]
        );
        std::fs::write(
            site.path().join(format!("content/shorts/week-{week}.md")),
            late,
        )
        .unwrap();
        let out = run(site.path(), now, &["digest", "send"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = run(site.path(), WEEK_2, &["subscribers", "list"]);
    assert!(
        stdout(&out).starts_with("bounced       gone@example.com"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn dry_run_and_preview_send_and_record_nothing() {
    let server = SmtpServer::start();
    let site = digest_site(server.port);
    add(site.path(), &["all@example.com"]);
    let out = run(site.path(), WEEK_1, &["digest", "send", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "would send    all@example.com: \"Fixture <Site> & Co #1: 2 new shorts\" (2 shorts)"
        ),
        "{text}"
    );
    let out = run(
        site.path(),
        WEEK_1,
        &["digest", "preview", "--subscriber", "all@example.com"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    for ext in ["eml", "html", "txt"] {
        assert!(
            site.path()
                .join(format!("preview/digest-1-all@example.com.{ext}"))
                .exists()
        );
    }
    assert!(server.received().is_empty());
    assert_eq!(common::store(site.path()).digest_count().unwrap(), 0);
}

#[test]
fn an_unreachable_server_is_a_temporary_failure_and_the_next_run_delivers() {
    let port = common::unused_port();
    let site = digest_site(port);
    let everyone: Vec<String> = (0..60).map(|i| format!("r{i}@example.com")).collect();
    for who in &everyone {
        add(site.path(), &[who]);
    }
    let out = run(site.path(), WEEK_1, &["digest", "send"]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot be reached"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(&format!(
            "127.0.0.1:{port}: Connection refused (os error 111); check `host` and `port` in [delivery.smtp]"
        )),
        "names the server and what to check: {}",
        stderr(&out)
    );
    // The run stops at the first message that cannot get through instead of
    // waiting out every subscriber's retries; the rest are left for the next run.
    let deferred = delivery_states(site.path());
    let tried: usize = deferred.iter().map(|(_, n)| n).sum();
    assert!(
        deferred
            .iter()
            .all(|(state, _)| *state == DeliveryState::Deferred)
            && tried < 30,
        "{deferred:?}"
    );
    // The server comes up (on another port, by config).
    let server = SmtpServer::start();
    common::edit_config(
        site.path(),
        &format!("port = {port}"),
        &format!("port = {}", server.port),
    );
    let out = run(site.path(), "2026-06-08T08:30:00Z", &["digest", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.received().len(), everyone.len());
}

#[test]
fn after_a_crash_a_rerun_sends_what_is_missing_and_nothing_confirmed() {
    let server = SmtpServer::start();
    let site = digest_site(server.port);
    for who in ["a", "b", "c"] {
        add(site.path(), &[&format!("{who}@example.com")]);
    }
    // c's server is down for the whole first run.
    server.fail("c@example.com", &[421, 421, 421]);
    let out = run(site.path(), WEEK_1, &["digest", "send"]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    // Make the ledger look like a crash right after b's message was handed
    // over and before the server's answer was recorded.
    let store = common::store(site.path());
    let b = store.subscriber_by_email("b@example.com").unwrap().unwrap();
    assert_eq!(
        store.delivery_state(1, b.id).unwrap(),
        Some(DeliveryState::Sent)
    );
    drop(store);
    common::execute_sql(
        site.path(),
        &format!(
            "UPDATE deliveries SET state = 'sending' WHERE subscriber = {}",
            b.id
        ),
    );

    let out = run(site.path(), "2026-06-08T08:10:00Z", &["digest", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "digest #1 (resumed): 2 sent, 0 skipped (nothing new in their tracks), 0 failed, 1 sent earlier\n"
    );
    let received = server.received();
    assert_eq!(
        by_recipient(&received, "a@example.com").len(),
        1,
        "confirmed: never again"
    );
    assert_eq!(
        by_recipient(&received, "b@example.com").len(),
        2,
        "in flight at the crash: may go twice"
    );
    assert_eq!(
        by_recipient(&received, "c@example.com").len(),
        1,
        "missing: sent now"
    );
    let ids: Vec<String> = by_recipient(&received, "b@example.com")
        .iter()
        .map(|r| parse(r).headers.get_first_value("Message-ID").unwrap())
        .collect();
    assert_eq!(
        ids[0], ids[1],
        "a resent copy keeps its Message-ID, so clients can drop the duplicate"
    );
    assert_eq!(delivery_states(site.path()), [(DeliveryState::Sent, 3)]);
    let digests = common::store(site.path()).digests().unwrap();
    assert_eq!(digests.iter().filter(|d| d.completed).count(), 1);
}

#[test]
fn a_dry_run_piped_into_head_ends_quietly_with_its_exit_code() {
    use std::io::BufRead;
    let site = digest_site(1);
    let csv = site.path().join("readers.csv");
    let rows: String = (0..3000)
        .map(|i| format!("reader{i}@example.com,Reader {i},,active\n"))
        .collect();
    std::fs::write(&csv, format!("email,name,tracks,status\n{rows}")).unwrap();
    let out = run(
        site.path(),
        WEEK_1,
        &["subscribers", "import", "readers.csv"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // More lines than a pipe holds, and a reader that stops after one, like `| head -1`.
    let mut child = common::shorts_command(site.path(), WEEK_1)
        .args(["digest", "send", "--dry-run"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(!first.is_empty());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?} {}", out.status, stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn with_a_bounce_address_each_message_returns_to_a_signed_address_naming_its_delivery() {
    let server = SmtpServer::start();
    let site = digest_site(server.port);
    common::edit_config(
        site.path(),
        "[delivery]\n",
        "[delivery]\nbounce_address = \"bounces@example.com\"\n",
    );
    add(site.path(), &["a@example.com"]);
    add(site.path(), &["b@example.com"]);
    let out = run(site.path(), WEEK_1, &["digest", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let secret = common::site_secret(site.path());
    let bounce: lettre::Address = "bounces@example.com".parse().unwrap();
    let store = common::store(site.path());
    for email in ["a@example.com", "b@example.com"] {
        let received = by_recipient(&server.received(), email)[0].clone();
        let id = store.subscriber_by_email(email).unwrap().unwrap().id;
        assert_eq!(
            shorts::delivery::verp::read(&received.from, &bounce, &secret),
            Ok(shorts::delivery::verp::Sent::Digest {
                digest: 1,
                subscriber: id
            }),
            "envelope sender {:?}",
            received.from
        );
        let mail = parse(&received);
        assert_eq!(
            mail.headers.get_all_values("CFBL-Address"),
            ["bounces@example.com; report=arf"]
        );
        assert_eq!(
            mail.headers.get_all_values("Feedback-ID"),
            ["digest-1:digest:example.com"]
        );
    }
}

#[test]
fn without_a_bounce_address_the_envelope_sender_is_the_from_address() {
    let server = SmtpServer::start();
    let site = digest_site(server.port);
    add(site.path(), &["a@example.com"]);
    let out = run(site.path(), WEEK_1, &["digest", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let received = server.received();
    assert_eq!(
        received[0].from.trim_matches(['<', '>']),
        "digest@example.com"
    );
    assert!(
        parse(&received[0])
            .headers
            .get_first_value("CFBL-Address")
            .is_none()
    );
}

/// A server that answers every connection like a web server, then hangs up.
fn not_smtp_server() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut connection in listener.incoming().flatten() {
            let _ = connection.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            let _ = connection.read(&mut [0u8; 512]);
        }
    });
    port
}

/// Settings that cannot work stop the run at once with exit 3 and say what
/// to fix, instead of every subscriber waiting out every retry under exit 75.
#[test]
fn smtp_settings_that_cannot_work_stop_the_run_with_exit_3() {
    let server = SmtpServer::start();
    let not_smtp = not_smtp_server();
    for (port, tls, says) in [
        (server.port, "starttls", "does not offer STARTTLS"),
        (server.port, "tls", "TLS with"),
        (not_smtp, "none", "did not answer like an SMTP server"),
    ] {
        let site = digest_site(port);
        common::edit_config(site.path(), "tls = \"none\"", &format!("tls = \"{tls}\""));
        let everyone: Vec<String> = (0..20).map(|i| format!("r{i}@example.com")).collect();
        for who in &everyone {
            add(site.path(), &[who]);
        }
        let started = std::time::Instant::now();
        let out = run(site.path(), WEEK_1, &["digest", "send"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{tls} on {port}: {err}");
        assert!(err.contains(says), "{err}");
        assert!(
            err.contains(&format!("127.0.0.1:{port}")),
            "names the server: {err}"
        );
        assert!(err.contains("[delivery.smtp]"), "says what to check: {err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "stopped at once, not after every retry: {:?}",
            started.elapsed()
        );
        assert!(server.received().is_empty());
        // Nothing was lost: the digest waits for the fixed settings.
        assert!(
            delivery_states(site.path())
                .iter()
                .all(|(state, _)| *state == DeliveryState::Deferred
                    || *state == DeliveryState::Sending),
            "{:?}",
            delivery_states(site.path())
        );
    }
}

/// A server that accepts connections and never says a word stops the run
/// like an unreachable one, after one message's retries, not every one's.
#[test]
fn a_server_that_never_greets_stops_the_run_after_one_messages_retries() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for connection in listener.incoming().flatten() {
            held.push(connection);
        }
    });
    let site = digest_site(port);
    common::edit_config(site.path(), "timeout_secs = 5", "timeout_secs = 1");
    for i in 0..20 {
        add(site.path(), &[&format!("r{i}@example.com")]);
    }
    let started = std::time::Instant::now();
    let out = run(site.path(), WEEK_1, &["digest", "send"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port} did not answer within 1 s")),
        "{err}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "20 subscribers did not each wait out 3 attempts: {:?}",
        started.elapsed()
    );
}

/// `n` subscribers, `r00@example.com` and on, with a streak limit of 3.
fn streak_site(server: &SmtpServer, n: usize) -> (tempfile::TempDir, Vec<String>) {
    let site = digest_site(server.port);
    common::edit_config(
        site.path(),
        "timeout_secs = 5",
        "timeout_secs = 5\nmax_consecutive_failures = 3",
    );
    let everyone: Vec<String> = (0..n).map(|i| format!("r{i:02}@example.com")).collect();
    for who in &everyone {
        add(site.path(), &[who]);
    }
    (site, everyone)
}

/// Each of `everyone` got exactly one message from `server`.
fn assert_each_once(server: &SmtpServer, everyone: &[String]) {
    let received = server.received();
    for who in everyone {
        assert_eq!(by_recipient(&received, who).len(), 1, "{who}");
    }
    assert_eq!(received.len(), everyone.len());
}

/// A server that defers everyone (greylisting the whole run, a 451 on every
/// RCPT) stops the run after `max_consecutive_failures` messages in a row,
/// instead of every subscriber waiting out their retries; the next run,
/// with the server taking mail again, delivers everyone exactly once.
#[test]
fn a_server_deferring_everyone_stops_the_run_after_a_streak_and_the_next_run_delivers() {
    let server = SmtpServer::start();
    let (site, everyone) = streak_site(&server, 30);
    server.refuse_all(451);
    let out = run(site.path(), WEEK_1, &["digest", "send"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{} deferred ", server.port))
            && err.contains(" messages in a row")
            && err.contains("the digest resumes on the next run"),
        "{err}"
    );
    // Three messages of 3 attempts each, and at most one more message on
    // the pool's other connection; not 30 × 3.
    let tried = server.all_attempts();
    assert!((9..=12).contains(&tried), "{tried} RCPT attempts");
    let states = delivery_states(site.path());
    let recorded: usize = states.iter().map(|(_, n)| n).sum();
    assert!(
        states
            .iter()
            .all(|(state, _)| *state == DeliveryState::Deferred)
            && recorded < 30,
        "{states:?}"
    );

    server.accept_all();
    let out = run(site.path(), "2026-06-08T08:30:00Z", &["digest", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_each_once(&server, &everyone);
    assert_eq!(delivery_states(site.path()), [(DeliveryState::Sent, 30)]);
}

/// Deferrals with successes between them are each message's own: the run
/// goes through the whole list however many there are.
#[test]
fn deferrals_between_successes_do_not_stop_the_run() {
    let server = SmtpServer::start();
    let (site, everyone) = streak_site(&server, 30);
    let deferred: Vec<&String> = everyone.iter().step_by(5).collect();
    for who in &deferred {
        server.fail(who, &[451, 451, 451]);
    }
    let out = run(site.path(), WEEK_1, &["digest", "send"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(
        err.contains("6 deliveries failed temporarily") && !err.contains("in a row"),
        "{err}"
    );
    assert_eq!(server.all_attempts(), 24 + 6 * 3, "everyone tried");
    assert_eq!(
        delivery_states(site.path()),
        [(DeliveryState::Deferred, 6), (DeliveryState::Sent, 24)]
    );
    let out = run(site.path(), "2026-06-08T08:30:00Z", &["digest", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_each_once(&server, &everyone);
}

/// `check --smtp` proves the settings against the real server and sends
/// nothing: 0 when they work, 1 when they cannot, 75 when the server is down.
#[test]
fn check_smtp_connects_sends_nothing_and_says_what_is_wrong() {
    let server = SmtpServer::start();
    let site = digest_site(server.port);
    let out = run(site.path(), WEEK_1, &["check", "--smtp"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "ok: 127.0.0.1:{}: connected, TLS and login as configured, nothing sent",
            server.port
        )),
        "{}",
        stdout(&out)
    );
    assert!(server.received().is_empty());

    common::edit_config(site.path(), "tls = \"none\"", "tls = \"starttls\"");
    let out = run(site.path(), WEEK_1, &["check", "--smtp"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("does not offer STARTTLS"),
        "{}",
        stderr(&out)
    );

    let nobody = common::unused_port();
    let site = digest_site(nobody);
    let out = run(site.path(), WEEK_1, &["check", "--smtp"]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Connection refused"),
        "{}",
        stderr(&out)
    );
}

/// The digest as a newsletter: the author's note above the sections (and on
/// the archive page), a link to read it in the browser, the preheader
/// hidden in the message, and a heading that says the year once.
#[test]
fn the_digest_carries_the_authors_note_a_browser_link_and_a_hidden_preheader() {
    let server = SmtpServer::start();
    let site = digest_site(server.port);
    add(site.path(), &["all@example.com"]);
    let notes = site.path().join("content/digests");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(
        notes.join("2026-06-08.md"),
        "A short week: **two** notes, one on [escaping](/notes/shorts/escaping/).\n\n\
         ```python\nprint(\"hi\")  # greet\n```\n\nIt costs $5 and $10; the rule is $\\frac{a}{b}$.\n",
    )
    .unwrap();
    let out = run(site.path(), WEEK_1, &["publish"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let received = server.received();
    let (text, html) = parts(&parse(&received[0]));

    let heading = html.split("<h1").nth(1).expect("a heading");
    assert!(
        heading.contains("new shorts, Jun 1 – 8, 2026</h1>"),
        "{heading}"
    );
    assert!(
        html.contains("href=\"https://example.com/notes/digests/1/\"")
            && html.contains(">View in your browser</a>"),
        "{html}"
    );
    assert!(
        html.contains("<strong>two</strong> notes, one on <a href=\"https://example.com/notes/shorts/escaping/\""),
        "the note, its link absolute: {html}"
    );
    // Highlighted code keeps its colours in the email: css-inline writes
    // each class's colour onto its span.
    assert!(
        html.contains(
            "<span class=\"hl-comment\" style=\"color: #5e6470;font-style: italic;\"># greet"
        ),
        "{html}"
    );
    // Formulas are MathML in the email too; prices are not formulas; the
    // text part keeps the LaTeX as written.
    assert!(
        html.contains("It costs $5 and $10; the rule is <math display=\"inline\"")
            && html
                .contains("<mfrac><mrow><mi>a</mi></mrow><mrow><mi>b</mi></mrow></mfrac></math>."),
        "{html}"
    );
    assert!(text.contains("the rule is $\\frac{a}{b}$."), "{text}");
    // The preheader opens the body, hidden, padded so clients show nothing after it.
    let body = html.split("<body").nth(1).expect("a body");
    let preheader = body.split("<div").nth(1).expect("the preheader");
    assert!(preheader.contains("class=\"preheader\""), "{preheader}");
    assert!(preheader.contains("display: none"), "{preheader}");
    assert!(preheader.contains("New in "), "{preheader}");
    assert!(
        !html.contains("class=\"intro\""),
        "no visible run-on preheader"
    );

    assert!(
        text.contains("View in your browser: https://example.com/notes/digests/1/"),
        "{text}"
    );
    assert!(text.contains("A short week: **two** notes"), "{text}");
    // The archive page shows the same note.
    let page = std::fs::read_to_string(site.path().join("public/digests/1/index.html")).unwrap();
    assert!(
        page.contains("<div class=\"digest-note\"><p>A short week: <strong>two</strong>"),
        "{page}"
    );
}
