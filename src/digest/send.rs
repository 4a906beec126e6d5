//! The send itself: three stages joined by bounded queues. The calling
//! thread walks the subscribers and keeps the ledger (through
//! [`Recorder`]); one thread per core renders and composes; the transport's
//! `parallelism()` threads send, each holding one connection, so the
//! connections never wait for a message to be built.
//!
//! Only the calling thread touches the store, and every subscriber is
//! recorded `sending` before any thread can send to them.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::record::{Done, Outcome, Recorder, SendReport};
use super::{ActiveIds, Composer, DigestError, Planned, Sender};
use crate::delivery::compose::Composed;
use crate::delivery::{self, Failure, Transport};
use crate::model::{Subscriber, SubscriberStatus};
use crate::render::digest::DigestContent;
use crate::store::DeliveryState;

/// How many subscribers are looked up and recorded `sending` in one
/// transaction before they are queued: one commit (and its file locks) for
/// several messages.
/// A crash between the commit and the queue leaves them `sending`, which the
/// next run sends: nothing is lost, and none of them had gone out.
const CLAIM: usize = 16;

/// One subscriber for a compose thread, already recorded as `sending`.
pub(super) struct Job {
    pub(super) subscriber: Subscriber,
    /// Where their copy starts (see [`Planned::window_for`]).
    pub(super) since: Option<i64>,
}

