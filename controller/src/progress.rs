//! How task events change a deployment record: pure functions over
//! [`Deployment`], so the rules are unit-tested without a store or network.
//! The dispatcher calls them inside a store transaction.

use berth_proto::v1::task_event::Kind as EventKind;
use berth_proto::v1::{StageFinished, TaskEvent, TaskFinished};
use berth_shared::id::TaskId;
use berth_shared::record::{Deployment, StageResult, Task, TaskKind, Timestamp, Transition};
use berth_shared::state::{DeploymentStatus, TaskStatus};

use crate::store::StoredLine;

/// Records a transition in the deployment's history.
pub fn note(
    deployment: &mut Deployment,
    subject: &str,
    from: Option<&str>,
    to: &str,
    reason: Option<String>,
) {
    deployment.transitions.push(Transition {
        at: Timestamp::now(),
        subject: subject.to_string(),
        from: from.map(str::to_string),
        to: to.to_string(),
        reason,
        seq: None,
        task: None,
    });
    deployment.updated_at = Timestamp::now();
}

/// Moves the deployment to `next` if that is a legal transition.
pub fn set_status(
    deployment: &mut Deployment,
    next: DeploymentStatus,
    reason: Option<String>,
) -> bool {
    let current = deployment.status;
    if !current.can_become(next) {
        tracing::warn!(deployment_id = %deployment.id, from = %current, to = %next, "illegal status transition refused");
        return false;
    }
    deployment.status = next;
    note(
        deployment,
        "deployment",
        Some(current.as_str()),
        next.as_str(),
        reason,
    );
    true
}

/// Moves a task to `next` if legal, recording the transition.
pub fn set_task_status(
    deployment: &mut Deployment,
    task_id: TaskId,
    next: TaskStatus,
    reason: Option<String>,
) -> bool {
    let Some(task) = deployment.task_mut(task_id) else {
        return false;
    };
    let current = task.status;
    if !current.can_become(next) {
        return false;
    }
    task.status = next;
    if next.is_final() {
        task.finished_at = Some(Timestamp::now());
    }
    let host = task.host.clone();
    note(
        deployment,
        &host,
        Some(current.as_str()),
        next.as_str(),
        reason,
    );
    true
}

/// Applies one agent event to a task. Returns the log line to store, if
/// any. The task's transitions it causes carry the event's sequence number.
pub fn apply_event(
    deployment: &mut Deployment,
    task_id: TaskId,
    event: &TaskEvent,
) -> Option<StoredLine> {
    let before = deployment.transitions.len();
    let line = apply_event_inner(deployment, task_id, event);
    if deployment.transitions.len() > before
        && let Some(host) = deployment
            .tasks
            .iter()
            .find(|task| task.id == task_id)
            .map(|task| task.host.clone())
    {
        for transition in deployment.transitions.iter_mut().skip(before) {
            if transition.subject == host {
                transition.seq = Some(event.seq);
                transition.task = Some(task_id);
            }
        }
    }
    line
}

fn apply_event_inner(
    deployment: &mut Deployment,
    task_id: TaskId,
    event: &TaskEvent,
) -> Option<StoredLine> {
    let ts = Timestamp(event.ts_ms);
    match event.kind.as_ref()? {
        EventKind::Log(log) => Some(StoredLine {
            stage: log.stage.clone(),
            stream: log.stream.clone(),
            ts_ms: event.ts_ms,
            line: log.line.clone(),
        }),
        EventKind::StageStarted(started) => {
            if let Some(status) = TaskStatus::for_stage(&started.stage) {
                set_task_status(deployment, task_id, status, None);
            }
            if let Some(task) = deployment.task_mut(task_id) {
                task.stages.push(StageResult {
                    stage: started.stage.clone(),
                    outcome: "running".into(),
                    started_at: ts,
                    finished_at: None,
                    duration_ms: None,
                    exit_code: None,
                    error: None,
                    details: Default::default(),
                });
            }
            match started.stage.as_str() {
                "build" if deployment.status == DeploymentStatus::Pending => {
                    set_status(deployment, DeploymentStatus::Building, None);
                }
                "setup"
                    if matches!(
                        deployment.status,
                        DeploymentStatus::Pending | DeploymentStatus::Building
                    ) =>
                {
                    set_status(deployment, DeploymentStatus::SetupRunning, None);
                }
                // The first host to start its container moves the
                // deployment on, through setup_complete if setup ran.
                "deploy" if deployment.status.is_running() => {
                    for step in [DeploymentStatus::SetupComplete, DeploymentStatus::Deploying] {
                        if deployment.status.can_become(step) {
                            set_status(deployment, step, None);
                        }
                    }
                }
                _ => {}
            }
            None
        }
        EventKind::StageFinished(finished) => {
            if let Some(task) = deployment.task_mut(task_id) {
                finish_stage(task, finished, ts);
            }
            None
        }
        EventKind::Finished(finished) => {
            finish_task(deployment, task_id, finished);
            None
        }
    }
}

