//! The HTTP API behind a real Caddy, as docs/http-api.md sets it up for a
//! public name: sign-in and CSRF through the proxy, an event stream that
//! arrives as it happens, a setup link that points at the public URL, and
//! sign-in limits that count each client by the address Caddy names.

use berth_tests::caddy::{Caddy, free_port};
use berth_tests::http::{self, Api, Body, user_token};
use berth_tests::{Controller, DEADLINE, skip};
use serde_json::json;

const PASSWORD: &str = "correct horse battery";

/// Caddy serving plain HTTP on `127.0.0.1:front` in front of `upstream`.
fn front(test: &str, front: u16, upstream: &str) -> Option<Caddy> {
    let apps = json!({"http": {"servers": {"front": {
        "listen": [format!("127.0.0.1:{front}")],
        "automatic_https": {"disable": true},
        "routes": [{"handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": upstream}]}]}],
    }}}});
    Caddy::start_with_apps(test, Some(apps.to_string()))
}

#[test]
fn the_api_works_behind_caddy_with_its_public_name() {
    if !http::has_curl() {
        skip("http_proxy", "curl (scripts/toolchain.sh installs it)");
        return;
    }
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let controller =
        Controller::start_with(&["--public-url", &public, "--trusted-proxy", "127.0.0.1"]);
    let upstream = controller
        .http_url
        .trim_start_matches("http://")
        .to_string();
    let Some(_caddy) = front("http_proxy", port, &upstream) else {
        return;
    };
    controller
        .berth(&["users", "add", "olga", "--role", "operator"])
        .ok();
    let set = controller.berth_stdin(&["users", "set-password", "olga"], &format!("{PASSWORD}\n"));
    assert_eq!(set.code, 0, "{}", set.stderr);

    // Sign in through Caddy; the cookie and the CSRF token work there.
    let api = Api::new(&public, None);
    let sign_in = |api: &Api, name: &str, password: &str| {
        api.post(
            "/api/v1/session",
            &json!({ "name": name, "password": password }),
        )
    };
    let signed = sign_in(&api, "olga", PASSWORD);
    assert_eq!(signed.status, 200, "{}", signed.body);
    let cookie = signed
        .header("set-cookie")
        .and_then(|set| set.split(';').next())
        .expect("a cookie")
        .to_string();
    let csrf = signed.json()["csrf_token"]
        .as_str()
        .expect("csrf")
        .to_string();
    let with_session = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];

    // An event stream through Caddy gets a change as it happens.
    let (token, _) = user_token(&controller, "opal", "operator");
    let log = controller.dir.path().join("events.log");
    let mut stream = Api::new(&public, Some(&token)).stream("/api/v1/events", &[], &log);
    assert!(
        stream.stdout.wait_for(": open", DEADLINE).is_some(),
        "the stream's first comment came through Caddy at once: {:?}",
        stream.stdout.all()
    );
    let event =
        json!({"app": "billing", "version": "1.0", "environment": "prod", "status": "started"});
    let reported = api.request(
        "POST",
        "/api/v1/deployment-events",
        &[
            with_session[0],
            with_session[1],
            ("Content-Type", "application/json"),
        ],
        Body::Text(&event.to_string()),
    );
    assert_eq!(reported.status, 200, "{}", reported.body);
    let seen = stream.stdout.wait_for("billing", DEADLINE);
    assert!(
        seen.is_some(),
        "no event through Caddy: {:?}",
        stream.stdout.all()
    );
    stream.kill9();

    // A setup link points at the public name, and its page loads there.
    controller
        .berth(&["users", "add", "bob", "--role", "viewer"])
        .ok();
    let link = controller.berth(&["users", "setup-link", "bob"]).ok();
    let path = link
        .trim()
        .strip_prefix(&public)
        .unwrap_or_else(|| panic!("{link} is not under {public}"));
    let page = api.get(path);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<strong>bob</strong>"), "{}", page.body);

    // Each client behind Caddy is counted by its own address.
    let from = |address: &str| Api::new(&public, None).with_curl_args(&["--interface", address]);
    let guesser = from("127.0.0.5");
    for n in 0..20 {
        let name = format!("guess{n}");
        assert_eq!(
            sign_in(&guesser, &name, "nope nope nope").code(),
            "auth/login-failed"
        );
    }
    let locked = sign_in(&guesser, "olga", PASSWORD);
    assert_eq!(locked.status, 429, "{}", locked.body);
    assert!(
        locked.header("retry-after").is_some(),
        "{:?}",
        locked.headers
    );
    let other = sign_in(&from("127.0.0.6"), "olga", PASSWORD);
    assert_eq!(
        other.status, 200,
        "another client is not locked out: {}",
        other.body
    );
}
