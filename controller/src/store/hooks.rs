//! Git push hooks as stored, in three trees:
//!
//! - `hooks`: hook id (ULID, 16 bytes) → [`HookRecord`], its secret sealed
//!   under the secrets key.
//! - `hook_seen`: hook id ++ delivery id → when it came: the delivery ids
//!   accepted, so a replayed delivery is refused.
//! - `pushes`: hook id ++ push id → [`PushRecord`]: each accepted push and
//!   what came of it; the worker resumes queued and fetching ones after a
//!   restart.
//!
//! Accepting a push is one transaction: the replay check, the delivery id,
//! the push and the hook's counter.

use super::kv::Transactional;
use super::kv::TxError;
use berth_shared::record::{GitProvider, PushState, PushView, Timestamp};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, Thing, decode, encode};
use crate::crypto::Sealed;

/// Pushes kept per hook, newest first.
pub const KEEP_PUSHES: usize = 50;

/// One hook, as stored.
#[derive(Clone, Serialize, Deserialize)]
pub struct HookRecord {
    pub id: String,
    pub app: String,
    pub environment: String,
    pub git_ref: String,
    pub repo: String,
    pub path: Option<String>,
    pub provider: GitProvider,
    /// The signing secret (GitLab's token), sealed for `Place::Hook`.
    pub sealed: Sealed,
    pub credential: Option<String>,
    pub build_labels: String,
    pub accepted: u64,
    pub refused: u64,
    pub created_at: Timestamp,
    pub created_by: String,
}

impl std::fmt::Debug for HookRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookRecord")
            .field("id", &self.id)
            .field("app", &self.app)
            .field("environment", &self.environment)
            .finish_non_exhaustive()
    }
}

/// One accepted push, as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PushRecord {
    pub id: String,
    pub hook: String,
    pub delivery: String,
    pub git_ref: String,
    pub commit: String,
    pub message: Option<String>,
    pub author: Option<String>,
    pub commit_time: Option<Timestamp>,
    pub state: PushState,
    pub deployment: Option<String>,
    pub error: Option<String>,
    pub received_at: Timestamp,
}

impl PushRecord {
    pub fn view(&self) -> PushView {
        PushView {
            id: self.id.clone(),
            delivery: self.delivery.clone(),
            git_ref: self.git_ref.clone(),
            commit: self.commit.clone(),
            message: self.message.clone(),
            author: self.author.clone(),
            commit_time: self.commit_time,
            state: self.state,
            deployment: self.deployment.clone(),
            error: self.error.clone(),
            received_at: self.received_at,
        }
    }
}

/// A hook id's key.
pub fn hook_key(id: &str) -> Result<[u8; 16], StoreError> {
    super::keys::ulid_key(id, Thing::Hook, &format!("hook `{id}`"))
}

fn push_key(hook: &str, push: &str) -> Result<Vec<u8>, StoreError> {
    let mut key = hook_key(hook)?.to_vec();
    key.extend_from_slice(&hook_key(push)?);
    Ok(key)
}

/// What [`Store::accept_push`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Accepted {
    New,
    /// The delivery id was seen before.
    Replayed,
}

impl Store {
    /// Wakes the git push worker: a push was accepted.
    pub fn wake_pushes(&self) {
        self.shared.push_wake.notify_one();
    }

    /// What the git push worker waits on.
    pub fn push_wake(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.shared.push_wake.clone()
    }

    pub fn put_hook(&self, record: &HookRecord) -> Result<(), StoreError> {
        self.t()?
            .hooks
            .insert(hook_key(&record.id)?, encode(record))?;
        Ok(())
    }

    pub fn hook(&self, id: &str) -> Result<Option<HookRecord>, StoreError> {
        let Ok(key) = hook_key(id) else {
            return Ok(None);
        };
        self.t()?
            .hooks
            .get(key)?
            .map(|bytes| decode("hooks", &bytes))
            .transpose()
    }

    pub fn list_hooks(&self) -> Result<Vec<HookRecord>, StoreError> {
        self.t()?
            .hooks
            .iter()
            .values()
            .map(|value| decode("hooks", &value?))
            .collect()
    }

