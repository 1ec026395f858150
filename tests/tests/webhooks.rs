//! Outgoing webhooks through the real binaries, to a real HTTP receiver
//! in the test (`berth_tests::webhook_receiver`) that checks every
//! Standard Webhooks signature with its own HMAC:
//!
//! - deliveries arrive signed, one endpoint's in the order of their
//!   events, a refused one retried with the same `webhook-id` before the
//!   next is tried; app, event and format filters hold; the signing secret
//!   and the URL's path show only once, and never in a listing or a log;
//! - deliveries waiting for a failing endpoint survive `kill -9` of the
//!   controller and arrive, in order, once it answers;
//! - an endpoint failing past `--webhook-give-up` is disabled with an
//!   audit entry, and `enable` sends again;
//! - an agent going away and coming back is told, and the HTTP API adds,
//!   lists and tests endpoints for admins only.

use std::time::Duration;

use berth_tests::http::{Api, user_token};
use berth_tests::webhook_receiver::{Received, Receiver, verify};
use berth_tests::{Agent, Controller, DEADLINE, id_of, write_bundle};
use serde_json::{Value, json};

fn manifest(app: &str, version: &str, run: &str) -> String {
    format!(
        "app = \"{app}\"\nversion = \"{version}\"\n[target]\nhosts = [\"h1\"]\n[setup]\nrun = [\"{run}\"]\n"
    )
}

/// Deploys and returns the deployment's id, whatever its outcome.
fn deploy(controller: &Controller, app: &str, version: &str, run: &str) -> String {
    let bundle = write_bundle(
        controller.dir.path(),
        &format!("{app}-{version}"),
        &manifest(app, version, run),
        &[],
    );
    let (_, deployment, stderr) = controller.deploy(&bundle);
    assert!(deployment["id"].is_string(), "{stderr}");
    id_of(&deployment)
}

