//! The one connection a store talks through, to SQLite or to PostgreSQL.
//!
//! Owns what differs between the two engines below the SQL: placeholders
//! (`?1` is written once and becomes `$1` for PostgreSQL), prepared
//! statements kept per connection, parameter and column conversion, and
//! transactions (nested ones become savepoints on both). It must not know
//! any table: the statements are the store modules', written once in the
//! SQL both engines speak.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};

use super::StoreError;

/// A value a statement can take, on either engine.
pub(crate) trait Param: rusqlite::ToSql + postgres::types::ToSql + Sync {}
impl<T: rusqlite::ToSql + postgres::types::ToSql + Sync> Param for T {}

/// A value a column can be read as, on either engine.
pub(crate) trait Column:
    rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a>
{
}
impl<T: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a>> Column for T {}

/// A statement's parameters, `?1` first: `params![id, email]`.
macro_rules! params {
    () => {
        &[] as &[&dyn $crate::store::sql::Param]
    };
    ($($value:expr),+ $(,)?) => {
        &[$(&$value as &dyn $crate::store::sql::Param),+] as &[&dyn $crate::store::sql::Param]
    };
}
pub(crate) use params;

/// One row of a result, read by position.
pub(crate) enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a postgres::Row),
}

impl Row<'_> {
    pub(crate) fn get<T: Column>(&self, index: usize) -> Result<T, StoreError> {
        Ok(match self {
            Row::Sqlite(row) => row.get(index)?,
            Row::Postgres(row) => row.try_get(index)?,
        })
    }
}

/// How a transaction that starts at the outermost level takes SQLite's
/// lock (PostgreSQL locks rows as they are written).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lock {
    /// At once: a transaction that reads before it writes must not find
    /// its snapshot stale at the first write (SQLite then reports "busy"
    /// without waiting).
    Immediate,
    /// At once, and no reader either: migrations.
    Exclusive,
}

/// A connection to either engine.
pub(crate) struct Conn {
    engine: Engine,
    /// Transactions open: the outermost is BEGIN, the others savepoints.
    depth: Cell<u32>,
}

enum Engine {
    Sqlite(rusqlite::Connection),
    Postgres(Box<Postgres>),
}

/// Opens a new connection to the same server, as the first was opened.
pub(crate) type Connect = Box<dyn Fn() -> Result<postgres::Client, StoreError> + Send>;

struct Postgres {
    client: RefCell<postgres::Client>,
    /// For a connection that broke (a failover, a restart, an idle
    /// timeout): the next statement outside a transaction opens a new one,
    /// so a long-running `serve` outlives the server's restarts.
    connect: Connect,
    /// Settings made for this session (`SET …`), made again on a new connection.
    session: RefCell<Vec<String>>,
    /// Prepared once per connection, keyed by the statement as written.
    statements: RefCell<HashMap<String, postgres::Statement>>,
    /// Advisory locks the open transaction holds, with their function.
    locks_held: RefCell<HashSet<(i64, &'static str)>>,
}

/// How many SQLite statements stay compiled: more than the store has, so
/// a digest send never compiles one twice.
const SQLITE_STATEMENTS_KEPT: usize = 128;

impl Conn {
    pub(crate) fn sqlite(connection: rusqlite::Connection) -> Conn {
        connection.set_prepared_statement_cache_capacity(SQLITE_STATEMENTS_KEPT);
        Conn {
            engine: Engine::Sqlite(connection),
            depth: Cell::new(0),
        }
    }

    pub(crate) fn postgres(client: postgres::Client, connect: Connect) -> Conn {
        Conn {
            engine: Engine::Postgres(Box::new(Postgres {
                client: RefCell::new(client),
                connect,
                session: RefCell::default(),
                statements: RefCell::default(),
                locks_held: RefCell::default(),
            })),
            depth: Cell::new(0),
        }
    }

