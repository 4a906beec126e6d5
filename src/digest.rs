//! The weekly digest: which one is due, what it carries, and sending it to
//! every active subscriber with the ledger kept exact.
//!
//! Selection never goes by a date window alone: a digest carries every
//! published short dated at or before its slot that no earlier digest carried
//! (the ledger knows), so a backdated or late short is never skipped. The
//! first digest covers one period; shorts dated before it are the back
//! catalogue, which no digest mails. Sending records each delivery as `sending` before the transport
//! gets it and `sent` after the server accepted it: after a crash, a rerun
//! sends what is missing and nothing that was confirmed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{Config, DigestConfig};
use crate::delivery::compose::{self, Composed, Envelope, Signer};
use crate::delivery::{self, Failure, Transport};
use crate::model::{Collection, Short, Subscriber, SubscriberStatus};
use crate::render::digest::{DigestContent, DigestTemplates, Links, RenderedDigest, SharedCopies};
use crate::schedule::Schedule;
use crate::store::{DeliveryState, DigestRecord, Store, StoreError};
use crate::tokens::{Purpose, Secret};

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error(
        "config.toml has no [digest] section; add one with `schedule`, `from` and `postal_address`"
    )]
    NotConfigured,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Render(#[from] crate::render::digest::RenderError),
    #[error(transparent)]
    Compose(#[from] compose::ComposeError),
}

/// What is due at a given instant.
#[derive(Debug)]
pub enum Plan<'a> {
    /// Nothing to send, and why.
    Nothing(String),
    /// A digest that was started and not finished: finish it first.
    Resume(DigestContent<'a>),
    /// A new digest for `slot`, not yet recorded.
    New(DigestContent<'a>),
}

/// For a preview: what is due, or else the digest already sent for the latest slot.
pub fn plan_preview<'a>(
    config: &Config,
    store: &Store,
    collection: &'a Collection,
    at: DateTime<Utc>,
) -> Result<Plan<'a>, DigestError> {
    let plan = plan(config, store, collection, at)?;
    let Plan::Nothing(_) = plan else {
        return Ok(plan);
    };
    let digest_config = config.digest.as_ref().ok_or(DigestError::NotConfigured)?;
    let schedule = Schedule::new(digest_config.schedule.clone(), config.site.timezone);
    match schedule
        .latest_slot(at)
        .map(|slot| store.digest_for_slot(slot))
        .transpose()?
        .flatten()
    {
        Some(sent) => Ok(Plan::Resume(content_of(store, &sent, collection)?)),
        None => Ok(plan),
    }
}

/// Decides what `digest send` would do at `at`, without writing anything.
pub fn plan<'a>(
    config: &Config,
    store: &Store,
    collection: &'a Collection,
    at: DateTime<Utc>,
) -> Result<Plan<'a>, DigestError> {
    let digest_config = config.digest.as_ref().ok_or(DigestError::NotConfigured)?;
    if let Some(unfinished) = store.unfinished_digest()? {
        return Ok(Plan::Resume(content_of(store, &unfinished, collection)?));
    }
    let schedule = Schedule::new(digest_config.schedule.clone(), config.site.timezone);
    let Some(slot) = schedule.latest_slot(at) else {
        return Ok(Plan::Nothing(format!(
            "no slot of \"{}\" has come yet",
            digest_config.schedule_text
        )));
    };
    if let Some(done) = store.digest_for_slot(slot)? {
        return Ok(Plan::Nothing(format!(
            "digest #{} for {} was already sent",
            done.number,
            slot.with_timezone(&config.site.timezone)
                .format("%Y-%m-%d %H:%M %Z")
        )));
    }
    let previous = schedule
        .previous_slot(slot)
        .unwrap_or(slot - chrono::Duration::weeks(1));
    // The back catalogue (dated before the first digest's period) is never mailed.
    let floor = store.first_period_start()?.unwrap_or(previous);
    let carried = store.carried_slugs()?;
    let shorts: Vec<&Short> = collection
        .shorts
        .iter()
        .filter(|s| s.is_published(slot) && !carried.contains(&s.slug))
        .filter(|s| s.date.with_timezone(&Utc) > floor)
        .collect();
    if shorts.is_empty() {
        return Ok(Plan::Nothing(
            "no new shorts since the last digest".to_string(),
        ));
    }
    Ok(Plan::New(DigestContent {
        number: store.digest_count()? + 1,
        period_start: previous,
        slot,
        shorts,
    }))
}

