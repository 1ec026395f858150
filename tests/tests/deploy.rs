//! Deploying a bundle to two real agents and reading its logs, stored and
//! live.

use berth_tests::{Agent, Controller, DEADLINE, id_of, write_bundle};

const MANIFEST: &str = r#"
app = "echo"
[target]
labels = { role = "web" }
[setup]
run = ["./setup.sh"]
timeout = "1m"
"#;

const SETUP: &str = r#"#!/bin/sh
set -eu
echo "host=$BERTH_HOST marker=$(cat marker.txt)"
echo "first line from $BERTH_HOST"
# Wait until the test has seen the first line live, then finish.
i=0
while [ ! -e "$BERTH_WORK_DIR/release" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
echo "last line from $BERTH_HOST"
"#;

#[test]
fn two_agents_deploy_and_logs_follow_live() {
    let controller = Controller::start();
    let a1 = Agent::join(&controller, "web-1", "role=web");
    let a2 = Agent::join(&controller, "web-2", "role=web");
    let bundle = write_bundle(
        controller.dir.path(),
        "bundle",
        MANIFEST,
        &[("setup.sh", SETUP), ("marker.txt", "m-42")],
    );
    let bundle = bundle.to_str().expect("path");

    let created = controller
        .berth(&["deploy", "--bundle", bundle, "--detach", "-o", "json"])
        .json();
    let id = id_of(&created);
    assert_eq!(created["status"], "pending");
    let mut follow = controller.berth_spawn(&["logs", &id, "-f"]);

    // Both hosts' first lines arrive while the deployment still runs.
    for host in ["web-1", "web-2"] {
        let seen = follow
            .stdout
            .wait_for(&format!("first line from {host}"), DEADLINE);
        assert!(
            seen.is_some(),
            "live follower missed {host}'s first line: {:?}",
            follow.stdout.all()
        );
    }
    let during = controller.show(&id);
    assert_eq!(
        during["status"], "setup_running",
        "lines must arrive live, before the end"
    );

    // Let the scripts finish; the follower ends with the deployment.
    for agent in [&a1, &a2] {
        let work = agent.dir.join("work").join(&id);
        std::fs::write(work.join("release"), b"").expect("release the script");
    }
    assert!(
        follow.wait_exit(DEADLINE).is_some(),
        "logs -f did not exit when the deployment ended"
    );
    for host in ["web-1", "web-2"] {
        assert!(
            follow
                .stdout
                .all()
                .iter()
                .any(|line| line.contains(&format!("last line from {host}")))
        );
    }

    let done = controller.wait_quiet(&id);
    assert_eq!(done["status"], "deployed", "{done:#}");
    for task in done["tasks"].as_array().expect("tasks") {
        assert_eq!(task["status"], "done");
        assert_eq!(task["stages"][0]["stage"], "setup");
        assert_eq!(task["stages"][0]["exit_code"], 0);
    }
    for host in ["web-1", "web-2"] {
        let lines = controller.stdout_lines(&id, Some(host));
        assert_eq!(
            lines,
            [
                format!("host={host} marker=m-42"),
                format!("first line from {host}"),
                format!("last line from {host}")
            ],
            "each host's lines, in order, exactly once"
        );
    }
    let status = controller.berth(&["status", "-o", "json"]).json();
    assert_eq!(status[0]["app"], "echo");
    assert_eq!(status[0]["status"], "deployed");

    let listed = controller
        .berth(&["ls", "--app", "echo", "--status", "deployed", "-o", "json"])
        .json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    let none = controller
        .berth(&["ls", "--status", "failed", "-o", "json"])
        .json();
    assert_eq!(none.as_array().map(Vec::len), Some(0));
}

#[test]
fn failing_script_fails_the_deployment_with_step_and_message() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "solo", "role=web");
    let manifest = "app = \"broken\"\n[target]\nhosts = [\"solo\"]\n[setup]\nrun = [\"echo about to fail\", \"exit 7\", \"echo never\"]\n";
    let bundle = write_bundle(controller.dir.path(), "broken", manifest, &[]);
    let result = controller.berth(&[
        "deploy",
        "--bundle",
        bundle.to_str().expect("path"),
        "-o",
        "json",
    ]);
    assert_eq!(
        result.code, 1,
        "a failed deployment exits 1: {}",
        result.stderr
    );
    let deployment: serde_json::Value = serde_json::from_str(&result.stdout).expect("json");
    assert_eq!(deployment["status"], "failed");
    assert_eq!(deployment["error_step"], "setup");
    let message = deployment["error_message"].as_str().expect("message");
    assert!(
        message.contains("solo") && message.contains("exit 7") && message.contains("code 7"),
        "{message}"
    );
    assert_eq!(deployment["tasks"][0]["stages"][0]["exit_code"], 7);
    let logs = controller.berth(&["logs", &id_of(&deployment)]).ok();
    assert!(
        logs.contains("about to fail") && !logs.contains("never"),
        "{logs}"
    );
}

