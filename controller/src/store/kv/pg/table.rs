//! One tree's table: single-row reads and writes (each its own
//! transaction) and the pages an ordered scan reads.

use std::ops::Bound;
use std::sync::Arc;

use super::super::super::StoreError;
use super::super::IVec;
use super::{Conn, Pool, blocking, failed};

/// The table of one tree.
#[derive(Clone)]
pub struct Table {
    pool: Arc<Pool>,
    /// `kv_NAME`: made of a tree name the store chose, never of input.
    name: Arc<str>,
}

/// The statements on a table, written once for every table name.
pub(super) struct Sql;

impl Sql {
    pub(super) fn get(table: &str) -> String {
        format!("SELECT v FROM {table} WHERE k = $1")
    }

    /// An upsert that returns the value it replaced.
    pub(super) fn insert(table: &str) -> String {
        format!(
            "WITH old AS (SELECT v FROM {table} WHERE k = $1), \
             new AS (INSERT INTO {table} (k, v) VALUES ($1, $2) \
                     ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v) \
             SELECT v FROM old"
        )
    }

    pub(super) fn remove(table: &str) -> String {
        format!("DELETE FROM {table} WHERE k = $1 RETURNING v")
    }
}

impl Table {
    pub fn new(pool: Arc<Pool>, tree: &str) -> Result<Table, StoreError> {
        if tree.is_empty() || !tree.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(StoreError::Corrupt {
                tree: "meta",
                reason: format!("`{tree}` is not a tree name"),
            });
        }
        Ok(Table {
            pool,
            name: format!("kv_{tree}").into(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    fn run<R>(
        &self,
        call: impl FnOnce(&mut Conn) -> Result<R, postgres::Error>,
    ) -> Result<R, StoreError> {
        blocking(|| {
            let mut conn = self.pool.get()?;
            call(&mut conn).map_err(failed)
        })?
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        let rows = self.run(|conn| conn.query(&Sql::get(&self.name), &[&key]))?;
        Ok(first_value(&rows))
    }

    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<IVec>, StoreError> {
        let rows = self.run(|conn| conn.query(&Sql::insert(&self.name), &[&key, &value]))?;
        Ok(first_value(&rows))
    }

    pub fn remove(&self, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        let rows = self.run(|conn| conn.query(&Sql::remove(&self.name), &[&key]))?;
        Ok(first_value(&rows))
    }

    pub fn count(&self) -> Result<usize, StoreError> {
        let sql = format!("SELECT count(*) FROM {}", self.name);
        let rows = self.run(|conn| conn.query(&sql, &[]))?;
        let count: i64 = rows.first().map(|row| row.get(0)).unwrap_or_default();
        Ok(usize::try_from(count).unwrap_or_default())
    }

    /// Up to `limit` entries between the bounds, from the low end
    /// (`forward`) or the high end, in that order.
    pub fn page(
        &self,
        low: &Bound<Vec<u8>>,
        high: &Bound<Vec<u8>>,
        forward: bool,
        limit: i64,
    ) -> Result<Vec<(IVec, IVec)>, StoreError> {
        let mut sql = format!("SELECT k, v FROM {}", self.name);
        let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = Vec::new();
        let mut conditions = Vec::new();
        for (bound, included, excluded) in [(low, ">=", ">"), (high, "<=", "<")] {
            let (op, key) = match bound {
                Bound::Included(key) => (included, key),
                Bound::Excluded(key) => (excluded, key),
                Bound::Unbounded => continue,
            };
            params.push(key);
            conditions.push(format!("k {op} ${}", params.len()));
        }
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        params.push(&limit);
        let order = if forward { "ASC" } else { "DESC" };
        sql.push_str(&format!(" ORDER BY k {order} LIMIT ${}", params.len()));
        let rows = self.run(|conn| conn.query(&sql, &params))?;
        Ok(rows
            .iter()
            .map(|row| {
                let key: &[u8] = row.get(0);
                let value: &[u8] = row.get(1);
                (IVec::from(key), IVec::from(value))
            })
            .collect())
    }
}

pub(super) fn first_value(rows: &[postgres::Row]) -> Option<IVec> {
    rows.first().map(|row| IVec::from(row.get::<_, &[u8]>(0)))
}
