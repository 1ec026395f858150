//! What a failed rollout does with the hosts that already switched to the
//! new version (`[target] on_failure`): `rollback` gives each a `restore`
//! task that puts the previous deployed version back, `stop` gives each a
//! `stop` task, `leave` only says which hosts run what. Pure functions over
//! the failed deployment; the dispatcher stores and dispatches the result.

use berth_shared::id::AgentId;
use berth_shared::manifest::OnFailure;
use berth_shared::record::{Deployment, RestoreSource, Task, TaskKind, Timestamp};
use berth_shared::state::{DeploymentStatus, TaskStatus};

use super::{deploy_tasks, note, running_hosts};

/// The transition that marks a failed deployment's hosts as handled.
const PLANNED: &str = "on_failure";
/// The transition noting that a host runs the previous version again.
const RESTORED: &str = "restored";

/// True when `deployment` failed and its switched hosts were not handled.
pub fn needs_plan(deployment: &Deployment) -> bool {
    deployment.status == DeploymentStatus::Failed
        && !deployment
            .transitions
            .iter()
            .any(|transition| transition.subject == "deployment" && transition.to == PLANNED)
}

/// Decides what happens to the hosts of the failed `deployment` that run
/// its version, given the `previous` deployed deployment of the app and
/// environment (if any). Returns true when tasks were added.
pub fn plan(deployment: &mut Deployment, previous: Option<&Deployment>, now: Timestamp) -> bool {
    let switched: Vec<Task> = deploy_tasks(deployment)
        .filter(|task| task.status == TaskStatus::Done)
        .cloned()
        .collect();
    let on_failure = deployment.manifest.target.on_failure;
    let version = deployment.version.clone();
    if switched.is_empty() {
        let reason =
            "no host switched to the new version; every host keeps what it ran".to_string();
        note(deployment, "deployment", None, PLANNED, Some(reason));
        return false;
    }
    let names: Vec<&str> = switched.iter().map(|task| task.host.as_str()).collect();
    let names = names.join(", ");
    match on_failure {
        OnFailure::Leave => {
            let reason = format!(
                "on_failure = \"leave\": {names} keep version {version}; see `berth status` for what each host runs"
            );
            note(deployment, "deployment", None, PLANNED, Some(reason));
            false
        }
        OnFailure::Stop => {
            for task in &switched {
                let stop = Task::queued(TaskKind::Stop, &task.host, task.agent_id, now);
                deployment.tasks.push(stop);
            }
            let reason = format!("on_failure = \"stop\": stopping version {version} on {names}");
            note(deployment, "deployment", None, PLANNED, Some(reason));
            true
        }
        OnFailure::Rollback => rollback(deployment, previous, &switched, now),
    }
}

fn rollback(
    deployment: &mut Deployment,
    previous: Option<&Deployment>,
    switched: &[Task],
    now: Timestamp,
) -> bool {
    let version = deployment.version.clone();
    let Some(previous) = previous else {
        let names: Vec<&str> = switched.iter().map(|task| task.host.as_str()).collect();
        let reason = format!(
            "on_failure = \"rollback\": no earlier version of {} in {} was deployed, so {} keep version {version}",
            deployment.app,
            deployment.environment,
            names.join(", ")
        );
        note(deployment, "deployment", None, PLANNED, Some(reason));
        return false;
    };
    let mut restored = Vec::new();
    let mut stopped = Vec::new();
    for task in switched {
        match put_back(deployment, Some(previous), task.agent_id, &task.host, now) {
            TaskKind::Restore => restored.push(task.host.clone()),
            _ => stopped.push(task.host.clone()),
        }
    }
    deployment.restore_to = Some(RestoreSource::of(previous));
    for host in &restored {
        let reason = format!(
            "rolling back to version {} (deployment {})",
            previous.version, previous.id
        );
        note(deployment, host, None, "rolling_back", Some(reason));
    }
    for host in &stopped {
        let reason = format!(
            "did not run version {} before; stopping version {version}",
            previous.version
        );
        note(deployment, host, None, "stopping", Some(reason));
    }
    let reason = format!(
        "on_failure = \"rollback\": {} go back to version {} (deployment {}){}",
        if restored.is_empty() {
            "no host".to_string()
        } else {
            restored.join(", ")
        },
        previous.version,
        previous.id,
        if stopped.is_empty() {
            String::new()
        } else {
            format!("; {} stop version {version}", stopped.join(", "))
        }
    );
    note(deployment, "deployment", None, PLANNED, Some(reason));
    true
}

/// Adds the task that puts `host` back after the failed `deployment`: a
/// `restore` of `previous` when the host ran it, else a `stop` of the
/// failed version (also without a previous version to go back to).
/// Returns the kind added.
pub fn put_back(
    deployment: &mut Deployment,
    previous: Option<&Deployment>,
    agent: AgentId,
    host: &str,
    now: Timestamp,
) -> TaskKind {
    let ran_before = |previous: &Deployment| {
        running_hosts(previous)
            .iter()
            .any(|(held, _)| *held == agent)
    };
    let kind = match previous {
        Some(previous) if ran_before(previous) => {
            if deployment.restore_to.is_none() {
                deployment.restore_to = Some(RestoreSource::of(previous));
            }
            TaskKind::Restore
        }
        _ => TaskKind::Stop,
    };
    deployment.tasks.push(Task::queued(kind, host, agent, now));
    kind
}

