//! Store operations behind the lifecycle actions: re-running a deployment
//! under the one-running-per-app+environment rule, the `--queue` waiting
//! line (`meta` keys `queue \0 app \0 env \0 id`, oldest first), and purge.

use super::kv::Transactional;
use berth_shared::id::DeploymentId;
use berth_shared::record::Deployment;

use super::deployments::{abort, holder_text, holds_slot, read_deployment, running_holder};
use super::keys::{
    app_key, id_from_suffix, queue_key, queue_prefix, running_slot, status_key, user_key,
};
use super::{Store, StoreError, decode, encode};

impl Store {
    /// Like [`Store::update_deployment`], for a change that starts work on
    /// the deployment again: it takes the app+environment's running slot,
    /// refusing (Conflict, naming the holder) when another deployment of
    /// the app+environment is running, unless `force`.
    pub fn update_deployment_claiming<R>(
        &self,
        id: DeploymentId,
        force: bool,
        change: impl Fn(&mut Deployment) -> Result<R, StoreError>,
    ) -> Result<(Deployment, R), StoreError> {
        let t = self.t()?;
        let trees = (&t.deployments, &t.idx_status, &t.meta, &t.webhook_outbox);
        let hooks = self.webhooks_active();
        let (deployment, result, observed) = trees.transaction(|(deployments, idx_status, meta, outbox)| {
            let mut deployment = read_deployment(deployments, id)?;
            let observed = crate::metrics::Before::of(&deployment);
            let slot = running_slot(&deployment.app, &deployment.environment);
            if let Some(holder) = running_holder(deployments, meta, &slot)?
                && holder.id != id
                && !force
            {
                return Err(abort(StoreError::Busy(format!(
                    "deployment {} of {} in {} {}; wait for it, cancel it, use --queue to run after it, or --force",
                    holder.id, deployment.app, deployment.environment, holder_text(&holder)
                ))));
            }
            let before = deployment.status;
            let approval_before = super::approvals::pending_expiry(&deployment);
            let result = change(&mut deployment).map_err(abort)?;
            super::approvals::keep_index(meta, &deployment, approval_before)?;
            if deployment.status != before {
                idx_status.remove(status_key(before, id))?;
                idx_status.insert(status_key(deployment.status, id), &[])?;
            }
            if deployment.status.is_running() {
                meta.insert(slot, &id.to_bytes())?;
            }
            meta.remove(queue_key(&deployment.app, &deployment.environment, id))?;
            if hooks {
                super::webhooks::note_change(outbox, Some(before), &deployment)?;
            }
            deployments.insert(id.to_bytes(), encode(&deployment))?;
            Ok((deployment, result, observed))
        })?;
        self.woke_webhooks(hooks);
        self.committed(&observed, &deployment);
        Ok((deployment, result))
    }

    /// The oldest deployment waiting for this app+environment.
    pub fn next_queued(
        &self,
        app: &str,
        environment: &str,
    ) -> Result<Option<DeploymentId>, StoreError> {
        match self
            .t()?
            .meta
            .scan_prefix(queue_prefix(app, environment))
            .next()
        {
            Some(entry) => Ok(id_from_suffix(&entry?.0)),
            None => Ok(None),
        }
    }

    /// Every waiting deployment, oldest first per app+environment.
    pub fn queued_ids(&self) -> Result<Vec<DeploymentId>, StoreError> {
        let mut ids = Vec::new();
        for entry in self.t()?.meta.scan_prefix(b"queue\0") {
            ids.extend(id_from_suffix(&entry?.0));
        }
        Ok(ids)
    }

    /// Forgets a deployment: its record, its index entries and its log
    /// lines. What it made on the hosts stays. Refused while it runs.
    /// Returns the record as it was and how many log lines went.
    pub fn purge_deployment(&self, id: DeploymentId) -> Result<(Deployment, u64), StoreError> {
        let t = self.t()?;
        let trees = (
            &t.deployments,
            &t.idx_app,
            &t.idx_status,
            &t.idx_idempotency,
            &t.idx_user,
            &t.meta,
        );
        let purged = trees.transaction(|(deployments, idx_app, idx_status, idx_idem, idx_user, meta)| {
            let deployment = read_deployment(deployments, id)?;
            if deployment.status.is_running() || deployment.tasks.iter().any(|task| !task.status.is_final()) {
                return Err(abort(StoreError::Conflict(format!(
                    "deployment {id} is {} with work in progress; cancel it or wait for it to end before purging it",
                    deployment.status
                ))));
            }
            deployments.remove(id.to_bytes())?;
            idx_app.remove(app_key(&deployment.app, &deployment.environment, id))?;
            idx_status.remove(status_key(deployment.status, id))?;
            idx_user.remove(user_key(&deployment.triggered_by, id))?;
            if let Some(key) = &deployment.idempotency_key
                && idx_idem.get(key.as_bytes())?.as_deref() == Some(&id.to_bytes()[..])
            {
                idx_idem.remove(key.as_bytes())?;
            }
            let slot = running_slot(&deployment.app, &deployment.environment);
            if meta.get(&slot)?.as_deref() == Some(&id.to_bytes()[..]) {
                meta.remove(slot)?;
            }
            meta.remove(queue_key(&deployment.app, &deployment.environment, id))?;
            super::approvals::forget(meta, id)?;
            Ok(deployment)
        })?;
        // The record is gone, so nothing can find these lines any more; a
        // crash between the two leaves orphans that retention removes.
        let lines = self.forget_deployment_logs(id)?;
        Ok((purged, lines))
    }

    /// The deployments waiting for this app+environment, oldest first.
    pub fn queued_for(
        &self,
        app: &str,
        environment: &str,
    ) -> Result<Vec<DeploymentId>, StoreError> {
        let mut ids = Vec::new();
        for entry in self.t()?.meta.scan_prefix(queue_prefix(app, environment)) {
            ids.extend(id_from_suffix(&entry?.0));
        }
        Ok(ids)
    }

    /// The deployment that holds this app+environment (see
    /// [`holds_slot`]), if any.
    pub fn slot_holder(
        &self,
        app: &str,
        environment: &str,
    ) -> Result<Option<DeploymentId>, StoreError> {
        let Some(holder) = self.t()?.meta.get(running_slot(app, environment))? else {
            return Ok(None);
        };
        let Some(id) = id_from_suffix(&holder) else {
            return Ok(None);
        };
        let holds = self
            .t()?
            .deployments
            .get(id.to_bytes())?
            .map(|bytes| decode::<Deployment>("deployments", &bytes))
            .transpose()?
            .is_some_and(|deployment| holds_slot(&deployment));
        Ok(holds.then_some(id))
    }
}
