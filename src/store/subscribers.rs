//! Subscriber rows: add, update, remove, list, and the failure count that
//! turns repeated permanent failures into `bounced`.

use super::sql::{Lock, Row, params};
use super::{Database, Members, StoreError, parse_timestamp, timestamp};
use crate::model::{Subscriber, SubscriberStatus};
use chrono::{DateTime, Utc};

/// Permanent failures in a row after which a subscriber is `bounced`.
pub const BOUNCE_AFTER: i64 = 3;

/// A subscriber as given by a command or an import, already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscriber {
    pub email: String,
    pub name: String,
    pub tracks: Vec<String>,
    /// Tag slugs, sorted; see [`Subscriber::tags`].
    pub tags: Vec<String>,
    pub status: SubscriberStatus,
    /// Where the consent came from: "cli", "import:<file>", "web".
    pub source: String,
    /// The version of the sign-up text agreed to (`[server] consent_version`
    /// for the web form; empty when consent was collected elsewhere).
    pub consent_text: String,
    /// The key of the cadence chosen ("" for the default); `None` keeps an
    /// existing subscriber's (and gives a new one the default).
    pub cadence: Option<String>,
}

/// How a subscriber agreed to get digests (GDPR Art. 7(1): the sender must
/// be able to show it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// "cli", "import:<file>", "web".
    pub source: String,
    /// The version of the sign-up text agreed to.
    pub text: String,
    /// When. Every sign-up and addition sets it, but the column allows none.
    pub at: Option<DateTime<Utc>>,
}

/// What saving a subscriber did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    Added,
    Updated,
    Unchanged,
    /// Nothing: the address is on the suppression list (it complained or
    /// hard-bounced) and is never mailed again.
    Suppressed(super::Suppression),
}

/// What a sign-up from the web form comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignUp {
    /// A new address, or one that had left, now pending: owed a confirmation.
    Confirm(Subscriber),
    /// Already subscribed: owed a link to manage the subscription.
    Manage(Subscriber),
    /// On the suppression list: owed nothing.
    Suppressed,
}

/// The watermark's assignment for an UPDATE whose new status is the
/// parameter `status` and new cadence `cadence` (`None`: unchanged).
///
/// A subscriber who becomes active (confirmed, added, back after leaving,
/// or set back by hand) starts at the highest publication recorded, like
/// a new one: they get what is published from then on, and what was
/// published before, or while they were away, is back catalogue. One who
/// changes cadence before any digest settled a watermark for them (only
/// possible for a database from before watermarks) takes the end of their
/// old cadence's last finished digest with them.
fn watermark_after(status: &str, cadence: &str) -> String {
    format!(
        "through_seq = CASE
             WHEN status <> 'active' AND {status} = 'active' THEN {HIGHEST_PUBLICATION}
             WHEN cadence <> {cadence} THEN coalesce(through_seq, {LAST_SETTLED})
             ELSE through_seq END"
    )
}

/// The advisory lock the per-address cap on confirmations is counted under.
const CONFIRMATIONS_LOCK: i64 = 0x0063_6f6e_6669_726d;

/// The highest publication recorded: where a subscriber who becomes active stands.
const HIGHEST_PUBLICATION: &str = "(SELECT coalesce(max(seq), 0) FROM publications)";

/// The end of the last finished digest of the subscriber's cadence (the
/// row being updated), where a watermark not yet set stands.
const LAST_SETTLED: &str = "(SELECT d.through_seq FROM digests d
     WHERE d.cadence = subscribers.cadence AND d.completed_at IS NOT NULL
     ORDER BY d.number DESC LIMIT 1)";

impl Database {
    /// `save_subscriber` for an address already there.
    fn update_subscriber(
        &self,
        old: &Subscriber,
        new: &NewSubscriber,
        now: &str,
    ) -> Result<Saved, StoreError> {
        if old.name == new.name
            && old.tracks == new.tracks
            && old.tags == new.tags
            && old.status == new.status
            && new.cadence.as_ref().is_none_or(|c| *c == old.cadence)
        {
            return Ok(Saved::Unchanged);
        }
        self.conn.execute(
            &format!(
                "UPDATE subscribers SET name = ?1, tracks = ?2, status = ?3, updated_at = ?4,
                     failures = CASE WHEN ?3 = 'active' THEN 0 ELSE failures END, tags = ?6,
                     {}, cadence = ?7
                 WHERE id = ?5",
                watermark_after("?3", "?7")
            ),
            params![
                new.name,
                new.tracks.join(","),
                new.status.as_str(),
                now,
                old.id,
                new.tags.join(","),
                new.cadence.as_ref().unwrap_or(&old.cadence)
            ],
        )?;
        Ok(Saved::Updated)
    }
}

