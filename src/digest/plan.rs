//! Which digest is due at an instant and what it carries, from the schedule,
//! the collection and the ledger. Reads the ledger; the only thing it writes
//! is a new digest and the publications first seen with it, in [`record_new`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Timelike as _, Utc};

use super::{DigestError, Sender};
use crate::config::{Cadence, Config, When};
use crate::model::{Collection, Short};
use crate::render::digest::DigestContent;
use crate::schedule::Schedule;
use crate::store::{DigestRecord, NewDigest, Store};

/// What is due at a given instant.
#[derive(Debug)]
pub enum Plan<'a> {
    /// Nothing to send, and why.
    Nothing(String),
    /// A digest that was started and not finished: finish it first.
    Resume(Planned<'a>),
    /// A new digest for `slot`, not yet recorded.
    New(Planned<'a>),
}

/// A digest as planned or recorded: its issue, and every short a reader's
/// copy of it may carry, by publication number.
///
/// A reader is owed the shorts published after their watermark (the last
/// publication settled for them) up to the digest's `through`, that they
/// follow. A reader up to date with the cadence (most of them) gets the
/// issue; one who switched cadence gets their own window of `published`.
#[derive(Debug)]
pub struct Planned<'a> {
    /// The issue: what a reader up to date with the cadence who follows
    /// everything gets, and what the archive shows.
    pub content: DigestContent<'a>,
    /// The publication the issue starts after; `None` for a cadence's first.
    pub since: Option<i64>,
    /// The last publication any copy carries.
    pub through: i64,
    /// Every short a copy may carry, oldest publication first.
    published: Vec<(i64, &'a Short)>,
    /// Shorts first seen published by this plan, in publication order; recorded with the digest.
    first_seen: Vec<&'a str>,
    /// The watermarks whose copy is the issue itself, if the issue is a
    /// tail of `published` (it is but for a cadence's first digest).
    issue_watermarks: Option<std::ops::Range<i64>>,
    /// The copies cut so far for readers whose window is not the issue, by
    /// where they start: cut once, shared by every reader of that window.
    windows: Mutex<HashMap<i64, Arc<DigestContent<'a>>>>,
}

/// One reader's copy of a digest: the issue, or a window cut from it.
pub enum Copy<'p, 'a> {
    Issue(&'p DigestContent<'a>),
    Window(Arc<DigestContent<'a>>),
}

impl<'a> std::ops::Deref for Copy<'_, 'a> {
    type Target = DigestContent<'a>;

    fn deref(&self) -> &DigestContent<'a> {
        match self {
            Copy::Issue(issue) => issue,
            Copy::Window(window) => window,
        }
    }
}

impl<'a> Planned<'a> {
    /// Where the copy of a reader with this watermark starts: `Some(None)`
    /// for the issue, `Some(Some(w))` after publication `w`, or `None` when
    /// nothing of this digest is owed to them (they are past its end).
    pub fn window_for(&self, watermark: Option<i64>) -> Option<Option<i64>> {
        match watermark {
            None => Some(None),
            Some(w) if w >= self.through => None,
            Some(w)
                if self
                    .issue_watermarks
                    .as_ref()
                    .is_some_and(|r| r.contains(&w)) =>
            {
                Some(None)
            }
            Some(w) => Some(Some(w)),
        }
    }

    /// Fills in which watermarks get the issue: those after which exactly
    /// the issue's shorts were published.
    fn with_issue_watermarks(mut self) -> Self {
        let issue: HashSet<&str> = self.content.shorts.iter().map(|s| s.id.as_str()).collect();
        let tail = self.published.len().saturating_sub(issue.len());
        let tail_is_issue = self.published.len() >= issue.len()
            && self.published[tail..]
                .iter()
                .all(|(_, short)| issue.contains(short.id.as_str()));
        self.issue_watermarks = tail_is_issue.then(|| {
            let after = tail
                .checked_sub(1)
                .map_or(i64::MIN, |k| self.published[k].0);
            let first = self.published.get(tail).map_or(i64::MAX, |(seq, _)| *seq);
            after..first
        });
        self
    }

    /// The copy that starts where [`window_for`](Self::window_for) said: the
    /// issue, or the shorts published after `since`.
    pub fn copy(&self, since: Option<i64>) -> Copy<'_, 'a> {
        let Some(since) = since else {
            return Copy::Issue(&self.content);
        };
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let window = windows.entry(since).or_insert_with(|| {
            let first = self.published.partition_point(|(seq, _)| *seq <= since);
            let mut shorts: Vec<&Short> = self.published[first..].iter().map(|(_, s)| *s).collect();
            shorts.sort_by(|a, b| Short::newest_first(a, b));
            Arc::new(DigestContent {
                shorts,
                archived: false,
                ..self.content.clone()
            })
        });
        Copy::Window(Arc::clone(window))
    }

