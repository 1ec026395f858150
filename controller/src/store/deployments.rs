//! Deployment records and their secondary indexes: `idx_app_env`
//! (`app \0 env \0 id`), `idx_status` (`status \0 id`) and
//! `idx_idempotency` (`key → id`). A per app+environment "running slot" in
//! `meta` makes the one-running-deployment rule atomic.

use berth_shared::id::DeploymentId;
use berth_shared::record::Deployment;
use berth_shared::state::{DEPLOYMENT_STATUSES, DeploymentStatus};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::logs::{LogWrite, StoredLine, log_key};
use super::{Store, StoreError, decode, encode};

/// Filters for listing deployments (newest first).
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub app: Option<String>,
    pub environment: Option<String>,
    pub statuses: Vec<DeploymentStatus>,
    pub limit: usize,
}

/// What happened to a batch of task events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventOutcome {
    /// Every event up to here is durable (after the caller's flush).
    pub acked_upto: u64,
    /// Lines newly stored, for live followers.
    pub new_lines: Vec<(u64, StoredLine)>,
    /// True when the deployment record changed.
    pub changed: bool,
    pub stale: bool,
}

/// The result of creating a deployment.
pub enum Created {
    New,
    /// The idempotency key was used before; here is that deployment.
    Existing(DeploymentId),
}

fn app_key(app: &str, environment: &str, id: DeploymentId) -> Vec<u8> {
    let mut key = app_prefix(app, environment);
    key.extend_from_slice(&id.to_bytes());
    key
}

fn app_prefix(app: &str, environment: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(app.len() + environment.len() + 18);
    key.extend_from_slice(app.as_bytes());
    key.push(0);
    key.extend_from_slice(environment.as_bytes());
    key.push(0);
    key
}

fn status_key(status: DeploymentStatus, id: DeploymentId) -> Vec<u8> {
    let mut key = status_prefix(status);
    key.extend_from_slice(&id.to_bytes());
    key
}

fn status_prefix(status: DeploymentStatus) -> Vec<u8> {
    let mut key = status.as_str().as_bytes().to_vec();
    key.push(0);
    key
}

fn running_slot(app: &str, environment: &str) -> Vec<u8> {
    let mut key = b"running\0".to_vec();
    key.extend_from_slice(&app_prefix(app, environment));
    key
}

fn id_from_suffix(key: &[u8]) -> Option<DeploymentId> {
    let start = key.len().checked_sub(16)?;
    <[u8; 16]>::try_from(&key[start..])
        .ok()
        .map(DeploymentId::from_bytes)
}

fn abort(err: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(err)
}

fn read_deployment(
    tree: &TransactionalTree,
    id: DeploymentId,
) -> Result<Deployment, ConflictableTransactionError<StoreError>> {
    let bytes = tree
        .get(id.to_bytes())?
        .ok_or_else(|| abort(StoreError::NotFound(format!("deployment {id}"))))?;
    decode("deployments", &bytes).map_err(abort)
}

