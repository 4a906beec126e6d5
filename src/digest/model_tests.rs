//! The digest's promise, checked over random histories against a reference
//! model: every subscriber gets every published short they follow exactly
//! once, in the first digest after it is published, whatever they change.
//!
//! Each case runs a random sequence of publishes (some backdated, some
//! dated ahead, some committed long after their date), edits, sign-ups,
//! unsubscribes and returns, changes of what is followed and of cadence
//! (weekly, daily, instant), pauses and resumes, clock moves (forward and
//! back) and sends, some of which die after k messages: the k-th message
//! reaches the server but its answer is lost, as with SIGKILL mid-send. The real store (SQLite in memory), planner, renderer and
//! composer run; the transport reads which shorts each message carries.
//! Then every subscriber's inbox is checked against what the model says
//! they were owed and allowed.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

use crate::config::Config;
use crate::delivery::compose::Composed;
use crate::delivery::{Failure, Transport};
use crate::digest::{Inputs, Sent, send_due};
use crate::model::{Collection, Short, SubscriberStatus};
use crate::render::digest::DigestTemplates;
use crate::store::{Database, NewSubscriber, SubscriberStore};
use crate::tokens::Secret;

/// The send tests' site, offering two cadences besides its weekly one.
fn config() -> String {
    format!(
        "{}{}",
        super::send::tests::CONFIG,
        r#"
[[digest.cadences]]
name = "daily"
schedule = "0 8 * * *"

[[digest.cadences]]
name = "instant"
schedule = "instant"
"#
    )
}

/// The cadences' keys, the default's first.
const CADENCES: [&str; 3] = ["", "daily", "instant"];

const TRACKS: [&str; 3] = ["llm", "rag", "ops"];
/// Readers; reader 0 follows everything and never changes anything.
const READERS: usize = 5;

/// A Tuesday: the first digest, sent then, is the one of Monday 1 June 08:00.
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 2, 9, 0, 0).unwrap()
}

/// Where the back catalogue ends: the first digest's period starts at the
/// slot before its own, Monday 25 May 08:00.
fn first_period_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 25, 8, 0, 0).unwrap()
}

#[derive(Debug, Clone)]
enum Op {
    /// A new short in track `track`, dated `offset` hours from now
    /// (negative: backdated or committed late; positive: dated ahead).
    Publish {
        track: usize,
        offset: i64,
    },
    /// A new short dated before the first digest's period: back catalogue.
    PublishOld {
        track: usize,
    },
    /// The `which`-th short (modulo) gets a new title.
    Edit {
        which: usize,
    },
    /// A reader subscribes, or comes back, following the tracks in
    /// `follows`, at the `cadence`-th cadence.
    Subscribe {
        reader: usize,
        follows: u8,
        cadence: usize,
    },
    /// A reader moves to the `cadence`-th cadence.
    Cadence {
        reader: usize,
        cadence: usize,
    },
    Pause {
        reader: usize,
    },
    Resume {
        reader: usize,
        catch_up: bool,
    },
    Unsubscribe {
        reader: usize,
    },
    Follow {
        reader: usize,
        follows: u8,
    },
    /// The clock moves forward by so many hours.
    Advance {
        hours: i64,
    },
    /// The clock jumps back by so many hours.
    JumpBack {
        hours: i64,
    },
    /// `publish` runs its digest step; `Some(k)`: the k-th message is the
    /// last, and its answer is lost.
    Send {
        dies_after: Option<usize>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, -200i64..30).prop_map(|(track, offset)| Op::Publish { track, offset }),
        1 => (0..3usize).prop_map(|track| Op::PublishOld { track }),
        1 => any::<usize>().prop_map(|which| Op::Edit { which }),
        2 => (1..READERS, 0u8..8, 0..3usize)
            .prop_map(|(reader, follows, cadence)| Op::Subscribe { reader, follows, cadence }),
        3 => (1..READERS, 0..3usize).prop_map(|(reader, cadence)| Op::Cadence { reader, cadence }),
        1 => (1..READERS).prop_map(|reader| Op::Pause { reader }),
        1 => (1..READERS, any::<bool>()).prop_map(|(reader, catch_up)| Op::Resume { reader, catch_up }),
        1 => (1..READERS).prop_map(|reader| Op::Unsubscribe { reader }),
        2 => (1..READERS, 0u8..8).prop_map(|(reader, follows)| Op::Follow { reader, follows }),
        3 => (1i64..100).prop_map(|hours| Op::Advance { hours }),
        1 => (1i64..60).prop_map(|hours| Op::JumpBack { hours }),
        4 => prop::option::weighted(0.4, 1usize..4).prop_map(|dies_after| Op::Send { dies_after }),
    ]
}