/// The content of a recorded digest, from the shorts it carried that still exist.
pub fn content_of<'a>(
    store: &Store,
    record: &DigestRecord,
    collection: &'a Collection,
) -> Result<DigestContent<'a>, DigestError> {
    let by_slug: HashMap<&str, &Short> = collection
        .shorts
        .iter()
        .map(|s| (s.slug.as_str(), s))
        .collect();
    let mut shorts = Vec::new();
    for slug in store.digest_slugs(record.number)? {
        match by_slug.get(slug.as_str()) {
            Some(short) => shorts.push(*short),
            None => tracing::warn!(
                digest = record.number,
                slug,
                "a short this digest carries no longer exists; left out"
            ),
        }
    }
    Ok(DigestContent {
        number: record.number,
        period_start: record.period_start,
        slot: record.slot,
        shorts,
    })
}

/// Records a new digest and the shorts it carries.
pub fn record_new(
    store: &Store,
    content: &DigestContent<'_>,
    now: DateTime<Utc>,
) -> Result<DigestRecord, DigestError> {
    let shorts: Vec<(&str, &str)> = content
        .shorts
        .iter()
        .map(|s| (s.slug.as_str(), s.track.as_str()))
        .collect();
    Ok(store.create_digest(content.slot, content.period_start, &shorts, now)?)
}

/// Everything a send needs besides the transport.
pub struct Sender<'a> {
    pub config: &'a Config,
    pub digest_config: &'a DigestConfig,
    pub templates: &'a DigestTemplates,
    pub store: &'a Store,
    pub secret: &'a Secret,
    pub signer: Option<&'a Signer>,
    pub now: DateTime<Utc>,
    /// Set by SIGTERM/SIGINT: stop handing out new messages, finish and
    /// record the ones in flight, leave the digest unfinished for the next run.
    pub cancel: &'a AtomicBool,
    /// Copies rendered once per audience and personalised per subscriber.
    pub copies: SharedCopies,
}

/// What one subscriber's copy would be: rendered, or nothing new for them.
pub struct Prepared {
    pub subscriber: Subscriber,
    pub message: Option<(RenderedDigest, Composed)>,
}

impl Sender<'_> {
    /// What builds the messages, without the store: shareable between threads.
    pub fn composer(&self) -> Composer<'_> {
        Composer {
            config: self.config,
            digest_config: self.digest_config,
            templates: self.templates,
            secret: self.secret,
            signer: self.signer,
            now: self.now,
            copies: &self.copies,
        }
    }

    /// The subscriber's signed links.
    pub fn links(&self, subscriber: &Subscriber) -> (Links, String) {
        self.composer().links(subscriber)
    }

    /// Renders and composes one subscriber's copy.
    pub fn prepare(
        &self,
        content: &DigestContent<'_>,
        subscriber: Subscriber,
    ) -> Result<Prepared, DigestError> {
        self.composer().prepare(content, subscriber)
    }
}

/// The parts of a [`Sender`] that render and compose, used by every sending thread.
pub struct Composer<'a> {
    config: &'a Config,
    digest_config: &'a DigestConfig,
    templates: &'a DigestTemplates,
    secret: &'a Secret,
    signer: Option<&'a Signer>,
    now: DateTime<Utc>,
    copies: &'a SharedCopies,
}

