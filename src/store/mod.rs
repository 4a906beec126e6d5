//! Storage: subscribers and the delivery ledger, behind the [`Store`] trait.
//!
//! [`SubscriberStore`], [`Ledger`], [`Events`] and [`MailQueue`] say what the rest of the code may ask
//! and record; [`Database`] implements them once, on SQLite (the embedded
//! default, `sqlite`) or PostgreSQL (`postgres`), through one connection
//! type (`sql`). Everything else takes `&dyn Store`. A store answers
//! questions and records facts; deciding what is due or what to send is
//! `digest`'s job.
//!
//! This module owns every SQL statement, written once in the SQL both
//! engines speak; `sqlite` and `postgres` own each engine's schema
//! (numbered migrations run on open under a lock) and connection.

mod copy;
mod events;
mod ledger;
mod mail_queue;
mod postgres;
mod sql;
mod sqlite;
mod subscribers;
#[cfg(test)]
pub(crate) mod testing;

pub use copy::{Counts, copy_all};
pub use events::{DigestCounts, Event, Events, NewEvent, Suppression};
pub use ledger::{CLAIM_LEASE, Delivery, DeliveryState, DigestRecord, Ledger, NewDigest};
pub use mail_queue::{MailQueue, MailQueueCounts, MailRequest, QueuedMail};
pub use postgres::scratch_schema as postgres_scratch_schema;
pub use subscribers::{Consent, NewSubscriber, Saved, SignUp, SubscriberStore};

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use sql::{Conn, Lock};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("creating the folder for database {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "database {path} has schema version {found}, newer than this shorts knows ({known}); upgrade shorts"
    )]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// The driver's error says why, with its own cause: it is not also
    /// this error's source, or a report would say it twice.
    #[error("database {url}: cannot connect: {}", postgres::describe(.error))]
    Connect {
        url: String,
        error: ::postgres::Error,
    },
    #[error(
        "database {url} takes no writes (a read-only replica or a read-only session): give the primary's URL"
    )]
    ReadOnly { url: String },
    /// Not a source either, for the same reason as [`StoreError::Connect`].
    #[error("database: {}", postgres::describe(.0))]
    Postgres(::postgres::Error),
    #[error("the target database holds {rows} rows in {table}; a copy goes only into an empty one")]
    NotEmpty { table: String, rows: usize },
    /// Another sender recorded what this one was about to (a digest, the
    /// publications it numbers): planning again finds it.
    #[error("{0}; plan it again")]
    Raced(String),
    #[error("database holds an invalid value: {0}")]
    Corrupt(String),
}

impl From<::postgres::Error> for StoreError {
    fn from(error: ::postgres::Error) -> Self {
        StoreError::Postgres(error)
    }
}

impl StoreError {
    /// Another process holds a lock the statement needed: trying again
    /// later will do.
    pub fn is_busy(&self) -> bool {
        match self {
            StoreError::Sql(e) => sqlite::is_busy(e),
            StoreError::Postgres(e) => postgres::is_busy(e),
            _ => false,
        }
    }

    /// The database server cannot be reached, or the connection to it
    /// broke: a temporary failure, which the next run gets past.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Connect { error, .. } => postgres::is_unavailable(error),
            StoreError::Postgres(e) => e.is_closed() || postgres::is_unavailable(e),
            _ => false,
        }
    }

    /// The setting is wrong, not the run: a server that takes no writes, a
    /// database that does not exist, a user or password it refuses.
    pub fn is_misconfigured(&self) -> bool {
        match self {
            StoreError::ReadOnly { .. } => true,
            StoreError::Connect { error, .. } => postgres::is_refused_setting(error),
            _ => false,
        }
    }
}

/// Where the store lives: `[build] database` (or `SHORTS_DATABASE_URL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite file, created on first use.
    File(PathBuf),
    /// A PostgreSQL server, as a `postgres://` URL.
    Postgres(String),
}

impl Location {
    /// `value` as the config gives it: a `postgres://` (or `postgresql://`)
    /// URL, or a path, taken relative to `root`.
    pub fn parse(value: &str, root: &Path) -> Location {
        if postgres::is_url(value) {
            Location::Postgres(value.to_string())
        } else {
            Location::File(root.join(value))
        }
    }
}

impl Location {
    /// Why the location cannot work, found without connecting: a URL the
    /// driver cannot read.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Location::File(_) => Ok(()),
            Location::Postgres(url) => postgres::check_url(url),
        }
    }
}

