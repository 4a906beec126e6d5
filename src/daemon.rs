//! `shorts schedule`: stay running, publish at every slot of `[digest]
//! schedule`, and rebuild the feeds within seconds when content or templates
//! change.
//!
//! The loop is thin: what is due and what "missed" means is `publish` and
//! `digest` (a slot missed while the daemon was down is caught up at start if
//! it is within `grace_hours`, skipped with a log line if older). The clock is
//! passed in. SIGTERM/SIGINT set `cancel`: a send in progress finishes the
//! message in flight, records it, and the loop returns.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use notify::{RecursiveMode, Watcher};

use crate::config::Config;
use crate::delivery::Transport;
use crate::lock::LockError;
use crate::publish::{self, PublishError};
use crate::schedule::Schedule;
use crate::site;

/// After a temporary failure (SMTP down), try again this often until it works.
const RETRY_AFTER: Duration = Duration::from_secs(300);
/// Content changes closer together than this are one rebuild.
const DEBOUNCE: Duration = Duration::from_millis(300);
/// How often the loop looks at `cancel` while it waits.
const TICK: Duration = Duration::from_millis(200);

pub struct Daemon<'a> {
    pub config: &'a Config,
    pub cancel: &'a AtomicBool,
    pub clock: &'a dyn Fn() -> DateTime<Utc>,
    pub transport: &'a dyn Fn() -> Result<Box<dyn Transport>, crate::delivery::SmtpSetupError>,
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
        let schedule = self
            .config
            .digest
            .as_ref()
            .map(|d| Schedule::new(d.schedule.clone(), self.config.site.timezone));
        tracing::info!(
            content = %self.config.content_dir.display(),
            schedule = self.config.digest.as_ref().map(|d| d.schedule_text.as_str()).unwrap_or("none"),
            "shorts schedule started"
        );
        // At start: build, and catch up a slot missed while we were down.
        let mut retry_at = self.publish();
        while !self.cancelled() {
            let now = (self.clock)();
            let next_slot = schedule.as_ref().and_then(|s| s.next_slot(now));
            let wake = match (next_slot, retry_at) {
                (Some(slot), Some(retry)) => Some(slot.min(retry)),
                (slot, retry) => slot.or(retry),
            };
            if let Some(wake) = wake {
                tracing::info!(at = %wake, "next run");
            }
            if self.wait_until(wake, &events) {
                retry_at = self.publish();
            }
        }
        tracing::info!("shorts schedule stopped");
        Ok(())
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// Waits for `wake` (forever if `None`), rebuilding on content changes;
    /// true when `wake` came, false when cancelled.
    fn wait_until(&self, wake: Option<DateTime<Utc>>, events: &mpsc::Receiver<()>) -> bool {
        loop {
            if self.cancelled() {
                return false;
            }
            let remaining = wake.map(|w| (w - (self.clock)()).to_std().unwrap_or(Duration::ZERO));
            if remaining == Some(Duration::ZERO) {
                return true;
            }
            let timeout = remaining.map_or(TICK, |r| r.min(TICK));
            match events.recv_timeout(timeout) {
                Ok(()) => {
                    // Let an editor's burst of writes settle, then rebuild once.
                    while events.recv_timeout(DEBOUNCE).is_ok() {}
                    self.rebuild();
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(timeout),
            }
        }
    }

    fn rebuild(&self) {
        let _lock = match crate::lock::RunLock::acquire(self.config.data_dir()) {
            Ok(lock) => lock,
            Err(e) => {
                tracing::warn!(error = %e, "content changed; not rebuilding now");
                return;
            }
        };
        match site::build(self.config, (self.clock)()) {
            Ok(report) => tracing::info!(
                written = report.files.written,
                removed = report.files.removed,
                "content changed; feeds rebuilt"
            ),
            Err(e) => {
                tracing::error!("content changed; the build failed, the previous feeds stay:\n{e}")
            }
        }
    }

    /// One publish run; returns when to retry if it failed temporarily.
    fn publish(&self) -> Option<DateTime<Utc>> {
        let now = (self.clock)();
        let result = publish::publish(self.config, now, self.cancel, self.transport, &|_, _, _| {});
        let retry = || now + chrono::Duration::from_std(RETRY_AFTER).unwrap_or_default();
        match result {
            Ok(report) if report.is_temporary_failure() => {
                tracing::warn!("{report}; retrying in {} s", RETRY_AFTER.as_secs());
                Some(retry())
            }
            Ok(report) => {
                tracing::info!("{report}");
                None
            }
            Err(PublishError::Locked(LockError::Held { .. })) => {
                tracing::info!("another shorts run holds the lock; trying again shortly");
                Some(now + chrono::Duration::seconds(30))
            }
            Err(e) => {
                tracing::error!("publish failed: {e}");
                Some(retry())
            }
        }
    }
}
