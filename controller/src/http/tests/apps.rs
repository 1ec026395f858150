//! The app routes in process: a viewer's web session rates with its CSRF
//! token (and is refused without it), its token rates as the same user,
//! refusals carry their codes, and the catalogue shows the result.

use std::net::{IpAddr, Ipv4Addr};

use axum::http::Method;
use serde_json::json;

use super::*;

const PASSWORD: &str = "correct horse battery";

/// A settled deployment of `app` in the harness's store.
fn deployed(context: &Context, app: &str) {
    let mut deployment = crate::testing::deployment(&["h1"], 0);
    deployment.app = app.into();
    deployment.status = berth_shared::state::DeploymentStatus::Deployed;
    context
        .store
        .create_deployment(&deployment, true, false)
        .expect("create");
}

#[tokio::test]
async fn a_session_rates_with_its_csrf_token_and_a_token_rates_as_the_same_user() {
    let api = harness().await;
    let context = &api.context;
    deployed(context, "web");
    let vic = crate::testing::user("vic", Role::Viewer);
    ops::users::set_password(context, &vic, "vic", PASSWORD)
        .await
        .expect("password");
    let login = ops::sessions::Login {
        name: "vic".into(),
        password: PASSWORD.into(),
        address: IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let started = ops::sessions::login(context, login)
        .await
        .expect("signed in");
    let cookie = format!("berth_session={}", started.cookie);
    let csrf = started.session.csrf_token.clone();
    let rating = "/api/v1/apps/web/rating";
    let json = ("content-type", "application/json");

    let forged = [("cookie", cookie.as_str()), json];
    let answer = api
        .send(Method::PUT, rating, None, &forged, r#"{"stars": 5}"#)
        .await;
    assert_eq!(
        (answer.status.as_u16(), answer.code()),
        (403, "auth/csrf-failed")
    );
    let session = [
        ("cookie", cookie.as_str()),
        ("x-csrf-token", csrf.as_str()),
        json,
    ];
    let answer = api
        .send(Method::PUT, rating, None, &session, r#"{"stars": 5}"#)
        .await;
    assert_eq!(answer.status.as_u16(), 200, "{:?}", answer.body);
    assert_eq!(answer.body["my_stars"], 5);

    let token = [json];
    let viewer = Some(api.viewer.as_str());
    let answer = api
        .send(Method::PUT, rating, viewer, &token, r#"{"stars": 2}"#)
        .await;
    assert_eq!(
        (&answer.body["count"], &answer.body["my_stars"]),
        (&json!(1), &json!(2)),
        "the token's rating replaced the session's: {:?}",
        answer.body
    );
    let answer = api.admin(Method::PUT, rating, r#"{"stars": 5}"#).await;
    assert_eq!(answer.body["average"], 3.5, "{:?}", answer.body);
    let listed = api.admin(Method::GET, "/api/v1/apps", "").await;
    let web = &listed.body["apps"][0];
    assert_eq!(
        (&web["app"], &web["rating"]["count"]),
        (&json!("web"), &json!(2))
    );
    assert_eq!(web["environments"][0]["latest"]["status"], "deployed");

    let answer = api.send(Method::DELETE, rating, None, &session, "").await;
    assert_eq!(answer.status.as_u16(), 200, "{:?}", answer.body);
    assert_eq!(answer.body["count"], 1);
    assert_eq!(answer.body["my_stars"], json!(null));
    let shown = api.admin(Method::GET, "/api/v1/apps/web", "").await;
    assert_eq!(shown.body["rating"]["my_stars"], 5, "{:?}", shown.body);
}

#[tokio::test]
async fn ratings_are_refused_with_their_codes() {
    let api = harness().await;
    deployed(&api.context, "web");
    let cases = [
        (
            "/api/v1/apps/web/rating",
            r#"{"stars": 0}"#,
            400,
            "rating/invalid",
        ),
        (
            "/api/v1/apps/web/rating",
            r#"{"stars": 6}"#,
            400,
            "rating/invalid",
        ),
        (
            "/api/v1/apps/web/rating",
            r#"{"stars": "4"}"#,
            400,
            "request/invalid",
        ),
        ("/api/v1/apps/web/rating", r#"{}"#, 400, "request/invalid"),
        (
            "/api/v1/apps/web/rating",
            r#"{"stars": 4, "x": 1}"#,
            400,
            "request/invalid",
        ),
        (
            "/api/v1/apps/nothing/rating",
            r#"{"stars": 4}"#,
            404,
            "app/not-found",
        ),
    ];
    for (path, body, status, code) in cases {
        let answer = api.admin(Method::PUT, path, body).await;
        assert_eq!(
            (answer.status.as_u16(), answer.code()),
            (status, code),
            "{body}: {:?}",
            answer.body
        );
    }
    let answer = api.admin(Method::GET, "/api/v1/apps/nothing", "").await;
    assert_eq!(
        (answer.status.as_u16(), answer.code()),
        (404, "app/not-found")
    );
    let answer = api.send(Method::GET, "/api/v1/apps", None, &[], "").await;
    assert_eq!(answer.status.as_u16(), 401);
}
