//! Task events from agents: applied with their log lines in one
//! transaction, acknowledged once durable, and what follows a change
//! (build results, superseding, `on_failure`, followers).

use std::sync::Arc;

use berth_proto::v1::{EventsAck, TaskEvent, TaskEvents};
use berth_shared::id::{AgentId, DeploymentId, TaskId};
use berth_shared::record::{Deployment, TaskKind, Timestamp};
use berth_shared::state::{DeploymentStatus, TaskStatus};
use tracing::{info, warn};

use crate::hub::HubEvent;
use crate::progress;
use crate::store::{EventOutcome, LogWrite, StoreError};

use super::Dispatcher;

impl Dispatcher {
    /// Applies a batch of task events from `agent` and returns the ack to
    /// send once they are durable.
    pub async fn on_events(
        &self,
        agent: AgentId,
        mut batch: TaskEvents,
    ) -> Result<Option<EventsAck>, StoreError> {
        let (Ok(deployment_id), Ok(task_id)) = (
            batch.deployment_id.parse::<DeploymentId>(),
            batch.task_id.parse::<TaskId>(),
        ) else {
            warn!(%agent, task_id = %batch.task_id, "events for a malformed task id ignored");
            return Ok(None);
        };
        // Secret values never reach the store, also from an agent that
        // does not mask them itself.
        self.mask_batch(deployment_id, &mut batch);
        let (deployment, outcome, stored) = self
            .store
            .update_deployment_with_logs(deployment_id, |deployment| {
                apply_batch(deployment, agent, task_id, &batch)
            })?;
        self.store.flush().await?;
        if !stored.is_empty() {
            self.hub.publish(HubEvent::Lines {
                deployment: deployment_id,
                task: task_id,
                lines: Arc::new(
                    stored
                        .into_iter()
                        .map(|(_, seq, line)| (seq, line))
                        .collect(),
                ),
            });
            // The ack is the agent's pace: followers first.
            self.hub
                .wait_for_followers(deployment_id, crate::hub::FOLLOW_WAIT)
                .await;
        }
        if outcome.stale {
            warn!(%deployment_id, %task_id, generation = batch.generation, "stale task events recorded and ignored");
        }
        if outcome.finished {
            // The agent's slot is free now; its next heartbeat confirms the
            // count, but the next task need not wait for it.
            self.registry.release_slot(agent);
            self.after_build(&deployment, task_id).await?;
        }
        if outcome.changed {
            self.after_change(&deployment).await;
        }
        Ok(Some(EventsAck {
            task_id: batch.task_id,
            upto: outcome.acked_upto,
        }))
    }

    /// When `task_id` was a build that just finished well: its result is
    /// kept for reuse under the build's key, and every host of the
    /// deployment may now download it. Durable before the hosts are kicked.
    pub(super) async fn after_build(
        &self,
        deployment: &Deployment,
        task_id: TaskId,
    ) -> Result<(), StoreError> {
        let is_build = deployment.tasks.iter().any(|task| {
            task.id == task_id && task.kind == TaskKind::Build && task.status == TaskStatus::Done
        });
        let (Some(built), true) = (deployment.built.as_ref(), is_build) else {
            return Ok(());
        };
        if self.store.blob_size(&built.digest)? != Some(built.size) {
            warn!(deployment_id = %deployment.id, digest = %built.digest, "the build reported a result the blob store does not hold");
            return Ok(());
        }
        if let Some(key) = &deployment.build_key {
            self.store.put_build(key, built)?;
        }
        for task in deployment
            .tasks
            .iter()
            .filter(|task| task.kind == TaskKind::Deploy)
        {
            self.store.grant_blob(task.agent_id, &built.digest)?;
        }
        self.store.flush().await?;
        info!(deployment_id = %deployment.id, digest = %built.digest, size = built.size, "build result ready for the hosts");
        Ok(())
    }

    /// Follow-up work after a deployment changed: notify, forget it when
    /// quiet, retire the version it replaced, and refill freed slots.
    pub(super) async fn after_change(&self, deployment: &Deployment) {
        self.note_change(deployment).await;
        self.kick_all().await;
    }

    /// [`Dispatcher::after_change`] without refilling slots (for callers
    /// that hold an agent's assignment lock).
    pub(super) async fn note_change(&self, deployment: &Deployment) {
        // The older deployment is marked superseded before anyone hears
        // that this one is deployed, so a follower that sees `deployed`
        // also sees the takeover.
        if deployment.status == DeploymentStatus::Deployed
            && let Err(err) = self.supersede_older(deployment).await
        {
            warn!(deployment_id = %deployment.id, error = %err, "could not mark older deployments superseded");
        }
        if progress::on_failure::needs_plan(deployment)
            && let Err(err) = self.plan_on_failure(deployment).await
        {
            warn!(deployment_id = %deployment.id, error = %err, "could not act on the failed rollout's hosts");
        }
        self.hub.publish(HubEvent::Changed {
            deployment: deployment.id,
        });
        if progress::is_quiet(deployment) {
            self.lock_active().remove(&deployment.id);
            self.promote_next(&deployment.app, &deployment.environment)
                .await;
        }
    }