/// Adds an endpoint with the CLI; its id and signing secret.
fn add(controller: &Controller, args: &[&str]) -> (String, String) {
    let mut all = vec!["webhook", "add"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let created = controller.berth(&all).json();
    let id = created["webhook"]["id"].as_str().expect("id").to_string();
    let secret = created["secret"].as_str().expect("secret").to_string();
    (id, secret)
}

/// The event types of the requests answered 2xx, in order, once each.
fn delivered(requests: &[Received]) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    for request in requests.iter().filter(|r| r.answered < 300) {
        let id = request.header("webhook-id").to_string();
        if !seen.iter().any(|(known, _)| *known == id) {
            seen.push((
                id,
                request.json()["type"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    seen
}

/// No request of a later event came before an earlier one was answered
/// 2xx: the ids in arrival order never go back to one already delivered,
/// and a new id only follows a delivered one.
fn assert_in_order(requests: &[Received]) {
    let mut done: Vec<&str> = Vec::new();
    let mut current: Option<&str> = None;
    for request in requests {
        let id = request.header("webhook-id");
        assert!(
            !done.contains(&id),
            "{id} sent again after it was delivered: {requests:#?}"
        );
        if let Some(current) = current
            && current != id
        {
            panic!("{id} was sent while {current} still waited: {requests:#?}");
        }
        if request.answered < 300 {
            done.push(id);
            current = None;
        } else {
            current = Some(id);
        }
    }
}

fn events_of(receiver: &Receiver) -> Vec<String> {
    delivered(&receiver.received())
        .into_iter()
        .map(|(_, event)| event)
        .collect()
}

#[test]
fn signed_deliveries_arrive_in_order_retried_and_filtered() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "h1", "role=web");
    let all = Receiver::start();
    let chat = Receiver::start();
    let elsewhere = Receiver::start();
    // The first event is refused twice: it is retried, and nothing after
    // it goes first.
    all.plan(&[503, 500]);
    let (id, secret) = add(&controller, &["--url", &all.url("/in/T0KEN-in-path")]);
    let (chat_id, _) = add(
        &controller,
        &[
            "--url",
            &chat.url("/chat"),
            "--events",
            "deployment.failed",
            "--format",
            "slack",
        ],
    );
    let (other_id, _) = add(
        &controller,
        &["--url", &elsewhere.url("/x"), "--app", "other"],
    );

    let listed = controller.berth(&["webhook", "ls", "-o", "json"]).ok();
    assert!(
        !listed.contains(&secret) && !listed.contains("T0KEN"),
        "{listed}"
    );
    assert!(
        listed.contains(&format!("http://127.0.0.1:{}/…", all.port)),
        "{listed}"
    );

    let good = deploy(&controller, "web", "1", "true");
    deploy(&controller, "web", "2", "true");
    let bad = deploy(&controller, "web", "3", "false");
    let back = controller
        .berth(&["rollback", "web", "--env", "default", "-o", "json"])
        .json();
    assert_eq!(back["status"], "deployed", "{back:#}");
    let want = [
        "deployment.created",
        "deployment.succeeded",
        "deployment.created",
        "deployment.succeeded",
        "deployment.created",
        "deployment.failed",
        "deployment.created",
        "deployment.rolled_back",
    ];
    let requests = all.wait_until("eight events delivered", DEADLINE, |requests| {
        delivered(requests).len() >= want.len()
    });
    assert_eq!(events_of(&all), want, "{requests:#?}");
    assert_in_order(&requests);
    // The first delivery took three attempts under one id.
    let first = requests[0].header("webhook-id");
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.header("webhook-id") == first)
            .map(|r| r.answered)
            .collect::<Vec<_>>(),
        [503, 500, 200]
    );
    for request in &requests {
        verify(&secret, request).unwrap_or_else(|err| panic!("{err}: {request:#?}"));
        assert!(
            verify(
                "whsec_d3JvbmcgZm9yIHN1cmUgYW5kIGxvbmcgZW5vdWdoIQ==",
                request
            )
            .is_err()
        );
        assert_eq!(request.path, "/in/T0KEN-in-path");
        assert_eq!(request.header("content-type"), "application/json");
    }
    let bodies: Vec<Value> = requests
        .iter()
        .filter(|r| r.answered == 200)
        .map(Received::json)
        .collect();
    assert_eq!(bodies[1]["data"]["deployment"]["id"], good);
    assert_eq!(bodies[1]["data"]["deployment"]["status"], "deployed");
    assert_eq!(bodies[5]["data"]["deployment"]["id"], bad);
    assert_eq!(bodies[5]["data"]["deployment"]["error_step"], "setup");
    assert_eq!(bodies[7]["data"]["deployment"]["id"], back["id"]);
    assert_eq!(bodies[7]["data"]["deployment"]["version"], "1");
    assert!(
        bodies[0]["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    // The log of deliveries: newest first, the first one with 3 attempts.
    let log = controller
        .berth(&["webhook", "deliveries", &id, "-o", "json"])
        .json();
    let log = log.as_array().expect("deliveries");
    assert_eq!(log.len(), 8, "{log:#?}");
    assert_eq!(log[7]["id"], first);
    assert_eq!(
        (log[7]["attempts"].as_u64(), log[7]["state"].as_str()),
        (Some(3), Some("delivered"))
    );
    assert_eq!(log[7]["last_status"], 200);

    // Only the failure reached the chat endpoint, as one line of text.
    let said = chat.wait_until("the failure said in chat", DEADLINE, |r| !r.is_empty());
    let text = said[0].json()["text"].as_str().unwrap_or("").to_string();
    assert!(
        text.contains("web 3 to default FAILED")
            && text.contains(&bad)
            && text.contains("at setup"),
        "{text}"
    );
    // A test delivery queues behind nothing and shows in its log.
    controller.berth(&["webhook", "test", &chat_id]).ok();
    let tested = chat.wait_until("the test delivery", DEADLINE, |r| r.len() >= 2);
    assert_eq!(
        tested.len(),
        2,
        "only the failure and the test: {tested:#?}"
    );
    assert!(
        tested[1].json()["text"]
            .as_str()
            .is_some_and(|t| t.contains("test delivery"))
    );
    // The endpoint for another app heard nothing.
    let other_log = controller
        .berth(&["webhook", "deliveries", &other_id, "-o", "json"])
        .json();
    assert_eq!(other_log, json!([]));
    assert!(elsewhere.received().is_empty());

    controller.berth(&["webhook", "rm", &chat_id]).ok();
    let missing = controller.berth(&["webhook", "test", &chat_id, "-o", "json"]);
    missing.refused(4, "webhook/not-found");
    let log = controller.log();
    assert!(
        !log.contains(&secret) && !log.contains("T0KEN"),
        "the controller's log holds the secret or the URL's path"
    );
}

#[test]
fn waiting_deliveries_survive_a_controller_kill_and_arrive_in_order() {
    let mut controller = Controller::start();
    let _agent = Agent::join(&controller, "h1", "role=web");
    let receiver = Receiver::start();
    receiver.otherwise(503);
    let (_, secret) = add(&controller, &["--url", &receiver.url("/")]);
    let first = deploy(&controller, "alpha", "1", "true");
    let second = deploy(&controller, "beta", "1", "true");
    receiver.wait_until("an attempt refused", DEADLINE, |r| !r.is_empty());
    controller.kill9();
    receiver.otherwise(200);
    controller.restart();
    let want = [
        "deployment.created",
        "deployment.succeeded",
        "deployment.created",
        "deployment.succeeded",
    ];
    let requests = receiver.wait_until("every event after the restart", DEADLINE, |r| {
        delivered(r).len() >= want.len()
    });
    assert_eq!(events_of(&receiver), want, "{requests:#?}");
    assert_in_order(&requests);
    let about: Vec<Value> = delivered(&requests)
        .iter()
        .map(|(id, _)| {
            let request = requests
                .iter()
                .find(|r| r.header("webhook-id") == id)
                .expect("sent");
            request.json()["data"]["deployment"]["id"].clone()
        })
        .collect();
    assert_eq!(
        about,
        [json!(first), json!(first), json!(second), json!(second)]
    );
    for request in &requests {
        verify(&secret, request).unwrap_or_else(|err| panic!("{err}"));
    }
}

#[test]
fn an_endpoint_failing_too_long_is_disabled_audited_and_enabled_again() {
    let controller = Controller::start_with(&["--webhook-give-up", "2s"]);
    let receiver = Receiver::start();
    receiver.otherwise(502);
    let (id, _) = add(&controller, &["--url", &receiver.url("/")]);
    controller.berth(&["webhook", "test", &id]).ok();
    let disabled = berth_tests::eventually_or(
        "the endpoint disabled",
        120,
        Duration::from_millis(250),
        || {
            let listed = controller.berth(&["webhook", "ls", "-o", "json"]).json();
            (listed[0]["enabled"] == false).then_some(listed[0].clone())
        },
        || format!("{:#?}", receiver.received()),
    );
    let reason = disabled["disabled_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("HTTP 502") && reason.contains("webhook enable"),
        "{reason}"
    );
    let tries = receiver.received().len();
    assert!(tries >= 2, "retried before giving up: {tries}");
    let log = controller
        .berth(&["webhook", "deliveries", &id, "-o", "json"])
        .json();
    assert_eq!(
        (log[0]["state"].as_str(), log[0]["attempts"].as_u64()),
        (Some("failed"), Some(tries as u64))
    );
    let audit = controller
        .berth(&["audit", "--target", &id, "-o", "json"])
        .json();
    assert!(
        audit
            .as_array()
            .expect("audit")
            .iter()
            .any(|entry| entry["action"] == "webhook.disabled" && entry["who"] == "berth"),
        "{audit:#}"
    );

    // Disabled, it gets nothing; enabled again, it does.
    receiver.otherwise(200);
    controller.berth(&["webhook", "enable", &id]).ok();
    controller.berth(&["webhook", "test", &id]).ok();
    receiver.wait_until("a delivery after enable", DEADLINE, |r| {
        r.iter().any(|r| r.answered == 200)
    });
    let listed = controller.berth(&["webhook", "ls", "-o", "json"]).json();
    assert_eq!(
        (
            listed[0]["enabled"].as_bool(),
            listed[0]["pending"].as_u64()
        ),
        (Some(true), Some(0))
    );
}

#[test]
fn agents_going_away_and_back_are_told_and_the_api_is_for_admins() {
    let controller = Controller::start();
    let receiver = Receiver::start();
    let (admin_token, _) = user_token(&controller, "ada", "admin");
    let (operator_token, _) = user_token(&controller, "otto", "operator");
    let api = Api::new(&controller.http_url, Some(&admin_token));
    let created = api.post(
        "/api/v1/webhooks",
        &json!({ "url": receiver.url("/agents"), "events": ["agent.offline", "agent.online"] }),
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let created = created.json();
    let (id, secret) = (
        created["webhook"]["id"].as_str().expect("id").to_string(),
        created["secret"].as_str().expect("secret").to_string(),
    );
    let listed = api.get("/api/v1/webhooks");
    assert_eq!(listed.json()["webhooks"][0]["id"], id.as_str());
    assert!(!listed.body.contains(&secret));
    let refused = Api::new(&controller.http_url, Some(&operator_token)).get("/api/v1/webhooks");
    assert_eq!(
        (refused.status, refused.code()),
        (403, "auth/permission-denied".to_string())
    );
    let bad = api.post("/api/v1/webhooks", &json!({ "url": "ftp://x/y" }));
    assert_eq!(
        (bad.status, bad.code()),
        (400, "webhook/invalid".to_string())
    );
    let bad = api.post(
        "/api/v1/webhooks",
        &json!({ "url": receiver.url("/"), "events": ["deployment.exploded"] }),
    );
    assert_eq!(
        (bad.status, bad.code()),
        (400, "webhook/invalid".to_string())
    );

    let mut agent = Agent::join(&controller, "edge-7", "role=web");
    agent.kill9();
    let told = receiver.wait_until("agent.offline", DEADLINE, |r| !r.is_empty());
    assert_eq!(told[0].json()["type"], "agent.offline");
    assert_eq!(told[0].json()["data"]["agent"], "edge-7");
    agent.spawn();
    let told = receiver.wait_until("agent.online", DEADLINE, |r| r.len() >= 2);
    assert_eq!(told[1].json()["type"], "agent.online");
    for request in &told {
        verify(&secret, request).unwrap_or_else(|err| panic!("{err}"));
    }
    let tested = api.post(&format!("/api/v1/webhooks/{id}/test"), &json!({}));
    assert_eq!(tested.status, 200, "{}", tested.body);
    receiver.wait_until("the API's test delivery", DEADLINE, |r| r.len() >= 3);
}
