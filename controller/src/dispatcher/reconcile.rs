//! What an agent says when it (re)connects, refuses an assignment or
//! holds a build: its running tasks set against the store's.

use std::collections::HashSet;

use berth_proto::v1::TaskSpec;
use berth_shared::id::{AgentId, DeploymentId, TaskId};
use berth_shared::record::TaskKind;
use berth_shared::state::TaskStatus;
use tracing::warn;

use crate::progress;
use crate::store::StoreError;

use super::{Dispatcher, is_halted, spec_for};

impl Dispatcher {
    /// Reconciles what a (re)connecting agent says it knows with the store:
    /// assignments it never received are sent again under a new generation;
    /// running tasks it has forgotten are failed.
    /// Only then does the connection get its free slots.
    pub async fn on_hello(
        &self,
        agent: AgentId,
        agent_name: &str,
        known: &HashSet<TaskId>,
        mentioned: &HashSet<DeploymentId>,
        free_slots: u32,
    ) {
        let lock = self.agent_lock(agent);
        let _serial = lock.lock().await;
        let mut ids: HashSet<DeploymentId> = self.active_ids().into_iter().collect();
        ids.extend(mentioned.iter().copied());
        for deployment_id in ids {
            let resend = self
                .reconcile(deployment_id, agent, agent_name, known)
                .await;
            match resend {
                Ok((specs, cancels)) => {
                    for spec in specs {
                        self.send_assign(agent, spec).await;
                    }
                    for (task_id, generation) in cancels {
                        self.send_cancel(agent, task_id, generation).await;
                    }
                }
                // A deployment an agent mentions may have been purged.
                Err(StoreError::NotFound(..)) => {}
                Err(err) => warn!(%deployment_id, error = %err, "could not reconcile agent tasks"),
            }
        }
        self.registry.heartbeat(agent, free_slots, None);
        self.kick_locked(agent).await;
        drop(_serial);
        self.fail_unsendable().await;
    }

    /// An agent refused an assignment (it had seen a newer generation): the
    /// task fails with the agent's reason rather than waiting forever.
    pub async fn on_refused(
        &self,
        agent: AgentId,
        task_id: &str,
        generation: u64,
        reason: &str,
    ) -> Result<(), StoreError> {
        let Some(deployment_id) = self.deployment_of(agent, task_id)? else {
            return Ok(());
        };
        let task_id: TaskId = task_id.parse().map_err(StoreError::Refused)?;
        let message = format!("the agent refused the assignment: {reason}");
        self.fail_assignment(deployment_id, agent, task_id, generation, message)
            .await
    }

    /// Fails a task that is still assigned to `agent` at `generation`,
    /// with `message` at the step `assign`.
    pub(super) async fn fail_assignment(
        &self,
        deployment_id: DeploymentId,
        agent: AgentId,
        task_id: TaskId,
        generation: u64,
        message: String,
    ) -> Result<(), StoreError> {
        let (deployment, ()) = self.store.update_deployment(deployment_id, |deployment| {
            let current = deployment
                .tasks
                .iter()
                .find(|task| task.id == task_id)
                .map(|task| (task.agent_id, task.status, task.generation));
            if current == Some((agent, TaskStatus::Assigned, generation)) {
                progress::set_task_status(
                    deployment,
                    task_id,
                    TaskStatus::Failed,
                    Some(message.clone()),
                );
                let task = deployment.task_mut(task_id).expect("task found above");
                task.error_step = Some("assign".into());
                task.error_message = Some(message.clone());
                progress::settle(deployment);
            }
            Ok(())
        })?;
        self.store.flush().await?;
        self.after_change(&deployment).await;
        Ok(())
    }

    /// Whether `agent` runs build task `task_id` now (it may upload the
    /// build's result).
    pub fn holds_build_task(&self, agent: AgentId, task_id: TaskId) -> Result<bool, StoreError> {
        for deployment_id in self.active_ids() {
            let deployment = self.store.get_deployment(deployment_id)?;
            if deployment.tasks.iter().any(|task| {
                task.id == task_id
                    && task.agent_id == agent
                    && task.kind == TaskKind::Build
                    && task.status.is_active()
            }) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The active deployment holding this agent's task.
    pub(super) fn deployment_of(
        &self,
        agent: AgentId,
        task_id: &str,
    ) -> Result<Option<DeploymentId>, StoreError> {
        let Ok(task_id) = task_id.parse::<TaskId>() else {
            return Ok(None);
        };
        for deployment_id in self.active_ids() {
            let deployment = self.store.get_deployment(deployment_id)?;
            if deployment
                .tasks
                .iter()
                .any(|task| task.id == task_id && task.agent_id == agent)
            {
                return Ok(Some(deployment_id));
            }
        }
        Ok(None)
    }

    pub(super) async fn reconcile(
        &self,
        deployment_id: DeploymentId,
        agent: AgentId,
        agent_name: &str,
        known: &HashSet<TaskId>,
    ) -> Result<(Vec<TaskSpec>, Vec<(TaskId, u64)>), StoreError> {
        let deployment = self.store.get_deployment(deployment_id)?;
        // A canceled or timed-out deployment's tasks that this agent still
        // runs are told again to stop (the first cancel may not have
        // reached it).
        let halted = is_halted(&deployment);
        // So is a task the controller gave up on (lost, failed, canceled)
        // that the agent still runs: a host back after being lost stops
        // the half-started new version instead of finishing it.
        let cancels: Vec<(TaskId, u64)> = deployment
            .tasks
            .iter()
            .filter(|task| {
                let given_up = task.status.is_final() && task.status != TaskStatus::Done;
                task.agent_id == agent
                    && known.contains(&task.id)
                    && ((halted && task.status.is_active()) || given_up)
            })
            .map(|task| (task.id, task.generation))
            .collect();
        let forgotten: Vec<(TaskId, TaskStatus)> = deployment
            .tasks
            .iter()
            .filter(|task| {
                task.agent_id == agent && task.status.is_active() && !known.contains(&task.id)
            })
            .map(|task| (task.id, task.status))
            .collect();
        if forgotten.is_empty() {
            return Ok((Vec::new(), cancels));
        }
        let mut generations = Vec::new();
        for _ in &forgotten {
            generations.push(self.store.next_generation()?);
        }
        let (deployment, specs) = self.store.update_deployment(deployment_id, |deployment| {
            let mut specs = Vec::new();
            for ((task_id, status), generation) in forgotten.iter().zip(&generations) {
                if *status == TaskStatus::Assigned && is_halted(deployment) {
                    let reason = format!("the deployment is {}; the assignment was never started", deployment.status);
                    progress::set_task_status(deployment, *task_id, TaskStatus::Canceled, Some(reason));
                } else if *status == TaskStatus::Assigned {
                    let task = deployment.task_mut(*task_id).expect("task listed above");
                    task.generation = *generation;
                    specs.push(spec_for(deployment, *task_id));
                } else {
                    let message = format!("agent {agent_name} reconnected without this task; it may have lost its data directory");
                    progress::set_task_status(deployment, *task_id, TaskStatus::Failed, Some(message.clone()));
                    let task = deployment.task_mut(*task_id).expect("task listed above");
                    task.error_step = Some(status.as_str().to_string());
                    task.error_message = Some(message);
                }
            }
            progress::settle(deployment);
            Ok(specs)
        })?;
        self.store.flush().await?;
        self.note_change(&deployment).await;
        Ok((specs, cancels))
    }
}