    /// Whether any reader of the cadence may be owed something: the issue
    /// has shorts, or the lowest watermark leaves some.
    fn owes_anyone(&self, lowest_watermark: Option<i64>) -> bool {
        !self.content.shorts.is_empty()
            || lowest_watermark
                .is_some_and(|w| self.published.last().is_some_and(|(seq, _)| *seq > w))
    }
}

/// For a preview: what is due, or else the digest already sent for the latest slot.
pub fn plan_preview<'a>(
    config: &Config,
    store: &dyn Store,
    collection: &'a Collection,
    cadence: &Cadence,
    at: DateTime<Utc>,
) -> Result<Plan<'a>, DigestError> {
    let plan = plan(config, store, collection, cadence, at)?;
    let Plan::Nothing(_) = plan else {
        return Ok(plan);
    };
    let latest = store.latest_digest(&cadence.key)?;
    match Slots::of(config, cadence, latest.as_ref(), at)
        .map(|slots| store.digest_for_slot(&cadence.key, slots.slot))
        .transpose()?
        .flatten()
    {
        Some(sent) => Ok(Plan::Resume(planned_of(config, store, &sent, collection)?)),
        None => Ok(plan),
    }
}

/// The digest of `cadence` due at its next slot after `now`, as the shorts
/// stand now: what `digest preview` shows when no period is given and
/// nothing is due yet. `None` without a next slot.
pub fn plan_next<'a>(
    config: &Config,
    store: &dyn Store,
    collection: &'a Collection,
    cadence: &Cadence,
    now: DateTime<Utc>,
) -> Result<Option<(DateTime<Utc>, Plan<'a>)>, DigestError> {
    let next = match &cadence.when {
        When::Cron { schedule, .. } => {
            Schedule::new(*schedule.clone(), config.site.timezone).next_slot(now)
        }
        When::Instant => Some(now),
    };
    let Some(slot) = next else {
        return Ok(None);
    };
    Ok(Some((
        slot,
        plan(config, store, collection, cadence, slot)?,
    )))
}

/// Decides what `digest send` would do for `cadence` at `at`, without
/// writing anything.
pub fn plan<'a>(
    config: &Config,
    store: &dyn Store,
    collection: &'a Collection,
    cadence: &Cadence,
    at: DateTime<Utc>,
) -> Result<Plan<'a>, DigestError> {
    if let Some(unfinished) = store.unfinished_digest(&cadence.key)? {
        return Ok(Plan::Resume(planned_of(
            config,
            store,
            &unfinished,
            collection,
        )?));
    }
    let latest = store.latest_digest(&cadence.key)?;
    let Some(slots) = Slots::of(config, cadence, latest.as_ref(), at) else {
        let When::Cron { text, .. } = &cadence.when else {
            unreachable!("an instant cadence always has a slot");
        };
        return Ok(Plan::Nothing(format!("no slot of \"{text}\" has come yet")));
    };
    // After the clock jumped back, the slot now latest may be older than
    // one already sent: nothing is due until the clock passes that again.
    if let Some(latest) = &latest
        && latest.slot > slots.slot
    {
        return Ok(Plan::Nothing(format!(
            "{} #{} was sent for a later slot ({}); is the clock behind?",
            digest_name(cadence),
            latest.issue,
            latest
                .slot
                .with_timezone(&config.site.timezone)
                .format("%Y-%m-%d %H:%M %Z")
        )));
    }
    if let Some(done) = store.digest_for_slot(&cadence.key, slots.slot)? {
        return Ok(Plan::Nothing(format!(
            "{} #{} for {} was already sent",
            digest_name(cadence),
            done.issue,
            slots
                .slot
                .with_timezone(&config.site.timezone)
                .format("%Y-%m-%d %H:%M %Z")
        )));
    }
    plan_new(config, store, collection, cadence, latest, slots)
}

