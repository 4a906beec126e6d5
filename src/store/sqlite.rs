//! The embedded engine: one SQLite file (WAL), created on first use, and
//! its schema, numbered migrations run on open under an exclusive lock with
//! the version kept in `PRAGMA user_version`. It must not hold statements
//! the store runs on PostgreSQL too; those live in the store modules.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::sql::{Conn, Lock};
use super::{Database, StoreError};

/// Each entry upgrades the schema by one version; never edit a released one.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: subscribers, digests and the delivery ledger.
    "CREATE TABLE subscribers (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL UNIQUE COLLATE NOCASE,
        name TEXT NOT NULL DEFAULT '',
        tracks TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'unsubscribed', 'bounced')),
        token_id TEXT NOT NULL UNIQUE,
        consent_at TEXT,
        confirmed_at TEXT,
        source TEXT NOT NULL DEFAULT '',
        failures INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE digests (
        number INTEGER PRIMARY KEY,
        slot TEXT NOT NULL UNIQUE,
        period_start TEXT NOT NULL,
        created_at TEXT NOT NULL,
        completed_at TEXT
    );
    CREATE TABLE digest_shorts (
        digest INTEGER NOT NULL REFERENCES digests (number),
        slug TEXT NOT NULL UNIQUE,
        track TEXT NOT NULL,
        PRIMARY KEY (digest, slug)
    );
    CREATE TABLE deliveries (
        digest INTEGER NOT NULL REFERENCES digests (number),
        subscriber INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('sending', 'sent', 'deferred', 'failed', 'skipped')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        message_id TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (digest, subscriber)
    );",
    // 2: which version of the sign-up text a subscriber agreed to (GDPR Art. 7(1)).
    "ALTER TABLE subscribers ADD COLUMN consent_text TEXT NOT NULL DEFAULT '';",
    // 3: what came back (bounces, complaints, unsubscribe requests) and the
    // addresses never to be mailed again.
    "CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        received_at TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('hard_bounce', 'soft_bounce', 'complaint',
            'unsubscribe', 'auto_reply', 'delivered', 'unrecognised')),
        subscriber INTEGER,
        email TEXT COLLATE NOCASE,
        digest INTEGER,
        status TEXT,
        diagnostic TEXT NOT NULL DEFAULT '',
        message_id TEXT NOT NULL,
        source TEXT NOT NULL,
        once TEXT NOT NULL UNIQUE
    );
    CREATE INDEX events_by_email ON events (email);
    CREATE INDEX events_by_subscriber ON events (subscriber, kind, received_at);
    CREATE INDEX events_by_digest ON events (digest);
    CREATE TABLE suppressions (
        email TEXT PRIMARY KEY COLLATE NOCASE,
        reason TEXT NOT NULL,
        at TEXT NOT NULL
    );",
    // 4: each confirmation email sent, so the per-address cap on them holds
    // across restarts and across several `serve` processes (list-bombing).
    "CREATE TABLE confirmations_sent (
        email TEXT NOT NULL COLLATE NOCASE,
        sent_at TEXT NOT NULL
    );
    CREATE INDEX confirmations_sent_by_email ON confirmations_sent (email, sent_at);
    CREATE INDEX confirmations_sent_by_time ON confirmations_sent (sent_at);",
    // 5: the tags a subscriber follows besides tracks, comma-separated like
    // `tracks`; '' for everyone before, which keeps what they got.
    "ALTER TABLE subscribers ADD COLUMN tags TEXT NOT NULL DEFAULT '';",
    // 6: emails to subscribers that are not digests (confirmation, manage,
    // welcome), sent by `serve` in the background.
    "CREATE TABLE mail_queue (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('sign_up', 'welcome')),
        email TEXT NOT NULL COLLATE NOCASE,
        tracks TEXT NOT NULL DEFAULT '',
        tags TEXT NOT NULL DEFAULT '',
        consent_text TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL DEFAULT '',
        subscriber INTEGER,
        state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'dropped', 'failed')),
        sent_as TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        due_at TEXT NOT NULL,
        claimed_at TEXT,
        last_error TEXT,
        message_id TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX mail_queue_due ON mail_queue (state, due_at);",
    // 7: a digest's shorts are recorded by id, which survives a rename;
    // every short had its slug as its id until now, so the rows stand.
    "ALTER TABLE digest_shorts RENAME COLUMN slug TO short_id;",
    // 8: readers choose their cadence, and each is owed exactly the shorts
    // published since their own last message. `publications` numbers each
    // short in the order it was first seen published (seeded from what the
    // digests carried, in their order); a digest carries the publications up
    // to `through_seq`, its issue those after `since_seq` (NULL: a cadence's
    // first, which starts at its period); a subscriber's `through_seq` is the
    // last publication settled for them (NULL: none yet, so the next issue of
    // their cadence), and a delivery's `since_seq` where their copy started
    // (NULL: the issue). Until now every active subscriber got the next
    // digest whole: they stand at the end of the last finished digest, and
    // those already settled in an unfinished one at its end (NULL, the
    // next issue, only before any digest finished). A short may now be carried by one digest of each
    // cadence, and two cadences may share a slot: both tables are rebuilt.
    "CREATE TABLE publications (
        seq INTEGER PRIMARY KEY,
        short_id TEXT NOT NULL UNIQUE,
        seen_at TEXT NOT NULL
    );
    INSERT INTO publications (short_id, seen_at)
        SELECT ds.short_id, d.created_at FROM digest_shorts ds JOIN digests d ON d.number = ds.digest
        ORDER BY ds.digest, ds.rowid;
    CREATE TABLE digests_v8 (
        number INTEGER PRIMARY KEY,
        cadence TEXT NOT NULL DEFAULT '',
        issue INTEGER NOT NULL,
        slot TEXT NOT NULL,
        period_start TEXT NOT NULL,
        since_seq INTEGER,
        through_seq INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        completed_at TEXT,
        UNIQUE (cadence, slot),
        UNIQUE (cadence, issue)
    );
    INSERT INTO digests_v8 (number, cadence, issue, slot, period_start, since_seq, through_seq, created_at, completed_at)
        SELECT number, '', number, slot, period_start,
            (SELECT coalesce(max(p.seq), 0) FROM publications p JOIN digest_shorts ds ON ds.short_id = p.short_id
             WHERE ds.digest < d.number),
            (SELECT coalesce(max(p.seq), 0) FROM publications p JOIN digest_shorts ds ON ds.short_id = p.short_id
             WHERE ds.digest <= d.number),
            created_at, completed_at
        FROM digests d ORDER BY number;
    DROP TABLE digests;
    ALTER TABLE digests_v8 RENAME TO digests;
    CREATE TABLE digest_shorts_v8 (
        digest INTEGER NOT NULL REFERENCES digests (number),
        short_id TEXT NOT NULL,
        track TEXT NOT NULL,
        PRIMARY KEY (digest, short_id)
    );
    INSERT INTO digest_shorts_v8 (digest, short_id, track)
        SELECT digest, short_id, track FROM digest_shorts ORDER BY rowid;
    DROP TABLE digest_shorts;
    ALTER TABLE digest_shorts_v8 RENAME TO digest_shorts;
    CREATE INDEX digest_shorts_by_short ON digest_shorts (short_id);
    ALTER TABLE deliveries ADD COLUMN since_seq INTEGER;
    ALTER TABLE subscribers ADD COLUMN cadence TEXT NOT NULL DEFAULT '';
    ALTER TABLE subscribers ADD COLUMN through_seq INTEGER;
    ALTER TABLE subscribers ADD COLUMN paused_at TEXT;
    ALTER TABLE mail_queue ADD COLUMN cadence TEXT NOT NULL DEFAULT '';
    UPDATE subscribers SET through_seq = coalesce(
        (SELECT max(d.through_seq) FROM deliveries dl JOIN digests d ON d.number = dl.digest
         WHERE dl.subscriber = subscribers.id AND d.completed_at IS NULL),
        (SELECT through_seq FROM digests WHERE completed_at IS NOT NULL ORDER BY number DESC LIMIT 1));",
    // 9: a claim on a shared ledger is a lease (PostgreSQL's 2); SQLite's
    // claims have none, the run lock keeps other senders out.
    "ALTER TABLE deliveries ADD COLUMN lease_until TEXT;",
    // 10: sign-ups per client, counted in the database so that `serve`
    // replicas sharing it limit a client together (PostgreSQL's 3).
    "CREATE TABLE sign_up_windows (
        client TEXT PRIMARY KEY,
        began_at TEXT NOT NULL,
        sign_ups INTEGER NOT NULL
    );
    CREATE INDEX sign_up_windows_by_time ON sign_up_windows (began_at);",
];

