//! Transactions over one or several trees. The closure may run more than
//! once: sled reruns it after a conflict, and PostgreSQL after a deadlock
//! of its key locks (`kv/pg/txn.rs`), so it must only read and write
//! through the trees it is given.

use super::super::StoreError;
use super::pg::{self, Ops};
use super::{IVec, Tree};

/// Why a transaction's closure stopped.
#[derive(Debug)]
pub enum TxError {
    /// The caller's own refusal: the transaction is rolled back and the
    /// error returned.
    Abort(StoreError),
    /// Another writer got there first: the closure runs again.
    Conflict,
    /// The engine failed.
    Storage(StoreError),
}

pub type TxResult<T> = Result<T, TxError>;

impl From<sled::transaction::UnabortableTransactionError> for TxError {
    fn from(err: sled::transaction::UnabortableTransactionError) -> Self {
        match err {
            sled::transaction::UnabortableTransactionError::Conflict => TxError::Conflict,
            sled::transaction::UnabortableTransactionError::Storage(err) => {
                TxError::Storage(err.into())
            }
        }
    }
}

/// What a sled transaction's closure returns for our [`TxError`].
fn to_sled(err: TxError) -> sled::transaction::ConflictableTransactionError<StoreError> {
    use sled::transaction::ConflictableTransactionError as Sled;
    match err {
        TxError::Abort(err) | TxError::Storage(err) => Sled::Abort(err),
        TxError::Conflict => Sled::Conflict,
    }
}

fn from_sled(err: sled::transaction::TransactionError<StoreError>) -> StoreError {
    match err {
        sled::transaction::TransactionError::Abort(err) => err,
        sled::transaction::TransactionError::Storage(err) => err.into(),
    }
}

/// One tree inside a transaction.
pub enum TxTree<'a> {
    Sled(&'a sled::transaction::TransactionalTree),
    Pg(&'a dyn Ops, &'a str),
}

impl TxTree<'_> {
    pub fn get(&self, key: impl AsRef<[u8]>) -> TxResult<Option<IVec>> {
        match self {
            TxTree::Sled(tree) => Ok(tree.get(key)?),
            TxTree::Pg(cell, table) => cell.get(table, key.as_ref()),
        }
    }

    /// Writes `key`. On PostgreSQL the write is made at the commit, with
    /// the others (`pg/writes.rs`); a read of the key in the same
    /// transaction sees it.
    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl Into<IVec>) -> TxResult<()> {
        match self {
            TxTree::Sled(tree) => {
                tree.insert(key.as_ref(), value)?;
                Ok(())
            }
            TxTree::Pg(cell, table) => {
                cell.put(table, key.as_ref(), &value.into());
                Ok(())
            }
        }
    }

    /// Removes `key` (at the commit on PostgreSQL, as [`TxTree::insert`]).
    pub fn remove(&self, key: impl AsRef<[u8]>) -> TxResult<()> {
        match self {
            TxTree::Sled(tree) => {
                tree.remove(key.as_ref())?;
                Ok(())
            }
            TxTree::Pg(cell, table) => {
                cell.delete(table, key.as_ref());
                Ok(())
            }
        }
    }

    /// Reads `keys` of these trees (all of one transaction) ahead of the
    /// transaction's reads of them: on PostgreSQL their locks and values
    /// in two statements instead of two per key (`pg/ahead.rs`); nothing
    /// on sled, whose reads are in memory.
    pub fn read_ahead(keys: &[(&TxTree<'_>, &[u8])]) -> TxResult<()> {
        let mut cell = None;
        let mut named = Vec::new();
        for (tree, key) in keys {
            if let TxTree::Pg(ops, table) = tree {
                cell = Some(*ops);
                named.push((*table, *key));
            }
        }
        match cell {
            Some(cell) => cell.read_ahead(&named),
            None => Ok(()),
        }
    }

    /// A unique, increasing number (not rolled back with the transaction).
    pub fn generate_id(&self) -> TxResult<u64> {
        match self {
            TxTree::Sled(tree) => tree
                .generate_id()
                .map_err(|err| TxError::Storage(err.into())),
            TxTree::Pg(cell, _) => cell.next_id(),
        }
    }
}

/// Trees that can be changed together, atomically.
pub trait Transactional {
    /// What the closure sees: one [`TxTree`], or a tuple of them in the
    /// order the trees were given.
    type View<'a>;

    fn transaction<A, F>(&self, f: F) -> Result<A, StoreError>
    where
        F: Fn(&Self::View<'_>) -> TxResult<A>;
}

impl Transactional for Tree {
    type View<'a> = TxTree<'a>;

    fn transaction<A, F>(&self, f: F) -> Result<A, StoreError>
    where
        F: Fn(&Self::View<'_>) -> TxResult<A>,
    {
        match self {
            Tree::Sled(tree) => sled::Transactional::transaction(tree, |tree| {
                f(&TxTree::Sled(tree)).map_err(to_sled)
            })
            .map_err(from_sled),
            Tree::Pg(table) => {
                pg::transaction(table.pool(), |cell| f(&TxTree::Pg(cell, table.name())))
            }
        }
    }
}

/// `$ty` once for each `$name` (to repeat a type in a macro).
macro_rules! each {
    ($name:ident, $ty:ty) => {
        $ty
    };
}

macro_rules! transactional_tuple {
    ($first:ident $(, $name:ident)*) => {
        impl Transactional for (&Tree, $(each!($name, &Tree)),*) {
            type View<'a> = (TxTree<'a>, $(each!($name, TxTree<'a>)),*);

            fn transaction<A, F>(&self, f: F) -> Result<A, StoreError>
            where
                F: Fn(&Self::View<'_>) -> TxResult<A>,
            {
                let ($first, $($name),*) = *self;
                match $first {
                    Tree::Sled(_) => {
                        let trees = ($first.as_sled()?, $($name.as_sled()?),*);
                        sled::Transactional::transaction(&trees, |($first, $($name),*)| {
                            f(&(TxTree::Sled($first), $(TxTree::Sled($name)),*)).map_err(to_sled)
                        })
                        .map_err(from_sled)
                    }
                    Tree::Pg(table) => {
                        let $first = table.name();
                        $(let $name = $name.as_pg()?.name();)*
                        pg::transaction(table.pool(), |cell| {
                            f(&(TxTree::Pg(cell, $first), $(TxTree::Pg(cell, $name)),*))
                        })
                    }
                }
            }
        }
    };
}

transactional_tuple!(a, b);
transactional_tuple!(a, b, c);
transactional_tuple!(a, b, c, d);
transactional_tuple!(a, b, c, d, e);
transactional_tuple!(a, b, c, d, e, f2);
transactional_tuple!(a, b, c, d, e, f2, g);
transactional_tuple!(a, b, c, d, e, f2, g, h);
