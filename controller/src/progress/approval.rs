//! How an approval moves a deployment: a new deployment held for its
//! approval (`pending_approval`, no deadline), an approval given, one that
//! expired, and what a status change does to a pending approval: a held
//! deployment that is canceled takes its approval along; a held stop,
//! redeploy or start no longer applies once its deployment changed (it
//! was stopped, superseded, ...), and is void. Pure functions, like the
//! rest of `progress`.

use berth_shared::record::{Approval, ApprovalOutcome, Approver, Deployment, Timestamp, clock};
use berth_shared::state::DeploymentStatus;

use super::{note, set_status};

/// Holds a new deployment, not stored yet, until `approval` is given.
pub fn hold(deployment: &mut Deployment, approval: Approval) {
    deployment.status = DeploymentStatus::PendingApproval;
    deployment.deadline_ms = None;
    wait_for(
        deployment,
        DeploymentStatus::PendingApproval.as_str(),
        approval,
    );
}

/// Puts a pending approval on a deployment for a change of it (stop,
/// redeploy, start); its status stays as it is until the change runs.
pub fn hold_change(deployment: &mut Deployment, approval: Approval) {
    wait_for(deployment, "approval requested", approval);
}

/// Notes what waits for whom until when, and keeps `approval`.
fn wait_for(deployment: &mut Deployment, event: &str, approval: Approval) {
    let reason = format!(
        "{} by {} in a protected environment: waiting for approval by {} until {}",
        approval.action,
        approval.requested_by,
        approval.approvers(),
        clock(approval.expires_at)
    );
    note(deployment, "deployment", None, event, Some(reason));
    deployment.approval = Some(approval);
}

/// Records the approval by `by`; a held deployment becomes `pending`
/// (with its deadline from now, unless it still waits for its turn).
/// The caller runs a held change itself.
pub fn approve(deployment: &mut Deployment, by: &str, now: Timestamp) {
    let Some(approval) = deployment.approval.as_mut() else {
        return;
    };
    approval.outcome = ApprovalOutcome::Approved;
    approval.approved = Some(Approver {
        by: by.to_string(),
        at: now,
    });
    let reason = format!("{} approved by {by}", approval.action);
    if deployment.status == DeploymentStatus::PendingApproval {
        if !deployment.queued {
            deployment.deadline_ms = Some(crate::dispatcher::deadline(deployment));
        }
        set_status(deployment, DeploymentStatus::Pending, Some(reason));
    } else {
        note(deployment, "deployment", None, "approved", Some(reason));
    }
}

/// Ends a pending approval whose time is up. A held deployment is then
/// canceled by the caller (`Dispatcher::halt`); a held change is dropped
/// and said so in the history, its deployment left as it is.
pub fn expire(deployment: &mut Deployment, now: Timestamp) -> Option<String> {
    let approval = deployment
        .approval
        .as_mut()
        .filter(|approval| approval.is_due(now))?;
    let waited = berth_shared::time::format_duration(std::time::Duration::from_millis(
        u64::try_from(approval.expires_at.0 - approval.requested_at.0).unwrap_or(0),
    ));
    let reason = if approval.action.makes_deployment() {
        format!("approval expired after {waited}; nobody approved it")
    } else {
        format!(
            "the {} requested by {} was canceled: its approval expired after {waited}; nobody approved it",
            approval.action, approval.requested_by
        )
    };
    approval.end(ApprovalOutcome::Expired, now, reason.clone());
    if deployment.status != DeploymentStatus::PendingApproval {
        note(
            deployment,
            "deployment",
            None,
            "approval expired",
            Some(reason.clone()),
        );
    }
    Some(reason)
}

/// What a status change does to a pending approval (`set_status` calls
/// it): a held deployment canceled takes it along; a held change of a
/// deployment that changed meanwhile is void.
pub(super) fn on_status(deployment: &mut Deployment, next: DeploymentStatus, reason: &str) {
    let Some(approval) = deployment
        .approval
        .as_mut()
        .filter(|approval| approval.is_pending())
    else {
        return;
    };
    let now = Timestamp::now();
    if approval.action.makes_deployment() {
        if next == DeploymentStatus::Canceled {
            approval.end(ApprovalOutcome::Canceled, now, reason.to_string());
        }
        return;
    }
    approval.end(
        ApprovalOutcome::Void,
        now,
        format!(
            "the deployment became {next} before anyone approved the {}",
            approval.action
        ),
    );
}

