//! The store's engine seam: ordered byte trees with sled's shape (get,
//! insert, remove, ordered scans, multi-tree transactions), kept either in
//! sled on the controller's disk or in PostgreSQL tables shared by several
//! controllers (`kv/pg.rs`). Everything above this file is written once
//! against these types, so both engines keep the same records the same
//! way and pass the same tests.

mod iter;
pub(crate) mod pg;
mod tx;

use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

pub use iter::Iter;
pub use sled::IVec;
pub use tx::{Transactional, TxError, TxTree};

use super::StoreError;

/// Entries a bulk write ([`Tree::insert_all`]) puts in one transaction.
pub const BATCH: usize = 500;

/// One named, ordered tree of the store.
#[derive(Clone)]
pub enum Tree {
    Sled(sled::Tree),
    Pg(pg::Table),
}

/// The database the trees live in.
#[derive(Clone)]
pub enum Db {
    Sled(sled::Db),
    Pg(Arc<pg::Pool>),
}

/// A [`Tree::compare_and_swap`] that found another value than expected.
#[derive(Debug)]
pub struct CompareAndSwapError;

impl Db {
    /// Opens the tree called `name` (a sled tree, or the table
    /// `kv_NAME` that the migrations made).
    pub fn open_tree(&self, name: &'static str) -> Result<Tree, StoreError> {
        Ok(match self {
            Db::Sled(db) => Tree::Sled(db.open_tree(name)?),
            Db::Pg(pool) => Tree::Pg(pg::Table::new(pool.clone(), name)?),
        })
    }

    /// Makes every earlier write durable. PostgreSQL's commits are durable
    /// when they return (`synchronous_commit` is on), so only sled has
    /// work to do.
    pub fn flush(&self) -> Result<(), StoreError> {
        match self {
            Db::Sled(db) => {
                db.flush()?;
                Ok(())
            }
            Db::Pg(_) => Ok(()),
        }
    }

    /// A unique, increasing number.
    pub fn generate_id(&self) -> Result<u64, StoreError> {
        match self {
            Db::Sled(db) => Ok(db.generate_id()?),
            Db::Pg(pool) => pool.next_id(),
        }
    }

    /// Moves the id generator past `last`, so the ids it gives are
    /// greater than every id a copied store gave. sled's generator cannot
    /// be set; it is left as it is.
    pub fn advance_ids(&self, last: u64) -> Result<(), StoreError> {
        match self {
            Db::Sled(_) => Ok(()),
            Db::Pg(pool) => pool.advance_ids(last),
        }
    }

    /// Calls `each(tree index, key, value)` for every entry of `trees`, in
    /// order, as of one instant: on PostgreSQL one snapshot transaction;
    /// on sled a plain walk, which is one instant because a sled store
    /// is only opened by one process, and the caller's holds it.
    pub fn read_consistent(
        &self,
        trees: &[&Tree],
        mut each: impl FnMut(usize, IVec, IVec) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        match self {
            Db::Sled(_) => {
                for (index, tree) in trees.iter().enumerate() {
                    for entry in tree.iter() {
                        let (key, value) = entry?;
                        each(index, key, value)?;
                    }
                }
                Ok(())
            }
            Db::Pg(pool) => {
                let tables = trees
                    .iter()
                    .map(|tree| tree.as_pg().map(pg::Table::name))
                    .collect::<Result<Vec<&str>, StoreError>>()?;
                pg::snapshot::read(pool, &tables, each)
            }
        }
    }

    /// The days whose log chunks have a partition of their own, which
    /// retention drops whole (see `pg/days.rs`); none on sled.
    pub fn log_days(&self) -> Result<Vec<i64>, StoreError> {
        match self {
            Db::Sled(_) => Ok(Vec::new()),
            Db::Pg(pool) => pool.log_days(),
        }
    }

    /// Makes the log partitions of `days` that can be made; returns them.
    pub fn add_log_days(&self, days: &[i64]) -> Result<Vec<i64>, StoreError> {
        match self {
            Db::Sled(_) => Ok(Vec::new()),
            Db::Pg(pool) => pool.add_log_days(days),
        }
    }

    /// Drops day `day`'s log partition with every chunk in it.
    pub fn drop_log_day(&self, day: i64) -> Result<(), StoreError> {
        match self {
            Db::Sled(_) => Ok(()),
            Db::Pg(pool) => pool.drop_log_day(day),
        }
    }

    /// The sled database, for what only sled needs (its own migrations).
    pub fn sled(&self) -> Option<&sled::Db> {
        match self {
            Db::Sled(db) => Some(db),
            Db::Pg(_) => None,
        }
    }
}

impl Tree {
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<IVec>, StoreError> {
        match self {
            Tree::Sled(tree) => Ok(tree.get(key)?),
            Tree::Pg(table) => table.get(key.as_ref()),
        }
    }

    /// Sets `key` to `value`; returns the value it had.
    pub fn insert(
        &self,
        key: impl AsRef<[u8]>,
        value: impl Into<IVec>,
    ) -> Result<Option<IVec>, StoreError> {
        match self {
            Tree::Sled(tree) => Ok(tree.insert(key, value)?),
            Tree::Pg(table) => table.insert(key.as_ref(), &value.into()),
        }
    }

    /// Removes `key`; returns the value it had.
    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<Option<IVec>, StoreError> {
        match self {
            Tree::Sled(tree) => Ok(tree.remove(key)?),
            Tree::Pg(table) => table.remove(key.as_ref()),
        }
    }

    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool, StoreError> {
        Ok(self.get(key)?.is_some())
    }

