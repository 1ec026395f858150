//! What an agent reports running, checked against what the controller
//! decided: a host that reports the version of a failed rollout although
//! its own task there did not succeed (it was lost, and finished while the
//! controller could not hear it) is put back like the hosts that switched
//! (`[target] on_failure`), once. An agent's repairs (a container started
//! again, a route moved) are noted in the deployment's history and log.

use berth_proto::v1::HostApp;
use berth_shared::id::{AgentId, DeploymentId};
use berth_shared::manifest::OnFailure;
use berth_shared::record::{Task, TaskKind, Timestamp};
use berth_shared::state::{DeploymentStatus, TaskStatus};
use tracing::{info, warn};

use super::Dispatcher;
use crate::progress;
use crate::store::StoreError;

impl Dispatcher {
    /// Remembers a failed rollout whose hosts are put back, so reports of
    /// it are checked.
    pub(super) fn note_failed_rollout(&self, deployment: &berth_shared::record::Deployment) {
        if deployment.status == DeploymentStatus::Failed
            && deployment.manifest.target.on_failure != OnFailure::Leave
        {
            self.failed_rollouts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(deployment.id);
        }
    }

    fn is_failed_rollout(&self, id: DeploymentId) -> bool {
        self.failed_rollouts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&id)
    }

    /// Checks an agent's report of what runs on it (each heartbeat).
    pub async fn reconcile_reported(&self, agent: AgentId, agent_name: &str, apps: &[HostApp]) {
        for app in apps {
            let Ok(id) = app.deployment_id.parse::<DeploymentId>() else {
                continue;
            };
            if !self.is_failed_rollout(id) {
                continue;
            }
            if let Err(err) = self.put_back_stray(agent, agent_name, id).await {
                warn!(deployment_id = %id, agent = %agent_name, error = %err, "could not reconcile what the host runs");
            }
        }
    }

    async fn put_back_stray(
        &self,
        agent: AgentId,
        agent_name: &str,
        id: DeploymentId,
    ) -> Result<(), StoreError> {
        let failed = match self.store.get_deployment(id) {
            Ok(deployment) => deployment,
            Err(StoreError::NotFound(..)) => return Ok(()),
            Err(err) => return Err(err),
        };
        if !is_stray(&failed, agent) {
            return Ok(());
        }
        let previous = self.store.latest(
            &failed.app,
            &failed.environment,
            &[DeploymentStatus::Deployed],
        )?;
        let now = Timestamp::now();
        let host = agent_name.to_string();
        let (deployment, added) = self.store.update_deployment(id, |deployment| {
            if !is_stray(deployment, agent) {
                return Ok(false);
            }
            // Only a rollout that rolls back puts the previous version back.
            let rollback = deployment.manifest.target.on_failure == OnFailure::Rollback;
            let back_to = previous.as_ref().filter(|_| rollback);
            let kind = progress::on_failure::put_back(deployment, back_to, agent, &host, now);
            let reason = match (kind, back_to) {
                (TaskKind::Restore, Some(previous)) => format!(
                    "came back running version {} of this failed deployment; rolling back to version {} (deployment {})",
                    deployment.version, previous.version, previous.id
                ),
                _ => format!(
                    "came back running version {} of this failed deployment; stopping it",
                    deployment.version
                ),
            };
            progress::note(deployment, &host, None, "stray", Some(reason));
            Ok(true)
        })?;
        if added {
            self.store.flush().await?;
            info!(deployment_id = %id, agent = %agent_name, "a host runs a failed rollout's version; putting it back");
            self.track(&deployment);
            self.hub
                .publish(crate::hub::HubEvent::Changed { deployment: id });
            self.kick(agent).await;
        }
        Ok(())
    }
}

impl Dispatcher {
    /// Notes an agent's repair once (a reconnect reports it again): a
    /// `repaired` transition for the host, and a `repair` line in the log
    /// of the task that put the deployment on the host.
    pub async fn record_repair(&self, agent: AgentId, host: &str, app: &HostApp) {
        let Ok(id) = app.deployment_id.parse::<DeploymentId>() else {
            return;
        };
        let at = Timestamp(app.last_repair_ms);
        let noted = self.store.update_deployment_with_logs(id, |deployment| {
            let known = deployment.transitions.iter().any(|transition| {
                transition.subject == host && transition.to == "repaired" && transition.at == at
            });
            if known {
                return Ok((false, Vec::new()));
            }
            progress::note(
                deployment,
                host,
                None,
                "repaired",
                Some(app.last_repair.clone()),
            );
            if let Some(transition) = deployment.transitions.last_mut() {
                transition.at = at;
            }
            // The task's agent sends nothing more for a finished task, so
            // the next sequence number is free.
            let task = deployment.tasks.iter_mut().rev().find(|task| {
                task.agent_id == agent
                    && matches!(task.kind, TaskKind::Deploy | TaskKind::Restore)
                    && task.status == TaskStatus::Done
            });
            let lines = task
                .map(|task| {
                    task.acked_seq += 1;
                    let line = crate::store::StoredLine {
                        stage: "repair".into(),
                        stream: "system".into(),
                        ts_ms: app.last_repair_ms,
                        line: format!("repaired: {}", app.last_repair),
                    };
                    vec![(task.id, task.acked_seq, line)]
                })
                .unwrap_or_default();
            Ok((true, lines))
        });
        match noted {
            Ok((deployment, true, lines)) => {
                if self.store.flush().await.is_err() {
                    return;
                }
                for (task, seq, line) in lines {
                    self.hub.publish(crate::hub::HubEvent::Lines {
                        deployment: deployment.id,
                        task,
                        lines: std::sync::Arc::new(vec![(seq, line)]),
                    });
                }
                self.hub.publish(crate::hub::HubEvent::Changed {
                    deployment: deployment.id,
                });
            }
            Ok(_) => {}
            Err(err) => warn!(deployment_id = %id, error = %err, "repair not recorded"),
        }
    }
}

/// True when `deployment` failed, its rollout is not left as it is, and
/// `agent` runs it although its deploy task there did not succeed and
/// nothing was asked of the host since.
fn is_stray(deployment: &berth_shared::record::Deployment, agent: AgentId) -> bool {
    if deployment.status != DeploymentStatus::Failed
        || deployment.manifest.target.on_failure == OnFailure::Leave
    {
        return false;
    }
    let mine: Vec<&Task> = deployment
        .tasks
        .iter()
        .filter(|task| task.agent_id == agent)
        .collect();
    let succeeded = mine
        .iter()
        .any(|task| task.kind == TaskKind::Deploy && task.status == TaskStatus::Done);
    let handled = mine
        .iter()
        .any(|task| matches!(task.kind, TaskKind::Restore | TaskKind::Stop));
    !mine.is_empty() && !succeeded && !handled
}
