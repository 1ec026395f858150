//! The live view of `berth deploy` and `berth watch`: the setup script's
//! output prefixed by host (hidden by `--quiet`), a controller killed and
//! restarted mid-deploy without the view giving up or printing a line
//! twice, and Ctrl-C leaving the deployment running with a way back to it.

use berth_tests::{Agent, Controller, DEADLINE, write_bundle};

/// A script that prints, waits for the test to release it, then prints more.
const SETUP: &str = r#"#!/bin/sh
echo "before 1"
echo "before 2"
i=0
while [ ! -e "$BERTH_WORK_DIR/release" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
for i in 1 2 3 4 5; do echo "after $i"; done
"#;

const LINES: [&str; 7] = [
    "before 1", "before 2", "after 1", "after 2", "after 3", "after 4", "after 5",
];

fn held_manifest(app: &str, host: &str) -> String {
    format!(
        "app = \"{app}\"\n[target]\nhosts = [\"{host}\"]\n[setup]\nrun = [\"./setup.sh\"]\ntimeout = \"5m\"\n"
    )
}

/// The deployment id in `deployment ID created: ...`.
fn created_id(stdout: &berth_tests::Lines) -> String {
    let line = stdout
        .wait_for("created:", DEADLINE)
        .expect("the deploy says what it created");
    line.split_whitespace().nth(1).expect("id").to_string()
}

/// How many lines of `output` show script line `text` from `host`.
fn shown(output: &[String], host: &str, text: &str) -> usize {
    output
        .iter()
        .filter(|line| line.contains(host) && line.ends_with(&format!("| {text}")))
        .count()
}

#[test]
fn deploy_shows_the_setup_output_by_host_unless_quiet() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "web1", "role=web");
    let manifest = "app = \"chatty\"\n[target]\nhosts = [\"web1\"]\n[setup]\nrun = [\"echo MARKER-42\", \"echo WARNED-42 >&2\"]\n";
    let bundle = write_bundle(controller.dir.path(), "chatty", manifest, &[]);
    let path = bundle.to_str().expect("path");

    let shown_live = controller.berth(&["deploy", "--bundle", path]).ok();
    let lines: Vec<&str> = shown_live.lines().collect();
    assert!(
        lines
            .iter()
            .any(|line| line.contains("web1") && line.ends_with("| MARKER-42")),
        "{shown_live}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line.contains("web1") && line.ends_with("! WARNED-42")),
        "{shown_live}"
    );
    // With -o json the live view goes to stderr and stdout stays JSON.
    let json = controller.berth(&["deploy", "--bundle", path, "-o", "json"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    assert!(json.stderr.contains("| MARKER-42"), "{}", json.stderr);
    let deployment: serde_json::Value =
        serde_json::from_str(&json.stdout).expect("stdout is the deployment as JSON");
    assert_eq!(deployment["status"], "deployed");

    let quiet = controller.berth(&["deploy", "--bundle", path, "--quiet"]);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    // berth's own lines (`# $ echo MARKER-42`) stay; the output goes.
    assert!(
        !quiet.stdout.contains("| MARKER-42") && !quiet.stdout.contains("! WARNED-42"),
        "{}",
        quiet.stdout
    );
    assert!(quiet.stdout.contains("deployed"), "{}", quiet.stdout);
}

#[test]
fn deploy_survives_a_controller_restart_and_prints_each_line_once() {
    let mut controller = Controller::start();
    let agent = Agent::join(&controller, "steady", "role=web");
    let bundle = write_bundle(
        controller.dir.path(),
        "held",
        &held_manifest("held", "steady"),
        &[("setup.sh", SETUP)],
    );
    let mut deploy =
        controller.berth_spawn(&["deploy", "--bundle", bundle.to_str().expect("path")]);
    let id = created_id(&deploy.stdout);
    assert!(
        deploy.stdout.wait_for("| before 2", DEADLINE).is_some(),
        "the script did not start"
    );

    controller.kill9();
    assert!(
        deploy
            .stderr
            .wait_for("lost the controller, reconnecting", DEADLINE)
            .is_some(),
        "the view did not say it lost the controller:\n{:?}",
        deploy.stderr.all()
    );
    // The script goes on while the controller is gone.
    std::fs::write(agent.dir.join("work").join(&id).join("release"), b"").expect("release");
    controller.restart();

    let code = deploy.wait_exit(DEADLINE);
    let output = deploy.stdout.all();
    assert_eq!(
        code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}\ncontroller:\n{}",
        output.join("\n"),
        deploy.stderr.all().join("\n"),
        controller.log()
    );
    for text in LINES {
        assert_eq!(
            shown(&output, "steady", text),
            1,
            "`{text}` once:\n{}",
            output.join("\n")
        );
    }
    assert!(
        deploy
            .stderr
            .all()
            .iter()
            .any(|line| line.contains("reconnected")),
        "{:?}",
        deploy.stderr.all()
    );
    let transitions: Vec<&String> = output
        .iter()
        .filter(|line| line.contains("→ deployed"))
        .collect();
    assert_eq!(transitions.len(), 1, "{}", output.join("\n"));
}

#[test]
fn ctrl_c_leaves_the_deployment_running_and_watch_goes_back_to_it() {
    let controller = Controller::start();
    let agent = Agent::join(&controller, "patient", "role=web");
    let bundle = write_bundle(
        controller.dir.path(),
        "held",
        &held_manifest("waiting", "patient"),
        &[("setup.sh", SETUP)],
    );
    let mut deploy =
        controller.berth_spawn(&["deploy", "--bundle", bundle.to_str().expect("path")]);
    let id = created_id(&deploy.stdout);
    assert!(deploy.stdout.wait_for("| before 2", DEADLINE).is_some());
    deploy.interrupt();
    assert_eq!(deploy.wait_exit(DEADLINE), Some(130));
    let said = deploy.stderr.all().join("\n");
    assert!(
        said.contains(&format!("deployment {id} goes on"))
            && said.contains(&format!("berth watch {id}"))
            && said.contains(&format!("berth logs {id} -f")),
        "{said}"
    );

    let mut watch = controller.berth_spawn(&["watch", &id]);
    assert!(
        watch.stdout.wait_for("| before 2", DEADLINE).is_some(),
        "watch shows the story so far"
    );
    std::fs::write(agent.dir.join("work").join(&id).join("release"), b"").expect("release");
    assert_eq!(
        watch.wait_exit(DEADLINE),
        Some(0),
        "{:?}",
        watch.stderr.all()
    );
    let output = watch.stdout.all();
    for text in LINES {
        assert_eq!(shown(&output, "patient", text), 1, "{}", output.join("\n"));
    }
    assert!(
        output
            .iter()
            .any(|line| line.contains(&format!("deployment {id} is deployed"))),
        "{}",
        output.join("\n")
    );
    // By app name too, once it is over: it ends at once, deployed.
    let again = controller.berth(&["watch", "waiting", "--quiet"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(!again.stdout.contains("| before 1"), "{}", again.stdout);
}