impl Store {
    /// Stores a new deployment with its indexes. Refuses (Conflict) when
    /// another deployment of the same app+environment is running, unless
    /// `force`. Returns the earlier deployment for a reused idempotency key.
    pub fn create_deployment(
        &self,
        deployment: &Deployment,
        force: bool,
    ) -> Result<Created, StoreError> {
        let trees = (
            &self.deployments,
            &self.idx_app,
            &self.idx_status,
            &self.idx_idempotency,
            &self.meta,
            &self.blob_grants,
        );
        let created = trees.transaction(|(deployments, idx_app, idx_status, idx_idem, meta, grants)| {
            if let Some(key) = &deployment.idempotency_key {
                if let Some(existing) = idx_idem.get(key.as_bytes())? {
                    let id = id_from_suffix(&existing).ok_or_else(|| {
                        abort(StoreError::Corrupt { tree: "idx_idempotency", reason: "bad id".into() })
                    })?;
                    return Ok(Created::Existing(id));
                }
                idx_idem.insert(key.as_bytes(), &deployment.id.to_bytes())?;
            }
            let slot = running_slot(&deployment.app, &deployment.environment);
            if let Some(holder) = meta.get(&slot)? {
                let holder_id = id_from_suffix(&holder);
                let still_running = match holder_id {
                    Some(holder_id) => deployments
                        .get(holder_id.to_bytes())?
                        .map(|bytes| decode::<Deployment>("deployments", &bytes).map_err(abort))
                        .transpose()?
                        .is_some_and(|holder| holder.status.is_running()),
                    None => false,
                };
                if still_running && !force {
                    let holder_id = holder_id.map(|id| id.to_string()).unwrap_or_default();
                    return Err(abort(StoreError::Conflict(format!(
                        "deployment {holder_id} of {} in {} is still running; wait for it, cancel it, or deploy with --force",
                        deployment.app, deployment.environment
                    ))));
                }
            }
            meta.insert(slot, &deployment.id.to_bytes())?;
            deployments.insert(&deployment.id.to_bytes(), encode(deployment))?;
            idx_app.insert(app_key(&deployment.app, &deployment.environment, deployment.id), &[])?;
            idx_status.insert(status_key(deployment.status, deployment.id), &[])?;
            let digests = std::iter::once(&deployment.bundle_digest).chain(deployment.image_archive_digest.as_ref());
            for digest in digests {
                for task in &deployment.tasks {
                    let mut grant = task.agent_id.to_bytes().to_vec();
                    grant.extend_from_slice(digest.as_bytes());
                    grants.insert(grant, &[])?;
                }
            }
            Ok(Created::New)
        })?;
        Ok(created)
    }

    /// Reads one deployment.
    pub fn get_deployment(&self, id: DeploymentId) -> Result<Deployment, StoreError> {
        let bytes = self
            .deployments
            .get(id.to_bytes())?
            .ok_or_else(|| StoreError::NotFound(format!("deployment {id}")))?;
        decode("deployments", &bytes)
    }

    /// Atomically reads, changes and writes one deployment, keeping the
    /// status index and running slot in step. `change` may run more than
    /// once (sled retries conflicting transactions), so it must be pure.
    pub fn update_deployment<R>(
        &self,
        id: DeploymentId,
        change: impl Fn(&mut Deployment) -> Result<R, StoreError>,
    ) -> Result<(Deployment, R), StoreError> {
        self.update_deployment_with_logs(id, |deployment| {
            change(deployment).map(|result| (result, Vec::new()))
        })
    }

    /// Like [`Store::update_deployment`], also storing log lines of one
    /// task in the same transaction.
    pub fn update_deployment_with_logs<R>(
        &self,
        id: DeploymentId,
        change: impl Fn(&mut Deployment) -> Result<(R, Vec<LogWrite>), StoreError>,
    ) -> Result<(Deployment, R), StoreError> {
        let trees = (&self.deployments, &self.idx_status, &self.meta, &self.logs);
        let result = trees.transaction(|(deployments, idx_status, meta, logs)| {
            let mut deployment = read_deployment(deployments, id)?;
            let before = deployment.status;
            let (result, lines) = change(&mut deployment).map_err(abort)?;
            for (task_id, seq, line) in &lines {
                logs.insert(&log_key(id, *task_id, *seq)[..], encode(line))?;
            }
            if deployment.status != before {
                idx_status.remove(status_key(before, id))?;
                idx_status.insert(status_key(deployment.status, id), &[])?;
                if deployment.status.is_settled() {
                    let slot = running_slot(&deployment.app, &deployment.environment);
                    if meta.get(&slot)?.as_deref() == Some(&id.to_bytes()[..]) {
                        meta.remove(slot)?;
                    }
                }
            }
            deployments.insert(&id.to_bytes(), encode(&deployment))?;
            Ok((deployment, result))
        })?;
        Ok(result)
    }

