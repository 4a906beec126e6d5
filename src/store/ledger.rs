//! The delivery ledger: which digests exist, which shorts each carried, and
//! what happened to each (digest, subscriber) pair.
//!
//! A delivery is written as `sending` before the message goes to the
//! transport and as `sent` after the server accepted it, each in its own
//! committed transaction, so after a crash only messages in flight are in doubt.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Sqlite, StoreError, parse_timestamp, timestamp};

/// A digest as recorded: its number, slot and period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestRecord {
    pub number: i64,
    pub slot: DateTime<Utc>,
    pub period_start: DateTime<Utc>,
    pub completed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Handed to the transport; not yet confirmed.
    Sending,
    Sent,
    /// Temporary failure; the next run tries again.
    Deferred,
    /// Permanent failure; not tried again for this digest.
    Failed,
    /// Nothing in the subscriber's tracks.
    Skipped,
}

impl DeliveryState {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Sending => "sending",
            DeliveryState::Sent => "sent",
            DeliveryState::Deferred => "deferred",
            DeliveryState::Failed => "failed",
            DeliveryState::Skipped => "skipped",
        }
    }

    /// Whether this delivery is settled for good.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryState::Sent | DeliveryState::Failed | DeliveryState::Skipped
        )
    }
}

fn digest_record(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<(i64, String, String, Option<String>)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn to_record(
    (number, slot, start, completed): (i64, String, String, Option<String>),
) -> Result<DigestRecord, StoreError> {
    Ok(DigestRecord {
        number,
        slot: parse_timestamp(&slot)?,
        period_start: parse_timestamp(&start)?,
        completed: completed.is_some(),
    })
}

/// The delivery ledger: which digests exist, which shorts each carried, and
/// what happened to each subscriber's copy. Only `digest` writes deliveries.
pub trait Ledger {
    fn digest_count(&self) -> Result<i64, StoreError>;

    fn digest_for_slot(&self, slot: DateTime<Utc>) -> Result<Option<DigestRecord>, StoreError>;

    /// The oldest digest that was started but not finished (a crash, or SMTP down).
    fn unfinished_digest(&self) -> Result<Option<DigestRecord>, StoreError>;

    /// Every digest, oldest first.
    fn digests(&self) -> Result<Vec<DigestRecord>, StoreError>;

    /// The digests readers can see in the archive, oldest first: finished
    /// ones, and unfinished ones that reached at least one inbox.
    fn sent_digests(&self) -> Result<Vec<DigestRecord>, StoreError>;

    /// Where the first digest's period began: shorts dated before it are the
    /// back catalogue, which digests never mail.
    fn first_period_start(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Ids of every short any digest has carried (see `Short::id`).
    fn carried_ids(&self) -> Result<HashSet<String>, StoreError>;

    /// Ids of the shorts the digest carries, in the order they were recorded.
    fn digest_short_ids(&self, number: i64) -> Result<Vec<String>, StoreError>;

    /// Records a new digest and the shorts it carries (id, track), in one
    /// transaction.
    fn create_digest(
        &self,
        slot: DateTime<Utc>,
        period_start: DateTime<Utc>,
        shorts: &[(&str, &str)],
        now: DateTime<Utc>,
    ) -> Result<DigestRecord, StoreError>;

    fn complete_digest(&self, number: i64, now: DateTime<Utc>) -> Result<(), StoreError>;

    fn delivery_state(
        &self,
        digest: i64,
        subscriber: i64,
    ) -> Result<Option<DeliveryState>, StoreError>;

    /// Records a delivery as handed to the transport under `message_id`,
    /// not yet confirmed; counts an attempt.
    fn mark_sending(
        &self,
        digest: i64,
        subscriber: i64,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Records a delivery the server accepted.
    fn mark_sent(&self, digest: i64, subscriber: i64, now: DateTime<Utc>)
    -> Result<(), StoreError>;

    /// Records that the digest had nothing in the subscriber's tracks.
    fn mark_skipped(
        &self,
        digest: i64,
        subscriber: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Records a permanent failure: this digest is not tried again for them.
    fn mark_failed(
        &self,
        digest: i64,
        subscriber: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Records a temporary failure: the next run tries again.
    fn mark_deferred(
        &self,
        digest: i64,
        subscriber: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Every delivery of `digest`, in subscriber order.
    fn deliveries(&self, digest: i64) -> Result<Vec<Delivery>, StoreError>;

    /// Every delivery to `subscriber`, as (digest, delivery), oldest digest first.
    fn subscriber_deliveries(&self, subscriber: i64) -> Result<Vec<(i64, Delivery)>, StoreError>;
}

impl Ledger for Sqlite {
    fn digest_count(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM digests", [], |r| r.get(0))?)
    }

    fn digest_for_slot(&self, slot: DateTime<Utc>) -> Result<Option<DigestRecord>, StoreError> {
        self.conn
            .query_row(
                "SELECT number, slot, period_start, completed_at FROM digests WHERE slot = ?1",
                [timestamp(slot)],
                digest_record,
            )
            .optional()?
            .map(to_record)
            .transpose()
    }

    fn unfinished_digest(&self) -> Result<Option<DigestRecord>, StoreError> {
        self.conn
            .query_row(
                "SELECT number, slot, period_start, completed_at FROM digests
                 WHERE completed_at IS NULL ORDER BY number LIMIT 1",
                [],
                digest_record,
            )
            .optional()?
            .map(to_record)
            .transpose()
    }

    fn digests(&self) -> Result<Vec<DigestRecord>, StoreError> {
        let mut statement = self.conn.prepare(
            "SELECT number, slot, period_start, completed_at FROM digests ORDER BY number",
        )?;
        let rows = statement.query_map([], digest_record)?;
        rows.map(|r| to_record(r?)).collect()
    }

    fn sent_digests(&self) -> Result<Vec<DigestRecord>, StoreError> {
        let mut statement = self.conn.prepare(
            "SELECT number, slot, period_start, completed_at FROM digests d
             WHERE completed_at IS NOT NULL
                OR EXISTS (SELECT 1 FROM deliveries WHERE digest = d.number AND state = 'sent')
             ORDER BY number",
        )?;
        let rows = statement.query_map([], digest_record)?;
        rows.map(|r| to_record(r?)).collect()
    }

    fn first_period_start(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let start: Option<String> = self
            .conn
            .query_row(
                "SELECT period_start FROM digests ORDER BY number LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        start.as_deref().map(parse_timestamp).transpose()
    }

    fn carried_ids(&self) -> Result<HashSet<String>, StoreError> {
        let mut statement = self.conn.prepare("SELECT short_id FROM digest_shorts")?;
        let rows = statement.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn digest_short_ids(&self, number: i64) -> Result<Vec<String>, StoreError> {
        let mut statement = self
            .conn
            .prepare("SELECT short_id FROM digest_shorts WHERE digest = ?1 ORDER BY rowid")?;
        let rows = statement.query_map([number], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn create_digest(
        &self,
        slot: DateTime<Utc>,
        period_start: DateTime<Utc>,
        shorts: &[(&str, &str)],
        now: DateTime<Utc>,
    ) -> Result<DigestRecord, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let number: i64 = tx.query_row(
            "SELECT coalesce(max(number), 0) + 1 FROM digests",
            [],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO digests (number, slot, period_start, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![
                number,
                timestamp(slot),
                timestamp(period_start),
                timestamp(now)
            ],
        )?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO digest_shorts (digest, short_id, track) VALUES (?1, ?2, ?3)",
            )?;
            for (id, track) in shorts {
                insert.execute(params![number, id, track])?;
            }
        }
        tx.commit()?;
        Ok(DigestRecord {
            number,
            slot,
            period_start,
            completed: false,
        })
    }

    fn complete_digest(&self, number: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE digests SET completed_at = ?2 WHERE number = ?1 AND completed_at IS NULL",
            params![number, timestamp(now)],
        )?;
        Ok(())
    }

    fn delivery_state(
        &self,
        digest: i64,
        subscriber: i64,
    ) -> Result<Option<DeliveryState>, StoreError> {
        let state: Option<String> = self
            .conn
            .prepare_cached("SELECT state FROM deliveries WHERE digest = ?1 AND subscriber = ?2")?
            .query_row(params![digest, subscriber], |r| r.get(0))
            .optional()?;
        state.map(|s| parse_state(&s)).transpose()
    }

    fn mark_sending(
        &self,
        digest: i64,
        subscriber: i64,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let change = Change {
            message_id: Some(message_id),
            ..Change::new(DeliveryState::Sending, now)
        };
        self.record_delivery(digest, subscriber, change)
    }

    fn mark_sent(
        &self,
        digest: i64,
        subscriber: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.record_delivery(digest, subscriber, Change::new(DeliveryState::Sent, now))
    }

    fn mark_skipped(
        &self,
        digest: i64,
        subscriber: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.record_delivery(digest, subscriber, Change::new(DeliveryState::Skipped, now))
    }

    fn mark_failed(
        &self,
        digest: i64,
        subscriber: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let change = Change {
            error: Some(reason),
            ..Change::new(DeliveryState::Failed, now)
        };
        self.record_delivery(digest, subscriber, change)
    }

    fn mark_deferred(
        &self,
        digest: i64,
        subscriber: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let change = Change {
            error: Some(reason),
            ..Change::new(DeliveryState::Deferred, now)
        };
        self.record_delivery(digest, subscriber, change)
    }

    fn deliveries(&self, digest: i64) -> Result<Vec<Delivery>, StoreError> {
        let rows = self.delivery_rows("digest = ?1 ORDER BY subscriber", digest)?;
        Ok(rows.into_iter().map(|(_, delivery)| delivery).collect())
    }

    fn subscriber_deliveries(&self, subscriber: i64) -> Result<Vec<(i64, Delivery)>, StoreError> {
        self.delivery_rows("subscriber = ?1 ORDER BY digest", subscriber)
    }
}

impl Sqlite {
    /// Deliveries matching `filter` (a WHERE clause with one parameter), with their digest.
    fn delivery_rows(&self, filter: &str, value: i64) -> Result<Vec<(i64, Delivery)>, StoreError> {
        let sql = format!(
            "SELECT digest, subscriber, state, attempts, last_error, message_id FROM deliveries WHERE {filter}"
        );
        let mut statement = self.conn.prepare(&sql)?;
        let rows = statement.query_map([value], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get::<_, String>(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?;
        rows.map(|row| {
            let (digest, subscriber, state, attempts, last_error, message_id) = row?;
            let delivery = Delivery {
                subscriber,
                state: parse_state(&state)?,
                attempts,
                last_error,
                message_id,
            };
            Ok((digest, delivery))
        })
        .collect()
    }
}

impl Sqlite {
    /// Writes one delivery's new state; a message id or error left out keeps
    /// the one recorded before.
    fn record_delivery(
        &self,
        digest: i64,
        subscriber: i64,
        change: Change<'_>,
    ) -> Result<(), StoreError> {
        let attempt = i64::from(change.state == DeliveryState::Sending);
        self.conn
            .prepare_cached(
                "INSERT INTO deliveries (digest, subscriber, state, attempts, last_error, message_id, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (digest, subscriber) DO UPDATE SET
                     state = excluded.state,
                     attempts = attempts + excluded.attempts,
                     last_error = coalesce(excluded.last_error, last_error),
                     message_id = coalesce(excluded.message_id, message_id),
                     updated_at = excluded.updated_at",
            )?
            .execute(params![
                digest,
                subscriber,
                change.state.as_str(),
                attempt,
                change.error,
                change.message_id,
                timestamp(change.now)
            ])?;
        Ok(())
    }
}

/// A delivery's new state, as the `mark_…` methods record it.
struct Change<'a> {
    state: DeliveryState,
    message_id: Option<&'a str>,
    error: Option<&'a str>,
    now: DateTime<Utc>,
}

impl Change<'_> {
    fn new(state: DeliveryState, now: DateTime<Utc>) -> Self {
        Change {
            state,
            message_id: None,
            error: None,
            now,
        }
    }
}

/// What the ledger holds about one (digest, subscriber) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub subscriber: i64,
    pub state: DeliveryState,
    /// Times the message was handed to the transport.
    pub attempts: i64,
    /// The latest error any attempt met, kept after a later success.
    pub last_error: Option<String>,
    pub message_id: Option<String>,
}

fn parse_state(text: &str) -> Result<DeliveryState, StoreError> {
    [
        DeliveryState::Sending,
        DeliveryState::Sent,
        DeliveryState::Deferred,
        DeliveryState::Failed,
        DeliveryState::Skipped,
    ]
    .into_iter()
    .find(|d| d.as_str() == text)
    .ok_or_else(|| StoreError::Corrupt(format!("delivery state {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, day, 8, 0, 0).unwrap()
    }

    #[test]
    fn a_short_is_carried_by_one_digest_only() {
        let store = Sqlite::in_memory().unwrap();
        let first = store
            .create_digest(t(8), t(1), &[("a", "llm"), ("b", "llm")], t(8))
            .unwrap();
        assert_eq!(first.number, 1);
        assert_eq!(store.digest_short_ids(1).unwrap(), ["a", "b"]);
        assert!(
            store
                .create_digest(t(15), t(8), &[("a", "llm")], t(15))
                .is_err(),
            "slug a is taken"
        );
        assert_eq!(
            store.digest_count().unwrap(),
            1,
            "the failed digest left nothing behind"
        );
        let second = store
            .create_digest(t(15), t(8), &[("c", "llm")], t(15))
            .unwrap();
        assert_eq!(second.number, 2);
        assert_eq!(store.carried_ids().unwrap().len(), 3);
    }

    #[test]
    fn deliveries_move_through_states_and_count_attempts() {
        let store = Sqlite::in_memory().unwrap();
        let digest = store
            .create_digest(t(8), t(1), &[("a", "llm")], t(8))
            .unwrap();
        assert_eq!(store.unfinished_digest().unwrap(), Some(digest.clone()));
        store.mark_sending(1, 7, "<m@x>", t(8)).unwrap();
        store.mark_deferred(1, 7, "451 later", t(8)).unwrap();
        store.mark_sending(1, 7, "<m@x>", t(8)).unwrap();
        store.mark_sent(1, 7, t(8)).unwrap();
        assert_eq!(
            store.delivery_state(1, 7).unwrap(),
            Some(DeliveryState::Sent)
        );
        let (attempts, error, id): (i64, String, String) = store
            .conn
            .query_row(
                "SELECT attempts, last_error, message_id FROM deliveries",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            (attempts, error.as_str(), id.as_str()),
            (2, "451 later", "<m@x>")
        );
        store.complete_digest(1, t(8)).unwrap();
        assert_eq!(store.unfinished_digest().unwrap(), None);
        assert!(store.digest_for_slot(t(8)).unwrap().unwrap().completed);
    }

    #[test]
    fn deliveries_list_each_subscribers_state_attempts_and_error() {
        let store = Sqlite::in_memory().unwrap();
        store
            .create_digest(t(8), t(1), &[("a", "llm")], t(8))
            .unwrap();
        store.mark_sending(1, 9, "<m@example.org>", t(8)).unwrap();
        store.mark_failed(1, 9, "550 no", t(8)).unwrap();
        store.mark_skipped(1, 3, t(8)).unwrap();
        let failed = Delivery {
            subscriber: 9,
            state: DeliveryState::Failed,
            attempts: 1,
            last_error: Some("550 no".into()),
            message_id: Some("<m@example.org>".into()),
        };
        let skipped = Delivery {
            subscriber: 3,
            state: DeliveryState::Skipped,
            attempts: 0,
            last_error: None,
            message_id: None,
        };
        assert_eq!(store.deliveries(1).unwrap(), [skipped, failed]);
        assert!(store.deliveries(2).unwrap().is_empty());
    }
}
