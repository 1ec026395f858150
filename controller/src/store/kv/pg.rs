//! The PostgreSQL engine: each tree is a table `kv_NAME (k bytea primary
//! key, v bytea)`, so keys keep sled's byte order (PostgreSQL compares
//! bytea as memcmp does), and the records above are the same bytes on
//! both engines.
//!
//! Store calls are synchronous, as sled's are: they run on the blocking
//! client inside [`tokio::task::block_in_place`], so a call that waits on
//! the database hands its worker's other tasks to another thread instead
//! of stalling them. That needs tokio's multi-thread runtime, which every
//! berth program runs; a call from a current-thread runtime is refused
//! with an error rather than a panic.

mod ahead;
mod bus;
mod connect;
mod days;
mod lock;
pub mod snapshot;
mod table;
mod txn;
mod writes;

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

pub use bus::{BusSender, Heard, MAX_PAYLOAD};
pub use connect::{Settings, open};
pub use days::DAY_MS;
pub use lock::{HeldLock, SessionLock};
pub use table::Table;
pub use txn::{Ops, transaction};

use super::super::StoreError;

/// Connections one controller keeps open at most.
const MAX_CONNECTIONS: usize = 32;

/// How long a call waits for a free connection before it fails.
const CONNECTION_WAIT: Duration = Duration::from_secs(30);

/// Open connections to the database, shared by every clone of the store.
pub struct Pool {
    settings: Settings,
    idle: Mutex<Idle>,
    freed: Condvar,
    /// The schema the store's tables are in: advisory locks are one
    /// namespace per database, so their ids include it (two stores in two
    /// schemas of one database never wait for each other).
    schema: std::sync::OnceLock<String>,
}

#[derive(Default)]
struct Idle {
    conns: Vec<Conn>,
    /// Connections open now, idle or lent.
    open: usize,
}

/// One connection and the statements prepared on it.
pub struct Conn {
    client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
}

impl Conn {
    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    pub fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.query(&statement, params)
    }
}

/// A connection lent out of the pool; it goes back when dropped, unless
/// it broke.
pub struct Lent<'p> {
    pool: &'p Pool,
    conn: Option<Conn>,
}

impl std::ops::Deref for Lent<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn
            .as_ref()
            .expect("a lent connection is present until dropped")
    }
}

impl std::ops::DerefMut for Lent<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("a lent connection is present until dropped")
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        let mut idle = self.pool.lock();
        match self.conn.take() {
            Some(conn) if !conn.client.is_closed() => idle.conns.push(conn),
            _ => idle.open -= 1,
        }
        self.pool.freed.notify_one();
    }
}

impl Drop for Pool {
    /// Closing a connection blocks on its runtime, which would panic on an
    /// async worker: the last store handle may go anywhere, so the idle
    /// connections are closed on a thread of their own.
    fn drop(&mut self) {
        let conns = std::mem::take(&mut self.lock().conns);
        if !conns.is_empty() {
            let _ = std::thread::spawn(move || drop(conns)).join();
        }
    }
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle connection, a new one while fewer than
    /// [`MAX_CONNECTIONS`] are open, or the next one given back.
    pub fn get(&self) -> Result<Lent<'_>, StoreError> {
        let deadline = std::time::Instant::now() + CONNECTION_WAIT;
        let mut idle = self.lock();
        loop {
            if let Some(conn) = idle.conns.pop() {
                if conn.client.is_closed() {
                    // The database ended it while it was idle.
                    idle.open -= 1;
                    let _ = std::thread::spawn(move || drop(conn));
                    continue;
                }
                return Ok(Lent {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if idle.open < MAX_CONNECTIONS {
                idle.open += 1;
                drop(idle);
                return match self.settings.connect() {
                    Ok(client) => Ok(Lent {
                        pool: self,
                        conn: Some(Conn {
                            client,
                            statements: HashMap::new(),
                        }),
                    }),
                    Err(err) => {
                        self.lock().open -= 1;
                        self.freed.notify_one();
                        Err(err)
                    }
                };
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(StoreError::Database(format!(
                    "all {MAX_CONNECTIONS} connections to PostgreSQL stayed busy for {}s",
                    CONNECTION_WAIT.as_secs()
                )));
            }
            idle = self
                .freed
                .wait_timeout(idle, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Sets the id sequence past `last` (never back).
    pub fn advance_ids(&self, last: u64) -> Result<(), StoreError> {
        let last = i64::try_from(last).unwrap_or(i64::MAX);
        blocking(|| {
            self.get()?
                .query(
                    "SELECT setval('berth_ids', GREATEST($1, (SELECT last_value FROM berth_ids)))",
                    &[&last],
                )
                .map_err(failed)?;
            Ok(())
        })?
    }

    /// The next value of the store's id sequence.
    pub fn next_id(&self) -> Result<u64, StoreError> {
        blocking(|| {
            let rows = self
                .get()?
                .query("SELECT nextval('berth_ids')", &[])
                .map_err(failed)?;
            let value: i64 = rows.first().map(|row| row.get(0)).unwrap_or_default();
            Ok(u64::try_from(value).unwrap_or_default())
        })?
    }
}

/// Runs a call that waits on the database (see the module's note).
pub fn blocking<R>(call: impl FnOnce() -> R) -> Result<R, StoreError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Err(_) => Ok(call()),
        Ok(RuntimeFlavor::CurrentThread) => Err(StoreError::Database(
            "the PostgreSQL store was called from tokio's current-thread runtime; it needs the multi-thread runtime".into(),
        )),
        Ok(_) => Ok(tokio::task::block_in_place(call)),
    }
}

/// A database error as the store reports it: the server's own message
/// when there is one.
pub fn failed(err: postgres::Error) -> StoreError {
    StoreError::Database(reason(&err))
}

/// What went wrong, in PostgreSQL's words, with the cause of a
/// connection failure (refused, unknown host, bad password).
pub fn reason(err: &postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        return format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
    }
    match std::error::Error::source(err) {
        Some(cause) if !err.to_string().contains(&cause.to_string()) => format!("{err}: {cause}"),
        _ => err.to_string(),
    }
}

/// True when PostgreSQL refused a transaction only because of another
/// one (a deadlock, or a serialization failure): it succeeds when run
/// again.
pub fn is_conflict(err: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    err.code().is_some_and(|code| {
        *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
    })
}
