//! The send stage against an in-process transport that records what it is
//! handed and refuses chosen recipients (lettre's `StubTransport`, with a
//! script), over an in-memory store and a collection built here.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use chrono::{DateTime, TimeZone, Utc};

use super::send;
use crate::config::Config;
use crate::delivery::compose::Composed;
use crate::delivery::{Failure, Transport};
use crate::digest::{Plan, Planned, SendReport, Sender, record_new};
use crate::model::{Collection, Short, SubscriberStatus};
use crate::render::digest::{DigestTemplates, SharedCopies};
use crate::store::{Database, DeliveryState, Ledger, NewSubscriber, SubscriberStore};
use crate::tokens::Secret;

/// A site with three tracks and a weekly digest.
pub(in crate::digest) const CONFIG: &str = r#"
[site]
title = "T"
description = "D"
base_url = "https://example.com/"
author = { name = "A" }

[[tracks]]
slug = "llm"
title = "LLMs"

[[tracks]]
slug = "rag"
title = "Retrieval"

[[tracks]]
slug = "ops"
title = "Operations"

[digest]
schedule = "0 8 * * MON"
from = "Digest <digest@example.com>"
postal_address = "1 Test Street"
"#;

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, day, 8, 0, 0).unwrap()
}

/// A transport that accepts every message but those it is told to refuse.
#[derive(Default)]
struct Stub<'a> {
    /// The recipient of each message accepted, in order.
    accepted: Mutex<Vec<String>>,
    /// Refused with a 5xx: this address will never work.
    permanent: Vec<&'static str>,
    /// Refused with a 4xx: try again later.
    temporary: Vec<&'static str>,
    /// Set as the first message is accepted, as a signal during the run would.
    cancel_on_first: Option<&'a AtomicBool>,
    /// Which messages are answered with a 4xx, by their place (from 0) in
    /// the order they are handed over, whoever they are for.
    defers: Option<fn(usize) -> bool>,
    /// Messages handed over at once (1 when 0).
    parallelism: usize,
    /// `max_consecutive_failures`; 0 = never stop.
    limit: u32,
    /// Messages handed over, accepted or not.
    tried: AtomicUsize,
}

impl Stub<'_> {
    fn accepted(&self) -> Vec<String> {
        let mut accepted = self.accepted.lock().unwrap().clone();
        accepted.sort();
        accepted
    }
}

