//! `berth-controller dev`: a throwaway controller with one local agent,
//! used the way the README tells a new user to.

use std::process::Command;

use berth_tests::{DEADLINE, Running, bin};

#[test]
fn dev_mode_deploys_the_example_bundle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(bin("berth-controller"));
    command
        .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("dev"));
    let mut dev = Running::spawn(command, &dir.path().join("dev.log"));
    let bundle_line = dev
        .stdout
        .wait_for("credential bundle:", DEADLINE)
        .unwrap_or_else(|| panic!("dev did not start:\n{}", dev.log_tail()));
    let bundle = bundle_line
        .trim_start_matches("credential bundle:")
        .trim()
        .to_string();
    dev.expect_connected("the dev agent");

    let berth = |args: &[&str]| {
        Command::new(bin("berth"))
            .args(args)
            .env("BERTH_CONFIG", &bundle)
            .env_remove("BERTH_CONTROLLER")
            .output()
            .expect("berth")
    };
    let agents = berth(&["agents", "ls", "-o", "json"]);
    let agents: serde_json::Value = serde_json::from_slice(&agents.stdout).expect("json");
    assert_eq!(agents[0]["name"], "local");
    assert_eq!(agents[0]["online"], true);

    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/hello");
    let deployed = berth(&["deploy", "--bundle", example, "-o", "json"]);
    assert!(
        deployed.status.success(),
        "{}",
        String::from_utf8_lossy(&deployed.stderr)
    );
    let deployment: serde_json::Value = serde_json::from_slice(&deployed.stdout).expect("json");
    assert_eq!(deployment["status"], "deployed");
    let logs = berth(&["logs", deployment["id"].as_str().expect("id")]);
    let logs = String::from_utf8_lossy(&logs.stdout);
    assert!(
        logs.contains("hello from local") && logs.contains("a message shipped in the bundle"),
        "{logs}"
    );

    // Ctrl-C stops the controller and the agent it started.
    dev.terminate();
    assert_eq!(dev.wait_exit(DEADLINE), Some(0), "{}", dev.log_tail());
    let leftover =
        berth_tests::processes_running(&bin("berth-agent"), &dir.path().join("dev/agent"));
    assert!(
        leftover.is_empty(),
        "the dev agent outlived dev: {leftover:?}"
    );
}
