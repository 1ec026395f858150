//! The people routes in process: admins add, change, disable and remove
//! users and make setup links; anyone makes and revokes their own API
//! tokens from a signed-in browser (with the CSRF token), never with a
//! token; refusals carry their codes.

use axum::http::{Method, StatusCode};

use super::harness;
use crate::ops;
use crate::store::Role;

#[tokio::test]
async fn admins_manage_users_and_refusals_name_the_reason() {
    let api = harness().await;
    let added = api
        .admin(
            Method::POST,
            "/api/v1/users",
            r#"{"name": "olga", "role": "operator", "email": "olga@example.com"}"#,
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{:?}", added.body);
    assert_eq!(added.body["role"], "operator");
    let again = api
        .admin(Method::POST, "/api/v1/users", r#"{"name": "olga"}"#)
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{:?}", again.body);
    let bad_role = api
        .admin(
            Method::POST,
            "/api/v1/users",
            r#"{"name": "pat", "role": "root"}"#,
        )
        .await;
    assert_eq!(bad_role.code(), "request/invalid");
    assert!(
        bad_role.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("viewer, operator or admin")
    );
    let json = [("content-type", "application/json")];
    let by_viewer = api
        .send(
            Method::POST,
            "/api/v1/users",
            Some(&api.viewer),
            &json,
            r#"{"name": "eve"}"#,
        )
        .await;
    assert_eq!(by_viewer.status, StatusCode::FORBIDDEN);

    let demoted = api
        .admin(
            Method::PATCH,
            "/api/v1/users/olga",
            r#"{"role": "viewer", "disabled": true}"#,
        )
        .await;
    assert_eq!(demoted.status, StatusCode::OK, "{:?}", demoted.body);
    assert_eq!(
        (
            demoted.body["role"].as_str(),
            demoted.body["disabled"].as_bool()
        ),
        (Some("viewer"), Some(true))
    );
    let nothing = api.admin(Method::PATCH, "/api/v1/users/olga", "{}").await;
    assert_eq!(nothing.code(), "request/invalid");
    let last_admin = api
        .admin(Method::PATCH, "/api/v1/users/ada", r#"{"disabled": true}"#)
        .await;
    assert_eq!(last_admin.code(), "user/last-admin");

    let link = api
        .admin(
            Method::POST,
            "/api/v1/users/olga/setup-link",
            r#"{"expires": "1h"}"#,
        )
        .await;
    assert_eq!(link.status, StatusCode::CREATED, "{:?}", link.body);
    assert!(link.body["url"].as_str().unwrap_or("").contains("/setup"));
    let too_long = api
        .admin(
            Method::POST,
            "/api/v1/users/olga/setup-link",
            r#"{"expires": "30d"}"#,
        )
        .await;
    assert_eq!(too_long.code(), "request/invalid");
    let nobody = api
        .admin(Method::POST, "/api/v1/users/nobody/setup-link", "")
        .await;
    assert_eq!(nobody.code(), "user/not-found");

    let removed = api.admin(Method::DELETE, "/api/v1/users/olga", "").await;
    assert_eq!(removed.status, StatusCode::OK, "{:?}", removed.body);
    let gone = api.admin(Method::DELETE, "/api/v1/users/olga", "").await;
    assert_eq!(gone.code(), "user/not-found");
    let listed = api.admin(Method::GET, "/api/v1/users", "").await;
    let names: Vec<&str> = listed.body["users"]
        .as_array()
        .map(|users| {
            users
                .iter()
                .filter_map(|user| user["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(names, ["ada", "vic"]);
}

#[tokio::test]
async fn a_signed_in_user_makes_and_revokes_its_own_tokens() {
    let api = harness().await;
    let here = "127.0.0.1".parse().expect("address");
    let session = ops::sessions::start(&api.context, "vic", Role::Viewer, here).expect("session");
    let cookie = format!("berth_session={}", session.cookie);
    let csrf = session.session.csrf_token.clone();
    let forged = [
        ("content-type", "application/json"),
        ("cookie", cookie.as_str()),
        ("x-csrf-token", "forged"),
    ];
    let refused = api
        .send(
            Method::POST,
            "/api/v1/api-tokens",
            None,
            &forged,
            r#"{"name": "ci"}"#,
        )
        .await;
    assert_eq!(refused.code(), "auth/csrf-failed");

    let good = [
        ("content-type", "application/json"),
        ("cookie", cookie.as_str()),
        ("x-csrf-token", csrf.as_str()),
    ];
    let made = api
        .send(
            Method::POST,
            "/api/v1/api-tokens",
            None,
            &good,
            r#"{"name": "ci", "expires": "90d", "role_cap": "viewer"}"#,
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    let token = made.body["token"].as_str().unwrap_or_default().to_string();
    assert!(token.starts_with("bta_"), "{token}");
    assert_eq!(made.body["role_cap"], "viewer");
    assert!(made.body["expires_at"].is_string());

    let json = [("content-type", "application/json")];
    let by_token = api
        .send(
            Method::POST,
            "/api/v1/api-tokens",
            Some(&token),
            &json,
            r#"{"name": "more"}"#,
        )
        .await;
    assert_eq!(by_token.code(), "auth/permission-denied");

    let id = made.body["id"].as_str().unwrap_or_default().to_string();
    let path = format!("/api/v1/api-tokens/{id}");
    let revoked = api.send(Method::DELETE, &path, None, &good, "").await;
    assert_eq!(revoked.status, StatusCode::OK, "{:?}", revoked.body);
    assert_eq!(revoked.body["state"], "revoked");
    let refused = api
        .send(Method::GET, "/api/v1/whoami", Some(&token), &[], "")
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
}
