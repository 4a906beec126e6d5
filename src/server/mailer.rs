//! `serve`'s background sender of the emails about a subscription: it takes
//! what the sign-up and confirm handlers queued (`store::MailQueue`),
//! decides which email each sign-up is owed (a confirmation, or a link to
//! manage an existing subscription), renders it from the templates
//! (`render::subscription_mail`) and sends it.
//!
//! Owns when and whether to send: the per-address cap on these emails, the
//! retry schedule, giving up. The HTTP handlers only queue and wake it, so a
//! slow or unreachable relay never holds up an answer, and the answer never
//! depends on what the address is owed. Must not block the async workers:
//! each pass runs on the blocking pool.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::App;
use crate::delivery::compose::{self, Composed, Notice};
use crate::delivery::{self, Failure, Transport, verp};
use crate::model::{Subscriber, SubscriberStatus};
use crate::paths;
use crate::render::subscription_mail::{Kind, Links};
use crate::store::{MailRequest, QueuedMail, SignUp, Store, StoreError};
use crate::tokens::Purpose;

/// How long a confirmation link works.
pub const CONFIRM_VALID_HOURS: i64 = 48;
/// The window of `[server] confirmations_per_address`.
pub const CONFIRMATIONS_WINDOW_HOURS: i64 = 24;
/// A claimed row whose sender has not finished after this long is taken
/// over: it died mid-send (the copy may have gone out; at most one more does).
const LEASE: chrono::Duration = chrono::Duration::minutes(10);
/// Temporary failures are retried for this long after the sign-up, then
/// given up: a confirmation a day late is more confusing than none.
const GIVE_UP_AFTER: chrono::Duration = chrono::Duration::hours(24);
/// Rows claimed per pass.
const BATCH: usize = 20;
/// The longest sleep between passes, so that rows queued by another
/// process sharing the database are not left waiting.
const IDLE_WAKE: Duration = Duration::from_secs(30);

