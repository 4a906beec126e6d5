//! The delivery ledger: which digests exist, which shorts each carried, and
//! what happened to each (digest, subscriber) pair.
//!
//! A delivery is written as `sending` before the message goes to the
//! transport and as `sent` after the server accepted it, each in its own
//! committed transaction, so after a crash only messages in flight are in doubt.

use std::collections::HashMap;

use super::sql::{Lock, Param, Row, params};

/// How long a claim on a shared ledger (PostgreSQL) keeps other senders
/// off a delivery: longer than any message takes, retries included, so
/// only a dead sender's claims are taken over.
pub const CLAIM_LEASE: chrono::Duration = chrono::Duration::minutes(10);

/// Whether an upsert may take the delivery already there: a deferred one,
/// or one claimed by a sender whose lease ran out by the upsert's own time
/// (`excluded.updated_at`); SQLite's claims have no lease.
const CLAIMABLE: &str = "deliveries.state = 'deferred'
    OR (deliveries.state = 'sending'
        AND (deliveries.lease_until IS NULL OR deliveries.lease_until <= excluded.updated_at))";

/// The lock digests are recorded under, so each slot gets one ("digest").
const DIGEST_LOCK: i64 = 0x6469_6765_7374;

/// The lock a digest's claims hold shared and its completion exclusively
/// ("claim" and the digest's number).
fn claims_lock(digest: i64) -> i64 {
    (0x0063_6c61_696d_i64 << 24) ^ digest
}
use super::subscribers::RECEIVING;
use super::{Database, Members, StoreError, parse_timestamp, timestamp};
use chrono::{DateTime, Utc};

/// A digest as recorded: its number, cadence, slot and period, and which
/// publications it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestRecord {
    /// Unique across cadences: the ledger, Message-IDs and bounces name it.
    pub number: i64,
    /// The cadence's name; "" for the default (`[digest] schedule`).
    pub cadence: String,
    /// Its place among its cadence's digests, from 1: what readers see ("#12").
    pub issue: i64,
    pub slot: DateTime<Utc>,
    pub period_start: DateTime<Utc>,
    /// The publication its issue starts after; `None` for a cadence's first,
    /// whose issue is what was dated after `period_start`.
    pub since: Option<i64>,
    /// The last publication it carries: every reader's copy ends here.
    pub through: i64,
    pub completed: bool,
}

/// A digest to record, as planned.
#[derive(Debug, Clone, Copy)]
pub struct NewDigest<'a> {
    pub cadence: &'a str,
    pub slot: DateTime<Utc>,
    pub period_start: DateTime<Utc>,
    pub since: Option<i64>,
    /// Shorts first seen published by this plan, in the order they are
    /// numbered: after the highest publication recorded, so that
    /// `through` is the last of them.
    pub first_seen: &'a [&'a str],
    pub through: i64,
    /// What its issue carries: (short id, track).
    pub shorts: &'a [(&'a str, &'a str)],
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

const DIGEST_COLUMNS: &str =
    "number, cadence, issue, slot, period_start, since_seq, through_seq, completed_at";

type DigestRow = (
    i64,
    String,
    i64,
    String,
    String,
    Option<i64>,
    i64,
    Option<String>,
);

fn digest_record(row: &Row<'_>) -> Result<DigestRecord, StoreError> {
    to_record(digest_row(row)?)
}

fn digest_row(row: &Row<'_>) -> Result<DigestRow, StoreError> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
    ))
}

fn to_record(
    (number, cadence, issue, slot, start, since, through, completed): DigestRow,
) -> Result<DigestRecord, StoreError> {
    Ok(DigestRecord {
        number,
        cadence,
        issue,
        slot: parse_timestamp(&slot)?,
        period_start: parse_timestamp(&start)?,
        since,
        through,
        completed: completed.is_some(),
    })
}

/// The delivery ledger: which shorts have been published and in what order,
/// which digests exist and what they carry, where each subscriber stands,
/// and what happened to each subscriber's copy. Only `digest` writes deliveries.
pub trait Ledger {
    fn digest_count(&self) -> Result<i64, StoreError>;