    /// The SQLite connection, for what only SQLite has (pragmas).
    pub(crate) fn as_sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.engine {
            Engine::Sqlite(connection) => Some(connection),
            Engine::Postgres(_) => None,
        }
    }

    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self.engine, Engine::Postgres(_))
    }

    /// Runs one statement; how many rows it changed.
    pub(crate) fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<usize, StoreError> {
        match &self.engine {
            Engine::Sqlite(connection) => Ok(connection
                .prepare_cached(sql)?
                .execute(sqlite_params(params))?),
            Engine::Postgres(postgres) => {
                let statement = postgres.statement(sql, self.depth.get())?;
                let changed = postgres
                    .client
                    .borrow_mut()
                    .execute(&statement, &postgres_params(params))?;
                Ok(usize::try_from(changed).unwrap_or(usize::MAX))
            }
        }
    }

    /// Every row `sql` returns, each read by `read`.
    pub(crate) fn query<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut read: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        match &self.engine {
            Engine::Sqlite(connection) => {
                let mut statement = connection.prepare_cached(sql)?;
                let mut rows = statement.query(sqlite_params(params))?;
                let mut read_rows = Vec::new();
                while let Some(row) = rows.next()? {
                    read_rows.push(read(&Row::Sqlite(row))?);
                }
                Ok(read_rows)
            }
            Engine::Postgres(postgres) => {
                let statement = postgres.statement(sql, self.depth.get())?;
                let rows = postgres
                    .client
                    .borrow_mut()
                    .query(&statement, &postgres_params(params))?;
                rows.iter().map(|row| read(&Row::Postgres(row))).collect()
            }
        }
    }

    /// The first row `sql` returns, if any.
    pub(crate) fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        read: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut read = Some(read);
        let mut first = None;
        // Only the first row is read; a query that might return more says LIMIT 1.
        self.query(sql, params, |row| {
            if let Some(read) = read.take() {
                first = Some(read(row)?);
            }
            Ok(())
        })?;
        Ok(first)
    }

    /// The row `sql` always returns (an aggregate, or a row known to be there).
    pub(crate) fn query_one<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        read: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.query_opt(sql, params, read)?
            .ok_or_else(|| StoreError::Corrupt(format!("no row where one was expected: {sql}")))
    }

    /// Runs several statements separated by `;`, without parameters.
    pub(crate) fn execute_batch(&self, sql: &str) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(connection) => Ok(connection.execute_batch(sql)?),
            Engine::Postgres(postgres) => {
                postgres.reconnect_if_broken(self.depth.get())?;
                Ok(postgres.client.borrow_mut().batch_execute(sql)?)
            }
        }
    }

    /// Runs `sql` (a `SET`) now, and on every connection that replaces
    /// this one. SQLite has no sessions to set.
    pub(crate) fn set_for_session(&self, sql: &str) -> Result<(), StoreError> {
        if let Engine::Postgres(postgres) = &self.engine {
            self.execute_batch(sql)?;
            postgres.session.borrow_mut().push(sql.to_string());
        }
        Ok(())
    }

    /// Inside a transaction, waits until no other connection holds `key`,
    /// and holds it until the transaction ends: PostgreSQL's advisory lock.
    /// SQLite needs none: a transaction that writes holds the whole file.
    pub(crate) fn lock_exclusively(&self, key: i64) -> Result<(), StoreError> {
        self.advisory_lock(key, "pg_advisory_xact_lock")
    }

    /// What a subquery choosing rows to claim ends with so that, on
    /// PostgreSQL, it passes over rows another transaction has locked
    /// (`FOR UPDATE SKIP LOCKED`); SQLite has one writer at a time.
    pub(crate) fn skip_locked(&self) -> &'static str {
        match self.engine {
            Engine::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            Engine::Sqlite(_) => "",
        }
    }

    /// Like [`Conn::lock_exclusively`], but any number of connections may
    /// hold `key` shared at once; only an exclusive holder waits for them.
    pub(crate) fn lock_shared(&self, key: i64) -> Result<(), StoreError> {
        self.advisory_lock(key, "pg_advisory_xact_lock_shared")
    }

    fn advisory_lock(&self, key: i64, function: &'static str) -> Result<(), StoreError> {
        let Engine::Postgres(postgres) = &self.engine else {
            return Ok(());
        };
        // Taken once per transaction: it is held until the transaction
        // ends. (Outside one it lasts a statement, and is taken each time.)
        if self.depth.get() > 0 && !postgres.locks_held.borrow_mut().insert((key, function)) {
            return Ok(());
        }
        self.query_one(&format!("SELECT {function}(?1)"), params![key], |_| Ok(()))
    }

    /// After a transaction at `depth` ends: at the outermost, the advisory
    /// locks it held are released with it.
    fn transaction_ended(&self, depth: u32) {
        if let (0, Engine::Postgres(postgres)) = (depth, &self.engine) {
            postgres.locks_held.borrow_mut().clear();
        }
    }

    /// Opens a transaction, or a savepoint inside the one open; it rolls
    /// back when dropped without [`Tx::commit`].
    pub(crate) fn transaction(&self, lock: Lock) -> Result<Tx<'_>, StoreError> {
        let depth = self.depth.get();
        let begin = match (depth, &self.engine, lock) {
            (0, Engine::Postgres(_), _) => "BEGIN".to_string(),
            (0, Engine::Sqlite(_), Lock::Immediate) => "BEGIN IMMEDIATE".to_string(),
            (0, Engine::Sqlite(_), Lock::Exclusive) => "BEGIN EXCLUSIVE".to_string(),
            (depth, ..) => format!("SAVEPOINT shorts_{depth}"),
        };
        self.execute_batch(&begin)?;
        self.depth.set(depth + 1);
        Ok(Tx {
            conn: self,
            depth,
            open: true,
        })
    }
}

