//! What `digest send --dry-run` reports: the digest's shorts, then what a
//! send would do for each active subscriber. Renders every copy as a send
//! would, but writes nothing and sends nothing; printing is the caller's.

use super::{ActiveIds, DigestError, Prepared, Sender};
use crate::model::Subscriber;
use crate::render::digest::DigestContent;
use crate::store::DeliveryState;

/// One line of a dry run, in the order they come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DryRunLine {
    /// First: the digest and the slugs of the shorts it carries.
    Carries { number: i64, slugs: Vec<String> },
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

/// Hands `line` what sending `content` would do, one line at a time, so
/// memory does not grow with the list.
pub fn dry_run(
    sender: &Sender<'_>,
    content: &DigestContent<'_>,
    line: &mut dyn FnMut(DryRunLine),
) -> Result<(), DigestError> {
    line(DryRunLine::Carries {
        number: content.number,
        slugs: content.shorts.iter().map(|s| s.slug.clone()).collect(),
    });
    for id in ActiveIds::new(sender.store) {
        let Some(subscriber) = sender.store.subscriber_by_id(id?)? else {
            continue;
        };
        line(would(sender, content, subscriber)?);
    }
    Ok(())
}

/// What a send would do for `subscriber`.
fn would(
    sender: &Sender<'_>,
    content: &DigestContent<'_>,
    subscriber: Subscriber,
) -> Result<DryRunLine, DigestError> {
    if sender
        .store
        .delivery_state(content.number, subscriber.id)?
        .is_some_and(DeliveryState::is_final)
    {
        return Ok(DryRunLine::AlreadyDone {
            email: subscriber.email,
        });
    }
    Ok(match sender.prepare(content, subscriber)? {
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