    fn digest_for_slot(
        &self,
        cadence: &str,
        slot: DateTime<Utc>,
    ) -> Result<Option<DigestRecord>, StoreError>;

    /// The cadence's oldest digest that was started but not finished (a
    /// crash, or SMTP down).
    fn unfinished_digest(&self, cadence: &str) -> Result<Option<DigestRecord>, StoreError>;

    /// The cadences with an unfinished digest.
    fn unfinished_cadences(&self) -> Result<Vec<String>, StoreError>;

    /// The cadence's newest digest.
    fn latest_digest(&self, cadence: &str) -> Result<Option<DigestRecord>, StoreError>;

    /// Every digest, oldest first.
    fn digests(&self) -> Result<Vec<DigestRecord>, StoreError>;

    /// The digests of the default cadence readers can see in the archive,
    /// oldest first: finished ones, and unfinished ones that reached at
    /// least one inbox; not one whose issue was empty (it went only to
    /// readers who had switched cadence).
    fn sent_digests(&self) -> Result<Vec<DigestRecord>, StoreError>;

    /// Where the first digest's period began: shorts dated before it are the
    /// back catalogue, which digests never mail.
    fn first_period_start(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Every short seen published, by id, with its place in the order they
    /// were first seen (its publication number).
    fn publications(&self) -> Result<HashMap<String, i64>, StoreError>;

    /// Ids of the shorts the digest's issue carries, in the order they were recorded.
    fn digest_short_ids(&self, number: i64) -> Result<Vec<String>, StoreError>;

    /// Records a new digest, the shorts first seen published with it, and
    /// what its issue carries, in one transaction.
    fn create_digest(
        &self,
        new: &NewDigest<'_>,
        now: DateTime<Utc>,
    ) -> Result<DigestRecord, StoreError>;

    /// Marks the digest complete unless a delivery of it is in another
    /// sender's hands (claimed under a lease still running, on a shared
    /// ledger) or deferred for an active subscriber; whether it is
    /// complete now. A claim of a sender that died without a lease (SQLite)
    /// or for a subscriber who left does not hold it open: the run that
    /// walked everyone settled what it could.
    fn complete_digest(&self, number: i64, now: DateTime<Utc>) -> Result<bool, StoreError>;

    fn delivery_state(
        &self,
        digest: i64,
        subscriber: i64,
    ) -> Result<Option<DeliveryState>, StoreError>;

    /// Where the copy claimed for the subscriber starts: after this
    /// publication, or the issue when `None` (or when nothing was claimed).
    fn claimed_since(&self, digest: i64, subscriber: i64) -> Result<Option<i64>, StoreError>;

    /// The last publication settled for the subscriber; `None` before their
    /// first digest (since they last became active).
    fn watermark(&self, subscriber: i64) -> Result<Option<i64>, StoreError>;

    /// Moves the subscriber's watermark up to `through` (never down).
    fn settle_through(&self, subscriber: i64, through: i64) -> Result<(), StoreError>;

    /// The lowest watermark among `members` who have one.
    fn lowest_watermark(&self, members: Members<'_>) -> Result<Option<i64>, StoreError>;

    /// Claims a delivery for this run, to hand to the transport under
    /// `message_id` (`sending`, not yet confirmed; an attempt counted),
    /// unless it is settled or another sender holds it: false then, and
    /// nothing changes. `since` is where the copy starts (`None`: the
    /// issue); a claim made again keeps the first one's.
    ///
    /// On PostgreSQL, where several senders share the ledger, a claim is
    /// a lease: a `sending` delivery whose sender died is claimed again
    /// once [`CLAIM_LEASE`] has passed. On SQLite the run lock keeps every
    /// other sender out, so a rerun claims it again at once.
    fn claim(
        &self,
        digest: i64,
        subscriber: i64,
        message_id: &str,
        since: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

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

    /// Records that the digest has nothing for a subscriber no sender has
    /// claimed, or whose claim is free to take (as [`Ledger::claim`]);
    /// false, changing nothing, when another sender holds or settled it.
    fn skip_unclaimed(
        &self,
        digest: i64,
        subscriber: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

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

impl Ledger for Database {
    fn digest_count(&self) -> Result<i64, StoreError> {
        self.conn
            .query_one("SELECT count(*) FROM digests", params![], |r| r.get(0))
    }

    fn digest_for_slot(
        &self,
        cadence: &str,
        slot: DateTime<Utc>,
    ) -> Result<Option<DigestRecord>, StoreError> {
        self.one_digest(
            "cadence = ?1 AND slot = ?2",
            params![cadence, timestamp(slot)],
        )
    }

    fn unfinished_digest(&self, cadence: &str) -> Result<Option<DigestRecord>, StoreError> {
        self.one_digest(
            "cadence = ?1 AND completed_at IS NULL ORDER BY number LIMIT 1",
            params![cadence],
        )
    }

    fn unfinished_cadences(&self) -> Result<Vec<String>, StoreError> {
        self.conn.query(
            "SELECT DISTINCT cadence FROM digests WHERE completed_at IS NULL",
            params![],
            |r| r.get(0),
        )
    }

    fn latest_digest(&self, cadence: &str) -> Result<Option<DigestRecord>, StoreError> {
        self.one_digest(
            "cadence = ?1 ORDER BY number DESC LIMIT 1",
            params![cadence],
        )
    }

    fn digests(&self) -> Result<Vec<DigestRecord>, StoreError> {
        self.digest_list("TRUE ORDER BY number")
    }

    fn sent_digests(&self) -> Result<Vec<DigestRecord>, StoreError> {
        self.digest_list(
            "cadence = '' AND (completed_at IS NOT NULL
                OR EXISTS (SELECT 1 FROM deliveries WHERE digest = d.number AND state = 'sent'))
             AND EXISTS (SELECT 1 FROM digest_shorts WHERE digest = d.number)
             ORDER BY number",
        )
    }

    fn first_period_start(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let start: Option<String> = self.conn.query_opt(
            "SELECT period_start FROM digests ORDER BY number LIMIT 1",
            params![],
            |r| r.get(0),
        )?;
        start.as_deref().map(parse_timestamp).transpose()
    }

    fn publications(&self) -> Result<HashMap<String, i64>, StoreError> {
        let rows = self
            .conn
            .query("SELECT short_id, seq FROM publications", params![], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        Ok(rows.into_iter().collect())
    }

    fn digest_short_ids(&self, number: i64) -> Result<Vec<String>, StoreError> {
        self.conn.query(
            "SELECT short_id FROM digest_shorts WHERE digest = ?1 ORDER BY rowid",
            params![number],
            |r| r.get(0),
        )
    }

    fn create_digest(
        &self,
        new: &NewDigest<'_>,
        now: DateTime<Utc>,
    ) -> Result<DigestRecord, StoreError> {
        let tx = self.conn.transaction(Lock::Immediate)?;
        // Senders on other hosts may plan the same slot at once: one
        // records it, and the others find it here and resume it.
        self.conn.lock_exclusively(DIGEST_LOCK)?;
        if self.digest_for_slot(new.cadence, new.slot)?.is_some() {
            return Err(StoreError::Raced(format!(
                "another sender recorded the digest for {} first",
                timestamp(new.slot)
            )));
        }
        self.record_publications(new, now)?;
        let (number, issue): (i64, i64) = self.conn.query_one(
            "SELECT (SELECT coalesce(max(number), 0) + 1 FROM digests),
                    (SELECT coalesce(max(issue), 0) + 1 FROM digests WHERE cadence = ?1)",
            params![new.cadence],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        self.conn.execute(
            "INSERT INTO digests (number, cadence, issue, slot, period_start, since_seq, through_seq, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                number,
                new.cadence,
                issue,
                timestamp(new.slot),
                timestamp(new.period_start),
                new.since,
                new.through,
                timestamp(now)
            ],
        )?;
        for (id, track) in new.shorts {
            self.conn.execute(
                "INSERT INTO digest_shorts (digest, short_id, track) VALUES (?1, ?2, ?3)",
                params![number, id, track],
            )?;
        }
        tx.commit()?;
        Ok(DigestRecord {
            number,
            cadence: new.cadence.to_string(),
            issue,
            slot: new.slot,
            period_start: new.period_start,
            since: new.since,
            through: new.through,
            completed: false,
        })
    }

    fn complete_digest(&self, number: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let tx = self.conn.transaction(Lock::Immediate)?;
        // Waits for claims other senders have made and not committed: the
        // check below must see them, or a digest could be completed with
        // a claim still open and that claim never settled.
        self.conn.lock_exclusively(claims_lock(number))?;
        self.conn.execute(
            "UPDATE digests SET completed_at = ?2 WHERE number = ?1 AND completed_at IS NULL
                 AND NOT EXISTS (SELECT 1 FROM deliveries d JOIN subscribers s ON s.id = d.subscriber
                     WHERE d.digest = ?1
                       AND ((d.state = 'sending' AND d.lease_until > ?2)
                            OR (d.state = 'deferred' AND s.status = 'active')))",
            params![number, timestamp(now)],
        )?;
        let completed: Option<String> = self.conn.query_one(
            "SELECT completed_at FROM digests WHERE number = ?1",
            params![number],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(completed.is_some())
    }

    fn delivery_state(
        &self,
        digest: i64,
        subscriber: i64,
    ) -> Result<Option<DeliveryState>, StoreError> {
        let state: Option<String> = self.conn.query_opt(
            "SELECT state FROM deliveries WHERE digest = ?1 AND subscriber = ?2",
            params![digest, subscriber],
            |r| r.get(0),
        )?;
        state.map(|s| parse_state(&s)).transpose()
    }

    fn claimed_since(&self, digest: i64, subscriber: i64) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_opt(
                "SELECT since_seq FROM deliveries WHERE digest = ?1 AND subscriber = ?2",
                params![digest, subscriber],
                |r| r.get(0),
            )?
            .flatten())
    }

    fn watermark(&self, subscriber: i64) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_opt(
                "SELECT through_seq FROM subscribers WHERE id = ?1",
                params![subscriber],
                |r| r.get(0),
            )?
            .flatten())
    }

    fn settle_through(&self, subscriber: i64, through: i64) -> Result<(), StoreError> {
        // Up only: a late or repeated settle never moves a reader back.
        self.conn.execute(
            "UPDATE subscribers SET through_seq = ?2
             WHERE id = ?1 AND (through_seq IS NULL OR through_seq < ?2)",
            params![subscriber, through],
        )?;
        Ok(())
    }

    fn lowest_watermark(&self, members: Members<'_>) -> Result<Option<i64>, StoreError> {
        let (of, key) = members.condition(1);
        self.conn.query_one(
            &format!("SELECT min(through_seq) FROM subscribers WHERE {RECEIVING} AND {of}"),
            params![key],
            |r| r.get(0),
        )
    }

    fn claim(
        &self,
        digest: i64,
        subscriber: i64,
        message_id: &str,
        since: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let lease = self
            .conn
            .is_postgres()
            .then(|| timestamp(now + CLAIM_LEASE));
        // Shared with every other sender's claims, so the digest is not
        // completed under a claim not yet committed (see complete_digest).
        self.conn.lock_shared(claims_lock(digest))?;
        // One statement, so two senders claiming at once cannot both win:
        // the second waits for the first's row and then finds it held.
        let claimed = self.conn.execute(
            &format!("INSERT INTO deliveries (digest, subscriber, state, attempts, message_id, updated_at, since_seq, lease_until)
             VALUES (?1, ?2, 'sending', 1, ?3, ?4, ?5, ?6)
             ON CONFLICT (digest, subscriber) DO UPDATE SET
                 state = 'sending',
                 attempts = deliveries.attempts + 1,
                 message_id = excluded.message_id,
                 updated_at = excluded.updated_at,
                 lease_until = excluded.lease_until
             WHERE {CLAIMABLE}"),
            params![digest, subscriber, message_id, timestamp(now), since, lease],
        )?;
        Ok(claimed == 1)
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

    fn skip_unclaimed(
        &self,
        digest: i64,
        subscriber: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.conn.lock_shared(claims_lock(digest))?;
        let skipped = self.conn.execute(
            &format!(
                "INSERT INTO deliveries (digest, subscriber, state, attempts, updated_at)
                 VALUES (?1, ?2, 'skipped', 0, ?3)
                 ON CONFLICT (digest, subscriber) DO UPDATE SET
                     state = 'skipped', updated_at = excluded.updated_at, lease_until = NULL
                 WHERE {CLAIMABLE}"
            ),
            params![digest, subscriber, timestamp(now)],
        )?;
        Ok(skipped == 1)
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

impl Database {
    /// The digest `filter` (a WHERE clause) selects, if any.
    fn one_digest(
        &self,
        filter: &str,
        values: &[&dyn Param],
    ) -> Result<Option<DigestRecord>, StoreError> {
        let sql = format!("SELECT {DIGEST_COLUMNS} FROM digests d WHERE {filter}");
        self.conn.query_opt(&sql, values, digest_record)
    }

    /// The digests `filter` (a WHERE clause with its ORDER BY) selects.
    fn digest_list(&self, filter: &str) -> Result<Vec<DigestRecord>, StoreError> {
        let sql = format!("SELECT {DIGEST_COLUMNS} FROM digests d WHERE {filter}");
        self.conn.query(&sql, params![], digest_record)
    }

    /// Deliveries matching `filter` (a WHERE clause with one parameter), with their digest.
    fn delivery_rows(&self, filter: &str, value: i64) -> Result<Vec<(i64, Delivery)>, StoreError> {
        let sql = format!(
            "SELECT digest, subscriber, state, attempts, last_error, message_id FROM deliveries WHERE {filter}"
        );
        self.conn.query(&sql, params![value], |r| {
            let delivery = Delivery {
                subscriber: r.get(1)?,
                state: parse_state(&r.get::<String>(2)?)?,
                attempts: r.get(3)?,
                last_error: r.get(4)?,
                message_id: r.get(5)?,
            };
            Ok((r.get(0)?, delivery))
        })
    }
}

impl Database {
    /// Writes one delivery's new state; a message id or error left out keeps
    /// the one recorded before.
    fn record_delivery(
        &self,
        digest: i64,
        subscriber: i64,
        change: Change<'_>,
    ) -> Result<(), StoreError> {
        let attempt = i64::from(change.state == DeliveryState::Sending);
        self.conn.execute(
                "INSERT INTO deliveries (digest, subscriber, state, attempts, last_error, message_id, updated_at, since_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (digest, subscriber) DO UPDATE SET
                     state = excluded.state,
                     attempts = deliveries.attempts + excluded.attempts,
                     last_error = coalesce(excluded.last_error, deliveries.last_error),
                     message_id = coalesce(excluded.message_id, deliveries.message_id),
                     updated_at = excluded.updated_at,
                     lease_until = NULL",
            params![
                digest,
                subscriber,
                change.state.as_str(),
                attempt,
                change.error,
                change.message_id,
                timestamp(change.now),
                change.since
            ],
        )?;
        Ok(())
    }
}

impl Database {
    /// Numbers the shorts first seen published with a new digest, after the
    /// highest recorded; refuses when that does not end at the digest's
    /// `through` (the publications changed since the plan was made).
    fn record_publications(
        &self,
        new: &NewDigest<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let highest: i64 = self.conn.query_one(
            "SELECT coalesce(max(seq), 0) FROM publications",
            params![],
            |r| r.get(0),
        )?;
        if highest + new.first_seen.len() as i64 != new.through {
            return Err(StoreError::Raced(format!(
                "the digest was planned through publication {} but {} are recorded and {} are new",
                new.through,
                highest,
                new.first_seen.len()
            )));
        }
        for (seq, id) in (highest + 1..).zip(new.first_seen) {
            self.conn.execute(
                "INSERT INTO publications (seq, short_id, seen_at) VALUES (?1, ?2, ?3)",
                params![seq, id, timestamp(now)],
            )?;
        }
        Ok(())
    }
}

/// A delivery's new state, as the `mark_…` methods record it.
struct Change<'a> {
    state: DeliveryState,
    message_id: Option<&'a str>,
    error: Option<&'a str>,
    /// Only for a first claim: where the copy starts.
    since: Option<i64>,
    now: DateTime<Utc>,
}

impl Change<'_> {
    fn new(state: DeliveryState, now: DateTime<Utc>) -> Self {
        Change {
            state,
            message_id: None,
            error: None,
            since: None,
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
    use crate::store::testing::store_test;
    use chrono::TimeZone;

    const DEFAULT: Members<'static> = Members::Default { others: &["daily"] };

    fn t(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, day, 8, 0, 0).unwrap()
    }

    /// A digest of the default cadence carrying `ids`, all first seen now.
    fn digest(
        store: &Database,
        slot: DateTime<Utc>,
        start: DateTime<Utc>,
        ids: &[&str],
    ) -> Result<DigestRecord, StoreError> {
        let shorts: Vec<(&str, &str)> = ids.iter().map(|id| (*id, "llm")).collect();
        let highest = store.publications()?.len() as i64;
        let since = store.latest_digest("")?.map(|d| d.through);
        let new = NewDigest {
            cadence: "",
            slot,
            period_start: start,
            since,
            first_seen: ids,
            through: highest + ids.len() as i64,
            shorts: &shorts,
        };
        store.create_digest(&new, slot)
    }

    store_test! {
    fn a_short_is_published_once(store) {
        let first = digest(&store, t(8), t(1), &["a", "b"]).unwrap();
        assert_eq!(
            (first.number, first.issue, first.since, first.through),
            (1, 1, None, 2)
        );
        assert_eq!(store.digest_short_ids(1).unwrap(), ["a", "b"]);
        assert!(
            digest(&store, t(15), t(8), &["a"]).is_err(),
            "a is published already"
        );
        assert_eq!(
            store.digest_count().unwrap(),
            1,
            "the failed digest left nothing behind"
        );
        let stale = NewDigest {
            cadence: "daily",
            slot: t(9),
            period_start: t(8),
            since: None,
            first_seen: &["c"],
            through: 2,
            shorts: &[("c", "llm")],
        };
        assert!(
            store.create_digest(&stale, t(9)).is_err(),
            "planned on stale publications"
        );
    }
    }

    store_test! {
    fn digests_are_numbered_per_cadence_one_per_slot(store) {
        digest(&store, t(8), t(1), &["a", "b"]).unwrap();
        let daily = NewDigest {
            cadence: "daily",
            slot: t(9),
            period_start: t(8),
            since: None,
            first_seen: &["c"],
            through: 3,
            shorts: &[("c", "llm")],
        };
        let daily = store.create_digest(&daily, t(9)).unwrap();
        assert_eq!(
            (daily.number, daily.issue, daily.cadence.as_str()),
            (2, 1, "daily")
        );
        assert!(
            digest(&store, t(8), t(1), &["d"]).is_err(),
            "one digest per cadence and slot"
        );
        let second = digest(&store, t(15), t(8), &["d"]).unwrap();
        assert_eq!(
            (second.number, second.issue, second.since, second.through),
            (3, 2, Some(2), 4)
        );
        let publications = store.publications().unwrap();
        let order = ["a", "b", "c", "d"].map(|id| publications[id]);
        assert_eq!(order, [1, 2, 3, 4]);
        assert_eq!(
            store.latest_digest("daily").unwrap().map(|d| d.number),
            Some(2)
        );
    }
    }

    store_test! {
    fn a_watermark_only_moves_up_and_a_claim_keeps_its_first_window(store) {
        digest(&store, t(8), t(1), &["a", "b", "c"]).unwrap();
        store
            .conn
            .execute_batch(
                "INSERT INTO subscribers (id, email, status, token_id, created_at, updated_at)
                 VALUES (7, 'r@example.com', 'active', 't', 'x', 'x'),
                        (8, 'p@example.com', 'active', 'u', 'x', 'x')",
            )
            .unwrap();
        assert_eq!(store.watermark(7).unwrap(), None);
        assert_eq!(store.lowest_watermark(DEFAULT).unwrap(), None);
        store.settle_through(7, 2).unwrap();
        store.settle_through(7, 1).unwrap();
        assert_eq!(store.watermark(7).unwrap(), Some(2));
        store.settle_through(8, 3).unwrap();
        assert_eq!(store.lowest_watermark(DEFAULT).unwrap(), Some(2));
        assert_eq!(store.lowest_watermark(Members::Of("daily")).unwrap(), None);
        store.claim(1, 7, "<m@x>", Some(1), t(8)).unwrap();
        store.mark_deferred(1, 7, "451", t(8)).unwrap();
        store.claim(1, 7, "<m@x>", None, t(8)).unwrap();
        assert_eq!(store.claimed_since(1, 7).unwrap(), Some(1));
        assert_eq!(store.claimed_since(1, 8).unwrap(), None);
    }
    }

    store_test! {
    /// Two senders never both hold a delivery: on a shared ledger a claim
    /// is refused while another's lease runs, and granted after it; a
    /// deferred one is anyone's; a settled one no one's.
    fn a_claim_held_by_another_sender_is_refused_until_its_lease_runs_out(store) {
        digest(&store, t(8), t(1), &["a"]).unwrap();
        assert!(store.claim(1, 7, "<m@x>", None, t(8)).unwrap());
        let shared = store.conn.is_postgres();
        assert_eq!(store.claim(1, 7, "<m@x>", None, t(8)).unwrap(), !shared);
        let later = t(8) + CLAIM_LEASE;
        assert!(store.claim(1, 7, "<m@x>", None, later).unwrap());
        store.mark_deferred(1, 7, "451", later).unwrap();
        assert!(store.claim(1, 7, "<m@x>", None, later).unwrap());
        store.mark_sent(1, 7, later).unwrap();
        assert!(!store.claim(1, 7, "<m@x>", None, later + CLAIM_LEASE).unwrap());
        assert_eq!(store.delivery_state(1, 7).unwrap(), Some(DeliveryState::Sent));
    }
    }

    store_test! {
    fn deliveries_move_through_states_and_count_attempts(store) {
        let digest = digest(&store, t(8), t(1), &["a"]).unwrap();
        assert_eq!(store.unfinished_digest("").unwrap(), Some(digest.clone()));
        store.claim(1, 7, "<m@x>", None, t(8)).unwrap();
        store.mark_deferred(1, 7, "451 later", t(8)).unwrap();
        store.claim(1, 7, "<m@x>", None, t(8)).unwrap();
        store.mark_sent(1, 7, t(8)).unwrap();
        assert_eq!(
            store.delivery_state(1, 7).unwrap(),
            Some(DeliveryState::Sent)
        );
        let (attempts, error, id): (i64, String, String) = store
            .conn
            .query_one(
                "SELECT attempts, last_error, message_id FROM deliveries",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            (attempts, error.as_str(), id.as_str()),
            (2, "451 later", "<m@x>")
        );
        store.complete_digest(1, t(8)).unwrap();
        assert_eq!(store.unfinished_digest("").unwrap(), None);
        assert!(store.digest_for_slot("", t(8)).unwrap().unwrap().completed);
    }
    }

    store_test! {
    fn deliveries_list_each_subscribers_state_attempts_and_error(store) {
        digest(&store, t(8), t(1), &["a"]).unwrap();
        store
            .claim(1, 9, "<m@example.org>", None, t(8))
            .unwrap();
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
}