impl Transport for Stub<'_> {
    fn send(&self, message: &Composed, _batch: &str) -> Result<(), Failure> {
        let place = self.tried.fetch_add(1, Ordering::SeqCst);
        let to = message.envelope.to()[0].to_string();
        if self.permanent.contains(&to.as_str()) {
            return Err(Failure::Permanent("550 no such user".into()));
        }
        if self.temporary.contains(&to.as_str()) || self.defers.is_some_and(|defers| defers(place))
        {
            return Err(Failure::Transient("451 try again later".into()));
        }
        self.accepted.lock().unwrap().push(to);
        if let Some(cancel) = self.cancel_on_first {
            cancel.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    fn parallelism(&self) -> usize {
        self.parallelism.max(1)
    }

    fn max_consecutive_failures(&self) -> u32 {
        self.limit
    }
}

/// A site with two shorts (one in `llm`, one in `rag`; none in `ops`) and a ledger.
struct Fixture {
    config: Config,
    collection: Collection,
    templates: DigestTemplates,
    store: Database,
    secret: Secret,
}

impl Fixture {
    fn new() -> Self {
        // A folder that does not exist: the built-in templates are used.
        let config = Config::parse(CONFIG, Path::new("/nonexistent/shorts-test/config.toml"))
            .expect("the test config is valid");
        let shorts = vec![short("a", "llm", 2), short("b", "rag", 3)];
        Fixture {
            collection: Collection::new(config.tracks.clone(), shorts),
            templates: DigestTemplates::load(&config).expect("the built-in templates load"),
            store: Database::in_memory().expect("an in-memory store"),
            secret: Secret::from_bytes(b"test secret"),
            config,
        }
    }

    fn cadence(&self) -> &crate::config::Cadence {
        self.config.digest.as_ref().unwrap().default_cadence()
    }

    fn subscribe(&self, email: &str, tracks: &[&str], status: SubscriberStatus) -> i64 {
        let new = NewSubscriber {
            email: email.to_string(),
            name: String::new(),
            tracks: tracks.iter().map(|t| t.to_string()).collect(),
            tags: Vec::new(),
            status,
            source: "test".to_string(),
            consent_text: String::new(),
            cadence: None,
        };
        self.store.save_subscriber(&new, at(1)).unwrap();
        self.store.subscriber_by_email(email).unwrap().unwrap().id
    }

    /// Digest #1 with every short, planned and recorded as a send does.
    fn digest(&self) -> Planned<'_> {
        let Plan::New(mut planned) = crate::digest::plan(
            &self.config,
            &self.store,
            &self.collection,
            self.cadence(),
            at(8),
        )
        .unwrap() else {
            panic!("digest #1 is due at the first slot");
        };
        assert_eq!(planned.content.shorts.len(), 2, "it carries both shorts");
        planned.content.id = record_new(&self.store, &planned, at(8)).unwrap().number;
        planned
    }

    fn send(&self, content: &Planned<'_>, transport: &Stub<'_>) -> SendReport {
        self.send_until(content, transport, &AtomicBool::new(false))
    }

    fn send_until(
        &self,
        content: &Planned<'_>,
        transport: &Stub<'_>,
        cancel: &AtomicBool,
    ) -> SendReport {
        let sender = Sender {
            config: &self.config,
            digest_config: self.config.digest.as_ref().unwrap(),
            templates: &self.templates,
            store: &self.store,
            secret: &self.secret,
            signer: None,
            now: at(8),
            cancel,
            copies: SharedCopies::default(),
            encoded: Default::default(),
        };
        send(&sender, content, transport, &|_| {}).expect("the send runs")
    }

    fn state(&self, subscriber: i64) -> Option<DeliveryState> {
        self.store.delivery_state(1, subscriber).unwrap()
    }
}

fn short(slug: &str, track: &str, day: u32) -> Short {
    Short::sample(slug, track, at(day).fixed_offset())
}

#[test]
fn each_follower_gets_one_message_and_the_rest_are_skipped() {
    let site = Fixture::new();
    let all = site.subscribe("all@example.com", &[], SubscriberStatus::Active);
    let llm = site.subscribe("llm@example.com", &["llm"], SubscriberStatus::Active);
    let ops = site.subscribe("ops@example.com", &["ops"], SubscriberStatus::Active);
    let pending = site.subscribe("new@example.com", &[], SubscriberStatus::Pending);
    let content = site.digest();
    let transport = Stub::default();
    let report = site.send(&content, &transport);
    assert_eq!(
        transport.accepted(),
        ["all@example.com", "llm@example.com"],
        "one message each, none for nothing in their tracks, none to the unconfirmed"
    );
    assert_eq!((report.sent, report.skipped, report.failed), (2, 1, 0));
    assert!(report.completed);
    assert_eq!(site.state(all), Some(DeliveryState::Sent));
    assert_eq!(site.state(llm), Some(DeliveryState::Sent));
    assert_eq!(site.state(ops), Some(DeliveryState::Skipped));
    assert_eq!(site.state(pending), None);
    assert_eq!(site.store.unfinished_digest("").unwrap(), None);
}

