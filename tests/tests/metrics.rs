//! Prometheus metrics through the real binaries: a controller serving
//! `GET /metrics` on `--metrics-listen`, read with curl and a strict
//! OpenMetrics parser (`berth_tests::openmetrics`), after script
//! deployments that succeed and fail, API and CLI calls, and an agent that
//! reconnects.

use std::time::Duration;

use berth_tests::http::{Api, Body};
use berth_tests::openmetrics::{Exposition, scrape};
use berth_tests::{Agent, Controller, eventually_or, write_bundle};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn manifest(app: &str, version: &str, run: &str) -> String {
    format!(
        "app = \"{app}\"\nversion = \"{version}\"\n[target]\nhosts = [\"h1\"]\n[setup]\nrun = [\"{run}\"]\n"
    )
}

/// The one sample `name` with exactly these labels among its own.
#[track_caller]
fn value(metrics: &Exposition, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<_> = metrics.samples(name, labels).collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    found[0].value
}

#[test]
fn the_controller_counts_deployments_requests_agents_and_logs() {
    let controller = Controller::start();
    assert!(
        controller.metrics_url.starts_with("http://127.0.0.1:"),
        "the controller names its metrics address: {}",
        controller.metrics_url
    );
    let mut agent = Agent::join(&controller, "h1", "role=web");

    let good = write_bundle(
        controller.dir.path(),
        "good",
        &manifest("shop", "1", "echo hello; echo world"),
        &[],
    );
    let (code, deployed, stderr) = controller.deploy(&good);
    assert_eq!(code, 0, "{stderr}\n{deployed:#}");
    assert_eq!(deployed["status"], "deployed");
    let environment = deployed["environment"].as_str().expect("environment");
    let bad = write_bundle(
        controller.dir.path(),
        "bad",
        &manifest("shop", "2", "echo boom; exit 3"),
        &[],
    );
    let (code, failed, _) = controller.deploy(&bad);
    assert_ne!(code, 0, "{failed:#}");
    assert_eq!(failed["status"], "failed");

    let api = Api::new(&controller.http_url, None);
    let document = api.request("GET", "/api/v1/openapi.json", &[], Body::None);
    assert_eq!(document.status, 200);
    let id = failed["id"].as_str().expect("id");
    let refused = api.request("GET", &format!("/api/v1/deployments/{id}"), &[], Body::None);
    assert_eq!(refused.status, 401);

    let (content_type, metrics) = scrape(&controller.metrics_url);
    assert_eq!(content_type, OPENMETRICS);
    let shop = [("app", "shop"), ("environment", environment)];
    for (status, count) in [("deployed", 1.0), ("failed", 1.0)] {
        let labels = [shop[0], shop[1], ("status", status)];
        assert_eq!(value(&metrics, "berth_deployments_total", &labels), count);
    }
    assert_eq!(metrics.sum("berth_deployments_total", &[]), Some(2.0));
    assert_eq!(
        value(&metrics, "berth_deployment_duration_seconds_count", &shop),
        2.0
    );
    let setup = [("stage", "setup")];
    assert_eq!(
        value(&metrics, "berth_stage_duration_seconds_count", &setup),
        2.0
    );
    assert_eq!(value(&metrics, "berth_queue_wait_seconds_count", &[]), 2.0);
    assert_eq!(
        metrics.families["berth_queue_wait_seconds"].unit.as_deref(),
        Some("seconds")
    );
    assert_eq!(value(&metrics, "berth_agents_online", &[]), 1.0);
    assert_eq!(value(&metrics, "berth_agent_streams_connected", &[]), 1.0);
    assert!(value(&metrics, "berth_log_lines_stored_total", &[]) >= 3.0);
    assert!(value(&metrics, "berth_log_stored_bytes_total", &[]) >= "helloworldboom".len() as f64);
    assert_eq!(
        value(&metrics, "berth_webhook_delivery_failures_total", &[]),
        0.0
    );
    assert_eq!(value(&metrics, "berth_store_write_errors_total", &[]), 0.0);
    let openapi = [
        ("method", "GET"),
        ("route", "/api/v1/openapi.json"),
        ("status", "200"),
    ];
    assert_eq!(value(&metrics, "berth_http_requests_total", &openapi), 1.0);
    let by_id = [("route", "/api/v1/deployments/{id}"), ("status", "401")];
    assert_eq!(value(&metrics, "berth_http_requests_total", &by_id), 1.0);
    assert!(
        metrics
            .samples("berth_http_requests_total", &[])
            .all(|sample| !sample.labels["route"].contains(id)),
        "no raw path becomes a label"
    );
    let create = [("method", "berth.v1.Cli/CreateDeployment"), ("code", "Ok")];
    assert_eq!(value(&metrics, "berth_grpc_requests_total", &create), 2.0);
    let stream = [("method", "berth.v1.Agent/OpenStream"), ("code", "Ok")];
    assert_eq!(value(&metrics, "berth_grpc_requests_total", &stream), 1.0);
    assert!(
        metrics.sum(
            "berth_grpc_request_duration_seconds_count",
            &[("method", "berth.v1.Cli/CreateDeployment")]
        ) == Some(2.0)
    );

    // The agent comes back: one reconnect, still one agent online.
    agent.kill9();
    agent.spawn();
    agent.process().expect_connected("agent h1");
    let metrics = eventually_or(
        "the agent's old stream to end",
        200,
        Duration::from_millis(50),
        || {
            let (_, metrics) = scrape(&controller.metrics_url);
            (metrics.sum("berth_agent_streams_connected", &[]) == Some(1.0)).then_some(metrics)
        },
        || controller.log(),
    );
    assert_eq!(
        value(&metrics, "berth_agent_stream_reconnects_total", &[]),
        1.0
    );
    assert_eq!(value(&metrics, "berth_agents_online", &[]), 1.0);
}

#[test]
fn the_controller_serves_no_metrics_when_told_off() {
    let controller = Controller::start_with(&["--metrics-listen", "off"]);
    assert_eq!(
        controller.metrics_url, "",
        "no metrics address is printed when they are off"
    );
}
