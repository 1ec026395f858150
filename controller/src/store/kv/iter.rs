//! Ordered scans over a tree, from either end. On PostgreSQL a scan reads
//! pages as it goes (keyset paging from the front and from the back),
//! small at first and larger as the caller keeps walking, so a caller that
//! wants one entry reads a few rows and a full scan takes few queries.

use std::collections::VecDeque;
use std::ops::Bound;

use super::super::StoreError;
use super::IVec;
use super::pg::Table;

/// Rows the first and the largest query of a PostgreSQL scan read.
const FIRST_PAGE: i64 = 16;
const LAST_PAGE: i64 = 1024;

type Entry = (IVec, IVec);

/// An ordered scan: entries as `(key, value)`.
pub enum Iter {
    Sled(sled::Iter),
    Pg(PgIter),
}

/// A PostgreSQL scan between two bounds that move inward as pages are
/// read from either end.
pub struct PgIter {
    table: Table,
    low: Bound<Vec<u8>>,
    high: Bound<Vec<u8>>,
    /// Read from the front, in key order, not yet yielded.
    front: VecDeque<Entry>,
    /// Read from the back, in key order, not yet yielded.
    back: VecDeque<Entry>,
    /// Nothing is left between `low` and `high`: what remains is in
    /// `front` and `back`.
    drained: bool,
    /// Rows the next query reads.
    page: i64,
}

impl Iter {
    pub(super) fn pg(table: Table, low: Bound<Vec<u8>>, high: Bound<Vec<u8>>) -> Iter {
        Iter::Pg(PgIter {
            table,
            low,
            high,
            front: VecDeque::new(),
            back: VecDeque::new(),
            drained: false,
            page: FIRST_PAGE,
        })
    }

    /// The keys alone.
    pub fn keys(self) -> impl DoubleEndedIterator<Item = Result<IVec, StoreError>> {
        self.map(|entry| entry.map(|(key, _)| key))
    }

    /// The values alone.
    pub fn values(self) -> impl DoubleEndedIterator<Item = Result<IVec, StoreError>> {
        self.map(|entry| entry.map(|(_, value)| value))
    }
}

impl Iterator for Iter {
    type Item = Result<Entry, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Sled(iter) => iter.next().map(|entry| entry.map_err(StoreError::from)),
            Iter::Pg(iter) => iter.step(true),
        }
    }
}

impl DoubleEndedIterator for Iter {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Sled(iter) => iter
                .next_back()
                .map(|entry| entry.map_err(StoreError::from)),
            Iter::Pg(iter) => iter.step(false),
        }
    }
}

impl PgIter {
    /// The next entry from the front (`forward`) or the back.
    fn step(&mut self, forward: bool) -> Option<Result<Entry, StoreError>> {
        loop {
            let ready = if forward {
                self.front.pop_front()
            } else {
                self.back.pop_back()
            };
            if let Some(entry) = ready {
                return Some(Ok(entry));
            }
            if self.drained {
                // The other end's buffer holds the rest.
                return if forward {
                    self.back.pop_front()
                } else {
                    self.front.pop_back()
                }
                .map(Ok);
            }
            if let Err(err) = self.read_page(forward) {
                self.drained = true;
                self.front.clear();
                self.back.clear();
                return Some(Err(err));
            }
        }
    }

    /// Reads the next page from one end and moves that end's bound past it.
    fn read_page(&mut self, forward: bool) -> Result<(), StoreError> {
        let rows = self.table.page(&self.low, &self.high, forward, self.page)?;
        if (rows.len() as i64) < self.page {
            self.drained = true;
        }
        self.page = (self.page * 4).min(LAST_PAGE);
        if forward {
            if let Some((key, _)) = rows.last() {
                self.low = Bound::Excluded(key.to_vec());
            }
            self.front.extend(rows);
        } else {
            if let Some((key, _)) = rows.last() {
                self.high = Bound::Excluded(key.to_vec());
            }
            for row in rows {
                self.back.push_front(row);
            }
        }
        Ok(())
    }
}
