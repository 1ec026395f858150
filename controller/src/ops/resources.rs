//! `berth resource`: the volume snapshots an app's resources left on its
//! hosts (viewers read), and putting one back (operators; audited; in a
//! protected environment an admin's, since it cannot wait for approval).
//! The hosts asked are those the app's newest deployment in the
//! environment reached.

use std::time::Duration;

use berth_proto::v1::ResourceAsk;
use berth_shared::id::AgentId;
use berth_shared::record::{Deployment, Restored, SnapshotList, SnapshotView, TaskKind, Timestamp};

use super::{Caller, Code, Error, Result};
use crate::server::Context;
use crate::store::{ListQuery, Role};

/// How long a host may take to list its snapshots.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a restore may take (copying the archive in, the health check).
const RESTORE_TIMEOUT: Duration = Duration::from_secs(600);

/// Which resource's snapshots, of which app.
#[derive(Clone, Debug, Default)]
pub struct SnapshotQuery {
    pub app: String,
    pub environment: String,
    /// Empty for every resource.
    pub resource: String,
}

/// A snapshot to put back, on one host.
#[derive(Clone, Debug, Default)]
pub struct Restore {
    pub app: String,
    pub environment: String,
    pub resource: String,
    pub host: String,
    /// The snapshot's name, as `berth resource snapshots` lists it.
    pub snapshot: String,
}

/// The snapshots of the app's resources on the hosts it runs on.
pub async fn snapshots(
    context: &Context,
    caller: &Caller,
    query: &SnapshotQuery,
) -> Result<SnapshotList> {
    caller.require(Role::Viewer)?;
    let deployment = with_resources(context, &query.app, &query.environment, &query.resource)?;
    let mut list = SnapshotList::default();
    for (agent, host) in hosts(&deployment) {
        let ask = ResourceAsk {
            app: deployment.app.clone(),
            environment: deployment.environment.clone(),
            resource: query.resource.clone(),
            action: "snapshots".into(),
            ..Default::default()
        };
        match context
            .registry
            .ask_resource(agent, ask, LIST_TIMEOUT)
            .await
        {
            Ok(answer) if answer.error.is_empty() => {
                list.snapshots
                    .extend(answer.snapshots.into_iter().map(|file| SnapshotView {
                        host: host.clone(),
                        app: deployment.app.clone(),
                        environment: file.environment,
                        resource: file.resource,
                        volume: file.volume,
                        file: file.file,
                        taken_at: Timestamp(file.taken_at_ms),
                        bytes: file.bytes,
                    }));
            }
            Ok(answer) => list.unanswered.push(format!("{host}: {}", answer.error)),
            Err(why) => list.unanswered.push(format!("{host}: {why}")),
        }
    }
    list.snapshots.sort_by(|a, b| {
        (&a.host, &a.resource, a.taken_at).cmp(&(&b.host, &b.resource, b.taken_at))
    });
    Ok(list)
}

