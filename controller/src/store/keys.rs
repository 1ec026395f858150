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
//!   what retention removed ([`expired_key`]); `default_environment \0 app
//!   \0` the name of the app's default environment ([`default_key`]);
//!   `approval \0 id` the expiry (Unix ms, u64 BE) of a deployment's
//!   pending approval ([`approval_key`]); `serving_controller` the
//!   controller serving from the store, as JSON ([`SERVING_KEY`]); plus
//!   counters (`generation`) and markers.
//! - `ratings`: `app \0 user` ([`rating_key`]).
//! - `environments`: `app \0 environment` ([`environment_key`]).
//! - `secret_names`: `scope name \0` ([`secret_name_key`]), where the
//!   scope is `app \0 environment \0` or `* \0` ([`secret_scope_prefix`]);
//!   `secrets`: the same, then the version as u64 BE ([`secret_key`]).
//!   App and environment names are never `*` (they are `a-z`, `0-9` and
//!   `-`) and secret names hold no NUL, so one scope's keys, and one
//!   secret's versions, are contiguous and never another's.
//!
//! App, environment and principal names hold no NUL byte, so the keys of
//! one name are contiguous and [`Heads`] can jump from one to the next.

use berth_shared::id::{DeploymentId, TaskId};
use berth_shared::record::SecretScope;
use berth_shared::state::DeploymentStatus;

use super::StoreError;

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
    let mut key = name_prefix(berth_shared::record::user_of(triggered_by));
    key.extend_from_slice(&id.to_bytes());
    key
}

/// `name \0`: the prefix of every key of one app (in `idx_app_env` and
/// `ratings`) or one user (in `idx_user`).
pub(super) fn name_prefix(name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 33);
    key.extend_from_slice(name.as_bytes());
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

/// Where the `meta` keys of pending approvals start.
pub(super) const APPROVAL_PREFIX: &[u8] = b"approval\0";

/// The `meta` key naming the controller that serves from the store
/// (`store/serving.rs`).
pub(super) const SERVING_KEY: &[u8] = b"serving_controller";

/// The `meta` key of a deployment with a pending approval; its value is
/// the approval's expiry.
pub(super) fn approval_key(deployment: DeploymentId) -> Vec<u8> {
    let mut key = APPROVAL_PREFIX.to_vec();
    key.extend_from_slice(&deployment.to_bytes());
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

/// The distinct heads of a tree's keys under a prefix: each key's first
/// `fields` NUL-ended fields (`app \0`, or `app \0 env \0`), in key order.
/// It seeks past each head rather than walking the keys under it, so it
/// costs one seek per head however many keys share it.
pub(super) struct Heads<'t> {
    tree: &'t super::kv::Tree,
    name: &'static str,
    prefix: Vec<u8>,
    fields: usize,
    /// Where the next head is looked for; `None` once done.
    from: Option<Vec<u8>>,
}

impl<'t> Heads<'t> {
    /// The heads of `tree` (called `name` in errors) under `prefix`.
    pub(super) fn new(
        tree: &'t super::kv::Tree,
        name: &'static str,
        prefix: &[u8],
        fields: usize,
    ) -> Heads<'t> {
        Heads {
            tree,
            name,
            prefix: prefix.to_vec(),
            fields,
            from: Some(prefix.to_vec()),
        }
    }
}

impl Iterator for Heads<'_> {
    type Item = Result<Vec<u8>, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let from = self.from.take()?;
        let key = match self.tree.range(from.as_slice()..).keys().next()? {
            Ok(key) => key,
            Err(err) => return Some(Err(err)),
        };
        if !key.starts_with(&self.prefix) {
            return None;
        }
        let end = key
            .iter()
            .enumerate()
            .filter(|(_, byte)| **byte == 0)
            .nth(self.fields.saturating_sub(1))
            .map(|(at, _)| at);
        let Some(end) = end else {
            return Some(Err(StoreError::Corrupt {
                tree: self.name,
                reason: format!("index key without its {} NUL-ended names", self.fields),
            }));
        };
        let head = key[..=end].to_vec();
        // Every key under this head sorts before the head ending in 1.
        let mut next = head.clone();
        next[end] = 1;
        self.from = Some(next);
        Some(Ok(head))
    }
}

/// The `ratings` key of `user`'s rating of `app` (every rating of `app`
/// is under [`name_prefix`]).
pub(super) fn rating_key(app: &str, user: &str) -> Vec<u8> {
    let mut key = name_prefix(app);
    key.extend_from_slice(user.as_bytes());
    key
}

/// The `environments` key of `app`'s environment `name` (every
/// environment of `app` is under [`name_prefix`]).
pub(super) fn environment_key(app: &str, name: &str) -> Vec<u8> {
    let mut key = name_prefix(app);
    key.extend_from_slice(name.as_bytes());
    key
}

/// The `meta` key that holds the name of `app`'s default environment.
pub(super) fn default_key(app: &str) -> Vec<u8> {
    let mut key = b"default_environment\0".to_vec();
    key.extend_from_slice(&name_prefix(app));
    key
}

/// The prefix of every key of one secret scope: `app \0 environment \0`,
/// or `* \0` for the fleet's.
pub(super) fn secret_scope_prefix(scope: &SecretScope) -> Vec<u8> {
    match scope {
        SecretScope::App { app, environment } => app_prefix(app, environment),
        SecretScope::Fleet => b"*\0".to_vec(),
    }
}

/// The `secret_names` key of a secret, and the prefix of its versions'
/// keys in `secrets`.
pub(super) fn secret_name_key(scope: &SecretScope, name: &str) -> Vec<u8> {
    let mut key = secret_scope_prefix(scope);
    key.extend_from_slice(name.as_bytes());
    key.push(0);
    key
}

/// The `secrets` key of one version of a secret.
pub(super) fn secret_key(scope: &SecretScope, name: &str, version: u64) -> Vec<u8> {
    let mut key = secret_name_key(scope, name);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

/// The key of a record whose id is a ULID (a webhook, a git hook, a push):
/// its 16 bytes, so the tree sorts by creation. An id that is no ULID names
/// no record: `NotFound` with `what`.
pub(super) fn ulid_key(id: &str, thing: super::Thing, what: &str) -> Result<[u8; 16], StoreError> {
    ulid::Ulid::from_string(id)
        .map(|ulid| ulid.0.to_be_bytes())
        .map_err(|_| StoreError::NotFound(thing, what.to_string()))
}
