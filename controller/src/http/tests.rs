//! The router in process, on a real store: authentication, the error
//! shape and statuses, the request bounds, and hostile input answered with
//! a code (never a panic). The end-to-end tests (`tests/tests/http_api.rs`)
//! drive the real binaries over loopback.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use hyper::service::Service as _;
use hyper_util::service::TowerToHyperService;
use serde_json::Value;

use crate::ops::{self, Caller};
use crate::server::Context;
use crate::store::Role;

mod apps;
mod environments;
mod hostile;
mod people;
mod secrets;

struct Harness {
    service: TowerToHyperService<Router>,
    admin: String,
    viewer: String,
    _dir: tempfile::TempDir,
    context: Arc<Context>,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("(none)")
    }
}

async fn token(context: &Context, caller: &Caller) -> String {
    let new = ops::api_tokens::NewApiToken {
        name: "ci".into(),
        ..Default::default()
    };
    let created = ops::api_tokens::create(context, caller, new).await;
    created.expect("token").token
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = crate::testing::context(dir.path()).await;
    let admin = crate::testing::user("ada", Role::Admin);
    for (name, role) in [("ada", Role::Admin), ("vic", Role::Viewer)] {
        let user = ops::users::NewUser {
            name: name.into(),
            role,
            email: None,
        };
        ops::users::add(&context, &admin, user).await.expect("user");
    }
    Harness {
        service: TowerToHyperService::new(super::router(context.clone())),
        admin: token(&context, &admin).await,
        viewer: token(&context, &crate::testing::user("vic", Role::Viewer)).await,
        _dir: dir,
        context,
    }
}

impl Harness {
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body.into()).expect("request");
        let response = self.service.call(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn admin(&self, method: Method, path: &str, body: &str) -> Answer {
        let json = [("content-type", "application/json")];
        let body = body.to_string();
        self.send(method, path, Some(&self.admin), &json, body)
            .await
    }
}

#[tokio::test]
async fn credentials_are_checked_and_roles_applied() {
    let api = harness().await;
    let missing = api.send(Method::GET, "/api/v1/whoami", None, &[], "").await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.code(), "auth/unauthenticated");
    assert!(missing.headers.contains_key(header::WWW_AUTHENTICATE));
    let basic = [("authorization", "Basic YWRtaW46eA==")];
    let wrong = api
        .send(Method::GET, "/api/v1/whoami", None, &basic, "")
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let forged = api
        .send(
            Method::GET,
            "/api/v1/whoami",
            Some("bta_nosuch_xxxxxxxxxxxxxxxxxxxx"),
            &[],
            "",
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);

    let me = api
        .send(Method::GET, "/api/v1/whoami", Some(&api.viewer), &[], "")
        .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["principal"], "vic");
    assert_eq!(me.body["via_token"], "ci");
    let refused = api
        .send(
            Method::POST,
            "/api/v1/deployments",
            Some(&api.viewer),
            &[],
            "{}",
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "decoded first: {:?}",
        refused.body
    );
    let body = r#"{"manifest": "app = \"a\"", "bundle_digest": "sha256:00", "bundle_size": 1}"#;
    let refused = api
        .send(
            Method::POST,
            "/api/v1/deployments",
            Some(&api.viewer),
            &[],
            body,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.code(), "auth/permission-denied");
    let users = api
        .send(Method::GET, "/api/v1/users", Some(&api.viewer), &[], "")
        .await;
    assert_eq!(users.status, StatusCode::FORBIDDEN, "users are for admins");
    let users = api.admin(Method::GET, "/api/v1/users", "").await;
    assert_eq!(users.body["users"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn routes_methods_and_ids_are_checked_with_codes() {
    let api = harness().await;
    let unknown = api.admin(Method::GET, "/api/v2/nothing", "").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.code(), "request/not-found");
    let method = api.admin(Method::DELETE, "/api/v1/deployments", "").await;
    assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(method.code(), "request/method-not-allowed");
    assert!(method.headers.contains_key(header::ALLOW));
    let bad_id = api.admin(Method::GET, "/api/v1/deployments/nope", "").await;
    assert_eq!(
        (bad_id.status, bad_id.code()),
        (StatusCode::BAD_REQUEST, "request/invalid")
    );
    let long = format!("/api/v1/deployments/{}", "x".repeat(5000));
    let long = api.admin(Method::GET, &long, "").await;
    assert_eq!(long.status, StatusCode::BAD_REQUEST);
    assert!(
        long.body.to_string().len() < 1000,
        "the id is not echoed whole"
    );
    let no_such = "/api/v1/deployments/01ARZ3NDEKTSV4RRFFQ69G5FAV/cancel";
    let missing = api.admin(Method::POST, no_such, "").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "deployment/not-found");
    let list = api
        .admin(Method::GET, "/api/v1/deployments?status=bogus", "")
        .await;
    assert_eq!(list.status, StatusCode::BAD_REQUEST);
    assert!(
        list.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("status")
    );
    let page = api
        .admin(Method::GET, "/api/v1/deployments?limit=10&order=asc", "")
        .await;
    assert_eq!(
        page.body,
        serde_json::json!({"deployments": [], "next_offset": null})
    );
}

