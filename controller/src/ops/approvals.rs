//! Approvals in protected environments (`berth approve ID`,
//! `POST /api/v1/deployments/{id}/approve`, the dashboard's Approve).
//!
//! In an environment whose record is `protected`, a deploy, retry or
//! rollback by a caller below admin is stored as a deployment in
//! `pending_approval` that nothing runs yet ([`required`], then
//! `progress::approval::hold`); a stop, redeploy or start by one waits as
//! a pending approval on its deployment ([`hold_change`]). An admin's go
//! through at once. [`approve`] releases one: with `approvals = 1` an
//! admin may, with 2 an admin or any operator, but never the user who
//! asked ([`check_approver`]); one approval is enough. Who approved and
//! when is recorded on the deployment and audited. A pending approval
//! expires after the controller's `--approval-ttl` (1 h): the
//! dispatcher's sweeper (`dispatcher/expiry.rs`) cancels a waiting
//! deployment and drops a held change.

use std::time::Duration;

use berth_shared::id::DeploymentId;
use berth_shared::record::{Approval, ApprovalAction, ApprovalOutcome, Deployment, Timestamp};
use tracing::info;

use super::create::announce;
use super::{Caller, Code, Error, Result};
use crate::hub::HubEvent;
use crate::progress;
use crate::server::Context;
use crate::store::{Role, StoreError};

/// How long a request waits for its approval unless `serve
/// --approval-ttl` says otherwise.
pub const DEFAULT_APPROVAL_TTL: Duration = Duration::from_secs(3600);

/// The approvals a change by `caller` to `app` in `environment` needs
/// (1 or 2): none when the environment is not protected or the caller is
/// an admin.
fn approvals_needed(
    context: &Context,
    caller: &Caller,
    app: &str,
    environment: &str,
) -> Result<Option<u8>> {
    if caller.principal.role >= Role::Admin {
        return Ok(None);
    }
    Ok(context
        .store
        .get_environment(app, environment)?
        .filter(|record| record.protected)
        .map(|record| record.approvals))
}

/// The approval a change by `caller` to `app` in `environment` must wait
/// for: none when the environment is not protected or the caller is an
/// admin.
pub fn required(
    context: &Context,
    caller: &Caller,
    app: &str,
    environment: &str,
    action: ApprovalAction,
) -> Result<Option<Approval>> {
    let Some(approvals) = approvals_needed(context, caller, app, environment)? else {
        return Ok(None);
    };
    let ttl = i64::try_from(context.approval_ttl.as_millis()).unwrap_or(i64::MAX);
    Ok(Some(Approval::pending(
        action,
        &caller.who(),
        Timestamp::now(),
        ttl,
        approvals,
    )))
}

/// Whether `caller` may approve `approval`: never the user who asked for
/// it (whatever credential either used); an admin; with two approvals,
/// also another operator.
pub fn check_approver(caller: &Caller, approval: &Approval) -> Result<()> {
    let name = &caller.principal.name;
    if approval.requester() == name {
        return Err(Error::new(
            Code::ApprovalSelf,
            format!(
                "you ({name}) requested this {}; {} other than you must approve it",
                approval.action,
                approval.approvers()
            ),
        ));
    }
    match caller.principal.role {
        Role::Admin => Ok(()),
        Role::Operator if approval.approvals >= 2 => Ok(()),
        role => Err(Error::new(
            Code::ApprovalForbidden,
            format!(
                "{name} has role {}; this {} in a protected environment with {} approval(s) needs {} to approve it; ask one",
                role.as_str(),
                approval.action,
                approval.approvals,
                approval.approvers()
            ),
        )),
    }
}

/// Whether `caller` may approve what `deployment` waits for now (the
/// dashboard shows its Approve button then).
pub fn may_approve(caller: &Caller, deployment: &Deployment) -> bool {
    deployment
        .approval
        .as_ref()
        .is_some_and(|approval| approval.is_pending() && check_approver(caller, approval).is_ok())
}

/// Refuses a change by a caller below admin in a protected environment
/// that cannot wait for an approval (`what` names it).
pub fn refuse_unheld(
    context: &Context,
    caller: &Caller,
    app: &str,
    environment: &str,
    what: &str,
    instead: &str,
) -> Result<()> {
    if approvals_needed(context, caller, app, environment)?.is_none() {
        return Ok(());
    }
    Err(Error::new(
        Code::ApprovalRequired,
        format!(
            "{what} reaches {app} in {environment}, a protected environment, where an operator's change waits for an approval; {instead}, or ask an admin"
        ),
    ))
}

/// Why a deployment has nothing to approve at `now`, if it has not.
fn pending_of(deployment: &Deployment, now: Timestamp) -> Result<&Approval> {
    let id = deployment.id;
    let Some(approval) = &deployment.approval else {
        return Err(Error::new(
            Code::ApprovalNotPending,
            format!(
                "deployment {id} waits for no approval (its environment was not protected, or an admin asked for it)"
            ),
        ));
    };
    if approval.is_due(now) {
        return Err(Error::new(
            Code::ApprovalNotPending,
            format!(
                "the approval deployment {id} waited for expired at {}; ask for the {} again",
                approval.expires_at, approval.action
            ),
        ));
    }
    if approval.outcome != ApprovalOutcome::Pending {
        return Err(Error::new(
            Code::ApprovalNotPending,
            format!(
                "deployment {id} waits for no approval now: {}",
                approval.text()
            ),
        ));
    }
    Ok(approval)
}

