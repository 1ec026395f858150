//! Transactions on PostgreSQL, with strict two-phase locking on keys:
//! before its first read or write of a key, a transaction takes a
//! transaction-scoped advisory lock named by that table and key
//! ([`Pool::lock_id`]), and
//! holds it to its commit. Two transactions that touch a common key (one
//! that exists or one that does not yet) therefore run one after the
//! other, on any number of controllers, and each reads what the one before
//! committed (`READ COMMITTED`: every statement sees the latest commits).
//! A transaction's closure only reads and writes single keys, so this is
//! serializable. Writes wait for the commit and go in two statements
//! whatever their number (`pg/writes.rs`): their locks are taken there.
//!
//! `SERIALIZABLE` isolation did the same by failing and rerunning
//! transactions, and its page-level predicate locks failed unrelated ones
//! too: under four agents' logs it rejected thousands of commits a minute
//! and held `berth logs -f` seconds behind. A deadlock between two
//! transactions' locks is still reported by PostgreSQL, and the closure
//! runs again.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::super::super::StoreError;
use super::super::IVec;
use super::super::tx::{TxError, TxResult};
use super::ahead::Read;
use super::table::{Sql, first_value};
use super::writes::Pending;
use super::{Conn, Pool, blocking, failed, is_conflict};

/// Times a transaction is tried before the store gives up on it.
const TRIES: u32 = 50;

/// The reads and writes a transaction's trees make, by table name.
pub trait Ops {
    fn get(&self, table: &str, key: &[u8]) -> TxResult<Option<IVec>>;
    /// Writes `key` at the commit (`pg/writes.rs`).
    fn put(&self, table: &str, key: &[u8], value: &[u8]);
    /// Removes `key` at the commit.
    fn delete(&self, table: &str, key: &[u8]);
    /// Locks and reads `keys` in two statements, for the reads to come.
    fn read_ahead(&self, keys: &[(&str, &[u8])]) -> TxResult<()>;
    fn next_id(&self) -> TxResult<u64>;
}

/// One open transaction, shared by the closure's trees.
pub struct TxCell<'c> {
    pool: &'c Pool,
    inner: RefCell<Inner<'c>>,
    /// The key locks taken so far.
    locked: RefCell<HashSet<i64>>,
    /// Writes made at the commit.
    pending: RefCell<Pending>,
    /// Values read under their lock (`pg/ahead.rs`).
    read: RefCell<Read>,
}

struct Inner<'c> {
    tx: postgres::Transaction<'c>,
    statements: &'c mut HashMap<String, postgres::Statement>,
}

fn storage(err: postgres::Error) -> TxError {
    if is_conflict(&err) {
        TxError::Conflict
    } else {
        TxError::Storage(failed(err))
    }
}

impl TxCell<'_> {
    fn query(
        &self,
        sql: String,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> TxResult<Vec<postgres::Row>> {
        let mut inner = self.inner.borrow_mut();
        let Inner { tx, statements } = &mut *inner;
        let statement = match statements.get(&sql) {
            Some(statement) => statement.clone(),
            None => {
                let statement = tx.prepare(&sql).map_err(storage)?;
                statements.insert(sql, statement.clone());
                statement
            }
        };
        tx.query(&statement, params).map_err(storage)
    }
}

impl TxCell<'_> {
    /// Takes the lock of `key` in `table` unless this transaction has it.
    fn lock(&self, table: &str, key: &[u8]) -> TxResult<()> {
        let id = self.pool.lock_id(table, key);
        if self.locked.borrow_mut().insert(id) {
            self.query("SELECT pg_advisory_xact_lock($1)".into(), &[&id])?;
        }
        Ok(())
    }
}

impl TxCell<'_> {
    /// Takes the locks of `keys` this transaction does not hold yet, in
    /// one statement, in the order of their ids.
    fn lock_all<'k>(&self, keys: impl Iterator<Item = (&'k str, &'k [u8])>) -> TxResult<()> {
        let mut ids: Vec<i64> = keys
            .map(|(table, key)| self.pool.lock_id(table, key))
            .filter(|id| self.locked.borrow_mut().insert(*id))
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        ids.sort_unstable();
        self.query(
            "SELECT pg_advisory_xact_lock(x) FROM unnest($1::int8[]) AS x".into(),
            &[&ids],
        )?;
        Ok(())
    }

    /// Makes the pending writes: the locks not held yet in one statement,
    /// then every write in another (`pg/writes.rs`).
    fn flush(&self) -> TxResult<()> {
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        if pending.is_empty() {
            return Ok(());
        }
        self.lock_all(pending.keys())?;
        let flush = pending.flush();
        let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = Vec::new();
        for part in &flush.tables {
            params.extend(part.params());
        }
        self.query(flush.sql, &params)?;
        Ok(())
    }
}

