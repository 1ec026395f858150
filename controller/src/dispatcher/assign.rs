//! Filling free agent slots: the next queued task of an agent, its
//! generation and spec drawn under the agent's lock, and the send.

use std::collections::VecDeque;
use std::sync::Arc;

use berth_proto::v1::controller_message::Kind as Outgoing;
use berth_proto::v1::{Assign, ControllerMessage, TaskSpec};
use berth_shared::id::{AgentId, DeploymentId, TaskId};
use berth_shared::record::{Deployment, TaskKind, Timestamp};
use berth_shared::state::{DeploymentStatus, TaskStatus};
use tracing::{Instrument, info, info_span, warn};

use crate::hub::HubEvent;
use crate::progress;
use crate::store::StoreError;

use super::{AssignResult, Dispatcher, SEND_TIMEOUT, spec_for};

impl Dispatcher {
    /// Assigns queued tasks to every agent that has some.
    pub async fn kick_all(&self) {
        let agents: Vec<AgentId> = self
            .lock_queue()
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(a, _)| *a)
            .collect();
        for agent in agents {
            self.kick(agent).await;
        }
    }

    /// The lock that serialises assignments to one agent, so they are sent
    /// in generation order.
    pub(super) fn agent_lock(&self, agent: AgentId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .agent_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(agent).or_default().clone()
    }

    /// Assigns this agent's queued tasks into its free slots.
    pub async fn kick(&self, agent: AgentId) {
        let lock = self.agent_lock(agent);
        let serial = lock.lock().await;
        self.kick_locked(agent).await;
        drop(serial);
        self.fail_unsendable().await;
    }

    pub(super) async fn kick_locked(&self, agent: AgentId) {
        let mut waiting = Vec::new();
        loop {
            if !self.registry.is_online(agent) {
                break;
            }
            let next = self
                .lock_queue()
                .get_mut(&agent)
                .and_then(VecDeque::pop_front);
            let Some((deployment_id, task_id)) = next else {
                break;
            };
            if !self.registry.take_slot(agent) {
                waiting.push((deployment_id, task_id));
                break;
            }
            match self.assign(deployment_id, task_id).await {
                Ok(AssignResult::Assigned(spec)) => self.send_assign(agent, *spec).await,
                Ok(AssignResult::Wait) => {
                    self.registry.release_slot(agent);
                    waiting.push((deployment_id, task_id));
                }
                Ok(AssignResult::Gone) => self.registry.release_slot(agent),
                // The agent's stream moved to another controller, which
                // sends it its tasks; this stream is stale.
                Err(StoreError::Conflict(reason)) => {
                    info!(%agent, %reason, "not assigning: the agent is another controller's now");
                    self.registry.release_slot(agent);
                    waiting.push((deployment_id, task_id));
                    break;
                }
                Err(err) => {
                    warn!(%deployment_id, %task_id, error = %err, "could not assign task");
                    self.registry.release_slot(agent);
                    waiting.push((deployment_id, task_id));
                    break;
                }
            }
        }
        if !waiting.is_empty() {
            let mut queue = self.lock_queue();
            let entry = queue.entry(agent).or_default();
            for item in waiting.into_iter().rev() {
                entry.push_front(item);
            }
        }
    }

    pub(super) async fn assign(
        &self,
        deployment_id: DeploymentId,
        task_id: TaskId,
    ) -> Result<AssignResult, StoreError> {
        // A task that must wait costs no generation, write or flush: it is
        // asked again on every kick.
        let current = self.store.get_deployment(deployment_id)?;
        if let Some(result) = not_assignable(&current, task_id) {
            return Ok(result);
        }
        let Some(agent) = current
            .tasks
            .iter()
            .find(|task| task.id == task_id)
            .map(|task| task.agent_id)
        else {
            return Ok(AssignResult::Gone);
        };
        // One transaction checks the agent's lease (on a shared store),
        // draws the generation and marks the task assigned.
        let me = self.me();
        let (_, result) = self.store.claim_task(
            deployment_id,
            agent,
            me.as_deref(),
            |deployment, generation| {
                if let Some(result) = not_assignable(deployment, task_id) {
                    return Ok(result);
                }
                progress::set_task_status(
                    deployment,
                    task_id,
                    TaskStatus::Assigned,
                    Some(format!("generation {generation}")),
                );
                let task = deployment
                    .task_mut(task_id)
                    .expect("task exists: checked above");
                task.generation = generation;
                task.assigned_at = Some(Timestamp::now());
                Ok(AssignResult::Assigned(Box::new(spec_for(
                    deployment, task_id,
                ))))
            },
        )?;
        self.store.flush().await?;
        self.hub.publish(HubEvent::Changed {
            deployment: deployment_id,
        });
        Ok(result)
    }

    /// Adds the credentials of the image's registry, when the controller
    /// holds some, to an assignment about to go to its agent.
    pub(super) fn with_credentials(&self, mut spec: TaskSpec) -> TaskSpec {
        let containers = spec.container.iter_mut().chain(
            spec.resources
                .iter_mut()
                .filter_map(|resource| resource.container.as_mut()),
        );
        for container in containers {
            let server = berth_shared::manifest::registry_of(&container.image);
            match self.store.registry_credentials(server) {
                Ok(Some(credentials)) => {
                    container.registry_auth = Some(berth_proto::v1::RegistryAuth {
                        server: credentials.server,
                        username: credentials.username,
                        password: credentials.password.to_string(),
                    });
                }
                Ok(None) => {}
                Err(err) => warn!(%server, error = %err, "could not read registry credentials"),
            }
        }
        spec
    }

    /// Leaves out the resources the host's labels do not match.
    fn with_host_resources(&self, agent: AgentId, mut spec: TaskSpec) -> TaskSpec {
        if spec
            .resources
            .iter()
            .any(|resource| !resource.labels.is_empty())
        {
            match self.store.get_agent(agent) {
                Ok(record) => super::resources::for_labels(&mut spec.resources, &record.labels),
                Err(err) => {
                    warn!(%agent, error = %err, "could not read the agent's labels for its resources")
                }
            }
        }
        spec
    }

    pub(super) async fn send_assign(&self, agent: AgentId, spec: TaskSpec) {
        let ids = (
            spec.deployment_id.clone(),
            spec.task_id.clone(),
            spec.generation,
        );
        let spec =
            match self.with_secrets(self.with_credentials(self.with_host_resources(agent, spec))) {
                Ok(spec) => spec,
                Err(reason) => return self.unsendable(agent, ids, reason),
            };
        let span = info_span!("assign", deployment_id = %spec.deployment_id, task_id = %spec.task_id, %agent);
        async {
            info!(generation = spec.generation, stage = %spec.stage, "task assigned");
            let message = ControllerMessage {
                kind: Some(Outgoing::Assign(Assign { task: Some(spec) })),
            };
            if let Some(outbound) = self.registry.outbound(agent) {
                // A failed or stuck send leaves the task `assigned`; the
                // agent's next hello reconciles it with a new generation.
                // The timeout keeps one stuck agent from stalling the rest.
                let sent = tokio::time::timeout(SEND_TIMEOUT, outbound.send(Ok(message))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    warn!("assignment not delivered; it is sent again when the agent reconnects");
                }
            }
        }
        .instrument(span)
        .await;
    }
}

