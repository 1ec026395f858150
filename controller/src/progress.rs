//! How task events change a deployment record: pure functions over
//! [`Deployment`], so the rules are unit-tested without a store or network.
//! The dispatcher calls them inside a store transaction.

use berth_proto::v1::task_event::Kind as EventKind;
use berth_proto::v1::{StageFinished, TaskEvent, TaskFinished};
use berth_shared::id::TaskId;
use berth_shared::record::{Deployment, StageResult, Task, TaskKind, Timestamp, Transition};
use berth_shared::state::{DeploymentStatus, TaskStatus};

use crate::store::StoredLine;
use crate::wire;

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
    approval::on_status(deployment, next, reason.as_deref().unwrap_or_default());
    deployment.status = next;
    clock(deployment, current, next);
    note(
        deployment,
        "deployment",
        Some(current.as_str()),
        next.as_str(),
        reason,
    );
    true
}

/// Keeps a deployment's run times: a run starts when work leaves `pending`
/// (or a settled deployment runs again) and ends when it settles.
fn clock(deployment: &mut Deployment, from: DeploymentStatus, to: DeploymentStatus) {
    let working = |status: DeploymentStatus| {
        status.is_running()
            && !matches!(
                status,
                DeploymentStatus::Pending | DeploymentStatus::PendingApproval
            )
    };
    let now = berth_shared::record::Timestamp::now();
    if working(to) && !working(from) {
        deployment.started_at = Some(now);
        deployment.finished_at = None;
        deployment.duration_ms = None;
    } else if !to.is_running() && from.is_running() {
        let started = deployment.started_at.unwrap_or(deployment.created_at);
        deployment.finished_at = Some(now);
        deployment.duration_ms = u64::try_from(now.0 - started.0).ok();
    }
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
            stream: wire::stream(log.stream).to_string(),
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
    let (outcome, unknown) = wire::stage_outcome(finished.outcome);
    stage.outcome = outcome.to_string();
    stage.finished_at = Some(ts);
    stage.duration_ms = Some(finished.duration_ms);
    stage.exit_code = finished.exit_code;
    stage.error = wire::error_text(&finished.error, unknown);
    stage.details = finished.details.clone().into_iter().collect();
}

fn finish_task(deployment: &mut Deployment, task_id: TaskId, finished: &TaskFinished) {
    let (next, unknown) = wire::task_status(finished.outcome);
    if next == TaskStatus::Done {
        record_build(deployment, task_id);
    }
    let error = wire::error_text(&finished.error, unknown);
    let reason = error.clone();
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
        task.error_message = error;
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

pub mod approval;
pub mod on_failure;
mod settle;
pub use berth_shared::record::is_quiet;
use settle::deploy_tasks;
pub use settle::{running_hosts, settle};

#[cfg(test)]
mod tests;
