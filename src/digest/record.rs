//! The ledger side of a send: every delivery's row, written in batches, and
//! the [`SendReport`] that counts them. The only stage of a send that writes
//! the store; it never renders or sends.

use super::send::Job;
use super::{DigestError, Sender};
use crate::delivery::Failure;
use crate::delivery::compose;

/// The outcome of one `digest send`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendReport {
    /// The digest's number in the ledger (what `digest status` takes).
    pub number: i64,
    /// "digest", or "daily digest" for a cadence besides the default.
    pub name: String,
    /// Its number among its cadence's digests, as readers see it.
    pub issue: i64,
    pub sent: usize,
    pub skipped: usize,
    pub failed: usize,
    pub deferred: usize,
    /// Settled by an earlier run of the same digest.
    pub already: usize,
    /// Held by another sender sharing the ledger (PostgreSQL), which sends them.
    pub elsewhere: usize,
    pub bounced: usize,
    /// The server refused the session; the digest stays unfinished.
    pub fatal: Option<String>,
    /// What stopped the run was the SMTP settings, not the server's state:
    /// running again will not help until they are fixed.
    pub misconfigured: bool,
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
        let ledger = match self.number == self.issue {
            true => String::new(),
            false => format!(" (#{} in the ledger)", self.number),
        };
        write!(
            f,
            "{} #{}{ledger}{}: {} sent, {} skipped (nothing new in their tracks), {} failed",
            self.name,
            self.issue,
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
        if self.elsewhere > 0 {
            write!(f, ", {} in another sender's hands", self.elsewhere)?;
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

/// What became of one queued subscriber.
pub(super) struct Done {
    pub(super) subscriber: i64,
    pub(super) outcome: Outcome,
}

pub(super) enum Outcome {
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

/// Keeps the ledger of one digest's send and counts what it records.
pub(super) struct Recorder<'s, 'a> {
    sender: &'s Sender<'a>,
    digest: i64,
    /// The digest's last publication: where each subscriber it settles stands after it.
    through: i64,
    progress: &'s (dyn Fn(usize) + Sync),
    report: SendReport,
    /// Subscribers settled by this run, for `progress`.
    handled: usize,
}

impl<'s, 'a> Recorder<'s, 'a> {
    pub(super) fn new(
        sender: &'s Sender<'a>,
        digest: i64,
        through: i64,
        progress: &'s (dyn Fn(usize) + Sync),
    ) -> Self {
        Recorder {
            sender,
            digest,
            through,
            progress,
            report: SendReport {
                number: digest,
                ..SendReport::default()
            },
            handled: 0,
        }
    }

    pub(super) fn sender(&self) -> &'s Sender<'a> {
        self.sender
    }

    /// Whether the run must stop: the server refused the session, or a
    /// signal asked it to.
    pub(super) fn stopping(&self) -> bool {
        self.report.fatal.is_some() || self.sender.cancelled()
    }

    /// Counts a subscriber an earlier run of this digest settled.
    pub(super) fn already_done(&mut self) {
        self.report.already += 1;
    }

    /// Settles a subscriber the digest has nothing for: what it carried is
    /// behind them now.
    /// Unless another sender holds them (a shared ledger), who sends them.
    pub(super) fn skip(&mut self, subscriber: i64) -> Result<(), DigestError> {
        let sender = self.sender;
        if !sender
            .store
            .skip_unclaimed(self.digest, subscriber, sender.now)?
        {
            self.report.elsewhere += 1;
            return Ok(());
        }
        sender.store.settle_through(subscriber, self.through)?;
        self.report.skipped += 1;
        self.settled();
        Ok(())
    }

    /// Claims `job` as `sending`, before it is handed to a thread, and
    /// moves its subscriber's watermark to the digest's end: the copy is
    /// theirs now, whatever becomes of it, and no later digest carries it
    /// again. Within the caller's transaction. `None` when another sender
    /// sharing the ledger holds it: it is that sender's to send.
    pub(super) fn claim(&mut self, job: Job) -> Result<Option<Job>, DigestError> {
        let sender = self.sender;
        let id = job.subscriber.id;
        let message_id = compose::message_id(self.digest, id, &sender.digest_config.from.email);
        if !sender
            .store
            .claim(self.digest, id, &message_id, job.since, sender.now)?
        {
            self.report.elsewhere += 1;
            return Ok(None);
        }
        sender.store.settle_through(id, self.through)?;
        Ok(Some(job))
    }

    /// Records every outcome of `finished` in one transaction. If one of them
    /// fails, those before it are still committed (an accepted message must
    /// not lose its `sent`), and the error is returned.
    pub(super) fn record(
        &mut self,
        finished: impl Iterator<Item = Done>,
    ) -> Result<(), DigestError> {
        // In subscriber order, as claims take their rows: on a shared
        // ledger two senders then always lock rows in the same order, and
        // never wait on each other in a cycle (a deadlock PostgreSQL would
        // end by failing one of them).
        let mut finished: Vec<Done> = finished.collect();
        if finished.is_empty() {
            return Ok(());
        }
        finished.sort_by_key(|done| done.subscriber);
        let batch = self.sender.store.batch()?;
        let mut failed = Ok(());
        for done in finished {
            if let Err(e) = self.record_one(done) {
                failed = Err(e);
                break;
            }
            self.settled();
        }
        batch.commit()?;
        failed
    }

    /// The report, once nothing is in flight; a digest that every active
    /// subscriber has settled is marked complete.
    pub(super) fn finish(mut self) -> Result<SendReport, DigestError> {
        let sender = self.sender;
        let report = &mut self.report;
        report.interrupted = sender.cancelled();
        if report.deferred == 0 && report.fatal.is_none() && !report.interrupted {
            // Not while another sender's claims are open: the last to
            // finish completes it.
            report.completed = sender.store.complete_digest(self.digest, sender.now)?;
        }
        Ok(self.report)
    }

    fn settled(&mut self) {
        self.handled += 1;
        (self.progress)(self.handled);
    }

    fn record_one(&mut self, done: Done) -> Result<(), DigestError> {
        let (store, now) = (self.sender.store, self.sender.now);
        match done.outcome {
            Outcome::Delivered(result) => return self.record_delivered(done.subscriber, result),
            Outcome::Nothing => {
                store.mark_skipped(self.digest, done.subscriber, now)?;
                self.report.skipped += 1;
            }
            Outcome::Unbuildable(error) => {
                store.mark_failed(self.digest, done.subscriber, &error, now)?;
                self.report.failed += 1;
            }
            Outcome::Failed(e) => return Err(e),
        }
        Ok(())
    }

    fn record_delivered(
        &mut self,
        subscriber: i64,
        result: Result<u32, (Failure, u32)>,
    ) -> Result<(), DigestError> {
        let (store, now, digest) = (self.sender.store, self.sender.now, self.digest);
        let report = &mut self.report;
        match result {
            Ok(_) => {
                store.mark_sent(digest, subscriber, now)?;
                store.reset_failures(subscriber)?;
                report.sent += 1;
            }
            Err((Failure::Permanent(e), _)) => {
                tracing::warn!(subscriber, error = %e, "permanent delivery failure");
                store.mark_failed(digest, subscriber, &e, now)?;
                report.failed += 1;
                if store.record_permanent_failure(subscriber, now)? {
                    report.bounced += 1;
                }
            }
            Err((failure, attempts)) => {
                tracing::warn!(subscriber, attempts, error = %failure, "delivery deferred");
                store.mark_deferred(digest, subscriber, failure.message(), now)?;
                report.deferred += 1;
                if failure.stops_the_run() && report.fatal.is_none() {
                    report.fatal = Some(failure.message().to_string());
                    report.misconfigured = matches!(failure, Failure::Misconfigured(_));
                }
            }
        }
        Ok(())
    }
}
