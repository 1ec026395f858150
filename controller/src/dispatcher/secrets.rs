//! The secrets of a deployment on their way to its agents: their values
//! opened from the store at the versions its snapshot names, just before
//! an assignment is sent (never stored with it), and the masks that hide
//! those values in whatever the agents report back, before a line is
//! stored or followed.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use berth_proto::v1::{TaskEvents, TaskSpec};
use berth_shared::id::{AgentId, DeploymentId};
use berth_shared::masking::Masker;
use berth_shared::record::{Deployment, SecretRef, SecretScope, Variable};
use tracing::warn;

use crate::store::StoreError;

use super::Dispatcher;

/// How many deployments' masks are kept in memory; past it they are
/// dropped and opened again when needed.
const MASKS_KEPT: usize = 256;

/// Assignments whose secrets did not open: deployment, task, generation,
/// agent and why. They are failed once the agent's lock is released
/// ([`Dispatcher::fail_unsendable`]), since failing one may kick the agent.
pub(super) type Unsendable = std::sync::Mutex<Vec<(String, String, u64, AgentId, String)>>;

/// Masks of deployments by id (an empty mask for one without secrets).
#[derive(Default)]
pub(super) struct Masks(std::sync::Mutex<HashMap<DeploymentId, Arc<Masker>>>);

impl Masks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<DeploymentId, Arc<Masker>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Dispatcher {
    /// Fills in the values of the secrets an assignment names. Why it
    /// cannot (a version no longer kept, a store that does not open) is
    /// the task's failure; the agent then never gets it.
    pub(super) fn with_secrets(&self, mut spec: TaskSpec) -> Result<TaskSpec, String> {
        let mut refs = Vec::with_capacity(spec.secrets.len());
        for secret in &spec.secrets {
            let scope: SecretScope = secret
                .scope
                .parse()
                .map_err(|err| format!("secret `{}` has no valid scope: {err}", secret.name))?;
            refs.push(SecretRef {
                name: secret.name.clone(),
                scope,
                version: secret.version,
            });
        }
        let values = crate::ops::secrets::reveal(&self.store, &refs).map_err(|err| err.message)?;
        for (secret, (_, value)) in spec.secrets.iter_mut().zip(values) {
            secret.value = value.to_string();
        }
        Ok(spec)
    }

    /// Notes an assignment that could not be sent for
    /// [`Dispatcher::fail_unsendable`].
    pub(super) fn unsendable(&self, agent: AgentId, ids: (String, String, u64), reason: String) {
        let (deployment_id, task_id, generation) = ids;
        warn!(%deployment_id, %task_id, %agent, %reason, "assignment not sent");
        // The slot it took is free again; the next heartbeat confirms it.
        self.registry.release_slot(agent);
        self.unsendable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((deployment_id, task_id, generation, agent, reason));
    }

    /// Fails the tasks whose assignments could not be sent, with the
    /// reason, so their deployments say why. Boxed: failing a task may
    /// kick agents, which may find more.
    pub(super) fn fail_unsendable(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let failed = std::mem::take(
                &mut *self
                    .unsendable
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            for (deployment_id, task_id, generation, agent, reason) in failed {
                let (Ok(deployment), Ok(task)) = (deployment_id.parse(), task_id.parse()) else {
                    continue;
                };
                let message = format!("the task could not be sent to its host: {reason}");
                if let Err(err) = self
                    .fail_assignment(deployment, agent, task, generation, message)
                    .await
                {
                    warn!(%deployment_id, %task_id, error = %err, "could not record the failed assignment");
                }
            }
        })
    }

    /// Hides the deployment's secret values in the text of a batch of
    /// events from an agent.
    pub(super) fn mask_batch(&self, deployment_id: DeploymentId, batch: &mut TaskEvents) {
        let masker = match self.masker(deployment_id) {
            Ok(masker) => masker,
            Err(err) => {
                // The deployment is gone, or its secrets do not open: the
                // agent masked the lines already; say so once per batch.
                warn!(%deployment_id, error = %err, "could not open the deployment's secrets to mask its lines");
                return;
            }
        };
        if masker.is_empty() {
            return;
        }
        for event in &mut batch.events {
            if let Some(kind) = event.kind.as_mut() {
                for text in kind.texts_mut() {
                    masker.mask_in_place(text);
                }
            }
        }
    }

    /// Hides the secret values of deployment `deployment_id` in `texts`
    /// (a container's recent output in `berth inspect`, for one).
    pub fn mask_texts<'a>(
        &self,
        deployment_id: DeploymentId,
        texts: impl IntoIterator<Item = &'a mut String>,
    ) {
        match self.masker(deployment_id) {
            Ok(masker) if !masker.is_empty() => {
                for text in texts {
                    masker.mask_in_place(text);
                }
            }
            Ok(_) | Err(StoreError::NotFound(..)) => {}
            Err(err) => {
                // Unmasked text would leak: drop it, and say why.
                warn!(%deployment_id, error = %err, "could not open the deployment's secrets; its output is withheld");
                for text in texts {
                    *text = "(withheld: the deployment's secrets could not be opened to mask it)"
                        .into();
                }
            }
        }
    }

    fn masker(&self, deployment_id: DeploymentId) -> Result<Arc<Masker>, StoreError> {
        if let Some(masker) = self.masks.lock().get(&deployment_id) {
            return Ok(masker.clone());
        }
        let deployment = self.store.get_deployment(deployment_id)?;
        let masker = Arc::new(self.masker_of(&deployment)?);
        let mut masks = self.masks.lock();
        if masks.len() >= MASKS_KEPT {
            masks.clear();
        }
        masks.insert(deployment_id, masker.clone());
        Ok(masker)
    }

    /// A mask of every secret the deployment and what it restores use.
    fn masker_of(&self, deployment: &Deployment) -> Result<Masker, StoreError> {
        let restored = deployment
            .restore_to
            .iter()
            .flat_map(|source| source.variables.iter());
        let mut values = Vec::new();
        for secret in deployment
            .variables
            .iter()
            .chain(restored)
            .filter_map(Variable::secret_ref)
        {
            if let Some(value) =
                self.store
                    .open_secret(&secret.scope, &secret.name, secret.version)?
            {
                values.push(value);
            }
        }
        Ok(Masker::new(values.iter().map(|value| value.as_str())))
    }
}