impl Composer<'_> {
    /// The subscriber's signed links.
    pub fn links(&self, subscriber: &Subscriber) -> (Links, String) {
        let site = &self.config.site;
        let unsubscribe = self
            .secret
            .sign(Purpose::Unsubscribe, &subscriber.token_id, None);
        let preferences = self
            .secret
            .sign(Purpose::Preferences, &subscriber.token_id, None);
        (
            Links {
                unsubscribe: site.url(&format!("unsubscribe?token={unsubscribe}")),
                preferences: site.url(&format!("preferences?token={preferences}")),
                archive: site.url("digests/"),
            },
            unsubscribe,
        )
    }

    /// Renders and composes one subscriber's copy.
    pub fn prepare(
        &self,
        content: &DigestContent<'_>,
        subscriber: Subscriber,
    ) -> Result<Prepared, DigestError> {
        let (links, token) = self.links(&subscriber);
        let Some(rendered) = self.templates.render_shared(
            self.copies,
            self.config,
            self.digest_config,
            content,
            &subscriber,
            &links,
        )?
        else {
            return Ok(Prepared {
                subscriber,
                message: None,
            });
        };
        let envelope = Envelope {
            config: self.digest_config,
            digest: content.number,
            subscriber: &subscriber,
            unsubscribe_url: &links.unsubscribe,
            unsubscribe_token: &token,
            date: self.now,
        };
        let composed = compose::compose(&envelope, &rendered, self.signer)?;
        Ok(Prepared {
            subscriber,
            message: Some((rendered, composed)),
        })
    }
}

/// The outcome of one `digest send`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendReport {
    pub number: i64,
    pub sent: usize,
    pub skipped: usize,
    pub failed: usize,
    pub deferred: usize,
    /// Settled by an earlier run of the same digest.
    pub already: usize,
    pub bounced: usize,
    /// The server refused the session; the digest stays unfinished.
    pub fatal: Option<String>,
    pub completed: bool,
    /// This run finished a digest an earlier run started.
    pub resumed: bool,
    /// Stopped by a signal; the next run finishes the digest.
    pub interrupted: bool,
}

impl SendReport {
    /// Whether the run should be repeated later (exit code 75).
    pub fn is_temporary_failure(&self) -> bool {
        self.fatal.is_some() || self.deferred > 0
    }
}

impl std::fmt::Display for SendReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "digest #{}{}: {} sent, {} skipped (nothing new in their tracks), {} failed",
            self.number,
            if self.resumed { " (resumed)" } else { "" },
            self.sent,
            self.skipped,
            self.failed
        )?;
        if self.bounced > 0 {
            write!(f, " ({} now bounced)", self.bounced)?;
        }
        if self.already > 0 {
            write!(f, ", {} sent earlier", self.already)?;
        }
        if self.deferred > 0 {
            write!(f, ", {} deferred", self.deferred)?;
        }
        if self.interrupted {
            write!(f, "; interrupted, the next run finishes it")?;
        }
        Ok(())
    }
}

/// Rows of active subscribers read at a time, so memory does not grow with the list.
const PAGE: usize = 500;

/// One subscriber for a sending thread, already recorded as `sending`.
struct Job {
    subscriber: Subscriber,
}

/// What a sending thread did with a [`Job`].
struct Done {
    subscriber: i64,
    outcome: Outcome,
}

enum Outcome {
    /// Handed to the transport: accepted after so many attempts, or not.
    Delivered(Result<u32, (Failure, u32)>),
    /// Nothing new in the subscriber's tracks after all.
    Nothing,
    /// No message can be built for this subscriber (e.g. an address from
    /// before validation got stricter); the others go out.
    Unbuildable(String),
    /// Rendering failed: the templates are broken for everyone.
    Failed(DigestError),
}