    /// Removes a hook with its pushes and seen delivery ids.
    pub fn remove_hook(&self, id: &str) -> Result<Option<HookRecord>, StoreError> {
        let key = hook_key(id)?;
        let t = self.t()?;
        let removed = t
            .hooks
            .remove(key)?
            .map(|bytes| decode("hooks", &bytes))
            .transpose()?;
        for tree in [&t.hook_seen, &t.pushes] {
            for entry in tree.scan_prefix(key) {
                tree.remove(entry?.0)?;
            }
        }
        Ok(removed)
    }

    /// Counts a refused delivery.
    pub fn count_refused(&self, id: &str) -> Result<(), StoreError> {
        let key = hook_key(id)?;
        let t = self.t()?;
        t.hooks.transaction(|hooks| {
            let Some(bytes) = hooks.get(key)? else {
                return Ok(());
            };
            let mut record: HookRecord = decode("hooks", &bytes).map_err(TxError::Abort)?;
            record.refused += 1;
            hooks.insert(key, encode(&record))?;
            Ok::<_, TxError>(())
        })?;
        Ok(())
    }

    /// Records an accepted push unless its delivery id was seen; counts it
    /// either way (a replay as refused).
    pub fn accept_push(&self, push: &PushRecord) -> Result<Accepted, StoreError> {
        let key = hook_key(&push.hook)?;
        let mut seen = key.to_vec();
        seen.extend_from_slice(push.delivery.as_bytes());
        let row = push_key(&push.hook, &push.id)?;
        let t = self.t()?;
        let accepted =
            (&t.hooks, &t.hook_seen, &t.pushes).transaction(|(hooks, seen_tree, pushes)| {
                let Some(bytes) = hooks.get(key)? else {
                    return Err(TxError::Abort(StoreError::NotFound(
                        Thing::Hook,
                        format!("hook `{}`", push.hook),
                    )));
                };
                let mut record: HookRecord = decode("hooks", &bytes).map_err(TxError::Abort)?;
                let replayed = seen_tree.get(seen.as_slice())?.is_some();
                if replayed {
                    record.refused += 1;
                } else {
                    record.accepted += 1;
                    seen_tree.insert(seen.as_slice(), encode(&push.received_at.0))?;
                    pushes.insert(row.as_slice(), encode(push))?;
                }
                hooks.insert(key, encode(&record))?;
                Ok(if replayed {
                    Accepted::Replayed
                } else {
                    Accepted::New
                })
            })?;
        if accepted == Accepted::New {
            self.prune_pushes(&push.hook)?;
        }
        Ok(accepted)
    }

    /// Keeps the newest [`KEEP_PUSHES`] finished pushes of a hook.
    fn prune_pushes(&self, hook: &str) -> Result<(), StoreError> {
        let t = self.t()?;
        let mut kept = 0;
        for entry in t.pushes.scan_prefix(hook_key(hook)?).rev() {
            let (key, value) = entry?;
            let push: PushRecord = decode("pushes", &value)?;
            if matches!(push.state, PushState::Deployed | PushState::Failed) {
                kept += 1;
                if kept > KEEP_PUSHES {
                    t.pushes.remove(key)?;
                }
            }
        }
        Ok(())
    }

    pub fn put_push(&self, push: &PushRecord) -> Result<(), StoreError> {
        self.t()?
            .pushes
            .insert(push_key(&push.hook, &push.id)?, encode(push))?;
        Ok(())
    }

    /// A hook's pushes, newest first, at most `limit`.
    pub fn pushes(&self, hook: &str, limit: usize) -> Result<Vec<PushRecord>, StoreError> {
        self.t()?
            .pushes
            .scan_prefix(hook_key(hook)?)
            .rev()
            .take(limit)
            .map(|entry| decode("pushes", &entry?.1))
            .collect()
    }

    /// Every push still queued or fetching, oldest first.
    pub fn unfinished_pushes(&self) -> Result<Vec<PushRecord>, StoreError> {
        let mut found = Vec::new();
        for value in self.t()?.pushes.iter().values() {
            let push: PushRecord = decode("pushes", &value?)?;
            if matches!(push.state, PushState::Queued | PushState::Fetching) {
                found.push(push);
            }
        }
        found.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(found)
    }
}
