//! Deployments other tools made, reported over HTTP
//! (`POST /api/v1/deployment-events`), and provenance on an API deploy:
//! a started → success sequence updates one record that `berth status`
//! and `berth ls` show, never dispatched; a viewer may not report.

use berth_tests::http::{self, Api, tar_bundle, user_token};
use berth_tests::{Agent, Controller, skip};
use serde_json::json;

#[test]
fn an_outside_deployment_shows_in_status_and_an_api_deploy_keeps_its_commit() {
    if !http::has_curl() {
        skip(
            "an_outside_deployment_shows_in_status",
            "curl (scripts/toolchain.sh installs it)",
        );
        return;
    }
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "web-1", "role=web");
    let (token, _) = user_token(&controller, "opal", "operator");
    let api = Api::new(&controller.http_url, Some(&token));
    let event = |status: &str| {
        json!({
            "product_name": "billing",
            "version": "7.3.0",
            "environment": "prod",
            "status": status,
            "deployed_by": "argo",
            "scm_sha": "abc1234",
            "scm_branch": "main",
            "extra_metadata": {"cluster": "eu-1", "replicas": 3},
        })
    };
    let started = api.post("/api/v1/deployment-events", &event("started"));
    assert_eq!(started.status, 200, "{}", started.body);
    assert_eq!(started.json()["status"], "deploying");
    let done = api.post("/api/v1/deployment-events", &event("success"));
    assert_eq!(done.status, 200, "{}", done.body);
    let record = done.json();
    assert_eq!(record["id"], started.json()["id"], "one record");
    assert_eq!(record["status"], "deployed");
    assert_eq!(
        (record["origin"].as_str(), record["trigger"].as_str()),
        (Some("external"), Some("external"))
    );
    assert_eq!(record["commit_sha"], "abc1234");
    assert_eq!(record["source_ref"], "main");
    assert_eq!(record["extra_metadata"]["replicas"], "3");
    assert_eq!(
        record["tasks"].as_array().map(Vec::len),
        Some(0),
        "never dispatched"
    );

    let status = controller
        .berth(&["status", "--env", "prod", "-o", "json"])
        .json();
    let row = status
        .as_array()
        .and_then(|rows| rows.iter().find(|row| row["app"] == "billing"))
        .unwrap_or_else(|| panic!("billing in status: {status}"));
    assert_eq!(row["version"], "7.3.0", "{row}");
    assert_eq!(row["status"], "deployed", "{row}");
    let listed = controller
        .berth(&["ls", "--app", "billing", "-o", "json"])
        .json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");

    let late = api.post("/api/v1/deployment-events", &event("pending"));
    assert_eq!(late.status, 409, "{}", late.body);
    assert_eq!(late.json()["error"]["code"], "deployment/invalid-state");
    let (viewer, _) = user_token(&controller, "vic", "viewer");
    let refused = Api::new(&controller.http_url, Some(&viewer))
        .post("/api/v1/deployment-events", &event("started"));
    assert_eq!(refused.status, 403, "{}", refused.body);

    // An API deploy records where it came from.
    let bundle = tar_bundle(controller.dir.path(), "hello", 1);
    let created = http::deploy(
        &api,
        &bundle,
        json!({"commit_sha": "0123abc", "source_ref": "v2", "message": "from CI"}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let made = created.json();
    assert_eq!(
        (made["commit_sha"].as_str(), made["source_ref"].as_str()),
        (Some("0123abc"), Some("v2"))
    );
    assert_eq!(made["message"], "from CI");
    let bad = http::deploy(&api, &bundle, json!({"commit_sha": "zz"}));
    assert_eq!(bad.status, 400, "{}", bad.body);
}