#[tokio::test]
async fn bodies_are_bounded_typed_and_checked() {
    let api = harness().await;
    let create = "/api/v1/deployments";
    let bad = api.admin(Method::POST, create, "{\"manifest\": ").await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "request/invalid")
    );
    let typo = api
        .admin(
            Method::POST,
            create,
            r#"{"manifest": "x", "bundle_digest": "d", "bundle_size": 1, "forse": true}"#,
        )
        .await;
    assert!(
        typo.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("forse")
    );
    let huge = format!(
        "{{\"manifest\": \"{}\"}}",
        "x".repeat(super::decode::MAX_JSON_BYTES)
    );
    let huge = api.admin(Method::POST, create, &huge).await;
    assert_eq!(
        (huge.status, huge.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "request/too-large")
    );
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let form = api
        .send(Method::POST, create, Some(&api.admin), &form, "a=b")
        .await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let manifest = r#"{"manifest": "app = \"web\"\n[target]\nhosts = [\"web-1\"]\n[setup]\nrun = [\"true\"]\n", "bundle_digest": "sha256:00", "bundle_size": 1}"#;
    let missing_blob = api.admin(Method::POST, create, manifest).await;
    assert_eq!(
        missing_blob.status,
        StatusCode::CONFLICT,
        "{:?}",
        missing_blob.body
    );

    let digest = format!("sha256:{}", "0".repeat(64));
    let blob = format!("/api/v1/blobs/{digest}");
    let no_length = api
        .send(Method::PUT, &blob, Some(&api.admin), &[], "data")
        .await;
    assert_eq!(
        (no_length.status, no_length.code()),
        (StatusCode::LENGTH_REQUIRED, "request/length-required")
    );
    let sized = [("content-length", "4")];
    let wrong = api
        .send(Method::PUT, &blob, Some(&api.admin), &sized, "data")
        .await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (StatusCode::BAD_REQUEST, "blob/invalid")
    );
    let absent = api
        .send(Method::HEAD, &blob, Some(&api.admin), &[], "")
        .await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);
    let data = b"hello";
    let hash = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(data))
    );
    let path = format!("/api/v1/blobs/{hash}");
    let stored = api
        .send(
            Method::PUT,
            &path,
            Some(&api.admin),
            &[("content-length", "5")],
            &data[..],
        )
        .await;
    assert_eq!(stored.status, StatusCode::OK, "{:?}", stored.body);
    assert_eq!(stored.body["size"], 5);
    let present = api
        .send(Method::HEAD, &path, Some(&api.admin), &[], "")
        .await;
    assert_eq!(present.status, StatusCode::OK);
    assert_eq!(present.headers[header::CONTENT_LENGTH], "5");
}
