//! Running a deployment's snapshot again: retry (a failed one), redeploy
//! and start (a deployed or stopped one), and rollback (an earlier one).
//! In a protected environment a caller below admin waits for an approval
//! (`ops::approvals`): a retry or rollback is a new deployment in
//! `pending_approval`, a redeploy or start a pending approval on its
//! deployment.

use berth_shared::id::DeploymentId;
use berth_shared::record::{ApprovalAction, Deployment, Task, TaskKind, Timestamp};
use berth_shared::state::{DeploymentStatus, TaskStatus};
use tracing::info;

use super::create::{Snapshot, announce, check_trigger_rate, from_snapshot, submitted};
use super::provenance::Trigger;
use super::stop::AppRef;
use super::{Caller, Code, Error, Result};
use crate::progress;
use crate::server::Context;
use crate::store::{ListQuery, Role, StoreError};

/// How a re-run meets a deployment of the app that runs already.
#[derive(Clone, Copy, Debug, Default)]
pub struct Claim {
    /// Start anyway, beside it.
    pub force: bool,
    /// Wait for it to end, then start.
    pub queue: bool,
}

/// `berth rollback`: the app, and the deployment to go back to (the
/// newest earlier one that reached `deployed` when none is named).
#[derive(Clone, Debug, Default)]
pub struct Rollback {
    pub app: AppRef,
    pub to: Option<DeploymentId>,
    pub claim: Claim,
}

/// `berth retry`: a new deployment from a failed, canceled or timed-out
/// one's snapshot, recording its parent and the retry count.
pub async fn retry(
    context: &Context,
    caller: &Caller,
    id: DeploymentId,
    claim: Claim,
) -> Result<Deployment> {
    caller.require(Role::Operator)?;
    let parent = context.store.get_deployment(id)?;
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
        return Err(Error::new(
            Code::DeploymentInvalidState,
            format!(
                "deployment {} is {}; retry runs a failed, canceled or timed-out deployment again{hint}",
                parent.id, parent.status
            ),
        ));
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
    create(context, caller, ApprovalAction::Retry, deployment, claim).await
}

