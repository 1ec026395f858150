//! The DORA operation against a real store: who may read it, the window
//! it reads (the default environment, paging), and its refusals with
//! their codes.

use berth_shared::record::Timestamp;
use berth_shared::state::DeploymentStatus;

use super::*;
use crate::store::Role;
use crate::testing::{context, user};

/// Stores `count` deployments of `app` in `environment`, deployed an hour
/// ago.
fn deployed(context: &Context, app: &str, environment: &str, count: usize) {
    for _ in 0..count {
        let mut deployment = crate::testing::deployment(&["h1"], 0);
        deployment.id = berth_shared::id::DeploymentId::new();
        deployment.app = app.into();
        deployment.environment = environment.into();
        deployment.status = DeploymentStatus::Deployed;
        let hour_ago = Timestamp(Timestamp::now().0 - 3_600_000);
        deployment.created_at = hour_ago;
        deployment.finished_at = Some(hour_ago);
        context
            .store
            .create_deployment(&deployment, true, false)
            .expect("create");
    }
}

fn request(app: &str, environment: &str, since: &str, fix_window: &str) -> DoraRequest {
    DoraRequest {
        app: app.into(),
        environment: environment.into(),
        since: since.into(),
        fix_window: fix_window.into(),
    }
}

#[tokio::test]
async fn a_viewer_reads_the_figures_over_more_than_a_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    deployed(&context, "web", "prod", PAGE + 3);
    let viewer = user("vera", Role::Viewer);
    let report = report(&context, &viewer, &request("web", "", "", ""))
        .await
        .expect("report");
    assert_eq!(report.environment, "prod", "the app's only environment");
    assert_eq!(report.deployment_frequency.count, (PAGE + 3) as u64);
    assert_eq!(report.to.0 - report.from.0, 30 * 24 * 3_600_000, "30d");
    assert_eq!(report.fix_window_ms, 3_600_000, "1h");
    let short = report_of(&context, &viewer, "web", "30m").await;
    assert_eq!(short.deployment_frequency.count, 0, "deployed an hour ago");
}

async fn report_of(context: &Context, caller: &Caller, app: &str, since: &str) -> DoraReport {
    report(context, caller, &request(app, "prod", since, "1h"))
        .await
        .expect("report")
}

#[tokio::test]
async fn bad_windows_and_unknown_apps_are_refused_with_their_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    deployed(&context, "web", "prod", 1);
    let viewer = user("vera", Role::Viewer);
    for (since, fix_window) in [
        ("abc", "1h"),
        ("-5d", "1h"),
        ("0s", "1h"),
        ("400d", "1h"),
        ("30d", "8d"),
        ("30d", "soon"),
    ] {
        let refused = report(
            &context,
            &viewer,
            &request("web", "prod", since, fix_window),
        )
        .await
        .expect_err("refused");
        assert_eq!(
            refused.code,
            Code::MetricsInvalidWindow,
            "{since} {fix_window}: {refused}"
        );
    }
    let unknown = report(&context, &viewer, &request("nope", "", "", ""))
        .await
        .expect_err("unknown app");
    assert_eq!(unknown.code, Code::AppNotFound);
    let zero_fix = report(&context, &viewer, &request("web", "prod", "7d", "0s")).await;
    assert!(
        zero_fix.is_ok(),
        "a zero fix window blames no fix: {zero_fix:?}"
    );
}
