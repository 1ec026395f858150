//! Settling a deployment from its tasks: when a round of builds or
//! deploys is done, failed or still going, and what the deployment's
//! status becomes.

use berth_shared::id::TaskId;
use berth_shared::record::{Deployment, Task, TaskKind};
use berth_shared::state::{DeploymentStatus, TaskStatus};

use super::{note, set_status, set_task_status};

pub(super) fn is_failure(status: TaskStatus) -> bool {
    matches!(
        status,
        TaskStatus::Failed | TaskStatus::TimedOut | TaskStatus::Lost | TaskStatus::Canceled
    )
}

/// Recomputes the deployment's status from its tasks, after any change.
pub fn settle(deployment: &mut Deployment) {
    // Nothing of a deployment waiting for its approval has run.
    if deployment.status == DeploymentStatus::PendingApproval {
        return;
    }
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
    super::on_failure::note_restored(deployment);
}

/// The deploy tasks of the latest run (a redeploy adds a new round; the
/// tasks of one round share their creation time).
pub(super) fn deploy_tasks(deployment: &Deployment) -> impl Iterator<Item = &Task> {
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
pub(super) fn settle_build(deployment: &mut Deployment) -> bool {
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

pub(super) fn settle_deploy(deployment: &mut Deployment) {
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
pub(super) fn settle_round(
    deployment: &mut Deployment,
    kind: TaskKind,
    done_status: DeploymentStatus,
) {
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
pub(super) fn prefixed(host: &str, message: &str) -> String {
    if message.contains(host) {
        message.to_string()
    } else {
        format!("{host}: {message}")
    }
}
