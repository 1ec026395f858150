//! Log lines, keyed by (deployment, task, sequence) so one task's lines are
//! contiguous and ordered, and a deployment's lines share a prefix.

use berth_shared::id::{DeploymentId, TaskId};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, decode};

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

    /// One task's last `count` lines, in order.
    pub fn task_tail(
        &self,
        deployment: DeploymentId,
        task: TaskId,
        count: usize,
    ) -> Result<Vec<(u64, StoredLine)>, StoreError> {
        let mut lines = self
            .logs
            .scan_prefix(task_prefix(deployment, task))
            .rev()
            .take(count)
            .map(parse_entry)
            .collect::<Result<Vec<_>, _>>()?;
        lines.reverse();
        Ok(lines)
    }
}

impl Store {
    /// Deletes the log lines of settled deployments created before
    /// `cutoff_ms` (Unix ms). Deployments are visited oldest first from a
    /// durable cursor, so each is swept once; the sweep stops at the first
    /// deployment that is still running. Returns the number of lines removed.
    pub fn expire_logs(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
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
            let mut batch = sled::Batch::default();
            for line_key in self.logs.scan_prefix(bytes).keys() {
                batch.remove(line_key?);
                removed += 1;
            }
            self.logs.apply_batch(batch)?;
            self.meta.insert(b"retention_cursor", &bytes)?;
        }
        Ok(removed)
    }
}