/// The new digest of `cadence` for `slots`, or why there is none.
fn plan_new<'a>(
    config: &Config,
    store: &dyn Store,
    collection: &'a Collection,
    cadence: &Cadence,
    latest: Option<DigestRecord>,
    slots: Slots,
) -> Result<Plan<'a>, DigestError> {
    let Slots { slot, period_start } = slots;
    // The back catalogue (dated before the first digest's period) is never mailed.
    let floor = store.first_period_start()?.unwrap_or(period_start);
    // A digest takes in the shorts dated up to its slot; one seen
    // published since (by another cadence's digest) is carried too.
    let numbered = Numbered::now(store, collection, slot)?;
    let published = numbered.eligible(collection, floor);
    let since = latest.as_ref().map(|d| d.through);
    let issue = issue(&published, since, period_start);
    let number = latest.as_ref().map_or(1, |d| d.issue + 1);
    let planned = Planned {
        content: DigestContent {
            // What the ledger will number it; `record_new` says for certain.
            id: store.digest_count()? + 1,
            number,
            cadence: cadence.key.clone(),
            archived: true,
            period_start,
            slot,
            shorts: issue,
            note: note(config, &cadence.key, number, slot)?,
        },
        since,
        through: numbered.through,
        published,
        first_seen: numbered.first_seen,
        issue_watermarks: None,
        windows: Mutex::default(),
    }
    .with_issue_watermarks();
    let digest_config = config.digest.as_ref().ok_or(DigestError::NotConfigured)?;
    let others = digest_config.other_keys();
    let lowest = store.lowest_watermark(super::members(&cadence.key, &others))?;
    if !planned.owes_anyone(lowest) {
        return Ok(Plan::Nothing(nothing_new(
            cadence,
            latest.as_ref(),
            floor,
            config,
        )));
    }
    Ok(Plan::New(planned))
}

/// The shorts of the issue: those published after `since`, the end of the
/// cadence's last digest; for its first, those dated after `period_start`.
fn issue<'a>(
    published: &[(i64, &'a Short)],
    since: Option<i64>,
    period_start: DateTime<Utc>,
) -> Vec<&'a Short> {
    published
        .iter()
        .filter(|(seq, short)| match since {
            Some(since) => *seq > since,
            None => short.date.with_timezone(&Utc) > period_start,
        })
        .map(|(_, short)| *short)
        .collect()
}

/// "digest", or "daily digest" for a cadence besides the default.
pub fn digest_name(cadence: &Cadence) -> String {
    if cadence.is_default() {
        "digest".to_string()
    } else {
        format!("{} digest", cadence.name)
    }
}

/// A digest's slot and the start of its period.
#[derive(Debug, Clone, Copy)]
struct Slots {
    slot: DateTime<Utc>,
    period_start: DateTime<Utc>,
}

impl Slots {
    /// The latest slot of `cadence` at `at`, if one has come. An instant
    /// cadence's slot is `at` itself, its period since its `latest` digest.
    fn of(
        config: &Config,
        cadence: &Cadence,
        latest: Option<&DigestRecord>,
        at: DateTime<Utc>,
    ) -> Option<Slots> {
        match &cadence.when {
            When::Cron { schedule, .. } => {
                let schedule = Schedule::new(*schedule.clone(), config.site.timezone);
                schedule.latest_slot(at).map(|slot| Slots {
                    slot,
                    period_start: schedule
                        .previous_slot(slot)
                        .unwrap_or(slot - chrono::Duration::weeks(1)),
                })
            }
            When::Instant => {
                let slot = at.with_nanosecond(0).unwrap_or(at);
                let period_start = latest.map_or(slot - chrono::Duration::days(1), |d| d.slot);
                Some(Slots { slot, period_start })
            }
        }
    }
}

/// Every short's publication number: those recorded, then the ones first
/// seen published at `at`, numbered after them oldest first (not yet recorded).
struct Numbered<'a> {
    seq: HashMap<String, i64>,
    first_seen: Vec<&'a str>,
    /// The highest number, counting the first seen.
    through: i64,
}

impl<'a> Numbered<'a> {
    fn now(
        store: &dyn Store,
        collection: &'a Collection,
        at: DateTime<Utc>,
    ) -> Result<Self, DigestError> {
        let mut seq = store.publications()?;
        let highest = seq.values().copied().max().unwrap_or(0);
        let mut first_seen: Vec<&Short> = collection
            .published(at)
            .filter(|s| !seq.contains_key(&s.id))
            .collect();
        first_seen.sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.id.cmp(&b.id)));
        for (n, short) in (highest + 1..).zip(&first_seen) {
            seq.insert(short.id.clone(), n);
        }
        Ok(Numbered {
            through: highest + first_seen.len() as i64,
            first_seen: first_seen.into_iter().map(|s| s.id.as_str()).collect(),
            seq,
        })
    }

    /// The shorts a copy may carry, oldest publication first: numbered up
    /// to `self.through`, not a draft now, and dated after `floor` (the back
    /// catalogue is never mailed).
    ///
    /// Not "published at the send's time": a short once seen published
    /// stays so for the digests, even when the clock has jumped back to
    /// before its date, since the watermarks move past it either way.
    fn eligible(&self, collection: &'a Collection, floor: DateTime<Utc>) -> Vec<(i64, &'a Short)> {
        let mut published: Vec<(i64, &Short)> = collection
            .shorts
            .iter()
            .filter(|s| !s.draft && s.date.with_timezone(&Utc) > floor)
            .filter_map(|s| self.seq.get(&s.id).map(|seq| (*seq, s)))
            .filter(|(seq, _)| *seq <= self.through)
            .collect();
        published.sort_by_key(|(seq, _)| *seq);
        published
    }
}

