//! Label targeting across a fleet: labels changed with `berth agents label`,
//! the automatic `os`, `arch` and `hostname` labels from host facts, the
//! same matcher behind `[target]` and `--selector`, and deploys whose
//! matching agents are offline (refused by name, or waited for with
//! `--wait-for-agents`).

use berth_shared::labels::sanitize_label_value;
use berth_tests::{Agent, Controller, DEADLINE, eventually, write_bundle};

/// A manifest that runs one command on the agents matching `labels` (TOML
/// inline-table contents).
fn manifest(app: &str, labels: &str) -> String {
    format!(
        "app = \"{app}\"\n[target]\nlabels = {{ {labels} }}\n[setup]\nrun = [\"echo on $BERTH_HOST\"]\n"
    )
}

/// The hosts of a deployment's tasks, sorted.
fn hosts_of(deployment: &serde_json::Value) -> Vec<String> {
    let mut hosts: Vec<String> = deployment["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|task| task["host"].as_str().expect("host").to_string())
        .collect();
    hosts.sort();
    hosts
}

/// The `host` of every entry of a `berth inspect -o json` answer, sorted.
fn inspected_hosts(inspect: &serde_json::Value) -> Vec<String> {
    let mut hosts: Vec<String> = inspect
        .as_array()
        .expect("hosts")
        .iter()
        .map(|host| host["host"].as_str().expect("host").to_string())
        .collect();
    hosts.sort();
    hosts
}

/// One agent as `berth agents show -o json` prints it.
fn agent_json(controller: &Controller, name: &str) -> serde_json::Value {
    controller
        .berth(&["agents", "show", name, "-o", "json"])
        .json()
}

/// Waits until the controller counts `name` as offline. Polled, because
/// nothing announces that the controller saw a killed agent's stream end.
fn wait_offline(controller: &Controller, name: &str) {
    eventually(
        &format!("the controller seeing {name} offline"),
        200,
        std::time::Duration::from_millis(100),
        || (agent_json(controller, name)["online"] == false).then_some(()),
    );
}

#[test]
fn agents_label_changes_where_a_deploy_goes() {
    let controller = Controller::start();
    let _one = Agent::join(&controller, "lab-1", "role=web");
    let _two = Agent::join(&controller, "lab-2", "role=web");

    let labeled = controller.berth(&["agents", "label", "lab-1", "canary=yes", "tier=1"]);
    assert_eq!(labeled.code, 0, "{labeled:?}");
    assert!(
        labeled.stdout.contains("canary=yes,role=web,tier=1"),
        "prints the labels after the change: {}",
        labeled.stdout
    );
    assert!(labeled.stdout.contains("auto: "), "{}", labeled.stdout);

    let bundle = write_bundle(
        controller.dir.path(),
        "canary",
        &manifest("canary", "canary = \"yes\", role = \"web\""),
        &[],
    );
    let (code, deployment, stderr) = controller.deploy(&bundle);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(hosts_of(&deployment), ["lab-1"], "only the labeled agent");

    let removed = controller.berth(&[
        "agents", "label", "lab-1", "--remove", "canary", "-o", "json",
    ]);
    let agent = removed.json();
    assert!(agent["labels"].get("canary").is_none(), "{agent}");
    assert_eq!(agent["labels"]["tier"], "1", "{agent}");
    let (code, _, stderr) = controller.deploy(&bundle);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no agent matches"), "{stderr}");

    for args in [
        &["agents", "label", "lab-1", "os=plan9"][..],
        &["agents", "label", "lab-1", "--remove", "hostname"][..],
    ] {
        let refused = controller.berth(args);
        assert_eq!(refused.code, 2, "{refused:?}");
        assert!(
            refused.stderr.contains("automatic") && refused.stderr.contains("cannot be set"),
            "names the automatic label: {}",
            refused.stderr
        );
    }
    let bad = controller.berth(&["agents", "label", "lab-1", "zone=eu west"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("zone=eu west"), "{}", bad.stderr);
    let unknown = controller.berth(&["agents", "label", "nobody", "a=b"]);
    assert_eq!(unknown.code, 4, "{unknown:?}");

    let audit = controller.berth(&["audit", "-o", "json"]).ok();
    assert!(
        audit.contains("agent.label") && audit.contains("lab-1 canary=yes tier=1"),
        "{audit}"
    );
}

#[test]
fn automatic_labels_select_agents_in_deploys_and_inspect() {
    let mut controller = Controller::start();
    let mut one = Agent::join(&controller, "auto-1", "role=edge");
    let mut two = Agent::join(&controller, "auto-2", "");
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let hostname = sanitize_label_value(&hostname).expect("a hostname");

    let shown = agent_json(&controller, "auto-1");
    let arch =
        sanitize_label_value(shown["facts"]["arch"].as_str().expect("arch fact")).expect("an arch");
    assert_eq!(shown["auto_labels"]["os"], "linux", "{shown}");
    assert_eq!(shown["auto_labels"]["arch"], arch.as_str(), "{shown}");
    assert_eq!(
        shown["auto_labels"]["hostname"],
        hostname.as_str(),
        "{shown}"
    );
    assert!(shown["labels"].get("os").is_none(), "kept apart: {shown}");

    let everywhere = write_bundle(
        controller.dir.path(),
        "everywhere",
        &manifest(
            "everywhere",
            &format!("os = \"linux\", hostname = \"{hostname}\""),
        ),
        &[],
    );
    let (code, deployment, stderr) = controller.deploy(&everywhere);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(hosts_of(&deployment), ["auto-1", "auto-2"]);

    let edge = write_bundle(
        controller.dir.path(),
        "edge",
        &manifest("edge", &format!("arch = \"{arch}\", role = \"edge\"")),
        &[],
    );
    let (code, deployment, stderr) = controller.deploy(&edge);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        hosts_of(&deployment),
        ["auto-1"],
        "own and automatic labels together"
    );

    let selector = format!("arch={arch}");
    let inspect = controller
        .berth(&["inspect", "--selector", &selector, "-o", "json"])
        .json();
    assert_eq!(inspected_hosts(&inspect), ["auto-1", "auto-2"], "{inspect}");
    let inspect = controller
        .berth(&["inspect", "--selector", "os=linux,role=edge", "-o", "json"])
        .json();
    assert_eq!(inspected_hosts(&inspect), ["auto-1"], "{inspect}");
    let bad = controller.berth(&["inspect", "--selector", "arch"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("--selector"), "{}", bad.stderr);

    let listed = controller.berth(&["agents", "ls"]).ok();
    assert!(
        listed.contains("role=edge auto: ") && listed.contains("os=linux"),
        "ls shows own and automatic labels: {listed}"
    );

    // Stored: after a restart, before any agent is back, the automatic
    // labels still select them (reported offline).
    one.kill9();
    two.kill9();
    controller.restart();
    let selector = format!("hostname={hostname}");
    let inspect = controller
        .berth(&["inspect", "--selector", &selector, "-o", "json"])
        .json();
    assert_eq!(inspected_hosts(&inspect), ["auto-1", "auto-2"], "{inspect}");
    assert!(
        inspect
            .as_array()
            .expect("hosts")
            .iter()
            .all(|host| host["online"] == false),
        "{inspect}"
    );
}

#[test]
fn offline_targets_are_named_and_can_be_waited_for() {
    let controller = Controller::start();
    let mut late = Agent::join(&controller, "late-1", "role=late");
    let mut gone = Agent::join(&controller, "gone-1", "role=late");
    gone.kill9();
    wait_offline(&controller, "gone-1");
    controller.berth(&["agents", "revoke", "gone-1"]).ok();
    late.kill9();
    wait_offline(&controller, "late-1");

    let bundle = write_bundle(
        controller.dir.path(),
        "late",
        &manifest("late", "role = \"late\""),
        &[],
    );
    let path = bundle.to_str().expect("path");
    let (code, _, stderr) = controller.deploy(&bundle);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("offline: late-1;") && stderr.contains("--wait-for-agents"),
        "names the agent and the flag: {stderr}"
    );
    assert!(
        !stderr.contains("gone-1"),
        "revoked agents never match: {stderr}"
    );

    let short = controller.berth(&["deploy", "--bundle", path, "--wait-for-agents", "1s"]);
    assert_eq!(short.code, 1, "{short:?}");
    assert!(
        short
            .stdout
            .contains("waiting up to 1s for offline agents matching the target: late-1"),
        "{short:?}"
    );
    assert!(
        short
            .stderr
            .contains("still offline after waiting 1s: late-1"),
        "{}",
        short.stderr
    );
    let too_long = controller.berth(&["deploy", "--bundle", path, "--wait-for-agents", "2h"]);
    assert_eq!(too_long.code, 2, "{too_long:?}");

    let mut deploy =
        controller.berth_spawn(&["deploy", "--bundle", path, "--wait-for-agents", "30s"]);
    assert!(
        deploy
            .stdout
            .wait_for(
                "waiting up to 30s for offline agents matching the target: late-1",
                DEADLINE
            )
            .is_some(),
        "says whom it waits for:\n{}",
        deploy.log_tail()
    );
    late.spawn();
    assert_eq!(
        deploy.wait_exit(DEADLINE),
        Some(0),
        "deployed once the agent is back:\n{}",
        deploy.log_tail()
    );
    assert!(
        deploy
            .stdout
            .all()
            .iter()
            .any(|line| line.contains("on late-1")),
        "{:?}",
        deploy.stdout.all()
    );
    assert!(
        controller.log().contains("target agents are online"),
        "the controller waited for the agent rather than being asked again:\n{}",
        controller.log()
    );
}
