//! The sweeper: tasks whose agent stays away past the grace period
//! become `lost`, deployments past their deadline time out, and pending
//! approvals past their expiry end.

use std::sync::Arc;
use std::time::Duration;

use berth_shared::id::{DeploymentId, TaskId};
use berth_shared::state::DeploymentStatus;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::progress;
use crate::store::StoreError;

use super::Dispatcher;

impl Dispatcher {
    /// Marks tasks lost whose agent has been away longer than the grace
    /// period, times out deployments past their deadline, and ends pending
    /// approvals past their expiry (`expiry.rs`). Runs until `shutdown`.
    pub async fn run_lost_sweeper(self: Arc<Self>, shutdown: CancellationToken) {
        let period =
            (self.lost_grace / 4).clamp(Duration::from_millis(200), Duration::from_secs(5));
        let mut ticker = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            for deployment_id in self.active_ids() {
                if let Err(err) = self.sweep(deployment_id).await {
                    warn!(%deployment_id, error = %err, "lost-task sweep failed");
                }
            }
            self.expire_approvals().await;
        }
    }

    pub(super) async fn sweep(&self, deployment_id: DeploymentId) -> Result<(), StoreError> {
        let deployment = self.store.get_deployment(deployment_id)?;
        if deployment.status.is_running()
            && deployment.status != DeploymentStatus::PendingApproval
            && deployment
                .deadline_ms
                .is_some_and(|deadline| deadline <= berth_shared::time::now_ms())
        {
            let limit = berth_shared::time::format_duration(deployment.manifest.timeout);
            let reason = format!(
                "the deployment timed out after {limit} (the manifest's `timeout`); its running stages were canceled"
            );
            warn!(%deployment_id, %reason, "deployment timed out");
            self.halt(deployment_id, DeploymentStatus::TimedOut, reason)
                .await?;
            return Ok(());
        }
        let lost: Vec<(TaskId, String)> = deployment
            .tasks
            .iter()
            .filter(|task| !task.status.is_final())
            .filter_map(|task| {
                if self.connected_elsewhere(task.agent_id) {
                    return None;
                }
                let away = self.registry.away_for(task.agent_id)?;
                (away > self.lost_grace).then(|| {
                    let message = format!(
                        "agent {} lost: no contact for {} (grace period {}) while the task was {}",
                        task.host,
                        berth_shared::time::format_duration(away),
                        berth_shared::time::format_duration(self.lost_grace),
                        task.status
                    );
                    (task.id, message)
                })
            })
            .collect();
        if lost.is_empty() {
            return Ok(());
        }
        let (deployment, ()) = self.store.update_deployment(deployment_id, |deployment| {
            for (task_id, message) in &lost {
                progress::lose_task(deployment, *task_id, message.clone());
            }
            progress::settle(deployment);
            Ok(())
        })?;
        self.store.flush().await?;
        for (task_id, message) in &lost {
            warn!(%deployment_id, %task_id, %message, "task lost");
        }
        self.lock_queue()
            .values_mut()
            .for_each(|queue| queue.retain(|(_, task)| !lost.iter().any(|(id, _)| id == task)));
        self.after_change(&deployment).await;
        Ok(())
    }
}
