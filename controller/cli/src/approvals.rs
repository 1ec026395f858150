//! `berth approve ID`, and what the commands that change a protected
//! environment say when their change waits for an approval: who may
//! approve it, until when, the `berth approve` to run, and the exit code
//! `PENDING_APPROVAL` (6): accepted, not failed, nothing ran yet.

use berth_proto::v1::GetDeploymentRequest;
use berth_shared::exit;
use berth_shared::record::{Approval, ApprovalAction, Deployment};
use berth_shared::state::DeploymentStatus;
use clap::Args;

use super::deploy::summary;
use super::live::follow;
use super::output::{emit, progress};
use super::wire;
use super::{Format, Outcome, Session};

#[derive(Args, Debug)]
pub struct ApproveArgs {
    /// Deployment id (the one waiting, or the one whose stop, redeploy
    /// or start waits).
    pub id: String,
    /// Return once approved, without following the change.
    #[arg(long)]
    pub detach: bool,
}

/// The approval a deployment waits for now, if any.
pub fn pending(deployment: &Deployment) -> Option<&Approval> {
    deployment
        .approval
        .as_ref()
        .filter(|approval| approval.is_pending())
}

/// Says that `deployment`'s change waits for an approval (if it does)
/// and prints it; the exit code to end with: `PENDING_APPROVAL`, or OK
/// when `detach` asked to return at once anyway.
pub fn report_waiting(format: Format, deployment: &Deployment, detach: bool) -> Option<i32> {
    let approval = pending(deployment)?;
    let id = deployment.id;
    progress(
        format,
        &format!(
            "{} of {} in {} (deployment {id}) is {}; nothing runs until then",
            approval.action,
            deployment.app,
            deployment.environment,
            approval.text()
        ),
    );
    progress(
        format,
        &format!("  approve it with: berth approve {id}   (follow it with: berth watch {id})"),
    );
    emit(format, deployment, || {
        format!("deployment {id} waits for approval")
    });
    Some(if detach {
        exit::OK
    } else {
        exit::PENDING_APPROVAL
    })
}

/// `berth approve ID`: approves, then follows the change as the command
/// that asked for it would have (exit 0 once it did what was asked).
pub async fn approve(session: &mut Session, args: ApproveArgs) -> Outcome {
    let reply = session
        .client
        .approve_deployment(GetDeploymentRequest {
            id: args.id.clone(),
        })
        .await?
        .into_inner();
    let deployment = wire::deployment(reply)?;
    let format = session.format;
    let Some(approval) = deployment.approval.clone() else {
        return Err(super::Failure::new(
            exit::FAILED,
            format!(
                "deployment {} came back without its approval",
                deployment.id
            ),
        ));
    };
    progress(
        format,
        &format!(
            "deployment {} ({} {} in {}): {}; it runs now",
            deployment.id,
            deployment.app,
            deployment.version,
            deployment.environment,
            approval.text()
        ),
    );
    let last = if args.detach {
        deployment
    } else {
        follow(session, &deployment).await?
    };
    emit(format, &last, || summary(&last));
    let done = match approval.action {
        ApprovalAction::Stop => last.status == DeploymentStatus::Stopped,
        _ => last.status == DeploymentStatus::Deployed,
    };
    Ok(if done || args.detach {
        exit::OK
    } else {
        exit::FAILED
    })
}
