//! A consistent read of every table at once: one `REPEATABLE READ`,
//! read-only transaction, so a backup taken while controllers write is
//! the database as it was at one instant.

use super::super::super::StoreError;
use super::super::IVec;
use super::{Pool, blocking, failed};

/// Rows fetched per round trip of the snapshot's cursors.
const FETCH: i32 = 1_000;

/// Calls `each(table index, key, value)` for every row of `tables`, in
/// table order and key order, all read in one snapshot.
pub fn read(
    pool: &Pool,
    tables: &[&str],
    mut each: impl FnMut(usize, IVec, IVec) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    blocking(|| {
        let mut conn = pool.get()?;
        let mut tx = conn
            .client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(failed)?;
        for (index, table) in tables.iter().enumerate() {
            let statement = tx
                .prepare(&format!("SELECT k, v FROM {table} ORDER BY k"))
                .map_err(failed)?;
            let portal = tx.bind(&statement, &[]).map_err(failed)?;
            loop {
                let rows = tx.query_portal(&portal, FETCH).map_err(failed)?;
                for row in &rows {
                    let key: &[u8] = row.get(0);
                    let value: &[u8] = row.get(1);
                    each(index, IVec::from(key), IVec::from(value))?;
                }
                if rows.len() < FETCH as usize {
                    break;
                }
            }
        }
        tx.commit().map_err(failed)
    })?
}
