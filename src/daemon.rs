//! `shorts schedule`: stay running, publish at every slot of every
//! cadence's schedule and whenever a short's `date` or `updated` passes, and
//! rebuild the feeds within seconds when content or templates change (and
//! publish then, when an instant cadence waits for new shorts).
//!
//! The loop is thin: what is due and what "missed" means is `publish` and
//! `digest` (a slot missed while the daemon was down is caught up at start if
//! it is within `grace_hours`, skipped with a log line if older); when a
//! short goes live is `schedule::next_publication`, which each build reports
//! from the collection it loaded, so nothing rescans the files while waiting.
//! The clock is passed in and read again at every tick, so a clock that jumps
//! forward wakes the loop at once and one that jumps back delays it. SIGTERM/
//! SIGINT set `cancel`: a send in progress finishes the message in flight,
//! records it, and the loop returns.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use notify::{RecursiveMode, Watcher};

use crate::config::{Config, When};
use crate::delivery::Transport;
use crate::lock::LockError;
use crate::publish::{self, PublishError};
use crate::schedule::{Publication, Schedule};
use crate::site;

/// After a temporary failure (SMTP down), try again this often until it works.
const RETRY_AFTER: Duration = Duration::from_secs(300);
/// When another shorts run holds the lock, try again this soon.
const LOCKED_RETRY_AFTER: Duration = Duration::from_secs(30);
/// Content changes closer together than this are one rebuild. An editor's
/// save (a write, or a temporary file renamed over the old one) is a burst
/// of events within a few milliseconds; a longer wait only delays seeing the
/// edit, and a change that comes later (a `git checkout` of many files) is
/// one more rebuild of what changed since, not a wrong one.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// How often the loop looks at `cancel` and the clock while it waits.
const TICK: Duration = Duration::from_millis(200);

pub struct Daemon<'a> {
    pub config: &'a Config,
    pub cancel: &'a AtomicBool,
    pub clock: &'a dyn Fn() -> DateTime<Utc>,
    pub transport: &'a dyn Fn() -> Result<Box<dyn Transport>, crate::delivery::SmtpSetupError>,
}

/// What the daemon knows about the next runs besides the digest slots.
#[derive(Debug, Default)]
struct Plan {
    /// When to run again after a failed run, and why.
    retry: Option<(DateTime<Utc>, &'static str)>,
    /// The next short to go live or show its update, from the last build.
    publication: Option<Publication>,
}

/// Plans a run soon enough to tell a hub what it did not take this time.
fn retry_for_hubs(plan: &mut Plan, now: DateTime<Utc>, told: &crate::websub::Told) {
    if told.has_left() && plan.retry.is_none() {
        plan.retry_in(now, RETRY_AFTER, "retry: a WebSub hub did not answer");
    }
}

impl Plan {
    fn retry_in(&mut self, now: DateTime<Utc>, after: Duration, reason: &'static str) {
        let at = now + chrono::Duration::from_std(after).unwrap_or_default();
        if self.retry.is_none_or(|(sooner, _)| at < sooner) {
            self.retry = Some((at, reason));
        }
    }

    /// The earliest of the next slot, the retry and the next publication,
    /// with the reason the log gives for it. A publication already past is
    /// one a failed run did not build: its retry is the wake, not a busy loop.
    fn next_wake(
        &self,
        slot: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<(DateTime<Utc>, String)> {
        let slot = slot.map(|at| (at, "digest slot".to_string()));
        let retry = self.retry.map(|(at, why)| (at, why.to_string()));
        let publication = (self.publication.as_ref())
            .filter(|p| p.at > now)
            .map(|p| (p.at, p.to_string()));
        [slot, retry, publication]
            .into_iter()
            .flatten()
            .min_by_key(|(at, _)| *at)
    }
}

/// How a wait ended.
enum Woken {
    Due,
    Changed,
    Cancelled,
}

impl Daemon<'_> {
    /// Runs until `cancel` is set.
    pub fn run(&self) -> Result<(), notify::Error> {
        let (events_tx, events) = mpsc::channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok_and(|e| !e.kind.is_access()) {
                    let _ = events_tx.send(());
                }
            })?;
        for dir in [&self.config.content_dir, &self.config.templates_dir] {
            if dir.is_dir() {
                watcher.watch(dir, RecursiveMode::Recursive)?;
            }
        }
        let schedules = self.schedules();
        tracing::info!(
            content = %self.config.content_dir.display(),
            schedule = self.config.digest.as_ref().map(|d| d.schedule_text.as_str()).unwrap_or("none"),
            "shorts schedule started"
        );
        // At start: build, and catch up a slot missed while we were down.
        let mut plan = Plan::default();
        self.publish(&mut plan);
        while !self.cancelled() {
            let now = (self.clock)();
            let next_slot = schedules.iter().filter_map(|s| s.next_slot(now)).min();
            let wake = plan.next_wake(next_slot, now);
            match &wake {
                Some((at, reason)) => {
                    tracing::info!(at = %at.trunc_subsecs(0), reason = reason.as_str(), "next run")
                }
                None => tracing::info!("next run: when content or templates change"),
            }
            match self.wait_until(wake.map(|(at, _)| at), &events) {
                Woken::Due => self.publish(&mut plan),
                // An instant cadence sends what a change published at once.
                Woken::Changed if self.has_instant_cadence() => self.publish(&mut plan),
                Woken::Changed => self.rebuild(&mut plan),
                Woken::Cancelled => break,
            }
        }
        tracing::info!("shorts schedule stopped");
        Ok(())
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// The schedule of every cadence that has one.
    fn schedules(&self) -> Vec<Schedule> {
        let cadences = self.config.digest.iter().flat_map(|d| &d.cadences);
        cadences
            .filter_map(|c| match &c.when {
                When::Cron { schedule, .. } => {
                    Some(Schedule::new(*schedule.clone(), self.config.site.timezone))
                }
                When::Instant => None,
            })
            .collect()
    }

