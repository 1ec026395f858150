//! The dispatcher: puts queued tasks into free agent slots, applies the
//! events agents send back, marks tasks `lost` when their agent stays
//! away past the grace period, and ends approvals nobody gave in time.
//!
//! Invariant: every change is flushed to the store before the agent gets an
//! assignment or an ack, and before followers hear of it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_proto::v1::TaskSpec;
use berth_shared::id::{AgentId, DeploymentId, TaskId};
use berth_shared::record::Deployment;
use berth_shared::state::{DeploymentStatus, TaskStatus};

use crate::hub::Hub;
use crate::progress;
use crate::registry::Registry;
use crate::store::{Store, StoreError};

mod assign;
mod events;
mod expiry;
mod halt;
mod lost;
mod queue;
mod reconcile;
mod remote;
mod reported;
mod resources;
mod secrets;
mod wire;

pub use halt::deadline;
use halt::is_halted;
pub use wire::{image_tag, spec_for};

/// How long a send to one agent may wait before it is given up.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Assigns work and records results.
pub struct Dispatcher {
    store: Store,
    registry: Arc<Registry>,
    hub: Hub,
    lost_grace: Duration,
    /// Queued tasks per agent, in arrival order.
    queue: Mutex<HashMap<AgentId, VecDeque<(DeploymentId, TaskId)>>>,
    /// Deployments with tasks that are not final yet.
    active: Mutex<HashSet<DeploymentId>>,
    /// One lock per agent: generations are drawn and assignments sent under
    /// it, so an agent never sees an older generation after a newer one.
    agent_locks: Mutex<HashMap<AgentId, Arc<tokio::sync::Mutex<()>>>>,
    /// Failed rollouts whose hosts are put back (`on_failure` rollback or
    /// stop): an agent reporting one of these is checked
    /// ([`Dispatcher::reconcile_reported`]); any other report costs no read.
    failed_rollouts: Mutex<HashSet<DeploymentId>>,
    /// Masks of the secret values of recent deployments, for what their
    /// agents report.
    masks: secrets::Masks,
    unsendable: secrets::Unsendable,
    /// The other controllers of the store, once joined (`remote.rs`).
    cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
}

enum AssignResult {
    Assigned(Box<TaskSpec>),
    /// The rollout's `max_parallel` is reached; try again later.
    Wait,
    /// The task is no longer queued.
    Gone,
}

impl Dispatcher {
    /// Builds the dispatcher and reloads unfinished work from the store.
    pub fn new(
        store: Store,
        registry: Arc<Registry>,
        hub: Hub,
        lost_grace: Duration,
    ) -> Result<Dispatcher, StoreError> {
        let dispatcher = Dispatcher {
            store,
            registry,
            hub,
            lost_grace,
            queue: Mutex::new(HashMap::new()),
            active: Mutex::new(HashSet::new()),
            agent_locks: Mutex::new(HashMap::new()),
            failed_rollouts: Mutex::new(HashSet::new()),
            masks: secrets::Masks::default(),
            unsendable: Default::default(),
            cluster: std::sync::OnceLock::new(),
        };
        let mut ids = dispatcher.store.running_deployment_ids()?;
        let mut deployed = dispatcher
            .store
            .list_deployments(&crate::store::ListQuery {
                statuses: vec![DeploymentStatus::Deployed],
                limit: usize::MAX,
                ..Default::default()
            })?;
        // A failed rollout may still be putting hosts back (restore and
        // stop tasks); those start right after the failure, so the latest
        // failed deployments are enough to look at.
        deployed.extend(
            dispatcher
                .store
                .list_deployments(&crate::store::ListQuery {
                    statuses: vec![DeploymentStatus::Failed],
                    limit: 200,
                    ..Default::default()
                })?,
        );
        ids.extend(
            deployed
                .iter()
                .filter(|d| !progress::is_quiet(d))
                .map(|d| d.id),
        );
        for deployment in &deployed {
            dispatcher.note_failed_rollout(deployment);
        }
        for id in ids {
            let deployment = dispatcher.store.get_deployment(id)?;
            dispatcher.track(&deployment);
        }
        Ok(dispatcher)
    }

    fn lock_queue(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<AgentId, VecDeque<(DeploymentId, TaskId)>>> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_active(&self) -> std::sync::MutexGuard<'_, HashSet<DeploymentId>> {
        self.active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts tracking a deployment's unfinished tasks. One waiting for
    /// its turn (`--queue`) or for its approval is not tracked: none of
    /// its tasks is handed out, and no deadline or lost agent ends it.
    pub fn track(&self, deployment: &Deployment) {
        if progress::is_quiet(deployment)
            || deployment.queued
            || deployment.status == DeploymentStatus::PendingApproval
        {
            return;
        }
        self.lock_active().insert(deployment.id);
        let mut queue = self.lock_queue();
        for task in deployment
            .tasks
            .iter()
            .filter(|task| task.status == TaskStatus::Queued)
        {
            let entry = queue.entry(task.agent_id).or_default();
            if !entry.contains(&(deployment.id, task.id)) {
                entry.push_back((deployment.id, task.id));
            }
        }
    }

    /// Drops every queued task of deployment `id` (halted, or finished).
    pub(super) fn forget_queued(&self, id: DeploymentId) {
        self.lock_queue()
            .values_mut()
            .for_each(|queue| queue.retain(|(deployment, _)| *deployment != id));
    }

    /// Ids of deployments with unfinished tasks.
    pub fn active_ids(&self) -> Vec<DeploymentId> {
        self.lock_active().iter().copied().collect()
    }
}
