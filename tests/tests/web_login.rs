//! Web sign-in through the real binaries over real HTTP: a password set
//! with the CLI signs a user in, the session cookie is HttpOnly, Secure
//! and SameSite=Strict and acts for the user; a change without the CSRF
//! token is refused; sign-out and expiry end the session; failed sign-ins
//! are limited per user and per address; a one-time setup link sets a
//! password once; on HTTPS a user's CLI certificate is a credential too.

use std::time::Duration;

use berth_tests::http::{Api, Body, Reply, has_curl};
use berth_tests::{Controller, eventually_or, skip};
use serde_json::json;

const PASSWORD: &str = "correct horse battery";
/// A deployment id no deployment has.
const NO_SUCH: &str = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

fn curl_or_skip(test: &str) -> bool {
    if has_curl() {
        return true;
    }
    skip(test, "curl is not installed");
    false
}

/// An operator `olga` with a web password, set through the CLI.
fn olga(controller: &Controller) {
    controller
        .berth(&["users", "add", "olga", "--role", "operator"])
        .ok();
    let set = controller.berth_stdin(&["users", "set-password", "olga"], &format!("{PASSWORD}\n"));
    assert_eq!(set.code, 0, "{}", set.stderr);
}

fn sign_in(api: &Api, name: &str, password: &str) -> Reply {
    api.post(
        "/api/v1/session",
        &json!({ "name": name, "password": password }),
    )
}

/// The cookie a sign-in set, as a `Cookie` header's value.
fn cookie_of(reply: &Reply) -> String {
    let set = reply.header("set-cookie").expect("a Set-Cookie header");
    set.split(';')
        .next()
        .expect("name=value")
        .trim()
        .to_string()
}

#[test]
fn a_session_signs_in_needs_csrf_for_changes_and_ends_at_sign_out() {
    if !curl_or_skip("web_login::session") {
        return;
    }
    let controller = Controller::start();
    olga(&controller);
    let api = Api::new(&controller.http_url, None);

    let wrong = sign_in(&api, "olga", "not the password");
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert_eq!(wrong.code(), "auth/login-failed");
    assert!(wrong.header("set-cookie").is_none());

    let signed = sign_in(&api, "olga", PASSWORD);
    assert_eq!(signed.status, 200, "{}", signed.body);
    let set = signed.header("set-cookie").expect("cookie").to_string();
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=43200",
    ] {
        assert!(set.contains(attribute), "{attribute} missing: {set}");
    }
    let session = signed.json();
    assert_eq!(session["user"], "olga");
    assert_eq!(session["role"], "operator");
    let csrf = session["csrf_token"]
        .as_str()
        .expect("a CSRF token")
        .to_string();
    assert!(
        !signed
            .body
            .contains(cookie_of(&signed).trim_start_matches("berth_session=")),
        "the cookie's value is never in a body"
    );

    let cookie = cookie_of(&signed);
    let with_cookie = [("Cookie", cookie.as_str())];
    let whoami = api.request("GET", "/api/v1/whoami", &with_cookie, Body::None);
    assert_eq!(whoami.status, 200, "{}", whoami.body);
    assert_eq!(whoami.json()["principal"], "olga");
    let again = api.request("GET", "/api/v1/session", &with_cookie, Body::None);
    assert_eq!(again.json()["csrf_token"], csrf.as_str(), "{}", again.body);

    // A change with the cookie alone is refused; with its token it passes
    // authentication (only the deployment is missing).
    let cancel = format!("/api/v1/deployments/{NO_SUCH}/cancel");
    let forged = api.request("POST", &cancel, &with_cookie, Body::None);
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(forged.code(), "auth/csrf-failed");
    let wrong_token = [("Cookie", cookie.as_str()), ("X-CSRF-Token", "guessed")];
    let forged = api.request("POST", &cancel, &wrong_token, Body::None);
    assert_eq!(forged.code(), "auth/csrf-failed", "{}", forged.body);
    let with_token = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];
    let reached = api.request("POST", &cancel, &with_token, Body::None);
    assert_eq!(reached.status, 404, "{}", reached.body);
    assert_eq!(reached.code(), "deployment/not-found");

    // A viewer's session is refused what a viewer may not do.
    controller
        .berth(&["users", "set-role", "olga", "viewer"])
        .ok();
    let refused = api.request("POST", &cancel, &with_token, Body::None);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.code(), "auth/permission-denied");

    // Signing out needs the token too, then the cookie is refused.
    let forged = api.request("DELETE", "/api/v1/session", &with_cookie, Body::None);
    assert_eq!(forged.code(), "auth/csrf-failed", "{}", forged.body);
    let out = api.request("DELETE", "/api/v1/session", &with_token, Body::None);
    assert_eq!(out.status, 204, "{}", out.body);
    assert!(
        out.header("set-cookie")
            .is_some_and(|set| set.contains("Max-Age=0")),
        "{:?}",
        out.headers
    );
    let ended = api.request("GET", "/api/v1/whoami", &with_cookie, Body::None);
    assert_eq!(ended.status, 401, "{}", ended.body);
    assert_eq!(ended.code(), "auth/session-ended");

    // Sessions are kept on disk: a restart signs no one out.
    let kept = cookie_of(&sign_in(&api, "olga", PASSWORD));
    let mut controller = controller;
    controller.restart_gracefully();
    let api = Api::new(&controller.http_url, None);
    let whoami = api.request("GET", "/api/v1/whoami", &[("Cookie", &kept)], Body::None);
    assert_eq!(whoami.status, 200, "{}", whoami.body);
    let audit = controller.berth(&["audit", "-o", "json"]).ok();
    assert!(
        audit.contains("session.login") && audit.contains("session.logout"),
        "{audit}"
    );
    assert!(
        !controller.log().contains(PASSWORD),
        "a password never reaches the log"
    );
}

