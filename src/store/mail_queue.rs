//! The queue of emails to subscribers that are not digests: sign-ups waiting
//! to become a confirmation (or, for an address already subscribed, a
//! "manage your subscription") email, and welcome emails after a
//! confirmation.
//!
//! `serve` answers a sign-up by adding one row, the same for every address,
//! and sends from the queue in the background, so that neither a slow relay
//! nor the address's standing shows in the answer. The rows follow the
//! ledger's rules: a row is claimed (`sending`) before it goes out, a sender
//! that dies leaves it claimed until its lease runs out and another sends it
//! again (at most one duplicate, as for digests), a temporary failure waits
//! and is tried again, and nothing is lost. What to send is decided by
//! `server::mailer`; this module only records.

use super::sql::{Row, params};
use super::{Database, NewSubscriber, StoreError, parse_timestamp, timestamp};
use crate::model::SubscriberStatus;
use chrono::{DateTime, Utc};

/// What a queued row asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailRequest {
    /// The sign-up form as validated: the address, its tracks and consent.
    SignUp(NewSubscriber),
    /// The email a subscriber gets once they confirmed.
    Welcome { subscriber: i64 },
}

/// A row claimed for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMail {
    pub id: i64,
    pub request: MailRequest,
    /// Tries so far, this one not counted.
    pub attempts: u32,
    pub queued_at: DateTime<Utc>,
}

/// How many rows are in each state, for `digest status` and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailQueueCounts {
    pub queued: usize,
    pub sending: usize,
    pub sent: usize,
    pub dropped: usize,
    pub failed: usize,
}

pub trait MailQueue {
    /// Queues a sign-up; returns its row id.
    fn queue_sign_up(&self, new: &NewSubscriber, now: DateTime<Utc>) -> Result<i64, StoreError>;

    /// Queues the welcome email of subscriber `subscriber`.
    fn queue_welcome(&self, subscriber: i64, now: DateTime<Utc>) -> Result<i64, StoreError>;

