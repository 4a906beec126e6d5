//! Acting on a message that came back: find the delivery or subscriber it
//! is about from a signed token, record an event, and change the
//! subscriber's standing as the verdict requires — all in one transaction,
//! and only once per message however often it is read.
//!
//! A bounce is evidence against a subscriber, and anyone can send mail to
//! the bounce address, so nothing is acted on without a token we signed:
//! the VERP return path (digests and confirmations), or the unsubscribe
//! token of the `List-Unsubscribe` header (complaints that return the
//! original, `mailto:` unsubscribe requests). Everything else is recorded
//! as unrecognised, with the reason, and left for a person.

use chrono::{DateTime, Duration, Utc};
use lettre::Address;

use super::classify::{Finding, Verdict, classify};
use super::report::Report;
use crate::config::InboundConfig;
use crate::delivery::verp::{self, Sent, VerpError};
use crate::model::{Subscriber, SubscriberStatus};
use crate::store::{DeliveryState, NewEvent, Store, StoreError};
use crate::tokens::{Purpose, Secret};

/// What `handle` needs from the site.
pub struct Context<'a> {
    pub store: &'a dyn Store,
    pub secret: &'a Secret,
    /// `[delivery] bounce_address`: the base of every return path.
    pub bounce: Option<&'a Address>,
    pub settings: &'a InboundConfig,
    pub now: DateTime<Utc>,
}

/// What handling one message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    /// The verdict's event kind (`hard_bounce`, `complaint`, …).
    pub kind: &'static str,
    /// The subscriber it was about, when a token named one.
    pub email: Option<String>,
    pub effect: Effect,
}

/// One line: what it was, whom it was about, what changed.
impl std::fmt::Display for Handled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = self.kind.replace('_', " ");
        let who = self
            .email
            .as_deref()
            .map(|e| format!(" from {e}"))
            .unwrap_or_default();
        let effect = match &self.effect {
            Effect::Bounced => "now bounced".to_string(),
            Effect::Unsubscribed => "now unsubscribed".to_string(),
            Effect::SoftBounceCounted { count, limit } => {
                format!("{count} of {limit} soft bounces")
            }
            Effect::Recorded => "recorded".to_string(),
            Effect::Replay => "already handled; nothing changed".to_string(),
            Effect::Unrecognised(reason) => format!("not acted on: {reason}"),
        };
        write!(f, "{kind}{who}: {effect}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The subscriber is now `bounced`.
    Bounced,
    /// The subscriber is now `unsubscribed`.
    Unsubscribed,
    /// A soft bounce counted: `count` of `limit` within the window.
    SoftBounceCounted { count: u64, limit: u32 },
    /// Recorded; nothing about the subscriber changes (an auto-reply, or a
    /// subscriber already gone).
    Recorded,
    /// This message was handled before: nothing done again.
    Replay,
    /// Not acted on, for this reason; the message should be kept.
    Unrecognised(String),
}

/// Reads, classifies and acts on one raw message from `source`
/// (`stdin`, `maildir:<file>`). Fails only when the store does.
pub fn handle(raw: &[u8], source: &str, ctx: &Context<'_>) -> Result<Handled, StoreError> {
    let report = match Report::read(raw) {
        Ok(report) => report,
        Err(e) => {
            let id = Report::fallback_id(raw);
            return not_acted_on(ctx, &id, source, e.to_string());
        }
    };
    let finding = main_finding(classify(&report));
    if let Verdict::Unrecognised(reason) = &finding.verdict {
        return not_acted_on(ctx, &report.message_id, source, reason.clone());
    }
    match target(&report, &finding, ctx)? {
        Ok(target) => act(ctx, &report.message_id, &finding, &target, source),
        Err(why) => {
            let reason = format!("{}: {why}; not acted on", describe(&finding));
            not_acted_on(ctx, &report.message_id, source, reason)
        }
    }
}

/// Acts on `finding` from a source that authenticated itself (a relay's
/// signed webhook): the recipient it names is the subscriber, no token
/// needed. `event_id` makes a replay idempotent, as a Message-ID does.
pub fn handle_reported(
    finding: &Finding,
    event_id: &str,
    source: &str,
    ctx: &Context<'_>,
) -> Result<Handled, StoreError> {
    if let Verdict::Unrecognised(reason) = &finding.verdict {
        return not_acted_on(ctx, event_id, source, reason.clone());
    }
    let subscriber = match &finding.recipient {
        Some(email) => ctx.store.subscriber_by_email(email.trim())?,
        None => None,
    };
    match subscriber {
        Some(subscriber) => {
            let target = Target {
                subscriber,
                digest: None,
            };
            act(ctx, event_id, finding, &target, source)
        }
        None => {
            let reason = format!("{}: not a subscriber; not acted on", describe(finding));
            not_acted_on(ctx, event_id, source, reason)
        }
    }
}