/// Sends until `shutdown` resolves: a pass at start (rows left by the last
/// run), then whenever a handler queues something, a retry falls due, or
/// [`IDLE_WAKE`] passes.
pub async fn run(app: Arc<App>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let pass = Arc::clone(&app);
        let next_due = match tokio::task::spawn_blocking(move || send_due(&pass)).await {
            Ok(next_due) => next_due,
            Err(e) => {
                tracing::error!(error = %e, "the subscription email sender failed");
                None
            }
        };
        let wait = next_due
            .and_then(|due| (due - (app.clock)()).to_std().ok())
            .map_or(IDLE_WAKE, |until| until.min(IDLE_WAKE));
        tokio::select! {
            () = &mut shutdown => return,
            () = app.wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Sends every row that is due; returns when the next deferred one is.
fn send_due(app: &App) -> Option<DateTime<Utc>> {
    let transport = match delivery::from_config(&app.config) {
        Ok(transport) => transport,
        Err(e) => {
            tracing::error!(error = %e, "cannot send subscription emails");
            return None;
        }
    };
    loop {
        let now = (app.clock)();
        let claimed = match claim(app, now) {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::error!(error = %e, "reading the subscription email queue");
                return None;
            }
        };
        if claimed.is_empty() {
            return app.store().next_mail_due().ok().flatten();
        }
        for (i, mail) in claimed.iter().enumerate() {
            match send_one(app, transport.as_ref(), mail) {
                Ok(Sent::Continue) => {}
                // Nothing else gets through either: the rest wait for the next pass.
                Ok(Sent::StopThePass) => return release(app, &claimed[i + 1..]),
                Err(e) => tracing::error!(error = %e, row = mail.id, "subscription email"),
            }
        }
    }
}

/// The rows due now, claimed; none without taking the write lock when
/// nothing is due (the usual case, every [`IDLE_WAKE`]).
fn claim(app: &App, now: DateTime<Utc>) -> Result<Vec<QueuedMail>, StoreError> {
    let store = app.store();
    if !store.mail_is_due(now, now - LEASE)? {
        return Ok(Vec::new());
    }
    store.claim_mail(now, now - LEASE, BATCH)
}

/// Whether the pass goes on after a row.
enum Sent {
    Continue,
    StopThePass,
}

/// Puts claimed rows back as they were (a try that did not happen is not
/// counted); returns when the first is due again.
fn release(app: &App, rows: &[QueuedMail]) -> Option<DateTime<Utc>> {
    let now = (app.clock)();
    let retry_at = now + retry_wait(0);
    for mail in rows {
        if let Err(e) = app.store().mail_released(mail.id, retry_at, now) {
            tracing::error!(error = %e, row = mail.id, "subscription email");
        }
    }
    Some(retry_at)
}

/// What a claimed row comes to.
enum Plan {
    Send(Kind, Subscriber),
    Drop(&'static str),
}

fn send_one(app: &App, transport: &dyn Transport, mail: &QueuedMail) -> Result<Sent, StoreError> {
    let now = (app.clock)();
    let (kind, subscriber) = match plan(app, mail, now)? {
        Plan::Send(kind, subscriber) => (kind, subscriber),
        Plan::Drop(reason) => {
            tracing::info!(row = mail.id, reason, "subscription email not sent");
            app.store().mail_dropped(mail.id, reason, now)?;
            return Ok(Sent::Continue);
        }
    };
    let composed = match composed(app, kind, &subscriber, mail, now) {
        Ok(composed) => composed,
        Err(e) => {
            tracing::error!(error = %e, row = mail.id, kind = kind.name(), "cannot build the email");
            app.store().mail_failed(mail.id, &e, now)?;
            return Ok(Sent::Continue);
        }
    };
    let outcome = delivery::send_with_retry(transport, &composed, "subscriptions");
    let stops = matches!(&outcome, Err((failure, _)) if failure.stops_the_run());
    record(app, mail, kind, &composed, outcome.map_err(|(f, _)| f))?;
    Ok(if stops {
        Sent::StopThePass
    } else {
        Sent::Continue
    })
}

/// Which email the row is owed, if any. A sign-up is applied to the
/// subscriber list here, not in the request, so the request does the same
/// work whatever the address.
fn plan(app: &App, mail: &QueuedMail, now: DateTime<Utc>) -> Result<Plan, StoreError> {
    let store = app.store();
    let (kind, subscriber) = match &mail.request {
        MailRequest::SignUp(new) => match store.sign_up(new, mail.queued_at)? {
            SignUp::Confirm(subscriber) => (Kind::Confirm, subscriber),
            SignUp::Manage(subscriber) => (Kind::Manage, subscriber),
            SignUp::Suppressed => return Ok(Plan::Drop("suppressed")),
        },
        MailRequest::Welcome { subscriber } => match store.subscriber_by_id(*subscriber)? {
            Some(s) if s.status == SubscriberStatus::Active => (Kind::Welcome, s),
            _ => return Ok(Plan::Drop("no longer subscribed")),
        },
    };
    if kind != Kind::Welcome && !within_cap(app, store.as_ref(), &subscriber.email, now)? {
        return Ok(Plan::Drop("over the per-address cap"));
    }
    Ok(Plan::Send(kind, subscriber))
}

/// Whether `email` may get one more sign-up email now (list-bombing: the
/// cap counts confirmations and manage links alike).
fn within_cap(
    app: &App,
    store: &dyn Store,
    email: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let limit = app.config.server.confirmations_per_address;
    let since = now - chrono::Duration::hours(CONFIRMATIONS_WINDOW_HOURS);
    store.record_confirmation(email, since, now, limit)
}

/// Records how the send went: sent, or tried again later, or given up.
fn record(
    app: &App,
    mail: &QueuedMail,
    kind: Kind,
    composed: &Composed,
    outcome: Result<u32, Failure>,
) -> Result<(), StoreError> {
    let now = (app.clock)();
    let store = app.store();
    let failure = match outcome {
        Ok(_) => {
            tracing::info!(row = mail.id, kind = kind.name(), "subscription email sent");
            return store.mail_sent(mail.id, kind.name(), &composed.message_id, now);
        }
        Err(failure) => failure,
    };
    let temporary = !matches!(failure, Failure::Permanent(_));
    if temporary && now - mail.queued_at < GIVE_UP_AFTER {
        let retry_at = now + retry_wait(mail.attempts);
        tracing::warn!(row = mail.id, kind = kind.name(), error = %failure, %retry_at, "subscription email deferred");
        return store.mail_deferred(mail.id, failure.message(), retry_at, now);
    }
    tracing::error!(row = mail.id, kind = kind.name(), error = %failure, "subscription email given up");
    store.mail_failed(mail.id, failure.message(), now)
}

/// 1, 2, 4 … minutes after each failed try, at most an hour.
fn retry_wait(attempts: u32) -> chrono::Duration {
    chrono::Duration::minutes(1_i64 << attempts.min(6)).min(chrono::Duration::hours(1))
}

/// The signed message for `subscriber`.
fn composed(
    app: &App,
    kind: Kind,
    subscriber: &Subscriber,
    mail: &QueuedMail,
    now: DateTime<Utc>,
) -> Result<Composed, String> {
    let (Some(templates), Some(digest_config)) = (&app.mail, &app.config.digest) else {
        return Err("no [digest] section: nothing to send subscription emails from".into());
    };
    let links = links(app, kind, subscriber, now);
    let rendered = templates
        .render(kind, &app.config, subscriber, &links, CONFIRM_VALID_HOURS)
        .map_err(|e| e.to_string())?;
    let unsubscribe_token = app
        .secret
        .sign(Purpose::Unsubscribe, &subscriber.token_id, None);
    let notice = Notice {
        config: digest_config,
        kind: kind.name(),
        to: &subscriber.email,
        rendered: &rendered,
        message_id: format!(
            "<{}-{}.{}@{}>",
            kind.name(),
            mail.id,
            mail.queued_at.timestamp(),
            digest_config.from.email.domain()
        ),
        date: now,
        unsubscribe: kind
            .to_a_subscriber()
            .then_some((links.unsubscribe.as_str(), unsubscribe_token.as_str())),
    };
    let returns = verp::returns(
        app.config.delivery.bounce_address.as_ref(),
        &app.secret,
        verp::Sent::Confirmation {
            subscriber: subscriber.id,
        },
    );
    compose::notice(&notice, app.signer.as_ref(), returns.as_ref()).map_err(|e| e.to_string())
}

/// The links `kind` carries: a confirmation's expires, a subscriber's do not.
fn links(app: &App, kind: Kind, subscriber: &Subscriber, now: DateTime<Utc>) -> Links {
    let site = &app.config.site;
    let token = |purpose, expires| app.secret.sign(purpose, &subscriber.token_id, expires);
    if kind == Kind::Confirm {
        let expires = now + chrono::Duration::hours(CONFIRM_VALID_HOURS);
        return Links {
            site: site.base_url.to_string(),
            confirm: site.url(&paths::confirm(&token(Purpose::Confirm, Some(expires)))),
            ..Links::default()
        };
    }
    Links {
        site: site.base_url.to_string(),
        confirm: String::new(),
        preferences: site.url(&paths::preferences(&token(Purpose::Preferences, None))),
        unsubscribe: site.url(&paths::unsubscribe(&token(Purpose::Unsubscribe, None))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn retries_back_off_to_an_hour() {
        let minutes: Vec<i64> = (0..9).map(|a| super::retry_wait(a).num_minutes()).collect();
        assert_eq!(minutes, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
