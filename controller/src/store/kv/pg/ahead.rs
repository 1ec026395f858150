//! Keys a transaction reads ahead (`TxTree::read_ahead`): the ones it
//! will read anyway, named before the first, so their locks are taken in
//! one statement and their values read in one more, instead of a lock and
//! a read per key. Values read under their lock cannot change before the
//! commit, so the transaction keeps them for its later reads.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// Values read under their lock in this transaction: table, key → value.
#[derive(Default)]
pub struct Read {
    values: HashMap<(String, Vec<u8>), Option<Vec<u8>>>,
}

impl Read {
    /// The value read for `key`, if it was: `Some(None)` when absent.
    pub fn get(&self, table: &str, key: &[u8]) -> Option<Option<Vec<u8>>> {
        self.values.get(&(table.to_owned(), key.to_vec())).cloned()
    }

    pub fn keep(&mut self, table: &str, key: &[u8], value: Option<Vec<u8>>) {
        self.values.insert((table.to_owned(), key.to_vec()), value);
    }
}

/// One statement reading `keys` of every table, and its parameters (one
/// array of keys per table): rows of (table index, key, value).
pub fn statement(keys: &[(&str, &[u8])]) -> (String, Vec<String>, Vec<Vec<Vec<u8>>>) {
    let mut by_table: BTreeMap<&str, Vec<Vec<u8>>> = BTreeMap::new();
    for (table, key) in keys {
        by_table.entry(table).or_default().push(key.to_vec());
    }
    let mut sql = String::new();
    let (mut tables, mut params) = (Vec::new(), Vec::new());
    for (n, (table, keys)) in by_table.into_iter().enumerate() {
        if n > 0 {
            sql.push_str(" UNION ALL ");
        }
        // Table names are the store's own (`Table::new`), never input.
        let _ = write!(
            sql,
            "SELECT {n}::int4, k, v FROM {table} WHERE k = ANY(${}::bytea[])",
            n + 1
        );
        tables.push(table.to_owned());
        params.push(keys);
    }
    (sql, tables, params)
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_statement_reads_every_table() {
        let (sql, tables, params) = super::statement(&[
            ("kv_meta", b"a"),
            ("kv_deployments", b"d"),
            ("kv_meta", b"b"),
        ]);
        assert_eq!(
            sql,
            "SELECT 0::int4, k, v FROM kv_deployments WHERE k = ANY($1::bytea[]) \
             UNION ALL SELECT 1::int4, k, v FROM kv_meta WHERE k = ANY($2::bytea[])"
        );
        assert_eq!(tables, ["kv_deployments", "kv_meta"]);
        assert_eq!(
            params,
            [vec![b"d".to_vec()], vec![b"a".to_vec(), b"b".to_vec()]]
        );
    }
}