    /// Ids of deployments in a running status.
    pub fn running_deployment_ids(&self) -> Result<Vec<DeploymentId>, StoreError> {
        let mut ids = Vec::new();
        for status in DEPLOYMENT_STATUSES
            .into_iter()
            .filter(|status| status.is_running())
        {
            for entry in self.idx_status.scan_prefix(status_prefix(status)) {
                let (key, _) = entry?;
                ids.extend(id_from_suffix(&key));
            }
        }
        Ok(ids)
    }

    /// Ids of deployments with `status`, newest first.
    fn ids_with_status(
        &self,
        status: DeploymentStatus,
    ) -> impl Iterator<Item = Result<DeploymentId, StoreError>> + '_ {
        self.idx_status
            .scan_prefix(status_prefix(status))
            .rev()
            .map(|entry| {
                let (key, _) = entry?;
                id_from_suffix(&key).ok_or_else(|| StoreError::Corrupt {
                    tree: "idx_status",
                    reason: "short key".into(),
                })
            })
    }

    /// Deployments matching `query`, newest first, read through the
    /// indexes: by app+environment, by status, or by time.
    pub fn list_deployments(&self, query: &ListQuery) -> Result<Vec<Deployment>, StoreError> {
        let limit = if query.limit == 0 { 50 } else { query.limit };
        let wanted = |deployment: &Deployment| {
            query.app.as_ref().is_none_or(|app| &deployment.app == app)
                && query
                    .environment
                    .as_ref()
                    .is_none_or(|env| &deployment.environment == env)
                && (query.statuses.is_empty() || query.statuses.contains(&deployment.status))
        };
        let ids: Box<dyn Iterator<Item = Result<DeploymentId, StoreError>>> =
            match (&query.app, &query.environment) {
                (Some(app), Some(env)) => Box::new(
                    self.idx_app
                        .scan_prefix(app_prefix(app, env))
                        .rev()
                        .map(|entry| {
                            let (key, _) = entry?;
                            id_from_suffix(&key).ok_or_else(|| StoreError::Corrupt {
                                tree: "idx_app_env",
                                reason: "short key".into(),
                            })
                        }),
                ),
                (Some(app), None) => {
                    let mut prefix = app.as_bytes().to_vec();
                    prefix.push(0);
                    let mut ids = Vec::new();
                    for entry in self.idx_app.scan_prefix(prefix) {
                        let (key, _) = entry?;
                        ids.extend(id_from_suffix(&key));
                    }
                    ids.sort_unstable_by(|a, b| b.cmp(a));
                    Box::new(ids.into_iter().map(Ok))
                }
                (None, _) if !query.statuses.is_empty() => {
                    let mut ids = Vec::new();
                    for status in &query.statuses {
                        for id in self.ids_with_status(*status) {
                            ids.push(id?);
                        }
                    }
                    ids.sort_unstable_by(|a, b| b.cmp(a));
                    Box::new(ids.into_iter().map(Ok))
                }
                _ => Box::new(self.deployments.iter().keys().rev().map(|key| {
                    let key = key?;
                    id_from_suffix(&key).ok_or_else(|| StoreError::Corrupt {
                        tree: "deployments",
                        reason: "short key".into(),
                    })
                })),
            };
        let mut found = Vec::new();
        for id in ids {
            let deployment = self.get_deployment(id?)?;
            if wanted(&deployment) {
                found.push(deployment);
                if found.len() >= limit {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// Every app+environment pair that has deployments.
    pub fn app_environments(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for entry in self.idx_app.iter().keys() {
            let key = entry?;
            let text = &key[..key.len().saturating_sub(16)];
            let mut parts = text.split(|byte| *byte == 0);
            let app = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            let env = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            if pairs.last() != Some(&(app.clone(), env.clone())) {
                pairs.push((app, env));
            }
        }
        Ok(pairs)
    }

    /// Whether this agent was granted access to a blob by a deployment.
    pub fn is_blob_granted(
        &self,
        agent: berth_shared::id::AgentId,
        digest: &str,
    ) -> Result<bool, StoreError> {
        let mut key = agent.to_bytes().to_vec();
        key.extend_from_slice(digest.as_bytes());
        Ok(self.blob_grants.contains_key(key)?)
    }
}