/// Subscribers digests go to: active and not paused.
pub(super) const RECEIVING: &str = "status = 'active' AND paused_at IS NULL";

const COLUMNS: &str =
    "id, email, name, tracks, status, token_id, tags, cadence, paused_at IS NOT NULL";

/// A comma-separated column (`tracks`, `tags`) as its slugs.
pub(super) fn slugs(column: &str) -> Vec<String> {
    column
        .split(',')
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

fn subscriber(row: &Row<'_>) -> Result<Subscriber, StoreError> {
    let tracks: String = row.get(3)?;
    let status: String = row.get(4)?;
    let tags: String = row.get(6)?;
    Ok(Subscriber {
        id: row.get(0)?,
        email: row.get(1)?,
        name: row.get(2)?,
        tracks: slugs(&tracks),
        tags: slugs(&tags),
        status: SubscriberStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("subscriber status {status:?}")))?,
        token_id: row.get(5)?,
        cadence: row.get(7)?,
        paused: row.get(8)?,
    })
}

/// Subscribers: who they are, what they follow and where they stand.
pub trait SubscriberStore {
    /// Adds a subscriber, or updates the one with the same address
    /// (case-insensitive); a suppressed address is left alone.
    fn save_subscriber(&self, new: &NewSubscriber, now: DateTime<Utc>)
    -> Result<Saved, StoreError>;

    /// Deletes a subscriber and their delivery records; false if there was none.
    fn remove_subscriber(&self, email: &str) -> Result<bool, StoreError>;

    fn subscriber_by_email(&self, email: &str) -> Result<Option<Subscriber>, StoreError>;

    fn subscriber_by_id(&self, id: i64) -> Result<Option<Subscriber>, StoreError>;

    /// The subscriber a signed link names.
    fn subscriber_by_token_id(&self, token_id: &str) -> Result<Option<Subscriber>, StoreError>;

    /// A sign-up from the web form: a new address, or one that had left, becomes
    /// `pending` with the consent recorded; an active or suppressed one is left
    /// alone (an active subscriber's choice of tracks is theirs to change,
    /// through their own link). Says which email the address is owed.
    fn sign_up(&self, new: &NewSubscriber, now: DateTime<Utc>) -> Result<SignUp, StoreError>;

