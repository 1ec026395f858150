//! The app catalogue and its ratings against a real store: what lists
//! show, who may rate what, one rating per user whatever its credential,
//! refusals with their codes, and the audit entries.

use berth_shared::record::{AppSummary, RatingSummary};
use berth_shared::state::DeploymentStatus;

use super::*;
use crate::server::Context;
use crate::store::Role;
use crate::testing::{context, user};

/// Stores a settled deployment of `app` in `environment` at `version`,
/// its id a millisecond after the previous one's: ids made within one
/// millisecond would sort by their random part, not by creation.
fn deployed(context: &Context, app: &str, environment: &str, version: &str) {
    static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let ms = u64::try_from(berth_shared::time::now_ms()).unwrap_or(0)
        + MADE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let mut deployment = crate::testing::deployment(&["h1"], 0);
    deployment.id = berth_shared::id::DeploymentId(ulid::Ulid::from_parts(ms, rand::random()));
    deployment.app = app.into();
    deployment.environment = environment.into();
    deployment.version = version.into();
    deployment.status = DeploymentStatus::Deployed;
    context
        .store
        .create_deployment(&deployment, true, false)
        .expect("create");
}

/// The caller `name` coming with its API token `ci`.
fn via_token(name: &str, role: Role) -> Caller {
    Caller {
        serial: "token:t1".into(),
        via_token: Some("ci".into()),
        ..user(name, role)
    }
}

#[track_caller]
pub(super) fn refused<T: std::fmt::Debug>(result: Result<T>, code: Code) -> Error {
    match result {
        Err(err) => {
            assert_eq!(err.code, code, "{err}");
            err
        }
        Ok(value) => panic!("allowed, not {}: {value:?}", code.as_str()),
    }
}

fn app<'a>(apps: &'a [AppSummary], name: &str) -> &'a AppSummary {
    apps.iter()
        .find(|app| app.app == name)
        .unwrap_or_else(|| panic!("{name} is not listed: {apps:?}"))
}

#[tokio::test]
async fn the_catalogue_lists_each_environment_newest_first_with_ratings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    deployed(&context, "web", "prod", "1");
    deployed(&context, "web", "staging", "2");
    deployed(&context, "web", "prod", "3");
    deployed(&context, "api", "prod", "7");
    let ana = user("ana", Role::Viewer);
    let bo = user("bo", Role::Operator);
    ratings::rate(&context, &ana, "web", 2).await.expect("rate");
    ratings::rate(&context, &ana, "web", 5)
        .await
        .expect("again");
    let after = ratings::rate(&context, &bo, "web", 4).await.expect("rate");
    assert_eq!(after, RatingSummary::new([0, 0, 0, 1, 1], Some(4)));

    let apps = apps::list(&context, &ana).await.expect("list");
    let names: Vec<&str> = apps.iter().map(|app| app.app.as_str()).collect();
    assert_eq!(names, ["api", "web"]);
    let web = app(&apps, "web");
    let latest: Vec<(&str, &str)> = web
        .environments
        .iter()
        .map(|env| (env.environment.as_str(), env.latest.version.as_str()))
        .collect();
    assert_eq!(latest, [("prod", "3"), ("staging", "2")]);
    assert_eq!(web.rating.count, 2);
    assert_eq!(web.rating.average, Some(4.5));
    assert_eq!(
        web.rating.my_stars,
        Some(5),
        "ana's second rating replaced her first"
    );
    let api = app(&apps, "api");
    assert_eq!((api.rating.count, api.rating.average), (0, None));

    let shown = apps::get(&context, &bo, "web").await.expect("show");
    assert_eq!(shown.rating.my_stars, Some(4));
    let prod = &shown.environments[0];
    let versions: Vec<&str> = prod
        .deployments
        .iter()
        .map(|d| d.version.as_str())
        .collect();
    assert_eq!(
        (prod.environment.as_str(), versions),
        ("prod", vec!["3", "1"])
    );
    refused(
        apps::get(&context, &ana, "nothing").await,
        Code::AppNotFound,
    );
}

#[tokio::test]
async fn a_token_and_a_certificate_of_one_user_rate_as_that_user() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    deployed(&context, "web", "prod", "1");
    ratings::rate(&context, &user("ana", Role::Admin), "web", 1)
        .await
        .expect("rate");
    // Her token is capped at viewer; it is still her rating it replaces.
    let token = via_token("ana", Role::Viewer);
    let summary = ratings::rate(&context, &token, "web", 3)
        .await
        .expect("rate");
    assert_eq!((summary.count, summary.my_stars), (1, Some(3)));
    let cleared = ratings::clear(&context, &user("ana", Role::Admin), "web")
        .await
        .expect("clear");
    assert_eq!(cleared, RatingSummary::default());
    let again = ratings::clear(&context, &token, "web")
        .await
        .expect("clear");
    assert_eq!(again.count, 0, "clearing nothing is no error");

    let audit = context.store.audit_entries(10).expect("audit");
    let seen: Vec<(&str, &str, &str)> = audit
        .iter()
        .map(|entry| {
            (
                entry.who.as_str(),
                entry.action.as_str(),
                entry.outcome.as_str(),
            )
        })
        .collect();
    assert!(
        seen.contains(&("ana via token ci", "rating.set", "3 stars (was 1)")),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("ana", "rating.clear", "cleared (was 3 stars)")),
        "{seen:?}"
    );
    assert!(audit.iter().all(|entry| entry.target == "web"), "{audit:?}");
}

#[tokio::test]
async fn ratings_out_of_range_or_of_missing_apps_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    deployed(&context, "web", "prod", "1");
    let viewer = user("vi", Role::Viewer);
    for stars in [0, 6, 256, u64::MAX] {
        let err = refused(
            ratings::rate(&context, &viewer, "web", stars).await,
            Code::RatingInvalid,
        );
        assert!(
            err.message
                .starts_with(&format!("{stars} stars is not a rating"))
                && err.message.contains("from 1 to 5"),
            "{}",
            err.message
        );
    }
    refused(
        ratings::rate(&context, &viewer, "nothing", 3).await,
        Code::AppNotFound,
    );
    refused(
        ratings::rate(&context, &viewer, "we", 3).await,
        Code::AppNotFound,
    );
    let long = "a".repeat(300);
    refused(
        ratings::rate(&context, &viewer, &long, 3).await,
        Code::RequestInvalid,
    );
    let (tally, _) = context.store.rating_tally("web", "vi").expect("tally");
    assert_eq!(tally.count, 0, "nothing refused was stored");
}

#[tokio::test]
async fn only_people_rate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    deployed(&context, "web", "prod", "1");
    let mut agent = user("web-1", Role::Admin);
    agent.principal.kind = crate::store::PrincipalKind::Agent;
    refused(
        ratings::rate(&context, &agent, "web", 3).await,
        Code::AuthPermissionDenied,
    );
    refused(
        apps::list(&context, &agent).await,
        Code::AuthPermissionDenied,
    );
}