/// Sends `planned` (already recorded) to every active subscriber who has not
/// had it yet, each their own window of it. `progress` is called with the
/// number of subscribers handled.
pub fn send(
    sender: &Sender<'_>,
    planned: &Planned<'_>,
    transport: &dyn Transport,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<SendReport, DigestError> {
    let senders = transport.parallelism().max(1);
    let composers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(senders * 2);
    let job_rx = Mutex::new(job_rx);
    let (message_tx, message_rx) = mpsc::sync_channel::<(i64, Composed)>(senders);
    let message_rx = Mutex::new(message_rx);
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let composer = sender.composer();
    let batch = format!("digest-{}", planned.content.id);
    let mut recorder = Recorder::new(sender, planned.content.id, planned.through, progress);
    let halt = Halt::new(transport);
    std::thread::scope(|scope| -> Result<(), DigestError> {
        for _ in 0..composers {
            let (job_rx, composer) = (&job_rx, &composer);
            let (message_tx, done_tx) = (message_tx.clone(), done_tx.clone());
            scope.spawn(move || compose_loop(composer, planned, job_rx, &message_tx, &done_tx));
        }
        drop(message_tx);
        for _ in 0..senders {
            let (message_rx, batch, done_tx) = (&message_rx, &batch, done_tx.clone());
            let halt = &halt;
            scope.spawn(move || send_loop(transport, batch, message_rx, &done_tx, halt));
        }
        drop(done_tx);
        let dispatched = dispatch(&mut recorder, planned, &job_tx, &done_rx);
        if dispatched.is_err() {
            halt.ledger_failed();
        }
        drop(job_tx);
        let drained = drain(&mut recorder, &done_rx, &halt);
        dispatched.and(drained)
    })?;
    let mut report = recorder.finish()?;
    report.name = super::digest_name(sender.digest_config.cadence_of(&planned.content.cadence));
    report.issue = planned.content.number;
    Ok(report)
}

/// Records the rest in flight once nothing more is queued: waits for each,
/// and records it with any others that arrived meanwhile. Goes on past a
/// failure, so every accepted message gets its `sent` if the ledger comes
/// back; returns the first. A failure halts the sending threads: what the
/// ledger cannot record as sent would go out again on the next run.
fn drain(
    recorder: &mut Recorder<'_, '_>,
    done: &mpsc::Receiver<Done>,
    halt: &Halt,
) -> Result<(), DigestError> {
    let mut failed = None;
    while let Ok(first) = done.recv() {
        let finished = std::iter::once(first).chain(done.try_iter());
        if let Err(e) = recorder.record(finished) {
            halt.ledger_failed();
            failed.get_or_insert(e);
        }
    }
    failed.map_or(Ok(()), Err)
}

/// Walks the active subscribers, settles the ones with nothing new, and
/// queues the rest, each recorded as `sending` before any thread can send it.
fn dispatch(
    recorder: &mut Recorder<'_, '_>,
    planned: &Planned<'_>,
    jobs: &mpsc::SyncSender<Job>,
    done: &mpsc::Receiver<Done>,
) -> Result<(), DigestError> {
    let mut ids = Vec::with_capacity(CLAIM);
    let sender = recorder.sender();
    let others = sender.digest_config.other_keys();
    let members = super::members(&planned.content.cadence, &others);
    for id in ActiveIds::new(sender.store, members, planned.content.id) {
        ids.push(id?);
        if ids.len() == CLAIM && !claim_and_queue(recorder, planned, &mut ids, jobs, done)? {
            return Ok(());
        }
    }
    claim_and_queue(recorder, planned, &mut ids, jobs, done)?;
    Ok(())
}

/// The subscriber with this id and where their copy starts, if the digest
/// is still to go to them; one it need not go to is counted or settled here.
fn still_due(
    recorder: &mut Recorder<'_, '_>,
    planned: &Planned<'_>,
    id: i64,
) -> Result<Option<Job>, DigestError> {
    let sender = recorder.sender();
    let store = sender.store;
    let digest = planned.content.id;
    let claimed = store.delivery_state(digest, id)?;
    if claimed.is_some_and(DeliveryState::is_final) {
        recorder.already_done();
        return Ok(None);
    }
    // Read again now: an unsubscribe during the run takes effect at once.
    let Some(subscriber) = store.subscriber_by_id(id)? else {
        return Ok(None);
    };
    if subscriber.status != SubscriberStatus::Active {
        return Ok(None);
    }
    // Paused or moved to another cadence during the run: not theirs now,
    // unless it was claimed for them before.
    let cadence = &sender.digest_config.cadence_of(&subscriber.cadence).key;
    if claimed.is_none() && (subscriber.paused || *cadence != planned.content.cadence) {
        return Ok(None);
    }
    // A copy claimed before keeps its window: their watermark has moved past it.
    let window = match claimed {
        Some(_) => Some(store.claimed_since(digest, id)?),
        None => planned.window_for(store.watermark(id)?),
    };
    let Some(since) = window else {
        recorder.skip(id)?;
        return Ok(None);
    };
    if planned
        .copy(since)
        .sections_for(&subscriber, &sender.config.tracks)
        .is_empty()
    {
        recorder.skip(id)?;
        return Ok(None);
    }
    Ok(Some(Job { subscriber, since }))
}

/// Looks up `ids` and records those still due as `sending`, all in one
/// transaction, then queues them; false when the run is stopping (the rest
/// stay `sending`, for the next run).
fn claim_and_queue(
    recorder: &mut Recorder<'_, '_>,
    planned: &Planned<'_>,
    ids: &mut Vec<i64>,
    jobs: &mpsc::SyncSender<Job>,
    done: &mpsc::Receiver<Done>,
) -> Result<bool, DigestError> {
    recorder.record(done.try_iter())?;
    if recorder.stopping() {
        return Ok(false);
    }
    if ids.is_empty() {
        return Ok(true);
    }
    let batch = recorder.sender().store.batch()?;
    let mut claimed = Vec::with_capacity(ids.len());
    // One pass in subscriber order, each settled or claimed as it is met:
    // every sender sharing the ledger then takes rows in the same order.
    for id in ids.drain(..) {
        if let Some(job) = still_due(recorder, planned, id)? {
            claimed.extend(recorder.claim(job)?);
        }
    }
    batch.commit()?;
    for job in claimed {
        if !queue(recorder, job, jobs, done)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Queues one job; false when the run is stopping or the threads are gone.
/// While the queue is full it records what finishes, so an accepted message
/// is never left unrecorded for longer than it takes to notice.
fn queue(
    recorder: &mut Recorder<'_, '_>,
    mut job: Job,
    jobs: &mpsc::SyncSender<Job>,
    done: &mpsc::Receiver<Done>,
) -> Result<bool, DigestError> {
    loop {
        if recorder.sender().cancelled() {
            return Ok(false);
        }
        match jobs.try_send(job) {
            Ok(()) => return Ok(true),
            Err(mpsc::TrySendError::Disconnected(_)) => return Ok(false),
            Err(mpsc::TrySendError::Full(back)) => {
                job = back;
                if let Ok(first) = done.recv_timeout(Duration::from_millis(1)) {
                    recorder.record(std::iter::once(first).chain(done.try_iter()))?;
                }
            }
        }
    }
}

/// A compose thread: renders and composes each queued subscriber's message
/// and passes it to the sending threads, or reports why there is none.
fn compose_loop(
    composer: &Composer<'_>,
    planned: &Planned<'_>,
    jobs: &Mutex<mpsc::Receiver<Job>>,
    messages: &mpsc::SyncSender<(i64, Composed)>,
    done: &mpsc::Sender<Done>,
) {
    while let Some(job) = next(jobs) {
        let id = job.subscriber.id;
        let outcome = match compose_one(composer, &planned.copy(job.since), &job.subscriber) {
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

/// A sending thread: hands each composed message to the transport (one
/// connection per thread) and reports the result.
///
/// Once the run is halted (see [`Halt`]), the messages still queued are not
/// tried: each would only wait out the same retries. They are reported with
/// the failure that halted it, so they are deferred.
fn send_loop(
    transport: &dyn Transport,
    batch: &str,
    messages: &Mutex<mpsc::Receiver<(i64, Composed)>>,
    done: &mpsc::Sender<Done>,
    halt: &Halt,
) {
    while let Some((id, composed)) = next(messages) {
        let result = match halt.failure() {
            Some(failure) => Err((failure.clone(), 0)),
            None => {
                let started = halt.accepted();
                let sent = delivery::send_with_retry(transport, &composed, batch);
                halt.note(transport, started, sent)
            }
        };
        if !report(done, id, Outcome::Delivered(result)) {
            return;
        }
    }
}

/// Whether the sending threads should stop trying, shared by all of them:
/// set by the first failure that stops the run (the server is unreachable,
/// refuses the session, or the settings cannot work), or by a streak of
/// messages deferred in a row.
///
/// The streak is counted in the order messages finish, across all threads:
/// a server that defers everyone (greylisting the whole run, a 421 on every
/// RCPT, an account over quota) would otherwise be tried for every
/// subscriber, each waiting out its retries. A success ends the streak; a
/// permanent failure neither counts nor ends it, since refusing one address
/// says nothing about whether the server takes mail.
///
/// A deferral counts only if no message was accepted while it was being
/// tried. With several connections, messages deferred one in five can
/// otherwise hold every connection through their retries at once and then
/// finish back to back, a "streak" from a server taking everything else.
struct Halt {
    failure: OnceLock<Failure>,
    /// Messages deferred in a row so far.
    streak: AtomicU32,
    /// Messages accepted so far, so a deferral can tell whether the server
    /// took mail while it was being tried.
    accepted: AtomicU64,
    /// The streak that stops the run; 0 = none does.
    limit: u32,
}

impl Halt {
    fn new(transport: &dyn Transport) -> Self {
        Halt {
            failure: OnceLock::new(),
            streak: AtomicU32::new(0),
            accepted: AtomicU64::new(0),
            limit: transport.max_consecutive_failures(),
        }
    }

    /// What halted the run, once something has.
    fn failure(&self) -> Option<&Failure> {
        self.failure.get()
    }

    /// How many messages were accepted so far; read as a message starts.
    fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Takes in one message's result, after its own retries, and returns
    /// the result to record: for the message that completes a streak, the
    /// failure that stops the run, so the report says why at once.
    /// `started` is [`Halt::accepted`] when the message was handed over.
    fn note(&self, transport: &dyn Transport, started: u64, result: Sent) -> Sent {
        match &result {
            Ok(_) => {
                self.accepted.fetch_add(1, Ordering::SeqCst);
                self.streak.store(0, Ordering::SeqCst);
            }
            Err((failure, _)) if failure.stops_the_run() => self.stop(failure),
            // The server took mail meanwhile: this deferral is the
            // recipient's own, and that success already ended any streak.
            Err((Failure::Transient(_), _)) if self.accepted() != started => {}
            Err((Failure::Transient(last), attempts)) => {
                let streak = self.streak.fetch_add(1, Ordering::SeqCst) + 1;
                if self.limit > 0 && streak >= self.limit {
                    let failure = streak_failure(transport, streak, last);
                    self.stop(&failure);
                    return Err((failure, *attempts));
                }
            }
            Err(_) => {}
        }
        result
    }

    /// Halts the run because the ledger stopped taking writes (the
    /// database went away): a message sent now could not be recorded
    /// `sent`, so the next run would send it again. Those queued stay
    /// claimed and go out once, on the next run; only those in the
    /// transport's hands already may go twice, as after a crash.
    fn ledger_failed(&self) {
        self.stop(&Failure::Transient(
            "not tried: the ledger stopped taking writes".to_string(),
        ));
    }

    /// Halts the run; the first failure is the one reported.
    fn stop(&self, failure: &Failure) {
        let _ = self.failure.set(failure.clone());
    }
}

/// One message's result after its retries: accepted after so many
/// attempts, or the failure of the last one.
type Sent = Result<u32, (Failure, u32)>;

/// Why the run stops after `streak` messages deferred in a row, `last` the
/// last one's error.
fn streak_failure(transport: &dyn Transport, streak: u32, last: &str) -> Failure {
    tracing::warn!(streak, error = %last, "too many messages deferred in a row; stopping the run");
    let messages = if streak == 1 { "message" } else { "messages" };
    Failure::Deferring(format!(
        "{} deferred {streak} {messages} in a row (the last: {last}), so the run stops early and the digest resumes on the next run (`max_consecutive_failures` in [delivery.smtp])",
        transport.name()
    ))
}

/// Passes a subscriber's outcome to the ledger thread; false once it has gone.
fn report(done: &mpsc::Sender<Done>, subscriber: i64, outcome: Outcome) -> bool {
    done.send(Done {
        subscriber,
        outcome,
    })
    .is_ok()
}

/// The next item of a queue shared by several threads; `None` once it is closed.
fn next<T>(queue: &Mutex<mpsc::Receiver<T>>) -> Option<T> {
    queue.lock().ok()?.recv().ok()
}

/// One subscriber's message, or why there is none.
fn compose_one(
    composer: &Composer<'_>,
    content: &DigestContent<'_>,
    subscriber: &Subscriber,
) -> Result<Composed, Outcome> {
    match composer.compose(content, subscriber) {
        Ok(Some(composed)) => Ok(composed),
        Ok(None) => Err(Outcome::Nothing),
        Err(DigestError::Compose(e)) => {
            tracing::warn!(subscriber = subscriber.id, error = %e, "cannot compose this subscriber's copy");
            Err(Outcome::Unbuildable(e.to_string()))
        }
        Err(e) => Err(Outcome::Failed(e)),
    }
}

#[cfg(test)]
pub(super) mod tests;