/// How long an open waits for another process that is creating or migrating
/// the database, and any statement for another's write.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Between tries of a step SQLite refuses with "busy" without waiting itself.
const BUSY_RETRY: Duration = Duration::from_millis(20);

/// Opens (creating it and its folder if needed) and migrates the database.
/// Processes may do this at once on a new file: the schema is created
/// under an exclusive lock, so one creates it and the others wait.
pub(super) fn open(path: &Path) -> Result<Database, StoreError> {
    let shown = path.display().to_string();
    if let Some(parent) = path.parent() {
        crate::private::create_dir(parent).map_err(|source| StoreError::Folder {
            path: shown.clone(),
            source,
        })?;
    }
    // SQLite would create it 0644; its -wal and -shm files take the
    // database's permissions, so creating it 0600 covers them too.
    crate::private::open_file(path).map_err(|source| StoreError::Folder {
        path: shown.clone(),
        source,
    })?;
    let conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: shown.clone(),
        source,
    })?;
    prepare(conn, &shown)
}

/// See [`Database::open_read_only`].
pub(super) fn open_read_only(path: &Path) -> Result<Option<Database>, StoreError> {
    if !path.exists() {
        return Ok(None);
    }
    let shown = path.display().to_string();
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|source| {
            StoreError::Open {
                path: shown.clone(),
                source,
            }
        })?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let blank = {
        // One snapshot for both reads: a writer may commit the schema between them.
        let tx = conn.unchecked_transaction()?;
        let version = checked_version(&tx, &shown)?;
        let tables: i64 = tx.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        version == 0 && tables == 0
    };
    Ok((!blank).then(|| Database {
        conn: Conn::sqlite(conn),
    }))
}

