//! The lifecycle actions on existing deployments: cancel, retry, redeploy,
//! rollback and purge, and the audit log they write to.

use berth_proto::v1::{ListAuditRequest, RerunRequest, RollbackRequest};
use berth_shared::id::DeploymentId;
use berth_shared::record::{Deployment, Task, TaskKind, Timestamp};
use berth_shared::state::{DeploymentStatus, TaskStatus};
use tonic::Status;
use tracing::info;

use super::deploy::{Snapshot, announce, check_trigger_rate, from_snapshot, submitted};
use crate::grpc::auth::Caller;
use crate::progress;
use crate::server::Context;
use crate::store::{ListQuery, StoreError};

/// `berth cancel`: stops a running (or queued) deployment on every host.
pub async fn cancel(
    context: &Context,
    caller: &Caller,
    id: DeploymentId,
) -> Result<Deployment, Status> {
    let who = caller.who();
    let deployment = context
        .dispatcher
        .halt(id, DeploymentStatus::Canceled, format!("canceled by {who}"))
        .await?;
    info!(deployment_id = %id, %who, "deployment canceled");
    audit(context, &who, "cancel", &deployment, "canceled").await?;
    Ok(deployment)
}

/// `berth retry`: a new deployment from a failed, canceled or timed-out
/// one's snapshot, recording its parent and the retry count.
pub async fn retry(
    context: &Context,
    caller: &Caller,
    request: RerunRequest,
) -> Result<Deployment, Status> {
    let parent = context
        .store
        .get_deployment(super::parse_deployment_id(&request.id)?)?;
    if !matches!(
        parent.status,
        DeploymentStatus::Failed | DeploymentStatus::Canceled | DeploymentStatus::TimedOut
    ) {
        let hint = match parent.status {
            DeploymentStatus::Deployed => "; `berth redeploy` runs a deployed one again",
            DeploymentStatus::Stopped => {
                "; start a stopped one again with `berth start APP --env E` (or `berth redeploy ID`)"
            }
            status if status.is_running() => "; it is still running",
            _ => "",
        };
        return Err(Status::aborted(format!(
            "deployment {} is {}; retry runs a failed, canceled or timed-out deployment again{hint}",
            parent.id, parent.status
        )));
    }
    let mut deployment = from_snapshot(context, caller, Snapshot::of(&parent), None)?;
    deployment.parent_id = Some(parent.id);
    deployment.retry_count = parent.retry_count + 1;
    deployment.origin = "retry".into();
    let reason = format!(
        "retry {} of {} ({}) by {}",
        deployment.retry_count,
        parent.id,
        parent.status,
        caller.who()
    );
    progress::note(&mut deployment, "deployment", None, "pending", Some(reason));
    create(
        context,
        caller,
        "retry",
        deployment,
        request.force,
        request.queue,
    )
    .await
}

/// `berth rollback`: a new deployment from the snapshot of the app's
/// previous successful deployment, or of the one named.
pub async fn rollback(
    context: &Context,
    caller: &Caller,
    request: RollbackRequest,
) -> Result<Deployment, Status> {
    let environment =
        super::resolve::resolve_environment(context, &request.app, &request.environment)?;
    let app = request.app.clone();
    let history = context.store.list_deployments(&ListQuery {
        app: Some(app.clone()),
        environment: Some(environment.clone()),
        limit: 1000,
        ..Default::default()
    })?;
    let current = history
        .iter()
        .find(|deployment| deployment.status == DeploymentStatus::Deployed);
    let source = if request.to_id.is_empty() {
        // The newest earlier deployment that once reached `deployed`.
        history
            .iter()
            .filter(|deployment| current.is_none_or(|current| deployment.id < current.id))
            .find(|deployment| was_deployed(deployment))
            .ok_or_else(|| {
                Status::failed_precondition(format!(
                    "app `{app}` in environment `{environment}` has no earlier successful deployment to roll back to; `berth ls --app {app} --env {environment}` lists its history"
                ))
            })?
            .clone()
    } else {
        let id = super::parse_deployment_id(&request.to_id)?;
        let named = context.store.get_deployment(id)?;
        if named.app != app || named.environment != environment {
            return Err(Status::invalid_argument(format!(
                "--to {id} is a deployment of `{}` in `{}`, not of `{app}` in `{environment}`",
                named.app, named.environment
            )));
        }
        if !was_deployed(&named) {
            return Err(Status::failed_precondition(format!(
                "deployment {id} never reached deployed (it is {}); roll back to one that ran, see `berth ls --app {app} --env {environment}`",
                named.status
            )));
        }
        if current.is_some_and(|current| current.id == id) {
            return Err(Status::failed_precondition(format!(
                "deployment {id} is what `{app}` in `{environment}` runs now; nothing to roll back"
            )));
        }
        named
    };
    let mut deployment = from_snapshot(context, caller, Snapshot::of(&source), None)?;
    deployment.parent_id = Some(source.id);
    deployment.origin = "rollback".into();
    let from = current.map_or_else(
        || "no deployed version".to_string(),
        |current| format!("{} ({})", current.version, current.id),
    );
    let reason = format!(
        "rollback by {} from {from} to {} ({})",
        caller.who(),
        source.version,
        source.id
    );
    progress::note(&mut deployment, "deployment", None, "pending", Some(reason));
    create(
        context,
        caller,
        "rollback",
        deployment,
        request.force,
        request.queue,
    )
    .await
}

