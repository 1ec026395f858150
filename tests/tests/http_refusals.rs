//! The HTTP API's refusals through the real binaries, over loopback with
//! `curl`: no token, a viewer's token, a revoked token, and hostile input
//! (bad ids and JSON, oversized bodies and heads, a huge limit, a blob
//! that is not its digest), each answered with a status and a code while
//! the controller goes on serving.

use std::io::{Read, Write};

use berth_tests::http::{self, Api, Body, user_token};
use berth_tests::{Controller, DEADLINE, skip};
use serde_json::json;

fn has_curl(test: &str) -> bool {
    let found = http::has_curl();
    if !found {
        skip(test, "curl (scripts/toolchain.sh installs it)");
    }
    found
}

#[test]
fn tokens_roles_and_hostile_input_get_codes() {
    if !has_curl("tokens_roles_and_hostile_input_get_codes") {
        return;
    }
    let controller = Controller::start();
    let base = controller.http_url.clone();
    let anonymous = Api::new(&base, None);
    let refused = anonymous.get("/api/v1/deployments");
    assert_eq!(
        (refused.status, refused.code()),
        (401, "auth/unauthenticated".into())
    );
    assert!(
        refused
            .header("www-authenticate")
            .is_some_and(|value| value.starts_with("Bearer"))
    );

    // A viewer's token reads and is refused a deploy, with the code.
    let (viewer_token, viewer) = user_token(&controller, "vic", "viewer");
    let vic = Api::new(&base, Some(&viewer_token));
    assert_eq!(vic.get("/api/v1/whoami").json()["role"], "viewer");
    let body = json!({"manifest": "app = \"x\"", "bundle_digest": "sha256:00", "bundle_size": 1});
    let denied = vic.post("/api/v1/deployments", &body);
    assert_eq!(denied.status, 403, "{}", denied.body);
    assert_eq!(denied.json()["error"]["code"], "auth/permission-denied");
    // Revoked, the same token is unknown from the next request on, and
    // the stream it holds ends at its next keep-alive (every 15 s).
    let stream_log = controller.dir.path().join("vic-events.log");
    let mut stream = vic.stream("/api/v1/events", &[], &stream_log);
    assert!(
        stream.stdout.wait_for(": open", DEADLINE).is_some(),
        "the stream opened"
    );
    let listed = controller
        .berth_with(&viewer, &["api-tokens", "ls", "-o", "json"])
        .json();
    let id = listed[0]["id"].as_str().expect("token id").to_string();
    controller
        .berth_with(&viewer, &["api-tokens", "revoke", &id])
        .ok();
    let ended = stream.stdout.wait_for("auth/unauthenticated", DEADLINE);
    assert!(
        ended.is_some_and(|line| line.starts_with("data: ")),
        "{:?}",
        stream.stdout.all()
    );
    assert!(
        stream.wait_exit(DEADLINE).is_some(),
        "the revoked stream closed"
    );
    let revoked = vic.get("/api/v1/whoami");
    assert_eq!(
        (revoked.status, revoked.code()),
        (401, "auth/unauthenticated".into())
    );

    let (operator_token, _) = user_token(&controller, "opal", "operator");
    let api = Api::new(&base, Some(&operator_token));
    let unknown = api.request(
        "POST",
        "/api/v1/deployments/01ARZ3NDEKTSV4RRFFQ69G5FAV/cancel",
        &[],
        Body::None,
    );
    assert_eq!(
        (unknown.status, unknown.code()),
        (404, "deployment/not-found".into())
    );
    let checks: Vec<(http::Reply, u16, &str)> = vec![
        (
            api.get("/api/v1/deployments/not-an-id"),
            400,
            "request/invalid",
        ),
        (
            api.get("/api/v1/deployments?limit=18446744073709551616"),
            400,
            "request/invalid",
        ),
        (
            api.get("/api/v1/deployments?limit=5000"),
            400,
            "request/invalid",
        ),
        (api.get("/api/v2/anything"), 404, "request/not-found"),
        (
            api.request(
                "POST",
                "/api/v1/deployments",
                &[("Content-Type", "application/json")],
                Body::Text("{\"manifest\": "),
            ),
            400,
            "request/invalid",
        ),
        (
            api.request(
                "POST",
                "/api/v1/deployments",
                &[("Content-Type", "application/json")],
                Body::Text(&format!("{{\"manifest\": \"{}\"}}", "x".repeat(1_500_000))),
            ),
            413,
            "request/too-large",
        ),
    ];
    for (reply, status, code) in checks {
        assert_eq!(
            (reply.status, reply.code()),
            (status, code.to_string()),
            "{}",
            reply.body
        );
    }

    // A blob whose bytes are not its digest is refused and not kept.
    let file = controller.dir.path().join("blob");
    std::fs::write(&file, "not what the digest says").expect("blob");
    let digest = format!("/api/v1/blobs/sha256:{}", "0".repeat(64));
    let wrong = api.request("PUT", &digest, &[], Body::File(&file));
    assert_eq!(
        (wrong.status, wrong.code()),
        (400, "blob/invalid".into()),
        "{}",
        wrong.body
    );
    assert_eq!(api.request("HEAD", &digest, &[], Body::None).status, 404);
    let chunked = api.request(
        "PUT",
        &digest,
        &[("Transfer-Encoding", "chunked")],
        Body::File(&file),
    );
    assert_eq!(
        (chunked.status, chunked.code()),
        (411, "request/length-required".into())
    );

    // A request head past the limit is answered 431 before any routing.
    let address = base.trim_start_matches("http://");
    let mut raw = std::net::TcpStream::connect(address).expect("connect");
    raw.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let head = format!(
        "GET /api/v1/whoami HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "y".repeat(40_000)
    );
    let _ = raw.write_all(head.as_bytes());
    let mut answer = String::new();
    let _ = raw.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{}",
        answer.lines().next().unwrap_or_default()
    );

    // Still serving.
    assert_eq!(api.get("/api/v1/whoami").json()["principal"], "opal");
}