#[cfg(test)]
mod tests {
    use berth_shared::record::ApprovalAction;

    use super::*;

    fn pending(action: ApprovalAction) -> Approval {
        Approval::pending(action, "ana", Timestamp(1_000), 3_600_000, 2)
    }

    fn held() -> Deployment {
        let mut deployment = crate::testing::deployment(&["h1"], 0);
        deployment.deadline_ms = Some(1);
        hold(&mut deployment, pending(ApprovalAction::Deploy));
        deployment
    }

    #[test]
    fn a_held_deployment_waits_without_a_deadline_then_approved_becomes_pending() {
        let mut deployment = held();
        assert_eq!(deployment.status, DeploymentStatus::PendingApproval);
        assert_eq!(deployment.deadline_ms, None, "nothing can time out");
        let noted = deployment.transitions.last().expect("noted");
        assert_eq!(noted.to, "pending_approval");
        assert!(
            noted.reason.as_deref().unwrap_or_default().contains(
                "deploy by ana in a protected environment: waiting for approval by an admin (or another operator) until 01:00 UTC"
            ),
            "{noted:?}"
        );

        approve(&mut deployment, "carol", Timestamp(2_000));
        assert_eq!(deployment.status, DeploymentStatus::Pending);
        assert!(deployment.deadline_ms.is_some_and(|at| at > 1));
        let approval = deployment.approval.clone().expect("kept");
        assert_eq!(approval.outcome, ApprovalOutcome::Approved);
        assert_eq!(
            approval.approved,
            Some(Approver {
                by: "carol".into(),
                at: Timestamp(2_000)
            })
        );
        let last = deployment.transitions.last().expect("noted");
        assert_eq!(
            (
                last.from.as_deref(),
                last.to.as_str(),
                last.reason.as_deref()
            ),
            (
                Some("pending_approval"),
                "pending",
                Some("deploy approved by carol")
            )
        );
    }

    #[test]
    fn an_expired_deployment_approval_says_why_and_a_cancel_ends_it_as_canceled() {
        let mut deployment = held();
        assert_eq!(
            expire(&mut deployment, Timestamp(3_600_999)),
            None,
            "not due"
        );
        let reason = expire(&mut deployment, Timestamp(3_601_000)).expect("due");
        assert_eq!(reason, "approval expired after 1h; nobody approved it");
        let approval = deployment.approval.clone().expect("kept");
        assert_eq!(approval.outcome, ApprovalOutcome::Expired);
        assert_eq!(expire(&mut deployment, Timestamp(i64::MAX)), None, "once");

        let mut canceled = held();
        set_status(
            &mut canceled,
            DeploymentStatus::Canceled,
            Some("canceled by ana".into()),
        );
        let approval = canceled.approval.expect("kept");
        assert_eq!(approval.outcome, ApprovalOutcome::Canceled);
        assert_eq!(approval.reason.as_deref(), Some("canceled by ana"));
    }

    #[test]
    fn a_held_stop_expires_or_is_void_once_its_deployment_changed() {
        let mut deployment = crate::testing::deployment(&["h1"], 0);
        deployment.status = DeploymentStatus::Deployed;
        hold_change(&mut deployment, pending(ApprovalAction::Stop));
        assert_eq!(deployment.status, DeploymentStatus::Deployed);
        let mut expired = deployment.clone();
        let reason = expire(&mut expired, Timestamp(3_601_000)).expect("due");
        assert_eq!(
            reason,
            "the stop requested by ana was canceled: its approval expired after 1h; nobody approved it"
        );
        assert_eq!(expired.status, DeploymentStatus::Deployed, "still deployed");
        assert_eq!(
            expired.transitions.last().map(|t| t.to.as_str()),
            Some("approval expired")
        );

        set_status(&mut deployment, DeploymentStatus::Superseded, None);
        let approval = deployment.approval.expect("kept");
        assert_eq!(approval.outcome, ApprovalOutcome::Void);
        assert_eq!(
            approval.reason.as_deref(),
            Some("the deployment became superseded before anyone approved the stop")
        );
    }
}