/// A message the server accepted: to whom, of which digest, carrying which shorts.
#[derive(Debug, Clone)]
struct Received {
    reader: usize,
    digest: i64,
    shorts: Vec<String>,
    /// The step of the history it went out in.
    step: usize,
}

/// The server: takes every message and reads the shorts in it; can die.
/// Shared (`send_due` wants a fresh boxed transport per digest).
#[derive(Clone)]
struct Server {
    slugs: Arc<Vec<String>>,
    received: Arc<Mutex<Vec<Received>>>,
    step: usize,
    /// After this many messages the run dies: the last is taken but its
    /// answer never comes back, and the run is stopped.
    dies_after: Option<usize>,
    handed: Arc<AtomicUsize>,
    cancel: Arc<AtomicBool>,
    /// (reader, digest) of a message whose answer was lost.
    lost_answers: Arc<Mutex<Vec<(usize, i64)>>>,
}

impl Transport for Server {
    fn send(&self, message: &Composed, _batch: &str) -> Result<(), Failure> {
        let n = self.handed.fetch_add(1, Ordering::SeqCst) + 1;
        if self.dies_after.is_some_and(|k| n > k) {
            return Err(Failure::Transient("the connection is gone".into()));
        }
        let received = read(message, &self.slugs, self.step);
        let who = (received.reader, received.digest);
        self.received.lock().unwrap().push(received);
        if self.dies_after == Some(n) {
            self.lost_answers.lock().unwrap().push(who);
            self.cancel.store(true, Ordering::SeqCst);
            return Err(Failure::Transient("the answer was lost".into()));
        }
        Ok(())
    }
}

/// Which reader, digest and shorts a message is, from its Message-ID
/// (`<digest-N.sID@…>`), recipient and text part.
fn read(message: &Composed, slugs: &[String], step: usize) -> Received {
    let digest = message
        .message_id
        .trim_start_matches("<digest-")
        .split('.')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a digest Message-ID");
    let to = message.envelope.to()[0].to_string();
    let reader = to
        .trim_start_matches("reader")
        .split('@')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a reader's address");
    let mail = mailparse::parse_mail(&message.bytes).expect("the message parses");
    let text = mail.subparts[0].get_body().expect("a text part");
    let shorts = slugs
        .iter()
        .filter(|slug| text.contains(&format!("https://example.com/shorts/{slug}/")))
        .cloned()
        .collect();
    Received {
        reader,
        digest,
        shorts,
        step,
    }
}

/// What the model knows of one short.
#[derive(Debug, Clone)]
struct Written {
    short: Short,
    /// The step it was committed at.
    added: usize,
}

/// A reader as the model sees them at one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stand {
    active: bool,
    /// Bit i: follows `TRACKS[i]`; 0 = everything.
    follows: u8,
    paused: bool,
    /// Resumed at this step without catching up: what was published while
    /// paused is behind them.
    fresh_start: bool,
}

impl Stand {
    fn follows(self, track: &str) -> bool {
        let bit = TRACKS
            .iter()
            .position(|t| *t == track)
            .expect("a known track");
        self.follows == 0 || self.follows & (1 << bit) != 0
    }
}

/// One history played against the real code.
struct World {
    config: Config,
    store: Database,
    secret: Secret,
    now: DateTime<Utc>,
    written: Vec<Written>,
    /// Each reader's stand at every step, `None` before they first subscribe.
    stands: Vec<Vec<Option<Stand>>>,
    received: Vec<Received>,
    lost_answers: Vec<(usize, i64)>,
    step: usize,
}

impl World {
    fn new() -> Self {
        Self::on(Database::in_memory().expect("an in-memory store"))
    }

