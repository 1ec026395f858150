//! Every operation checks the caller's role itself, before anything else:
//! run against a real store on disk with callers one role short.

use std::sync::Arc;

use berth_shared::id::DeploymentId;

use super::*;
use crate::store::Role;
use crate::testing::context;

fn caller(role: Role) -> Caller {
    crate::testing::user("ana", role)
}

#[track_caller]
fn denied<T: std::fmt::Debug>(what: &str, result: Result<T>) {
    match result {
        Err(err) => assert_eq!(err.code, Code::AuthPermissionDenied, "{what}: {err}"),
        Ok(value) => panic!("{what} was allowed: {value:?}"),
    }
}

#[tokio::test]
async fn a_viewer_may_not_change_anything_and_an_operator_may_not_administer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    let viewer = caller(Role::Viewer);
    let operator = caller(Role::Operator);
    let id = DeploymentId::new();
    let app = stop::AppRef {
        app: "web".into(),
        environment: "prod".into(),
    };
    let claim = rerun::Claim::default();
    let ctx = &*context;
    let v = &viewer;
    denied("create", create::create(ctx, v, Default::default()).await);
    let chunks = futures_util::stream::iter(Vec::<Result<Vec<u8>>>::new());
    denied("put blob", blobs::put(ctx, v, "sha256:00", 0, chunks).await);
    denied("stop", stop::stop(ctx, v, &app, false).await);
    denied(
        "stop selected",
        stop::stop_selected(ctx, v, "role=web", "").await,
    );
    denied(
        "delete",
        stop::delete(ctx, v, id, &Default::default()).await,
    );
    denied(
        "restore a snapshot",
        super::resources::restore(ctx, v, &Default::default()).await,
    );
    denied("cancel", deployments::cancel(ctx, v, id).await);
    denied("approve", approvals::approve(ctx, v, id).await);
    denied("purge", deployments::purge(ctx, v, id).await);
    denied("retry", rerun::retry(ctx, v, id, claim).await);
    denied("redeploy", rerun::redeploy(ctx, v, id, claim).await);
    denied("start", rerun::start(ctx, v, &app).await);
    let rollback = rerun::Rollback {
        app: app.clone(),
        ..Default::default()
    };
    denied("rollback", rerun::rollback(ctx, v, &rollback).await);
    let exec = exec::ExecRequest {
        selector: String::new(),
        argv: vec!["true".into()],
        timeout: std::time::Duration::ZERO,
    };
    denied("exec", exec::exec(context.clone(), v, exec).map(|_| ()));
    let o = &operator;
    let new_user = users::NewUser {
        name: "bo".into(),
        role: Role::Viewer,
        email: None,
    };
    denied("add user", users::add(ctx, o, new_user).await);
    denied("list users", users::list(ctx, o));
    denied("set role", users::set_role(ctx, o, "bo", Role::Admin).await);
    denied(
        "disable user",
        users::set_disabled(ctx, o, "bo", true).await,
    );
    denied("remove user", users::remove(ctx, o, "bo").await);
    denied("credential", users::credential(ctx, o, "bo", "").await);
    denied(
        "set another's password",
        users::set_password(ctx, o, "bo", "x").await,
    );
    denied("revoke agent", agents::revoke(ctx, o, "web-1").await);
    denied(
        "label agent",
        agents::label(ctx, v, "web-1", &[], &[]).await,
    );
    denied(
        "create token",
        tokens::create(ctx, o, Default::default()).await,
    );
    denied("list tokens", tokens::list(ctx, o));
    denied("revoke token", tokens::revoke(ctx, o, "abc").await);
    let login = registries::RegistryLogin::default();
    denied("registry login", registries::login(ctx, o, login).await);
    denied(
        "registry logout",
        registries::logout(ctx, o, "r.example").await,
    );
    // One role up, the same calls get past the check to the real answer.
    let reached = stop::delete(ctx, o, id, &Default::default())
        .await
        .expect_err("no such deployment");
    assert_eq!(reached.code, Code::DeploymentNotFound, "{reached}");
    let reached = tokens::revoke(ctx, &caller(Role::Admin), "abc").await;
    assert_eq!(
        reached.expect_err("no such token").code,
        Code::TokenNotFound
    );
    // Reads need the viewer role only.
    assert!(deployments::list(ctx, v, Default::default()).await.is_ok());
    assert!(agents::list(ctx, v).is_ok());
    assert!(status::status(ctx, v, "").is_ok());
}