/// Sends `content` (already recorded) to every active subscriber who has not
/// had it yet. `progress` is called with the number of subscribers handled.
///
/// Three stages, joined by bounded queues: this thread walks the
/// subscribers and keeps the ledger; one thread per core renders and
/// composes; the transport's `parallelism()` threads send, each holding one
/// connection, so the connections never wait for a message to be built.
pub fn send(
    sender: &Sender<'_>,
    content: &DigestContent<'_>,
    transport: &dyn Transport,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<SendReport, DigestError> {
    let store = sender.store;
    let number = content.number;
    let mut report = SendReport {
        number,
        ..SendReport::default()
    };
    let senders = transport.parallelism().max(1);
    let composers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(senders * 2);
    let job_rx = Mutex::new(job_rx);
    let (message_tx, message_rx) = mpsc::sync_channel::<(i64, Composed)>(senders);
    let message_rx = Mutex::new(message_rx);
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let composer = sender.composer();
    let batch = format!("digest-{number}");
    let recorder = Recorder {
        sender,
        digest: number,
        progress,
    };
    let mut handled = 0usize;
    std::thread::scope(|scope| -> Result<(), DigestError> {
        for _ in 0..composers {
            let (job_rx, composer) = (&job_rx, &composer);
            let (message_tx, done_tx) = (message_tx.clone(), done_tx.clone());
            scope.spawn(move || compose_loop(composer, content, job_rx, &message_tx, &done_tx));
        }
        drop(message_tx);
        for _ in 0..senders {
            let (message_rx, batch, done_tx) = (&message_rx, &batch, done_tx.clone());
            scope.spawn(move || send_loop(transport, batch, message_rx, &done_tx));
        }
        drop(done_tx);
        let outcome = dispatch(
            &recorder,
            content,
            &job_tx,
            &done_rx,
            &mut report,
            &mut handled,
        );
        drop(job_tx);
        // The rest in flight: wait for each, and record it with any others
        // that arrived meanwhile.
        let mut failed = None;
        while let Ok(first) = done_rx.recv() {
            let finished = std::iter::once(first).chain(done_rx.try_iter());
            if let Err(e) = recorder.record(finished, &mut report, &mut handled) {
                failed.get_or_insert(e);
            }
        }
        outcome.and(failed.map_or(Ok(()), Err))
    })?;
    report.interrupted = sender.cancel.load(Ordering::SeqCst);
    if report.deferred == 0 && report.fatal.is_none() && !report.interrupted {
        store.complete_digest(number, sender.now)?;
        report.completed = true;
    }
    Ok(report)
}

/// A compose thread: renders and composes each queued subscriber's message
/// and passes it to the sending threads, or reports why there is none.
fn compose_loop(
    composer: &Composer<'_>,
    content: &DigestContent<'_>,
    jobs: &Mutex<mpsc::Receiver<Job>>,
    messages: &mpsc::SyncSender<(i64, Composed)>,
    done: &mpsc::Sender<Done>,
) {
    while let Some(job) = next(jobs) {
        let id = job.subscriber.id;
        let outcome = match compose_one(composer, content, job.subscriber) {
            Ok(composed) => match messages.send((id, composed)) {
                Ok(()) => continue,
                Err(_) => return,
            },
            Err(outcome) => outcome,
        };
        if !report(done, id, outcome) {
            return;
        }
    }
}

/// Passes a subscriber's outcome to the ledger thread; false once it has gone.
fn report(done: &mpsc::Sender<Done>, subscriber: i64, outcome: Outcome) -> bool {
    done.send(Done {
        subscriber,
        outcome,
    })
    .is_ok()
}

/// A sending thread: hands each composed message to the transport (one
/// connection per thread) and reports the result.
fn send_loop(
    transport: &dyn Transport,
    batch: &str,
    messages: &Mutex<mpsc::Receiver<(i64, Composed)>>,
    done: &mpsc::Sender<Done>,
) {
    while let Some((id, composed)) = next(messages) {
        let result = delivery::send_with_retry(transport, &composed, batch);
        if !report(done, id, Outcome::Delivered(result)) {
            return;
        }
    }
}

/// The next item of a queue shared by several threads; `None` once it is closed.
fn next<T>(queue: &Mutex<mpsc::Receiver<T>>) -> Option<T> {
    queue.lock().ok()?.recv().ok()
}

/// One subscriber's message, or why there is none.
fn compose_one(
    composer: &Composer<'_>,
    content: &DigestContent<'_>,
    subscriber: Subscriber,
) -> Result<Composed, Outcome> {
    let id = subscriber.id;
    match composer.prepare(content, subscriber) {
        Ok(Prepared {
            message: Some((_, composed)),
            ..
        }) => Ok(composed),
        Ok(Prepared { message: None, .. }) => Err(Outcome::Nothing),
        Err(DigestError::Compose(e)) => {
            tracing::warn!(subscriber = id, error = %e, "cannot compose this subscriber's copy");
            Err(Outcome::Unbuildable(e.to_string()))
        }
        Err(e) => Err(Outcome::Failed(e)),
    }
}

/// How many subscribers are recorded `sending` in one transaction before
/// they are queued: one commit (and its file locks) for several messages.
/// A crash between the commit and the queue leaves them `sending`, which the
/// next run sends: nothing is lost, and none of them had gone out.
const CLAIM: usize = 16;

/// Walks the active subscribers, settles the ones with nothing new, and
/// queues the rest, each recorded as `sending` before any thread can send it.
fn dispatch(
    recorder: &Recorder<'_, '_>,
    content: &DigestContent<'_>,
    jobs: &mpsc::SyncSender<Job>,
    done: &mpsc::Receiver<Done>,
    report: &mut SendReport,
    handled: &mut usize,
) -> Result<(), DigestError> {
    let sender = recorder.sender;
    let store = sender.store;
    let number = content.number;
    let mut claimed: Vec<Subscriber> = Vec::with_capacity(CLAIM);
    let mut after = 0;
    loop {
        let ids = store.active_subscriber_ids(after, PAGE)?;
        let Some(&last) = ids.last() else {
            claim_and_queue(recorder, &mut claimed, jobs, done, report, handled)?;
            return Ok(());
        };
        after = last;
        for id in ids {
            recorder.record(done.try_iter(), report, handled)?;
            if report.fatal.is_some() || stopping(sender) {
                return Ok(());
            }
            if store
                .delivery_state(number, id)?
                .is_some_and(DeliveryState::is_final)
            {
                report.already += 1;
                continue;
            }
            // Read again now: an unsubscribe during the run takes effect at once.
            let Some(subscriber) = store.subscriber_by_id(id)? else {
                continue;
            };
            if subscriber.status != SubscriberStatus::Active {
                continue;
            }
            if !content.shorts.iter().any(|s| subscriber.wants(&s.track)) {
                store.record_delivery(
                    number,
                    id,
                    DeliveryState::Skipped,
                    None,
                    None,
                    sender.now,
                )?;
                report.skipped += 1;
                *handled += 1;
                (recorder.progress)(*handled);
                continue;
            }
            claimed.push(subscriber);
            if claimed.len() == CLAIM
                && !claim_and_queue(recorder, &mut claimed, jobs, done, report, handled)?
            {
                return Ok(());
            }
        }
    }
}

/// Whether a signal asked the run to stop handing out messages.
fn stopping(sender: &Sender<'_>) -> bool {
    sender.cancel.load(Ordering::SeqCst)
}

/// Records `claimed` as `sending` in one transaction, then queues them;
/// false when the run is stopping (the rest stay `sending`, for the next run).
/// While the queue is full it records what finishes, so an accepted message
/// is never left unrecorded for longer than it takes to notice.
fn claim_and_queue(
    recorder: &Recorder<'_, '_>,
    claimed: &mut Vec<Subscriber>,
    jobs: &mpsc::SyncSender<Job>,
    done: &mpsc::Receiver<Done>,
    report: &mut SendReport,
    handled: &mut usize,
) -> Result<bool, DigestError> {
    if claimed.is_empty() {
        return Ok(true);
    }
    let sender = recorder.sender;
    let store = sender.store;
    let number = recorder.digest;
    let from = &sender.digest_config.from.email;
    let batch = store.batch()?;
    for subscriber in claimed.iter() {
        let message_id = compose::message_id(number, subscriber.id, from);
        store.record_delivery(
            number,
            subscriber.id,
            DeliveryState::Sending,
            Some(&message_id),
            None,
            sender.now,
        )?;
    }
    batch.commit()?;
    for subscriber in claimed.drain(..) {
        let mut job = Job { subscriber };
        loop {
            if stopping(sender) {
                return Ok(false);
            }
            match jobs.try_send(job) {
                Ok(()) => break,
                Err(mpsc::TrySendError::Disconnected(_)) => return Ok(false),
                Err(mpsc::TrySendError::Full(back)) => {
                    job = back;
                    if let Ok(first) = done.recv_timeout(Duration::from_millis(1)) {
                        let finished = std::iter::once(first).chain(done.try_iter());
                        recorder.record(finished, report, handled)?;
                    }
                }
            }
        }
    }
    Ok(true)
}

/// Records finished deliveries, several to a transaction.
struct Recorder<'s, 'a> {
    sender: &'s Sender<'a>,
    digest: i64,
    progress: &'s (dyn Fn(usize) + Sync),
}

impl Recorder<'_, '_> {
    /// Records every outcome of `finished` in one transaction. If one of them
    /// fails, those before it are still committed (an accepted message must
    /// not lose its `sent`), and the error is returned.
    fn record(
        &self,
        finished: impl Iterator<Item = Done>,
        report: &mut SendReport,
        handled: &mut usize,
    ) -> Result<(), DigestError> {
        let mut finished = finished.peekable();
        if finished.peek().is_none() {
            return Ok(());
        }
        let batch = self.sender.store.batch()?;
        let mut failed = Ok(());
        for done in finished {
            if let Err(e) = record_result(self.sender, self.digest, done, report) {
                failed = Err(e);
                break;
            }
            *handled += 1;
            (self.progress)(*handled);
        }
        batch.commit()?;
        failed
    }
}

fn record_result(
    sender: &Sender<'_>,
    digest: i64,
    done: Done,
    report: &mut SendReport,
) -> Result<(), DigestError> {
    let store = sender.store;
    let now = sender.now;
    let result = match done.outcome {
        Outcome::Delivered(result) => result,
        Outcome::Nothing => {
            store.record_delivery(
                digest,
                done.subscriber,
                DeliveryState::Skipped,
                None,
                None,
                now,
            )?;
            report.skipped += 1;
            return Ok(());
        }
        Outcome::Unbuildable(error) => {
            store.record_delivery(
                digest,
                done.subscriber,
                DeliveryState::Failed,
                None,
                Some(&error),
                now,
            )?;
            report.failed += 1;
            return Ok(());
        }
        Outcome::Failed(e) => return Err(e),
    };
    match result {
        Ok(_) => {
            store.record_delivery(
                digest,
                done.subscriber,
                DeliveryState::Sent,
                None,
                None,
                now,
            )?;
            store.reset_failures(done.subscriber)?;
            report.sent += 1;
        }
        Err((Failure::Permanent(e), _)) => {
            tracing::warn!(subscriber = done.subscriber, error = %e, "permanent delivery failure");
            store.record_delivery(
                digest,
                done.subscriber,
                DeliveryState::Failed,
                None,
                Some(&e),
                now,
            )?;
            report.failed += 1;
            if store.record_permanent_failure(done.subscriber, now)? {
                report.bounced += 1;
            }
        }
        Err((failure, attempts)) => {
            tracing::warn!(subscriber = done.subscriber, attempts, error = %failure, "delivery deferred");
            store.record_delivery(
                digest,
                done.subscriber,
                DeliveryState::Deferred,
                None,
                Some(failure.message()),
                now,
            )?;
            report.deferred += 1;
            if failure.stops_the_run() {
                report.fatal.get_or_insert(failure.message().to_string());
            }
        }
    }
    Ok(())
}

/// What a digest command loads from the site besides config: the shorts, the
/// templates and the DKIM signer.
pub struct Inputs<'c> {
    pub digest_config: &'c DigestConfig,
    pub collection: Collection,
    pub templates: DigestTemplates,
    pub signer: Option<Signer>,
}