#[test]
fn a_session_expires() {
    if !curl_or_skip("web_login::expiry") {
        return;
    }
    let controller = Controller::start_with(&["--session-ttl", "2s"]);
    olga(&controller);
    let api = Api::new(&controller.http_url, None);
    let signed = sign_in(&api, "olga", PASSWORD);
    assert_eq!(signed.status, 200, "{}", signed.body);
    assert!(
        signed
            .header("set-cookie")
            .is_some_and(|set| set.contains("Max-Age=")),
        "{:?}",
        signed.headers
    );
    let cookie = cookie_of(&signed);
    let whoami = || api.request("GET", "/api/v1/whoami", &[("Cookie", &cookie)], Body::None);
    assert_eq!(whoami().status, 200);
    let ended = eventually_or(
        "the session to expire",
        100,
        Duration::from_millis(100),
        || Some(whoami()).filter(|reply| reply.status != 200),
        || controller.log(),
    );
    assert_eq!(ended.status, 401, "{}", ended.body);
    assert_eq!(ended.code(), "auth/session-ended");
}

#[test]
fn failed_sign_ins_are_limited_per_user_and_per_address() {
    if !curl_or_skip("web_login::limits") {
        return;
    }
    // 127.0.0.4 plays a proxy in front (Caddy), trusted to name clients.
    let controller = Controller::start_with(&["--trusted-proxy", "127.0.0.4"]);
    olga(&controller);
    controller
        .berth(&["users", "add", "vic", "--role", "viewer"])
        .ok();
    let set = controller.berth_stdin(&["users", "set-password", "vic"], &format!("{PASSWORD}\n"));
    assert_eq!(set.code, 0, "{}", set.stderr);
    let api = Api::new(&controller.http_url, None);
    for _ in 0..5 {
        assert_eq!(
            sign_in(&api, "olga", "a wrong guess!!").code(),
            "auth/login-failed"
        );
    }
    let locked = sign_in(&api, "olga", PASSWORD);
    assert_eq!(locked.status, 429, "{}", locked.body);
    assert_eq!(locked.code(), "auth/login-rate-limited");
    let wait: u64 = locked
        .header("retry-after")
        .and_then(|value| value.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=900).contains(&wait), "{wait}");
    // The user stays locked from another address; another user is not.
    let elsewhere =
        Api::new(&controller.http_url, None).with_curl_args(&["--interface", "127.0.0.2"]);
    assert_eq!(sign_in(&elsewhere, "olga", PASSWORD).status, 429);
    assert_eq!(sign_in(&elsewhere, "vic", PASSWORD).status, 200);
    // One address guessing many names is stopped as well, whatever
    // X-Forwarded-For it makes up (it is no trusted proxy).
    let guesser = Api::new(&controller.http_url, None).with_curl_args(&[
        "--interface",
        "127.0.0.3",
        "-H",
        "X-Forwarded-For: 198.18.0.77",
    ]);
    for n in 0..20 {
        let name = format!("guess{n}");
        assert_eq!(
            sign_in(&guesser, &name, "nope nope nope").code(),
            "auth/login-failed"
        );
    }
    assert_eq!(
        sign_in(&guesser, "vic", PASSWORD).code(),
        "auth/login-rate-limited"
    );
    // Behind the trusted proxy, the client it names is counted.
    let via_proxy = |client: &str| {
        Api::new(&controller.http_url, None).with_curl_args(&[
            "--interface",
            "127.0.0.4",
            "-H",
            &format!("X-Forwarded-For: {client}"),
        ])
    };
    let far = via_proxy("198.18.0.1");
    for n in 0..20 {
        let name = format!("far{n}");
        assert_eq!(
            sign_in(&far, &name, "nope nope nope").code(),
            "auth/login-failed"
        );
    }
    assert_eq!(
        sign_in(&far, "vic", PASSWORD).code(),
        "auth/login-rate-limited"
    );
    assert_eq!(
        sign_in(&via_proxy("198.18.0.2"), "vic", PASSWORD).status,
        200,
        "another client behind the same proxy is not locked out"
    );
    // A form post from another site cannot sign anyone in: only JSON is read.
    let form = api.request(
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Body::Text("name=vic&password=correct+horse+battery"),
    );
    assert_eq!(form.status, 415, "{}", form.body);
}

