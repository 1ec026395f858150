//! The HTTP API through the real binaries, over loopback with `curl`: an
//! operator's token deploys a plain `tar czf` bundle followed over
//! server-sent events (every line once, in order, live, and a reconnect
//! with `Last-Event-ID` without duplicates), listing with filters, sort
//! and pages, the trigger rate limit's 429, and the README's CI snippet
//! run as written. Refusals are in `http_refusals.rs`.

use std::process::Command;

use berth_tests::http::{self, Api, Body, Event, SCRIPT_MANIFEST, deploy, tar_bundle, user_token};
use berth_tests::{Agent, Controller, DEADLINE, skip, write_bundle};
use serde_json::{Value, json};

fn has_curl(test: &str) -> bool {
    let found = http::has_curl();
    if !found {
        skip(test, "curl (scripts/toolchain.sh installs it)");
    }
    found
}

fn line_data(events: &[Event]) -> Vec<Value> {
    events
        .iter()
        .filter(|event| event.name == "line")
        .map(Event::json)
        .collect()
}

#[test]
fn an_operator_token_deploys_a_tar_bundle_followed_over_sse() {
    if !has_curl("an_operator_token_deploys_a_tar_bundle_followed_over_sse") {
        return;
    }
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "web-1", "role=web");
    let (token, _) = user_token(&controller, "opal", "operator");
    let api = Api::new(&controller.http_url, Some(&token));
    let bundle = tar_bundle(controller.dir.path(), "hello", 40);
    let blob = format!("/api/v1/blobs/{}", bundle.digest);
    assert_eq!(api.request("HEAD", &blob, &[], Body::None).status, 404);

    let created = deploy(&api, &bundle, json!({"idempotency_key": "build-1"}));
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().expect("id").to_string();
    assert_eq!(created.json()["trigger"], "api", "{}", created.body);
    assert_eq!(api.request("HEAD", &blob, &[], Body::None).status, 200);
    let logs = format!("/api/v1/deployments/{id}/logs?follow=true");
    let log = |name: &str| controller.dir.path().join(name);
    let mut follow = api.stream(&logs, &[], &log("follow.log"));
    let mut snapshots = api.stream(
        &format!("/api/v1/deployments/{id}/events"),
        &[],
        &log("events.log"),
    );
    let again = deploy(&api, &bundle, json!({"idempotency_key": "build-1"}));
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.header("berth-existing-deployment"), Some("true"));
    assert_eq!(again.json()["id"], id.as_str());

    let followed = http::until_end(&mut follow, "the logs stream");
    // Live: the first line came while the setup still had seconds to run.
    let arrived = |needle: &str| {
        let timed = follow.stdout.timed();
        let found = timed.iter().find(|(_, line)| line.contains(needle));
        found.map(|(at, _)| *at).expect(needle)
    };
    let live_for = arrived("event: end") - arrived("\"hello line 1\"");
    assert!(
        live_for >= std::time::Duration::from_millis(500),
        "lines came late: {live_for:?}"
    );
    let snapshots = http::until_end(&mut snapshots, "the events stream");
    let last = snapshots
        .iter()
        .rfind(|event| event.name == "deployment")
        .expect("a snapshot");
    assert_eq!(last.json()["status"], "deployed", "{}", last.data);
    assert_eq!(
        api.get(&format!("/api/v1/deployments/{id}")).json()["status"],
        "deployed"
    );

    // Every stored line exactly once and in order, as `berth logs` has them.
    let stored: Vec<Value> = controller
        .berth(&["logs", &id, "-o", "json"])
        .ok()
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let lines = line_data(&followed);
    assert_eq!(lines, stored);
    let printed: Vec<&str> = lines
        .iter()
        .filter(|line| line["stream"] == "stdout")
        .filter_map(|line| line["line"].as_str())
        .collect();
    let expected: Vec<String> = (1..=40).map(|i| format!("hello line {i}")).collect();
    assert_eq!(printed, expected);
    let read = api.get(&format!("/api/v1/deployments/{id}/logs"));
    assert_eq!(read.json()["lines"], Value::Array(stored.clone()));

    // A reconnect from the 10th line's id gets exactly the lines after it.
    let line_events: Vec<&Event> = followed
        .iter()
        .filter(|event| event.name == "line")
        .collect();
    let resume_at = line_events[9].id.clone().expect("line events carry ids");
    let mut resumed = api.stream(&logs, &[("Last-Event-ID", &resume_at)], &log("resumed.log"));
    let resumed = http::until_end(&mut resumed, "the resumed logs stream");
    assert_eq!(line_data(&resumed), stored[10..].to_vec());
}

