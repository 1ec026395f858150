//! `berth cancel`, `retry`, `redeploy`, `rollback`, `purge` and `audit`.

use berth_proto::v1::{GetDeploymentRequest, ListAuditRequest, RerunRequest, RollbackRequest};
use berth_shared::exit;
use berth_shared::record::{ApprovalOutcome, Deployment};
use berth_shared::state::DeploymentStatus;
use clap::Args;

use super::deploy::{finish, summary};
use super::live::follow;
use super::output::{emit, emit_sorted, progress};
use super::wire;
use super::{Outcome, Session};

#[derive(Args, Debug)]
pub struct RerunArgs {
    /// Deployment id.
    pub id: String,
    /// Run even if another deployment of this app+env is running.
    #[arg(long)]
    pub force: bool,
    /// Print the new deployment and return without following it.
    #[arg(long)]
    pub detach: bool,
}

#[derive(Args, Debug)]
pub struct RetryArgs {
    #[command(flatten)]
    pub rerun: RerunArgs,
    /// Wait for a running deployment of this app+env to end, then run.
    #[arg(long, conflicts_with = "force")]
    pub queue: bool,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// The app to start again.
    pub app: String,
    /// The app's environment; needed only when the app runs in several.
    #[arg(long = "env")]
    pub environment: Option<String>,
    /// Print the deployment and return without following it.
    #[arg(long)]
    pub detach: bool,
}

#[derive(Args, Debug)]
pub struct RollbackArgs {
    /// The app to roll back.
    pub app: String,
    /// The app's environment; needed only when the app runs in several.
    #[arg(long = "env")]
    pub environment: Option<String>,
    /// The deployment to go back to; default: the previous successful one.
    #[arg(long = "to")]
    pub to: Option<String>,
    /// Run even if another deployment of this app+env is running.
    #[arg(long)]
    pub force: bool,
    /// Wait for a running deployment of this app+env to end, then run.
    #[arg(long, conflicts_with = "force")]
    pub queue: bool,
    /// Print the new deployment and return without following it.
    #[arg(long)]
    pub detach: bool,
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Only entries about this (a deployment id, an app, a token id...).
    #[arg(long, default_value = "")]
    pub target: String,
    /// How many entries, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

pub async fn cancel(session: &mut Session, id: &str, detach: bool) -> Outcome {
    let reply = session
        .client
        .cancel_deployment(GetDeploymentRequest { id: id.to_string() })
        .await?
        .into_inner();
    let deployment: Deployment = wire::deployment(reply)?;
    let format = session.format;
    // A settled deployment's held stop, redeploy or start is withdrawn;
    // the deployment stays as it is.
    if deployment.status != DeploymentStatus::Canceled
        && let Some(approval) = &deployment.approval
        && approval.outcome == ApprovalOutcome::Canceled
    {
        progress(
            format,
            &format!("deployment {}: {}", deployment.id, approval.text()),
        );
        emit(format, &deployment, || summary(&deployment));
        return Ok(exit::OK);
    }
    progress(
        format,
        &format!(
            "deployment {} canceled; waiting for its hosts to stop",
            deployment.id
        ),
    );
    let last = if detach {
        deployment
    } else {
        follow(session, &deployment).await?
    };
    emit(format, &last, || summary(&last));
    Ok(if last.status == DeploymentStatus::Canceled {
        exit::OK
    } else {
        exit::FAILED
    })
}

pub async fn retry(session: &mut Session, args: RetryArgs) -> Outcome {
    let request = RerunRequest {
        id: args.rerun.id.clone(),
        force: args.rerun.force,
        queue: args.queue,
    };
    let reply = session.client.retry_deployment(request).await?.into_inner();
    let deployment: Deployment = wire::deployment(reply)?;
    progress(
        session.format,
        &format!(
            "deployment {} retries {} (retry {})",
            deployment.id, args.rerun.id, deployment.retry_count
        ),
    );
    finish(session, deployment, args.rerun.detach).await
}

pub async fn redeploy(session: &mut Session, args: RerunArgs) -> Outcome {
    let request = RerunRequest {
        id: args.id.clone(),
        force: args.force,
        queue: false,
    };
    let reply = session
        .client
        .redeploy_deployment(request)
        .await?
        .into_inner();
    let deployment: Deployment = wire::deployment(reply)?;
    if super::approvals::pending(&deployment).is_none() {
        progress(
            session.format,
            &format!("deployment {} runs again", deployment.id),
        );
    }
    finish(session, deployment, args.detach).await
}

pub async fn start(session: &mut Session, args: StartArgs) -> Outcome {
    let request = berth_proto::v1::StopAppRequest {
        app: args.app.clone(),
        environment: args.environment.clone().unwrap_or_default(),
        with_resources: false,
    };
    let reply = session.client.start_app(request).await?.into_inner();
    let deployment: Deployment = wire::deployment(reply)?;
    if super::approvals::pending(&deployment).is_none() {
        progress(
            session.format,
            &format!(
                "starting {} in {} again: deployment {} (version {})",
                deployment.app, deployment.environment, deployment.id, deployment.version
            ),
        );
    }
    finish(session, deployment, args.detach).await
}

pub async fn rollback(session: &mut Session, args: RollbackArgs) -> Outcome {
    let request = RollbackRequest {
        app: args.app.clone(),
        environment: args.environment.clone().unwrap_or_default(),
        to_id: args.to.clone().unwrap_or_default(),
        force: args.force,
        queue: args.queue,
    };
    let reply = session.client.rollback(request).await?.into_inner();
    let deployment: Deployment = wire::deployment(reply)?;
    progress(
        session.format,
        &format!(
            "deployment {} rolls {} in {} back to version {} (from deployment {})",
            deployment.id,
            deployment.app,
            deployment.environment,
            deployment.version,
            deployment
                .parent_id
                .map(|id| id.to_string())
                .unwrap_or_default()
        ),
    );
    finish(session, deployment, args.detach).await
}

pub async fn purge(session: &mut Session, id: &str) -> Outcome {
    let reply = session
        .client
        .purge_deployment(GetDeploymentRequest { id: id.to_string() })
        .await?
        .into_inner();
    let purged = wire::purged(reply)?;
    emit_sorted(session.format, &purged, || {
        format!(
            "deployment {id} and its {} log lines are forgotten; what it made on the hosts is left as it is",
            purged.log_lines_removed
        )
    });
    Ok(exit::OK)
}

pub async fn audit(session: &mut Session, args: AuditArgs) -> Outcome {
    let reply = session
        .client
        .list_audit(ListAuditRequest {
            limit: args.limit,
            target: args.target,
        })
        .await?
        .into_inner();
    let entries = wire::audit(reply);
    emit_sorted(session.format, &entries, || {
        use super::output::Column;
        let mut table = super::output::grid(
            session.format,
            &[
                Column::Text("WHEN"),
                Column::Text("WHO"),
                Column::Text("ACTION"),
                Column::Text("TARGET"),
                Column::Text("OUTCOME"),
            ],
        );
        for entry in &entries {
            table.row(vec![
                entry.at.to_string(),
                entry.who.clone(),
                entry.action.clone(),
                entry.target.clone(),
                entry.outcome.clone(),
            ]);
        }
        table.to_string()
    });
    Ok(exit::OK)
}