#[test]
fn a_second_send_of_the_same_digest_sends_nothing_more() {
    let site = Fixture::new();
    site.subscribe("all@example.com", &[], SubscriberStatus::Active);
    site.subscribe("ops@example.com", &["ops"], SubscriberStatus::Active);
    let content = site.digest();
    site.send(&content, &Stub::default());
    let again = Stub::default();
    let report = site.send(&content, &again);
    assert!(again.accepted().is_empty());
    assert_eq!((report.sent, report.skipped, report.already), (0, 0, 2));
    assert!(report.completed);
}

#[test]
fn a_permanent_failure_is_recorded_failed_and_the_digest_still_completes() {
    let site = Fixture::new();
    let all = site.subscribe("all@example.com", &[], SubscriberStatus::Active);
    let gone = site.subscribe("gone@example.com", &["rag"], SubscriberStatus::Active);
    let content = site.digest();
    let transport = Stub {
        permanent: vec!["gone@example.com"],
        ..Stub::default()
    };
    let report = site.send(&content, &transport);
    assert_eq!(transport.accepted(), ["all@example.com"]);
    assert_eq!((report.sent, report.failed, report.bounced), (1, 1, 0));
    assert!(report.completed && !report.is_temporary_failure());
    assert_eq!(site.state(all), Some(DeliveryState::Sent));
    assert_eq!(site.state(gone), Some(DeliveryState::Failed));
}

#[test]
fn a_temporary_failure_is_deferred_and_the_next_run_sends_only_that() {
    let site = Fixture::new();
    let all = site.subscribe("all@example.com", &[], SubscriberStatus::Active);
    let later = site.subscribe("later@example.com", &["llm"], SubscriberStatus::Active);
    let content = site.digest();
    let transport = Stub {
        temporary: vec!["later@example.com"],
        ..Stub::default()
    };
    let report = site.send(&content, &transport);
    assert_eq!(transport.accepted(), ["all@example.com"]);
    assert_eq!((report.sent, report.deferred), (1, 1));
    assert!(report.is_temporary_failure() && !report.completed);
    assert_eq!(site.state(later), Some(DeliveryState::Deferred));
    assert_eq!(
        site.store.unfinished_digest("").unwrap().map(|d| d.number),
        Some(1)
    );

    let retry = Stub::default();
    let report = site.send(&content, &retry);
    assert_eq!(retry.accepted(), ["later@example.com"]);
    assert_eq!((report.sent, report.already), (1, 1));
    assert!(report.completed);
    assert_eq!(site.state(all), Some(DeliveryState::Sent));
    assert_eq!(site.state(later), Some(DeliveryState::Sent));
}

#[test]
fn a_cancelled_run_hands_out_nothing_more_and_the_next_run_finishes() {
    let site = Fixture::new();
    site.subscribe("first@example.com", &[], SubscriberStatus::Active);
    // More than can be in flight at once (one per compose thread, and the
    // queues), so a stop after the first message leaves some unsent.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let many: Vec<String> = (0..cores + 100)
        .map(|n| format!("s{n:04}@example.com"))
        .collect();
    for email in &many {
        site.subscribe(email, &[], SubscriberStatus::Active);
    }
    let content = site.digest();
    let cancelled = AtomicBool::new(true);
    let transport = Stub::default();
    let report = site.send_until(&content, &transport, &cancelled);
    assert!(
        transport.accepted().is_empty(),
        "cancelled before the first"
    );
    assert!(report.interrupted && !report.completed);
    assert!(site.store.unfinished_digest("").unwrap().is_some());

    let cancel = AtomicBool::new(false);
    let first_run = Stub {
        cancel_on_first: Some(&cancel),
        ..Stub::default()
    };
    let report = site.send_until(&content, &first_run, &cancel);
    assert!(report.interrupted && !report.completed);
    assert!(
        first_run.accepted().len() < many.len(),
        "a signal after the first message stops the run: {} sent",
        first_run.accepted().len()
    );
    let second_run = Stub::default();
    let report = site.send(&content, &second_run);
    assert!(report.completed);
    let mut everyone = [first_run.accepted(), second_run.accepted()].concat();
    everyone.sort();
    let mut expected = many.clone();
    expected.push("first@example.com".to_string());
    expected.sort();
    assert_eq!(
        everyone, expected,
        "each subscriber got exactly one message"
    );
}