#[test]
fn lists_filter_sort_and_page_and_triggers_are_rate_limited() {
    if !has_curl("lists_filter_sort_and_page_and_triggers_are_rate_limited") {
        return;
    }
    let controller = Controller::start_with(&["--trigger-limit", "2"]);
    let _agent = Agent::join(&controller, "web-1", "role=web");
    let (token, _) = user_token(&controller, "opal", "operator");
    let api = Api::new(&controller.http_url, Some(&token));
    let mut changes = api.stream(
        "/api/v1/events",
        &[],
        &controller.dir.path().join("all.log"),
    );
    let alpha = tar_bundle(controller.dir.path(), "alpha", 2);
    let beta = tar_bundle(controller.dir.path(), "beta", 2);
    let mut ids = Vec::new();
    for bundle in [&alpha, &alpha, &beta] {
        let created = deploy(&api, bundle, json!({}));
        assert_eq!(created.status, 201, "{}", created.body);
        let id = created.json()["id"].as_str().expect("id").to_string();
        assert_eq!(controller.wait_quiet(&id)["status"], "deployed");
        ids.push(id);
    }
    let limited = deploy(&api, &alpha, json!({}));
    assert_eq!(
        (limited.status, limited.code()),
        (429, "deployment/rate-limited".into()),
        "{}",
        limited.body
    );
    let wait: u64 = limited
        .header("retry-after")
        .and_then(|value| value.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(limited.json()["error"]["details"]["retry_after_secs"], wait);

    // Every change reached the stream of all deployments.
    for id in &ids {
        let seen = changes
            .stdout
            .wait_for(&format!("\"id\":\"{id}\""), DEADLINE);
        assert!(seen.is_some(), "no change of {id} on /api/v1/events");
    }
    changes.kill9();

    let listed = |query: &str| -> (Vec<String>, Value) {
        let reply = api.get(&format!("/api/v1/deployments{query}"));
        assert_eq!(reply.status, 200, "{query}: {}", reply.body);
        let page = reply.json();
        let found = page["deployments"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|deployment| deployment["id"].as_str().unwrap_or_default().to_string())
            .collect();
        (found, page["next_offset"].clone())
    };
    let (alpha1, alpha2, beta1) = (ids[0].clone(), ids[1].clone(), ids[2].clone());
    assert_eq!(
        listed("").0,
        [beta1.clone(), alpha2.clone(), alpha1.clone()]
    );
    assert_eq!(listed("?app=alpha").0, [alpha2.clone(), alpha1.clone()]);
    assert_eq!(
        listed("?app=alpha&order=asc").0,
        [alpha1.clone(), alpha2.clone()]
    );
    assert_eq!(listed("?status=superseded").0, vec![alpha1.clone()]);
    assert_eq!(listed("?status=superseded&status=deployed").0.len(), 3);
    assert_eq!(listed("?sort=app&order=desc").0[0], beta1);
    assert_eq!(listed("?search=bet").0, vec![beta1.clone()]);
    assert_eq!(listed("?triggered_by=me").0.len(), 3);
    assert_eq!(
        listed("?environment=default&limit=1"),
        (vec![beta1.clone()], json!(1))
    );
    assert_eq!(
        listed("?limit=2&offset=2"),
        (vec![alpha1.clone()], Value::Null)
    );
    let bogus = api.get("/api/v1/deployments?status=bogus");
    assert_eq!(
        (bogus.status, bogus.code()),
        (400, "request/invalid".into())
    );
    assert!(bogus.body.contains("status"), "{}", bogus.body);
}

/// The README's "Deploy from CI with curl and a token" snippet, as
/// written there, deploys a directory through the API.
#[test]
fn the_readme_ci_snippet_deploys() {
    if !has_curl("the_readme_ci_snippet_deploys") {
        return;
    }
    let has_jq = Command::new("jq")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !has_jq {
        skip(
            "the_readme_ci_snippet_deploys",
            "jq (scripts/toolchain.sh installs it)",
        );
        return;
    }
    let readme = include_str!("../../README.md");
    let start = readme
        .find("### Deploy from CI with curl and a token")
        .expect("the README section");
    let snippet = readme[start..]
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the snippet");
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "web-1", "role=web");
    let (token, _) = user_token(&controller, "ci", "operator");
    let work = controller.dir.path().join("ci");
    std::fs::create_dir_all(&work).expect("work dir");
    let manifest = format!("app = \"site\"\n{SCRIPT_MANIFEST}");
    write_bundle(
        &work,
        "myapp",
        &manifest,
        &[("setup.sh", "#!/bin/sh\necho built by ci\n")],
    );
    let output = Command::new("sh")
        .args(["-eu", "-c", snippet])
        .current_dir(&work)
        .env("BERTH_API", &controller.http_url)
        .env("BERTH_TOKEN", &token)
        .output()
        .expect("run the snippet");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the snippet failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("built by ci") && stdout.contains("event: end"),
        "{stdout}"
    );
    let listed = controller
        .berth(&["ls", "--app", "site", "-o", "json"])
        .json();
    assert_eq!(listed[0]["status"], "deployed", "{listed}");
    assert_eq!(listed[0]["triggered_by"], "ci via token ci");
}