fn finish_stage(task: &mut Task, finished: &StageFinished, ts: Timestamp) {
    let position = task
        .stages
        .iter()
        .rposition(|stage| stage.stage == finished.stage && stage.finished_at.is_none());
    let Some(position) = position else {
        return;
    };
    let stage = &mut task.stages[position];
    stage.outcome = finished.outcome.clone();
    stage.finished_at = Some(ts);
    stage.duration_ms = Some(finished.duration_ms);
    stage.exit_code = finished.has_exit_code.then_some(finished.exit_code);
    stage.error = (!finished.error.is_empty()).then(|| finished.error.clone());
    stage.details = finished.details.clone().into_iter().collect();
}

fn finish_task(deployment: &mut Deployment, task_id: TaskId, finished: &TaskFinished) {
    if finished.outcome == "done" {
        record_build(deployment, task_id);
    }
    let next = match finished.outcome.as_str() {
        "done" => TaskStatus::Done,
        "timed_out" => TaskStatus::TimedOut,
        "canceled" => TaskStatus::Canceled,
        _ => TaskStatus::Failed,
    };
    let reason = (!finished.error.is_empty()).then(|| finished.error.clone());
    let halted = matches!(
        deployment.status,
        DeploymentStatus::Canceled | DeploymentStatus::TimedOut
    );
    let changed = set_task_status(deployment, task_id, next, reason);
    if changed && next == TaskStatus::Done && halted {
        // The host got there before the cancel did: say what it runs now.
        if let Some(task) = deployment
            .tasks
            .iter()
            .find(|task| task.id == task_id && task.kind == TaskKind::Deploy)
        {
            let host = task.host.clone();
            let reason = format!(
                "host {host} had finished before the deployment was {}: it runs version {} of {}; deploy or roll back to set what all hosts run",
                deployment.status, deployment.version, deployment.app
            );
            note(deployment, &host, None, "finished_anyway", Some(reason));
        }
    }
    if changed
        && next != TaskStatus::Done
        && let Some(task) = deployment.task_mut(task_id)
    {
        task.error_step = Some(finished.error_step.clone()).filter(|step| !step.is_empty());
        task.error_message = Some(finished.error.clone()).filter(|error| !error.is_empty());
    }
}

/// A build task that ended well: what it made (from its `build` stage's
/// details) becomes the deployment's build output, and an image build's
/// archive is what hosts without the image load.
fn record_build(deployment: &mut Deployment, task_id: TaskId) {
    let Some(task) = deployment
        .tasks
        .iter()
        .find(|task| task.id == task_id && task.kind == TaskKind::Build)
    else {
        return;
    };
    let Some(details) = task
        .stages
        .iter()
        .rev()
        .find(|stage| stage.stage == "build")
        .map(|stage| stage.details.clone())
    else {
        return;
    };
    let (Some(digest), Some(size)) = (
        details.get("result_digest").cloned(),
        details
            .get("result_size")
            .and_then(|size| size.parse().ok()),
    ) else {
        return;
    };
    let built = berth_shared::record::BuildOutput {
        digest,
        size,
        image: details.get("image").cloned(),
        image_id: details.get("image_id").cloned(),
        artifact: details.get("artifact").cloned(),
        built_by: deployment.id,
        reused: false,
    };
    if built.image.is_some() {
        deployment.image_archive_digest = Some(built.digest.clone());
        deployment.image_archive_size = built.size;
    }
    deployment.built = Some(built);
}