    /// Claims up to `limit` rows that are due at `now`, oldest first: queued
    /// ones whose wait is over, and claimed ones whose sender's claim is older
    /// than `stale_before` (it died mid-send). One statement, so two senders
    /// (two `serve` replicas) never claim the same row.
    fn claim_mail(
        &self,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<QueuedMail>, StoreError>;

    /// Whether [`MailQueue::claim_mail`] would find anything: a read, so an
    /// idle sender never takes the write lock (nor waits for another's).
    fn mail_is_due(
        &self,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// The row went out as `sent_as` (`confirm`, `manage`, `welcome`).
    fn mail_sent(
        &self,
        id: i64,
        sent_as: &str,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Nothing was to be sent, for `reason` (suppressed, over the cap, gone).
    fn mail_dropped(&self, id: i64, reason: &str, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// A temporary failure: try again at `retry_at`.
    fn mail_deferred(
        &self,
        id: i64,
        error: &str,
        retry_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Back to the queue untried (its sender stopped before it), due at `retry_at`.
    fn mail_released(
        &self,
        id: i64,
        retry_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// A permanent failure, or temporary ones for too long: given up.
    fn mail_failed(&self, id: i64, error: &str, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// When the next queued row is due, if any is queued.
    fn next_mail_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    fn mail_queue_counts(&self) -> Result<MailQueueCounts, StoreError>;

    /// Forgets finished rows (sent, dropped, failed) last changed before
    /// `before`: they hold addresses, which are kept no longer than needed.
    fn purge_mail(&self, before: DateTime<Utc>) -> Result<usize, StoreError>;
}

const KIND_SIGN_UP: &str = "sign_up";
const KIND_WELCOME: &str = "welcome";

fn queued_mail(row: &Row<'_>) -> Result<(QueuedMail, String), StoreError> {
    let kind: String = row.get(1)?;
    let tracks: String = row.get(3)?;
    let tags: String = row.get(9)?;
    let request = if kind == KIND_WELCOME {
        MailRequest::Welcome {
            subscriber: row.get::<Option<i64>>(6)?.unwrap_or_default(),
        }
    } else {
        MailRequest::SignUp(NewSubscriber {
            email: row.get(2)?,
            name: String::new(),
            tracks: super::subscribers::slugs(&tracks),
            tags: super::subscribers::slugs(&tags),
            status: SubscriberStatus::Pending,
            source: row.get(5)?,
            consent_text: row.get(4)?,
            cadence: Some(row.get(10)?),
        })
    };
    let mail = QueuedMail {
        id: row.get(0)?,
        request,
        attempts: u32::try_from(row.get::<i64>(7)?).unwrap_or(u32::MAX),
        queued_at: DateTime::<Utc>::MIN_UTC,
    };
    Ok((mail, row.get(8)?))
}

impl MailQueue for Database {
    fn queue_sign_up(&self, new: &NewSubscriber, now: DateTime<Utc>) -> Result<i64, StoreError> {
        let now = timestamp(now);
        self.conn.query_one(
            "INSERT INTO mail_queue (kind, email, tracks, tags, consent_text, source, state, due_at, created_at, updated_at, cadence)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?7, ?7, ?8)
             RETURNING id",
            params![
                KIND_SIGN_UP,
                new.email,
                new.tracks.join(","),
                new.tags.join(","),
                new.consent_text,
                new.source,
                now,
                new.cadence.as_deref().unwrap_or_default()
            ],
            |r| r.get(0),
        )
    }

    fn queue_welcome(&self, subscriber: i64, now: DateTime<Utc>) -> Result<i64, StoreError> {
        let now = timestamp(now);
        self.conn.query_one(
            "INSERT INTO mail_queue (kind, email, subscriber, state, due_at, created_at, updated_at)
             SELECT ?1, email, id, 'queued', ?3, ?3, ?3 FROM subscribers WHERE id = ?2
             RETURNING id",
            params![KIND_WELCOME, subscriber, now],
            |r| r.get(0),
        )
    }

    fn claim_mail(
        &self,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<QueuedMail>, StoreError> {
        // Several `serve` replicas claim from one queue at once. On
        // PostgreSQL each passes over the rows another is claiming (SKIP
        // LOCKED) instead of waiting for them, and the condition is asked
        // again of the row it updates, so a row claimed meanwhile is not
        // taken twice; on SQLite one writer at a time does both.
        const CLAIMABLE: &str =
            "((state = 'queued' AND due_at <= ?1) OR (state = 'sending' AND claimed_at < ?2))";
        let sql = format!(
            "UPDATE mail_queue SET state = 'sending', claimed_at = ?1, updated_at = ?1
             WHERE {CLAIMABLE} AND id IN (
                 SELECT id FROM mail_queue WHERE {CLAIMABLE}
                 ORDER BY id LIMIT ?3{skip_locked})
             RETURNING id, kind, email, tracks, consent_text, source, subscriber, attempts, created_at, tags, cadence",
            skip_locked = self.conn.skip_locked(),
        );
        let mut claimed = self.conn.query(
            &sql,
            params![timestamp(now), timestamp(stale_before), limit as i64],
            |row| {
                let (mut mail, queued_at) = queued_mail(row)?;
                mail.queued_at = parse_timestamp(&queued_at)?;
                Ok(mail)
            },
        )?;
        claimed.sort_by_key(|m| m.id);
        Ok(claimed)
    }

    fn mail_is_due(
        &self,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.conn.query_one(
            "SELECT EXISTS (SELECT 1 FROM mail_queue
                 WHERE (state = 'queued' AND due_at <= ?1) OR (state = 'sending' AND claimed_at < ?2))",
            params![timestamp(now), timestamp(stale_before)],
            |r| r.get(0),
        )
    }

    fn mail_sent(
        &self,
        id: i64,
        sent_as: &str,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE mail_queue SET state = 'sent', sent_as = ?2, message_id = ?3,
                 attempts = attempts + 1, last_error = NULL, updated_at = ?4
             WHERE id = ?1",
            params![id, sent_as, message_id, timestamp(now)],
        )?;
        Ok(())
    }

    fn mail_dropped(&self, id: i64, reason: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE mail_queue SET state = 'dropped', sent_as = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, reason, timestamp(now)],
        )?;
        Ok(())
    }

    fn mail_deferred(
        &self,
        id: i64,
        error: &str,
        retry_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE mail_queue SET state = 'queued', attempts = attempts + 1, last_error = ?2,
                 due_at = ?3, claimed_at = NULL, updated_at = ?4
             WHERE id = ?1",
            params![id, error, timestamp(retry_at), timestamp(now)],
        )?;
        Ok(())
    }

    fn mail_released(
        &self,
        id: i64,
        retry_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE mail_queue SET state = 'queued', due_at = ?2, claimed_at = NULL, updated_at = ?3
             WHERE id = ?1",
            params![id, timestamp(retry_at), timestamp(now)],
        )?;
        Ok(())
    }

    fn mail_failed(&self, id: i64, error: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE mail_queue SET state = 'failed', attempts = attempts + 1, last_error = ?2,
                 updated_at = ?3
             WHERE id = ?1",
            params![id, error, timestamp(now)],
        )?;
        Ok(())
    }

    fn next_mail_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let due: Option<String> = self.conn.query_one(
            "SELECT min(due_at) FROM mail_queue WHERE state = 'queued'",
            params![],
            |r| r.get(0),
        )?;
        due.as_deref().map(parse_timestamp).transpose()
    }

