//! Moving a list between engines: every row of every table, copied as it
//! is (ids, times, states) from one store into another that is empty, in
//! one transaction on the target, and counted again on both sides after.
//! It must not change or interpret a row: what a copy holds is what the
//! source held.

use super::sql::{Lock, Param, Row, params};
use super::{Database, StoreError};

/// A column's kind, which says how it is read and written on both engines.
#[derive(Clone, Copy)]
enum Kind {
    Int,
    Text,
}

/// A table: its name, its columns, and the order its rows are copied in
/// (that of their first recording).
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    order: &'static str,
}

/// The tables, parents before children.
const TABLES: &[Table] = {
    use Kind::{Int, Text};
    &[
        Table {
            name: "publications",
            columns: &[("seq", Int), ("short_id", Text), ("seen_at", Text)],
            order: "seq",
        },
        Table {
            name: "digests",
            columns: &[
                ("number", Int),
                ("cadence", Text),
                ("issue", Int),
                ("slot", Text),
                ("period_start", Text),
                ("since_seq", Int),
                ("through_seq", Int),
                ("created_at", Text),
                ("completed_at", Text),
            ],
            order: "number",
        },
        Table {
            name: "digest_shorts",
            columns: &[("digest", Int), ("short_id", Text), ("track", Text)],
            order: "rowid",
        },
        Table {
            name: "subscribers",
            columns: &[
                ("id", Int),
                ("email", Text),
                ("name", Text),
                ("tracks", Text),
                ("status", Text),
                ("token_id", Text),
                ("consent_at", Text),
                ("confirmed_at", Text),
                ("source", Text),
                ("failures", Int),
                ("created_at", Text),
                ("updated_at", Text),
                ("consent_text", Text),
                ("tags", Text),
                ("cadence", Text),
                ("through_seq", Int),
                ("paused_at", Text),
            ],
            order: "id",
        },
        Table {
            name: "deliveries",
            columns: &[
                ("digest", Int),
                ("subscriber", Int),
                ("state", Text),
                ("attempts", Int),
                ("last_error", Text),
                ("message_id", Text),
                ("updated_at", Text),
                ("since_seq", Int),
                ("lease_until", Text),
            ],
            order: "digest, subscriber",
        },
        Table {
            name: "events",
            columns: &[
                ("id", Int),
                ("received_at", Text),
                ("kind", Text),
                ("subscriber", Int),
                ("email", Text),
                ("digest", Int),
                ("status", Text),
                ("diagnostic", Text),
                ("message_id", Text),
                ("source", Text),
                ("once", Text),
            ],
            order: "id",
        },
        Table {
            name: "suppressions",
            columns: &[("email", Text), ("reason", Text), ("at", Text)],
            order: "at, email",
        },
        Table {
            name: "confirmations_sent",
            columns: &[("email", Text), ("sent_at", Text)],
            order: "sent_at, email",
        },
        Table {
            name: "sign_up_windows",
            columns: &[("client", Text), ("began_at", Text), ("sign_ups", Int)],
            order: "client",
        },
        Table {
            name: "mail_queue",
            columns: &[
                ("id", Int),
                ("kind", Text),
                ("email", Text),
                ("tracks", Text),
                ("tags", Text),
                ("consent_text", Text),
                ("source", Text),
                ("subscriber", Int),
                ("state", Text),
                ("sent_as", Text),
                ("attempts", Int),
                ("due_at", Text),
                ("claimed_at", Text),
                ("last_error", Text),
                ("message_id", Text),
                ("created_at", Text),
                ("updated_at", Text),
                ("cadence", Text),
            ],
            order: "id",
        },
    ]
};

/// The tables whose ids the target numbers itself from now on.
const NUMBERED: &[&str] = &["subscribers", "events", "mail_queue"];

/// One value, as a column of its kind holds it.
enum Value {
    Int(Option<i64>),
    Text(Option<String>),
}

impl Value {
    fn read(row: &Row<'_>, index: usize, kind: Kind) -> Result<Value, StoreError> {
        Ok(match kind {
            Kind::Int => Value::Int(row.get(index)?),
            Kind::Text => Value::Text(row.get(index)?),
        })
    }

    fn param(&self) -> &dyn Param {
        match self {
            Value::Int(value) => value,
            Value::Text(value) => value,
        }
    }
}

/// How many rows each table had, in [`TABLES`]' order.
pub type Counts = Vec<(&'static str, usize)>;

/// Copies every row of `from` into `to`, which must hold none; returns the
/// rows copied per table, counted again in `to` after the commit.
pub fn copy_all(from: &Database, to: &Database) -> Result<Counts, StoreError> {
    let held = to.row_counts()?;
    if let Some((table, n)) = held.iter().find(|(_, n)| *n > 0) {
        return Err(StoreError::NotEmpty {
            table: table.to_string(),
            rows: *n,
        });
    }
    let tx = to.conn.transaction(Lock::Immediate)?;
    for Table {
        name: table,
        columns,
        order,
    } in TABLES
    {
        let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        let select = format!("SELECT {} FROM {table} ORDER BY {order}", names.join(", "));
        let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        let insert = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            names.join(", "),
            placeholders.join(", ")
        );
        let rows = from.conn.query(&select, params![], |row| {
            columns
                .iter()
                .enumerate()
                .map(|(i, (_, kind))| Value::read(row, i, *kind))
                .collect::<Result<Vec<_>, _>>()
        })?;
        for row in rows {
            let values: Vec<&dyn Param> = row.iter().map(Value::param).collect();
            to.conn.execute(&insert, &values)?;
        }
    }
    if to.conn.is_postgres() {
        restart_numbering(to)?;
    }
    tx.commit()?;
    let copied = to.row_counts()?;
    let source = from.row_counts()?;
    if copied != source {
        return Err(StoreError::Corrupt(format!(
            "the copy holds {copied:?} rows but the source {source:?}"
        )));
    }
    Ok(copied)
}