    /// A rollout failed: its hosts that switched to the new version go
    /// back, stop or stay as `[target] on_failure` says
    /// ([`progress::on_failure`]).
    pub(super) async fn plan_on_failure(&self, failed: &Deployment) -> Result<(), StoreError> {
        let previous = self.store.latest(
            &failed.app,
            &failed.environment,
            &[DeploymentStatus::Deployed],
        )?;
        let now = Timestamp::now();
        let (deployment, added) = self.store.update_deployment(failed.id, |deployment| {
            if !progress::on_failure::needs_plan(deployment) {
                return Ok(false);
            }
            Ok(progress::on_failure::plan(
                deployment,
                previous.as_ref(),
                now,
            ))
        })?;
        self.store.flush().await?;
        self.note_failed_rollout(&deployment);
        if added {
            info!(deployment_id = %deployment.id, "failed rollout: acting on the hosts that switched");
            self.track(&deployment);
        }
        Ok(())
    }

    pub(super) async fn supersede_older(&self, deployment: &Deployment) -> Result<(), StoreError> {
        let older = self.store.list_deployments(&crate::store::ListQuery {
            app: Some(deployment.app.clone()),
            environment: Some(deployment.environment.clone()),
            statuses: vec![DeploymentStatus::Deployed],
            limit: 100,
            ..Default::default()
        })?;
        // Whichever deployment finished last is what the hosts run now.
        for old in older.iter().filter(|old| old.id != deployment.id) {
            let reason = format!("superseded by {}", deployment.id);
            self.store.update_deployment(old.id, |old| {
                progress::set_status(old, DeploymentStatus::Superseded, Some(reason.clone()));
                Ok(())
            })?;
            self.store.flush().await?;
            self.hub.publish(HubEvent::Changed { deployment: old.id });
        }
        Ok(())
    }
}

/// Applies one batch to the deployment: drops duplicates by sequence
/// number, records stale batches without acting on them, applies the rest.
pub(super) fn apply_batch(
    deployment: &mut Deployment,
    agent: AgentId,
    task_id: TaskId,
    batch: &TaskEvents,
) -> Result<(EventOutcome, Vec<LogWrite>), StoreError> {
    let task = deployment
        .tasks
        .iter()
        .find(|task| task.id == task_id)
        .ok_or_else(|| {
            StoreError::NotFound(crate::store::Thing::Task, format!("task {task_id}"))
        })?;
    if task.agent_id != agent {
        return Err(StoreError::Refused(format!(
            "task {task_id} belongs to another agent"
        )));
    }
    let acked = task.acked_seq;
    let stale = batch.generation != task.generation || task.status.is_final();
    let host = task.host.clone();
    let fresh: Vec<&TaskEvent> = batch
        .events
        .iter()
        .filter(|event| event.seq > acked)
        .collect();
    let mut outcome = EventOutcome {
        acked_upto: acked,
        ..Default::default()
    };
    let Some(newest) = fresh.iter().map(|event| event.seq).max() else {
        // All duplicates of what is already durable: acknowledge again.
        return Ok((outcome, Vec::new()));
    };
    if stale {
        // Events of an assignment that is no longer current (fenced by its
        // generation, or the task already ended, e.g. as lost): counted and
        // acknowledged so the agent forgets them, never applied or stored.
        let task = deployment.task_mut(task_id).expect("task found above");
        let first = task.stale_events == 0;
        task.stale_events += fresh.len() as u64;
        if first {
            let reason = format!(
                "late events from generation {} ignored (task is {} at generation {})",
                batch.generation, task.status, task.generation
            );
            progress::note(deployment, &host, None, "stale", Some(reason));
            outcome.changed = true;
        }
        outcome.stale = true;
        outcome.acked_upto = newest;
        return Ok((outcome, Vec::new()));
    }
    let mut lines = Vec::new();
    let mut last = acked;
    let mut fresh = fresh;
    fresh.sort_by_key(|event| event.seq);
    for event in fresh {
        if event.seq <= last {
            continue;
        }
        // A gap means an earlier batch was not stored (several are in
        // flight): stop there, so the ack never passes unstored lines; the
        // agent sends again from the ack.
        if event.seq != last + 1 {
            break;
        }
        last = event.seq;
        if let Some(line) = progress::apply_event(deployment, task_id, event) {
            lines.push((task_id, event.seq, line));
        }
    }
    let task = deployment.task_mut(task_id).expect("task found above");
    task.acked_seq = last;
    outcome.finished = task.status.is_final();
    progress::settle(deployment);
    outcome.changed = true;
    outcome.acked_upto = last;
    Ok((outcome, lines))
}

