//! Changes another controller of the store made (`cluster.rs`): a
//! deployment's new tasks reach this controller's agents, and a halted
//! one's running tasks on them are canceled; this controller's id, which
//! a task's claim checks against its agent's lease (`assign.rs`).

use std::sync::Arc;

use berth_shared::id::{AgentId, DeploymentId};
use berth_shared::state::TaskStatus;
use tracing::warn;

use super::{Dispatcher, is_halted};
use crate::cluster::Cluster;
use crate::progress;

impl Dispatcher {
    /// Joins this dispatcher to the other controllers of its store.
    pub fn join(&self, cluster: Arc<Cluster>) {
        let _ = self.cluster.set(cluster);
    }

    /// This controller's id when its store is shared (the assignment's
    /// claim checks the agent's lease against it).
    pub(super) fn me(&self) -> Option<String> {
        self.cluster
            .get()
            .filter(|cluster| cluster.is_shared())
            .map(|cluster| cluster.me.id.clone())
    }

    /// True when `agent`'s stream is open on another controller serving
    /// now; the agent then counts as heard from now.
    pub(super) fn connected_elsewhere(&self, agent: AgentId) -> bool {
        let elsewhere = self
            .cluster
            .get()
            .is_some_and(|cluster| cluster.owned_elsewhere(&self.store, agent).is_some());
        if elsewhere {
            self.registry.heard_elsewhere(agent);
        }
        elsewhere
    }

    /// Another controller changed deployment `id`: its queued tasks on
    /// this controller's agents are sent, or, halted, its running ones
    /// there canceled; a finished one is forgotten.
    pub async fn on_remote_change(&self, id: DeploymentId) {
        let deployment = match self.store.get_deployment(id) {
            Ok(deployment) => deployment,
            Err(err) => {
                warn!(deployment_id = %id, error = %err, "could not read a deployment another controller changed");
                return;
            }
        };
        self.note_failed_rollout(&deployment);
        let (quiet, halted) = (progress::is_quiet(&deployment), is_halted(&deployment));
        if quiet || halted {
            self.forget_queued(id);
        }
        if quiet {
            self.lock_active().remove(&id);
            return;
        }
        if halted {
            self.lock_active().insert(id);
            let running = deployment.tasks.iter().filter(|task| {
                !task.status.is_final()
                    && task.status != TaskStatus::Queued
                    && self.registry.is_online(task.agent_id)
            });
            for task in running {
                self.send_cancel(task.agent_id, task.id, task.generation)
                    .await;
            }
            return;
        }
        self.track(&deployment);
        let mut agents: Vec<AgentId> = deployment
            .tasks
            .iter()
            .filter(|task| task.status == TaskStatus::Queued)
            .map(|task| task.agent_id)
            .filter(|agent| self.registry.is_online(*agent))
            .collect();
        agents.sort_unstable();
        agents.dedup();
        for agent in agents {
            self.kick(agent).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use berth_proto::v1::controller_message::Kind as Outgoing;
    use berth_shared::record::Facts;
    use berth_shared::state::{DeploymentStatus, TaskStatus};

    /// A deployment another controller made (only in the store) reaches
    /// this controller's agent; once it is canceled there, the agent is
    /// told to stop the task.
    #[tokio::test(flavor = "multi_thread")]
    async fn another_controller_s_deployment_is_sent_to_this_one_s_agent_and_canceled_on_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let context = crate::testing::context(dir.path()).await;
        let mut deployment = crate::testing::deployment(&["h1"], 0);
        deployment.status = DeploymentStatus::Pending;
        deployment.tasks[0].status = TaskStatus::Queued;
        deployment.tasks[0].generation = 0;
        let (agent, id) = (deployment.tasks[0].agent_id, deployment.id);
        context
            .store
            .create_deployment(&deployment, true, false)
            .expect("create");
        let (outbound, mut sent) = tokio::sync::mpsc::channel(8);
        context
            .registry
            .register(agent, outbound, 1, Facts::default());

        context.dispatcher.on_remote_change(id).await;
        let assigned = sent.try_recv().expect("a message").expect("ok");
        assert!(
            matches!(assigned.kind, Some(Outgoing::Assign(_))),
            "{assigned:?}"
        );
        let stored = context.store.get_deployment(id).expect("read");
        assert_eq!(stored.tasks[0].status, TaskStatus::Assigned);

        // Canceled through the other controller: the record says so.
        context
            .store
            .update_deployment(id, |deployment| {
                crate::progress::set_status(deployment, DeploymentStatus::Canceled, None);
                Ok(())
            })
            .expect("cancel");
        context.dispatcher.on_remote_change(id).await;
        let cancel = sent.try_recv().expect("a message").expect("ok");
        assert!(
            matches!(cancel.kind, Some(Outgoing::Cancel(ref c)) if c.generation == stored.tasks[0].generation),
            "{cancel:?}"
        );
    }
}