#[tokio::test]
async fn an_api_token_acts_for_its_user_at_most_at_its_cap_until_revoked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    let ctx = &*context;
    let admin = caller(Role::Admin);
    let store = &ctx.store;
    let new_user = users::NewUser {
        name: "ana".into(),
        role: Role::Operator,
        email: None,
    };
    users::add(ctx, &admin, new_user).await.expect("add ana");
    let ana = caller(Role::Operator);
    let capped = api_tokens::NewApiToken {
        name: "ci".into(),
        role_cap: Some(Role::Viewer),
        ..Default::default()
    };
    let created = api_tokens::create(ctx, &ana, capped).await.expect("token");
    let acting = auth::by_api_token(store, &created.token).expect("accepted");
    assert_eq!(acting.principal.name, "ana");
    assert_eq!(
        acting.principal.role,
        Role::Viewer,
        "capped below ana's role"
    );
    assert_eq!(acting.who(), "ana via token ci");
    let used = store.get_api_token(&created.view.id).expect("read");
    assert!(
        used.and_then(|token| token.last_used_at).is_some(),
        "use noted"
    );
    // A token cannot make tokens.
    let again = api_tokens::create(
        ctx,
        &acting,
        api_tokens::NewApiToken {
            name: "more".into(),
            ..Default::default()
        },
    );
    denied("a token making a token", again.await);

    // A wrong secret, a disabled user, a revoked token: all refused alike.
    let forged = format!(
        "{}_{}",
        created.view.prefix.trim_end_matches('_'),
        "x".repeat(43)
    );
    let refused = auth::by_api_token(store, &forged).expect_err("forged");
    assert_eq!(refused.code, Code::AuthUnauthenticated);
    users::set_disabled(ctx, &admin, "ana", true)
        .await
        .expect("disable");
    let disabled = auth::by_api_token(store, &created.token).expect_err("disabled");
    assert_eq!(disabled.code, Code::AuthDisabled);
    users::set_disabled(ctx, &admin, "ana", false)
        .await
        .expect("enable");
    assert!(auth::by_api_token(store, &created.token).is_ok());
    api_tokens::revoke(ctx, &ana, &created.view.id)
        .await
        .expect("revoke");
    let revoked = auth::by_api_token(store, &created.token).expect_err("revoked");
    assert_eq!(revoked.code, Code::AuthUnauthenticated);
    assert_eq!(refused.message, revoked.message, "refusals say the same");
}

#[tokio::test]
async fn outside_deployment_events_update_one_record_shown_in_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    let ctx = &*context;
    let operator = caller(Role::Operator);
    let event = |status: &str| external::ExternalEvent {
        app: "shop".into(),
        version: "2.1.0".into(),
        environment: "prod".into(),
        status: external::ExternalStatus::parse(status).expect("status"),
        deployed_by: Some("jenkins".into()),
        provenance: provenance::Provenance {
            commit_sha: Some("abcdef1".into()),
            ..Default::default()
        },
        extra_metadata: [("job".to_string(), "deploy-shop".to_string())].into(),
    };
    denied(
        "a viewer reporting",
        external::record(ctx, &caller(Role::Viewer), event("started")).await,
    );
    let started = external::record(ctx, &operator, event("started"))
        .await
        .expect("started");
    assert_eq!(
        started.status,
        berth_shared::state::DeploymentStatus::Deploying
    );
    assert_eq!(
        (started.origin.as_str(), started.trigger.as_str()),
        ("external", "external")
    );
    assert!(started.tasks.is_empty(), "never dispatched");
    let done = external::record(ctx, &operator, event("success"))
        .await
        .expect("success");
    assert_eq!(
        done.id, started.id,
        "one record per app, version and environment"
    );
    assert_eq!(done.status, berth_shared::state::DeploymentStatus::Deployed);
    assert_eq!(done.triggered_by, "jenkins");
    assert_eq!(done.commit_sha.as_deref(), Some("abcdef1"));
    assert!(done.duration_ms.is_some(), "{done:?}");
    let rows = status::status(ctx, &operator, "prod").expect("status");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].app.as_str(), rows[0].version.as_str()),
        ("shop", "2.1.0")
    );
    let late = external::record(ctx, &operator, event("pending"))
        .await
        .expect_err("late");
    assert_eq!(late.code, Code::DeploymentInvalidState, "{late}");
    // It holds no running slot: berth's own deploys of the app are not refused by it.
    assert_eq!(ctx.store.slot_holder("shop", "prod").expect("slot"), None);
    let bad = external::ExternalEvent {
        version: "has space".into(),
        ..event("started")
    };
    assert_eq!(
        external::record(ctx, &operator, bad)
            .await
            .expect_err("bad")
            .code,
        Code::RequestInvalid
    );
}

#[tokio::test]
async fn all_sends_every_changed_deployment_and_skips_purged_ones() {
    use futures_util::StreamExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    let mut changes = watch::all(context.clone(), &caller(Role::Viewer)).expect("subscribed");
    let stored = crate::testing::deployment(&["web-1"], 0);
    context
        .store
        .create_deployment(&stored, false, false)
        .expect("stored");
    // A change to a deployment the store no longer has is left out.
    context.hub.publish(crate::hub::HubEvent::Changed {
        deployment: DeploymentId::new(),
    });
    context.hub.publish(crate::hub::HubEvent::Changed {
        deployment: stored.id,
    });
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), changes.next())
        .await
        .expect("a change in time")
        .expect("the stream goes on")
        .expect("a deployment");
    assert_eq!(next.id, stored.id);
    context.shutdown.cancel();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), changes.next()).await;
    assert!(matches!(ended, Ok(None)), "the stream ends at shutdown");
}

#[tokio::test]
async fn a_rate_limited_trigger_says_when_to_try_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    let mut context = Arc::into_inner(context).expect("one owner");
    context.triggers = Some(crate::limit::RateLimit::new(
        1,
        std::time::Duration::from_secs(60),
    ));
    assert!(create::check_trigger_rate(&context, "web").is_ok());
    let refused = create::check_trigger_rate(&context, "web").expect_err("over the limit");
    assert_eq!(refused.code, Code::DeploymentRateLimited);
    let wait = refused.retry_after.expect("a wait");
    assert!(
        (59..=60).contains(&wait.as_secs()) && wait.subsec_nanos() == 0,
        "{wait:?}"
    );
}