/// Our messages have one recipient; a report about several (a relay that
/// merged them) is read for its first failure.
fn main_finding(findings: Vec<Finding>) -> Finding {
    let first_failure = findings
        .iter()
        .position(|f| matches!(f.verdict, Verdict::HardBounce | Verdict::SoftBounce));
    let index = first_failure.unwrap_or(0);
    findings
        .into_iter()
        .nth(index)
        .unwrap_or_else(|| Finding::unrecognised("no finding"))
}

/// Who and which digest a report is about.
struct Target {
    subscriber: Subscriber,
    digest: Option<i64>,
}

/// The subscriber a signed token in `report` names, or why there is none.
fn target(
    report: &Report,
    finding: &Finding,
    ctx: &Context<'_>,
) -> Result<Result<Target, String>, StoreError> {
    match finding.verdict {
        Verdict::Unsubscribe => by_unsubscribe_token(&unsubscribe_request_text(report), ctx),
        Verdict::Complaint => match by_return_path(report, ctx)? {
            Ok(target) => Ok(Ok(target)),
            Err(why) => Ok(
                by_unsubscribe_token(&returned_list_unsubscribe(report), ctx)?
                    .map_err(|also| format!("{why}; {also}")),
            ),
        },
        _ => by_return_path(report, ctx),
    }
}

/// The delivery named by the first of our VERP addresses the report was
/// sent to or returns.
fn by_return_path(
    report: &Report,
    ctx: &Context<'_>,
) -> Result<Result<Target, String>, StoreError> {
    let Some(bounce) = ctx.bounce else {
        return Ok(Err(
            "`[delivery] bounce_address` is not set, so no return path names a delivery".into(),
        ));
    };
    let mut why = format!(
        "no return path of the form {}+…@{} names a delivery",
        bounce.user(),
        bounce.domain()
    );
    for address in return_path_candidates(report) {
        match verp::read(&address, bounce, ctx.secret) {
            Ok(sent) => return resolve(sent, ctx),
            Err(VerpError::NotOurs(_)) => {}
            Err(e) => why = format!("return path {address}: {e}"),
        }
    }
    Ok(Err(why))
}

/// Where a return path may show: the envelope recipient an MTA records on
/// delivery, the DSN's `To`, and the returned original's `Return-Path`.
fn return_path_candidates(report: &Report) -> Vec<String> {
    let own = [
        "delivered-to",
        "x-original-to",
        "envelope-to",
        "x-envelope-to",
        "to",
    ]
    .into_iter()
    .flat_map(|name| {
        report
            .headers
            .all(name)
            .map(str::to_string)
            .collect::<Vec<_>>()
    });
    let returned = report.returned.iter().flat_map(|fields| {
        fields
            .all("return-path")
            .map(str::to_string)
            .collect::<Vec<_>>()
    });
    own.chain(returned)
        .flat_map(|value| addresses_in(&value))
        .collect()
}

/// The addresses in a header value: `<a@b>` forms, else bare words with `@`.
fn addresses_in(value: &str) -> Vec<String> {
    value
        .split([',', ' ', '\t'])
        .filter_map(|word| {
            let word = word.trim().trim_matches(['<', '>', '"', ';']);
            word.contains('@').then(|| word.to_string())
        })
        .collect()
}

fn resolve(sent: Sent, ctx: &Context<'_>) -> Result<Result<Target, String>, StoreError> {
    let (subscriber_id, digest) = match sent {
        Sent::Digest { digest, subscriber } => (subscriber, Some(digest)),
        Sent::Confirmation { subscriber } => (subscriber, None),
    };
    let Some(subscriber) = ctx.store.subscriber_by_id(subscriber_id)? else {
        return Ok(Err(format!("subscriber {subscriber_id} no longer exists")));
    };
    if let Some(digest) = digest
        && let Some(why) = digest_refusal(digest, subscriber_id, ctx)?
    {
        return Ok(Err(why));
    }
    Ok(Ok(Target { subscriber, digest }))
}

