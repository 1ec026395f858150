//! Unit tests of the metrics: a deployment's run counted once through the
//! real store, stage and queue times, route labels from the matched
//! template, and the text's shape.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use berth_shared::record::Timestamp;
use berth_shared::state::DeploymentStatus;
use tower::ServiceExt as _;

use super::Metrics;
use crate::progress;
use crate::registry::Registry;
use crate::store::Store;

fn metrics() -> Arc<Metrics> {
    Arc::new(Metrics::new(Arc::new(Registry::default())))
}

/// The value of the sample whose name and labels are exactly `sample`.
fn value(metrics: &Metrics, sample: &str) -> Option<f64> {
    metrics.encode().lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == sample).then(|| value.parse().expect("a number"))
    })
}

fn set(store: &Store, id: berth_shared::id::DeploymentId, status: DeploymentStatus) {
    store
        .update_deployment(id, |deployment| {
            progress::set_status(deployment, status, None);
            Ok(())
        })
        .expect("update");
}

#[test]
fn a_run_is_counted_once_when_it_settles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let metrics = metrics();
    store.observe(metrics.clone());
    let deployment = crate::testing::deployment(&["h1"], 0);
    store
        .create_deployment(&deployment, false, false)
        .expect("create");
    let failed = r#"berth_deployments_total{app="a",environment="default",status="failed"}"#;
    assert_eq!(value(&metrics, failed), None, "nothing ended yet");
    set(&store, deployment.id, DeploymentStatus::Deploying);
    set(&store, deployment.id, DeploymentStatus::Failed);
    assert_eq!(value(&metrics, failed), Some(1.0));
    // The same outcome again (an agent's events sent twice) is refused by
    // the rules and changes nothing; a change of something else neither.
    set(&store, deployment.id, DeploymentStatus::Failed);
    store
        .update_deployment(deployment.id, |deployment| {
            deployment.message = Some("noted".into());
            Ok(())
        })
        .expect("update");
    assert_eq!(value(&metrics, failed), Some(1.0));
    let count = r#"berth_deployment_duration_seconds_count{app="a",environment="default"}"#;
    assert_eq!(value(&metrics, count), Some(1.0));
    // Deleting what failed is no new run.
    set(&store, deployment.id, DeploymentStatus::Deleted);
    assert_eq!(value(&metrics, failed), Some(1.0));
    assert_eq!(
        value(
            &metrics,
            r#"berth_deployments_total{app="a",environment="default",status="deleted"}"#
        ),
        None
    );
}

#[test]
fn finished_stages_and_first_assignments_are_timed_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let metrics = metrics();
    store.observe(metrics.clone());
    let mut deployment = crate::testing::deployment(&["h1"], 0);
    deployment.tasks[0].assigned_at = None;
    store
        .create_deployment(&deployment, false, false)
        .expect("create");
    let task = deployment.tasks[0].id;
    let assign = |store: &Store| {
        store
            .update_deployment(deployment.id, |deployment| {
                let task = deployment.task_mut(task).expect("task");
                task.assigned_at = Some(Timestamp(task.created_at.0 + 1500));
                Ok(())
            })
            .expect("assign");
    };
    assign(&store);
    // Assigned again (the agent came back): not a second wait.
    assign(&store);
    assert_eq!(value(&metrics, "berth_queue_wait_seconds_count"), Some(1.0));
    assert_eq!(value(&metrics, "berth_queue_wait_seconds_sum"), Some(1.5));
    let stage = |finished: bool| {
        move |deployment: &mut berth_shared::record::Deployment| {
            let task = deployment.task_mut(task).expect("task");
            if finished {
                let stage = task.stages.last_mut().expect("a stage");
                stage.finished_at = Some(Timestamp::now());
                stage.duration_ms = Some(250);
            } else {
                task.stages.push(berth_shared::record::StageResult {
                    stage: "setup".into(),
                    outcome: "running".into(),
                    started_at: Timestamp::now(),
                    finished_at: None,
                    duration_ms: None,
                    exit_code: None,
                    error: None,
                    details: Default::default(),
                });
            }
            Ok(())
        }
    };
    store
        .update_deployment(deployment.id, stage(false))
        .expect("start");
    store
        .update_deployment(deployment.id, stage(true))
        .expect("finish");
    store
        .update_deployment(deployment.id, stage(true))
        .expect("again");
    let count = r#"berth_stage_duration_seconds_count{stage="setup"}"#;
    assert_eq!(value(&metrics, count), Some(1.0));
}