#[derive(Debug, thiserror::Error)]
pub enum InputsError {
    #[error("{0}")]
    Invalid(crate::diagnostics::Problems),
    #[error(transparent)]
    Digest(#[from] DigestError),
}

impl<'c> Inputs<'c> {
    /// The inputs, or every problem in the content and templates at once.
    pub fn load(config: &'c Config) -> Result<Inputs<'c>, InputsError> {
        let digest_config = config.digest.as_ref().ok_or(DigestError::NotConfigured)?;
        let signer = config
            .delivery
            .dkim
            .as_ref()
            .map(Signer::load)
            .transpose()
            .map_err(DigestError::from)?;
        let mut problems = crate::diagnostics::Problems::default();
        let collection = crate::content::load(config)
            .map_err(|p| problems.extend(p))
            .ok();
        let templates = DigestTemplates::load(config)
            .map_err(|p| problems.extend(p))
            .ok();
        match (collection, templates) {
            (Some(collection), Some(templates)) => Ok(Inputs {
                digest_config,
                collection,
                templates,
                signer,
            }),
            _ => Err(InputsError::Invalid(problems.sorted())),
        }
    }

    pub fn sender<'a>(
        &'a self,
        config: &'a Config,
        store: &'a Store,
        secret: &'a Secret,
        now: DateTime<Utc>,
        cancel: &'a AtomicBool,
    ) -> Sender<'a> {
        Sender {
            config,
            digest_config: self.digest_config,
            templates: &self.templates,
            store,
            secret,
            signer: self.signer.as_ref(),
            now,
            cancel,
            copies: SharedCopies::default(),
        }
    }
}