#[test]
fn a_setup_link_sets_a_password_once_and_signs_in() {
    if !curl_or_skip("web_login::setup_link") {
        return;
    }
    let controller = Controller::start();
    controller
        .berth(&["users", "add", "bob", "--role", "operator"])
        .ok();
    let link = controller
        .berth(&["users", "setup-link", "bob", "--expires", "1h"])
        .ok();
    let link = link.trim();
    let (base, query) = link.split_once("/setup?").expect("a link to /setup");
    assert_eq!(base, controller.http_url);
    let api = Api::new(&controller.http_url, None);
    let page = api.get(&format!("/setup?{query}"));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<strong>bob</strong>"), "{}", page.body);
    let policy = page.header("content-security-policy").expect("a CSP");
    assert!(
        policy.contains("default-src 'none'") && !policy.contains("unsafe"),
        "{policy}"
    );
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));

    let token = query.strip_prefix("token=").expect("token");
    let form = |password: &str, confirm: &str| {
        let body = format!("token={token}&password={password}&confirm={confirm}");
        let kind = [("Content-Type", "application/x-www-form-urlencoded")];
        api.request("POST", "/setup", &kind, Body::Text(&body))
    };
    let differ = form("one+long+password", "another+long+password");
    assert_eq!(differ.status, 400, "{}", differ.body);
    assert!(
        differ.body.contains("The two passwords differ"),
        "{}",
        differ.body
    );
    let set = form("correct+horse+battery", "correct+horse+battery");
    assert_eq!(set.status, 200, "{}", set.body);
    assert!(set.body.contains("Password set"), "{}", set.body);
    let cookie = cookie_of(&set);
    let whoami = api.request("GET", "/api/v1/whoami", &[("Cookie", &cookie)], Body::None);
    assert_eq!(whoami.json()["principal"], "bob", "{}", whoami.body);
    assert_eq!(sign_in(&api, "bob", PASSWORD).status, 200);

    let used = form("correct+horse+battery", "correct+horse+battery");
    assert_eq!(used.status, 401, "{}", used.body);
    assert!(
        used.body.contains("auth/setup-link-invalid"),
        "{}",
        used.body
    );
    let page = api.get(&format!("/setup?{query}"));
    assert_eq!(
        page.status, 401,
        "a used link's page says so: {}",
        page.body
    );
    // Hostile input is escaped, never rendered.
    let hostile = api.get("/setup?token=%3Cscript%3Ealert(1)%3C/script%3E");
    assert!(!hostile.body.contains("<script>"), "{}", hostile.body);

    // A link is for admins to make.
    let (_, bundle) = berth_tests::http::user_token(&controller, "opal", "operator");
    let refused = controller.berth_with(&bundle, &["users", "setup-link", "bob"]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
}

#[test]
fn a_users_cli_certificate_is_a_credential_over_https() {
    if !curl_or_skip("web_login::mtls") {
        return;
    }
    // HTTPS on loopback with a certificate of its own (--http-cert): the
    // client certificates are still checked against berth's CA.
    let web_pki = tempfile::tempdir().expect("tempdir");
    let web_ca = berth_shared::pki::new_ca("web").expect("ca");
    let authority =
        berth_shared::pki::Authority::load(&web_ca.cert_pem, &web_ca.key_pem).expect("authority");
    let server = authority
        .issue_server(&["127.0.0.1".into()], "berth-web")
        .expect("server certificate");
    let path = |name: &str| web_pki.path().join(name).to_string_lossy().to_string();
    std::fs::write(path("ca.pem"), &web_ca.cert_pem).expect("write");
    std::fs::write(path("server.pem"), &server.cert_pem).expect("write");
    std::fs::write(path("server.key"), &server.key_pem).expect("write");
    let controller = Controller::start_with(&[
        "--http-cert",
        &path("server.pem"),
        "--http-key",
        &path("server.key"),
    ]);
    assert!(
        controller.http_url.starts_with("https://"),
        "{}",
        controller.http_url
    );
    let ca_text = path("ca.pem");

    let (_, bundle) = berth_tests::http::user_token(&controller, "olga", "operator");
    let credential = berth_shared::credentials::Bundle::load(&bundle).expect("bundle");
    let cert = controller.dir.path().join("olga.pem");
    let key = controller.dir.path().join("olga.key");
    std::fs::write(&cert, &credential.cert_pem).expect("write cert");
    std::fs::write(&key, &credential.key_pem).expect("write key");
    let (cert, key) = (
        cert.to_string_lossy().to_string(),
        key.to_string_lossy().to_string(),
    );

    let anonymous = Api::new(&controller.http_url, None).with_curl_args(&["--cacert", &ca_text]);
    assert_eq!(anonymous.get("/api/v1/whoami").status, 401);
    let olga = anonymous
        .clone()
        .with_curl_args(&["--cert", &cert, "--key", &key]);
    let whoami = olga.get("/api/v1/whoami");
    assert_eq!(whoami.status, 200, "{}", whoami.body);
    assert_eq!(whoami.json()["principal"], "olga");
    assert_eq!(whoami.json()["role"], "operator");
    // Disabled, the certificate is refused from the next request.
    controller.berth(&["users", "disable", "olga"]).ok();
    let refused = olga.get("/api/v1/whoami");
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.code(), "auth/disabled");
}