#[test]
fn timeout_kills_the_script_and_marks_timed_out() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "slow", "role=web");
    let manifest = "app = \"slow\"\n[target]\nhosts = [\"slow\"]\n[setup]\nrun = [\"echo started; sleep 120\"]\ntimeout = \"1s\"\n";
    let bundle = write_bundle(controller.dir.path(), "slow", manifest, &[]);
    let result = controller.berth(&[
        "deploy",
        "--bundle",
        bundle.to_str().expect("path"),
        "-o",
        "json",
    ]);
    assert_eq!(result.code, 1);
    let deployment: serde_json::Value = serde_json::from_str(&result.stdout).expect("json");
    assert_eq!(deployment["status"], "timed_out", "{deployment:#}");
    assert_eq!(deployment["error_step"], "setup");
    assert!(
        deployment["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("timed out after 1s"))
    );
}

#[test]
fn stop_runs_the_stop_commands_and_a_concurrent_deploy_is_refused() {
    let controller = Controller::start();
    let agent = Agent::join(&controller, "box", "role=web");
    let manifest = "app = \"svc\"\nenvironment = \"prod\"\n[target]\nhosts = [\"box\"]\n[setup]\nrun = [\"i=0; while [ ! -e \\\"$BERTH_WORK_DIR/go\\\" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\"]\n[stop]\nrun = [\"echo stopped $BERTH_APP > $BERTH_WORK_DIR/stopped\"]\n";
    let bundle = write_bundle(controller.dir.path(), "svc", manifest, &[]);
    let path = bundle.to_str().expect("path");
    let first = id_of(
        &controller
            .berth(&["deploy", "--bundle", path, "--detach", "-o", "json"])
            .json(),
    );
    let second = controller.berth(&["deploy", "--bundle", path, "--detach"]);
    assert_eq!(
        second.code, 5,
        "a second running deploy is a conflict: {}",
        second.stderr
    );
    assert!(
        second.stderr.contains(&first),
        "names the running deployment: {}",
        second.stderr
    );

    let work = agent.dir.join("work").join(&first);
    let follow = controller.berth_spawn(&["logs", &first, "-f"]);
    assert!(follow.stdout.wait_for("$ i=0", DEADLINE).is_some());
    std::fs::write(work.join("go"), b"").expect("go");
    assert_eq!(controller.wait_quiet(&first)["status"], "deployed");

    let stopped = controller
        .berth(&["stop", "svc", "--env", "prod", "-o", "json"])
        .json();
    assert_eq!(stopped["status"], "stopped", "{stopped:#}");
    let marker = std::fs::read_to_string(work.join("stopped")).expect("stop command ran");
    assert_eq!(marker.trim(), "stopped svc");
    let again = controller.berth(&["stop", "svc", "--env", "prod"]);
    assert_eq!(again.code, 4, "nothing deployed any more: {}", again.stderr);
}

#[test]
fn a_flood_of_output_arrives_complete_and_in_order() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "loud", "role=web");
    // One 5 MB line without a newline inside, then 100,000 short lines.
    let script = "#!/bin/sh\nhead -c 5000000 /dev/zero | tr '\\0' x; echo\nseq 1 100000\n";
    let manifest = "app = \"loud\"\n[target]\nhosts = [\"loud\"]\n[setup]\nrun = [\"./flood.sh\"]\ntimeout = \"5m\"\n";
    let bundle = write_bundle(
        controller.dir.path(),
        "loud",
        manifest,
        &[("flood.sh", script)],
    );
    let created = controller.deploy_detached(&bundle, &[]);
    assert_eq!(created.code, 0, "{}", created.stderr);
    let id = id_of(&serde_json::from_str(&created.stdout).expect("json"));
    // A live follower: the flood is taken in at the pace it shows it.
    let mut follow = controller.berth_spawn(&["logs", &id, "-f", "-o", "json"]);
    assert!(
        follow.wait_exit(DEADLINE).is_some(),
        "logs -f did not exit when the deployment ended"
    );
    assert_eq!(controller.show(&id)["status"], "deployed");
    let followed: Vec<String> = follow
        .stdout
        .all()
        .iter()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("a JSON log line"))
        .filter(|entry| entry["stream"] == "stdout")
        .map(|entry| entry["line"].as_str().expect("line").to_string())
        .collect();
    let stored = controller.stdout_lines(&id, None);
    for (lines, seen_by) in [(&stored, "berth logs"), (&followed, "berth logs -f")] {
        let (long, numbers): (Vec<&String>, Vec<&String>) =
            lines.iter().partition(|line| line.starts_with('x'));
        assert_eq!(
            long.iter().map(|line| line.len()).sum::<usize>(),
            5_000_000,
            "{seen_by}: the long line arrives whole, split in pieces"
        );
        assert!(long.iter().all(|line| line.len() <= 16 * 1024));
        let expected: Vec<String> = (1..=100_000).map(|n| n.to_string()).collect();
        let numbers: Vec<String> = numbers.into_iter().cloned().collect();
        assert_eq!(
            numbers.len(),
            expected.len(),
            "{seen_by}: every line exactly once"
        );
        assert!(numbers == expected, "{seen_by}: in order");
    }
}
