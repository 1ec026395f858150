//! Log lines, keyed by (deployment, task, sequence) so one task's lines are
//! contiguous and ordered, and a deployment's lines share a prefix.

use std::time::Duration;

use berth_shared::id::{DeploymentId, TaskId};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

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

/// The retention sweeper's note that it deleted a deployment's lines, kept
/// in the `meta` tree so `berth logs` can say why lines are missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiredLogs {
    /// Every deleted line was older than this (Unix ms).
    pub before_ms: i64,
    /// The retention setting that deleted them, in milliseconds.
    pub retention_ms: u64,
}

/// `meta` key of a deployment's [`ExpiredLogs`].
fn expired_key(deployment: DeploymentId) -> Vec<u8> {
    let mut key = b"logs_expired\0".to_vec();
    key.extend_from_slice(&deployment.to_bytes());
    key
}

pub(super) fn log_key(deployment: DeploymentId, task: TaskId, seq: u64) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..16].copy_from_slice(&deployment.to_bytes());
    key[16..32].copy_from_slice(&task.to_bytes());
    key[32..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn task_prefix(deployment: DeploymentId, task: TaskId) -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(&deployment.to_bytes());
    key[16..].copy_from_slice(&task.to_bytes());
    key
}

fn parse_entry(
    entry: sled::Result<(sled::IVec, sled::IVec)>,
) -> Result<(u64, StoredLine), StoreError> {
    let (key, value) = entry?;
    let seq = <[u8; 8]>::try_from(&key[32..])
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt {
            tree: "logs",
            reason: "short key".into(),
        })?;
    Ok((seq, decode("logs", &value)?))
}

impl Store {
    /// One task's lines with sequence numbers above `after`, in order.
    pub fn task_lines(
        &self,
        deployment: DeploymentId,
        task: TaskId,
        after: u64,
    ) -> impl Iterator<Item = Result<(u64, StoredLine), StoreError>> + '_ {
        let start = log_key(deployment, task, after.saturating_add(1));
        let end = log_key(deployment, task, u64::MAX);
        self.logs.range(start..=end).map(parse_entry)
    }

    /// One task's lines, newest first (for `--tail` after filtering).
    pub fn task_lines_rev(
        &self,
        deployment: DeploymentId,
        task: TaskId,
    ) -> impl Iterator<Item = Result<(u64, StoredLine), StoreError>> + '_ {
        self.logs
            .scan_prefix(task_prefix(deployment, task))
            .rev()
            .map(parse_entry)
    }

    /// What the retention sweeper deleted of a deployment's lines, if
    /// anything.
    pub fn expired_logs(
        &self,
        deployment: DeploymentId,
    ) -> Result<Option<ExpiredLogs>, StoreError> {
        self.meta
            .get(expired_key(deployment))?
            .map(|bytes| decode("meta", &bytes))
            .transpose()
    }

    /// Deletes a deployment's log lines and its retention marker in one
    /// transaction (for `berth purge`); returns the number of lines
    /// removed. The caller makes it durable with [`Store::flush`].
    pub(crate) fn forget_deployment_logs(&self, id: DeploymentId) -> Result<u64, StoreError> {
        let keys = self
            .logs
            .scan_prefix(id.to_bytes())
            .keys()
            .collect::<Result<Vec<_>, _>>()?;
        (&self.logs, &self.meta).transaction(|(logs, meta)| {
            for key in &keys {
                logs.remove(key.clone())?;
            }
            meta.remove(expired_key(id))?;
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        })?;
        Ok(keys.len() as u64)
    }
}

impl Store {
    /// Deletes the log lines of settled deployments created before
    /// `cutoff_ms` (Unix ms). Deployments are visited oldest first from a
    /// durable cursor, so each is swept once; the sweep stops at the first
    /// deployment that is still running. Each deployment that loses lines
    /// gets an [`ExpiredLogs`] marker naming `retention`, written in the
    /// same transaction as the deletion, and the whole sweep is flushed
    /// before it returns. Returns the number of lines removed.
    pub fn expire_logs(&self, cutoff_ms: i64, retention: Duration) -> Result<u64, StoreError> {
        let cursor = self
            .meta
            .get(b"retention_cursor")?
            .map(|bytes| bytes.to_vec())
            .unwrap_or_default();
        let start = if cursor.is_empty() {
            std::ops::Bound::Unbounded
        } else {
            std::ops::Bound::Excluded(cursor)
        };
        let mut removed = 0u64;
        let mut swept = false;
        for entry in self
            .deployments
            .range::<Vec<u8>, _>((start, std::ops::Bound::Unbounded))
        {
            let (key, value) = entry?;
            let Ok(bytes) = <[u8; 16]>::try_from(key.as_ref()) else {
                continue;
            };
            let id = DeploymentId::from_bytes(bytes);
            if i64::try_from(id.0.timestamp_ms()).unwrap_or(i64::MAX) >= cutoff_ms {
                break;
            }
            let deployment: berth_shared::record::Deployment = decode("deployments", &value)?;
            if deployment.status.is_running() {
                break;
            }
            removed += self.expire_deployment(id, cutoff_ms, retention)?;
            swept = true;
        }
        if swept {
            self.db.flush()?;
        }
        Ok(removed)
    }