/// `n` subscribers to every track, `s00@example.com` and on.
fn subscribe_many(site: &Fixture, n: usize) -> Vec<String> {
    let everyone: Vec<String> = (0..n).map(|i| format!("s{i:02}@example.com")).collect();
    for email in &everyone {
        site.subscribe(email, &[], SubscriberStatus::Active);
    }
    everyone
}

#[test]
fn a_streak_of_deferred_messages_stops_the_run_and_the_next_run_sends_the_rest() {
    let site = Fixture::new();
    let everyone = subscribe_many(&site, 60);
    let content = site.digest();
    let deferring = Stub {
        defers: Some(|_| true),
        parallelism: 4,
        limit: 5,
        ..Stub::default()
    };
    let report = site.send(&content, &deferring);
    // The fifth in a row stops it; each other connection may have had one
    // more message in hand by then.
    let tried = deferring.tried.load(Ordering::SeqCst);
    assert!((5..=8).contains(&tried), "{tried} tried");
    let fatal = report.fatal.clone().unwrap_or_default();
    assert!(fatal.contains("messages in a row"), "{fatal}");
    assert!(report.is_temporary_failure() && !report.completed && !report.misconfigured);
    assert_eq!(report.sent, 0);
    let deliveries = site.store.deliveries(1).unwrap();
    assert!(
        deliveries
            .iter()
            .all(|d| d.state == DeliveryState::Deferred),
        "{deliveries:?}"
    );
    assert!(
        deliveries.len() < everyone.len(),
        "the rest were never claimed"
    );

    let healthy = Stub::default();
    let report = site.send(&content, &healthy);
    assert!(report.completed, "{report:?}");
    assert_eq!(healthy.accepted(), everyone, "each exactly once");
}

/// Several connections each held by a deferred message's retries finish
/// back to back; the server took the messages between them meanwhile, so
/// that is no streak. The CI run that found it had 4 connections and one
/// message in five deferred. Only deferrals tried while nothing was
/// accepted count.
#[test]
fn deferrals_that_overlap_a_success_are_no_streak() {
    let transport = Stub {
        limit: 3,
        ..Stub::default()
    };
    let halt = super::Halt::new(&transport);
    let deferred = || Err((Failure::Transient("451 try later".into()), 3));
    // Four connections take a deferred message each, with successes
    // finishing between their hand-overs.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(halt.accepted());
        for _ in 0..4 {
            let started = halt.accepted();
            assert!(halt.note(&transport, started, Ok(1)).is_ok());
        }
    }
    // The last one was handed over after the last success: it counts.
    held.push(halt.accepted());
    for started in held {
        assert!(halt.note(&transport, started, deferred()).is_err());
    }
    assert!(halt.failure().is_none(), "only one deferral counted");

    // A server that takes nothing from then on is stopped at the limit.
    for counted in 2..=3 {
        let started = halt.accepted();
        let _ = halt.note(&transport, started, deferred());
        assert_eq!(halt.failure().is_some(), counted == 3, "{counted} in a row");
    }
}

#[test]
fn deferrals_between_successes_or_without_a_limit_do_not_stop_the_run() {
    let site = Fixture::new();
    let everyone = subscribe_many(&site, 30);
    let content = site.digest();
    // Every third handed over is deferred: never two in a row.
    let some = Stub {
        defers: Some(|place| place % 3 == 0),
        limit: 2,
        ..Stub::default()
    };
    let report = site.send(&content, &some);
    assert_eq!((report.sent, report.deferred), (20, 10));
    assert!(report.fatal.is_none(), "{report:?}");
    assert_eq!(some.tried.load(Ordering::SeqCst), everyone.len());

    let unlimited = Stub {
        defers: Some(|_| true),
        parallelism: 4,
        ..Stub::default()
    };
    let report = site.send(&content, &unlimited);
    assert_eq!(
        unlimited.tried.load(Ordering::SeqCst),
        10,
        "every deferred one again"
    );
    assert_eq!((report.deferred, report.already), (10, 20));
    assert!(report.fatal.is_none(), "{report:?}");
}