/// Puts `approval` on deployment `current` for a change of it (stop,
/// redeploy, start) once `check` finds the change possible, audited as
/// the change with outcome `pending-approval`.
pub(super) async fn hold_change(
    context: &Context,
    current: &Deployment,
    approval: Approval,
    check: impl Fn(&Deployment) -> Result<(), StoreError>,
) -> Result<Deployment> {
    if let Some(pending) = current.approval.as_ref().filter(|a| a.is_pending()) {
        return Err(Error::new(
            Code::ApprovalAlreadyPending,
            format!(
                "deployment {} has a {} waiting for approval already ({}); approve it with `berth approve {}`, or wait for it to expire",
                current.id,
                pending.action,
                pending.text(),
                current.id
            ),
        ));
    }
    let action = approval.action;
    let who = approval.requested_by.clone();
    let (deployment, ()) = context.store.update_deployment(current.id, |deployment| {
        if deployment
            .approval
            .as_ref()
            .is_some_and(Approval::is_pending)
        {
            return Err(StoreError::Conflict(format!(
                "deployment {} has a change waiting for approval already",
                deployment.id
            )));
        }
        check(deployment)?;
        progress::approval::hold_change(deployment, approval.clone());
        Ok(())
    })?;
    super::deployments::audit_change(
        context,
        &who,
        action.as_str(),
        &deployment,
        "pending-approval",
    )?;
    context.store.flush().await?;
    context.hub.publish(HubEvent::Changed {
        deployment: deployment.id,
    });
    info!(deployment_id = %deployment.id, %action, %who, "change waits for approval");
    Ok(deployment)
}

/// `berth cancel ID` of a settled deployment whose stop, redeploy or
/// start waits for an approval: the request is withdrawn (outcome
/// `canceled`) and the deployment stays as it is; audited `cancel`.
pub(super) async fn withdraw(
    context: &Context,
    caller: &Caller,
    id: DeploymentId,
) -> Result<Deployment> {
    let who = caller.who();
    let now = Timestamp::now();
    let (deployment, withdrawn) = context.store.update_deployment(id, |deployment| {
        let Some(approval) = deployment.approval.as_mut().filter(|a| a.is_pending()) else {
            return Ok(None);
        };
        let reason = format!(
            "the {} requested by {} was withdrawn by {who}",
            approval.action, approval.requested_by
        );
        approval.end(ApprovalOutcome::Canceled, now, reason.clone());
        progress::note(
            deployment,
            "deployment",
            None,
            "approval canceled",
            Some(reason.clone()),
        );
        Ok(Some(reason))
    })?;
    let Some(reason) = withdrawn else {
        return Err(Error::new(
            Code::DeploymentInvalidState,
            format!(
                "deployment {id} is {} and waits for no approval now; only a running deployment can be canceled",
                deployment.status
            ),
        ));
    };
    super::deployments::audit_change(context, &who, "cancel", &deployment, "approval withdrawn")?;
    context.store.flush().await?;
    context.hub.publish(HubEvent::Changed { deployment: id });
    info!(deployment_id = %id, %who, %reason, "held change withdrawn");
    Ok(deployment)
}

/// `berth approve ID`: approves what a deployment waits for. A held
/// deployment becomes `pending` and runs; a held stop, redeploy or start
/// runs as its request would have. The deploy window is checked again
/// (the change happens now); an admin approving is let through it, and
/// the audit log says so.
pub async fn approve(context: &Context, caller: &Caller, id: DeploymentId) -> Result<Deployment> {
    caller.require(Role::Operator)?;
    let current = context.store.get_deployment(id)?;
    let now = Timestamp::now();
    let approval = pending_of(&current, now)?.clone();
    check_approver(caller, &approval)?;
    let admin = caller.principal.role == Role::Admin;
    super::windows::check(context, caller, &current.app, &current.environment, admin).await?;
    let who = caller.who();
    let by = format!("{}, approved by {who}", approval.requested_by);
    // Still the same pending approval inside the transaction; `false`
    // when it changed meanwhile (approved, expired, void).
    let still = |deployment: &Deployment| {
        deployment.approval.as_ref() == Some(&approval) && !approval.is_due(Timestamp::now())
    };
    let (deployment, approved) = match approval.action {
        ApprovalAction::Stop => context.store.update_deployment(id, |deployment| {
            if !still(deployment) {
                return Ok(false);
            }
            progress::approval::approve(deployment, &who, now);
            super::stop::add_stop(deployment, &by, now, false)?;
            Ok(true)
        })?,
        ApprovalAction::Redeploy | ApprovalAction::Start => context
            .store
            .update_deployment_claiming(id, false, |deployment| {
                if !still(deployment) {
                    return Ok(false);
                }
                progress::approval::approve(deployment, &who, now);
                super::rerun::add_round(deployment, approval.action.as_str(), &by, now)?;
                Ok(true)
            })?,
        _ => context.store.update_deployment(id, |deployment| {
            if !still(deployment) {
                return Ok(false);
            }
            progress::approval::approve(deployment, &who, now);
            Ok(true)
        })?,
    };
    if !approved {
        return Err(pending_of(&deployment, Timestamp::now())
            .err()
            .unwrap_or_else(|| {
                Error::new(
                    Code::ApprovalNotPending,
                    format!("deployment {id}'s approval changed meanwhile; see `berth show {id}`"),
                )
            }));
    }
    info!(deployment_id = %id, %who, action = %approval.action, "approved");
    let outcome = format!(
        "approved the {} requested by {}",
        approval.action, approval.requested_by
    );
    announce(context, &who, "approve", &outcome, deployment).await
}