    /// Deletes one deployment's lines, records the marker and moves the
    /// cursor past it, all in one transaction.
    fn expire_deployment(
        &self,
        id: DeploymentId,
        cutoff_ms: i64,
        retention: Duration,
    ) -> Result<u64, StoreError> {
        let mut keys = Vec::new();
        let mut newest_ms = i64::MIN;
        for entry in self.logs.scan_prefix(id.to_bytes()) {
            let (key, value) = entry?;
            // A corrupt line is deleted all the same; only its time is unknown.
            if let Ok(line) = decode::<StoredLine>("logs", &value) {
                newest_ms = newest_ms.max(line.ts_ms);
            }
            keys.push(key);
        }
        let marker = ExpiredLogs {
            before_ms: cutoff_ms.max(newest_ms.saturating_add(1)),
            retention_ms: u64::try_from(retention.as_millis()).unwrap_or(u64::MAX),
        };
        (&self.logs, &self.meta).transaction(|(logs, meta)| {
            for key in &keys {
                logs.remove(key.clone())?;
            }
            if !keys.is_empty() {
                meta.insert(expired_key(id), encode(&marker))?;
            }
            meta.insert(b"retention_cursor", &id.to_bytes())?;
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        })?;
        Ok(keys.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use berth_shared::id::{DeploymentId, TaskId};
    use berth_shared::state::DeploymentStatus;

    use super::{ExpiredLogs, Store, StoredLine};

    const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

    /// A settled deployment created at `created_ms` with lines at `line_ms`.
    fn settled_with_lines(
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
    fn sweep_leaves_a_durable_marker_on_deployments_that_lost_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (old, empty, young) = {
            let store = Store::open(dir.path()).expect("open");
            let old = settled_with_lines(&store, 1_000, &[1_100, 4_000]);
            let empty = settled_with_lines(&store, 1_200, &[]);
            let young = settled_with_lines(&store, 5_000, &[5_100]);
            assert_eq!(store.expire_logs(3_000, RETENTION).expect("sweep"), 2);
            (old, empty, young)
        };
        // Reopened: the sweep was flushed, marker and deletion together.
        let store = crate::store::reopen(dir.path());
        assert_eq!(store.task_lines(old.0, old.1, 0).count(), 0);
        assert_eq!(
            store.expired_logs(old.0).expect("read"),
            Some(ExpiredLogs {
                // A line newer than the cutoff went too; the marker covers it.
                before_ms: 4_001,
                retention_ms: 30 * 24 * 3600 * 1000,
            })
        );
        assert_eq!(
            store.expired_logs(empty.0).expect("read"),
            None,
            "nothing was deleted"
        );
        assert_eq!(store.expired_logs(young.0).expect("read"), None);
        assert_eq!(store.task_lines(young.0, young.1, 0).count(), 1);
    }

    #[test]
    fn marker_says_cutoff_when_every_line_was_older() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let (id, _) = settled_with_lines(&store, 1_000, &[1_100]);
        store.expire_logs(3_000, RETENTION).expect("sweep");
        let marker = store.expired_logs(id).expect("read").expect("marker");
        assert_eq!(marker.before_ms, 3_000);
    }

    #[test]
    fn forgetting_a_deployment_removes_its_lines_and_marker() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let (swept, _) = settled_with_lines(&store, 1_000, &[1_100]);
        let (kept, kept_task) = settled_with_lines(&store, 2_000, &[2_100, 2_200]);
        store.expire_logs(1_500, RETENTION).expect("sweep");
        assert!(store.expired_logs(swept).expect("read").is_some());

        assert_eq!(store.forget_deployment_logs(swept).expect("forget"), 0);
        assert_eq!(store.expired_logs(swept).expect("read"), None);
        assert_eq!(store.forget_deployment_logs(kept).expect("forget"), 2);
        assert_eq!(store.task_lines(kept, kept_task, 0).count(), 0);
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