/// Why a digest return path is not honoured: no such delivery, or too old.
fn digest_refusal(
    digest: i64,
    subscriber: i64,
    ctx: &Context<'_>,
) -> Result<Option<String>, StoreError> {
    if ctx.store.delivery_state(digest, subscriber)?.is_none() {
        return Ok(Some(format!(
            "the ledger has no delivery of digest {digest} to subscriber {subscriber}"
        )));
    }
    let sent_at = ctx
        .store
        .digests()?
        .into_iter()
        .find(|d| d.number == digest)
        .map(|d| d.slot);
    let max_age = Duration::days(i64::from(ctx.settings.expire_days));
    Ok(match sent_at {
        Some(slot) if ctx.now - slot > max_age => Some(format!(
            "the return path of digest {digest} ({}) expired after {} days (`[inbound] expire_days`)",
            slot.format("%Y-%m-%d"),
            ctx.settings.expire_days
        )),
        _ => None,
    })
}

/// The subscriber whose signed unsubscribe token appears in `text`.
fn by_unsubscribe_token(
    text: &str,
    ctx: &Context<'_>,
) -> Result<Result<Target, String>, StoreError> {
    let mut why = "no unsubscribe token".to_string();
    for candidate in unsubscribe_tokens(text) {
        match ctx.secret.verify(&candidate, Purpose::Unsubscribe, ctx.now) {
            Ok(token_id) => {
                return Ok(match ctx.store.subscriber_by_token_id(&token_id)? {
                    Some(subscriber) => Ok(Target {
                        subscriber,
                        digest: None,
                    }),
                    None => Err("the unsubscribe token names no subscriber".into()),
                });
            }
            Err(e) => why = format!("unsubscribe token: {e}"),
        }
    }
    Ok(Err(why))
}

/// Words in `text` shaped like our unsubscribe tokens: `u.<id>.<expiry>.<sig>`.
fn unsubscribe_tokens(text: &str) -> Vec<String> {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    text.split(|c: char| !is_token_char(c))
        .filter_map(|word| word.find("u.").map(|at| &word[at..]))
        .filter(|word| word.matches('.').count() == 3)
        .map(str::to_string)
        .collect()
}

/// A `mailto:` request: the subject, then the first lines of the body.
fn unsubscribe_request_text(report: &Report) -> String {
    let subject = report.header("subject").unwrap_or("");
    let body: String = report.text.chars().take(2_000).collect();
    format!("{subject}\n{body}")
}

