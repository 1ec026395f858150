//! The pages in process on a real store: a browser without a session is
//! sent to sign in; a signed-in page carries the security headers, shows
//! only what the role may do, and escapes every value.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use hyper::service::Service as _;
use hyper_util::service::TowerToHyperService;

use crate::ops;
use crate::store::Role;

fn admin() -> crate::ops::Caller {
    crate::testing::user("ada", Role::Admin)
}

async fn get(
    service: &TowerToHyperService<axum::Router>,
    path: &str,
    cookie: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut request = Request::builder().uri(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, format!("berth_session={cookie}"));
    }
    let response = service
        .call(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn pages_need_a_session_carry_a_strict_policy_and_escape_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = crate::testing::context(dir.path()).await;
    for (name, role) in [("ada", Role::Admin), ("vic", Role::Viewer)] {
        let user = ops::users::NewUser {
            name: name.into(),
            role,
            email: None,
        };
        ops::users::add(&context, &admin(), user)
            .await
            .expect("user");
    }
    let here = "127.0.0.1".parse().expect("address");
    let viewer = ops::sessions::start(&context, "vic", Role::Viewer, here).expect("session");
    let service = TowerToHyperService::new(crate::http::router(context.clone()));

    let (status, headers, _) = get(&service, "/?q=web", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/login?next=%2F%3Fq%3Dweb");
    let (status, _, _) = get(&service, "/", Some("bts_nonsense_xxxxxxxxxxxxxxxxxxxx")).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "an ended session signs in again"
    );

    let hostile = "<script>alert(1)</script>";
    let (status, headers, body) = get(
        &service,
        &format!(
            "/?q={}",
            form_urlencoded::byte_serialize(hostile.as_bytes()).collect::<String>()
        ),
        Some(&viewer.cookie),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let policy = headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("text");
    assert!(
        policy.contains("script-src 'self'") && !policy.contains("unsafe"),
        "{policy}"
    );
    assert!(!body.contains(hostile), "escaped: {body}");
    assert!(body.contains("&lt;script&gt;"), "{body}");
    assert!(!body.contains("<script>"), "no inline script: {body}");
    assert!(
        body.contains(&viewer.session.csrf_token),
        "the script gets its token"
    );

    let (status, _, body) = get(&service, "/?status=nonsense", Some(&viewer.cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("is not a deployment status"), "{body}");

    for (path, says) in [
        ("/status", "Nothing is deployed yet."),
        ("/fleet", "No agent has joined yet"),
        ("/audit", "user.add"),
    ] {
        let (status, _, body) = get(&service, path, Some(&viewer.cookie)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(body.contains(says), "{path}: {body}");
        assert!(
            body.contains("aria-current=\"page\""),
            "{path} is marked in the navigation"
        );
    }
    for path in [
        "/deployments/nonsense",
        "/deployments/01ARZ3NDEKTSV4RRFFQ69G5FAV",
    ] {
        let (status, headers, body) = get(&service, path, Some(&viewer.cookie)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .expect("text")
                .starts_with("text/html")
        );
        assert!(body.contains("No such deployment"), "{body}");
    }
    let (status, headers, body) = get(&service, "/login?next=//evil.example", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY));
    assert!(body.contains("data-next=\"/\""), "no open redirect: {body}");
    let (status, headers, body) = get(&service, "/assets/app.js", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .expect("text")
            .starts_with("text/javascript")
    );
    assert!(body.contains("X-CSRF-Token"));
}

#[tokio::test]
async fn the_people_page_shows_admins_users_and_others_only_their_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = crate::testing::context(dir.path()).await;
    let hostile = "<b>x</b>@example.com";
    for (name, role, email) in [
        ("ada", Role::Admin, None),
        ("vic", Role::Viewer, Some(hostile.to_string())),
    ] {
        let user = ops::users::NewUser {
            name: name.into(),
            role,
            email,
        };
        ops::users::add(&context, &admin(), user)
            .await
            .expect("user");
    }
    let new = ops::api_tokens::NewApiToken {
        name: "ci".into(),
        ..Default::default()
    };
    let made = ops::api_tokens::create(&context, &crate::testing::user("vic", Role::Viewer), new)
        .await
        .expect("token");
    let here = "127.0.0.1".parse().expect("address");
    let viewer = ops::sessions::start(&context, "vic", Role::Viewer, here).expect("session");
    let boss = ops::sessions::start(&context, "ada", Role::Admin, here).expect("session");
    let service = TowerToHyperService::new(crate::http::router(context.clone()));

    let (status, _, body) = get(&service, "/users", Some(&boss.cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("Users and tokens") && body.contains("id=\"add-user\""),
        "{body}"
    );
    assert!(body.contains("data-user=\"vic\""), "{body}");
    assert!(
        !body.contains(hostile) && body.contains("&lt;b&gt;"),
        "escaped: {body}"
    );
    assert!(body.contains(&made.view.prefix), "{body}");
    let secret = made.token.trim_start_matches(&made.view.prefix);
    assert!(!body.contains(secret), "no token secret on the page");

    let (status, _, body) = get(&service, "/users", Some(&viewer.cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("Your API tokens"), "{body}");
    assert!(
        !body.contains("id=\"add-user\"") && !body.contains("data-user="),
        "{body}"
    );
    assert!(!body.contains(secret), "no token secret on the page");

    let (status, _, body) = get(&service, "/fleet/nosuch", Some(&viewer.cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("No such agent"), "{body}");
}

#[tokio::test]
async fn paging_holds_its_place_while_deployments_arrive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = crate::testing::context(dir.path()).await;
    let user = ops::users::NewUser {
        name: "vic".into(),
        role: Role::Viewer,
        email: None,
    };
    ops::users::add(&context, &admin(), user)
        .await
        .expect("user");
    let made = |n: usize| {
        for _ in 0..n {
            let deployment = crate::testing::deployment(&["h1"], 0);
            context
                .store
                .create_deployment(&deployment, true, false)
                .expect("create");
        }
    };
    made(52);
    let here = "127.0.0.1".parse().expect("address");
    let viewer = ops::sessions::start(&context, "vic", Role::Viewer, here).expect("session");
    let service = TowerToHyperService::new(crate::http::router(context.clone()));

    let (_, _, first) = get(&service, "/", Some(&viewer.cookie)).await;
    let next = first
        .split("rel=\"next\"")
        .next()
        .and_then(|before| before.rsplit("href=\"").next())
        .map(|href| {
            href.split('"')
                .next()
                .unwrap_or_default()
                .replace("&amp;", "&")
        })
        .expect("a next link");
    assert!(
        next.contains("offset=50") && next.contains("until="),
        "{next}"
    );
    // Three more arrive; the second page still holds the oldest two.
    made(3);
    let (status, _, second) = get(&service, &next, Some(&viewer.cookie)).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second.matches("<tr data-id=").count(), 2, "{second}");
    let (_, _, fresh) = get(&service, "/?offset=50", Some(&viewer.cookie)).await;
    assert_eq!(
        fresh.matches("<tr data-id=").count(),
        5,
        "without a snapshot the page shifts"
    );
}

#[tokio::test]
async fn approve_is_offered_only_to_whom_may_approve() {
    use berth_shared::record::{Approval, ApprovalAction, Timestamp};

    let dir = tempfile::tempdir().expect("tempdir");
    let context = crate::testing::context(dir.path()).await;
    let people = [
        ("olga", Role::Operator),
        ("otto", Role::Operator),
        ("vic", Role::Viewer),
    ];
    for (name, role) in people {
        let user = ops::users::NewUser {
            name: name.into(),
            role,
            email: None,
        };
        ops::users::add(&context, &admin(), user)
            .await
            .expect("user");
    }
    let mut held = crate::testing::deployment(&["h1"], 0);
    let approval = Approval::pending(
        ApprovalAction::Deploy,
        "olga via token ci",
        Timestamp::now(),
        3_600_000,
        2,
    );
    crate::progress::approval::hold(&mut held, approval);
    context
        .store
        .create_deployment(&held, true, false)
        .expect("create");
    let service = TowerToHyperService::new(crate::http::router(context.clone()));
    let here = "127.0.0.1".parse().expect("address");
    let detail = format!("/deployments/{}", held.id);
    for (name, role, offered) in [
        ("otto", Role::Operator, true),
        ("olga", Role::Operator, false),
        ("vic", Role::Viewer, false),
    ] {
        let session = ops::sessions::start(&context, name, role, here).expect("session");
        for path in ["/", detail.as_str()] {
            let (status, _, body) = get(&service, path, Some(&session.cookie)).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            assert_eq!(
                body.contains("data-action=\"approve\""),
                offered,
                "{name} on {path}: {body}"
            );
            assert!(body.contains("pending_approval"), "{path}: {body}");
        }
        let (_, _, body) = get(&service, &detail, Some(&session.cookie)).await;
        assert!(
            body.contains("waiting for approval by an admin (or another operator) until"),
            "{body}"
        );
    }
}
