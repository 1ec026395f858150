//! Prometheus metrics through the real binaries: a controller serving
//! `GET /metrics` on `--metrics-listen`, an agent with its own, both read
//! with curl and a strict OpenMetrics parser (`berth_tests::openmetrics`),
//! after script deployments that succeed and fail, API and CLI calls, and
//! an agent that reconnects.

use std::time::Duration;

use berth_tests::http::{Api, Body};
use berth_tests::openmetrics::{Exposition, scrape};
use berth_tests::{Agent, Controller, DEADLINE, eventually_or, write_bundle};

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

    // An error answered at once carries its code in the headers.
    let unknown = controller.berth(&["show", "01ARZ3NDEKTSV4RRFFQ69G5FAV"]);
    assert_eq!(unknown.code, 4, "{}", unknown.stderr);

    let (content_type, metrics) = scrape(&controller.metrics_url);
    assert_eq!(content_type, OPENMETRICS);
    let not_found = [
        ("method", "berth.v1.Cli/GetDeployment"),
        ("code", "NotFound"),
    ];
    assert_eq!(
        value(&metrics, "berth_grpc_requests_total", &not_found),
        1.0
    );
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

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

#[test]
fn the_agent_reports_its_tasks_spool_and_what_it_cannot_reach() {
    let controller = Controller::start();
    let caddy = format!("http://127.0.0.1:{}", closed_port());
    let agent = Agent::join_with_args(
        &controller,
        "h1",
        "role=web",
        &[
            "--metrics-listen",
            "127.0.0.1:0",
            "--docker-host",
            "unix:///nonexistent/docker.sock",
            "--caddy-admin",
            &caddy,
        ],
    );
    let line = agent
        .process()
        .stderr
        .wait_for("metrics listening", DEADLINE)
        .unwrap_or_else(|| panic!("no metrics line:\n{}", agent.process().log_tail()));
    let url = line
        .split_whitespace()
        .find_map(|field| field.strip_prefix("url="))
        .expect("the metrics' URL")
        .to_string();

    let bundle = write_bundle(
        controller.dir.path(),
        "app",
        &manifest("shop", "1", "echo hello"),
        &[],
    );
    let (code, deployed, stderr) = controller.deploy(&bundle);
    assert_eq!(code, 0, "{stderr}\n{deployed:#}");

    // The task's end reaches the controller before the agent lets go of
    // it: wait for the agent's own count to come down.
    let metrics = eventually_or(
        "the agent's running tasks to be 0",
        200,
        Duration::from_millis(50),
        || {
            let (content_type, metrics) = scrape(&url);
            assert_eq!(content_type, OPENMETRICS);
            let idle = metrics.sum("berth_agent_running_tasks", &[]) == Some(0.0)
                && metrics.sum("berth_agent_spool_events", &[]) == Some(0.0);
            idle.then_some(metrics)
        },
        || agent.process().log_tail(),
    );
    assert_eq!(value(&metrics, "berth_agent_docker_reachable", &[]), 0.0);
    assert_eq!(value(&metrics, "berth_agent_caddy_reachable", &[]), 0.0);
    assert_eq!(value(&metrics, "berth_agent_dropped_lines_total", &[]), 0.0);
    assert!(value(&metrics, "berth_agent_spool_bytes", &[]) >= 0.0);
    assert_eq!(
        metrics.families["berth_agent_spool_bytes"].unit.as_deref(),
        Some("bytes")
    );

    let other =
        Api::new(&url.replace("/metrics", ""), None).request("GET", "/other", &[], Body::None);
    assert_eq!(other.status, 404);
}