/// Why there is nothing to send, in the reader's terms: before the first
/// digest there is no "last digest" to speak of.
fn nothing_new(
    cadence: &Cadence,
    latest: Option<&DigestRecord>,
    since: DateTime<Utc>,
    config: &Config,
) -> String {
    let since = since
        .with_timezone(&config.site.timezone)
        .format("%Y-%m-%d %H:%M %Z");
    let name = digest_name(cadence);
    match latest {
        None => format!(
            "no shorts published since {since}, when the first {name}'s period starts (no {name} has been sent yet; older shorts are never mailed)"
        ),
        Some(latest) => format!("no new shorts since the last {name} (#{})", latest.issue),
    }
}

/// A recorded digest as a send resumes it: its recorded issue, and the
/// shorts published up to its end.
fn planned_of<'a>(
    config: &Config,
    store: &dyn Store,
    record: &DigestRecord,
    collection: &'a Collection,
) -> Result<Planned<'a>, DigestError> {
    let numbered = Numbered {
        seq: store.publications()?,
        first_seen: Vec::new(),
        through: record.through,
    };
    let floor = store.first_period_start()?.unwrap_or(record.period_start);
    Ok(Planned {
        content: content_of(config, store, record, collection)?,
        since: record.since,
        through: record.through,
        published: numbered.eligible(collection, floor),
        first_seen: Vec::new(),
        issue_watermarks: None,
        windows: Mutex::default(),
    }
    .with_issue_watermarks())
}

/// The issue of a recorded digest, from the shorts it carried that still exist.
pub fn content_of<'a>(
    config: &Config,
    store: &dyn Store,
    record: &DigestRecord,
    collection: &'a Collection,
) -> Result<DigestContent<'a>, DigestError> {
    let by_id: HashMap<&str, &Short> = collection
        .shorts
        .iter()
        .map(|s| (s.id.as_str(), s))
        .collect();
    let mut shorts = Vec::new();
    for id in store.digest_short_ids(record.number)? {
        match by_id.get(id.as_str()) {
            Some(short) => shorts.push(*short),
            None => tracing::warn!(
                digest = record.number,
                id,
                "a short this digest carries no longer exists; left out"
            ),
        }
    }
    Ok(DigestContent {
        id: record.number,
        number: record.issue,
        cadence: record.cadence.clone(),
        archived: true,
        period_start: record.period_start,
        slot: record.slot,
        shorts,
        note: note(config, &record.cadence, record.issue, record.slot)?,
    })
}

/// The author's note for the digest, if they wrote one; an unreadable one
/// stops the send rather than going out without it.
/// Only the default cadence's digests have notes: they are numbered by
/// its issues, like the archive.
fn note(
    config: &Config,
    cadence: &str,
    number: i64,
    slot: DateTime<Utc>,
) -> Result<Option<crate::model::DigestNote>, DigestError> {
    if !cadence.is_empty() {
        return Ok(None);
    }
    crate::content::digest_note::load(config, number, slot).map_err(DigestError::Note)
}

/// Records a new digest, the shorts first seen published with it, and
/// what its issue carries.
pub fn record_new(
    store: &dyn Store,
    planned: &Planned<'_>,
    now: DateTime<Utc>,
) -> Result<DigestRecord, DigestError> {
    let content = &planned.content;
    let shorts: Vec<(&str, &str)> = content
        .shorts
        .iter()
        .map(|s| (s.id.as_str(), s.track.as_str()))
        .collect();
    Ok(store.create_digest(
        &NewDigest {
            cadence: &content.cadence,
            slot: content.slot,
            period_start: content.period_start,
            since: planned.since,
            first_seen: &planned.first_seen,
            through: planned.through,
            shorts: &shorts,
        },
        now,
    )?)
}

/// Why a new digest must not be recorded now, if it must not.
pub(super) fn reason_to_hold(
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