    fn on(store: Database) -> Self {
        let config = Config::parse(
            &config(),
            Path::new("/nonexistent/shorts-model/config.toml"),
        )
        .expect("the test config is valid");
        let mut world = World {
            config,
            store,
            secret: Secret::from_bytes(b"model secret"),
            now: start(),
            written: Vec::new(),
            stands: vec![vec![None]; READERS],
            received: Vec::new(),
            lost_answers: Vec::new(),
            step: 0,
        };
        // Reader 0 and a back catalogue are there from the start, and the
        // first digest has gone out, so the back catalogue's end is known.
        world.apply(&Op::Subscribe {
            reader: 0,
            follows: 0,
            cadence: 0,
        });
        for track in 0..3 {
            world.apply(&Op::PublishOld { track });
        }
        world.publish(0, first_period_start() + Duration::days(5));
        world.send(None);
        assert_eq!(world.received.len(), 1, "the first digest went out");
        world
    }

    fn stand(&self, reader: usize) -> Option<Stand> {
        self.stands[reader].last().copied().flatten()
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Publish { track, offset } => {
                self.publish(track, self.now + Duration::hours(offset))
            }
            Op::PublishOld { track } => {
                let date = first_period_start() - Duration::hours(1 + self.written.len() as i64);
                self.publish(track, date);
            }
            Op::Edit { which } => {
                if !self.written.is_empty() {
                    let n = which % self.written.len();
                    self.written[n].short.title.push_str(" (edited)");
                }
            }
            Op::Subscribe {
                reader,
                follows,
                cadence,
            } => self.subscribe(reader, follows, CADENCES[cadence]),
            Op::Unsubscribe { reader } => self.change(reader, |store, id, now| {
                store.set_status(id, SubscriberStatus::Unsubscribed, now)?;
                Ok(|stand: Stand| Stand {
                    active: false,
                    ..stand
                })
            }),
            Op::Follow { reader, follows } => self.change(reader, |store, id, now| {
                store.set_follows(id, &tracks(follows), &[], now)?;
                Ok(move |stand: Stand| Stand { follows, ..stand })
            }),
            Op::Cadence { reader, cadence } => self.change(reader, |store, id, now| {
                store.set_cadence(id, CADENCES[cadence], now)?;
                Ok(|stand: Stand| stand)
            }),
            Op::Pause { reader } => self.change(reader, |store, id, now| {
                store.pause(id, now)?;
                Ok(|stand: Stand| Stand {
                    paused: true,
                    ..stand
                })
            }),
            Op::Resume { reader, catch_up } => self.change(reader, |store, id, now| {
                store.resume(id, catch_up, now)?;
                Ok(move |stand: Stand| Stand {
                    paused: false,
                    fresh_start: stand.paused && !catch_up,
                    ..stand
                })
            }),
            Op::Advance { hours } => self.now += Duration::hours(hours),
            Op::JumpBack { hours } => self.now -= Duration::hours(hours),
            Op::Send { dies_after } => self.send(dies_after),
        }
    }

    fn publish(&mut self, track: usize, date: DateTime<Utc>) {
        let slug = format!("s{:03}", self.written.len());
        let short = Short::sample(&slug, TRACKS[track], date.fixed_offset());
        self.written.push(Written {
            short,
            added: self.step,
        });
    }

    /// Changes a reader who has subscribed once, in the store and in the model.
    fn change<F: Fn(Stand) -> Stand>(
        &mut self,
        reader: usize,
        change: impl FnOnce(&Database, i64, DateTime<Utc>) -> Result<F, crate::store::StoreError>,
    ) {
        if let Some(id) = self.id(reader) {
            let stand = self.stand(reader).expect("a known reader");
            let next = change(&self.store, id, self.now).expect("the store takes it");
            self.set_stand(reader, next(stand));
        }
    }

    fn subscribe(&mut self, reader: usize, follows: u8, cadence: &str) {
        let was = self.stand(reader);
        let new = NewSubscriber {
            email: format!("reader{reader}@example.org"),
            name: String::new(),
            tracks: tracks(follows),
            tags: Vec::new(),
            status: SubscriberStatus::Active,
            source: "test".into(),
            consent_text: String::new(),
            cadence: Some(cadence.to_string()),
        };
        self.store.save_subscriber(&new, self.now).unwrap();
        self.set_stand(
            reader,
            Stand {
                active: true,
                follows,
                // Saving leaves a pause as it is.
                paused: was.is_some_and(|w| w.paused),
                fresh_start: false,
            },
        );
    }

    fn id(&self, reader: usize) -> Option<i64> {
        self.store
            .subscriber_by_email(&format!("reader{reader}@example.org"))
            .unwrap()
            .map(|s| s.id)
    }

    fn set_stand(&mut self, reader: usize, stand: Stand) {
        *self.stands[reader].last_mut().expect("a step is open") = Some(stand);
    }

    /// Opens the next step: every reader stands as they did.
    fn next_step(&mut self) {
        self.step += 1;
        for stands in &mut self.stands {
            let last = stands.last().copied().flatten().map(|stand| Stand {
                fresh_start: false,
                ..stand
            });
            stands.push(last);
        }
    }

    fn send(&mut self, dies_after: Option<usize>) {
        let collection = Collection::new(
            self.config.tracks.clone(),
            self.written.iter().map(|w| w.short.clone()).collect(),
        );
        let server = Server {
            slugs: Arc::new(self.written.iter().map(|w| w.short.slug.clone()).collect()),
            received: Arc::default(),
            step: self.step,
            dies_after,
            handed: Arc::default(),
            cancel: Arc::default(),
            lost_answers: Arc::default(),
        };
        let templates = DigestTemplates::load(&self.config).expect("the built-in templates");
        let inputs = Inputs {
            digest_config: self.config.digest.as_ref().expect("a digest"),
            collection,
            templates,
            signer: None,
        };
        let sender = inputs.sender(
            &self.config,
            &self.store,
            &self.secret,
            self.now,
            &server.cancel,
        );
        let transport = || Ok(Box::new(server.clone()) as Box<dyn Transport>);
        let sent = send_due(
            &sender,
            &inputs.collection,
            &transport,
            self.now,
            None,
            &|_, _, _| {},
        )
        .expect("the send runs");
        if let Sent::Digests(reports) = &sent {
            assert!(reports.iter().all(|r| r.failed == 0), "{reports:?}");
        }
        self.received
            .extend(server.received.lock().unwrap().drain(..));
        self.lost_answers
            .extend(server.lost_answers.lock().unwrap().drain(..));
    }

    /// After the history: nobody changes anything any more, and the digests
    /// of the next weeks go out whole, so everything owed has arrived.
    fn settle(&mut self) {
        let latest = self
            .written
            .iter()
            .map(|w| w.short.date.to_utc())
            .max()
            .unwrap_or(self.now);
        self.now = self.now.max(latest) + Duration::days(8);
        for _ in 0..3 {
            self.next_step();
            self.send(None);
            self.now += Duration::days(7);
        }
    }

    /// The checks; `Err` names the first broken promise.
    fn check(&self) -> Result<(), String> {
        let got = self.sound()?;
        self.once(&got)?;
        self.complete(&got)?;
        self.nothing_missed_comes_after_a_fresh_start()
    }

    /// Each message went to a reader who was subscribed (and not paused,
    /// unless it is of a digest whose run died: it was claimed before), and
    /// carries shorts, none of them back catalogue, each of a track they
    /// followed. Returns the digests that carried each short to each reader.
    fn sound(&self) -> Result<BTreeMap<(usize, &str), Vec<i64>>, String> {
        let by_slug: BTreeMap<&str, &Written> = self
            .written
            .iter()
            .map(|w| (w.short.slug.as_str(), w))
            .collect();
        let died: HashSet<i64> = self.lost_answers.iter().map(|(_, d)| *d).collect();
        let mut got: BTreeMap<(usize, &str), Vec<i64>> = BTreeMap::new();
        for message in &self.received {
            let stand = self.stands[message.reader][message.step]
                .ok_or_else(|| format!("{message:?} went to a reader who never subscribed"))?;
            if !stand.active || (stand.paused && !died.contains(&message.digest)) {
                return Err(format!(
                    "{message:?} went to a reader who had left or paused"
                ));
            }
            if message.shorts.is_empty() {
                return Err(format!("{message:?} carries no short"));
            }
            for slug in &message.shorts {
                let written = by_slug[slug.as_str()];
                if written.short.date.to_utc() <= first_period_start() {
                    return Err(format!("{message:?} carries {slug}, back catalogue"));
                }
                if !stand.follows(&written.short.track) {
                    return Err(format!(
                        "{message:?} carries {slug} of {}, which the reader did not follow",
                        written.short.track
                    ));
                }
                got.entry((message.reader, slug))
                    .or_default()
                    .push(message.digest);
            }
        }
        Ok(got)
    }

    /// No short reached a reader in two digests, nor twice in one unless a
    /// run died with that message's answer lost.
    fn once(&self, got: &BTreeMap<(usize, &str), Vec<i64>>) -> Result<(), String> {
        let lost: HashSet<&(usize, i64)> = self.lost_answers.iter().collect();
        for ((reader, slug), digests) in got {
            let distinct: BTreeSet<&i64> = digests.iter().collect();
            if distinct.len() > 1 {
                return Err(format!("reader {reader} got {slug} in digests {digests:?}"));
            }
            if digests.len() > 1 && !lost.contains(&(*reader, digests[0])) {
                return Err(format!(
                    "reader {reader} got {slug} {} times from digest {}, whose answer was never lost",
                    digests.len(),
                    digests[0]
                ));
            }
        }
        Ok(())
    }

    /// A reader subscribed, unpaused and following a short's track from the
    /// step it was written to the end got it, whatever cadences they moved
    /// between meanwhile.
    fn complete(&self, got: &BTreeMap<(usize, &str), Vec<i64>>) -> Result<(), String> {
        for written in &self.written {
            let (slug, track) = (written.short.slug.as_str(), &written.short.track);
            if written.short.date.to_utc() <= first_period_start() {
                continue;
            }
            for reader in 0..READERS {
                let throughout = self.stands[reader][written.added..]
                    .iter()
                    .all(|stand| stand.is_some_and(|s| s.active && !s.paused && s.follows(track)));
                if throughout && !got.contains_key(&(reader, slug)) {
                    return Err(format!(
                        "reader {reader} followed {slug} ({track}, dated {}) from the step it was written ({}) on, and never got it",
                        written.short.date, written.added
                    ));
                }
            }
        }
        Ok(())
    }

    /// A reader who resumed without catching up never gets a short written
    /// while they were paused that a digest carried before they resumed.
    fn nothing_missed_comes_after_a_fresh_start(&self) -> Result<(), String> {
        for reader in 0..READERS {
            let stands = &self.stands[reader];
            for resumed in (0..stands.len()).filter(|&s| stands[s].is_some_and(|s| s.fresh_start)) {
                let paused = (0..resumed)
                    .rev()
                    .find(|&step| !stands[step].is_some_and(|s| s.paused))
                    .map_or(0, |step| step + 1);
                let missed = self.carried_between(paused, resumed);
                if let Some(late) = self.received.iter().find(|m| {
                    m.reader == reader
                        && m.step >= resumed
                        && m.shorts.iter().any(|s| missed.contains(s.as_str()))
                }) {
                    return Err(format!(
                        "reader {reader}, paused at step {paused} and resumed at {resumed} without catching up, got {late:?}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The shorts written at `from` or later that some message carried
    /// before step `to`.
    fn carried_between(&self, from: usize, to: usize) -> HashSet<&str> {
        let written_since: HashSet<&str> = self
            .written
            .iter()
            .filter(|w| w.added >= from)
            .map(|w| w.short.slug.as_str())
            .collect();
        self.received
            .iter()
            .filter(|m| (from..to).contains(&m.step))
            .flat_map(|m| &m.shorts)
            .map(String::as_str)
            .filter(|slug| written_since.contains(slug))
            .collect()
    }
}

fn tracks(follows: u8) -> Vec<String> {
    (0..3)
        .filter(|bit| follows & (1 << bit) != 0)
        .map(|bit| TRACKS[bit].to_string())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_reader_gets_every_short_they_follow_once(ops in prop::collection::vec(op(), 1..40)) {
        play(World::new(), &ops)?;
    }
}

proptest! {
    // Fewer on PostgreSQL: each history is a new schema and a few thousand
    // round trips; the SQLite run above covers the space, this one the
    // engine.
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn on_postgres_too_every_reader_gets_every_short_they_follow_once(
        ops in prop::collection::vec(op(), 1..40)
    ) {
        let Some(store) = crate::store::testing::postgres() else {
            return Ok(());
        };
        play(World::on(store), &ops)?;
    }
}

/// Plays `ops` in `world` and checks the promise at the end.
fn play(mut world: World, ops: &[Op]) -> Result<(), TestCaseError> {
    for op in ops {
        world.next_step();
        world.apply(op);
    }
    world.settle();
    if let Err(broken) = world.check() {
        prop_assert!(
            false,
            "{broken}\nhistory: {ops:?}\nreceived: {:?}",
            world.received
        );
    }
    Ok(())
}
