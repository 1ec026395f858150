//! Crashes: `kill -9` of the controller or of an agent while a setup script
//! runs. Nothing acknowledged may be lost, no log line may be doubled, the
//! deployment must end with a story an operator can read, and a restarted
//! agent leaves no orphaned script running (T3; containers are
//! crash_container.rs's).

use berth_tests::{Agent, Controller, DEADLINE, id_of, write_bundle};

/// A script that prints, waits for the test to release it, then prints more.
const SETUP: &str = r#"#!/bin/sh
echo "before 1"
echo "before 2"
i=0
while [ ! -e "$BERTH_WORK_DIR/release" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
for i in 1 2 3 4 5; do echo "after $i"; done
"#;

fn manifest(host: &str) -> String {
    format!(
        "app = \"crashy\"\n[target]\nhosts = [\"{host}\"]\n[setup]\nrun = [\"./setup.sh\"]\ntimeout = \"5m\"\n"
    )
}

/// Joins `host`, deploys the crashy bundle to it and waits until its script
/// printed its first lines; returns the agent and the deployment id.
fn deploy_and_wait_mid_script(controller: &Controller, host: &str) -> (Agent, String) {
    let agent = Agent::join(controller, host, "role=web");
    let bundle = write_bundle(
        controller.dir.path(),
        "crashy",
        &manifest(host),
        &[("setup.sh", SETUP)],
    );
    let id = id_of(&controller.deploy_detached(&bundle, &[]).json());
    let follow = controller.berth_spawn(&["logs", &id, "-f"]);
    assert!(
        follow.stdout.wait_for("before 2", DEADLINE).is_some(),
        "script did not start"
    );
    (agent, id)
}

#[test]
fn controller_kill9_mid_script_loses_and_doubles_nothing() {
    let mut controller = Controller::start();
    let (agent, id) = deploy_and_wait_mid_script(&controller, "steady");

    controller.kill9();
    // The script goes on while the controller is gone.
    std::fs::write(agent.dir.join("work").join(&id).join("release"), b"").expect("release");
    controller.restart();

    let done = controller.wait_quiet(&id);
    assert_eq!(done["status"], "deployed", "{done:#}\n{}", controller.log());
    let expected: Vec<String> = [
        "before 1", "before 2", "after 1", "after 2", "after 3", "after 4", "after 5",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(
        controller.stdout_lines(&id, None),
        expected,
        "every line exactly once, in order"
    );
    let history: Vec<String> = done["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .map(|t| {
            format!(
                "{} {}",
                t["subject"].as_str().unwrap_or(""),
                t["to"].as_str().unwrap_or("")
            )
        })
        .collect();
    for step in [
        "deployment pending",
        "steady assigned",
        "steady setup",
        "deployment setup_running",
        "steady done",
        "deployment deployed",
    ] {
        assert!(
            history.contains(&step.to_string()),
            "history lacks {step}: {history:?}"
        );
    }
    assert_eq!(done["tasks"][0]["stages"][0]["outcome"], "succeeded");
}

#[test]
fn agent_kill9_mid_script_ends_lost_and_its_restart_stops_the_orphan() {
    let controller = Controller::start_with_grace("2s");
    let (mut agent, id) = deploy_and_wait_mid_script(&controller, "fragile");
    agent.kill9();

    let done = controller.wait_quiet(&id);
    assert_eq!(done["status"], "failed", "{done:#}");
    assert_eq!(done["tasks"][0]["status"], "lost");
    assert_eq!(done["error_step"], "setup");
    let message = done["error_message"].as_str().expect("message");
    assert!(
        message.contains("fragile") && message.contains("lost") && message.contains("grace period"),
        "{message}"
    );
    // The lines sent before the crash are kept.
    assert_eq!(controller.stdout_lines(&id, None), ["before 1", "before 2"]);
    // The killed agent left its script running...
    let work = agent.dir.join("work").join(&id);
    assert!(
        !berth_tests::processes_in(&work).is_empty(),
        "the orphaned script should still run"
    );

    // ...which the agent, back after the grace period, stops; its report
    // of the interruption comes too late to change the lost task.
    agent.spawn();
    agent.process().expect_logged(
        "stopped the processes an interrupted task left running",
        1,
        "the restarted agent",
    );
    // A SIGKILL is delivered asynchronously: allow the processes a moment
    // to disappear.
    berth_tests::eventually(
        "the orphaned script gone",
        100,
        std::time::Duration::from_millis(20),
        || berth_tests::processes_in(&work).is_empty().then_some(()),
    );
    controller.process().expect_logged(
        "stale task events recorded and ignored",
        1,
        "the controller",
    );
    let after = controller.show(&id);
    assert_eq!(after["status"], "failed", "{after:#}");
    assert_eq!(after["tasks"][0]["status"], "lost", "{after:#}");
    assert_eq!(after["error_message"], done["error_message"]);
}

#[test]
fn agent_back_within_the_grace_period_reports_the_interruption() {
    let controller = Controller::start_with_grace("5m");
    let (mut agent, id) = deploy_and_wait_mid_script(&controller, "phoenix");
    agent.kill9();
    agent.spawn();

    let done = controller.wait_quiet(&id);
    assert_eq!(done["status"], "failed", "{done:#}");
    assert_eq!(done["tasks"][0]["status"], "failed");
    assert_eq!(done["error_step"], "setup");
    let message = done["error_message"].as_str().expect("message");
    assert!(
        message.contains("phoenix") && message.contains("restarted"),
        "{message}"
    );
    assert_eq!(
        controller.stdout_lines(&id, None),
        ["before 1", "before 2"],
        "no line lost or doubled"
    );
    // The restarted agent stopped what its predecessor left running: no
    // process is left working in the deployment's directory.
    let work = agent.dir.join("work").join(&id);
    let leftovers = berth_tests::kill_processes_in(&work);
    assert!(
        leftovers.is_empty(),
        "processes still running in {}: {leftovers:?}",
        work.display()
    );
}
