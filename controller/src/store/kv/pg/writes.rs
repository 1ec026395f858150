//! A transaction's blind writes (`TxTree::insert` and `remove`, which
//! return nothing), kept in memory until the commit and then written in
//! two statements whatever their number: one takes the key locks the
//! transaction does not hold yet, one writes every key of every table
//! (an upsert and a delete per table, as data-modifying `WITH` parts).
//!
//! Taking a blind write's lock at the commit instead of at the call keeps
//! the transaction two-phase: the write is made under its lock, which is
//! held to the commit, so the transaction is serialized at its commit. The
//! lock statement comes first because a `READ COMMITTED` statement reads
//! as of its start: the writes, a statement of their own, then see every
//! commit made before the locks were granted. A read of a key written
//! earlier in the same transaction reads it here.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The pending writes: table, key → the new value, or `None` to remove.
#[derive(Default)]
pub struct Pending {
    writes: BTreeMap<(String, Vec<u8>), Option<Vec<u8>>>,
}

/// What the commit sends: the statements and their parameters.
pub struct Flush {
    pub sql: String,
    pub tables: Vec<Part>,
}

/// One table's part of the write statement.
pub struct Part {
    pub keys: Vec<Vec<u8>>,
    /// Values of an upsert; `None` for the table's delete.
    pub values: Option<Vec<Vec<u8>>>,
}

impl Part {
    /// The statement's parameters for this part: the key (and value) of
    /// one row, or the arrays of several.
    pub fn params(&self) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
        let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = Vec::new();
        match (&self.keys[..], &self.values) {
            ([key], Some(values)) => {
                params.push(key);
                if let Some(value) = values.first() {
                    params.push(value);
                }
            }
            ([key], None) => params.push(key),
            (_, Some(values)) => {
                params.push(&self.keys);
                params.push(values);
            }
            (_, None) => params.push(&self.keys),
        }
        params
    }
}

impl Pending {
    /// The pending value of `key` in `table`: `None` when none is pending,
    /// `Some(None)` when it is to be removed.
    pub fn get(&self, table: &str, key: &[u8]) -> Option<Option<Vec<u8>>> {
        self.writes.get(&(table.to_owned(), key.to_vec())).cloned()
    }

    /// Records a write; returns what was pending for the key before.
    pub fn set(
        &mut self,
        table: &str,
        key: &[u8],
        value: Option<Vec<u8>>,
    ) -> Option<Option<Vec<u8>>> {
        self.writes.insert((table.to_owned(), key.to_vec()), value)
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The tables and keys written, for their locks.
    pub fn keys(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.writes
            .keys()
            .map(|(table, key)| (table.as_str(), key.as_slice()))
    }

    /// The one statement that makes every pending write: per table, an
    /// upsert of the keys written and a delete of the keys removed.
    pub fn flush(self) -> Flush {
        let mut upserts: BTreeMap<String, Part> = BTreeMap::new();
        let mut deletes: BTreeMap<String, Part> = BTreeMap::new();
        for ((table, key), value) in self.writes {
            match value {
                Some(value) => {
                    let part = upserts.entry(table).or_insert_with(|| Part {
                        keys: Vec::new(),
                        values: Some(Vec::new()),
                    });
                    part.keys.push(key);
                    if let Some(values) = part.values.as_mut() {
                        values.push(value);
                    }
                }
                None => deletes
                    .entry(table)
                    .or_insert_with(|| Part {
                        keys: Vec::new(),
                        values: None,
                    })
                    .keys
                    .push(key),
            }
        }
        let (mut sql, mut tables, mut param) = (String::from("WITH "), Vec::new(), 0);
        for (table, part) in upserts.into_iter().chain(deletes) {
            if !tables.is_empty() {
                sql.push_str(", ");
            }
            let n = tables.len();
            // Table names are the store's own (`Table::new`), never input.
            // One key is written as one row: arrays cost a copy of each
            // value, which a chunk of log lines feels.
            let (k, v) = (param + 1, param + 2);
            let _ = match (part.values.is_some(), part.keys.len() == 1) {
                (true, true) => write!(
                    sql,
                    "w{n} AS (INSERT INTO {table} (k, v) VALUES (${k}::bytea, ${v}::bytea) \
                     ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v)"
                ),
                (true, false) => write!(
                    sql,
                    "w{n} AS (INSERT INTO {table} (k, v) SELECT * FROM unnest(${k}::bytea[], ${v}::bytea[]) \
                     ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v)"
                ),
                (false, true) => write!(sql, "w{n} AS (DELETE FROM {table} WHERE k = ${k}::bytea)"),
                (false, false) => write!(
                    sql,
                    "w{n} AS (DELETE FROM {table} WHERE k = ANY(${k}::bytea[]))"
                ),
            };
            param += if part.values.is_some() { 2 } else { 1 };
            tables.push(part);
        }
        sql.push_str(" SELECT 1");
        Flush { sql, tables }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_statement_writes_and_removes_in_every_table() {
        let mut pending = Pending::default();
        pending.set("kv_b", b"1", Some(b"one".to_vec()));
        pending.set("kv_a", b"2", None);
        pending.set("kv_b", b"3", Some(b"three".to_vec()));
        assert_eq!(
            pending.set("kv_b", b"1", Some(b"uno".to_vec())),
            Some(Some(b"one".to_vec()))
        );
        assert_eq!(pending.get("kv_a", b"2"), Some(None));
        assert_eq!(pending.get("kv_a", b"9"), None);
        let flush = pending.flush();
        assert_eq!(
            flush.sql,
            "WITH w0 AS (INSERT INTO kv_b (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
             ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v), \
             w1 AS (DELETE FROM kv_a WHERE k = $3::bytea) SELECT 1"
        );
        assert_eq!(flush.tables[0].params().len(), 2);
        assert_eq!(flush.tables[1].params().len(), 1);
        assert_eq!(flush.tables[0].keys, [b"1".to_vec(), b"3".to_vec()]);
        assert_eq!(
            flush.tables[0].values,
            Some(vec![b"uno".to_vec(), b"three".to_vec()])
        );
        assert_eq!(flush.tables[1].values, None);
    }
}
