//! Approvals against a real store: who is held in a protected environment,
//! who may approve what (never the requester; an admin; with two
//! approvals another operator), refusals with their codes, what an
//! approval does to a held deployment and to a held stop, and the audit.

use std::collections::BTreeMap;

use berth_shared::record::{
    Approval, ApprovalAction, ApprovalOutcome, Deployment, EnvironmentKind, Timestamp,
};
use berth_shared::state::{DeploymentStatus, TaskStatus};

use super::apps_tests::refused;
use super::environments::NewEnvironment;
use super::*;
use crate::server::Context;
use crate::store::Role;
use crate::testing::{context, user};

/// Protects `a/default` (the test deployments' app and environment).
async fn protect(context: &Context, approvals: u64) {
    let admin = user("root", Role::Admin);
    let record = NewEnvironment {
        app: "a".into(),
        name: "default".into(),
        kind: EnvironmentKind::Production,
        is_default: false,
        protected: true,
        approvals: Some(approvals),
        window: None,
        vars: BTreeMap::new(),
    };
    environments::create(context, &admin, record)
        .await
        .expect("create");
}

/// A deployment of `a/default` held for `action` asked by `ana`, stored.
fn stored(context: &Context, action: ApprovalAction, approvals: u8) -> Deployment {
    let mut deployment = crate::testing::deployment(&["h1"], 0);
    deployment.tasks[0].status = TaskStatus::Queued;
    let approval = Approval::pending(action, "ana", Timestamp::now(), 3_600_000, approvals);
    if action.makes_deployment() {
        crate::progress::approval::hold(&mut deployment, approval);
    } else {
        deployment.status = DeploymentStatus::Deployed;
        deployment.tasks[0].status = TaskStatus::Done;
        crate::progress::approval::hold_change(&mut deployment, approval);
    }
    context
        .store
        .create_deployment(&deployment, true, false)
        .expect("create");
    deployment
}

#[tokio::test]
async fn operators_are_held_in_protected_environments_and_admins_are_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    let ana = user("ana", Role::Operator);
    let root = user("root", Role::Admin);
    let deploy = ApprovalAction::Deploy;
    let unprotected = approvals::required(&context, &ana, "a", "default", deploy);
    assert_eq!(unprotected.expect("read"), None, "no record: not held");
    protect(&context, 2).await;
    let held = approvals::required(&context, &ana, "a", "default", deploy)
        .expect("read")
        .expect("held");
    assert_eq!(
        (held.requested_by.as_str(), held.approvals, held.outcome),
        ("ana", 2, ApprovalOutcome::Pending)
    );
    assert_eq!(
        held.expires_at.0 - held.requested_at.0,
        3_600_000,
        "the default TTL"
    );
    let admin = approvals::required(&context, &root, "a", "default", deploy);
    assert_eq!(admin.expect("read"), None, "an admin goes through");
}

#[test]
fn who_may_approve() {
    let check = |approvals: u8, name: &str, role: Role, expected: Option<Code>| {
        let approval = Approval::pending(
            ApprovalAction::Deploy,
            "ana via token ci",
            Timestamp(0),
            1000,
            approvals,
        );
        let caller = user(name, role);
        let got = approvals::check_approver(&caller, &approval).err();
        assert_eq!(
            got.as_ref().map(|err| err.code),
            expected,
            "{name} ({}) with {approvals} approval(s): {got:?}",
            role.as_str()
        );
    };
    // One approval: only an admin, never the one who asked.
    check(1, "root", Role::Admin, None);
    check(1, "bo", Role::Operator, Some(Code::ApprovalForbidden));
    check(1, "vi", Role::Viewer, Some(Code::ApprovalForbidden));
    check(1, "ana", Role::Operator, Some(Code::ApprovalSelf));
    // Two: the requester is the first pair of eyes; anyone else at
    // operator or above is the second.
    check(2, "bo", Role::Operator, None);
    check(2, "root", Role::Admin, None);
    check(2, "vi", Role::Viewer, Some(Code::ApprovalForbidden));
    check(2, "ana", Role::Operator, Some(Code::ApprovalSelf));
    // Since promoted to admin, still the one who asked.
    check(2, "ana", Role::Admin, Some(Code::ApprovalSelf));
    let self_refusal = approvals::check_approver(
        &user("ana", Role::Operator),
        &Approval::pending(ApprovalAction::Stop, "ana", Timestamp(0), 1, 2),
    )
    .expect_err("self");
    assert_eq!(
        self_refusal.message,
        "you (ana) requested this stop; an admin (or another operator) other than you must approve it"
    );
}