/// See [`Database::in_memory`].
pub(super) fn in_memory() -> Result<Database, StoreError> {
    prepare(Connection::open_in_memory()?, ":memory:")
}

fn prepare(conn: Connection, shown: &str) -> Result<Database, StoreError> {
    // First: every later step may meet another process's lock.
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL: readers (shorts serve) never block the sender. NORMAL is
    // durable across process crashes, which is what the ledger promises.
    retry_while_busy(|| conn.pragma_update(None, "journal_mode", "WAL"))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let conn = Conn::sqlite(conn);
    migrate(&conn, shown)?;
    Ok(Database { conn })
}

fn migrate(conn: &Conn, shown: &str) -> Result<(), StoreError> {
    let Some(sqlite) = conn.as_sqlite() else {
        unreachable!("an SQLite connection")
    };
    let known = MIGRATIONS.len() as i64;
    // Without a lock first: an up-to-date database is the common case,
    // and a version never goes back down.
    if checked_version(sqlite, shown)? == known {
        return Ok(());
    }
    // A migration that rebuilds a table drops the old one, which foreign
    // keys would refuse; they are off while migrating (it cannot be
    // changed inside a transaction) and checked before the commit, as
    // SQLite's own procedure for schema changes does.
    sqlite.pragma_update(None, "foreign_keys", "OFF")?;
    let from = apply_migrations(conn, sqlite, shown);
    sqlite.pragma_update(None, "foreign_keys", "ON")?;
    let from = from?;
    if from < known {
        tracing::info!(from, to = known, "database migrated");
    }
    Ok(())
}

