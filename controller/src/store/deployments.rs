//! Deployment records and their secondary indexes: `idx_app_env`
//! (`app \0 env \0 id`), `idx_status` (`status \0 id`), `idx_user`
//! (`triggered_by \0 id`) and `idx_idempotency` (`key → id`). A per
//! app+environment "running slot" in `meta` makes the
//! one-running-deployment rule atomic. Queries over the history live in
//! `list`.

use super::kv::Transactional;
use super::kv::{TxError, TxTree};
use berth_shared::id::DeploymentId;
use berth_shared::record::Deployment;
use berth_shared::state::DEPLOYMENT_STATUSES;

use super::keys::{
    app_key, id_from_suffix, queue_key, running_slot, status_key, status_prefix, user_key,
};
use super::logs::{LogWrite, write_chunks};
use super::{Store, StoreError, Thing, decode, encode};

/// What happened to a batch of task events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventOutcome {
    /// Every event up to here is durable (after the caller's flush).
    pub acked_upto: u64,
    /// True when the deployment record changed.
    pub changed: bool,
    pub stale: bool,
    /// True when this batch ended the task (its slot on the agent is free).
    pub finished: bool,
}

/// The result of creating a deployment.
pub enum Created {
    New,
    /// Stored, waiting for this running deployment of the app+environment
    /// to end (`--queue`).
    Queued(DeploymentId),
    /// The idempotency key was used before; here is that deployment.
    Existing(DeploymentId),
}

/// True while a deployment keeps its app+environment's running slot: it
/// is running, or it has ended (canceled, timed out, failed) but a host is
/// still stopping its task, so nothing new may start beside it.
pub(super) fn holds_slot(deployment: &Deployment) -> bool {
    // The same rule as "quiet", seen from the other side.
    !berth_shared::record::is_quiet(deployment)
}

/// Why the holder of a running slot blocks a new deployment: "is still
/// running", or which hosts are still stopping an ended one.
pub(super) fn holder_text(holder: &Deployment) -> String {
    if holder.status == berth_shared::state::DeploymentStatus::PendingApproval {
        return format!(
            "is waiting for approval (`berth approve {}`, or cancel it)",
            holder.id
        );
    }
    if holder.status.is_running() {
        return "is still running".into();
    }
    let hosts: Vec<&str> = holder
        .tasks
        .iter()
        .filter(|task| !task.status.is_final())
        .map(|task| task.host.as_str())
        .collect();
    format!(
        "is {} but host(s) {} are still stopping its work (a host that stays away ends `lost` after the controller's --lost-grace)",
        holder.status,
        hosts.join(", ")
    )
}

/// The deployment holding the running slot `slot`, if it still holds it
/// (see [`holds_slot`]).
pub(super) fn running_holder(
    deployments: &TxTree<'_>,
    meta: &TxTree<'_>,
    slot: &[u8],
) -> Result<Option<Deployment>, TxError> {
    let Some(holder) = meta.get(slot)?.and_then(|holder| id_from_suffix(&holder)) else {
        return Ok(None);
    };
    let holder = deployments
        .get(holder.to_bytes())?
        .map(|bytes| decode::<Deployment>("deployments", &bytes).map_err(abort))
        .transpose()?;
    Ok(holder.filter(holds_slot))
}

pub(super) fn abort(err: StoreError) -> TxError {
    TxError::Abort(err)
}

/// Claims a deployment's idempotency key for it; the deployment that
/// holds the key already, if one does.
fn claim_key(
    idx_idem: &TxTree<'_>,
    deployment: &Deployment,
) -> Result<Option<DeploymentId>, TxError> {
    let Some(key) = &deployment.idempotency_key else {
        return Ok(None);
    };
    if let Some(existing) = idx_idem.get(key.as_bytes())? {
        let id = id_from_suffix(&existing).ok_or_else(|| {
            abort(StoreError::Corrupt {
                tree: "idx_idempotency",
                reason: "bad id".into(),
            })
        })?;
        return Ok(Some(id));
    }
    idx_idem.insert(key.as_bytes(), &deployment.id.to_bytes())?;
    Ok(None)
}