/// Takes every message, or defers every one while `defer` is set; shared,
/// as `send_due` wants a boxed transport per digest.
#[derive(Clone, Default)]
struct Recording {
    accepted: std::sync::Arc<Mutex<Vec<String>>>,
    defer: std::sync::Arc<AtomicBool>,
}

impl Transport for Recording {
    fn send(&self, message: &Composed, _batch: &str) -> Result<(), Failure> {
        if self.defer.load(Ordering::SeqCst) {
            return Err(Failure::Transient("451 try again later".into()));
        }
        let to = message.envelope.to()[0].to_string();
        self.accepted.lock().unwrap().push(to);
        Ok(())
    }
}

/// `send_due` at `now` under `config`, on the fixture's store and shorts.
fn send_due_under(
    config: &Config,
    site: &Fixture,
    transport: &Recording,
    now: DateTime<Utc>,
) -> crate::digest::Sent {
    let templates = DigestTemplates::load(config).expect("the built-in templates load");
    let sender = Sender {
        config,
        digest_config: config.digest.as_ref().unwrap(),
        templates: &templates,
        store: &site.store,
        secret: &site.secret,
        signer: None,
        now,
        cancel: &AtomicBool::new(false),
        copies: SharedCopies::default(),
        encoded: Default::default(),
    };
    let boxed = || Ok(Box::new(transport.clone()) as Box<dyn Transport>);
    crate::digest::send_due(&sender, &site.collection, &boxed, now, None, &|_, _, _| {})
        .expect("the send runs")
}

/// A reader's copy claimed in a daily digest that the server deferred is
/// theirs (their watermark moved past it): taking `daily` out of the config
/// before the next run must not lose it. The next run finishes that digest,
/// and makes no new daily one.
#[test]
fn a_cadence_taken_out_of_the_config_still_finishes_its_unfinished_digest() {
    let site = Fixture::new();
    let path = Path::new("/nonexistent/shorts-test/config.toml");
    let daily =
        format!("{CONFIG}\n[[digest.cadences]]\nname = \"daily\"\nschedule = \"0 8 * * *\"\n");
    let with_daily = Config::parse(&daily, path).expect("valid");
    let new = NewSubscriber {
        email: "d@example.com".into(),
        name: String::new(),
        tracks: Vec::new(),
        tags: Vec::new(),
        status: SubscriberStatus::Active,
        source: "test".into(),
        consent_text: String::new(),
        cadence: Some("daily".into()),
    };
    site.store.save_subscriber(&new, at(1)).unwrap();
    let down = Recording::default();
    down.defer.store(true, Ordering::SeqCst);
    // The first daily digest ever, on Wednesday, brings Wednesday's short.
    send_due_under(
        &with_daily,
        &site,
        &down,
        at(3) + chrono::Duration::hours(2),
    );
    let unfinished = site.store.unfinished_digest("daily").unwrap();
    assert!(
        unfinished.is_some(),
        "the daily digest waits for its reader"
    );

    let up = Recording::default();
    send_due_under(&site.config, &site, &up, at(9));
    assert_eq!(*up.accepted.lock().unwrap(), ["d@example.com"]);
    assert_eq!(site.store.unfinished_digest("daily").unwrap(), None);
    send_due_under(&site.config, &site, &up, at(10));
    assert_eq!(
        site.store.latest_digest("daily").unwrap().map(|d| d.number),
        unfinished.map(|d| d.number),
        "no new digest of a cadence no longer offered"
    );
}