    fn mail_queue_counts(&self) -> Result<MailQueueCounts, StoreError> {
        let rows = self.conn.query(
            "SELECT state, count(*) FROM mail_queue GROUP BY state",
            params![],
            |r| Ok((r.get::<String>(0)?, r.get::<i64>(1)?)),
        )?;
        let mut counts = MailQueueCounts::default();
        for (state, n) in rows {
            let n = usize::try_from(n).unwrap_or_default();
            match state.as_str() {
                "queued" => counts.queued = n,
                "sending" => counts.sending = n,
                "sent" => counts.sent = n,
                "dropped" => counts.dropped = n,
                _ => counts.failed = n,
            }
        }
        Ok(counts)
    }

    fn purge_mail(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        self.conn.execute(
            "DELETE FROM mail_queue WHERE state IN ('sent', 'dropped', 'failed') AND updated_at < ?1",
            params![timestamp(before)],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SubscriberStore;
    use crate::store::testing::store_test;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn sign_up(email: &str) -> NewSubscriber {
        NewSubscriber {
            email: email.to_string(),
            name: String::new(),
            tracks: vec!["llm".to_string()],
            tags: vec!["kv-cache".to_string()],
            status: SubscriberStatus::Pending,
            source: "web".to_string(),
            consent_text: "2".to_string(),
            cadence: Some(String::new()),
        }
    }

    store_test! {
    fn a_row_is_claimed_once_and_sent_rows_are_not_claimed_again(store) {
        let t0 = at("2026-06-01T10:00:00Z");
        assert!(!store.mail_is_due(t0, t0).unwrap());
        let id = store.queue_sign_up(&sign_up("a@example.com"), t0).unwrap();
        assert!(store.mail_is_due(t0, t0).unwrap());
        let claimed = store.claim_mail(t0, t0, 10).unwrap();
        assert!(
            !store.mail_is_due(t0, t0).unwrap(),
            "claimed, lease running"
        );
        assert_eq!(claimed.len(), 1);
        assert_eq!(
            claimed[0].request,
            MailRequest::SignUp(sign_up("a@example.com"))
        );
        assert_eq!((claimed[0].id, claimed[0].queued_at), (id, t0));
        // Claimed: a second sender sees nothing until the claim is stale.
        assert!(store.claim_mail(t0, t0, 10).unwrap().is_empty());
        store.mail_sent(id, "confirm", "<m@x>", t0).unwrap();
        let later = at("2026-06-02T10:00:00Z");
        assert!(store.claim_mail(later, later, 10).unwrap().is_empty());
        assert_eq!(store.mail_queue_counts().unwrap().sent, 1);
    }
    }

    store_test! {
    fn a_dead_senders_claim_is_taken_over_after_its_lease(store) {
        let t0 = at("2026-06-01T10:00:00Z");
        store.queue_sign_up(&sign_up("a@example.com"), t0).unwrap();
        assert_eq!(store.claim_mail(t0, t0, 10).unwrap().len(), 1);
        let t1 = at("2026-06-01T10:01:00Z");
        assert!(
            store.claim_mail(t1, t0, 10).unwrap().is_empty(),
            "lease not over"
        );
        let t2 = at("2026-06-01T10:20:00Z");
        assert_eq!(store.claim_mail(t2, t1, 10).unwrap().len(), 1);
    }
    }

    store_test! {
    fn a_deferred_row_waits_until_it_is_due(store) {
        let t0 = at("2026-06-01T10:00:00Z");
        let id = store.queue_sign_up(&sign_up("a@example.com"), t0).unwrap();
        store.claim_mail(t0, t0, 10).unwrap();
        let retry = at("2026-06-01T10:05:00Z");
        store.mail_deferred(id, "421 busy", retry, t0).unwrap();
        assert_eq!(store.next_mail_due().unwrap(), Some(retry));
        assert!(store.claim_mail(t0, t0, 10).unwrap().is_empty());
        let claimed = store.claim_mail(retry, t0, 10).unwrap();
        assert_eq!(claimed[0].attempts, 1);
    }
    }

    store_test! {
    fn a_welcome_names_its_subscriber_and_finished_rows_are_purged(store) {
        let t0 = at("2026-06-01T10:00:00Z");
        let new = NewSubscriber {
            status: SubscriberStatus::Active,
            ..sign_up("w@example.com")
        };
        store.save_subscriber(&new, t0).unwrap();
        let subscriber = store.subscriber_by_email("w@example.com").unwrap().unwrap();
        let id = store.queue_welcome(subscriber.id, t0).unwrap();
        let claimed = store.claim_mail(t0, t0, 10).unwrap();
        assert_eq!(
            claimed[0].request,
            MailRequest::Welcome {
                subscriber: subscriber.id
            }
        );
        store.mail_dropped(id, "suppressed", t0).unwrap();
        assert_eq!(store.purge_mail(t0).unwrap(), 0, "not older than the cut");
        assert_eq!(store.purge_mail(at("2026-06-09T00:00:00Z")).unwrap(), 1);
        assert_eq!(
            store.mail_queue_counts().unwrap(),
            MailQueueCounts::default()
        );
    }
    }
}