impl fmt::Display for Location {
    /// The path, or the URL with any password hidden: it goes in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => f.write_str(&postgres::without_password(url)),
        }
    }
}

impl From<&Path> for Location {
    fn from(path: &Path) -> Location {
        Location::File(path.to_path_buf())
    }
}

impl From<&PathBuf> for Location {
    fn from(path: &PathBuf) -> Location {
        Location::File(path.clone())
    }
}

impl From<&Location> for Location {
    fn from(location: &Location) -> Location {
        location.clone()
    }
}

/// The subscribers one cadence's digests go to, besides being active and
/// not paused.
#[derive(Debug, Clone, Copy)]
pub enum Members<'a> {
    /// The default cadence's: those who chose it, and those whose cadence
    /// the config no longer offers. `others` are the keys of the cadences
    /// it does offer besides.
    Default { others: &'a [&'a str] },
    /// Those who chose the cadence with this key.
    Of(&'a str),
}

impl Members<'_> {
    /// A condition on `subscribers` using the parameter `?n`, and its value.
    fn condition(&self, n: usize) -> (String, String) {
        match self {
            // "<daily><instant>": no key is empty, so "<>" (the default's) is never in it.
            Members::Default { others } => (
                format!("instr(?{n}, '<' || cadence || '>') = 0"),
                others.iter().map(|key| format!("<{key}>")).collect(),
            ),
            Members::Of(key) => (format!("cadence = ?{n}"), key.to_string()),
        }
    }
}

/// Subscribers and the ledger in one place, with transactions: what the
/// digest, the server, the subscriber commands and the site use.
pub trait Store: SubscriberStore + Ledger + Events + MailQueue + Send {
    /// Opens a transaction for many small writes (an import, a batch of
    /// deliveries), so they cost one commit instead of one each; dropped
    /// without [`Batch::commit`], it rolls back.
    fn batch(&self) -> Result<Box<dyn Batch + '_>, StoreError>;

    /// How many migrations the database has had.
    fn schema_version(&self) -> Result<i64, StoreError>;

    /// The backend's own consistency check: "ok" when the data is sound.
    fn integrity_check(&self) -> Result<String, StoreError>;
}

/// Writes made together; see [`Store::batch`].
pub trait Batch {
    fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// The store, on either engine.
pub struct Database {
    conn: Conn,
}

impl Database {
    /// Opens (creating and migrating it if needed) the store at `location`.
    pub fn open(location: impl Into<Location>) -> Result<Database, StoreError> {
        match location.into() {
            Location::File(path) => sqlite::open(&path),
            Location::Postgres(url) => postgres::connect(&url),
        }
    }

    /// Opens an existing store without writing to it; `None` if there is
    /// none yet, or its schema is not there yet: a store another process
    /// is creating has no digests and no subscribers to read.
    pub fn open_read_only(location: impl Into<Location>) -> Result<Option<Database>, StoreError> {
        match location.into() {
            Location::File(path) => sqlite::open_read_only(&path),
            Location::Postgres(url) => postgres::connect_read_only(&url),
        }
    }

    /// An empty SQLite database in memory, for previews and tests.
    pub fn in_memory() -> Result<Database, StoreError> {
        sqlite::in_memory()
    }

    /// Waits at most `wait` for another process's lock before a statement
    /// fails as busy ([`StoreError::is_busy`]): `serve` answers a reader
    /// "try again" rather than holding them for the default 10 s.
    pub fn with_busy_timeout(self, wait: std::time::Duration) -> Result<Database, StoreError> {
        match self.conn.as_sqlite() {
            Some(connection) => connection.busy_timeout(wait)?,
            None => postgres::set_lock_timeout(&self.conn, wait)?,
        }
        Ok(self)
    }
}

impl Store for Database {
    fn batch(&self) -> Result<Box<dyn Batch + '_>, StoreError> {
        Ok(Box::new(self.conn.transaction(Lock::Immediate)?))
    }

    fn schema_version(&self) -> Result<i64, StoreError> {
        match self.conn.as_sqlite() {
            Some(connection) => sqlite::schema_version(connection),
            None => postgres::schema_version(&self.conn),
        }
    }

    fn integrity_check(&self) -> Result<String, StoreError> {
        match self.conn.as_sqlite() {
            Some(connection) => sqlite::integrity_check(connection),
            None => postgres::integrity_check(&self.conn),
        }
    }
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp {text:?}: {e}")))
}