    fn has_instant_cadence(&self) -> bool {
        let cadences = self.config.digest.iter().flat_map(|d| &d.cadences);
        cadences
            .into_iter()
            .any(|c| matches!(c.when, When::Instant))
    }

    /// Waits for `wake` (forever if `None`) or a change in the watched folders.
    fn wait_until(&self, wake: Option<DateTime<Utc>>, events: &mpsc::Receiver<()>) -> Woken {
        loop {
            if self.cancelled() {
                return Woken::Cancelled;
            }
            // Read the clock every tick rather than sleeping until `wake`, so a
            // clock set forward (or a suspended machine resuming) is seen at once.
            let remaining = wake.map(|w| (w - (self.clock)()).to_std().unwrap_or(Duration::ZERO));
            if remaining == Some(Duration::ZERO) {
                return Woken::Due;
            }
            let timeout = remaining.map_or(TICK, |r| r.min(TICK));
            match events.recv_timeout(timeout) {
                Ok(()) => {
                    // Let an editor's burst of writes settle, then rebuild once.
                    while events.recv_timeout(DEBOUNCE).is_ok() {}
                    return Woken::Changed;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(timeout),
            }
        }
    }

    /// Rebuilds after a change, and learns from the new content when the next
    /// short goes live (its date may just have been edited).
    fn rebuild(&self, plan: &mut Plan) {
        let now = (self.clock)();
        let _lock = match crate::lock::RunLock::acquire(self.config.data_dir()) {
            Ok(lock) => lock,
            Err(e) => {
                tracing::warn!(error = %e, "content changed; not rebuilding now");
                plan.retry_in(now, LOCKED_RETRY_AFTER, "retry: the lock was held");
                return;
            }
        };
        match site::build(self.config, now) {
            Ok(report) => {
                tracing::info!(
                    written = report.files.written,
                    removed = report.files.removed,
                    "content changed; feeds rebuilt"
                );
                plan.publication = report.next_publication;
                if let Some(told) = crate::websub::tell_hubs(self.config) {
                    tracing::info!("{told}");
                    retry_for_hubs(plan, now, &told);
                }
            }
            Err(e) => {
                tracing::error!("content changed; the build failed, the previous feeds stay:\n{e}");
                // Nothing goes live until the content builds again, and fixing
                // it is a change that brings us back here.
                plan.publication = None;
            }
        }
    }

    /// One publish run; plans a retry if it failed. A failed run keeps the
    /// last known publication: the retry learns the new one.
    fn publish(&self, plan: &mut Plan) {
        let now = (self.clock)();
        let result = publish::publish(self.config, now, self.cancel, self.transport, &|_, _, _| {});
        plan.retry = None;
        match result {
            Ok(report) => {
                plan.publication = report.build.next_publication.clone();
                if report.is_temporary_failure() {
                    tracing::warn!("{report}; retrying in {} s", RETRY_AFTER.as_secs());
                    plan.retry_in(now, RETRY_AFTER, "retry: delivery failed for now");
                } else {
                    tracing::info!("{report}");
                }
                if let Some(told) = &report.websub {
                    retry_for_hubs(plan, now, told);
                }
            }
            Err(PublishError::Locked(LockError::Held { .. })) => {
                tracing::info!("another shorts run holds the lock; trying again shortly");
                plan.retry_in(now, LOCKED_RETRY_AFTER, "retry: the lock was held");
            }
            Err(e) => {
                tracing::error!("publish failed: {e}");
                plan.retry_in(now, RETRY_AFTER, "retry: the last run failed");
            }
        }
    }
}
