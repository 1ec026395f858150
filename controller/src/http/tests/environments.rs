//! The environment routes in process: create, list (one app's and every
//! app's), read, change and remove with their statuses and codes; unknown
//! fields, bad types and bad variables refused; a viewer reads but may not
//! create; an operator's token may not unprotect production.

use axum::http::Method;
use serde_json::json;

use super::*;

/// An API token of a new operator `olga`.
async fn operator(api: &Harness) -> String {
    let admin = crate::testing::user("ada", Role::Admin);
    let user = ops::users::NewUser {
        name: "olga".into(),
        role: Role::Operator,
        email: None,
    };
    ops::users::add(&api.context, &admin, user)
        .await
        .expect("user");
    token(&api.context, &crate::testing::user("olga", Role::Operator)).await
}

/// `path` read with the viewer's token.
async fn read(api: &Harness, path: &str) -> Answer {
    api.send(Method::GET, path, Some(&api.viewer), &[], "")
        .await
}

#[track_caller]
fn answered(answer: &Answer, status: u16, code: &str) {
    assert_eq!(
        (answer.status.as_u16(), answer.code()),
        (status, code),
        "{:?}",
        answer.body
    );
}

#[tokio::test]
async fn environments_are_created_read_changed_and_removed() {
    let api = harness().await;
    let made = api
        .admin(
            Method::POST,
            "/api/v1/apps/web/environments",
            r#"{"name": "prod", "type": "production", "default": true, "protected": true,
                "approvals": 2, "vars": {"LOG": "info", "PORT": 8080}}"#,
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    assert_eq!(
        (
            &made.body["type"],
            &made.body["default"],
            &made.body["approvals"]
        ),
        (&json!("production"), &json!(true), &json!(2))
    );
    assert_eq!(made.body["vars"], json!({"LOG": "info", "PORT": "8080"}));
    let again = api
        .admin(
            Method::POST,
            "/api/v1/apps/web/environments",
            r#"{"name": "prod", "type": "staging"}"#,
        )
        .await;
    answered(&again, 409, "environment/exists");
    let staging = api
        .admin(
            Method::POST,
            "/api/v1/apps/web/environments",
            r#"{"name": "staging", "type": "staging"}"#,
        )
        .await;
    assert_eq!(staging.status, StatusCode::CREATED, "{:?}", staging.body);
    api.admin(
        Method::POST,
        "/api/v1/apps/api/environments",
        r#"{"name": "prod", "type": "production"}"#,
    )
    .await;

    let names = |answer: &Answer| -> Vec<String> {
        answer.body["environments"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|env| format!("{}/{}", env["app"], env["name"]).replace('"', ""))
                    .collect()
            })
            .unwrap_or_default()
    };
    let web = read(&api, "/api/v1/apps/web/environments").await;
    assert_eq!(names(&web), ["web/prod", "web/staging"]);
    let all = read(&api, "/api/v1/environments").await;
    assert_eq!(names(&all), ["api/prod", "web/prod", "web/staging"]);
    let none = read(&api, "/api/v1/apps/blog/environments").await;
    assert_eq!((none.status, names(&none).len()), (StatusCode::OK, 0));
    let one = read(&api, "/api/v1/apps/web/environments/prod").await;
    assert_eq!(
        (one.status, &one.body["name"]),
        (StatusCode::OK, &json!("prod"))
    );
    let missing = read(&api, "/api/v1/apps/web/environments/qa").await;
    answered(&missing, 404, "environment/not-found");

    let changed = api
        .admin(
            Method::PATCH,
            "/api/v1/apps/web/environments/staging",
            r#"{"type": "preview", "default": true, "vars": {"A": "1", "B": "2"}, "unset_vars": ["LOG"]}"#,
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.body);
    assert_eq!(
        (&changed.body["type"], &changed.body["default"]),
        (&json!("preview"), &json!(true))
    );
    let prod = read(&api, "/api/v1/apps/web/environments/prod").await;
    assert_eq!(prod.body["default"], false, "one default per app");
    let unset = api
        .admin(
            Method::PATCH,
            "/api/v1/apps/web/environments/staging",
            r#"{"unset_vars": ["A"]}"#,
        )
        .await;
    assert_eq!(unset.body["vars"], json!({"B": "2"}));

    let removed = api
        .admin(Method::DELETE, "/api/v1/apps/web/environments/staging", "")
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{:?}", removed.body);
    let gone = api
        .admin(Method::DELETE, "/api/v1/apps/web/environments/staging", "")
        .await;
    answered(&gone, 404, "environment/not-found");
}

#[tokio::test]
async fn bad_requests_and_roles_are_refused_with_their_codes() {
    let api = harness().await;
    let route = "/api/v1/apps/web/environments";
    for (body, says) in [
        (
            r#"{"name": "prod", "type": "prod"}"#,
            "not one of production",
        ),
        (r#"{"name": "prod"}"#, "field `type` is missing"),
        (
            r#"{"name": "prod", "type": "staging", "colour": "red"}"#,
            "unknown field `colour`",
        ),
        (r#"{"name": "Prod", "type": "staging"}"#, "environment name"),
        (
            r#"{"name": "prod", "type": "staging", "approvals": 3}"#,
            "give 1 or 2",
        ),
        (
            r#"{"name": "prod", "type": "staging", "vars": {"1X": "v"}}"#,
            "not a variable name",
        ),
        (
            r#"{"name": "prod", "type": "staging", "vars": ["A"]}"#,
            "field `vars`",
        ),
    ] {
        let answer = api.admin(Method::POST, route, body).await;
        answered(&answer, 400, "request/invalid");
        let message = answer.body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(says), "{body}: {message}");
    }
    let json = [("content-type", "application/json")];
    let by_viewer = api
        .send(
            Method::POST,
            route,
            Some(&api.viewer),
            &json,
            r#"{"name": "prod", "type": "staging"}"#,
        )
        .await;
    answered(&by_viewer, 403, "auth/permission-denied");

    // An operator makes production protected, and may not unprotect it.
    let olga = operator(&api).await;
    let made = api
        .send(
            Method::POST,
            route,
            Some(&olga),
            &json,
            r#"{"name": "prod", "type": "production", "protected": true}"#,
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    let prod = "/api/v1/apps/web/environments/prod";
    for body in [r#"{"protected": false}"#, r#"{"approvals": 2}"#] {
        let answer = api
            .send(Method::PATCH, prod, Some(&olga), &json, body)
            .await;
        answered(&answer, 403, "auth/permission-denied");
    }
    let removal = api.send(Method::DELETE, prod, Some(&olga), &[], "").await;
    answered(&removal, 403, "auth/permission-denied");
    let unknown = api
        .send(
            Method::PATCH,
            prod,
            Some(&olga),
            &json,
            r#"{"unset": ["A"]}"#,
        )
        .await;
    answered(&unknown, 400, "request/invalid");
    let nothing = api
        .send(Method::PATCH, prod, Some(&olga), &json, "{}")
        .await;
    answered(&nothing, 400, "request/invalid");
    let unprotected = api
        .admin(Method::PATCH, prod, r#"{"protected": false}"#)
        .await;
    assert_eq!(
        unprotected.body["protected"], false,
        "{:?}",
        unprotected.body
    );
}