/// `berth rollback`: a new deployment from the snapshot of the app's
/// previous successful deployment, or of the one named.
pub async fn rollback(
    context: &Context,
    caller: &Caller,
    request: &Rollback,
) -> Result<Deployment> {
    caller.require(Role::Operator)?;
    let environment =
        super::resolve::resolve_environment(context, &request.app.app, &request.app.environment)?;
    let app = request.app.app.clone();
    let history = context.store.list_deployments(&ListQuery {
        app: Some(app.clone()),
        environment: Some(environment.clone()),
        limit: 1000,
        ..Default::default()
    })?;
    let current = history
        .iter()
        .find(|deployment| deployment.status == DeploymentStatus::Deployed);
    let source = match request.to {
        // The newest earlier deployment that once reached `deployed`.
        None => history
            .iter()
            .filter(|deployment| current.is_none_or(|current| deployment.id < current.id))
            .find(|deployment| was_deployed(deployment))
            .ok_or_else(|| {
                Error::new(Code::DeploymentNoRollbackTarget, format!(
                    "app `{app}` in environment `{environment}` has no earlier successful deployment to roll back to; `berth ls --app {app} --env {environment}` lists its history"
                ))
            })?
            .clone(),
        Some(id) => {
        let named = context.store.get_deployment(id)?;
        if named.app != app || named.environment != environment {
            return Err(Error::invalid(format!(
                "rollback target {id} is a deployment of `{}` in `{}`, not of `{app}` in `{environment}`",
                named.app, named.environment
            )));
        }
        if !was_deployed(&named) {
            return Err(Error::new(Code::DeploymentNoRollbackTarget, format!(
                "deployment {id} never reached deployed (it is {}); roll back to one that ran, see `berth ls --app {app} --env {environment}`",
                named.status
            )));
        }
        if current.is_some_and(|current| current.id == id) {
            return Err(Error::new(Code::DeploymentNoRollbackTarget, format!(
                "deployment {id} is what `{app}` in `{environment}` runs now; nothing to roll back"
            )));
        }
        named
        }
    };
    let snapshot = Snapshot {
        trigger: Trigger::Rollback,
        ..Snapshot::of(&source)
    };
    let mut deployment = from_snapshot(context, caller, snapshot, None)?;
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
        ApprovalAction::Rollback,
        deployment,
        request.claim,
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

/// Stores a retry's or rollback's new deployment (held for its approval
/// in a protected environment) and hands it on.
async fn create(
    context: &Context,
    caller: &Caller,
    action: ApprovalAction,
    mut deployment: Deployment,
    claim: Claim,
) -> Result<Deployment> {
    super::windows::check(
        context,
        caller,
        &deployment.app,
        &deployment.environment,
        claim.force,
    )
    .await?;
    check_trigger_rate(context, &deployment.app)?;
    if let Some(approval) = super::approvals::required(
        context,
        caller,
        &deployment.app,
        &deployment.environment,
        action,
    )? {
        progress::approval::hold(&mut deployment, approval);
    }
    let created = context
        .store
        .create_deployment(&deployment, claim.force, claim.queue)?;
    submitted(context, caller, action.as_str(), deployment, &created).await
}

/// `berth redeploy`: runs a deployed deployment again on the hosts it runs
/// on (`deployed → deploying`).
pub async fn redeploy(
    context: &Context,
    caller: &Caller,
    id: DeploymentId,
    claim: Claim,
) -> Result<Deployment> {
    caller.require(Role::Operator)?;
    if claim.queue {
        return Err(Error::invalid(
            "queueing does not apply to redeploy; wait for the running deployment or force it",
        ));
    }
    run_again(context, caller, id, claim.force, "redeploy").await
}

/// `berth start`: runs an app's latest stopped deployment again on its
/// hosts (a redeploy of it).
pub async fn start(context: &Context, caller: &Caller, request: &AppRef) -> Result<Deployment> {
    caller.require(Role::Operator)?;
    let environment =
        super::resolve::resolve_environment(context, &request.app, &request.environment)?;
    let latest = context
        .store
        .latest(&request.app, &environment, &[DeploymentStatus::Deployed, DeploymentStatus::Stopped])?
        .ok_or_else(|| {
            Error::new(Code::AppNotFound, format!(
                "app `{}` has no stopped deployment in environment `{environment}`; see `berth status` (deploy it with `berth deploy`)",
                request.app
            ))
        })?;
    if latest.status == DeploymentStatus::Deployed {
        return Err(Error::new(
            Code::AppAlreadyRunning,
            format!(
                "app `{}` in `{environment}` runs already (deployment {}, version {}); `berth redeploy {}` runs it again",
                request.app, latest.id, latest.version, latest.id
            ),
        ));
    }
    run_again(context, caller, latest.id, false, "start").await
}

/// Runs a deployed or stopped deployment again on the hosts it ran on; in
/// a protected environment a caller below admin gets it back with the run
/// waiting for its approval.
async fn run_again(
    context: &Context,
    caller: &Caller,
    id: DeploymentId,
    force: bool,
    action: &str,
) -> Result<Deployment> {
    let again = context.store.get_deployment(id)?;
    super::windows::check(context, caller, &again.app, &again.environment, force).await?;
    check_trigger_rate(context, &again.app)?;
    let held = if action == "start" {
        ApprovalAction::Start
    } else {
        ApprovalAction::Redeploy
    };
    if let Some(approval) =
        super::approvals::required(context, caller, &again.app, &again.environment, held)?
    {
        return super::approvals::hold_change(context, &again, approval, check_runnable).await;
    }
    let who = caller.who();
    let now = Timestamp::now();
    let (deployment, ()) = context
        .store
        .update_deployment_claiming(id, force, |deployment| {
            add_round(deployment, action, &who, now)
        })?;
    info!(deployment_id = %id, %who, action, "run again");
    announce(context, &who, action, "requested", deployment).await
}

/// Refuses to run a deployment again unless it is deployed or stopped.
fn check_runnable(deployment: &Deployment) -> Result<(), StoreError> {
    if !matches!(
        deployment.status,
        DeploymentStatus::Deployed | DeploymentStatus::Stopped
    ) {
        return Err(StoreError::Conflict(format!(
            "deployment {} is {}; redeploy runs a deployed or stopped one again (`berth retry` re-runs a failed one)",
            deployment.id, deployment.status
        )));
    }
    Ok(())
}

/// A new round of deploy tasks on the hosts the deployment ran on
/// (`deployed`/`stopped` → `deploying`), `by` naming who asked (and who
/// approved).
pub(super) fn add_round(
    deployment: &mut Deployment,
    action: &str,
    by: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    check_runnable(deployment)?;
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
            deployment.tasks.push(Task::queued(
                TaskKind::Deploy,
                &host.host,
                host.agent_id,
                now,
            ));
        }
    }
    deployment.error_step = None;
    deployment.error_message = None;
    deployment.deadline_ms = Some(crate::dispatcher::deadline(deployment));
    progress::set_status(
        deployment,
        DeploymentStatus::Deploying,
        Some(format!("{action} by {by}")),
    );
    Ok(())
}