async fn status_of(router: Router, path: &str) -> u16 {
    let request = Request::get(path).body(Body::empty()).expect("request");
    router
        .oneshot(request)
        .await
        .expect("answer")
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_route_label_is_the_matched_template() {
    let metrics = metrics();
    let router = Router::new()
        .route("/things/{id}", get(|| async { "thing" }))
        .layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            super::http::track,
        ));
    assert_eq!(status_of(router.clone(), "/things/42").await, 200);
    assert_eq!(status_of(router.clone(), "/things/43").await, 200);
    assert_eq!(status_of(router, "/secret-token-in-a-path").await, 404);
    let text = metrics.encode();
    let thing = r#"berth_http_requests_total{method="GET",route="/things/{id}",status="200"}"#;
    assert_eq!(value(&metrics, thing), Some(2.0), "{text}");
    let unmatched = r#"berth_http_requests_total{method="GET",route="unmatched",status="404"}"#;
    assert_eq!(value(&metrics, unmatched), Some(1.0), "{text}");
    // No label holds a raw path (a sample's value, a duration, may hold
    // the digits 42 by chance).
    let labels: Vec<&str> = text
        .lines()
        .filter_map(|line| {
            line.split_once('{')
                .and_then(|(_, rest)| rest.split_once('}'))
        })
        .map(|(labels, _)| labels)
        .collect();
    assert!(
        labels
            .iter()
            .all(|labels| !labels.contains("42") && !labels.contains("secret-token")),
        "{text}"
    );
    assert!(!text.contains("secret-token"), "{text}");
}

#[test]
fn the_text_is_openmetrics_with_every_family() {
    let metrics = metrics();
    metrics.webhook_delivery(true);
    metrics.webhook_delivery(false);
    metrics.logs_stored(3, 30);
    let stream = metrics.stream_opened(true);
    let text = metrics.encode();
    // A family with no labelled member yet (no deployment ended) is left
    // out by prometheus-client, name and all.
    assert!(!text.contains("berth_deployments_total"), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    for line in [
        "# TYPE berth_agents_online gauge",
        "berth_agents_online 0",
        "berth_agent_streams_connected 1",
        "berth_agent_stream_reconnects_total 1",
        "berth_log_lines_stored_total 3",
        "berth_log_stored_bytes_total 30",
        r#"berth_webhook_deliveries_total{outcome="failed"} 1"#,
        r#"berth_webhook_deliveries_total{outcome="succeeded"} 1"#,
        "berth_webhook_delivery_failures_total 1",
        "# TYPE berth_store_write_errors counter",
        "# TYPE berth_queue_wait_seconds histogram",
        "# UNIT berth_queue_wait_seconds seconds",
    ] {
        assert!(
            text.lines().any(|seen| seen == line),
            "no `{line}` in\n{text}"
        );
    }
    drop(stream);
    assert_eq!(value(&metrics, "berth_agent_streams_connected"), Some(0.0));
}

#[test]
fn the_queue_wait_starts_at_the_approval_when_there_was_one() {
    let metrics = metrics();
    let mut before = crate::testing::deployment(&["h1"], 0);
    let task = &mut before.tasks[0];
    task.assigned_at = None;
    task.created_at = Timestamp(1_000_000);
    let mut after = before.clone();
    after.transitions.push(berth_shared::record::Transition {
        at: Timestamp(1_005_000),
        subject: "deployment".into(),
        from: Some("pending_approval".into()),
        to: "pending".into(),
        reason: None,
        seq: None,
        task: None,
    });
    after.tasks[0].assigned_at = Some(Timestamp(1_006_000));
    metrics.deployment_changed(&super::Before::of(&before), &after);
    assert_eq!(value(&metrics, "berth_queue_wait_seconds_sum"), Some(1.0));
    assert_eq!(value(&metrics, "berth_queue_wait_seconds_count"), Some(1.0));
}
