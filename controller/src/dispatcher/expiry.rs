//! Pending approvals that nobody gave in time (`serve --approval-ttl`):
//! the sweeper finds them in the store's index of pending approvals, so
//! their expiry survives a restart. A deployment waiting for its approval
//! is canceled; a held stop, redeploy or start is dropped and its
//! deployment stays as it is. Each expiry is audited (`approval.expired`).

use berth_shared::id::DeploymentId;
use berth_shared::record::{Deployment, Timestamp};
use berth_shared::state::DeploymentStatus;
use tracing::{info, warn};

use crate::hub::HubEvent;
use crate::progress;
use crate::store::StoreError;

use super::Dispatcher;

/// Who the audit log names for an expiry.
const WHO: &str = "controller";

impl Dispatcher {
    /// Ends every pending approval whose time is up.
    pub(super) async fn expire_approvals(&self) {
        let now = Timestamp::now();
        let due = match self.store.due_approvals(now.0) {
            Ok(due) => due,
            Err(err) => {
                warn!(error = %err, "could not read the pending approvals");
                return;
            }
        };
        for deployment_id in due {
            match self.expire(deployment_id, now).await {
                Ok(()) => {}
                // Approved (or changed) at the same moment.
                Err(StoreError::Conflict(_)) => {}
                Err(err) => warn!(%deployment_id, error = %err, "could not expire an approval"),
            }
        }
    }

    /// Ends one deployment's approval if it is still due at `now`.
    pub(super) async fn expire(
        &self,
        deployment_id: DeploymentId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let current = self.store.get_deployment(deployment_id)?;
        let Some(approval) = current.approval.as_ref().filter(|a| a.is_due(now)) else {
            return Ok(());
        };
        let action = approval.action;
        let requested_by = approval.requested_by.clone();
        let due = |deployment: &mut Deployment| {
            progress::approval::expire(deployment, now).ok_or_else(|| {
                StoreError::Conflict(format!(
                    "deployment {deployment_id}'s approval is no longer due"
                ))
            })
        };
        let deployment = if current.status == DeploymentStatus::PendingApproval {
            let reason = progress::approval::expire(&mut current.clone(), now).unwrap_or_default();
            self.halt_with(deployment_id, DeploymentStatus::Canceled, reason, |d| {
                due(d).map(|_| ())
            })
            .await?
        } else {
            let (deployment, _) = self.store.update_deployment(deployment_id, due)?;
            self.store.flush().await?;
            self.hub.publish(HubEvent::Changed {
                deployment: deployment_id,
            });
            deployment
        };
        let target = format!(
            "{} {} {}",
            deployment.app, deployment.environment, deployment.id
        );
        let outcome = format!("{action} requested by {requested_by} was not approved in time");
        self.store
            .audit(WHO, "approval.expired", &target, &outcome)?;
        self.store.flush().await?;
        info!(%deployment_id, %action, "approval expired");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use berth_shared::record::{Approval, ApprovalAction, ApprovalOutcome};

    use super::*;

    fn held(action: ApprovalAction, status: DeploymentStatus) -> Deployment {
        let mut deployment = crate::testing::deployment(&["h1"], 0);
        deployment.status = status;
        deployment.tasks[0].status = berth_shared::state::TaskStatus::Queued;
        // Asked two hours ago for an hour: due.
        let asked = Timestamp(Timestamp::now().0 - 7_200_000);
        deployment.approval = Some(Approval::pending(action, "ana", asked, 3_600_000, 1));
        deployment
    }

    #[tokio::test]
    async fn a_held_deployment_is_canceled_and_a_held_stop_dropped_at_expiry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let context = crate::testing::context(dir.path()).await;
        let deploy = held(ApprovalAction::Deploy, DeploymentStatus::PendingApproval);
        let mut stop = held(ApprovalAction::Stop, DeploymentStatus::Deployed);
        stop.app = "b".into();
        stop.tasks[0].status = berth_shared::state::TaskStatus::Done;
        for deployment in [&deploy, &stop] {
            context
                .store
                .create_deployment(deployment, true, false)
                .expect("create");
        }
        context.dispatcher.expire_approvals().await;

        let canceled = context.store.get_deployment(deploy.id).expect("read");
        assert_eq!(canceled.status, DeploymentStatus::Canceled);
        assert_eq!(
            canceled.error_message.as_deref(),
            Some("approval expired after 1h; nobody approved it")
        );
        assert!(progress::is_quiet(&canceled), "its slot is free");
        let approval = canceled.approval.expect("kept");
        assert_eq!(approval.outcome, ApprovalOutcome::Expired);

        let kept = context.store.get_deployment(stop.id).expect("read");
        assert_eq!(kept.status, DeploymentStatus::Deployed);
        assert_eq!(
            kept.approval.map(|approval| approval.outcome),
            Some(ApprovalOutcome::Expired)
        );
        assert!(context.store.pending_approvals().expect("index").is_empty());
        let audited: Vec<(String, String)> = context
            .store
            .audit_entries(10)
            .expect("audit")
            .into_iter()
            .map(|entry| (entry.who, entry.action))
            .collect();
        assert_eq!(
            audited,
            [
                ("controller".to_string(), "approval.expired".to_string()),
                ("controller".to_string(), "approval.expired".to_string())
            ]
        );
    }
}
