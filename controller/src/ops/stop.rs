//! Stopping apps (`berth stop`, also by selector) and deleting
//! deployments from their hosts.

use berth_shared::id::AgentId;
use berth_shared::record::{ApprovalAction, Deployment, Task, TaskKind, Timestamp};
use berth_shared::state::DeploymentStatus;

use super::create::announce;
use super::{Caller, Code, Error, Result};
use crate::progress;
use crate::server::Context;
use crate::store::{ListQuery, Role, StoreError};

mod delete;
pub use delete::{Teardown, delete};

/// An app in an environment, as a request names it; an empty environment
/// means the app's only one.
#[derive(Clone, Debug, Default)]
pub struct AppRef {
    pub app: String,
    pub environment: String,
}

/// Stops an app: runs `[stop]` on the hosts of its deployed deployment, or
/// marks it stopped when it has no stop commands. `with_resources` stops
/// its resources too. In a protected environment a caller below admin gets
/// the deployment back with the stop waiting for its approval
/// (`ops::approvals`); a stop of its resources cannot wait and is refused.
pub async fn stop(
    context: &Context,
    caller: &Caller,
    request: &AppRef,
    with_resources: bool,
) -> Result<Deployment> {
    caller.require(Role::Operator)?;
    let environment =
        super::resolve::resolve_environment(context, &request.app, &request.environment)?;
    let current = context
        .store
        .list_deployments(&ListQuery {
            app: Some(request.app.clone()),
            environment: Some(environment.clone()),
            statuses: vec![DeploymentStatus::Deployed],
            limit: 1,
            ..Default::default()
        })?
        .into_iter()
        .next()
        .ok_or_else(|| Error::new(Code::AppNotFound, format!("app `{}` has no deployed deployment in environment `{environment}`; see `berth status`", request.app)))?;
    if with_resources {
        super::approvals::refuse_unheld(
            context,
            caller,
            &current.app,
            &current.environment,
            "stopping the app's resources",
            &format!(
                "stop the app alone with `berth stop {} --env {}` (it waits for the approval), or ask an admin",
                current.app, current.environment
            ),
        )?;
    }
    if let Some(approval) = super::approvals::required(
        context,
        caller,
        &current.app,
        &current.environment,
        ApprovalAction::Stop,
    )? {
        return super::approvals::hold_change(context, &current, approval, check_stoppable).await;
    }
    let now = Timestamp::now();
    let who = caller.who();
    let (deployment, ()) = context.store.update_deployment(current.id, |deployment| {
        add_stop(deployment, &who, now, with_resources)
    })?;
    announce(context, &who, "stop", "requested", deployment).await
}

/// Refuses a stop of a deployment that is not deployed now, or stopping.
fn check_stoppable(deployment: &Deployment) -> Result<(), StoreError> {
    if deployment.status != DeploymentStatus::Deployed {
        return Err(StoreError::Conflict(format!(
            "deployment {} is {} now, not deployed",
            deployment.id, deployment.status
        )));
    }
    if deployment
        .tasks
        .iter()
        .any(|task| task.kind == TaskKind::Stop && !task.status.is_final())
    {
        return Err(StoreError::Conflict(format!(
            "deployment {} is already stopping",
            deployment.id
        )));
    }
    Ok(())
}

/// Stops a deployed deployment on its hosts (`by` names who asked, and
/// who approved): a stop task per host, or `stopped` at once when there
/// is nothing to run. Checked inside the caller's transaction, so two
/// concurrent stops cannot both add stop tasks.
pub(super) fn add_stop(
    deployment: &mut Deployment,
    by: &str,
    now: Timestamp,
    with_resources: bool,
) -> Result<(), StoreError> {
    check_stoppable(deployment)?;
    let with_resources = with_resources && !deployment.manifest.resources.is_empty();
    if deployment.manifest.stop.is_none()
        && deployment.manifest.container.is_none()
        && !with_resources
    {
        progress::set_status(
            deployment,
            DeploymentStatus::Stopped,
            Some(format!(
                "stopped by {by}; nothing to run on the hosts (no [stop], no [container])"
            )),
        );
        return Ok(());
    }
    // One stop per host, whatever number of deploy rounds (redeploys)
    // reached it.
    let hosts = progress::running_hosts(deployment);
    deployment.error_step = None;
    deployment.error_message = None;
    for (agent_id, host) in hosts {
        let mut task = Task::queued(TaskKind::Stop, &host, agent_id, now);
        task.with_resources = with_resources;
        deployment.tasks.push(task);
    }
    progress::note(
        deployment,
        "deployment",
        None,
        "stopping",
        Some(format!("stop by {by}")),
    );
    progress::settle(deployment);
    Ok(())
}