/// Applies the migrations the database has not had, in one transaction;
/// returns the version it was at.
fn apply_migrations(conn: &Conn, sqlite: &Connection, shown: &str) -> Result<i64, StoreError> {
    // EXCLUSIVE, and the version read again inside: another process may
    // have migrated since, and two must never both apply a migration.
    let tx = conn.transaction(Lock::Exclusive)?;
    let from = checked_version(sqlite, shown)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        sqlite.execute_batch(sql)?;
        sqlite.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    let broken: i64 =
        sqlite.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })?;
    if broken > 0 {
        return Err(StoreError::Corrupt(format!(
            "{broken} rows refer to rows that do not exist after migrating from version {from}; nothing was changed"
        )));
    }
    tx.commit()?;
    Ok(from)
}

pub(super) fn schema_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

pub(super) fn integrity_check(conn: &Connection) -> Result<String, StoreError> {
    Ok(conn.pragma_query_value(None, "integrity_check", |r| r.get(0))?)
}

/// The schema version, refused when a newer shorts wrote it.
fn checked_version(conn: &Connection, shown: &str) -> Result<i64, StoreError> {
    let found = schema_version(conn)?;
    let known = MIGRATIONS.len() as i64;
    if found > known {
        return Err(StoreError::TooNew {
            path: shown.to_string(),
            found,
            known,
        });
    }
    Ok(found)
}

/// Runs `step` until SQLite stops answering "busy", for at most [`BUSY_TIMEOUT`].
/// Switching to WAL needs every other connection's lock gone and can fail
/// at once, without the busy handler, when a process opens the file beside us.
fn retry_while_busy<T>(mut step: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match step() {
            Err(e) if is_busy(&e) && Instant::now() < deadline => std::thread::sleep(BUSY_RETRY),
            other => return other,
        }
    }
}

