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