/// Marks a task lost because its agent stayed away too long.
pub fn lose_task(deployment: &mut Deployment, task_id: TaskId, message: String) -> bool {
    let stage = deployment
        .task_mut(task_id)
        .map(|task| task.status)
        .filter(|status| status.is_active())
        .map(|status| match status {
            TaskStatus::Assigned => "assign".to_string(),
            other => other.as_str().to_string(),
        });
    if !set_task_status(deployment, task_id, TaskStatus::Lost, Some(message.clone())) {
        return false;
    }
    if let Some(task) = deployment.task_mut(task_id) {
        task.error_step = stage;
        task.error_message = Some(message);
    }
    true
}

fn is_failure(status: TaskStatus) -> bool {
    matches!(
        status,
        TaskStatus::Failed | TaskStatus::TimedOut | TaskStatus::Lost | TaskStatus::Canceled
    )
}

/// Recomputes the deployment's status from its tasks, after any change.
pub fn settle(deployment: &mut Deployment) {
    if deployment.status.is_running() {
        settle_deploy(deployment);
        return;
    }
    if deployment.status == DeploymentStatus::Deployed {
        settle_round(deployment, TaskKind::Stop, DeploymentStatus::Stopped);
    }
    if deployment.status != DeploymentStatus::Deleted {
        settle_round(deployment, TaskKind::Delete, DeploymentStatus::Deleted);
    }
    on_failure::note_restored(deployment);
}

/// The deploy tasks of the latest run (a redeploy adds a new round; the
/// tasks of one round share their creation time).
fn deploy_tasks(deployment: &Deployment) -> impl Iterator<Item = &Task> {
    let latest = deployment
        .tasks
        .iter()
        .filter(|task| task.kind == TaskKind::Deploy)
        .map(|task| task.created_at)
        .max();
    deployment
        .tasks
        .iter()
        .filter(move |task| task.kind == TaskKind::Deploy && Some(task.created_at) == latest)
}

/// A build that ended without a result decides the deployment: the hosts
/// never start (their queued tasks are canceled), and the deployment ends
/// `failed` (or `timed_out`) at `build` with the build's message.
fn settle_build(deployment: &mut Deployment) -> bool {
    let Some(build) = deployment
        .tasks
        .iter()
        .rfind(|task| task.kind == TaskKind::Build)
        .cloned()
    else {
        return false;
    };
    if build.status == TaskStatus::Done || !build.status.is_final() {
        return false;
    }
    let queued: Vec<TaskId> = deploy_tasks(deployment)
        .filter(|task| task.status == TaskStatus::Queued)
        .map(|task| task.id)
        .collect();
    for task_id in queued {
        let reason = "the build failed; this host was not touched".to_string();
        set_task_status(deployment, task_id, TaskStatus::Canceled, Some(reason));
    }
    if deploy_tasks(deployment).any(|task| !task.status.is_final()) {
        return true;
    }
    deployment.error_step = Some("build".into());
    let message = build
        .error_message
        .clone()
        .unwrap_or_else(|| format!("the build task ended {}", build.status));
    deployment.error_message = Some(prefixed(&build.host, &message));
    let status = if build.status == TaskStatus::TimedOut {
        DeploymentStatus::TimedOut
    } else {
        DeploymentStatus::Failed
    };
    let reason = deployment.error_message.clone();
    set_status(deployment, status, reason);
    true
}

fn settle_deploy(deployment: &mut Deployment) {
    if settle_build(deployment) {
        return;
    }
    let failures: Vec<&Task> = deploy_tasks(deployment)
        .filter(|task| is_failure(task.status))
        .collect();
    let failed_count = failures.len();
    let first_failure = failures.first().map(|task| (*task).clone());
    let over_budget = failed_count > deployment.manifest.target.max_failures as usize;
    if over_budget {
        let queued: Vec<TaskId> = deploy_tasks(deployment)
            .filter(|task| task.status == TaskStatus::Queued)
            .map(|task| task.id)
            .collect();
        for task_id in queued {
            let reason = format!("rollout stopped after {failed_count} failed host(s)");
            set_task_status(deployment, task_id, TaskStatus::Canceled, Some(reason));
        }
    }
    if deploy_tasks(deployment).any(|task| !task.status.is_final()) {
        return;
    }
    let none_done = !deploy_tasks(deployment).any(|task| task.status == TaskStatus::Done);
    if let Some(failure) = first_failure.filter(|_| over_budget || none_done) {
        let status = match failure.status {
            TaskStatus::TimedOut => DeploymentStatus::TimedOut,
            _ => DeploymentStatus::Failed,
        };
        deployment.error_step = failure.error_step.clone();
        let message = failure
            .error_message
            .clone()
            .unwrap_or_else(|| format!("task ended {}", failure.status));
        // Within the failure budget but with no host done is still a failure.
        let note = if over_budget {
            ""
        } else {
            " (no host succeeded)"
        };
        deployment.error_message = Some(prefixed(&failure.host, &format!("{message}{note}")));
        let reason = deployment.error_message.clone();
        set_status(deployment, status, reason);
        return;
    }
    // Walk the remaining steps this deployment has: setup only with a
    // [setup] section, deploying only with a [container].
    let mut steps = Vec::new();
    if deployment.manifest.setup.is_some() {
        steps.extend([
            DeploymentStatus::SetupRunning,
            DeploymentStatus::SetupComplete,
        ]);
    }
    if deployment.manifest.container.is_some() {
        steps.push(DeploymentStatus::Deploying);
    }
    steps.push(DeploymentStatus::Deployed);
    // Steps already passed (e.g. setup on a redeploy) are skipped.
    for step in steps {
        if deployment.status.can_become(step) {
            set_status(deployment, step, None);
        }
    }
}

