//! A whole store copied into another (`berth-controller migrate`), entry
//! for entry, with both sides counted afterwards: the records of every
//! tree, and the log lines inside the log chunks.

use super::kv::{self, IVec};
use super::{Store, StoreError, decode};

use super::kv::BATCH;

/// What a copy moved, counted on both sides after it.
#[derive(Debug, Default)]
pub struct Copied {
    /// Each tree's entries: name, in the source, in the target.
    pub trees: Vec<(&'static str, u64, u64)>,
    /// Log lines in the source and in the target.
    pub log_lines: (u64, u64),
}

impl Copied {
    /// True when every count matches.
    pub fn complete(&self) -> bool {
        self.log_lines.0 == self.log_lines.1
            && self
                .trees
                .iter()
                .all(|(_, source, target)| source == target)
    }
}

impl Store {
    /// Copies every entry of every tree into `target`, which must hold
    /// nothing yet, then counts both. The caller flushes the target.
    pub fn copy_into(
        &self,
        target: &Store,
        progress: impl Fn(&str, u64),
    ) -> Result<Copied, StoreError> {
        let (from, to) = (self.t()?, target.t()?);
        if let Some(name) = to.holding_records()? {
            return Err(StoreError::Refused(format!(
                "the target store already holds records (its `{name}` is not empty); migrate into a new, empty database"
            )));
        }
        for ((name, source), (_, dest)) in from.all().into_iter().zip(to.all()) {
            let mut batch: Vec<(IVec, IVec)> = Vec::with_capacity(BATCH);
            let mut copied = 0u64;
            for entry in source.iter() {
                batch.push(entry?);
                if batch.len() == BATCH {
                    copied += dest.insert_all(&mut batch)?;
                    progress(name, copied);
                }
            }
            copied += dest.insert_all(&mut batch)?;
            progress(name, copied);
        }
        // Ids generated on the target from now on come after the source's.
        to.db.advance_ids(from.db.generate_id()?)?;
        let mut counted = Copied::default();
        for ((name, source), (_, dest)) in from.all().into_iter().zip(to.all()) {
            counted.trees.push((name, count(source)?, count(dest)?));
        }
        counted.log_lines = (lines(&from.logs)?, lines(&to.logs)?);
        Ok(counted)
    }
}

fn count(tree: &kv::Tree) -> Result<u64, StoreError> {
    Ok(tree.len()? as u64)
}

/// The lines in every chunk of a `log_chunks` tree.
fn lines(logs: &kv::Tree) -> Result<u64, StoreError> {
    let mut total = 0u64;
    for entry in logs.iter().values() {
        let chunk: Vec<serde_json::Value> = decode("log_chunks", &entry?)?;
        total += chunk.len() as u64;
    }
    Ok(total)
}
