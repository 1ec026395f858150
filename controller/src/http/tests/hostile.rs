//! Hostile requests: many combinations of odd paths, parameters, methods
//! and bodies, each answered with a status and (but for HEAD) an error
//! code, never a panic or a 500.

use axum::http::Method;

use super::harness;

/// A small deterministic generator, so a failure repeats.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[tokio::test]
async fn hostile_requests_get_a_code_and_never_a_panic() {
    let api = harness().await;
    let pieces = [
        "/api/v1/deployments",
        "/api/v1/deployments/01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "/logs",
        "/events",
        "/cancel",
        "/retry",
        "/api/v1/apps/web/rollback",
        "/api/v1/blobs/sha256:zz",
        "?limit=",
        "?status=&status=x",
        "&offset=4294967296",
        "?since=-1",
        "?tail=100001",
        "%00",
        "%ff",
        "/..",
        "//",
        "?follow=true&level=fatal",
        "&environment=",
        "?order=up",
        "/api/v1/agents/%2e%2e",
        "?triggered_by=me&sort=nonsense",
        "/api/v1/audit?limit=0",
    ];
    let bodies = [
        "",
        "{}",
        "[]",
        "null",
        "{\"force\": 1}",
        "{\"to\": \"x\"}",
        "\u{0}",
        "{\"a\":{\"b\":[[[[]]]]}}",
    ];
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::HEAD,
        Method::DELETE,
    ];
    let mut seed = 0x5eed_u64;
    for _ in 0..300 {
        let mut path = String::new();
        for _ in 0..(next(&mut seed) % 4 + 1) {
            path.push_str(pieces[(next(&mut seed) % pieces.len() as u64) as usize]);
        }
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        let method = methods[(next(&mut seed) % methods.len() as u64) as usize].clone();
        let body = bodies[(next(&mut seed) % bodies.len() as u64) as usize];
        let Ok(uri) = path.parse::<axum::http::Uri>() else {
            continue;
        };
        let answer = api.admin(method.clone(), &uri.to_string(), body).await;
        let status = answer.status.as_u16();
        assert!(
            status < 500 || status == 503,
            "{method} {path} {body:?}: {status} {:?}",
            answer.body
        );
        if status >= 400 && method != Method::HEAD {
            assert!(
                answer.body["error"]["code"].is_string(),
                "{method} {path}: {:?}",
                answer.body
            );
        }
    }
}

#[tokio::test]
async fn hostile_cookies_and_sign_ins_are_refused_with_a_code() {
    let api = harness().await;
    let cookies = [
        "berth_session=",
        "berth_session=bts_",
        "berth_session=bts_abc_short",
        "berth_session=bta_abcdefabcdef_ssssssssssssssssssssssssssssssssssssssssss",
        "berth_session=bts_%00%00_ssssssssssssssssssssssssssssssssssssssssss",
        "a=b; berth_session=\"bts_x_y\"; c",
        "berth_session=bts_unknownid123_ssssssssssssssssssssssssssssssssssssssssss",
        ";;;==;",
    ];
    for cookie in cookies {
        for method in [Method::GET, Method::POST, Method::DELETE] {
            let sign_in = method == Method::POST;
            let headers = [("cookie", cookie), ("x-csrf-token", "x")];
            for path in ["/api/v1/audit", "/api/v1/session"] {
                let expected = match (&method, path) {
                    (_, "/api/v1/session") if sign_in => 400,
                    (&Method::GET, _) | (_, "/api/v1/session") => 401,
                    _ => 405,
                };
                let answer = api.send(method.clone(), path, None, &headers, "").await;
                let status = answer.status.as_u16();
                assert!(
                    status == expected,
                    "{method} {path} {cookie:?}: {status} {:?}",
                    answer.body
                );
                assert!(answer.body["error"]["code"].is_string(), "{cookie:?}");
            }
        }
    }
    let json = [("content-type", "application/json")];
    for body in [
        "{}",
        "{\"name\": 1, \"password\": 2}",
        "{\"name\": \"ada\"}",
        "{\"name\": \"\", \"password\": \"\"}",
        "{\"name\": \"ada\", \"password\": \"x\", \"extra\": true}",
        "[\"ada\"]",
    ] {
        let answer = api
            .send(
                Method::POST,
                "/api/v1/session",
                None,
                &json,
                body.to_string(),
            )
            .await;
        assert_eq!(answer.status.as_u16(), 400, "{body}: {:?}", answer.body);
        assert_eq!(answer.code(), "request/invalid", "{body}");
    }
    let long = format!(
        "{{\"name\": \"ada\", \"password\": \"{}\"}}",
        "p".repeat(2000)
    );
    let answer = api
        .send(Method::POST, "/api/v1/session", None, &json, long)
        .await;
    assert_eq!(answer.code(), "request/invalid", "a bounded password");
}