/// The hosts the deployment runs on now: done in its latest deploy round
/// and not stopped since.
pub fn running_hosts(deployment: &Deployment) -> Vec<(berth_shared::id::AgentId, String)> {
    let mut hosts = Vec::new();
    for task in deploy_tasks(deployment).filter(|task| task.status == TaskStatus::Done) {
        let stopped = deployment.tasks.iter().any(|stop| {
            stop.kind == TaskKind::Stop
                && stop.agent_id == task.agent_id
                && stop.status == TaskStatus::Done
                && stop.created_at >= task.created_at
        });
        if !stopped && !hosts.iter().any(|(agent, _)| *agent == task.agent_id) {
            hosts.push((task.agent_id, task.host.clone()));
        }
    }
    hosts
}

/// Settles the latest round of `kind` tasks (a stop or a delete request):
/// once all are final, all done moves the deployment to `done_status`; a
/// failure leaves the status and records `error_step` and the message.
fn settle_round(deployment: &mut Deployment, kind: TaskKind, done_status: DeploymentStatus) {
    // Only the latest request counts; its tasks share a creation time.
    let latest = deployment
        .tasks
        .iter()
        .filter(|task| task.kind == kind)
        .map(|task| task.created_at)
        .max();
    let round: Vec<&Task> = deployment
        .tasks
        .iter()
        .filter(|task| task.kind == kind && Some(task.created_at) == latest)
        .collect();
    if round.is_empty() || round.iter().any(|task| !task.status.is_final()) {
        return;
    }
    let step = match kind {
        TaskKind::Delete => "delete",
        _ => "stop",
    };
    let failed = round
        .iter()
        .find(|task| task.status != TaskStatus::Done)
        .map(|task| (*task).clone());
    // A stop of some hosts (`berth stop --selector`) leaves the deployment
    // deployed on the others.
    if failed.is_none() && kind == TaskKind::Stop {
        let still = running_hosts(deployment);
        if !still.is_empty() {
            let names: Vec<&str> = still.iter().map(|(_, name)| name.as_str()).collect();
            let stopped: Vec<String> = round.iter().map(|task| task.host.clone()).collect();
            let requested = latest.unwrap_or_default();
            let already = deployment
                .transitions
                .iter()
                .any(|transition| transition.to == "partly_stopped" && transition.at >= requested);
            if !already {
                let reason = format!(
                    "stopped on {}; still running on {}",
                    stopped.join(", "),
                    names.join(", ")
                );
                note(
                    deployment,
                    "deployment",
                    None,
                    "partly_stopped",
                    Some(reason),
                );
            }
            return;
        }
    }
    match failed {
        None => {
            set_status(
                deployment,
                done_status,
                Some(format!("{step} finished on every host")),
            );
        }
        Some(task) => {
            deployment.error_step = Some(step.into());
            let message = task
                .error_message
                .clone()
                .unwrap_or_else(|| format!("{step} task ended {}", task.status));
            deployment.error_message = Some(prefixed(&task.host, &message));
        }
    }
}

/// `host: message`, unless the message already names the host.
fn prefixed(host: &str, message: &str) -> String {
    if message.contains(host) {
        message.to_string()
    } else {
        format!("{host}: {message}")
    }
}

pub use berth_shared::record::is_quiet;

pub mod on_failure;

#[cfg(test)]
mod tests;