#[cfg(test)]
mod tests {
    use berth_proto::v1::task_event::Kind;
    use berth_proto::v1::{LogLine, TaskFinished};

    use super::*;

    fn batch(deployment: &Deployment, generation: u64, seqs: &[u64], finish: bool) -> TaskEvents {
        let events = seqs
            .iter()
            .map(|seq| TaskEvent {
                seq: *seq,
                ts_ms: 1,
                kind: Some(if finish && Some(seq) == seqs.last() {
                    Kind::Finished(TaskFinished {
                        outcome: berth_proto::v1::TaskOutcome::Done.into(),
                        ..Default::default()
                    })
                } else {
                    Kind::Log(LogLine {
                        stage: "setup".into(),
                        stream: berth_proto::v1::OutputStream::Stdout.into(),
                        line: format!("line {seq}"),
                    })
                }),
            })
            .collect();
        TaskEvents {
            task_id: deployment.tasks[0].id.to_string(),
            deployment_id: deployment.id.to_string(),
            generation,
            events,
        }
    }

    #[test]
    fn applies_new_events_once_and_acknowledges_duplicates() {
        let mut deployment = crate::testing::deployment(&["h1"], 0);
        let (agent, task) = (deployment.tasks[0].agent_id, deployment.tasks[0].id);
        let events = batch(&deployment, 1, &[1, 2], false);
        let (outcome, lines) = apply_batch(&mut deployment, agent, task, &events).expect("apply");
        assert_eq!((outcome.acked_upto, lines.len()), (2, 2));
        let events = batch(&deployment, 1, &[1, 2, 3], true);
        let (outcome, lines) = apply_batch(&mut deployment, agent, task, &events).expect("resend");
        assert_eq!(outcome.acked_upto, 3);
        assert!(
            lines.is_empty(),
            "1 and 2 are duplicates; 3 is the result, not a line"
        );
        assert_eq!(deployment.tasks[0].status, TaskStatus::Done);
        let events = batch(&deployment, 1, &[3], true);
        let (outcome, _) = apply_batch(&mut deployment, agent, task, &events).expect("again");
        assert_eq!(outcome.acked_upto, 3);
        assert!(
            !outcome.stale,
            "a duplicate of what is durable is not stale"
        );
    }

    #[test]
    fn a_gap_stops_the_ack_before_unstored_lines() {
        let mut deployment = crate::testing::deployment(&["h1"], 0);
        let (agent, task) = (deployment.tasks[0].agent_id, deployment.tasks[0].id);
        let events = batch(&deployment, 1, &[1, 2], false);
        let (outcome, _) = apply_batch(&mut deployment, agent, task, &events).expect("apply");
        assert_eq!(outcome.acked_upto, 2);
        // Lines 3 and 4 were lost on the way; 5 and 6 arrive.
        let events = batch(&deployment, 1, &[5, 6], false);
        let (outcome, lines) = apply_batch(&mut deployment, agent, task, &events).expect("gap");
        assert_eq!(outcome.acked_upto, 2, "the ack stays before the gap");
        assert!(lines.is_empty(), "nothing past the gap is stored");
        assert_eq!(deployment.tasks[0].acked_seq, 2);
        let events = batch(&deployment, 1, &[3, 4, 5, 6], false);
        let (outcome, lines) = apply_batch(&mut deployment, agent, task, &events).expect("resent");
        assert_eq!((outcome.acked_upto, lines.len()), (6, 4));
    }

    #[test]
    fn stale_generations_are_counted_acknowledged_and_ignored() {
        let mut deployment = crate::testing::deployment(&["h1"], 0);
        deployment.tasks[0].generation = 5;
        let (agent, task) = (deployment.tasks[0].agent_id, deployment.tasks[0].id);
        let events = batch(&deployment, 4, &[1, 2, 3], true);
        let (outcome, lines) = apply_batch(&mut deployment, agent, task, &events).expect("apply");
        assert!(outcome.stale);
        assert_eq!(
            outcome.acked_upto, 3,
            "acknowledged so the agent forgets them"
        );
        assert!(lines.is_empty(), "nothing stored");
        assert_eq!(
            deployment.tasks[0].status,
            TaskStatus::Assigned,
            "nothing applied"
        );
        assert_eq!(deployment.tasks[0].acked_seq, 0);
        assert_eq!(deployment.tasks[0].stale_events, 3);
        let other = AgentId::new();
        let events = batch(&deployment, 5, &[1], false);
        assert!(matches!(
            apply_batch(&mut deployment, other, task, &events),
            Err(StoreError::Refused(_))
        ));
    }
}
