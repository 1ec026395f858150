//! The secret routes in process: set, list and remove through the API by
//! role, the scope the query names, and answers and refusals that never
//! hold a value.

use axum::http::Method;

use super::*;

const VALUE: &str = "s3cr3t-value-never-shown-0451";

#[tokio::test]
async fn secrets_are_set_listed_and_removed_and_no_answer_holds_a_value() {
    let api = harness().await;
    let app_secret = "/api/v1/apps/web/environments/prod/secrets/DB_URL";
    let body = format!(r#"{{"value": "{VALUE}"}}"#);
    let json = [("content-type", "application/json")];

    let viewer = Some(api.viewer.as_str());
    let answer = api
        .send(Method::PUT, app_secret, viewer, &json, body.clone())
        .await;
    assert_eq!(
        (answer.status.as_u16(), answer.code()),
        (403, "auth/permission-denied")
    );
    let first = api.admin(Method::PUT, app_secret, &body).await;
    assert_eq!(first.status.as_u16(), 200, "{:?}", first.body);
    assert_eq!(
        (&first.body["scope"], &first.body["version"]),
        (&"web/prod".into(), &1.into())
    );
    let second = api.admin(Method::PUT, app_secret, &body).await;
    assert_eq!(second.body["version"], 2);
    let fleet = api.admin(Method::PUT, "/api/v1/secrets/TOKEN", &body).await;
    assert_eq!(fleet.body["scope"], "*", "{:?}", fleet.body);

    let all = api
        .send(Method::GET, "/api/v1/secrets", viewer, &[], "")
        .await;
    assert_eq!(all.status.as_u16(), 200, "{:?}", all.body);
    assert_eq!(all.body["secrets"].as_array().map(Vec::len), Some(2));
    let one = "/api/v1/secrets?app=web&environment=prod";
    let one = api.send(Method::GET, one, viewer, &[], "").await;
    assert_eq!(one.body["secrets"][0]["name"], "DB_URL");
    assert_eq!(one.body["secrets"].as_array().map(Vec::len), Some(1));
    let only_fleet = api
        .send(Method::GET, "/api/v1/secrets?fleet=true", viewer, &[], "")
        .await;
    assert_eq!(only_fleet.body["secrets"][0]["name"], "TOKEN");
    let half = api
        .send(Method::GET, "/api/v1/secrets?app=web", viewer, &[], "")
        .await;
    assert_eq!(half.code(), "request/invalid");

    for refused in [
        (r#"{"value": ""}"#, "secret/invalid"),
        (r#"{"value": 4711}"#, "request/invalid"),
        (r#"{"value": "x", "extra": 1}"#, "request/invalid"),
        (r#""s3cr3t-value-never-shown-0451""#, "request/invalid"),
    ] {
        let answer = api.admin(Method::PUT, app_secret, refused.0).await;
        assert_eq!(answer.code(), refused.1, "{}: {:?}", refused.0, answer.body);
        assert!(!answer.body.to_string().contains("4711"));
    }
    let bad_name = "/api/v1/apps/web/environments/prod/secrets/BERTH_X";
    let answer = api.admin(Method::PUT, bad_name, &body).await;
    assert_eq!(answer.code(), "secret/invalid");
    let bad_app = "/api/v1/apps/Web/environments/prod/secrets/X";
    let answer = api.admin(Method::PUT, bad_app, &body).await;
    assert_eq!(answer.code(), "secret/invalid");

    let removed = api.admin(Method::DELETE, app_secret, "").await;
    assert_eq!(removed.body["version"], 2, "{:?}", removed.body);
    let again = api.admin(Method::DELETE, app_secret, "").await;
    assert_eq!(
        (again.status.as_u16(), again.code()),
        (404, "secret/not-found")
    );
    let gone = api.admin(Method::DELETE, "/api/v1/secrets/TOKEN", "").await;
    assert_eq!(gone.body["name"], "TOKEN");

    for answer in [first, second, fleet, all, removed, gone] {
        assert!(
            !answer.body.to_string().contains(VALUE),
            "{:?}",
            answer.body
        );
    }
    let audit = api.admin(Method::GET, "/api/v1/audit", "").await;
    assert!(!audit.body.to_string().contains(VALUE), "{:?}", audit.body);
}
