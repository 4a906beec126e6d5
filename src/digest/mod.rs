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
//!
//! One stage per module, in the order a send runs them:
//!
//! | module | owns |
//! |---|---|
//! | `inputs` | loading what a send needs ([`Inputs`]) and the [`Sender`] |
//! | `plan` | which digest is due and what it carries ([`plan`], [`Plan`]) |
//! | `compose` | one subscriber's rendered, composed message ([`Composer`]) |
//! | `send` | the threads that compose and send ([`send`]) |
//! | `record` | the ledger rows and the [`SendReport`] |
//! | `dry_run` | what a send would do, for `--dry-run` ([`dry_run`]) |
//!
//! Only `record` writes deliveries to the ledger; `plan` writes nothing but
//! the new digest itself ([`record_new`]).

mod compose;
mod dry_run;
mod inputs;
mod plan;
mod record;
mod send;

use chrono::{DateTime, Utc};

use crate::delivery::Transport;
use crate::model::Collection;
use crate::store::{Store, StoreError};

pub use compose::{Composer, Prepared};
pub use dry_run::{DryRunLine, dry_run};
pub use inputs::{Inputs, InputsError, Sender};
pub use plan::{Plan, content_of, plan, plan_next, plan_preview, record_new};
pub use record::SendReport;
pub use send::send;

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
    Compose(#[from] crate::delivery::compose::ComposeError),
    #[error("{0}")]
    Note(crate::diagnostics::Problem),
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
                if let Some(reason) = plan::reason_to_hold(sender, &content, grace, total) {
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

/// Rows of active subscribers read at a time, so memory does not grow with the list.
const PAGE: usize = 500;

/// The ids of the active subscribers in id order, read a page at a time; a
/// subscriber who becomes active during the walk is met if their id is ahead.
struct ActiveIds<'s> {
    store: &'s dyn Store,
    after: i64,
    page: std::vec::IntoIter<i64>,
    ended: bool,
}

impl<'s> ActiveIds<'s> {
    fn new(store: &'s dyn Store) -> Self {
        ActiveIds {
            store,
            after: 0,
            page: Vec::new().into_iter(),
            ended: false,
        }
    }
}

impl Iterator for ActiveIds<'_> {
    type Item = Result<i64, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(id) = self.page.next() {
            return Some(Ok(id));
        }
        if self.ended {
            return None;
        }
        match self.store.active_subscriber_ids(self.after, PAGE) {
            Ok(ids) => {
                self.ended = ids.is_empty();
                self.after = ids.last().copied().unwrap_or(self.after);
                self.page = ids.into_iter();
                self.page.next().map(Ok)
            }
            Err(e) => {
                self.ended = true;
                Some(Err(e))
            }
        }
    }
}
