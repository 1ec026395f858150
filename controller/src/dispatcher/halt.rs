//! Halting a deployment (cancel, time out): its tasks canceled and the
//! agents told.

use berth_proto::v1::controller_message::Kind as Outgoing;
use berth_proto::v1::{CancelTask, ControllerMessage};
use berth_shared::id::{AgentId, DeploymentId, TaskId};
use berth_shared::record::Deployment;
use berth_shared::state::{DeploymentStatus, TaskStatus};
use tracing::{info, warn};

use crate::progress;
use crate::store::StoreError;

use super::{Dispatcher, SEND_TIMEOUT};

impl Dispatcher {
    /// Ends a running deployment early, as `canceled` (`berth cancel`) or
    /// `timed_out` (its deadline passed): tasks not started are canceled
    /// here, and the agents running the others are told to stop them
    /// (processes killed, half-started containers removed); those tasks
    /// end when their agents report it.
    pub async fn halt(
        &self,
        id: DeploymentId,
        status: DeploymentStatus,
        reason: String,
    ) -> Result<Deployment, StoreError> {
        self.halt_with(id, status, reason, |_| Ok(())).await
    }

    /// [`Dispatcher::halt`], first changing the record with `prepare` in
    /// the same transaction (which may refuse the halt).
    pub(super) async fn halt_with(
        &self,
        id: DeploymentId,
        status: DeploymentStatus,
        reason: String,
        prepare: impl Fn(&mut Deployment) -> Result<(), StoreError>,
    ) -> Result<Deployment, StoreError> {
        let (deployment, running) = self.store.update_deployment(id, |deployment| {
            if !deployment.status.can_become(status) {
                return Err(StoreError::Conflict(format!(
                    "deployment {id} is {}; only a running deployment can become {status}",
                    deployment.status
                )));
            }
            prepare(deployment)?;
            let mut running = Vec::new();
            let open: Vec<(TaskId, TaskStatus, AgentId, u64)> = deployment
                .tasks
                .iter()
                .filter(|task| !task.status.is_final())
                .map(|task| (task.id, task.status, task.agent_id, task.generation))
                .collect();
            for (task_id, task_status, agent, generation) in open {
                if task_status == TaskStatus::Queued {
                    progress::set_task_status(
                        deployment,
                        task_id,
                        TaskStatus::Canceled,
                        Some(reason.clone()),
                    );
                } else {
                    running.push((agent, task_id, generation, task_status));
                }
            }
            deployment.error_step = running
                .first()
                .map(|(_, _, _, task_status)| match task_status {
                    TaskStatus::Assigned => "assign".to_string(),
                    other => other.as_str().to_string(),
                })
                .or_else(|| Some(deployment.status.as_str().to_string()));
            deployment.error_message = Some(reason.clone());
            deployment.queued = false;
            progress::set_status(deployment, status, Some(reason.clone()));
            Ok(running)
        })?;
        self.store.flush().await?;
        self.forget_queued(id);
        for (agent, task_id, generation, _) in running {
            self.send_cancel(agent, task_id, generation).await;
        }
        self.after_change(&deployment).await;
        Ok(deployment)
    }

    pub(super) async fn send_cancel(&self, agent: AgentId, task_id: TaskId, generation: u64) {
        info!(%task_id, %agent, generation, "telling the agent to cancel the task");
        let message = ControllerMessage {
            kind: Some(Outgoing::Cancel(CancelTask {
                task_id: task_id.to_string(),
                generation,
            })),
        };
        if let Some(outbound) = self.registry.outbound(agent) {
            let sent = tokio::time::timeout(SEND_TIMEOUT, outbound.send(Ok(message))).await;
            if !matches!(sent, Ok(Ok(()))) {
                warn!(%task_id, "cancel not delivered; it is sent again when the agent reconnects");
            }
        }
    }
}

/// Canceled or timed out: its remaining tasks must stop, not start.
pub(super) fn is_halted(deployment: &Deployment) -> bool {
    matches!(
        deployment.status,
        DeploymentStatus::Canceled | DeploymentStatus::TimedOut
    )
}

/// When a deployment starting now times out.
pub fn deadline(deployment: &Deployment) -> i64 {
    berth_shared::time::now_ms()
        .saturating_add(i64::try_from(deployment.manifest.timeout.as_millis()).unwrap_or(i64::MAX))
}