    /// Records a confirmation email to `email` at `now`, unless `limit` were
    /// already recorded for it after `since`: true when recorded (send it),
    /// false when over the cap (send nothing). Counted and recorded under
    /// one lock, so two servers sharing the database cannot both take the
    /// last one. Records from `since` or before are forgotten.
    fn record_confirmation(
        &self,
        email: &str,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<bool, StoreError>;

    /// Counts a sign-up from `client` (an address, or an IPv6 network) at
    /// `now` in its window of sign-ups: a new window when the last began at
    /// `window_began_by` or before. Returns how many the window holds with
    /// this one. In the database, so that every `serve` sharing it counts
    /// a client's sign-ups together. (A client's ended window is forgotten
    /// here, everyone's by [`SubscriberStore::purge_pending`].)
    fn count_sign_up(
        &self,
        client: &str,
        window_began_by: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u32, StoreError>;

    /// Deletes the `pending` subscribers who signed up before `before` (never
    /// an active, unsubscribed or bounced one) with their delivery records,
    /// detaches their events, and forgets confirmation emails sent before
    /// `before`; returns how many subscribers.
    fn purge_pending(&self, before: DateTime<Utc>) -> Result<usize, StoreError>;

    /// Sets a subscriber's status; confirming records when.
    fn set_status(
        &self,
        id: i64,
        status: SubscriberStatus,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Sets what a subscriber follows: tracks and tags, both empty for everything.
    fn set_follows(
        &self,
        id: i64,
        tracks: &[String],
        tags: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Moves a subscriber to the cadence with key `cadence` ("" for the
    /// default): their next digest is that cadence's, carrying what they
    /// have not had yet.
    fn set_cadence(&self, id: i64, cadence: &str, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// Pauses a subscriber: no digest goes to them until they resume.
    fn pause(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// Resumes a paused subscriber. Without `catch_up`, what was published
    /// while they were paused is behind them (no back catalogue); with it,
    /// their next digest brings everything they missed.
    fn resume(&self, id: i64, catch_up: bool, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// Confirms a double opt-in: `pending` → `active`, recording when.
    /// False, changing nothing, for anyone not pending — a confirmation
    /// link must not bring back someone who left or bounced.
    fn confirm(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Every subscriber, in the order they were added.
    fn subscribers(&self) -> Result<Vec<Subscriber>, StoreError>;

    /// The ids of `members` (active and not paused) with `id > after`, at
    /// most `limit`, in id order: callers page through them so memory stays
    /// flat however many there are. With them, any active subscriber whose
    /// copy of the digest `claimed_in` was claimed and not settled (they may
    /// have paused or moved to another cadence since: it is theirs all the same).
    fn active_subscriber_ids(
        &self,
        members: Members<'_>,
        claimed_in: Option<i64>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<i64>, StoreError>;

    fn active_subscriber_count(&self, members: Members<'_>) -> Result<usize, StoreError>;

    /// A permanent failure; returns true when it made the subscriber `bounced`.
    fn record_permanent_failure(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError>;

    /// A delivery went through: the failure streak is over.
    fn reset_failures(&self, id: i64) -> Result<(), StoreError>;

    /// The record of how a subscriber agreed to get digests.
    fn consent(&self, id: i64) -> Result<Option<Consent>, StoreError>;
}

impl SubscriberStore for Database {
    fn save_subscriber(
        &self,
        new: &NewSubscriber,
        now: DateTime<Utc>,
    ) -> Result<Saved, StoreError> {
        if let Some(suppressed) = super::Events::suppression(self, &new.email)? {
            return Ok(Saved::Suppressed(suppressed));
        }
        let (tracks, tags) = (new.tracks.join(","), new.tags.join(","));
        let now = timestamp(now);
        if let Some(old) = self.subscriber_by_email(&new.email)? {
            return self.update_subscriber(&old, new, &now);
        }
        let confirmed = (new.status == SubscriberStatus::Active).then_some(&now);
        self.conn.execute(
            &format!(
                "INSERT INTO subscribers (email, name, tracks, status, token_id, consent_at, confirmed_at, source, consent_text, created_at, updated_at, tags, cadence, through_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?6, ?6, ?10, ?11, {HIGHEST_PUBLICATION})"
            ),
            params![
                new.email,
                new.name,
                tracks,
                new.status.as_str(),
                crate::tokens::random_id(),
                now,
                confirmed,
                new.source,
                new.consent_text,
                tags,
                new.cadence.as_deref().unwrap_or_default()
            ],
        )?;
        Ok(Saved::Added)
    }

    fn remove_subscriber(&self, email: &str) -> Result<bool, StoreError> {
        let tx = self.conn.transaction(Lock::Immediate)?;
        let Some(id) = self.conn.query_opt(
            "SELECT id FROM subscribers WHERE email = ?1",
            params![email],
            |r| r.get::<i64>(0),
        )?
        else {
            return Ok(false);
        };
        self.conn
            .execute("DELETE FROM deliveries WHERE subscriber = ?1", params![id])?;
        self.conn
            .execute("DELETE FROM subscribers WHERE id = ?1", params![id])?;
        tx.commit()?;
        Ok(true)
    }

    fn subscriber_by_email(&self, email: &str) -> Result<Option<Subscriber>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM subscribers WHERE email = ?1");
        self.conn.query_opt(&sql, params![email], subscriber)
    }

    fn subscriber_by_id(&self, id: i64) -> Result<Option<Subscriber>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM subscribers WHERE id = ?1");
        self.conn.query_opt(&sql, params![id], subscriber)
    }

    fn subscriber_by_token_id(&self, token_id: &str) -> Result<Option<Subscriber>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM subscribers WHERE token_id = ?1");
        self.conn.query_opt(&sql, params![token_id], subscriber)
    }

    fn sign_up(&self, new: &NewSubscriber, now: DateTime<Utc>) -> Result<SignUp, StoreError> {
        // A suppressed address gets no confirmation email either: no one
        // can sign someone who complained back up (nor list-bomb them).
        if super::Events::suppression(self, &new.email)?.is_some() {
            return Ok(SignUp::Suppressed);
        }
        let pending = match self.subscriber_by_email(&new.email)? {
            Some(old) if old.status == SubscriberStatus::Active => return Ok(SignUp::Manage(old)),
            Some(old) => {
                self.conn.execute(
                    "UPDATE subscribers SET status = 'pending', tracks = ?2, consent_at = ?3, source = ?4,
                         consent_text = ?5, updated_at = ?3, tags = ?6, cadence = coalesce(?7, cadence)
                     WHERE id = ?1",
                    params![
                        old.id,
                        new.tracks.join(","),
                        timestamp(now),
                        new.source,
                        new.consent_text,
                        new.tags.join(","),
                        new.cadence
                    ],
                )?;
                self.subscriber_by_id(old.id)?
            }
            None => {
                let pending = NewSubscriber {
                    status: SubscriberStatus::Pending,
                    ..new.clone()
                };
                self.save_subscriber(&pending, now)?;
                self.subscriber_by_email(&new.email)?
            }
        };
        pending
            .map(SignUp::Confirm)
            .ok_or_else(|| StoreError::Corrupt(format!("sign-up of {} not saved", new.email)))
    }

    fn record_confirmation(
        &self,
        email: &str,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<bool, StoreError> {
        let since = timestamp(since);
        let tx = self.conn.transaction(Lock::Immediate)?;
        // On PostgreSQL, two transactions would each count the rows the
        // other has not committed yet, and both insert the last one.
        self.conn.lock_exclusively(CONFIRMATIONS_LOCK)?;
        self.conn.execute(
            "DELETE FROM confirmations_sent WHERE sent_at <= ?1",
            params![since],
        )?;
        let recorded = self.conn.execute(
            "INSERT INTO confirmations_sent (email, sent_at)
             SELECT ?1, ?2
             WHERE (SELECT count(*) FROM confirmations_sent WHERE email = ?1 AND sent_at > ?3) < ?4",
            params![email, timestamp(now), since, i64::from(limit)],
        )?;
        tx.commit()?;
        Ok(recorded == 1)
    }

    fn count_sign_up(
        &self,
        client: &str,
        window_began_by: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let began_by = timestamp(window_began_by);
        let tx = self.conn.transaction(Lock::Immediate)?;
        // Only this client's: two replicas each deleting every ended window
        // could take the rows in different orders and deadlock. A window
        // that begins after `now` began before the clock was set back: it
        // ends too, or the client would wait for the clock to catch up.
        self.conn.execute(
            "DELETE FROM sign_up_windows WHERE client = ?1 AND (began_at <= ?2 OR began_at > ?3)",
            params![client, began_by, timestamp(now)],
        )?;
        // One upsert: replicas counting the same client at once wait for
        // each other on its row, and each sees the other's count.
        let count: i64 = self.conn.query_one(
            "INSERT INTO sign_up_windows (client, began_at, sign_ups) VALUES (?1, ?2, 1)
             ON CONFLICT (client) DO UPDATE SET sign_ups = sign_up_windows.sign_ups + 1
             RETURNING sign_ups",
            params![client, timestamp(now)],
            |row| row.get(0),
        )?;
        tx.commit()?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    fn purge_pending(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        const EXPIRED: &str = "SELECT id FROM subscribers
             WHERE status = 'pending' AND COALESCE(consent_at, created_at) < ?1";
        let before = timestamp(before);
        let tx = self.conn.transaction(Lock::Immediate)?;
        // A rowid can be used again once the highest row is gone: nothing
        // recorded about a purged subscriber may pass to the next one.
        self.conn.execute(
            &format!("DELETE FROM deliveries WHERE subscriber IN ({EXPIRED})"),
            params![before],
        )?;
        self.conn.execute(
            &format!("UPDATE events SET subscriber = NULL WHERE subscriber IN ({EXPIRED})"),
            params![before],
        )?;
        let purged = self.conn.execute(
            "DELETE FROM subscribers
             WHERE status = 'pending' AND COALESCE(consent_at, created_at) < ?1",
            params![before],
        )?;
        self.conn.execute(
            "DELETE FROM confirmations_sent WHERE sent_at < ?1",
            params![before],
        )?;
        self.conn.execute(
            "DELETE FROM sign_up_windows WHERE began_at < ?1",
            params![before],
        )?;
        tx.commit()?;
        Ok(purged)
    }

    fn set_status(
        &self,
        id: i64,
        status: SubscriberStatus,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            &format!(
                "UPDATE subscribers SET status = ?2, updated_at = ?3,
                     confirmed_at = CASE WHEN ?2 = 'active' THEN ?3 ELSE confirmed_at END,
                     failures = CASE WHEN ?2 = 'active' THEN 0 ELSE failures END,
                     {}
                 WHERE id = ?1",
                watermark_after("?2", "cadence")
            ),
            params![id, status.as_str(), timestamp(now)],
        )?;
        Ok(())
    }

    fn set_follows(
        &self,
        id: i64,
        tracks: &[String],
        tags: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE subscribers SET tracks = ?2, tags = ?3, updated_at = ?4 WHERE id = ?1",
            params![id, tracks.join(","), tags.join(","), timestamp(now)],
        )?;
        Ok(())
    }

    fn set_cadence(&self, id: i64, cadence: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn.execute(
            &format!(
                "UPDATE subscribers SET {}, cadence = ?2, updated_at = ?3 WHERE id = ?1",
                watermark_after("status", "?2")
            ),
            params![id, cadence, timestamp(now)],
        )?;
        Ok(())
    }

    fn pause(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE subscribers SET paused_at = coalesce(paused_at, ?2), updated_at = ?2 WHERE id = ?1",
            params![id, timestamp(now)],
        )?;
        Ok(())
    }

    fn resume(&self, id: i64, catch_up: bool, now: DateTime<Utc>) -> Result<(), StoreError> {
        // Behind them: every publication recorded so far.
        let skip_missed = "through_seq = CASE WHEN paused_at IS NULL THEN through_seq
             ELSE (SELECT CASE WHEN coalesce(through_seq, 0) > highest THEN through_seq ELSE highest END
                   FROM (SELECT coalesce(max(seq), 0) AS highest FROM publications) p) END";
        let watermark = if catch_up {
            "through_seq = through_seq"
        } else {
            skip_missed
        };
        self.conn.execute(
            &format!(
                "UPDATE subscribers SET {watermark}, paused_at = NULL, updated_at = ?2 WHERE id = ?1"
            ),
            params![id, timestamp(now)],
        )?;
        Ok(())
    }

    fn confirm(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let changed = self.conn.execute(
            &format!(
                "UPDATE subscribers SET status = 'active', confirmed_at = ?2, updated_at = ?2, failures = 0,
                     through_seq = {HIGHEST_PUBLICATION}
                 WHERE id = ?1 AND status = 'pending'"
            ),
            params![id, timestamp(now)],
        )?;
        Ok(changed == 1)
    }

    fn subscribers(&self) -> Result<Vec<Subscriber>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM subscribers ORDER BY id");
        self.conn.query(&sql, params![], subscriber)
    }

    fn active_subscriber_ids(
        &self,
        members: Members<'_>,
        claimed_in: Option<i64>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<i64>, StoreError> {
        let (of, key) = members.condition(3);
        let sql = format!(
            "SELECT id FROM subscribers
             WHERE (({RECEIVING} AND {of}) OR (status = 'active' AND id IN
                 (SELECT subscriber FROM deliveries WHERE digest = ?4 AND state IN ('sending', 'deferred'))))
               AND id > ?1
             ORDER BY id LIMIT ?2"
        );
        let claimed_in = claimed_in.unwrap_or(-1);
        self.conn
            .query(&sql, params![after, limit as i64, key, claimed_in], |r| {
                r.get(0)
            })
    }

    fn active_subscriber_count(&self, members: Members<'_>) -> Result<usize, StoreError> {
        let (of, key) = members.condition(1);
        let n: i64 = self.conn.query_one(
            &format!("SELECT count(*) FROM subscribers WHERE {RECEIVING} AND {of}"),
            params![key],
            |r| r.get(0),
        )?;
        Ok(n as usize)
    }

    fn record_permanent_failure(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.conn.execute(
            "UPDATE subscribers SET failures = failures + 1, updated_at = ?2,
                 status = CASE WHEN failures + 1 >= ?3 THEN 'bounced' ELSE status END
             WHERE id = ?1",
            params![id, timestamp(now), BOUNCE_AFTER],
        )?;
        let status: String = self.conn.query_one(
            "SELECT status FROM subscribers WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )?;
        Ok(status == "bounced")
    }

    fn reset_failures(&self, id: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE subscribers SET failures = 0 WHERE id = ?1 AND failures != 0",
            params![id],
        )?;
        Ok(())
    }

    fn consent(&self, id: i64) -> Result<Option<Consent>, StoreError> {
        let row: Option<(String, String, Option<String>)> = self.conn.query_opt(
            "SELECT source, consent_text, consent_at FROM subscribers WHERE id = ?1",
            params![id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        row.map(|(source, text, at)| {
            Ok(Consent {
                source,
                text,
                at: at.as_deref().map(parse_timestamp).transpose()?,
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::store_test;

    const EVERYONE: Members<'static> = Members::Default { others: &[] };

    fn new(email: &str, status: SubscriberStatus) -> NewSubscriber {
        NewSubscriber {
            email: email.into(),
            name: "N".into(),
            tracks: vec!["llm".into()],
            tags: vec![],
            status,
            source: "test".into(),
            consent_text: String::new(),
            cadence: None,
        }
    }

    store_test! {
    fn save_adds_then_updates_then_changes_nothing(store) {
        let now = DateTime::UNIX_EPOCH;
        let mut ada = new("ada@example.com", SubscriberStatus::Active);
        assert_eq!(store.save_subscriber(&ada, now).unwrap(), Saved::Added);
        assert_eq!(store.save_subscriber(&ada, now).unwrap(), Saved::Unchanged);
        ada.email = "ADA@example.com".into();
        ada.tracks = vec![];
        assert_eq!(
            store.save_subscriber(&ada, now).unwrap(),
            Saved::Updated,
            "addresses match case-insensitively"
        );
        let all = store.subscribers().unwrap();
        assert_eq!(all.len(), 1);
        assert!(all[0].wants("anything"), "no tracks means every track");
        assert_eq!(all[0].token_id.len(), 32);
    }
    }

    store_test! {
    fn tags_are_saved_updated_and_set_with_tracks(store) {
        let now = DateTime::UNIX_EPOCH;
        let mut ada = new("ada@example.com", SubscriberStatus::Active);
        ada.tags = vec!["kv-cache".into(), "rust".into()];
        assert_eq!(store.save_subscriber(&ada, now).unwrap(), Saved::Added);
        let stored = store
            .subscriber_by_email("ada@example.com")
            .unwrap()
            .unwrap();
        assert_eq!(
            (stored.tracks, stored.tags),
            (ada.tracks.clone(), ada.tags.clone())
        );
        assert_eq!(store.save_subscriber(&ada, now).unwrap(), Saved::Unchanged);
        ada.tags = vec!["rust".into()];
        assert_eq!(
            store.save_subscriber(&ada, now).unwrap(),
            Saved::Updated,
            "a change of tags alone is a change"
        );
        assert_eq!(store.subscribers().unwrap()[0].tags, ["rust"]);

        store
            .set_follows(stored.id, &[], &["gqa".to_string()], now)
            .unwrap();
        let set = store.subscriber_by_id(stored.id).unwrap().unwrap();
        assert!(set.tracks.is_empty());
        assert_eq!(set.tags, ["gqa"]);
        store.set_follows(stored.id, &[], &[], now).unwrap();
        let set = store.subscriber_by_id(stored.id).unwrap().unwrap();
        assert!(set.follows_everything(), "{set:?}");
    }
    }

    store_test! {
    fn a_sign_up_again_takes_the_new_tags(store) {
        let now = DateTime::UNIX_EPOCH;
        let mut web = new("w@example.com", SubscriberStatus::Pending);
        web.tags = vec!["rust".into()];
        let SignUp::Confirm(pending) = store.sign_up(&web, now).unwrap() else {
            panic!("a new address is owed a confirmation");
        };
        assert_eq!(pending.tags, ["rust"]);
        store
            .set_status(pending.id, SubscriberStatus::Unsubscribed, now)
            .unwrap();
        web.tags = vec!["gqa".into(), "kv-cache".into()];
        let SignUp::Confirm(again) = store.sign_up(&web, now).unwrap() else {
            panic!("one who left is owed a confirmation");
        };
        assert_eq!(again.tags, ["gqa", "kv-cache"]);
    }
    }

    store_test! {
    fn three_permanent_failures_in_a_row_bounce(store) {
        let now = DateTime::UNIX_EPOCH;
        store
            .save_subscriber(&new("b@example.com", SubscriberStatus::Active), now)
            .unwrap();
        let id = store.subscribers().unwrap()[0].id;
        assert!(!store.record_permanent_failure(id, now).unwrap());
        store.reset_failures(id).unwrap();
        assert!(!store.record_permanent_failure(id, now).unwrap());
        assert!(!store.record_permanent_failure(id, now).unwrap());
        assert!(store.record_permanent_failure(id, now).unwrap());
        assert_eq!(
            store.subscriber_by_id(id).unwrap().unwrap().status,
            SubscriberStatus::Bounced
        );
        assert!(
            store
                .active_subscriber_ids(EVERYONE, None, 0, 10)
                .unwrap()
                .is_empty()
        );
    }
    }

    store_test! {
    fn pages_through_active_subscribers(store) {
        let now = DateTime::UNIX_EPOCH;
        for i in 0..5 {
            store
                .save_subscriber(
                    &new(&format!("s{i}@example.com"), SubscriberStatus::Active),
                    now,
                )
                .unwrap();
        }
        store
            .save_subscriber(&new("p@example.com", SubscriberStatus::Pending), now)
            .unwrap();
        assert_eq!(
            store.active_subscriber_ids(EVERYONE, None, 0, 3).unwrap(),
            [1, 2, 3]
        );
        assert_eq!(
            store.active_subscriber_ids(EVERYONE, None, 3, 3).unwrap(),
            [4, 5]
        );
        assert!(store.remove_subscriber("s1@example.com").unwrap());
        assert!(!store.remove_subscriber("s1@example.com").unwrap());
    }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    store_test! {
    fn confirmations_are_capped_per_address_within_the_window(store) {
        let day = chrono::Duration::hours(24);
        let record = |email: &str, now: &str| {
            let now = at(now);
            store.record_confirmation(email, now - day, now, 3).unwrap()
        };
        for hour in ["00", "01", "02"] {
            assert!(record(
                "a@example.com",
                &format!("2026-06-01T{hour}:00:00Z")
            ));
        }
        assert!(!record("a@example.com", "2026-06-01T03:00:00Z"));
        assert!(
            !record("A@EXAMPLE.COM", "2026-06-01T04:00:00Z"),
            "addresses match case-insensitively"
        );
        assert!(
            record("b@example.com", "2026-06-01T04:00:00Z"),
            "per address"
        );
        // A day after the first, one more may go.
        assert!(record("a@example.com", "2026-06-02T00:00:01Z"));
        assert!(!record("a@example.com", "2026-06-02T00:30:00Z"));
        let kept: i64 = store
            .conn
            .query_one("SELECT count(*) FROM confirmations_sent", params![], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, 4, "records older than the window are forgotten");
    }
    }

    store_test! {
    fn sign_ups_are_counted_per_client_in_windows(store) {
        let window = chrono::Duration::minutes(10);
        let count = |client: &str, now: &str| {
            let now = at(now);
            store.count_sign_up(client, now - window, now).unwrap()
        };
        for (n, minute) in ["00", "03", "09"].iter().enumerate() {
            let now = format!("2026-06-01T08:{minute}:00Z");
            assert_eq!(count("198.51.100.7", &now) as usize, n + 1);
        }
        assert_eq!(count("2001:db8:1:2::/64", "2026-06-01T08:09:30Z"), 1, "per client");
        // The window began at 08:00 and lasts ten minutes, whatever came since.
        assert_eq!(count("198.51.100.7", "2026-06-01T08:09:59Z"), 4);
        assert_eq!(count("198.51.100.7", "2026-06-01T08:10:00Z"), 1, "a new window");
        assert_eq!(count("198.51.100.7", "2026-06-01T08:11:00Z"), 2);
        // The clock set back an hour: the window from the future ends.
        assert_eq!(count("198.51.100.7", "2026-06-01T07:11:00Z"), 1);
        assert_eq!(count("198.51.100.7", "2026-06-01T08:11:00Z"), 1);
        // Ended windows go with the pending sign-ups' purge.
        store.purge_pending(at("2026-06-01T08:10:00Z")).unwrap();
        let kept: Vec<String> = store
            .conn
            .query("SELECT client FROM sign_up_windows", params![], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, ["198.51.100.7"]);
    }
    }

    store_test! {
    fn purging_removes_old_pending_sign_ups_only(store) {
        let old = at("2026-06-01T00:00:00Z");
        for (email, status) in [
            ("old-pending@example.com", SubscriberStatus::Pending),
            ("active@example.com", SubscriberStatus::Active),
            ("left@example.com", SubscriberStatus::Unsubscribed),
            ("bounced@example.com", SubscriberStatus::Bounced),
        ] {
            store.save_subscriber(&new(email, status), old).unwrap();
        }
        store
            .save_subscriber(
                &new("new-pending@example.com", SubscriberStatus::Pending),
                at("2026-06-07T00:00:00Z"),
            )
            .unwrap();
        let purged = store.purge_pending(at("2026-06-02T00:00:00Z")).unwrap();
        assert_eq!(purged, 1);
        let left: Vec<String> = store
            .subscribers()
            .unwrap()
            .into_iter()
            .map(|s| s.email)
            .collect();
        assert_eq!(
            left,
            [
                "active@example.com",
                "left@example.com",
                "bounced@example.com",
                "new-pending@example.com"
            ]
        );
        assert_eq!(store.purge_pending(at("2026-06-02T00:00:00Z")).unwrap(), 0);
    }
    }

    store_test! {
    fn a_sign_up_says_which_email_the_address_is_owed(store) {
        let now = DateTime::UNIX_EPOCH;
        let web = new("w@example.com", SubscriberStatus::Pending);
        let SignUp::Confirm(pending) = store.sign_up(&web, now).unwrap() else {
            panic!("a new address is owed a confirmation");
        };
        assert_eq!(pending.status, SubscriberStatus::Pending);
        assert!(matches!(
            store.sign_up(&web, now).unwrap(),
            SignUp::Confirm(_)
        ));
        assert!(store.confirm(pending.id, now).unwrap());
        let again = NewSubscriber {
            tracks: vec!["other".into()],
            ..web.clone()
        };
        let SignUp::Manage(active) = store.sign_up(&again, now).unwrap() else {
            panic!("an active address is owed its manage link");
        };
        assert_eq!(active.tracks, ["llm"], "its tracks are left alone");
        store
            .set_status(active.id, SubscriberStatus::Unsubscribed, now)
            .unwrap();
        assert!(matches!(
            store.sign_up(&web, now).unwrap(),
            SignUp::Confirm(_)
        ));
        crate::store::Events::suppress(&store, "w@example.com", "complaint", now).unwrap();
        assert_eq!(store.sign_up(&web, now).unwrap(), SignUp::Suppressed);
    }
    }

    store_test! {
    fn consent_says_where_when_and_to_which_text(store) {
        let now = DateTime::UNIX_EPOCH;
        let mut web = new("w@example.com", SubscriberStatus::Pending);
        web.source = "web".into();
        web.consent_text = "2".into();
        store.sign_up(&web, now).unwrap();
        let id = store.subscribers().unwrap()[0].id;
        assert_eq!(
            store.consent(id).unwrap(),
            Some(Consent {
                source: "web".into(),
                text: "2".into(),
                at: Some(now),
            })
        );
        assert_eq!(store.consent(id + 1).unwrap(), None);
    }
    }
}
