//! A host lost in the middle of a rolling deploy, in network namespaces:
//! the rollout fails, the host that already switched goes back to the
//! previous version (`on_failure = "rollback"`), and the lost host, which
//! finished the new version while nobody could hear it, is put back too
//! when its cable is plugged in again. `berth status` tells each host's
//! truth throughout.

use std::path::Path;
use std::time::Duration;

use berth_tests::netns::Fleet;
use berth_tests::{Agent, Controller, eventually, id_of, write_bundle};

const PAUSE: Duration = Duration::from_millis(200);

/// Version 1 runs everywhere. In version 2 the first host succeeds; the
/// second one says it is blocked, then waits for `release`.
fn manifest(version: &str, dir: &Path) -> String {
    let dir = dir.display();
    format!(
        r#"app = "lost"
version = "{version}"
[target]
labels = {{ role = "web" }}
max_parallel = 1
[setup]
run = [
  "echo setup {version} on $BERTH_HOST >> {dir}/events",
  "if [ {version} = 2 ] && [ -e {dir}/first-done ]; then touch {dir}/blocked; while [ ! -e {dir}/release ] && [ -d {dir} ]; do sleep 0.1; done; fi",
  "if [ {version} = 2 ]; then touch {dir}/first-done; fi",
  "echo done {version} on $BERTH_HOST >> {dir}/events",
]
timeout = "5m"
"#
    )
}

fn events(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("events"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `(host, version, state)` of each host of app `lost` in `berth status`.
fn hosts(controller: &Controller) -> Vec<(String, String, String)> {
    let status = controller.berth(&["status", "-o", "json"]).json();
    status
        .as_array()
        .and_then(|rows| rows.iter().find(|row| row["app"] == "lost"))
        .and_then(|row| row["host_states"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|host| {
            let text = |key: &str| host[key].as_str().unwrap_or_default().to_string();
            (text("host"), text("version"), text("state"))
        })
        .collect()
}

#[test]
fn a_host_lost_mid_rollout_is_rolled_back_with_the_others() {
    let Some(fleet) = Fleet::start(
        "a_host_lost_mid_rollout_is_rolled_back_with_the_others",
        &["controller", "web-1", "web-2"],
    ) else {
        return;
    };
    let controller = Controller::start_in(
        fleet.netns("controller"),
        fleet.ip("controller"),
        &["--lost-grace", "2s"],
    );
    let _agents: Vec<Agent> = ["web-1", "web-2"]
        .iter()
        .map(|host| Agent::join_in(&controller, fleet.netns(host), host, "role=web", &[]))
        .collect();
    let dir = controller.dir.path().join("lost");
    std::fs::create_dir_all(&dir).expect("dir");
    let v1 = write_bundle(controller.dir.path(), "lost-1", &manifest("1", &dir), &[]);
    let (code, _, stderr) = controller.deploy(&v1);
    assert_eq!(code, 0, "{stderr}");

    let v2 = write_bundle(controller.dir.path(), "lost-2", &manifest("2", &dir), &[]);
    let created = controller.deploy_detached(&v2, &[]).json();
    let id = id_of(&created);
    eventually("the second host to block", 300, PAUSE, || {
        dir.join("blocked").exists().then_some(())
    });
    let switched = events(&dir)
        .iter()
        .find_map(|line| line.strip_prefix("done 2 on ").map(str::to_string))
        .expect("the first host finished version 2");
    let lost = if switched == "web-1" {
        "web-2"
    } else {
        "web-1"
    };
    fleet.cut(lost);

    // The lost host's task ends `lost`; the rollout fails and the host
    // that switched runs version 1 again.
    let failed = controller.wait_quiet(&id);
    assert_eq!(failed["status"], "failed", "{failed:#}");
    let restored = eventually("the switched host back on version 1", 300, PAUSE, || {
        let rows = hosts(&controller);
        rows.iter()
            .any(|(host, version, state)| {
                host == &switched && version == "1" && state == "deployed"
            })
            .then_some(rows)
    });
    assert!(
        restored
            .iter()
            .any(|(host, _, state)| host == lost && state.starts_with("offline")),
        "the lost host is shown offline: {restored:?}"
    );

    // The lost host finishes version 2 while nobody hears it, then comes
    // back: it is put back on version 1 as well.
    std::fs::write(dir.join("release"), "").expect("release");
    eventually("the lost host to finish version 2", 300, PAUSE, || {
        events(&dir)
            .contains(&format!("done 2 on {lost}"))
            .then_some(())
    });
    fleet.restore(lost);
    let rows = eventually("every host on version 1", 600, PAUSE, || {
        let rows = hosts(&controller);
        (rows.len() == 2
            && rows
                .iter()
                .all(|(_, version, state)| version == "1" && state == "deployed"))
        .then_some(rows)
    });
    assert_eq!(rows.len(), 2, "{rows:?}");
    let last = events(&dir);
    assert_eq!(
        last.last().map(String::as_str),
        Some(format!("done 1 on {lost}").as_str()),
        "the lost host ran version 1's setup again: {last:?}"
    );
    let shown = controller.show(&id);
    let transitions = shown["transitions"].as_array().expect("transitions");
    assert!(
        transitions
            .iter()
            .any(|t| t["subject"] == lost && t["to"] == "stray"),
        "{shown:#}"
    );
    let status = controller.berth(&["status", "-o", "json"]).json();
    assert_eq!(status[0]["version"], "1", "{status:#}");
}