/// PostgreSQL numbers new rows from a sequence that copied ids did not
/// move: it goes on after the highest.
fn restart_numbering(to: &Database) -> Result<(), StoreError> {
    for table in NUMBERED {
        to.conn.query_one(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false) FROM {table}"
            ),
            params![],
            |_| Ok(()),
        )?;
    }
    Ok(())
}

impl Database {
    /// How many rows each table holds, in [`TABLES`]' order.
    pub fn row_counts(&self) -> Result<Counts, StoreError> {
        TABLES
            .iter()
            .map(|Table { name: table, .. }| {
                let n: i64 = self.conn.query_one(
                    &format!("SELECT count(*) FROM {table}"),
                    params![],
                    |r| r.get(0),
                )?;
                Ok((*table, usize::try_from(n).unwrap_or_default()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SubscriberStatus;
    use crate::store::testing::store_test;
    use crate::store::{
        Events, Ledger, MailQueue, NewDigest, NewEvent, NewSubscriber, SubscriberStore,
    };
    use chrono::{DateTime, Utc};

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// A store with a row in every table.
    fn everything(store: &Database) {
        let now = at("2026-06-08T08:00:00Z");
        for (email, status) in [
            ("a@example.com", SubscriberStatus::Active),
            ("b@example.com", SubscriberStatus::Unsubscribed),
        ] {
            let new = NewSubscriber {
                email: email.into(),
                name: "A".into(),
                tracks: vec!["llm".into()],
                tags: vec![],
                status,
                source: "import:list.csv".into(),
                consent_text: "v2".into(),
                cadence: Some("daily".into()),
            };
            store.save_subscriber(&new, now).unwrap();
        }
        let digest = store
            .create_digest(
                &NewDigest {
                    cadence: "",
                    slot: now,
                    period_start: at("2026-06-01T08:00:00Z"),
                    since: None,
                    first_seen: &["kv-cache", "bm25"],
                    through: 2,
                    shorts: &[("kv-cache", "llm"), ("bm25", "rag")],
                },
                now,
            )
            .unwrap();
        store.claim(digest.number, 1, "<1.1@x>", None, now).unwrap();
        store.mark_sent(digest.number, 1, now).unwrap();
        store.settle_through(1, 2).unwrap();
        store
            .record_event(&NewEvent {
                received_at: now,
                kind: "hard_bounce",
                subscriber: Some(2),
                email: Some("b@example.com"),
                digest: Some(digest.number),
                status: Some("5.1.1"),
                diagnostic: "no such user",
                message_id: "<1.2@x>",
                source: "stdin",
            })
            .unwrap();
        store
            .suppress("gone@example.com", "complaint", now)
            .unwrap();
        store
            .record_confirmation("new@example.com", at("2026-06-07T08:00:00Z"), now, 3)
            .unwrap();
        store
            .count_sign_up("198.51.100.7", at("2026-06-08T07:50:00Z"), now)
            .unwrap();
        store.queue_welcome(1, now).unwrap();
    }

    store_test! {
    /// From either engine to PostgreSQL (and to SQLite): every row, the
    /// same ids and states, and new rows numbered after the copied ones.
    fn a_copy_holds_every_row_and_numbers_new_ones_after_them(store) {
        everything(&store);
        let targets = [
            Some(Database::in_memory().unwrap()),
            crate::store::testing::postgres(),
        ];
        for target in targets.into_iter().flatten() {
            let counts = copy_all(&store, &target).unwrap();
            assert!(counts.iter().all(|(_, n)| *n >= 1), "{counts:?}");
            assert_eq!(target.subscribers().unwrap(), store.subscribers().unwrap());
            assert_eq!(target.consent(1).unwrap(), store.consent(1).unwrap());
            assert_eq!(target.deliveries(1).unwrap(), store.deliveries(1).unwrap());
            assert_eq!(target.watermark(1).unwrap(), Some(2));
            assert_eq!(target.digests().unwrap(), store.digests().unwrap());
            assert_eq!(target.digest_short_ids(1).unwrap(), ["kv-cache", "bm25"]);
            assert_eq!(target.events_for("B@example.com").unwrap().len(), 1);
            assert!(target.suppression("gone@example.com").unwrap().is_some());
            let later = at("2026-06-09T08:00:00Z");
            target.queue_welcome(1, later).unwrap();
            let new = NewSubscriber {
                email: "c@example.com".into(),
                name: String::new(),
                tracks: vec![],
                tags: vec![],
                status: SubscriberStatus::Active,
                source: "cli".into(),
                consent_text: String::new(),
                cadence: None,
            };
            target.save_subscriber(&new, later).unwrap();
            assert_eq!(target.subscriber_by_email("c@example.com").unwrap().unwrap().id, 3);

            let again = copy_all(&store, &target).expect_err("not empty");
            assert!(again.to_string().contains("a copy goes only into an empty one"), "{again}");
        }
    }
    }
}
