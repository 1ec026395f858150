//! The index of pending approvals: `meta` keys `approval \0 id` whose value
//! is the approval's expiry, kept in the same transaction as every change
//! of a deployment's record, so the expiry sweep reads only the
//! deployments whose approval is due (and finds them again after a
//! restart) without walking every deployed or stopped one.

use super::kv::{TxError, TxTree};
use berth_shared::id::DeploymentId;
use berth_shared::record::Deployment;

use super::keys::{APPROVAL_PREFIX, approval_key, id_from_suffix};
use super::{Store, StoreError};

/// When the deployment's pending approval expires (Unix ms), if it has one.
pub(super) fn pending_expiry(deployment: &Deployment) -> Option<i64> {
    deployment
        .approval
        .as_ref()
        .filter(|approval| approval.is_pending())
        .map(|approval| approval.expires_at.0)
}

/// Brings the index in step with a changed record: `before` is the
/// expiry its pending approval had before the change, if any.
pub(super) fn keep_index(
    meta: &TxTree<'_>,
    deployment: &Deployment,
    before: Option<i64>,
) -> Result<(), TxError> {
    let after = pending_expiry(deployment);
    if after == before {
        return Ok(());
    }
    let key = approval_key(deployment.id);
    match after {
        Some(expiry) => meta.insert(key, &expiry.to_be_bytes())?,
        None => meta.remove(key)?,
    };
    Ok(())
}

/// Forgets a purged deployment's entry.
pub(super) fn forget(meta: &TxTree<'_>, id: DeploymentId) -> Result<(), TxError> {
    meta.remove(approval_key(id))?;
    Ok(())
}

impl Store {
    /// The deployments whose pending approval expires at or before
    /// `now_ms`, in id order.
    pub fn due_approvals(&self, now_ms: i64) -> Result<Vec<DeploymentId>, StoreError> {
        let mut due = Vec::new();
        for entry in self.t()?.meta.scan_prefix(APPROVAL_PREFIX) {
            let (key, value) = entry?;
            let expiry = <[u8; 8]>::try_from(value.as_ref())
                .map(i64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    tree: "meta",
                    reason: "an approval's expiry is not 8 bytes".into(),
                })?;
            if expiry <= now_ms {
                due.extend(id_from_suffix(&key));
            }
        }
        Ok(due)
    }

    /// Every deployment with a pending approval.
    pub fn pending_approvals(&self) -> Result<Vec<DeploymentId>, StoreError> {
        self.due_approvals(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use berth_shared::record::{Approval, ApprovalAction, ApprovalOutcome, Timestamp};
    use berth_shared::state::DeploymentStatus;

    use super::*;

    fn held(expires_ms: i64) -> Deployment {
        let mut deployment = crate::testing::deployment(&["h1"], 0);
        deployment.status = DeploymentStatus::PendingApproval;
        deployment.approval = Some(Approval::pending(
            ApprovalAction::Deploy,
            "ana",
            Timestamp(expires_ms - 1000),
            1000,
            1,
        ));
        deployment
    }

    #[test]
    fn the_index_follows_each_record_and_outlives_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let early = held(10_000);
        let late = held(20_000);
        for deployment in [&early, &late] {
            store
                .create_deployment(deployment, true, false)
                .expect("create");
        }
        assert_eq!(store.due_approvals(9_999).expect("due"), []);
        assert_eq!(store.due_approvals(10_000).expect("due"), [early.id]);
        let mut pending = store.pending_approvals().expect("pending");
        pending.sort();
        let mut both = [early.id, late.id];
        both.sort();
        assert_eq!(pending, both);

        // Approved: no longer pending, so out of the index.
        store
            .update_deployment(early.id, |deployment| {
                if let Some(approval) = deployment.approval.as_mut() {
                    approval.outcome = ApprovalOutcome::Approved;
                }
                deployment.status = DeploymentStatus::Pending;
                Ok(())
            })
            .expect("approve");
        assert_eq!(store.due_approvals(i64::MAX).expect("due"), [late.id]);
        drop(store);
        let store = crate::store::reopen(dir.path());
        assert_eq!(store.due_approvals(20_000).expect("due"), [late.id]);
    }

    #[test]
    fn a_record_from_before_approvals_reads_without_one() {
        let deployment = crate::testing::deployment(&["h1"], 0);
        let mut json = serde_json::to_value(&deployment).expect("json");
        assert!(json.get("approval").is_none(), "none is left out: {json}");
        json.as_object_mut().expect("object").remove("approval");
        let back: Deployment = serde_json::from_value(json).expect("reads");
        assert!(back.approval.is_none());
    }
}