fn returned_list_unsubscribe(report: &Report) -> String {
    report
        .returned
        .as_ref()
        .map(|fields| fields.all("list-unsubscribe").collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn describe(finding: &Finding) -> String {
    let mut text = finding.verdict.kind().replace('_', " ");
    if let Some(recipient) = &finding.recipient {
        text.push_str(&format!(" for {recipient}"));
    }
    if let Some(status) = &finding.status {
        text.push_str(&format!(" ({status})"));
    }
    text
}

/// Records the event and, the first time only, applies its effect.
fn act(
    ctx: &Context<'_>,
    message_id: &str,
    finding: &Finding,
    target: &Target,
    source: &str,
) -> Result<Handled, StoreError> {
    let verdict = effective_verdict(finding, &target.subscriber);
    let digest = match target.digest {
        Some(digest) => Some(digest),
        None => latest_digest_sent(ctx, &target.subscriber)?,
    };
    let batch = ctx.store.batch()?;
    let fresh = ctx.store.record_event(&NewEvent {
        received_at: ctx.now,
        kind: verdict.kind(),
        subscriber: Some(target.subscriber.id),
        email: Some(&target.subscriber.email),
        digest,
        status: finding.status.as_deref(),
        diagnostic: &finding.diagnostic,
        message_id,
        source,
    })?;
    let effect = if fresh {
        apply(ctx, &verdict, finding, &target.subscriber)?
    } else {
        Effect::Replay
    };
    batch.commit()?;
    Ok(Handled {
        kind: verdict.kind(),
        email: Some(target.subscriber.email.clone()),
        effect,
    })
}

/// What an unsubscribe token cannot say: which digest prompted the
/// request. The latest one the reader got is the one they acted on.
fn latest_digest_sent(
    ctx: &Context<'_>,
    subscriber: &Subscriber,
) -> Result<Option<i64>, StoreError> {
    Ok(ctx
        .store
        .subscriber_deliveries(subscriber.id)?
        .into_iter()
        .rev()
        .find(|(_, delivery)| delivery.state == DeliveryState::Sent)
        .map(|(digest, _)| digest))
}

/// A hard bounce for an address other than the subscriber's (a forward
/// that failed further on) says nothing certain about theirs: soft.
fn effective_verdict(finding: &Finding, subscriber: &Subscriber) -> Verdict {
    let other_address = finding
        .recipient
        .as_deref()
        .is_some_and(|r| !r.eq_ignore_ascii_case(&subscriber.email));
    match finding.verdict {
        Verdict::HardBounce if other_address => Verdict::SoftBounce,
        ref verdict => verdict.clone(),
    }
}

fn apply(
    ctx: &Context<'_>,
    verdict: &Verdict,
    finding: &Finding,
    subscriber: &Subscriber,
) -> Result<Effect, StoreError> {
    let receiving = matches!(
        subscriber.status,
        SubscriberStatus::Active | SubscriberStatus::Pending
    );
    match verdict {
        Verdict::HardBounce => {
            let reason = format!(
                "hard bounce ({})",
                finding.status.as_deref().unwrap_or("no status")
            );
            ctx.store.suppress(&subscriber.email, &reason, ctx.now)?;
            set_status_if(
                ctx,
                subscriber,
                receiving,
                SubscriberStatus::Bounced,
                Effect::Bounced,
            )
        }
        Verdict::SoftBounce => soft_bounce(ctx, subscriber),
        Verdict::Complaint => {
            ctx.store
                .suppress(&subscriber.email, "complaint (reported as spam)", ctx.now)?;
            set_status_if(
                ctx,
                subscriber,
                receiving,
                SubscriberStatus::Unsubscribed,
                Effect::Unsubscribed,
            )
        }
        Verdict::Unsubscribe => set_status_if(
            ctx,
            subscriber,
            receiving,
            SubscriberStatus::Unsubscribed,
            Effect::Unsubscribed,
        ),
        _ => Ok(Effect::Recorded),
    }
}

fn set_status_if(
    ctx: &Context<'_>,
    subscriber: &Subscriber,
    condition: bool,
    status: SubscriberStatus,
    effect: Effect,
) -> Result<Effect, StoreError> {
    if !condition {
        return Ok(Effect::Recorded);
    }
    ctx.store.set_status(subscriber.id, status, ctx.now)?;
    tracing::info!(email = %subscriber.email, status = status.as_str(), "subscriber status changed by mail that came back");
    Ok(effect)
}

/// Counts the soft bounce (already recorded) and bounces the subscriber
/// when the window holds `soft_bounce_limit` of them.
fn soft_bounce(ctx: &Context<'_>, subscriber: &Subscriber) -> Result<Effect, StoreError> {
    let settings = ctx.settings;
    let since = ctx.now - Duration::days(i64::from(settings.soft_bounce_days));
    let count = ctx.store.soft_bounces_since(subscriber.id, since)?;
    if count >= u64::from(settings.soft_bounce_limit)
        && subscriber.status == SubscriberStatus::Active
    {
        return set_status_if(
            ctx,
            subscriber,
            true,
            SubscriberStatus::Bounced,
            Effect::Bounced,
        );
    }
    Ok(Effect::SoftBounceCounted {
        count,
        limit: settings.soft_bounce_limit,
    })
}

fn not_acted_on(
    ctx: &Context<'_>,
    message_id: &str,
    source: &str,
    reason: String,
) -> Result<Handled, StoreError> {
    let fresh = ctx.store.record_event(&NewEvent {
        received_at: ctx.now,
        kind: "unrecognised",
        subscriber: None,
        email: None,
        digest: None,
        status: None,
        diagnostic: &reason,
        message_id,
        source,
    })?;
    if fresh {
        tracing::warn!(message_id, reason = %reason, "mail that came back was not acted on");
    }
    Ok(Handled {
        kind: "unrecognised",
        email: None,
        effect: Effect::Unrecognised(reason),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_unsubscribe_tokens_in_subjects_and_headers() {
        assert_eq!(
            unsubscribe_tokens("unsubscribe u.abc123..SiGn-_x"),
            ["u.abc123..SiGn-_x"]
        );
        assert_eq!(
            unsubscribe_tokens(
                "<https://x.org/unsubscribe?token=u.a1..s1>, <mailto:u@x.org?subject=unsubscribe%20u.a1..s1>"
            ),
            ["u.a1..s1", "u.a1..s1"]
        );
        assert!(unsubscribe_tokens("please unsubscribe me").is_empty());
    }

    #[test]
    fn addresses_come_out_of_header_values() {
        assert_eq!(
            addresses_in("\"Bounces\" <bounces+d1-2-ab@x.org>, other@y.org"),
            ["bounces+d1-2-ab@x.org", "other@y.org"]
        );
    }
}
