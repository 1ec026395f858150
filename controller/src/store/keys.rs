//! The store's key layout, in one place. Ids are ULIDs in their 16-byte
//! big-endian form, so keys ending in one sort by time.
//!
//! - `deployments`: `id`.
//! - `idx_app_env`: `app \0 environment \0 id` ([`app_key`]).
//! - `idx_status`: `status \0 id` ([`status_key`]).
//! - `idx_user`: `user \0 id` ([`user_key`]).
//! - `log_chunks`: `deployment task first_seq` (16 + 16 + 8 bytes,
//!   [`chunk_key`]), one chunk of lines each.
//! - `meta`: `running \0 app \0 environment \0` holds the running slot's
//!   deployment ([`running_slot`]); `queue \0 app \0 environment \0 id`
//!   a deployment waiting for it ([`queue_key`]); `logs_expired \0 id`
//!   what retention removed ([`expired_key`]); plus counters (`generation`)
//!   and markers.

use berth_shared::id::{DeploymentId, TaskId};
use berth_shared::state::DeploymentStatus;

pub(super) fn app_key(app: &str, environment: &str, id: DeploymentId) -> Vec<u8> {
    let mut key = app_prefix(app, environment);
    key.extend_from_slice(&id.to_bytes());
    key
}

pub(super) fn app_prefix(app: &str, environment: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(app.len() + environment.len() + 18);
    key.extend_from_slice(app.as_bytes());
    key.push(0);
    key.extend_from_slice(environment.as_bytes());
    key.push(0);
    key
}

pub(super) fn status_key(status: DeploymentStatus, id: DeploymentId) -> Vec<u8> {
    let mut key = status_prefix(status);
    key.extend_from_slice(&id.to_bytes());
    key
}

pub(super) fn status_prefix(status: DeploymentStatus) -> Vec<u8> {
    let mut key = status.as_str().as_bytes().to_vec();
    key.push(0);
    key
}

/// The `idx_user` key of a deployment triggered by `user`.
/// The index key of a deployment under the user its `triggered_by` names
/// (so `ana` and `ana via token ci` are one user's).
pub(super) fn user_key(triggered_by: &str, id: DeploymentId) -> Vec<u8> {
    let mut key = user_prefix(berth_shared::record::user_of(triggered_by));
    key.extend_from_slice(&id.to_bytes());
    key
}

pub(super) fn user_prefix(user: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(user.len() + 17);
    key.extend_from_slice(user.as_bytes());
    key.push(0);
    key
}

pub(super) fn running_slot(app: &str, environment: &str) -> Vec<u8> {
    let mut key = b"running\0".to_vec();
    key.extend_from_slice(&app_prefix(app, environment));
    key
}

pub(super) fn id_from_suffix(key: &[u8]) -> Option<DeploymentId> {
    let start = key.len().checked_sub(16)?;
    <[u8; 16]>::try_from(&key[start..])
        .ok()
        .map(DeploymentId::from_bytes)
}

/// The key of a deployment waiting for its app+environment.
pub(super) fn queue_key(app: &str, environment: &str, id: DeploymentId) -> Vec<u8> {
    let mut key = queue_prefix(app, environment);
    key.extend_from_slice(&id.to_bytes());
    key
}

pub(super) fn queue_prefix(app: &str, environment: &str) -> Vec<u8> {
    let mut key = b"queue\0".to_vec();
    key.extend_from_slice(&app_prefix(app, environment));
    key
}

/// `meta` key of a deployment's [`ExpiredLogs`].
pub(super) fn expired_key(deployment: DeploymentId) -> Vec<u8> {
    let mut key = b"logs_expired\0".to_vec();
    key.extend_from_slice(&deployment.to_bytes());
    key
}

pub(super) fn chunk_key(deployment: DeploymentId, task: TaskId, first_seq: u64) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..16].copy_from_slice(&deployment.to_bytes());
    key[16..32].copy_from_slice(&task.to_bytes());
    key[32..].copy_from_slice(&first_seq.to_be_bytes());
    key
}

pub(super) fn task_prefix(deployment: DeploymentId, task: TaskId) -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(&deployment.to_bytes());
    key[16..].copy_from_slice(&task.to_bytes());
    key
}
