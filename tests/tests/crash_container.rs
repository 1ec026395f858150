//! T3 for containers: `kill -9` of an agent while a new version of a
//! container app waits for its health check, against a private Docker
//! daemon. Back within the lost grace (the task is reported interrupted)
//! or after it (the task is lost), the restarted agent leaves exactly what
//! should run: the previous version, still serving, and no half-deployed
//! or duplicated container with berth's labels.

use std::time::Duration;

use berth_tests::docker::{Dockerd, IMAGE, checked_manifest, host_port, http_get};
use berth_tests::{Agent, Controller, eventually, id_of, write_bundle};

/// The page of [`IMAGE`].
const PAGE: &str = "hello from the test image\n";

#[test]
fn an_agent_killed_mid_container_deploy_leaves_no_container_behind() {
    let test = "crash_container::an_agent_killed_mid_container_deploy_leaves_no_container_behind";
    let Some(dockerd) = Dockerd::start(test) else {
        return;
    };
    dockerd.import_busybox(IMAGE);
    back_within_the_grace_period(&dockerd);
    back_after_the_grace_period(&dockerd);
}

/// A deployed v1 of `app` on a new agent `host`, then a v2 whose health
/// check never passes, and the agent killed while it waits for it.
struct Crashed {
    agent: Agent,
    /// The v2 deployment.
    id: String,
    /// `docker ps` of the app with v1 alone, and v1's host port.
    before: Vec<String>,
    port: String,
}

fn crash_mid_health_check(controller: &Controller, dockerd: &Dockerd, app: &str) -> Crashed {
    let host = format!("{app}-host");
    let mut agent = Agent::join_with_args(controller, &host, "", &["--docker-host", &dockerd.host]);
    let manifest = |version: &str, check: &str| checked_manifest(app, &host, version, check, "5m");
    let first = controller.deploy_ok("v1", &manifest("1", "/index.html"));
    let port = host_port(&first, 0);
    let before = dockerd.containers_of(app);
    assert_eq!(before.len(), 1, "{before:?}");

    let v2 = write_bundle(controller.dir.path(), "v2", &manifest("2", "/never"), &[]);
    let id = id_of(&controller.deploy_detached(&v2, &[]).json());
    // The controller announces no stage change a test can wait on; it shows
    // in the record.
    eventually(
        "the new container's health check running",
        400,
        Duration::from_millis(50),
        || (controller.show(&id)["tasks"][0]["status"] == "health").then_some(()),
    );
    assert_eq!(
        dockerd.containers_of(app).len(),
        2,
        "v1 and v2 side by side"
    );
    agent.kill9();
    Crashed {
        agent,
        id,
        before,
        port,
    }
}

/// What the restarted agent leaves: v1 alone, still serving. The agent
/// removes the half-deployed v2 on its own time (its start, or the
/// controller's cancel), which nothing announces.
fn check_only_v1_left(dockerd: &Dockerd, app: &str, crashed: &Crashed) {
    let left = || dockerd.containers_of(app);
    berth_tests::eventually_or(
        &format!("{app}: only {:?} left", crashed.before),
        100,
        Duration::from_millis(100),
        || (left() == crashed.before).then_some(()),
        || format!("found {:?}", left()),
    );
    assert_eq!(
        http_get(&crashed.port, "/index.html").as_deref(),
        Some(PAGE),
        "v1 still serves"
    );
}

fn back_within_the_grace_period(dockerd: &Dockerd) {
    let controller = Controller::start_with_grace("5m");
    let mut crashed = crash_mid_health_check(&controller, dockerd, "phoenix");
    crashed.agent.spawn();
    let done = controller.wait_quiet(&crashed.id);
    assert_eq!(done["status"], "failed", "{done:#}");
    assert_eq!(done["tasks"][0]["status"], "failed", "{done:#}");
    let message = done["error_message"].as_str().unwrap_or_default();
    assert!(message.contains("restarted"), "{message}");
    check_only_v1_left(dockerd, "phoenix", &crashed);
}

fn back_after_the_grace_period(dockerd: &Dockerd) {
    let controller = Controller::start_with_grace("2s");
    let mut crashed = crash_mid_health_check(&controller, dockerd, "lazarus");
    let lost = controller.wait_quiet(&crashed.id);
    assert_eq!(lost["status"], "failed", "{lost:#}");
    assert_eq!(lost["tasks"][0]["status"], "lost", "{lost:#}");
    crashed.agent.spawn();
    crashed
        .agent
        .process()
        .expect_connected("the restarted agent");
    controller.process().expect_logged(
        "stale task events recorded and ignored",
        1,
        "the controller",
    );
    check_only_v1_left(dockerd, "lazarus", &crashed);
    assert_eq!(controller.show(&crashed.id)["tasks"][0]["status"], "lost");
}
