//! Log lines, stored in chunks: one value holds the lines of one batch of
//! a task's events, keyed by (deployment, task, first sequence number), so
//! one task's chunks are contiguous and ordered and a deployment's share a
//! prefix. Chunks never overlap: a batch stores only the lines after what
//! its task already stored.
//!
//! One value per batch instead of one per line is what makes a flood of
//! output cheap to store: sled commits a transaction under a global lock,
//! and its cost grows with the number of keys written.
//!
//! Stores written before chunks kept one line per key in the `logs` tree;
//! [`Store::migrate_line_keys_once`] moves them into chunks at open.

use super::kv::Transactional;
use super::kv::{TxError, TxTree};
use berth_shared::id::{DeploymentId, TaskId};
use serde::{Deserialize, Serialize};

use super::keys::{chunk_key, expired_key, task_prefix};
use super::{Store, StoreError, decode, encode};

/// One stored log line (the host comes from the task).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLine {
    pub stage: String,
    pub stream: String,
    pub ts_ms: i64,
    pub line: String,
}

/// A log line to store with a deployment change: task, sequence, line.
pub type LogWrite = (TaskId, u64, StoredLine);

/// The value of one chunk: lines with their sequence numbers, ascending.
/// Sequence numbers may skip (stage and result events take numbers too).
type Chunk = Vec<(u64, StoredLine)>;

/// Lines per chunk when old one-line keys are moved into chunks.
const MIGRATION_CHUNK: usize = 512;

/// The retention sweeper's note that it deleted a deployment's lines, kept
/// in the `meta` tree so `berth logs` can say why lines are missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiredLogs {
    /// Every deleted line was older than this (Unix ms).
    pub before_ms: i64,
    /// The retention setting that deleted them, in milliseconds.
    pub retention_ms: u64,
}

/// Writes `lines` (in sequence order) as one chunk per task, inside a
/// transaction that also changes the deployment record.
pub(super) fn write_chunks(
    logs: &TxTree<'_>,
    deployment: DeploymentId,
    lines: &[LogWrite],
) -> Result<(), TxError> {
    let mut rest = lines;
    while let Some((task, first_seq, _)) = rest.first() {
        let len = rest.iter().take_while(|(other, ..)| other == task).count();
        // Serialized like a `Chunk`, without copying the lines.
        let chunk: Vec<(u64, &StoredLine)> = rest[..len]
            .iter()
            .map(|(_, seq, line)| (*seq, line))
            .collect();
        logs.insert(
            &chunk_key(deployment, *task, *first_seq)[..],
            encode(&chunk),
        )?;
        rest = &rest[len..];
    }
    Ok(())
}

/// The lines of one stored chunk (one error item if it cannot be read).
fn chunk_lines(
    entry: Result<(super::kv::IVec, super::kv::IVec), StoreError>,
) -> Vec<Result<(u64, StoredLine), StoreError>> {
    let decoded = entry.and_then(|(_, value)| decode::<Chunk>("logs", &value));
    match decoded {
        Ok(chunk) => chunk.into_iter().map(Ok).collect(),
        Err(err) => vec![Err(err)],
    }
}

