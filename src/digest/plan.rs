//! Which digest is due at an instant and what it carries, from the schedule,
//! the collection and the ledger. Reads the ledger; the only thing it writes
//! is a new digest, in [`record_new`].

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{DigestError, Sender};
use crate::config::Config;
use crate::model::{Collection, Short};
use crate::render::digest::DigestContent;
use crate::schedule::Schedule;
use crate::store::{DigestRecord, Store};

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
    store: &dyn Store,
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
        Some(sent) => Ok(Plan::Resume(content_of(config, store, &sent, collection)?)),
        None => Ok(plan),
    }
}

/// The digest due at the next slot after `now`, as the shorts stand now:
/// what `digest preview` shows when no period is given and nothing is due
/// yet. `None` without a next slot.
pub fn plan_next<'a>(
    config: &Config,
    store: &dyn Store,
    collection: &'a Collection,
    now: DateTime<Utc>,
) -> Result<Option<(DateTime<Utc>, Plan<'a>)>, DigestError> {
    let digest_config = config.digest.as_ref().ok_or(DigestError::NotConfigured)?;
    let schedule = Schedule::new(digest_config.schedule.clone(), config.site.timezone);
    let Some(slot) = schedule.next_slot(now) else {
        return Ok(None);
    };
    Ok(Some((slot, plan(config, store, collection, slot)?)))
}

/// Decides what `digest send` would do at `at`, without writing anything.
pub fn plan<'a>(
    config: &Config,
    store: &dyn Store,
    collection: &'a Collection,
    at: DateTime<Utc>,
) -> Result<Plan<'a>, DigestError> {
    let digest_config = config.digest.as_ref().ok_or(DigestError::NotConfigured)?;
    if let Some(unfinished) = store.unfinished_digest()? {
        return Ok(Plan::Resume(content_of(
            config,
            store,
            &unfinished,
            collection,
        )?));
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
    // By id: a short renamed since a digest carried it is not new.
    let carried = store.carried_ids()?;
    let shorts: Vec<&Short> = collection
        .shorts
        .iter()
        .filter(|s| s.is_published(slot) && !carried.contains(&s.id))
        .filter(|s| s.date.with_timezone(&Utc) > floor)
        .collect();
    if shorts.is_empty() {
        return Ok(Plan::Nothing(nothing_new(store, floor, config)?));
    }
    let number = store.digest_count()? + 1;
    Ok(Plan::New(DigestContent {
        number,
        period_start: previous,
        slot,
        shorts,
        note: note(config, number, slot)?,
    }))
}

/// Why there is nothing to send, in the reader's terms: before the first
/// digest there is no "last digest" to speak of.
fn nothing_new(
    store: &dyn Store,
    since: DateTime<Utc>,
    config: &Config,
) -> Result<String, DigestError> {
    let since = since
        .with_timezone(&config.site.timezone)
        .format("%Y-%m-%d %H:%M %Z");
    Ok(match store.digest_count()? {
        0 => format!(
            "no shorts published since {since}, when the first digest's period starts (no digest has been sent yet; older shorts are never mailed)"
        ),
        n => format!("no new shorts since the last digest (#{n})"),
    })
}

/// The content of a recorded digest, from the shorts it carried that still exist.
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
        number: record.number,
        period_start: record.period_start,
        slot: record.slot,
        shorts,
        note: note(config, record.number, record.slot)?,
    })
}

/// The author's note for the digest, if they wrote one; an unreadable one
/// stops the send rather than going out without it.
fn note(
    config: &Config,
    number: i64,
    slot: DateTime<Utc>,
) -> Result<Option<crate::model::DigestNote>, DigestError> {
    crate::content::digest_note::load(config, number, slot).map_err(DigestError::Note)
}

/// Records a new digest and the shorts it carries.
pub fn record_new(
    store: &dyn Store,
    content: &DigestContent<'_>,
    now: DateTime<Utc>,
) -> Result<DigestRecord, DigestError> {
    let shorts: Vec<(&str, &str)> = content
        .shorts
        .iter()
        .map(|s| (s.id.as_str(), s.track.as_str()))
        .collect();
    Ok(store.create_digest(content.slot, content.period_start, &shorts, now)?)
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