    /// Every entry in key order.
    pub fn iter(&self) -> Iter {
        self.range::<&[u8], _>(..)
    }

    /// The entries whose keys start with `prefix`, in key order.
    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        match self {
            Tree::Sled(tree) => Iter::Sled(tree.scan_prefix(prefix)),
            Tree::Pg(table) => {
                let prefix = prefix.as_ref().to_vec();
                let upper = match successor(&prefix) {
                    Some(next) => Bound::Excluded(next),
                    None => Bound::Unbounded,
                };
                Iter::pg(table.clone(), Bound::Included(prefix), upper)
            }
        }
    }

    /// The entries whose keys are in `range`, in key order.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        match self {
            Tree::Sled(tree) => Iter::Sled(tree.range(range)),
            Tree::Pg(table) => {
                let owned = |bound: Bound<&K>| match bound {
                    Bound::Included(key) => Bound::Included(key.as_ref().to_vec()),
                    Bound::Excluded(key) => Bound::Excluded(key.as_ref().to_vec()),
                    Bound::Unbounded => Bound::Unbounded,
                };
                Iter::pg(
                    table.clone(),
                    owned(range.start_bound()),
                    owned(range.end_bound()),
                )
            }
        }
    }

    pub fn first(&self) -> Result<Option<(IVec, IVec)>, StoreError> {
        self.iter().next().transpose()
    }

    /// The number of entries: a full count, for copies and checks.
    pub fn len(&self) -> Result<usize, StoreError> {
        match self {
            Tree::Sled(tree) => Ok(tree.len()),
            Tree::Pg(table) => table.count(),
        }
    }

    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.first()?.is_none())
    }

    /// Sets `key` to `new` if its value is `old` (`None`: absent).
    pub fn compare_and_swap(
        &self,
        key: impl AsRef<[u8]>,
        old: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<Result<(), CompareAndSwapError>, StoreError> {
        match self {
            Tree::Sled(tree) => Ok(tree
                .compare_and_swap(key, old, new)?
                .map_err(|_| CompareAndSwapError)),
            Tree::Pg(_) => {
                let key = key.as_ref();
                self.transaction(|tree| {
                    let current = tree.get(key)?;
                    if current.as_deref() != old {
                        return Ok(Err(CompareAndSwapError));
                    }
                    match &new {
                        Some(value) => tree.insert(key, value.as_slice())?,
                        None => tree.remove(key)?,
                    };
                    Ok(Ok(()))
                })
            }
        }
    }

    /// Replaces the value of `key` by what `change` makes of it (`None`
    /// removes it), atomically; returns the new value.
    pub fn update_and_fetch(
        &self,
        key: impl AsRef<[u8]>,
        change: impl Fn(Option<&[u8]>) -> Option<Vec<u8>>,
    ) -> Result<Option<IVec>, StoreError> {
        match self {
            Tree::Sled(tree) => Ok(tree.update_and_fetch(key, change)?),
            Tree::Pg(_) => {
                let key = key.as_ref();
                self.transaction(|tree| {
                    let current = tree.get(key)?;
                    Ok(match change(current.as_deref()) {
                        Some(value) => {
                            let value = IVec::from(value);
                            tree.insert(key, value.clone())?;
                            Some(value)
                        }
                        None => {
                            tree.remove(key)?;
                            None
                        }
                    })
                })
            }
        }
    }

    /// Writes `batch` in one transaction and empties it; returns how many
    /// entries it wrote (copies and restores).
    pub fn insert_all(&self, batch: &mut Vec<(IVec, IVec)>) -> Result<u64, StoreError> {
        if batch.is_empty() {
            return Ok(0);
        }
        self.transaction(|tree| {
            for (key, value) in batch.iter() {
                tree.insert(key, value.clone())?;
            }
            Ok(())
        })?;
        let written = batch.len() as u64;
        batch.clear();
        Ok(written)
    }

    /// The sled tree, when that is the engine.
    fn as_sled(&self) -> Result<&sled::Tree, StoreError> {
        match self {
            Tree::Sled(tree) => Ok(tree),
            Tree::Pg(table) => Err(mixed(table.name())),
        }
    }

    /// The PostgreSQL table, when that is the engine.
    fn as_pg(&self) -> Result<&pg::Table, StoreError> {
        match self {
            Tree::Pg(table) => Ok(table),
            Tree::Sled(_) => Err(mixed("a sled tree")),
        }
    }
}

/// A transaction over trees of two engines: a bug, reported rather than
/// panicked on.
fn mixed(what: &str) -> StoreError {
    StoreError::Corrupt {
        tree: "meta",
        reason: format!("{what} was used in a transaction with trees of another engine"),
    }
}

/// The smallest key greater than every key that starts with `prefix`;
/// `None` when there is none (the prefix is empty or all 0xff).
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut next = prefix.to_vec();
    while let Some(last) = next.pop() {
        if last < u8::MAX {
            next.push(last + 1);
            return Some(next);
        }
    }
    None
}

#[cfg(test)]
pub(super) mod tests;

#[cfg(test)]
mod successor_tests {
    use super::successor;

    #[test]
    fn successor_bounds_a_prefix() {
        assert_eq!(successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(successor(&[1, 0xff, 0xff]), Some(vec![2]));
        assert_eq!(successor(&[0xff]), None);
        assert_eq!(successor(b""), None);
    }
}
