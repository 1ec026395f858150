//! `berth delete`: a deployment torn down on every host it touched, and
//! with `--with-resources` (`--purge-volumes`) its app's resources (and
//! their data) too.

use berth_shared::id::DeploymentId;
use berth_shared::record::{Deployment, Task, TaskKind, Timestamp};
use berth_shared::state::DeploymentStatus;

use super::super::create::announce;
use super::super::{Caller, Code, Error, Result};
use crate::progress;
use crate::server::Context;
use crate::store::{ListQuery, Role, StoreError};

/// What a delete takes besides the app's containers (`berth delete`).
#[derive(Clone, Debug, Default)]
pub struct Teardown {
    /// The app's resource containers and its network too.
    pub with_resources: bool,
    /// The resources' named volumes too (implies `with_resources`).
    pub purge_volumes: bool,
    /// The app's name, given back to confirm `purge_volumes`.
    pub confirm: String,
}

/// Tears a deployment down on every host it touched: its containers and
/// its work directory. Status `deleted` once every host is done. A caller
/// below admin may not delete what runs in a protected environment.
pub async fn delete(
    context: &Context,
    caller: &Caller,
    id: DeploymentId,
    teardown: &Teardown,
) -> Result<Deployment> {
    caller.require(Role::Operator)?;
    let current = context.store.get_deployment(id)?;
    let with_resources = teardown.with_resources || teardown.purge_volumes;
    if teardown.purge_volumes && teardown.confirm != current.app {
        return Err(Error::new(
            Code::ResourceConfirm,
            format!(
                "--purge-volumes removes the data of app `{}`'s resources in `{}` for good; confirm with --confirm {} (the app's name){}",
                current.app,
                current.environment,
                current.app,
                if teardown.confirm.is_empty() {
                    String::new()
                } else {
                    format!(", not `{}`", teardown.confirm)
                }
            ),
        ));
    }
    if with_resources {
        resources_unused_elsewhere(context, &current)?;
    }
    if current.status == DeploymentStatus::Deployed {
        // Deleting what runs is a stop and more; it waits for nothing.
        super::super::approvals::refuse_unheld(
            context,
            caller,
            &current.app,
            &current.environment,
            &format!("deleting deployment {id}, which runs now,"),
            &format!(
                "stop it first with `berth stop {} --env {}` (it waits for the approval)",
                current.app, current.environment
            ),
        )?;
    }
    let now = Timestamp::now();
    let who = caller.who();
    let (deployment, ()) = context.store.update_deployment(id, |deployment| {
        if deployment.status.is_running() {
            return Err(StoreError::Conflict(format!(
                "deployment {id} is {}; wait for it to end before deleting it",
                deployment.status
            )));
        }
        if deployment.status == DeploymentStatus::Deleted {
            return Err(StoreError::Conflict(format!(
                "deployment {id} is already deleted"
            )));
        }
        if deployment.tasks.iter().any(|task| !task.status.is_final()) {
            return Err(StoreError::Conflict(format!(
                "deployment {id} has work in progress on its hosts; wait for it"
            )));
        }
        // Every host the deployment reached may hold something of it; one
        // delete per host, whatever number of deploy rounds reached it.
        let mut touched: Vec<Task> = Vec::new();
        for task in &deployment.tasks {
            let reached = task.kind == TaskKind::Deploy && task.assigned_at.is_some();
            if reached && !touched.iter().any(|seen| seen.agent_id == task.agent_id) {
                touched.push(task.clone());
            }
        }
        deployment.error_step = None;
        deployment.error_message = None;
        if touched.is_empty() {
            progress::set_status(
                deployment,
                DeploymentStatus::Deleted,
                Some(format!("deleted by {who}; nothing was created on any host")),
            );
            return Ok(());
        }
        for host in touched {
            let mut task = Task::queued(TaskKind::Delete, &host.host, host.agent_id, now);
            task.with_resources = with_resources;
            task.purge_volumes = teardown.purge_volumes;
            deployment.tasks.push(task);
        }
        progress::note(
            deployment,
            "deployment",
            None,
            "deleting",
            Some(format!("delete by {who}")),
        );
        Ok(())
    })?;
    announce(context, &who, "delete", "requested", deployment).await
}

/// `--with-resources` takes the resources of the app in its environment;
/// refused while another of its deployments runs on them.
fn resources_unused_elsewhere(context: &Context, deployment: &Deployment) -> Result<()> {
    let running = context.store.list_deployments(&ListQuery {
        app: Some(deployment.app.clone()),
        environment: Some(deployment.environment.clone()),
        statuses: vec![DeploymentStatus::Deployed],
        limit: 2,
        ..Default::default()
    })?;
    if let Some(other) = running.iter().find(|other| other.id != deployment.id) {
        return Err(Error::new(
            Code::ResourceInUse,
            format!(
                "deployment {} of app `{}` in `{}` runs now and uses its resources; delete that one with --with-resources (after `berth stop {} --env {}`), or delete {} without --with-resources",
                other.id,
                deployment.app,
                deployment.environment,
                deployment.app,
                deployment.environment,
                deployment.id
            ),
        ));
    }
    Ok(())
}