/// Why a task cannot be assigned now, if it cannot: it is no longer
/// queued, or its deployment waits for an approval or its turn (`Gone`),
/// or it must wait for the build or for the rollout's
/// `max_parallel` (`Wait`).
pub(super) fn not_assignable(deployment: &Deployment, task_id: TaskId) -> Option<AssignResult> {
    // Waiting for its approval or its turn: it is tracked again, with its
    // tasks, once approved or promoted.
    if deployment.status == DeploymentStatus::PendingApproval || deployment.queued {
        return Some(AssignResult::Gone);
    }
    let Some(task) = deployment.tasks.iter().find(|task| task.id == task_id) else {
        return Some(AssignResult::Gone);
    };
    if task.status != TaskStatus::Queued {
        return Some(AssignResult::Gone);
    }
    if task.kind != TaskKind::Deploy {
        return None;
    }
    // Hosts start only once the build is done.
    let build_pending = deployment
        .tasks
        .iter()
        .any(|t| t.kind == TaskKind::Build && t.status != TaskStatus::Done);
    let busy = deployment
        .tasks
        .iter()
        .filter(|t| t.kind == TaskKind::Deploy && t.status.is_active())
        .count();
    let at_limit = deployment
        .manifest
        .target
        .max_parallel
        .is_some_and(|limit| busy >= limit as usize);
    (build_pending || at_limit).then_some(AssignResult::Wait)
}