impl Ops for TxCell<'_> {
    fn get(&self, table: &str, key: &[u8]) -> TxResult<Option<IVec>> {
        // The transaction's own write, if it made one.
        if let Some(value) = self.pending.borrow().get(table, key) {
            return Ok(value.map(IVec::from));
        }
        if let Some(value) = self.read.borrow().get(table, key) {
            return Ok(value.map(IVec::from));
        }
        self.lock(table, key)?;
        let value = first_value(&self.query(Sql::get(table), &[&key])?);
        self.read
            .borrow_mut()
            .keep(table, key, value.as_ref().map(|value| value.to_vec()));
        Ok(value)
    }

    fn read_ahead(&self, keys: &[(&str, &[u8])]) -> TxResult<()> {
        let keys: Vec<(&str, &[u8])> = keys
            .iter()
            .filter(|(table, key)| {
                self.pending.borrow().get(table, key).is_none()
                    && self.read.borrow().get(table, key).is_none()
            })
            .copied()
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        self.lock_all(keys.iter().copied())?;
        let (sql, tables, params) = super::ahead::statement(&keys);
        let params: Vec<&(dyn postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|keys| keys as &(dyn postgres::types::ToSql + Sync))
            .collect();
        let rows = self.query(sql, &params)?;
        let mut read = self.read.borrow_mut();
        for (table, key) in &keys {
            read.keep(table, key, None);
        }
        for row in &rows {
            let index: i32 = row.get(0);
            let (key, value): (&[u8], &[u8]) = (row.get(1), row.get(2));
            if let Some(table) = usize::try_from(index).ok().and_then(|i| tables.get(i)) {
                read.keep(table, key, Some(value.to_vec()));
            }
        }
        Ok(())
    }

    fn put(&self, table: &str, key: &[u8], value: &[u8]) {
        self.pending
            .borrow_mut()
            .set(table, key, Some(value.to_vec()));
    }

    fn delete(&self, table: &str, key: &[u8]) {
        self.pending.borrow_mut().set(table, key, None);
    }

    fn next_id(&self) -> TxResult<u64> {
        let rows = self.query("SELECT nextval('berth_ids')".into(), &[])?;
        let value: i64 = rows.first().map(|row| row.get(0)).unwrap_or_default();
        Ok(u64::try_from(value).unwrap_or_default())
    }
}

/// Runs `f` in a transaction, again after each deadlock (with a short,
/// growing pause), and commits what it wrote.
pub fn transaction<A>(
    pool: &Arc<Pool>,
    f: impl Fn(&TxCell<'_>) -> TxResult<A>,
) -> Result<A, StoreError> {
    blocking(|| {
        let mut pause = Duration::from_micros(200);
        for _ in 0..TRIES {
            let mut conn = pool.get()?;
            match once(pool, &mut conn, &f) {
                Err(TxError::Conflict) => {
                    drop(conn);
                    std::thread::sleep(pause.mul_f64(0.5 + rand::random::<f64>()));
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Ok(value) => return Ok(value),
                Err(TxError::Abort(err) | TxError::Storage(err)) => return Err(err),
            }
        }
        Err(StoreError::Database(format!(
            "a transaction deadlocked with others {TRIES} times in a row; try again"
        )))
    })?
}

fn once<A>(pool: &Pool, conn: &mut Conn, f: &impl Fn(&TxCell<'_>) -> TxResult<A>) -> TxResult<A> {
    let Conn { client, statements } = conn;
    let tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::ReadCommitted)
        .start()
        .map_err(storage)?;
    let cell = TxCell {
        pool,
        inner: RefCell::new(Inner { tx, statements }),
        locked: RefCell::default(),
        pending: RefCell::default(),
        read: RefCell::default(),
    };
    // An error drops the transaction, which rolls it back.
    let value = f(&cell)?;
    cell.flush()?;
    cell.inner.into_inner().tx.commit().map_err(storage)?;
    Ok(value)
}