/// Notes each finished `restore` task once: the host runs the previous
/// version again, or the restore failed and it still runs the new one.
pub fn note_restored(deployment: &mut Deployment) {
    let Some(source) = deployment.restore_to.clone() else {
        return;
    };
    let finished: Vec<Task> = deployment
        .tasks
        .iter()
        .filter(|task| task.kind == TaskKind::Restore && task.status.is_final())
        .cloned()
        .collect();
    for task in finished {
        let known = deployment.transitions.iter().any(|transition| {
            transition.subject == task.host
                && transition.to == RESTORED
                && transition.task == Some(task.id)
        });
        if known {
            continue;
        }
        let reason = if task.status == TaskStatus::Done {
            format!(
                "{} runs version {} (deployment {}) again",
                task.host, source.version, source.deployment_id
            )
        } else {
            format!(
                "{} could not go back to version {}: {}; it still runs version {}",
                task.host,
                source.version,
                task.error_message
                    .clone()
                    .unwrap_or_else(|| task.status.to_string()),
                deployment.version
            )
        };
        note(deployment, &task.host, None, RESTORED, Some(reason));
        if let Some(transition) = deployment.transitions.last_mut() {
            transition.task = Some(task.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use berth_shared::manifest::OnFailure;

    use super::*;

    /// A deployed previous version on `hosts`, and a failed new one whose
    /// tasks on the same agents ended as `outcomes` says.
    fn pair(outcomes: &[TaskStatus], on_failure: OnFailure) -> (Deployment, Deployment) {
        let hosts = ["a", "b", "c"];
        let mut previous = crate::testing::deployment(&hosts[..outcomes.len()], 0);
        previous.status = DeploymentStatus::Deployed;
        for task in &mut previous.tasks {
            task.status = TaskStatus::Done;
        }
        let mut failed = crate::testing::deployment(&hosts[..outcomes.len()], 0);
        failed.version = "2".into();
        failed.status = DeploymentStatus::Failed;
        failed.manifest.target.on_failure = on_failure;
        for (task, (status, old)) in failed
            .tasks
            .iter_mut()
            .zip(outcomes.iter().zip(&previous.tasks))
        {
            task.status = *status;
            task.agent_id = old.agent_id;
        }
        (previous, failed)
    }

    fn added(failed: &Deployment, kind: TaskKind) -> Vec<String> {
        failed
            .tasks
            .iter()
            .filter(|task| task.kind == kind)
            .map(|task| task.host.clone())
            .collect()
    }

    #[test]
    fn rollback_restores_only_the_hosts_that_switched_and_only_once() {
        let (previous, mut failed) = pair(
            &[TaskStatus::Done, TaskStatus::Failed, TaskStatus::Canceled],
            OnFailure::Rollback,
        );
        assert!(needs_plan(&failed));
        assert!(plan(&mut failed, Some(&previous), Timestamp::now()));
        assert_eq!(added(&failed, TaskKind::Restore), ["a"]);
        assert_eq!(
            failed
                .restore_to
                .as_ref()
                .map(|source| source.deployment_id),
            Some(previous.id)
        );
        assert!(!needs_plan(&failed), "planned once");
        let planned = failed.transitions.last().expect("a transition");
        assert!(
            planned
                .reason
                .as_deref()
                .unwrap_or_default()
                .contains("a go back to version 1"),
            "{planned:?}"
        );

        // The restore finishing is noted once, naming what the host runs.
        let restore = failed
            .tasks
            .iter_mut()
            .find(|task| task.kind == TaskKind::Restore)
            .expect("restore task");
        restore.status = TaskStatus::Done;
        note_restored(&mut failed);
        note_restored(&mut failed);
        let restored: Vec<_> = failed
            .transitions
            .iter()
            .filter(|transition| transition.to == RESTORED)
            .collect();
        assert_eq!(restored.len(), 1);
        assert_eq!(
            restored[0].reason.as_deref(),
            Some(format!("a runs version 1 (deployment {}) again", previous.id).as_str())
        );
    }

    #[test]
    fn a_host_new_to_the_app_stops_the_failed_version() {
        let (mut previous, mut failed) = pair(
            &[TaskStatus::Done, TaskStatus::Done, TaskStatus::Failed],
            OnFailure::Rollback,
        );
        previous.tasks.remove(1);
        assert!(plan(&mut failed, Some(&previous), Timestamp::now()));
        assert_eq!(added(&failed, TaskKind::Restore), ["a"]);
        assert_eq!(added(&failed, TaskKind::Stop), ["b"]);
    }

    #[test]
    fn stop_leave_and_nothing_to_go_back_to() {
        let (previous, mut failed) = pair(&[TaskStatus::Done, TaskStatus::Failed], OnFailure::Stop);
        assert!(plan(&mut failed, Some(&previous), Timestamp::now()));
        assert_eq!(added(&failed, TaskKind::Stop), ["a"]);

        let (previous, mut failed) =
            pair(&[TaskStatus::Done, TaskStatus::Failed], OnFailure::Leave);
        assert!(!plan(&mut failed, Some(&previous), Timestamp::now()));
        assert!(added(&failed, TaskKind::Restore).is_empty());
        assert!(!needs_plan(&failed));

        let (_, mut failed) = pair(&[TaskStatus::Done, TaskStatus::Failed], OnFailure::Rollback);
        assert!(!plan(&mut failed, None, Timestamp::now()));
        let reason = failed
            .transitions
            .last()
            .and_then(|t| t.reason.clone())
            .unwrap_or_default();
        assert!(reason.contains("no earlier version"), "{reason}");
    }
}