/// Puts a snapshot back into its resource's volume on one host: the
/// resource stops, its volume is made anew from the snapshot, and it
/// starts again and must pass its health check.
pub async fn restore(context: &Context, caller: &Caller, request: &Restore) -> Result<Restored> {
    caller.require(Role::Operator)?;
    if request.resource.is_empty() || request.snapshot.is_empty() || request.host.is_empty() {
        return Err(Error::invalid(
            "name the resource, the host and the snapshot: `berth resource restore APP --env E --resource db --host H SNAPSHOT` (`berth resource snapshots APP` lists them)",
        ));
    }
    if request.snapshot.contains('/') || request.snapshot.len() > 200 {
        return Err(Error::new(
            Code::SnapshotNotFound,
            format!(
                "`{}` is not a snapshot name; `berth resource snapshots {}` lists them",
                berth_shared::text::clip(&request.snapshot, 60),
                request.app
            ),
        ));
    }
    let deployment = with_resources(
        context,
        &request.app,
        &request.environment,
        &request.resource,
    )?;
    super::approvals::refuse_unheld(
        context,
        caller,
        &deployment.app,
        &deployment.environment,
        "restoring a resource's snapshot",
        "ask an admin to restore it",
    )?;
    let Some((agent, host)) = hosts(&deployment)
        .into_iter()
        .find(|(_, host)| host == &request.host)
    else {
        return Err(Error::new(
            Code::HostNotFound,
            format!(
                "app `{}` in `{}` does not run on host `{}`; `berth resource snapshots {}` lists the hosts with snapshots",
                deployment.app, deployment.environment, request.host, deployment.app
            ),
        ));
    };
    let ask = ResourceAsk {
        app: deployment.app.clone(),
        environment: deployment.environment.clone(),
        resource: request.resource.clone(),
        action: "restore".into(),
        snapshot: request.snapshot.clone(),
        ..Default::default()
    };
    let target = format!(
        "{} {} {} {}",
        deployment.app, deployment.environment, request.resource, host
    );
    let answer = context
        .registry
        .ask_resource(agent, ask, RESTORE_TIMEOUT)
        .await
        .map_err(|why| Error::new(Code::AgentOffline, format!("host {host}: {why}; nothing was restored unless its log says so, see `berth inspect {}`", deployment.app)))?;
    let outcome = if answer.error.is_empty() {
        format!("restored {}", request.snapshot)
    } else {
        format!("failed: {}", answer.error)
    };
    context
        .store
        .audit(&caller.who(), "resource.restore", &target, &outcome)?;
    context.store.flush().await?;
    if !answer.error.is_empty() {
        let code = if answer.error.starts_with("no snapshot") {
            Code::SnapshotNotFound
        } else {
            Code::ResourceRestoreFailed
        };
        return Err(Error::new(code, format!("host {host}: {}", answer.error)));
    }
    Ok(Restored {
        host,
        lines: answer.lines,
    })
}

/// The app's newest deployment in the environment that declares the
/// resource (any, when `resource` is empty).
fn with_resources(
    context: &Context,
    app: &str,
    environment: &str,
    resource: &str,
) -> Result<Deployment> {
    let environment = super::resolve::resolve_environment(context, app, environment)?;
    let recent = context.store.list_deployments(&ListQuery {
        app: Some(app.to_string()),
        environment: Some(environment.clone()),
        limit: 20,
        ..Default::default()
    })?;
    let Some(deployment) = recent
        .into_iter()
        .find(|deployment| !hosts(deployment).is_empty())
    else {
        return Err(Error::new(
            Code::AppNotFound,
            format!(
                "app `{app}` has reached no host in environment `{environment}`; see `berth status`"
            ),
        ));
    };
    let resources = &deployment.manifest.resources;
    if resources.is_empty() || (!resource.is_empty() && !resources.contains_key(resource)) {
        let known: Vec<&str> = resources.keys().map(String::as_str).collect();
        return Err(Error::new(
            Code::ResourceNotFound,
            format!(
                "app `{app}` in `{environment}` has no resource {}; {}",
                if resource.is_empty() {
                    String::new()
                } else {
                    format!("`{resource}`")
                },
                if known.is_empty() {
                    "its manifest declares no [resources.NAME]".to_string()
                } else {
                    format!("it has {}", known.join(", "))
                }
            ),
        ));
    }
    Ok(deployment)
}

/// The hosts a deployment's deploy tasks reached, once each.
fn hosts(deployment: &Deployment) -> Vec<(AgentId, String)> {
    let mut hosts: Vec<(AgentId, String)> = Vec::new();
    for task in &deployment.tasks {
        if task.kind == TaskKind::Deploy
            && task.assigned_at.is_some()
            && !hosts.iter().any(|(agent, _)| *agent == task.agent_id)
        {
            hosts.push((task.agent_id, task.host.clone()));
        }
    }
    hosts
}