pub(super) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::*;

    fn sqlite(store: &Database) -> &Connection {
        store.conn.as_sqlite().expect("an SQLite store")
    }

    #[test]
    fn migrates_a_new_database_and_reopens_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/shorts.db");
        let store = Database::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
        drop(store);
        let store = Database::open(&path).unwrap();
        assert_eq!(store.integrity_check().unwrap(), "ok");
        assert!(Database::open_read_only(&path).unwrap().is_some());
        assert!(
            Database::open_read_only(&dir.path().join("none.db"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_version_1_database_is_migrated_with_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shorts.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO subscribers (email, status, token_id, created_at, updated_at)
                 VALUES ('old@example.com', 'active', 't', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
                [],
            )
            .unwrap();
        }
        let store = Database::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let kept = store
            .subscriber_by_email("old@example.com")
            .unwrap()
            .unwrap();
        assert_eq!(kept.token_id, "t");
        let consent: String = sqlite(&store)
            .query_row("SELECT consent_text FROM subscribers", [], |r| r.get(0))
            .unwrap();
        assert_eq!(consent, "");
    }

    #[test]
    fn a_version_6_database_keeps_what_its_digests_carried_now_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shorts.db");
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..6] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 6).unwrap();
            conn.execute_batch(
                "INSERT INTO digests (number, slot, period_start, created_at, completed_at)
                 VALUES (1, '2026-06-08T08:00:00Z', '2026-06-01T08:00:00Z', '2026-06-08T08:00:00Z', '2026-06-08T08:01:00Z');
                 INSERT INTO digest_shorts (digest, slug, track) VALUES (1, 'kv-cache', 'llm'), (1, 'gqa', 'llm');",
            )
            .unwrap();
        }
        let store = Database::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
        assert_eq!(store.digest_short_ids(1).unwrap(), ["kv-cache", "gqa"]);
        assert_eq!(store.publications().unwrap().len(), 2);
        assert_eq!(store.integrity_check().unwrap(), "ok");
    }

    /// Every table of a version 7 database.
    const TABLES_OF_VERSION_7: [&str; 8] = [
        "subscribers",
        "digests",
        "digest_shorts",
        "deliveries",
        "events",
        "suppressions",
        "confirmations_sent",
        "mail_queue",
    ];

    fn row_counts(conn: &Connection) -> Vec<i64> {
        TABLES_OF_VERSION_7
            .iter()
            .map(|t| {
                conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
                    .unwrap()
            })
            .collect()
    }

    /// Today's database (version 7) at `path`, with two finished digests
    /// and a third stopped half way, and a row in every table.
    fn version_7_database(path: &Path) -> Vec<i64> {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        for sql in &MIGRATIONS[..7] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 7).unwrap();
        conn.execute_batch(
            "INSERT INTO subscribers (id, email, tracks, status, token_id, created_at, updated_at)
             VALUES (1, 'a@example.com', '', 'active', 't1', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
                    (2, 'b@example.com', 'llm', 'active', 't2', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
                    (3, 'c@example.com', '', 'unsubscribed', 't3', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
             INSERT INTO digests (number, slot, period_start, created_at, completed_at) VALUES
                (1, '2026-06-08T08:00:00Z', '2026-06-01T08:00:00Z', '2026-06-08T08:00:00Z', '2026-06-08T08:01:00Z'),
                (2, '2026-06-15T08:00:00Z', '2026-06-08T08:00:00Z', '2026-06-15T08:00:00Z', '2026-06-15T08:01:00Z'),
                (3, '2026-06-22T08:00:00Z', '2026-06-15T08:00:00Z', '2026-06-22T08:00:00Z', NULL);
             INSERT INTO digest_shorts (digest, short_id, track) VALUES
                (1, 'kv-cache', 'llm'), (1, 'bm25', 'rag'), (2, 'gqa', 'llm'), (3, 'moe', 'llm'), (3, 'hnsw', 'rag');
             INSERT INTO deliveries (digest, subscriber, state, attempts, message_id, updated_at) VALUES
                (1, 1, 'sent', 1, '<1.1@x>', 'x'), (1, 2, 'sent', 1, '<1.2@x>', 'x'), (1, 3, 'sent', 1, '<1.3@x>', 'x'),
                (2, 1, 'sent', 1, '<2.1@x>', 'x'), (2, 2, 'sent', 1, '<2.2@x>', 'x'),
                (3, 2, 'deferred', 2, '<3.2@x>', 'x');
             INSERT INTO events (received_at, kind, subscriber, email, digest, message_id, source, once)
                VALUES ('x', 'unsubscribe', 3, 'c@example.com', 2, '<2.3@x>', 'test', 'once-1');
             INSERT INTO suppressions (email, reason, at) VALUES ('gone@example.com', 'complaint', 'x');
             INSERT INTO confirmations_sent (email, sent_at) VALUES ('new@example.com', 'x');
             INSERT INTO mail_queue (kind, email, state, due_at, created_at, updated_at)
                VALUES ('welcome', 'a@example.com', 'sent', 'x', 'x', 'x');",
        )
        .unwrap();
        row_counts(&conn)
    }

    /// Every row of every table is kept; each carried short becomes a
    /// publication, in the order the digests carried them; each digest
    /// knows its window; the subscribers stand where the old rules put them.
    #[test]
    fn a_version_7_database_keeps_every_row_and_numbers_what_was_carried() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shorts.db");
        let before = version_7_database(&path);
        let store = Database::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
        assert_eq!(store.integrity_check().unwrap(), "ok");
        assert_eq!(row_counts(sqlite(&store)), before, "every row is kept");
        let publications = store.publications().unwrap();
        let order = ["kv-cache", "bm25", "gqa", "moe", "hnsw"].map(|id| publications[id]);
        assert_eq!(
            order,
            [1, 2, 3, 4, 5],
            "in the order the digests carried them"
        );
        let windows: Vec<(i64, String, i64, Option<i64>, i64, bool)> = store
            .digests()
            .unwrap()
            .into_iter()
            .map(|d| {
                (
                    d.number,
                    d.cadence,
                    d.issue,
                    d.since,
                    d.through,
                    d.completed,
                )
            })
            .collect();
        assert_eq!(
            windows,
            [
                (1, String::new(), 1, Some(0), 2, true),
                (2, String::new(), 2, Some(2), 3, true),
                (3, String::new(), 3, Some(3), 5, false),
            ]
        );
        assert_eq!(store.digest_short_ids(3).unwrap(), ["moe", "hnsw"]);
        let watermarks = [1, 2, 3].map(|id| store.watermark(id).unwrap());
        assert_eq!(
            watermarks,
            [Some(3), Some(5), Some(3)],
            "a is owed digest #3's issue as before; b was claimed in it"
        );
        assert_eq!(
            store.claimed_since(3, 2).unwrap(),
            None,
            "b's copy is the issue"
        );
        assert_eq!(store.sent_digests().unwrap().len(), 2);
    }

    #[test]
    fn a_version_7_database_migrated_keeps_its_foreign_keys_and_unfinished_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shorts.db");
        version_7_database(&path);
        let store = Database::open(&path).unwrap();
        assert_eq!(
            store.unfinished_digest("").unwrap().map(|d| d.number),
            Some(3)
        );
        assert_eq!(
            store.delivery_state(3, 2).unwrap(),
            Some(DeliveryState::Deferred)
        );
        let fk_on: i64 = sqlite(&store)
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(fk_on, 1, "foreign keys are back on after migrating");
        let orphan = sqlite(&store).execute(
            "INSERT INTO deliveries (digest, subscriber, state, updated_at) VALUES (99, 1, 'sent', 'x')",
            [],
        );
        assert!(orphan.is_err(), "deliveries still refer to digests");
        let kept: String = sqlite(&store)
            .query_row("SELECT cadence FROM mail_queue", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, "", "queued mail has the default cadence");
    }

    #[test]
    fn a_version_4_database_keeps_its_subscribers_who_follow_no_tags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shorts.db");
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..4] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 4).unwrap();
            conn.execute(
                "INSERT INTO subscribers (email, tracks, status, token_id, created_at, updated_at)
                 VALUES ('llm@example.com', 'llm', 'active', 't1', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
                        ('all@example.com', '', 'active', 't2', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
                [],
            )
            .unwrap();
        }
        let store = Database::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let kept = store.subscribers().unwrap();
        let follows: Vec<(&str, &[String], &[String])> = kept
            .iter()
            .map(|s| (s.email.as_str(), &s.tracks[..], &s.tags[..]))
            .collect();
        assert_eq!(
            follows,
            [
                ("llm@example.com", &["llm".to_string()][..], &[][..]),
                ("all@example.com", &[][..], &[][..]),
            ]
        );
        assert!(kept[1].follows_everything(), "still every track");
        let raw: String = sqlite(&store)
            .query_row("SELECT tags FROM subscribers WHERE id = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(raw, "");
    }

    /// Processes started together (`shorts schedule` and `shorts serve`) all
    /// open a new database at once; whoever creates the schema, every open
    /// must succeed and see all of it.
    #[test]
    fn many_opens_of_one_fresh_database_at_once_all_succeed() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("data/shorts.db");
            let start = std::sync::Barrier::new(6);
            std::thread::scope(|scope| {
                let writers: Vec<_> = (0..4)
                    .map(|_| {
                        scope.spawn(|| {
                            start.wait();
                            Database::open(&path)?.digest_count()
                        })
                    })
                    .collect();
                let readers: Vec<_> = (0..2)
                    .map(|_| {
                        scope.spawn(|| {
                            start.wait();
                            match Database::open_read_only(&path)? {
                                Some(store) => store.sent_digests().map(|d| d.len() as i64),
                                None => Ok(0),
                            }
                        })
                    })
                    .collect();
                for opened in writers.into_iter().chain(readers) {
                    assert_eq!(opened.join().unwrap().unwrap(), 0);
                }
            });
            let store = Database::open(&path).unwrap();
            assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
        }
    }

    #[test]
    fn refuses_a_database_from_a_newer_shorts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shorts.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        assert!(matches!(
            Database::open(&path),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }
}
