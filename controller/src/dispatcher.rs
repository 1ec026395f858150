//! The dispatcher: puts queued tasks into free agent slots, applies the
//! events agents send back, and marks tasks `lost` when their agent stays
//! away past the grace period.
//!
//! Invariant: every change is flushed to the store before the agent gets an
//! assignment or an ack, and before followers hear of it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_proto::v1::controller_message::Kind as Outgoing;
use berth_proto::v1::{
    Assign, CancelTask, ContainerSpec, ControllerMessage, EventsAck, TaskEvent, TaskEvents,
    TaskSpec, task_spec,
};
use berth_shared::id::{AgentId, DeploymentId, TaskId};
use berth_shared::record::{Deployment, TaskKind, Timestamp};
use berth_shared::state::{DeploymentStatus, TaskStatus};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::hub::{Hub, HubEvent};
use crate::progress;
use crate::registry::Registry;
use crate::store::{EventOutcome, LogWrite, Store, StoreError};

mod reported;

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

    /// Starts tracking a deployment's unfinished tasks.
    pub fn track(&self, deployment: &Deployment) {
        if progress::is_quiet(deployment) || deployment.queued {
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

    /// Ids of deployments with unfinished tasks.
    pub fn active_ids(&self) -> Vec<DeploymentId> {
        self.lock_active().iter().copied().collect()
    }

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
    fn agent_lock(&self, agent: AgentId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .agent_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(agent).or_default().clone()
    }

    /// Assigns this agent's queued tasks into its free slots.
    pub async fn kick(&self, agent: AgentId) {
        let lock = self.agent_lock(agent);
        let _serial = lock.lock().await;
        self.kick_locked(agent).await;
    }

    async fn kick_locked(&self, agent: AgentId) {
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

    async fn assign(
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
        let generation = self.store.next_generation()?;
        let (_, result) = self.store.update_deployment(deployment_id, |deployment| {
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
        })?;
        self.store.flush().await?;
        self.hub.publish(HubEvent::Changed {
            deployment: deployment_id,
        });
        Ok(result)
    }

    /// Adds the credentials of the image's registry, when the controller
    /// holds some, to an assignment about to go to its agent.
    fn with_credentials(&self, mut spec: TaskSpec) -> TaskSpec {
        if let Some(container) = spec.container.as_mut() {
            let server = berth_shared::manifest::registry_of(&container.image);
            match self.store.registry(server) {
                Ok(Some(record)) => {
                    container.registry_auth = Some(berth_proto::v1::RegistryAuth {
                        server: record.server,
                        username: record.username,
                        password: record.password,
                    });
                }
                Ok(None) => {}
                Err(err) => warn!(%server, error = %err, "could not read registry credentials"),
            }
        }
        spec
    }

    async fn send_assign(&self, agent: AgentId, spec: TaskSpec) {
        let spec = self.with_credentials(spec);
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
                Err(StoreError::NotFound(_)) => {}
                Err(err) => warn!(%deployment_id, error = %err, "could not reconcile agent tasks"),
            }
        }
        self.registry.heartbeat(agent, free_slots, None);
        self.kick_locked(agent).await;
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
    fn deployment_of(
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

    async fn reconcile(
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

    /// Applies a batch of task events from `agent` and returns the ack to
    /// send once they are durable.
    pub async fn on_events(
        &self,
        agent: AgentId,
        batch: TaskEvents,
    ) -> Result<Option<EventsAck>, StoreError> {
        let (Ok(deployment_id), Ok(task_id)) = (
            batch.deployment_id.parse::<DeploymentId>(),
            batch.task_id.parse::<TaskId>(),
        ) else {
            warn!(%agent, task_id = %batch.task_id, "events for a malformed task id ignored");
            return Ok(None);
        };
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
    async fn after_build(
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
    async fn after_change(&self, deployment: &Deployment) {
        self.note_change(deployment).await;
        self.kick_all().await;
    }

    /// [`Dispatcher::after_change`] without refilling slots (for callers
    /// that hold an agent's assignment lock).
    async fn note_change(&self, deployment: &Deployment) {
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
    async fn plan_on_failure(&self, failed: &Deployment) -> Result<(), StoreError> {
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

    async fn supersede_older(&self, deployment: &Deployment) -> Result<(), StoreError> {
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
        let (deployment, running) = self.store.update_deployment(id, |deployment| {
            if !deployment.status.can_become(status) {
                return Err(StoreError::Conflict(format!(
                    "deployment {id} is {}; only a running deployment can become {status}",
                    deployment.status
                )));
            }
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
        self.lock_queue()
            .values_mut()
            .for_each(|queue| queue.retain(|(deployment, _)| *deployment != id));
        for (agent, task_id, generation, _) in running {
            self.send_cancel(agent, task_id, generation).await;
        }
        self.after_change(&deployment).await;
        Ok(deployment)
    }

    async fn send_cancel(&self, agent: AgentId, task_id: TaskId, generation: u64) {
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

    /// Starts the oldest deployment waiting (`--queue`) for this
    /// app+environment, if its running slot is free.
    pub async fn promote_next(&self, app: &str, environment: &str) {
        let next = match self.store.next_queued(app, environment) {
            Ok(Some(next)) => next,
            Ok(None) => return,
            Err(err) => {
                warn!(%app, %environment, error = %err, "could not read the deployment queue");
                return;
            }
        };
        let claimed = self
            .store
            .update_deployment_claiming(next, false, |deployment| {
                if !deployment.queued || !deployment.status.is_running() {
                    return Ok(false);
                }
                deployment.queued = false;
                deployment.deadline_ms = Some(deadline(deployment));
                progress::note(
                    deployment,
                    "deployment",
                    None,
                    "pending",
                    Some("its turn came: the app's previous deployment ended".into()),
                );
                Ok(true)
            });
        match claimed {
            Ok((deployment, true)) => {
                if let Err(err) = self.store.flush().await {
                    warn!(deployment_id = %next, error = %err, "could not flush the promotion");
                    return;
                }
                info!(deployment_id = %next, "queued deployment starts");
                self.hub.publish(HubEvent::Changed { deployment: next });
                self.track(&deployment);
            }
            Ok((_, false)) => {}
            // Another deployment holds the app; this one starts after it.
            Err(StoreError::Conflict(_)) => {}
            Err(err) => {
                warn!(deployment_id = %next, error = %err, "could not start a queued deployment")
            }
        }
    }

    /// At start: starts the queued deployments whose turn came while the
    /// controller was down.
    pub async fn promote_waiting(&self) {
        let ids = match self.store.queued_ids() {
            Ok(ids) => ids,
            Err(err) => {
                warn!(error = %err, "could not read the deployment queue");
                return;
            }
        };
        let mut pairs: Vec<(String, String)> = Vec::new();
        for id in ids {
            if let Ok(deployment) = self.store.get_deployment(id) {
                let pair = (deployment.app, deployment.environment);
                if !pairs.contains(&pair) {
                    pairs.push(pair);
                }
            }
        }
        for (app, environment) in pairs {
            self.promote_next(&app, &environment).await;
        }
    }

    /// Marks tasks lost whose agent has been away longer than the grace
    /// period. Runs until `shutdown`.
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
        }
    }

    async fn sweep(&self, deployment_id: DeploymentId) -> Result<(), StoreError> {
        let deployment = self.store.get_deployment(deployment_id)?;
        if deployment.status.is_running()
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

/// Why a task cannot be assigned now, if it cannot: it is no longer
/// queued (`Gone`), or it must wait for the build or for the rollout's
/// `max_parallel` (`Wait`).
fn not_assignable(deployment: &Deployment, task_id: TaskId) -> Option<AssignResult> {
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

/// Canceled or timed out: its remaining tasks must stop, not start.
fn is_halted(deployment: &Deployment) -> bool {
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

/// The tag a Dockerfile build gives its image: `berth/APP:VERSION`, with
/// characters Docker refuses in a tag replaced by `-`.
pub fn image_tag(deployment: &Deployment) -> String {
    let version: String = deployment
        .version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect();
    let version = version.trim_start_matches(['.', '-']);
    let version = if version.is_empty() {
        "latest"
    } else {
        version
    };
    deployment
        .built
        .as_ref()
        .and_then(|built| built.image.clone())
        .unwrap_or_else(|| format!("berth/{}:{version}", deployment.app))
}

fn build_spec(
    build: &berth_shared::manifest::Build,
    deployment: &Deployment,
) -> berth_proto::v1::BuildSpec {
    use berth_shared::manifest::BuildKind;
    match &build.kind {
        BuildKind::Dockerfile {
            dockerfile,
            target,
            args,
        } => berth_proto::v1::BuildSpec {
            dockerfile: dockerfile.clone(),
            target: target.clone().unwrap_or_default(),
            args: args.clone().into_iter().collect(),
            image_tag: image_tag(deployment),
            ..Default::default()
        },
        BuildKind::Artifact { run, artifact } => berth_proto::v1::BuildSpec {
            run: run.clone(),
            artifact: artifact.clone(),
            ..Default::default()
        },
    }
}

/// Applies one batch to the deployment: drops duplicates by sequence
/// number, records stale batches without acting on them, applies the rest.
fn apply_batch(
    deployment: &mut Deployment,
    agent: AgentId,
    task_id: TaskId,
    batch: &TaskEvents,
) -> Result<(EventOutcome, Vec<LogWrite>), StoreError> {
    let task = deployment
        .tasks
        .iter()
        .find(|task| task.id == task_id)
        .ok_or_else(|| StoreError::NotFound(format!("task {task_id}")))?;
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

/// The assignment an agent receives for a task. A `restore` task runs the
/// stages of the deployment it puts back (`restore_to`), while its events
/// stay with the deployment that failed.
pub fn spec_for(deployment: &Deployment, task_id: TaskId) -> TaskSpec {
    if let Some(source) = &deployment.restore_to
        && deployment
            .tasks
            .iter()
            .any(|task| task.id == task_id && task.kind == TaskKind::Restore)
    {
        let mut previous = deployment.clone();
        previous.id = source.deployment_id;
        previous.version = source.version.clone();
        previous.manifest = source.manifest.clone();
        previous.bundle_digest = source.bundle_digest.clone();
        previous.bundle_size = source.bundle_size;
        previous.image_archive_digest = source.image_archive_digest.clone();
        previous.image_archive_size = source.image_archive_size;
        previous.built = source.built.clone();
        previous.restore_to = None;
        let mut spec = spec_for(&previous, task_id);
        spec.deployment_id = deployment.id.to_string();
        spec.restore_of = source.deployment_id.to_string();
        return spec;
    }
    let task = deployment
        .tasks
        .iter()
        .find(|task| task.id == task_id)
        .expect("caller passes a task of this deployment");
    let (kind, stage, script) = match task.kind {
        TaskKind::Deploy | TaskKind::Restore => (
            task_spec::Kind::Deploy,
            "setup",
            deployment.manifest.setup.as_ref(),
        ),
        TaskKind::Stop => (
            task_spec::Kind::Stop,
            "stop",
            deployment.manifest.stop.as_ref(),
        ),
        TaskKind::Delete => (task_spec::Kind::Delete, "delete", None),
        TaskKind::Build => (task_spec::Kind::Build, "build", None),
    };
    let build = deployment.manifest.build.as_ref();
    let built_image = build
        .filter(|build| build.makes_image())
        .map(|_| image_tag(deployment));
    TaskSpec {
        task_id: task.id.to_string(),
        deployment_id: deployment.id.to_string(),
        generation: task.generation,
        app: deployment.app.clone(),
        environment: deployment.environment.clone(),
        version: deployment.version.clone(),
        bundle_digest: deployment.bundle_digest.clone(),
        bundle_size: deployment.bundle_size,
        kind: kind as i32,
        commands: script.map(|script| script.run.clone()).unwrap_or_default(),
        timeout_ms: match (task.kind, build) {
            (TaskKind::Build, Some(build)) => {
                u64::try_from(build.timeout.as_millis()).unwrap_or(u64::MAX)
            }
            _ => script.map_or(300_000, |script| {
                u64::try_from(script.timeout.as_millis()).unwrap_or(u64::MAX)
            }),
        },
        build: build
            .filter(|_| task.kind == TaskKind::Build)
            .map(|build| build_spec(build, deployment)),
        artifact: deployment
            .built
            .as_ref()
            .filter(|_| matches!(task.kind, TaskKind::Deploy | TaskKind::Restore))
            .and_then(|built| {
                built
                    .artifact
                    .as_ref()
                    .map(|name| berth_proto::v1::ArtifactRef {
                        digest: built.digest.clone(),
                        size: built.size,
                        name: name.clone(),
                    })
            }),
        stage: stage.to_string(),
        restore_of: String::new(),
        host: task.host.clone(),
        container: deployment
            .manifest
            .container
            .as_ref()
            .map(|container| ContainerSpec {
                image: built_image
                    .clone()
                    .unwrap_or_else(|| container.image.clone()),
                port: container.port.map_or(0, u32::from),
                host_port: container.host_port.map_or(0, u32::from),
                env: container.env.clone().into_iter().collect(),
                volumes: container.volumes.clone(),
                command: container.command.clone(),
                memory_bytes: container.memory_bytes.unwrap_or(0),
                nano_cpus: container.nano_cpus.unwrap_or(0),
                image_archive_digest: deployment.image_archive_digest.clone().unwrap_or_default(),
                image_archive_size: deployment.image_archive_size,
                stop_timeout_secs: container.stop_timeout_secs.unwrap_or(0),
                pull: container.pull_policy().as_str().to_string(),
                update: container.update_order().as_str().to_string(),
                proxy: deployment
                    .manifest
                    .proxy
                    .as_ref()
                    .map(|proxy| berth_proto::v1::ProxySpec {
                        domain: proxy.domain.clone(),
                        tls: proxy.tls.clone(),
                    }),
                health: deployment.manifest.health.as_ref().map(|health| {
                    let ms = |duration: std::time::Duration| {
                        u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
                    };
                    let (http_path, tcp, run) = match &health.probe {
                        berth_shared::manifest::Probe::Http(path) => {
                            (path.clone(), false, Vec::new())
                        }
                        berth_shared::manifest::Probe::Tcp => (String::new(), true, Vec::new()),
                        berth_shared::manifest::Probe::Run(commands) => {
                            (String::new(), false, commands.clone())
                        }
                    };
                    berth_proto::v1::HealthSpec {
                        http_path,
                        tcp,
                        run,
                        interval_ms: ms(health.interval),
                        timeout_ms: ms(health.timeout),
                        start_period_ms: ms(health.start_period),
                    }
                }),
                // Filled in by `Dispatcher::send_assign`, the only way out.
                registry_auth: None,
            }),
    }
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
                        outcome: "done".into(),
                        ..Default::default()
                    })
                } else {
                    Kind::Log(LogLine {
                        stage: "setup".into(),
                        stream: "stdout".into(),
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

#[cfg(test)]
mod credential_tests {
    use super::*;

    #[test]
    fn registry_credentials_go_only_with_images_from_that_registry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        store
            .put_registry(&crate::store::RegistryRecord {
                server: "registry.example.com".into(),
                username: "deployer".into(),
                password: "s3cret".into(),
                created_at: Timestamp::now(),
                created_by: "admin".into(),
            })
            .expect("put");
        let dispatcher = Dispatcher::new(
            store,
            Arc::new(Registry::default()),
            Hub::default(),
            Duration::from_secs(60),
        )
        .expect("dispatcher");
        let spec = |image: &str| TaskSpec {
            container: Some(ContainerSpec {
                image: image.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let private = dispatcher.with_credentials(spec("registry.example.com/team/app:1"));
        let auth = private
            .container
            .and_then(|container| container.registry_auth)
            .expect("credentials for its registry");
        assert_eq!(
            (
                auth.server.as_str(),
                auth.username.as_str(),
                auth.password.as_str()
            ),
            ("registry.example.com", "deployer", "s3cret")
        );
        let public = dispatcher.with_credentials(spec("hello:1"));
        assert!(
            public
                .container
                .and_then(|container| container.registry_auth)
                .is_none(),
            "no credentials for other registries"
        );
        assert!(
            dispatcher
                .with_credentials(TaskSpec::default())
                .container
                .is_none()
        );
    }
}