pub(super) fn read_deployment(tree: &TxTree<'_>, id: DeploymentId) -> Result<Deployment, TxError> {
    let bytes = tree.get(id.to_bytes())?.ok_or_else(|| {
        abort(StoreError::NotFound(
            Thing::Deployment,
            format!("deployment {id}"),
        ))
    })?;
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
        queue: bool,
    ) -> Result<Created, StoreError> {
        let t = self.t()?;
        let trees = (
            &t.deployments,
            &t.idx_app,
            &t.idx_status,
            &t.idx_idempotency,
            &t.meta,
            &t.blob_grants,
            &t.idx_user,
            &t.webhook_outbox,
        );
        let hooks = self.webhooks_active();
        let created = trees.transaction(|(deployments, idx_app, idx_status, idx_idem, meta, grants, idx_user, outbox)| {
            if let Some(id) = claim_key(idx_idem, deployment)? {
                return Ok(Created::Existing(id));
            }
            let slot = running_slot(&deployment.app, &deployment.environment);
            let mut waiting_for: Option<DeploymentId> = None;
            if let Some(holder) = running_holder(deployments, meta, &slot)?
                && !force
            {
                if !queue {
                    return Err(abort(StoreError::Busy(format!(
                        "deployment {} of {} in {} {}; wait for it, cancel it, deploy with --queue to run after it, or with --force",
                        holder.id, deployment.app, deployment.environment, holder_text(&holder)
                    ))));
                }
                waiting_for = Some(holder.id);
            }
            let mut record = deployment.clone();
            if let Some(holder) = waiting_for {
                record.queued = true;
                record.deadline_ms = None;
                meta.insert(queue_key(&deployment.app, &deployment.environment, deployment.id), &holder.to_bytes())?;
            } else {
                meta.insert(slot, &deployment.id.to_bytes())?;
            }
            super::approvals::keep_index(meta, &record, None)?;
            deployments.insert(deployment.id.to_bytes(), encode(&record))?;
            idx_app.insert(app_key(&deployment.app, &deployment.environment, deployment.id), &[])?;
            idx_status.insert(status_key(deployment.status, deployment.id), &[])?;
            idx_user.insert(user_key(&deployment.triggered_by, deployment.id), &[])?;
            // A reused build's result goes to the hosts like the bundle.
            let digests = std::iter::once(&deployment.bundle_digest)
                .chain(deployment.image_archive_digest.as_ref())
                .chain(deployment.built.as_ref().map(|built| &built.digest));
            for digest in digests {
                for task in &deployment.tasks {
                    let mut grant = task.agent_id.to_bytes().to_vec();
                    grant.extend_from_slice(digest.as_bytes());
                    grants.insert(grant, &[])?;
                }
            }
            if hooks {
                super::webhooks::note_change(outbox, None, &record)?;
            }
            Ok(waiting_for.map_or(Created::New, Created::Queued))
        })?;
        self.woke_webhooks(hooks);
        if !matches!(created, Created::Existing(_)) {
            self.committed(&crate::metrics::Before::default(), deployment);
        }
        Ok(created)
    }

    /// Records a deployment another tool made (`origin` external): its
    /// record and indexes, under its idempotency key, but no running slot
    /// and no blob grants, since no agent runs anything of it. Returns the
    /// deployment an earlier event with the same key made, if any.
    pub fn record_external(&self, deployment: &Deployment) -> Result<Created, StoreError> {
        let t = self.t()?;
        let trees = (
            &t.deployments,
            &t.idx_app,
            &t.idx_status,
            &t.idx_idempotency,
            &t.idx_user,
            &t.webhook_outbox,
        );
        let hooks = self.webhooks_active();
        let created = trees.transaction(
            |(deployments, idx_app, idx_status, idx_idem, idx_user, outbox)| {
                if let Some(id) = claim_key(idx_idem, deployment)? {
                    return Ok(Created::Existing(id));
                }
                deployments.insert(deployment.id.to_bytes(), encode(deployment))?;
                idx_app.insert(
                    app_key(&deployment.app, &deployment.environment, deployment.id),
                    &[],
                )?;
                idx_status.insert(status_key(deployment.status, deployment.id), &[])?;
                idx_user.insert(user_key(&deployment.triggered_by, deployment.id), &[])?;
                if hooks {
                    super::webhooks::note_change(outbox, None, deployment)?;
                }
                Ok(Created::New)
            },
        )?;
        self.woke_webhooks(hooks);
        if !matches!(created, Created::Existing(_)) {
            self.committed(&crate::metrics::Before::default(), deployment);
        }
        Ok(created)
    }

    /// Reads one deployment.
    pub fn get_deployment(&self, id: DeploymentId) -> Result<Deployment, StoreError> {
        let bytes =
            self.t()?.deployments.get(id.to_bytes())?.ok_or_else(|| {
                StoreError::NotFound(Thing::Deployment, format!("deployment {id}"))
            })?;
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
        .map(|(deployment, result, _)| (deployment, result))
    }

    /// Like [`Store::update_deployment`], also storing log lines in the
    /// same transaction; returns the lines stored too (for followers).
    pub fn update_deployment_with_logs<R>(
        &self,
        id: DeploymentId,
        change: impl Fn(&mut Deployment) -> Result<(R, Vec<LogWrite>), StoreError>,
    ) -> Result<(Deployment, R, Vec<LogWrite>), StoreError> {
        self.change_deployment(id, &[], |_, deployment| change(deployment).map_err(abort))
    }

    /// The one transaction every change of a deployment goes through:
    /// `change` also sees `meta` (for claims: `members.rs`), whose keys
    /// `meta_ahead` are read with the deployment's, ahead of `change`.
    pub(super) fn change_deployment<R>(
        &self,
        id: DeploymentId,
        meta_ahead: &[&[u8]],
        change: impl Fn(&TxTree<'_>, &mut Deployment) -> Result<(R, Vec<LogWrite>), TxError>,
    ) -> Result<(Deployment, R, Vec<LogWrite>), StoreError> {
        let t = self.t()?;
        let trees = (
            &t.deployments,
            &t.idx_status,
            &t.meta,
            &t.logs,
            &t.webhook_outbox,
        );
        let hooks = self.webhooks_active();
        let (deployment, result, lines, observed) =
            trees.transaction(|(deployments, idx_status, meta, logs, outbox)| {
                if !meta_ahead.is_empty() {
                    let key = id.to_bytes();
                    let mut ahead = vec![(deployments, &key[..])];
                    ahead.extend(meta_ahead.iter().map(|key| (meta, *key)));
                    TxTree::read_ahead(&ahead)?;
                }
                let mut deployment = read_deployment(deployments, id)?;
                let observed = crate::metrics::Before::of(&deployment);
                let before = deployment.status;
                let approval_before = super::approvals::pending_expiry(&deployment);
                let (result, lines) = change(meta, &mut deployment)?;
                super::approvals::keep_index(meta, &deployment, approval_before)?;
                write_chunks(logs, id, &lines)?;
                // The slot is given up once nothing of the deployment runs any
                // more, which for a canceled one is when its hosts have stopped.
                if deployment.status.is_settled() && !holds_slot(&deployment) {
                    let slot = running_slot(&deployment.app, &deployment.environment);
                    if meta.get(&slot)?.as_deref() == Some(&id.to_bytes()[..]) {
                        meta.remove(slot)?;
                    }
                }
                if deployment.status != before {
                    idx_status.remove(status_key(before, id))?;
                    idx_status.insert(status_key(deployment.status, id), &[])?;
                    if deployment.status.is_settled() {
                        meta.remove(queue_key(&deployment.app, &deployment.environment, id))?;
                    }
                }
                if hooks {
                    super::webhooks::note_change(outbox, Some(before), &deployment)?;
                }
                deployments.insert(id.to_bytes(), encode(&deployment))?;
                Ok((deployment, result, lines, observed))
            })?;
        self.woke_webhooks(hooks);
        self.committed(&observed, &deployment);
        self.stored_lines(&lines);
        Ok((deployment, result, lines))
    }

    /// Ids of deployments in a running status.
    pub fn running_deployment_ids(&self) -> Result<Vec<DeploymentId>, StoreError> {
        let mut ids = Vec::new();
        for status in DEPLOYMENT_STATUSES
            .into_iter()
            .filter(|status| status.is_running())
        {
            for entry in self.t()?.idx_status.scan_prefix(status_prefix(status)) {
                let (key, _) = entry?;
                ids.extend(id_from_suffix(&key));
            }
        }
        Ok(ids)
    }

    /// Builds `idx_user` for a store written before that index existed.
    /// Runs once: the `schema:idx_user` marker in `meta` says the index is
    /// complete, and it is written (and flushed) only after every entry, so
    /// a crash halfway just rebuilds the same keys at the next open.
    pub(super) fn index_users_once(&self) -> Result<(), StoreError> {
        const MARKER: &[u8] = b"schema:idx_user";
        if self.t()?.meta.contains_key(MARKER)? {
            return Ok(());
        }
        let mut indexed = 0_usize;
        for entry in self.t()?.deployments.iter() {
            let (key, value) = entry?;
            let Some(id) = id_from_suffix(&key) else {
                continue;
            };
            match decode::<Deployment>("deployments", &value) {
                Ok(deployment) => {
                    self.t()?
                        .idx_user
                        .insert(user_key(&deployment.triggered_by, id), &[])?;
                    indexed += 1;
                }
                // An unreadable record fails on every read anyway; it must
                // not keep the whole store from opening.
                Err(err) => {
                    tracing::warn!(deployment_id = %id, error = %err, "left an unreadable deployment out of idx_user")
                }
            }
        }
        self.t()?.meta.insert(MARKER, &[1])?;
        self.t()?.db.flush()?;
        if indexed > 0 {
            tracing::info!(deployments = indexed, "built the idx_user index");
        }
        Ok(())
    }

    /// Whether this agent was granted access to a blob by a deployment.
    pub fn is_blob_granted(
        &self,
        agent: berth_shared::id::AgentId,
        digest: &str,
    ) -> Result<bool, StoreError> {
        let mut key = agent.to_bytes().to_vec();
        key.extend_from_slice(digest.as_bytes());
        self.t()?.blob_grants.contains_key(key)
    }
}