/// `berth stop --selector`: stops every deployed app (or the one named) on
/// the hosts whose labels match, each stop recorded against its
/// deployment. A caller below admin whose selector reaches a protected
/// environment is refused (`approval/required`) before anything stops. A deployment stopped on only some of its hosts stays
/// `deployed` and records which hosts stopped.
pub async fn stop_selected(
    context: &Context,
    caller: &Caller,
    selector: &str,
    app: &str,
) -> Result<Vec<Deployment>> {
    caller.require(Role::Operator)?;
    if selector.trim().is_empty() {
        return Err(Error::invalid(
            "--selector is empty; name the hosts, e.g. --selector role=web (or stop one app with `berth stop APP --env E`)",
        ));
    }
    let agents = super::target::select_agents(context, selector)?;
    if agents.is_empty() {
        return Err(Error::new(
            Code::TargetNoMatch,
            format!(
                "no agent matches the selector `{}`; see `berth agents ls`",
                selector
            ),
        ));
    }
    let selected: Vec<AgentId> = agents.iter().map(|agent| agent.id).collect();
    let deployed = context.store.list_deployments(&ListQuery {
        app: Some(app.to_string()).filter(|app| !app.is_empty()),
        statuses: vec![DeploymentStatus::Deployed],
        limit: usize::MAX,
        ..Default::default()
    })?;
    let deployed: Vec<Deployment> = deployed
        .into_iter()
        .filter(|candidate| {
            progress::running_hosts(candidate)
                .into_iter()
                .any(|(agent, _)| selected.contains(&agent))
        })
        .collect();
    // All or nothing: a selector reaching a protected environment is
    // refused before anything stops.
    for candidate in &deployed {
        super::approvals::refuse_unheld(
            context,
            caller,
            &candidate.app,
            &candidate.environment,
            &format!("berth stop --selector {selector}"),
            &format!(
                "stop that app alone with `berth stop {} --env {}` (it waits for the approval)",
                candidate.app, candidate.environment
            ),
        )?;
    }
    let who = caller.who();
    let now = Timestamp::now();
    let mut stopped = Vec::new();
    for candidate in deployed {
        let changed = context
            .store
            .update_deployment(candidate.id, |deployment| {
                if deployment.status != DeploymentStatus::Deployed
                    || deployment
                        .tasks
                        .iter()
                        .any(|task| task.kind == TaskKind::Stop && !task.status.is_final())
                {
                    return Ok(false);
                }
                let hosts: Vec<(AgentId, String)> = progress::running_hosts(deployment)
                    .into_iter()
                    .filter(|(agent, _)| selected.contains(agent))
                    .collect();
                if hosts.is_empty() {
                    return Ok(false);
                }
                let names: Vec<&str> = hosts.iter().map(|(_, name)| name.as_str()).collect();
                let reason = format!(
                    "stop on {} by {who} (--selector {})",
                    names.join(", "),
                    selector
                );
                if deployment.manifest.stop.is_none() && deployment.manifest.container.is_none() {
                    progress::note(deployment, "deployment", None, "stopped", Some(reason));
                    for (_, host) in &hosts {
                        progress::note(
                            deployment,
                            host,
                            None,
                            "stopped",
                            Some("nothing to run on the host (no [stop], no [container])".into()),
                        );
                    }
                    if progress::running_hosts(deployment)
                        .iter()
                        .all(|(agent, _)| selected.contains(agent))
                    {
                        progress::set_status(
                            deployment,
                            DeploymentStatus::Stopped,
                            Some("stopped on every host".into()),
                        );
                    }
                    return Ok(true);
                }
                for (agent, host) in &hosts {
                    deployment
                        .tasks
                        .push(Task::queued(TaskKind::Stop, host, *agent, now));
                }
                progress::note(deployment, "deployment", None, "stopping", Some(reason));
                progress::settle(deployment);
                Ok(true)
            })?;
        if let (deployment, true) = changed {
            stopped.push(announce(context, &who, "stop", "requested", deployment).await?);
        }
    }
    if stopped.is_empty() {
        let what = if app.is_empty() {
            "no berth-managed app".to_string()
        } else {
            format!("app `{app}` is not")
        };
        return Err(Error::new(
            Code::AppNotFound,
            format!(
                "{what} deployed on the hosts matching --selector `{}`; see `berth status`",
                selector
            ),
        ));
    }
    Ok(stopped)
}
