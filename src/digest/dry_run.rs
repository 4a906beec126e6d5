//! What `digest send --dry-run` reports: the digest's shorts, then what a
//! send would do for each active subscriber. Renders every copy as a send
//! would, but writes nothing and sends nothing; printing is the caller's.

use super::{ActiveIds, DigestError, Planned, Prepared, Sender};
use crate::model::Subscriber;
use crate::store::DeliveryState;

/// One line of a dry run, in the order they come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DryRunLine {
    /// First: the digest ("digest", "daily digest"), its number, and the
    /// slugs of the shorts its issue carries.
    Carries {
        name: String,
        number: i64,
        slugs: Vec<String>,
    },
    /// An earlier run of this digest settled this subscriber.
    AlreadyDone { email: String },
    /// A send would mail `count` shorts under `subject`.
    WouldSend {
        email: String,
        subject: String,
        count: usize,
    },
    /// Nothing in the digest is in the subscriber's tracks.
    WouldSkip { email: String },
}

/// Hands `line` what sending `planned` would do, one line at a time, so
/// memory does not grow with the list.
pub fn dry_run(
    sender: &Sender<'_>,
    planned: &Planned<'_>,
    line: &mut dyn FnMut(DryRunLine),
) -> Result<(), DigestError> {
    line(DryRunLine::Carries {
        name: super::digest_name(sender.digest_config.cadence_of(&planned.content.cadence)),
        number: planned.content.number,
        slugs: planned
            .content
            .shorts
            .iter()
            .map(|s| s.slug.clone())
            .collect(),
    });
    let others = sender.digest_config.other_keys();
    let members = super::members(&planned.content.cadence, &others);
    for id in ActiveIds::new(sender.store, members, planned.content.id) {
        let Some(subscriber) = sender.store.subscriber_by_id(id?)? else {
            continue;
        };
        line(would(sender, planned, subscriber)?);
    }
    Ok(())
}

/// What a send would do for `subscriber`.
fn would(
    sender: &Sender<'_>,
    planned: &Planned<'_>,
    subscriber: Subscriber,
) -> Result<DryRunLine, DigestError> {
    let (store, digest) = (sender.store, planned.content.id);
    let claimed = store.delivery_state(digest, subscriber.id)?;
    if claimed.is_some_and(DeliveryState::is_final) {
        return Ok(DryRunLine::AlreadyDone {
            email: subscriber.email,
        });
    }
    let window = match claimed {
        Some(_) => Some(store.claimed_since(digest, subscriber.id)?),
        None => planned.window_for(store.watermark(subscriber.id)?),
    };
    let Some(since) = window else {
        return Ok(DryRunLine::WouldSkip {
            email: subscriber.email,
        });
    };
    Ok(match sender.prepare(&planned.copy(since), subscriber)? {
        Prepared {
            subscriber,
            message: Some((rendered, _)),
        } => DryRunLine::WouldSend {
            email: subscriber.email,
            subject: rendered.subject,
            count: rendered.count,
        },
        Prepared {
            subscriber,
            message: None,
        } => DryRunLine::WouldSkip {
            email: subscriber.email,
        },
    })
}