fn was_deployed(deployment: &Deployment) -> bool {
    deployment.status == DeploymentStatus::Deployed
        || deployment
            .transitions
            .iter()
            .any(|transition| transition.subject == "deployment" && transition.to == "deployed")
}

async fn create(
    context: &Context,
    caller: &Caller,
    action: &str,
    deployment: Deployment,
    force: bool,
    queue: bool,
) -> Result<Deployment, Status> {
    check_trigger_rate(context, &deployment.app)?;
    let created = context.store.create_deployment(&deployment, force, queue)?;
    submitted(context, caller, action, deployment, &created).await
}

/// `berth redeploy`: runs a deployed deployment again on the hosts it runs
/// on (`deployed → deploying`).
pub async fn redeploy(
    context: &Context,
    caller: &Caller,
    request: RerunRequest,
) -> Result<Deployment, Status> {
    let id = super::parse_deployment_id(&request.id)?;
    if request.queue {
        return Err(Status::invalid_argument(
            "--queue does not apply to redeploy; wait for the running deployment or use --force",
        ));
    }
    run_again(context, caller, id, request.force, "redeploy").await
}

/// `berth start`: runs an app's latest stopped deployment again on its
/// hosts (a redeploy of it).
pub async fn start(
    context: &Context,
    caller: &Caller,
    request: berth_proto::v1::StopAppRequest,
) -> Result<Deployment, Status> {
    let environment =
        super::resolve::resolve_environment(context, &request.app, &request.environment)?;
    let latest = context
        .store
        .latest(&request.app, &environment, &[DeploymentStatus::Deployed, DeploymentStatus::Stopped])?
        .ok_or_else(|| {
            Status::not_found(format!(
                "app `{}` has no stopped deployment in environment `{environment}`; see `berth status` (deploy it with `berth deploy`)",
                request.app
            ))
        })?;
    if latest.status == DeploymentStatus::Deployed {
        return Err(Status::already_exists(format!(
            "app `{}` in `{environment}` runs already (deployment {}, version {}); `berth redeploy {}` runs it again",
            request.app, latest.id, latest.version, latest.id
        )));
    }
    run_again(context, caller, latest.id, false, "start").await
}

/// Runs a deployed or stopped deployment again on the hosts it ran on.
async fn run_again(
    context: &Context,
    caller: &Caller,
    id: DeploymentId,
    force: bool,
    action: &str,
) -> Result<Deployment, Status> {
    let app = context.store.get_deployment(id)?.app;
    check_trigger_rate(context, &app)?;
    let who = caller.who();
    let now = Timestamp::now();
    let (deployment, ()) = context
        .store
        .update_deployment_claiming(id, force, |deployment| {
            if !matches!(
                deployment.status,
                DeploymentStatus::Deployed | DeploymentStatus::Stopped
            ) {
                return Err(StoreError::Conflict(format!(
                    "deployment {id} is {}; redeploy runs a deployed or stopped one again (`berth retry` re-runs a failed one)",
                    deployment.status
                )));
            }
            let hosts: Vec<Task> = deployment
                .tasks
                .iter()
                .filter(|task| task.kind == TaskKind::Deploy && task.status == TaskStatus::Done)
                .cloned()
                .collect();
            let mut seen = Vec::new();
            for host in hosts {
                if !seen.contains(&host.agent_id) {
                    seen.push(host.agent_id);
                    deployment
                        .tasks
                        .push(Task::queued(TaskKind::Deploy, &host.host, host.agent_id, now));
                }
            }
            deployment.error_step = None;
            deployment.error_message = None;
            deployment.deadline_ms = Some(crate::dispatcher::deadline(deployment));
            progress::set_status(
                deployment,
                DeploymentStatus::Deploying,
                Some(format!("{action} by {who}")),
            );
            Ok(())
        })?;
    info!(deployment_id = %id, %who, action, "run again");
    announce(context, &who, action, "requested", deployment).await
}

/// `berth purge`: forgets a settled deployment's record and logs.
pub async fn purge(
    context: &Context,
    caller: &Caller,
    id: DeploymentId,
) -> Result<serde_json::Value, Status> {
    let (deployment, lines) = context.store.purge_deployment(id)?;
    let who = caller.who();
    audit(context, &who, "purge", &deployment, "purged").await?;
    info!(deployment_id = %id, %who, log_lines = lines, "deployment purged");
    Ok(serde_json::json!({
        "id": id,
        "app": deployment.app,
        "environment": deployment.environment,
        "purged": true,
        "log_lines_removed": lines,
    }))
}

async fn audit(
    context: &Context,
    who: &str,
    action: &str,
    deployment: &Deployment,
    outcome: &str,
) -> Result<(), Status> {
    let target = format!(
        "{} {} {}",
        deployment.app, deployment.environment, deployment.id
    );
    context.store.audit(who, action, &target, outcome)?;
    context.store.flush().await?;
    Ok(())
}

/// The newest audit entries, optionally only those about `target`.
pub fn audit_log(
    context: &Context,
    request: &ListAuditRequest,
) -> Result<Vec<crate::store::AuditEntry>, Status> {
    let limit = request.limit.clamp(1, 10_000) as usize;
    if request.target.len() > 200 {
        return Err(Status::invalid_argument(
            "--target is longer than 200 characters",
        ));
    }
    let entries = context.store.audit_entries(if request.target.is_empty() {
        limit
    } else {
        100_000
    })?;
    Ok(entries
        .into_iter()
        .filter(|entry| entry.target.contains(&request.target))
        .take(limit)
        .collect())
}
