//! What came back: one event per bounce, complaint, unsubscribe request,
//! auto-reply or unrecognised message, and the suppression list of
//! addresses that must never be mailed again.
//!
//! An event is recorded once per (message, kind, address): the same message
//! read twice (a Maildir scanned again, an MTA retrying a pipe) is a replay,
//! and [`Events::record_event`] says so, so that nothing is acted on twice.
//! Suppressions outlive their subscriber row: removing someone and importing
//! them again does not bring back an address that complained.

use super::sql::{Row, params};
use super::{Database, StoreError, parse_timestamp, timestamp};
use chrono::{DateTime, Utc};

/// An event about to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent<'a> {
    pub received_at: DateTime<Utc>,
    /// `hard_bounce`, `soft_bounce`, `complaint`, `unsubscribe`, `auto_reply`,
    /// `delivered` or `unrecognised`.
    pub kind: &'a str,
    pub subscriber: Option<i64>,
    /// The subscriber's address when it was recorded (it outlives the row).
    pub email: Option<&'a str>,
    pub digest: Option<i64>,
    /// The enhanced status or reply code, e.g. `5.1.1`.
    pub status: Option<&'a str>,
    /// The server's words, or why the message was not recognised.
    pub diagnostic: &'a str,
    /// The raw message's `Message-ID` (or a hash of its bytes).
    pub message_id: &'a str,
    /// Where it came from: `stdin`, `maildir:<file>`.
    pub source: &'a str,
}

/// An event as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub kind: String,
    pub subscriber: Option<i64>,
    pub email: Option<String>,
    pub digest: Option<i64>,
    pub status: Option<String>,
    pub diagnostic: String,
    pub message_id: String,
    pub source: String,
}

/// An address never to be mailed again, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub email: String,
    /// `complaint` or `hard bounce (5.1.1)`.
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// What happened to one digest: its deliveries by state and what came back.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DigestCounts {
    pub digest: i64,
    pub sent: u64,
    pub sending: u64,
    pub deferred: u64,
    pub failed: u64,
    pub skipped: u64,
    pub hard_bounces: u64,
    pub soft_bounces: u64,
    pub complaints: u64,
    pub unsubscribes: u64,
    pub auto_replies: u64,
}

