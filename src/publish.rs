//! `shorts publish`, what cron runs: under the run lock, build the site,
//! tell the WebSub hubs which feeds changed, delete the sign-ups left pending
//! longer than `[server] pending_expiry_days`, then send the digest if one is
//! due (within `[digest] grace_hours` of its slot).
//!
//! Idempotent: running it every five minutes sends one digest per slot, and a
//! run that finds nothing to do changes nothing. Broken content stops it
//! before anything is written or sent.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::delivery::Transport;
use crate::digest::{self, Inputs, InputsError, Sent};
use crate::lock::{LockError, RunLock};
use crate::site::{self, BuildError, BuildReport};
use crate::store::{Database, Store};
use crate::tokens::Secret;
use crate::websub::{self, Told};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Locked(#[from] LockError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Inputs(#[from] InputsError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Secret(#[from] crate::tokens::SecretError),
    #[error(transparent)]
    Send(#[from] digest::SendDueError),
}

/// What a publish run did.
#[derive(Debug)]
pub struct PublishReport {
    pub build: BuildReport,
    /// `None` when the site has no `[digest]`.
    pub digest: Option<Sent>,
    /// What the WebSub hubs were told; `None` when nothing was owed.
    pub websub: Option<Told>,
}

impl PublishReport {
    pub fn is_temporary_failure(&self) -> bool {
        matches!(&self.digest, Some(Sent::Digests(reports)) if reports.iter().any(|r| r.is_temporary_failure()))
    }
}

impl std::fmt::Display for PublishReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = &self.build;
        write!(
            f,
            "built {}: {} written, {} unchanged, {} removed",
            b.shorts_summary(),
            crate::site::plural(b.files.written, "file", "files"),
            b.files.unchanged,
            b.files.removed
        )?;
        match &self.digest {
            None => Ok(()),
            Some(Sent::Nothing(reason)) => write!(f, "; no digest: {reason}"),
            Some(Sent::Digests(reports)) => reports.iter().try_for_each(|r| write!(f, "; {r}")),
        }?;
        match &self.websub {
            Some(told) => write!(f, "; {told}"),
            None => Ok(()),
        }
    }
}

/// Builds, then sends what is due at `now`.
pub fn publish(
    config: &Config,
    now: DateTime<Utc>,
    cancel: &AtomicBool,
    transport: &dyn Fn() -> Result<Box<dyn Transport>, crate::delivery::SmtpSetupError>,
    progress: &(dyn Fn(i64, usize, usize) + Sync),
) -> Result<PublishReport, PublishError> {
    let started = Instant::now();
    let _lock = RunLock::acquire(config.data_dir())?;
    let Some(digest_config) = &config.digest else {
        return Ok(PublishReport {
            build: site::build(config, now)?,
            digest: None,
            websub: websub::tell_hubs(config),
        });
    };
    // A setting to fix: said before anything is built or sent.
    let secret = Secret::load(config.data_dir(), &config.database)?;
    let inputs = Inputs::load(config)?;
    let mut build = site::build_collection(config, &inputs.collection, now, started)?;
    // Before the send, which may take a while: readers need not wait for it.
    let mut told = websub::tell_hubs(config);
    let store = Database::open(&config.database)?;
    purge_pending(config, &store, now)?;
    let sender = inputs.sender(config, &store, &secret, now, cancel);
    let sent = digest::send_due(
        &sender,
        &inputs.collection,
        transport,
        now,
        Some(digest_config.grace),
        progress,
    )?;
    if sent.reached_anyone() {
        let archive = site::refresh_archive(config, &inputs.collection, now)?;
        build.files.written += archive.written;
        build.files.removed += archive.removed;
        told = Told::sum(told, websub::tell_hubs(config));
    }
    Ok(PublishReport {
        build,
        digest: Some(sent),
        websub: told,
    })
}

/// Deletes the sign-ups left pending longer than `[server] pending_expiry_days`,
/// and the record of emails about a subscription sent before then: their
/// confirmation links expired long ago, and an address someone else typed in
/// should not be kept.
fn purge_pending(
    config: &Config,
    store: &dyn Store,
    now: DateTime<Utc>,
) -> Result<(), PublishError> {
    let days = config.server.pending_expiry_days;
    let before = now - chrono::Duration::days(days.into());
    let purged = store.purge_pending(before)?;
    store.purge_mail(before)?;
    if purged > 0 {
        tracing::info!(
            purged,
            "deleted {purged} pending sign-ups older than {days} days"
        );
    }
    Ok(())
}