/// What [`send_due`] did.
#[derive(Debug)]
pub enum Sent {
    /// Nothing was due, and why.
    Nothing(String),
    /// The digests sent, an unfinished one first.
    Digests(Vec<SendReport>),
}

impl Sent {
    /// Whether any message went out, so the digest archive has something new.
    pub fn reached_anyone(&self) -> bool {
        match self {
            Sent::Nothing(_) => false,
            Sent::Digests(reports) => reports.iter().any(|r| r.sent > 0 || r.completed),
        }
    }
}

/// Finishes an unfinished digest, then sends the one due at `at`.
///
/// With `grace`, a new digest whose slot is older than that is not sent: after
/// long downtime, a "weekly" email days late helps nobody, and its shorts go
/// out with the next digest instead. (`digest send` run by hand has no grace.)
pub fn send_due(
    sender: &Sender<'_>,
    collection: &Collection,
    transport: &dyn Fn() -> Result<Box<dyn Transport>, crate::delivery::SmtpSetupError>,
    at: DateTime<Utc>,
    grace: Option<chrono::Duration>,
    progress: &(dyn Fn(i64, usize, usize) + Sync),
) -> Result<Sent, SendDueError> {
    let store = sender.store;
    let mut reports: Vec<SendReport> = Vec::new();
    // Why the loop stopped without sending, for a run that sent nothing.
    let mut idle = None;
    for _ in 0..2 {
        let total = store.active_subscriber_count()?;
        let (content, resumed) = match plan(sender.config, store, collection, at)? {
            Plan::Nothing(reason) => {
                idle = Some(reason);
                break;
            }
            Plan::Resume(content) => (content, true),
            Plan::New(content) => {
                if let Some(reason) = reason_to_hold(sender, &content, grace, total) {
                    idle = Some(reason);
                    break;
                }
                record_new(store, &content, sender.now)?;
                (content, false)
            }
        };
        let transport = transport()?;
        let number = content.number;
        let mut report = send(sender, &content, transport.as_ref(), &|done| {
            progress(number, done, total)
        })?;
        report.resumed = resumed;
        let stop = report.is_temporary_failure() || report.interrupted || !resumed;
        reports.push(report);
        if stop {
            break;
        }
    }
    Ok(match idle {
        Some(reason) if reports.is_empty() => Sent::Nothing(reason),
        _ => Sent::Digests(reports),
    })
}

/// Why a new digest must not be recorded now, if it must not.
fn reason_to_hold(
    sender: &Sender<'_>,
    content: &DigestContent<'_>,
    grace: Option<chrono::Duration>,
    active_subscribers: usize,
) -> Option<String> {
    if let Some(grace) = grace
        && sender.now - content.slot > grace
    {
        let slot = content.slot.with_timezone(&sender.config.site.timezone);
        let reason = format!(
            "the slot of {} was missed by more than the grace period ({} h); not sent, its shorts wait for the next digest",
            slot.format("%Y-%m-%d %H:%M %Z"),
            grace.num_hours()
        );
        tracing::warn!("{reason}");
        return Some(reason);
    }
    // A digest to nobody would mark its shorts as carried, and the first
    // subscribers would never get them.
    (active_subscribers == 0).then(|| "no active subscribers".to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum SendDueError {
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Transport(#[from] crate::delivery::SmtpSetupError),
}