#[tokio::test]
async fn an_approval_releases_a_held_deployment_once_and_is_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    let held = stored(&context, ApprovalAction::Deploy, 2);
    let ana = user("ana", Role::Operator);
    let bo = user("bo", Role::Operator);
    let viewer = user("vi", Role::Viewer);
    refused(
        approvals::approve(&context, &viewer, held.id).await,
        Code::AuthPermissionDenied,
    );
    refused(
        approvals::approve(&context, &ana, held.id).await,
        Code::ApprovalSelf,
    );
    assert!(approvals::may_approve(&bo, &held));
    assert!(!approvals::may_approve(&ana, &held));

    let approved = approvals::approve(&context, &bo, held.id)
        .await
        .expect("approve");
    assert_eq!(approved.status, DeploymentStatus::Pending);
    assert!(approved.deadline_ms.is_some(), "its run has a deadline now");
    let approval = approved.approval.clone().expect("kept");
    assert_eq!(approval.outcome, ApprovalOutcome::Approved);
    assert_eq!(approval.approved.map(|by| by.by), Some("bo".to_string()));
    assert!(!approvals::may_approve(&bo, &approved));
    let again = refused(
        approvals::approve(&context, &user("root", Role::Admin), held.id).await,
        Code::ApprovalNotPending,
    );
    assert!(
        again.message.contains("approved by bo"),
        "{}",
        again.message
    );
    assert!(context.store.pending_approvals().expect("index").is_empty());
    let entry = context
        .store
        .audit_entries(1)
        .expect("audit")
        .pop()
        .expect("an entry");
    assert_eq!(
        (
            entry.who.as_str(),
            entry.action.as_str(),
            entry.outcome.as_str()
        ),
        ("bo", "approve", "approved the deploy requested by ana")
    );
}

#[tokio::test]
async fn an_approved_stop_runs_and_a_second_held_change_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    protect(&context, 1).await;
    let held = stored(&context, ApprovalAction::Stop, 1);
    let ana = user("ana", Role::Operator);
    let app = stop::AppRef {
        app: "a".into(),
        environment: "default".into(),
    };
    refused(
        stop::stop(&context, &ana, &app, false).await,
        Code::ApprovalAlreadyPending,
    );
    refused(
        approvals::approve(&context, &user("bo", Role::Operator), held.id).await,
        Code::ApprovalForbidden,
    );
    refused(
        stop::delete(&context, &ana, held.id, &Default::default()).await,
        Code::ApprovalRequired,
    );
    let stopped = approvals::approve(&context, &user("root", Role::Admin), held.id)
        .await
        .expect("approve");
    // The test app has no [stop] and no [container]: stopped at once, the
    // history naming who asked and who approved.
    assert_eq!(stopped.status, DeploymentStatus::Stopped);
    let last = stopped.transitions.last().expect("noted");
    assert_eq!(
        last.reason.as_deref(),
        Some(
            "stopped by ana, approved by root; nothing to run on the hosts (no [stop], no [container])"
        )
    );
    let approval = stopped.approval.expect("kept");
    assert_eq!(approval.outcome, ApprovalOutcome::Approved, "not void");
}

#[tokio::test]
async fn an_approved_redeploy_runs_a_new_round_naming_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    let held = stored(&context, ApprovalAction::Redeploy, 2);
    let running = approvals::approve(&context, &user("bo", Role::Operator), held.id)
        .await
        .expect("approve");
    assert_eq!(running.status, DeploymentStatus::Deploying);
    assert_eq!(
        running
            .tasks
            .iter()
            .filter(|task| task.status == TaskStatus::Queued)
            .count(),
        1,
        "one new deploy task for its host"
    );
    assert_eq!(
        running.transitions.last().and_then(|t| t.reason.as_deref()),
        Some("redeploy by ana, approved by bo")
    );
}

#[tokio::test]
async fn a_held_stop_is_withdrawn_by_cancel_and_its_deployment_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    let held = stored(&context, ApprovalAction::Stop, 1);
    let withdrawn = deployments::cancel(&context, &user("ana", Role::Operator), held.id)
        .await
        .expect("withdraw");
    assert_eq!(withdrawn.status, DeploymentStatus::Deployed);
    let approval = withdrawn.approval.expect("kept");
    assert_eq!(approval.outcome, ApprovalOutcome::Canceled);
    assert_eq!(
        approval.reason.as_deref(),
        Some("the stop requested by ana was withdrawn by ana")
    );
    assert!(context.store.pending_approvals().expect("index").is_empty());
    refused(
        deployments::cancel(&context, &user("ana", Role::Operator), held.id).await,
        Code::DeploymentInvalidState,
    );
}

#[tokio::test]
async fn a_canceled_held_deployment_ends_its_approval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    let held = stored(&context, ApprovalAction::Rollback, 1);
    let canceled = deployments::cancel(&context, &user("ana", Role::Operator), held.id)
        .await
        .expect("cancel");
    assert_eq!(canceled.status, DeploymentStatus::Canceled);
    let approval = canceled.approval.expect("kept");
    assert_eq!(approval.outcome, ApprovalOutcome::Canceled);
    assert_eq!(approval.reason.as_deref(), Some("canceled by ana"));
    refused(
        approvals::approve(&context, &user("root", Role::Admin), held.id).await,
        Code::ApprovalNotPending,
    );
}