impl Store {
    /// One task's lines with sequence numbers above `after`, in order.
    pub fn task_lines(
        &self,
        deployment: DeploymentId,
        task: TaskId,
        after: u64,
    ) -> Box<dyn Iterator<Item = Result<(u64, StoredLine), StoreError>> + '_> {
        let t = match self.t() {
            Ok(t) => t,
            Err(err) => return Box::new(std::iter::once(Err(err))),
        };
        let wanted = chunk_key(deployment, task, after.saturating_add(1));
        // The chunk holding `after + 1` starts at or before it.
        let start = t
            .logs
            .range(task_prefix(deployment, task).to_vec()..=wanted.to_vec())
            .next_back()
            .and_then(Result::ok)
            .map_or_else(|| wanted.to_vec(), |(key, _)| key.to_vec());
        let end = chunk_key(deployment, task, u64::MAX);
        Box::new(
            t.logs
                .range(start..=end.to_vec())
                .flat_map(chunk_lines)
                .filter(move |entry| entry.as_ref().map_or(true, |(seq, _)| *seq > after)),
        )
    }

    /// One task's lines, newest first (for `--tail` after filtering).
    pub fn task_lines_rev(
        &self,
        deployment: DeploymentId,
        task: TaskId,
    ) -> Box<dyn Iterator<Item = Result<(u64, StoredLine), StoreError>> + '_> {
        match self.t() {
            Ok(t) => Box::new(
                t.logs
                    .scan_prefix(task_prefix(deployment, task))
                    .rev()
                    .flat_map(|entry| chunk_lines(entry).into_iter().rev()),
            ),
            Err(err) => Box::new(std::iter::once(Err(err))),
        }
    }

    /// What the retention sweeper deleted of a deployment's lines, if
    /// anything.
    pub fn expired_logs(
        &self,
        deployment: DeploymentId,
    ) -> Result<Option<ExpiredLogs>, StoreError> {
        self.t()?
            .meta
            .get(expired_key(deployment))?
            .map(|bytes| decode("meta", &bytes))
            .transpose()
    }

    /// A deployment's chunk keys, the number of lines in them and the
    /// newest line's time (a chunk that cannot be read is listed all the
    /// same, its lines uncounted).
    pub(super) fn deployment_chunks(
        &self,
        id: DeploymentId,
    ) -> Result<(Vec<super::kv::IVec>, u64, i64), StoreError> {
        let (mut keys, mut lines, mut newest_ms) = (Vec::new(), 0u64, i64::MIN);
        for entry in self.t()?.logs.scan_prefix(id.to_bytes()) {
            let (key, value) = entry?;
            if let Ok(chunk) = decode::<Chunk>("logs", &value) {
                lines += chunk.len() as u64;
                newest_ms = chunk
                    .iter()
                    .map(|(_, line)| line.ts_ms)
                    .fold(newest_ms, i64::max);
            }
            keys.push(key);
        }
        Ok((keys, lines, newest_ms))
    }

    /// Deletes a deployment's log lines and its retention marker in one
    /// transaction (for `berth purge`); returns the number of lines
    /// removed. The caller makes it durable with [`Store::flush`].
    pub(crate) fn forget_deployment_logs(&self, id: DeploymentId) -> Result<u64, StoreError> {
        let (keys, lines, _) = self.deployment_chunks(id)?;
        let t = self.t()?;
        (&t.logs, &t.meta).transaction(|(logs, meta)| {
            for key in &keys {
                logs.remove(key.clone())?;
            }
            meta.remove(expired_key(id))?;
            Ok::<_, TxError>(())
        })?;
        Ok(lines)
    }

    /// Moves the lines of a store written before chunks (one line per key
    /// in the `logs` tree) into chunks, then drops the old tree. A crash
    /// halfway redoes the same chunks at the next open: they are cut the
    /// same way from the same lines, and the old tree goes only after
    /// they are durable.
    pub(super) fn migrate_line_keys_once(&self) -> Result<(), StoreError> {
        let trees = self.t()?;
        let Some(db) = trees.db.sled() else {
            // PostgreSQL stores began with chunks.
            return Ok(());
        };
        if !db.tree_names().iter().any(|name| name.as_ref() == b"logs") {
            return Ok(());
        }
        let old = db.open_tree("logs")?;
        let mut moved = 0u64;
        let mut pending: Vec<(super::kv::IVec, u64, StoredLine)> = Vec::new();
        let flush_chunk =
            |pending: &mut Vec<(super::kv::IVec, u64, StoredLine)>| -> Result<(), StoreError> {
                let Some((key, first_seq, _)) = pending.first() else {
                    return Ok(());
                };
                let mut chunk_at = key[..32].to_vec();
                chunk_at.extend_from_slice(&first_seq.to_be_bytes());
                let chunk: Chunk = pending
                    .drain(..)
                    .map(|(_, seq, line)| (seq, line))
                    .collect();
                self.t()?.logs.insert(chunk_at, encode(&chunk))?;
                Ok(())
            };
        for entry in old.iter() {
            let (key, value) = entry?;
            let (Some(seq), Ok(line)) = (
                key.get(32..40)
                    .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
                    .map(u64::from_be_bytes),
                decode::<StoredLine>("logs", &value),
            ) else {
                tracing::warn!(key = ?key, "left an unreadable log line out of the move to chunks");
                continue;
            };
            let same_task = pending
                .first()
                .is_some_and(|(first, ..)| first[..32] == key[..32]);
            if !same_task || pending.len() == MIGRATION_CHUNK {
                flush_chunk(&mut pending)?;
            }
            pending.push((key, seq, line));
            moved += 1;
        }
        flush_chunk(&mut pending)?;
        db.flush()?;
        db.drop_tree("logs")?;
        db.flush()?;
        tracing::info!(lines = moved, "moved stored log lines into chunks");
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use berth_shared::id::{DeploymentId, TaskId};
    use berth_shared::state::DeploymentStatus;

    use super::{Store, StoredLine};

    /// A settled deployment created at `created_ms` with lines at `line_ms`.
    pub(in crate::store) fn settled_with_lines(
        store: &Store,
        created_ms: u64,
        line_ms: &[i64],
    ) -> (DeploymentId, TaskId) {
        let mut deployment = crate::testing::deployment(&["h1"], 0);
        deployment.id = DeploymentId(ulid::Ulid::from_parts(created_ms, 7));
        deployment.status = DeploymentStatus::Deployed;
        let task = deployment.tasks[0].id;
        store
            .create_deployment(&deployment, true, false)
            .expect("create");
        let lines: Vec<_> = (1u64..)
            .zip(line_ms)
            .map(|(seq, ts_ms)| {
                let line = StoredLine {
                    stage: "setup".into(),
                    stream: "stdout".into(),
                    ts_ms: *ts_ms,
                    line: format!("line {seq}"),
                };
                (task, seq, line)
            })
            .collect();
        store
            .update_deployment_with_logs(deployment.id, |_| Ok(((), lines.clone())))
            .expect("logs");
        (deployment.id, task)
    }

    #[test]
    fn lines_after_a_sequence_start_inside_a_chunk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let (id, task) = settled_with_lines(&store, 1_000, &[1, 2, 3, 4]);
        let more = |seqs: std::ops::RangeInclusive<u64>| -> Vec<_> {
            seqs.map(|seq| {
                let line = StoredLine {
                    stage: "setup".into(),
                    stream: "stdout".into(),
                    ts_ms: 10,
                    line: format!("line {seq}"),
                };
                (task, seq, line)
            })
            .collect()
        };
        // A second chunk after a gap in numbering (a stage event took 5).
        store
            .update_deployment_with_logs(id, |_| Ok(((), more(6..=8))))
            .expect("logs");
        let seqs = |after| -> Vec<u64> {
            store
                .task_lines(id, task, after)
                .map(|entry| entry.expect("line").0)
                .collect()
        };
        assert_eq!(seqs(0), [1, 2, 3, 4, 6, 7, 8]);
        assert_eq!(seqs(2), [3, 4, 6, 7, 8]);
        assert_eq!(seqs(4), [6, 7, 8]);
        assert_eq!(seqs(5), [6, 7, 8]);
        assert_eq!(seqs(7), [8]);
        assert_eq!(seqs(8), Vec::<u64>::new());
        let newest_first: Vec<u64> = store
            .task_lines_rev(id, task)
            .map(|entry| entry.expect("line").0)
            .collect();
        assert_eq!(newest_first, [8, 7, 6, 4, 3, 2, 1]);
    }

    #[test]
    fn lines_stored_one_per_key_move_into_chunks_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let deployment = DeploymentId::new();
        let (task_a, task_b) = (TaskId::new(), TaskId::new());
        {
            // The layout before chunks: `logs`, one line per key.
            let db = sled::open(dir.path()).expect("open sled");
            let old = db.open_tree("logs").expect("tree");
            for (task, count) in [(task_a, 1_100u64), (task_b, 3)] {
                for seq in 1..=count {
                    let line = StoredLine {
                        stage: "setup".into(),
                        stream: "stdout".into(),
                        ts_ms: i64::try_from(seq).expect("small"),
                        line: format!("line {seq}"),
                    };
                    let mut key = super::task_prefix(deployment, task).to_vec();
                    key.extend_from_slice(&seq.to_be_bytes());
                    old.insert(key, super::encode(&line)).expect("insert");
                }
            }
            db.flush().expect("flush");
        }
        let store = crate::store::reopen(dir.path());
        let lines: Vec<(u64, StoredLine)> = store
            .task_lines(deployment, task_a, 0)
            .map(|entry| entry.expect("line"))
            .collect();
        assert_eq!(lines.len(), 1_100);
        assert!(lines.iter().zip(1u64..).all(|((seq, line), expected)| {
            *seq == expected && line.line == format!("line {expected}")
        }));
        assert_eq!(store.task_lines(deployment, task_a, 700).count(), 400);
        assert_eq!(store.task_lines(deployment, task_b, 0).count(), 3);
        assert!(
            !store
                .t()
                .expect("open")
                .db
                .sled()
                .expect("sled")
                .tree_names()
                .iter()
                .any(|name| name.as_ref() == b"logs"),
            "the old tree is dropped"
        );
        drop(store);
        // Opening again finds nothing left to move and keeps the lines.
        let store = crate::store::reopen(dir.path());
        assert_eq!(store.task_lines(deployment, task_a, 0).count(), 1_100);
    }

    #[test]
    fn reverse_lines_are_newest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let (id, task) = settled_with_lines(&store, 1_000, &[1, 2, 3]);
        let seqs: Vec<u64> = store
            .task_lines_rev(id, task)
            .map(|entry| entry.expect("line").0)
            .collect();
        assert_eq!(seqs, [3, 2, 1]);
    }
}
