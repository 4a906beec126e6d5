//! The digests: which one is due, what it carries, and sending it to
//! every active subscriber with the ledger kept exact.
//!
//! Selection never goes by a date window: each short is numbered in the
//! order it is first seen published (its publication), and each subscriber
//! has a watermark, the last publication settled for them. A digest carries
//! the publications up to its end; a subscriber's copy is those after their
//! watermark that they follow, and claiming it moves the watermark to the
//! end in the same transaction. So every subscriber gets every short they
//! follow once, in the first digest after it is published, however late or
//! backdated it is. The first digest covers one period; shorts dated before
//! it are the back catalogue, which no digest mails. Sending records each
//! delivery as `sending` before the transport gets it and `sent` after the
//! server accepted it: after a crash, a rerun sends what is missing and
//! nothing that was confirmed.
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
#[cfg(test)]
mod model_tests;
mod plan;
mod record;
mod send;

use chrono::{DateTime, Utc};

use crate::config::Cadence;
use crate::delivery::Transport;
use crate::model::Collection;
use crate::store::{Members, Store, StoreError};

pub use compose::{Composer, Prepared};
pub use dry_run::{DryRunLine, dry_run};
pub use inputs::{Inputs, InputsError, Sender};
pub use plan::{Plan, Planned, content_of, digest_name, plan, plan_next, plan_preview, record_new};
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

/// For each cadence in turn: finishes its unfinished digest, then sends
/// the one due at `at`. Stops at the first run the server cut short.
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
    let cadences = &sender.digest_config.cadences;
    let mut reports: Vec<SendReport> = Vec::new();
    // Why each cadence sent nothing, for a run that sent nothing.
    let mut idle = Vec::new();
    let gone = cadences_gone_unfinished(sender)?;
    for (cadence, finish_only) in cadences
        .iter()
        .map(|c| (c, false))
        .chain(gone.iter().map(|c| (c, true)))
    {
        let due = Due {
            collection,
            cadence,
            at,
            grace,
            finish_only,
        };
        if let Some(reason) = due.send(sender, transport, progress, &mut reports)? {
            idle.push(match cadences.len() {
                1 => reason,
                _ => format!("{}: {reason}", cadence.name),
            });
        }
        if reports
            .last()
            .is_some_and(|r| r.is_temporary_failure() || r.interrupted)
        {
            break;
        }
    }
    Ok(match reports.is_empty() {
        true => Sent::Nothing(idle.join("; ")),
        false => Sent::Digests(reports),
    })
}

/// Cadences the config no longer offers whose last digest is unfinished:
/// the copies claimed in it are the readers' own (their watermarks moved
/// past it), so it is finished, and no new one is made.
fn cadences_gone_unfinished(sender: &Sender<'_>) -> Result<Vec<Cadence>, StoreError> {
    let offered = &sender.digest_config.cadences;
    let default = sender.digest_config.default_cadence();
    Ok(sender
        .store
        .unfinished_cadences()?
        .into_iter()
        .filter(|key| !offered.iter().any(|c| c.key == *key))
        .map(|key| Cadence {
            name: key.clone(),
            label: key.clone(),
            key,
            when: crate::config::When::Instant,
            subject: default.subject.clone(),
        })
        .collect())
}

/// What one cadence may have due.
struct Due<'a> {
    collection: &'a Collection,
    cadence: &'a Cadence,
    at: DateTime<Utc>,
    grace: Option<chrono::Duration>,
    /// Only finish an unfinished digest (of a cadence no longer offered).
    finish_only: bool,
}

impl Due<'_> {
    /// Finishes the cadence's unfinished digest, then sends the one due,
    /// adding a report for each; returns why it stopped without sending.
    fn send(
        &self,
        sender: &Sender<'_>,
        transport: &dyn Fn() -> Result<Box<dyn Transport>, crate::delivery::SmtpSetupError>,
        progress: &(dyn Fn(i64, usize, usize) + Sync),
        reports: &mut Vec<SendReport>,
    ) -> Result<Option<String>, SendDueError> {
        let store = sender.store;
        let others = sender.digest_config.other_keys();
        let members = members(&self.cadence.key, &others);
        for _ in 0..3 {
            let total = store.active_subscriber_count(members)?;
            let (planned, resumed) =
                match plan(sender.config, store, self.collection, self.cadence, self.at)? {
                    Plan::Nothing(reason) => return Ok(Some(reason)),
                    Plan::Resume(planned) => (planned, true),
                    Plan::New(_) if self.finish_only => return Ok(None),
                    Plan::New(mut planned) => {
                        let content = &planned.content;
                        if let Some(reason) =
                            plan::reason_to_hold(sender, content, self.grace, total)
                        {
                            return Ok(Some(reason));
                        }
                        match record_new(store, &planned, sender.now) {
                            Ok(recorded) => planned.content.id = recorded.number,
                            // Another sender recorded it (or numbered
                            // publications) first: planning again resumes it.
                            Err(DigestError::Store(StoreError::Raced(why))) => {
                                tracing::info!(%why, "planning again");
                                continue;
                            }
                            Err(e) => return Err(e.into()),
                        }
                        (planned, false)
                    }
                };
            let transport = transport()?;
            let number = planned.content.id;
            let mut report = send(sender, &planned, transport.as_ref(), &|done| {
                progress(number, done, total)
            })?;
            report.resumed = resumed;
            let stop = report.is_temporary_failure() || report.interrupted || !resumed;
            reports.push(report);
            if stop {
                break;
            }
        }
        Ok(None)
    }
}

/// Who a digest of the cadence with `key` goes to; `others` are the keys
/// of every cadence but the default.
pub(crate) fn members<'k>(key: &'k str, others: &'k [&'k str]) -> Members<'k> {
    match key {
        "" => Members::Default { others },
        key => Members::Of(key),
    }
}

/// Rows of active subscribers read at a time, so memory does not grow with the list.
const PAGE: usize = 500;

/// The ids of a cadence's active subscribers in id order, read a page at a
/// time; a subscriber who becomes active during the walk is met if their
/// id is ahead.
struct ActiveIds<'s> {
    store: &'s dyn Store,
    members: Members<'s>,
    /// The digest being sent: its claimed copies are walked too.
    digest: i64,
    after: i64,
    page: std::vec::IntoIter<i64>,
    ended: bool,
}

impl<'s> ActiveIds<'s> {
    fn new(store: &'s dyn Store, members: Members<'s>, digest: i64) -> Self {
        ActiveIds {
            store,
            members,
            digest,
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
        match self
            .store
            .active_subscriber_ids(self.members, Some(self.digest), self.after, PAGE)
        {
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