impl Postgres {
    /// Replaces a connection that broke with a new one, outside a
    /// transaction (`depth` 0): inside one, what it did is gone with the
    /// connection, and the error goes to whoever opened it.
    fn reconnect_if_broken(&self, depth: u32) -> Result<(), StoreError> {
        if depth > 0 || !self.client.borrow().is_closed() {
            return Ok(());
        }
        let mut fresh = (self.connect)()?;
        for sql in self.session.borrow().iter() {
            fresh.batch_execute(sql)?;
        }
        *self.client.borrow_mut() = fresh;
        self.statements.borrow_mut().clear();
        self.locks_held.borrow_mut().clear();
        tracing::info!("the database connection broke; connected again");
        Ok(())
    }

    /// `sql` prepared on this connection, once.
    fn statement(&self, sql: &str, depth: u32) -> Result<postgres::Statement, StoreError> {
        self.reconnect_if_broken(depth)?;
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = self
            .client
            .borrow_mut()
            .prepare(&numbered_placeholders(sql))?;
        self.statements
            .borrow_mut()
            .insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
}

/// An open transaction (or savepoint); see [`Conn::transaction`].
pub(crate) struct Tx<'a> {
    conn: &'a Conn,
    depth: u32,
    open: bool,
}

impl Tx<'_> {
    /// Commits; when that fails (SQLite may answer "busy"), dropping the
    /// transaction rolls it back, so the connection is never left in one.
    pub(crate) fn commit(mut self) -> Result<(), StoreError> {
        let end = match self.depth {
            0 => "COMMIT".to_string(),
            depth => format!("RELEASE SAVEPOINT shorts_{depth}"),
        };
        self.conn.execute_batch(&end)?;
        self.open = false;
        self.conn.depth.set(self.depth);
        self.conn.transaction_ended(self.depth);
        Ok(())
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        self.conn.depth.set(self.depth);
        let end = match self.depth {
            0 => "ROLLBACK".to_string(),
            depth => {
                format!("ROLLBACK TO SAVEPOINT shorts_{depth}; RELEASE SAVEPOINT shorts_{depth}")
            }
        };
        // A rollback that fails leaves nothing to undo: the engine ends a
        // transaction whose connection broke on its own.
        let _ = self.conn.execute_batch(&end);
        self.conn.transaction_ended(self.depth);
    }
}

impl super::Batch for Tx<'_> {
    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        Tx::commit(*self)
    }
}

fn sqlite_params<'a>(
    params: &'a [&'a dyn Param],
) -> rusqlite::ParamsFromIter<impl Iterator<Item = &'a dyn rusqlite::ToSql>> {
    rusqlite::params_from_iter(params.iter().map(|p| *p as &dyn rusqlite::ToSql))
}

fn postgres_params<'a>(
    params: &'a [&'a dyn Param],
) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|p| *p as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

/// `?1` as PostgreSQL writes it, `$1`; a `?` inside a quoted literal stays.
fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => quoted = !quoted,
            '?' if !quoted && chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('$');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_literals_only() {
        assert_eq!(
            numbered_placeholders("SELECT a FROM t WHERE b = ?1 AND c = '?2' OR d = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' OR d = $12"
        );
    }

    #[test]
    fn nested_transactions_are_savepoints_that_roll_back_alone() {
        let conn = Conn::sqlite(rusqlite::Connection::open_in_memory().unwrap());
        conn.execute_batch("CREATE TABLE t (n INTEGER)").unwrap();
        let outer = conn.transaction(Lock::Immediate).unwrap();
        conn.execute("INSERT INTO t VALUES (?1)", params![1_i64])
            .unwrap();
        {
            let _inner = conn.transaction(Lock::Immediate).unwrap();
            conn.execute("INSERT INTO t VALUES (?1)", params![2_i64])
                .unwrap();
        }
        outer.commit().unwrap();
        let kept = conn
            .query("SELECT n FROM t", params![], |r| r.get::<i64>(0))
            .unwrap();
        assert_eq!(kept, [1]);
    }
}