/// The record of what came back.
pub trait Events {
    /// Records `event`; false when this message already gave this kind of
    /// event for this address (a replay), in which case nothing is written.
    fn record_event(&self, event: &NewEvent<'_>) -> Result<bool, StoreError>;

    /// Every event about `email` (case-insensitive), oldest first.
    fn events_for(&self, email: &str) -> Result<Vec<Event>, StoreError>;

    /// Soft bounces recorded for `subscriber` since `since`.
    fn soft_bounces_since(&self, subscriber: i64, since: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Adds `email` to the suppression list; the first reason stays.
    fn suppress(&self, email: &str, reason: &str, now: DateTime<Utc>) -> Result<(), StoreError>;

    fn suppression(&self, email: &str) -> Result<Option<Suppression>, StoreError>;

    /// Takes `email` off the suppression list; false if it was not on it.
    fn unsuppress(&self, email: &str) -> Result<bool, StoreError>;

    /// The whole suppression list, oldest first.
    fn suppressions(&self) -> Result<Vec<Suppression>, StoreError>;

    /// Deliveries of `digest` by state, and the events that name it by kind.
    fn digest_counts(&self, digest: i64) -> Result<DigestCounts, StoreError>;
}

const EVENT_COLUMNS: &str =
    "id, received_at, kind, subscriber, email, digest, status, diagnostic, message_id, source";

fn event(row: &Row<'_>) -> Result<(Event, String), StoreError> {
    let received: String = row.get(1)?;
    Ok((
        Event {
            id: row.get(0)?,
            received_at: DateTime::UNIX_EPOCH,
            kind: row.get(2)?,
            subscriber: row.get(3)?,
            email: row.get(4)?,
            digest: row.get(5)?,
            status: row.get(6)?,
            diagnostic: row.get(7)?,
            message_id: row.get(8)?,
            source: row.get(9)?,
        },
        received,
    ))
}

fn suppression(row: &Row<'_>) -> Result<(Suppression, String), StoreError> {
    Ok((
        Suppression {
            email: row.get(0)?,
            reason: row.get(1)?,
            at: DateTime::UNIX_EPOCH,
        },
        row.get(2)?,
    ))
}

impl Events for Database {
    fn record_event(&self, event: &NewEvent<'_>) -> Result<bool, StoreError> {
        let once = format!(
            "{}|{}|{}",
            event.message_id,
            event.kind,
            event.email.unwrap_or("").to_ascii_lowercase()
        );
        let inserted = self.conn.execute(
            "INSERT INTO events
                 (received_at, kind, subscriber, email, digest, status, diagnostic, message_id, source, once)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT DO NOTHING",
            params![
                timestamp(event.received_at),
                event.kind,
                event.subscriber,
                event.email,
                event.digest,
                event.status,
                event.diagnostic,
                event.message_id,
                event.source,
                once
            ],
        )?;
        Ok(inserted == 1)
    }

    fn events_for(&self, email: &str) -> Result<Vec<Event>, StoreError> {
        // The column compares addresses without case on both engines.
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE email = ?1 ORDER BY id");
        self.conn.query(&sql, params![email], |row| {
            let (mut event, received) = event(row)?;
            event.received_at = parse_timestamp(&received)?;
            Ok(event)
        })
    }

    fn soft_bounces_since(&self, subscriber: i64, since: DateTime<Utc>) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_one(
            "SELECT count(*) FROM events
             WHERE subscriber = ?1 AND kind = 'soft_bounce' AND received_at >= ?2",
            params![subscriber, timestamp(since)],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    fn suppress(&self, email: &str, reason: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO suppressions (email, reason, at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![email, reason, timestamp(now)],
        )?;
        Ok(())
    }

    fn suppression(&self, email: &str) -> Result<Option<Suppression>, StoreError> {
        let found = self.conn.query_opt(
            "SELECT email, reason, at FROM suppressions WHERE email = ?1",
            params![email],
            suppression,
        )?;
        found
            .map(|(mut s, at)| {
                s.at = parse_timestamp(&at)?;
                Ok(s)
            })
            .transpose()
    }

    fn unsuppress(&self, email: &str) -> Result<bool, StoreError> {
        let removed = self
            .conn
            .execute("DELETE FROM suppressions WHERE email = ?1", params![email])?;
        Ok(removed > 0)
    }

    fn suppressions(&self) -> Result<Vec<Suppression>, StoreError> {
        self.conn.query(
            "SELECT email, reason, at FROM suppressions ORDER BY at, email",
            params![],
            |row| {
                let (mut s, at) = suppression(row)?;
                s.at = parse_timestamp(&at)?;
                Ok(s)
            },
        )
    }

    fn digest_counts(&self, digest: i64) -> Result<DigestCounts, StoreError> {
        let mut counts = DigestCounts {
            digest,
            ..DigestCounts::default()
        };
        let by_state = self.grouped_counts(
            "SELECT state, count(*) FROM deliveries WHERE digest = ?1 GROUP BY state",
            digest,
        )?;
        for (state, n) in by_state {
            match state.as_str() {
                "sent" => counts.sent = n,
                "sending" => counts.sending = n,
                "deferred" => counts.deferred = n,
                "failed" => counts.failed = n,
                "skipped" => counts.skipped = n,
                _ => {}
            }
        }
        let by_kind = self.grouped_counts(
            "SELECT kind, count(*) FROM events WHERE digest = ?1 GROUP BY kind",
            digest,
        )?;
        for (kind, n) in by_kind {
            match kind.as_str() {
                "hard_bounce" => counts.hard_bounces = n,
                "soft_bounce" => counts.soft_bounces = n,
                "complaint" => counts.complaints = n,
                "unsubscribe" => counts.unsubscribes = n,
                "auto_reply" => counts.auto_replies = n,
                _ => {}
            }
        }
        Ok(counts)
    }
}

impl Database {
    /// `(name, count)` rows of a `GROUP BY` query with one parameter.
    fn grouped_counts(&self, sql: &str, value: i64) -> Result<Vec<(String, u64)>, StoreError> {
        self.conn.query(sql, params![value], |r| {
            Ok((
                r.get(0)?,
                u64::try_from(r.get::<i64>(1)?).unwrap_or_default(),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::store_test;

    fn bounce<'a>(message_id: &'a str, email: &'a str) -> NewEvent<'a> {
        NewEvent {
            received_at: DateTime::UNIX_EPOCH,
            kind: "soft_bounce",
            subscriber: Some(1),
            email: Some(email),
            digest: Some(1),
            status: Some("4.2.2"),
            diagnostic: "mailbox full",
            message_id,
            source: "test",
        }
    }

    store_test! {
    fn a_replayed_message_is_recorded_once(store) {
        assert!(
            store
                .record_event(&bounce("<m1>", "a@example.org"))
                .unwrap()
        );
        assert!(
            !store
                .record_event(&bounce("<m1>", "A@example.org"))
                .unwrap()
        );
        assert!(
            store
                .record_event(&bounce("<m2>", "a@example.org"))
                .unwrap()
        );
        assert_eq!(store.events_for("A@EXAMPLE.org").unwrap().len(), 2);
        assert_eq!(
            store.soft_bounces_since(1, DateTime::UNIX_EPOCH).unwrap(),
            2
        );
        assert_eq!(store.digest_counts(1).unwrap().soft_bounces, 2);
    }
    }

    store_test! {
    fn the_first_suppression_reason_stays(store) {
        let now = DateTime::UNIX_EPOCH;
        store.suppress("a@example.org", "complaint", now).unwrap();
        store.suppress("A@example.org", "hard bounce", now).unwrap();
        let found = store.suppression("a@EXAMPLE.ORG").unwrap().unwrap();
        assert_eq!(found.reason, "complaint");
        assert_eq!(store.suppressions().unwrap().len(), 1);
        assert!(store.suppression("b@example.org").unwrap().is_none());
        assert!(store.unsuppress("A@Example.org").unwrap());
        assert!(!store.unsuppress("a@example.org").unwrap());
        assert!(store.suppressions().unwrap().is_empty());
    }
    }
}
