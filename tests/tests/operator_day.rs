//! The paths an operator takes after the first deploy, through the real
//! binaries: stop and delete after a redeploy run once per host, and a
//! stopped app starts again (`berth start`, or `berth redeploy` of the
//! stopped deployment). The container paths are in `docker_repair.rs`.

use std::path::Path;

use berth_tests::{Agent, Controller, id_of, write_bundle};

/// A script app on h1 whose setup appends `setup` and whose `[stop]`
/// appends `stop` to `dir/events`.
fn manifest(app: &str, version: &str, dir: &Path) -> String {
    let dir = dir.display();
    format!(
        r#"app = "{app}"
version = "{version}"
[target]
hosts = ["h1"]
[setup]
run = ["echo setup {version} >> {dir}/events", "echo deploy-line {version}"]
[stop]
run = ["echo stop >> {dir}/events", "echo stop-line"]
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

fn tasks_of_kind(deployment: &serde_json::Value, kind: &str) -> usize {
    deployment["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter(|task| task["kind"] == kind)
        .count()
}

#[test]
fn stop_delete_and_start_after_a_redeploy_run_once_per_host() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "h1", "role=web");
    let dir = controller.dir.path().join("once");
    std::fs::create_dir_all(&dir).expect("dir");
    let bundle = write_bundle(
        controller.dir.path(),
        "once",
        &manifest("once", "1", &dir),
        &[],
    );
    let (code, first, stderr) = controller.deploy(&bundle);
    assert_eq!(code, 0, "{stderr}");
    let id = id_of(&first);
    let again = controller.berth(&["redeploy", &id, "-o", "json"]).json();
    assert_eq!(again["status"], "deployed", "{again:#}");
    assert_eq!(events(&dir), ["setup 1", "setup 1"]);

    let stop = controller.berth(&["stop", "once", "--env", "default", "-o", "json"]);
    assert!(
        stop.stderr.contains("| stop-line") && !stop.stderr.contains("deploy-line"),
        "the stop's live view shows the stop's output, not the old deploy lines:\n{}",
        stop.stderr
    );
    let stopped = stop.json();
    assert_eq!(stopped["status"], "stopped", "{stopped:#}");
    assert_eq!(
        events(&dir),
        ["setup 1", "setup 1", "stop"],
        "[stop] ran once on the one host, not once per deploy round"
    );
    assert_eq!(tasks_of_kind(&stopped, "stop"), 1, "{stopped:#}");

    // A stopped app is refused by retry, with the way to start it named.
    let retried = controller.berth(&["retry", &id]);
    assert_eq!(retried.code, 5, "{}", retried.stderr);
    assert!(
        retried.stderr.contains("berth start"),
        "the refusal names `berth start`: {}",
        retried.stderr
    );
    // `berth start` runs the stopped deployment again on its host.
    let started = controller
        .berth(&["start", "once", "--env", "default", "-o", "json"])
        .json();
    assert_eq!(started["status"], "deployed", "{started:#}");
    assert_eq!(
        id_of(&started),
        id,
        "the stopped deployment itself runs again"
    );
    assert_eq!(events(&dir), ["setup 1", "setup 1", "stop", "setup 1"]);
    let twice = controller.berth(&["start", "once", "--env", "default"]);
    assert_eq!(twice.code, 5, "a running app is not started twice");
    assert!(twice.stderr.contains("runs already"), "{}", twice.stderr);
    let status = controller.berth(&["status", "-o", "json"]).json();
    assert_eq!(status[0]["status"], "deployed", "{status:#}");

    // Stop it again, then `berth redeploy` accepts the stopped deployment too.
    let stopped = controller
        .berth(&["stop", "once", "--env", "default", "-o", "json"])
        .json();
    assert_eq!(stopped["status"], "stopped", "{stopped:#}");
    let redeployed = controller.berth(&["redeploy", &id, "-o", "json"]).json();
    assert_eq!(redeployed["status"], "deployed", "{redeployed:#}");
    assert_eq!(
        events(&dir),
        ["setup 1", "setup 1", "stop", "setup 1", "stop", "setup 1"]
    );

    // Delete after several rounds: one delete task for the one host.
    let stopped = controller
        .berth(&["stop", "once", "--env", "default", "-o", "json"])
        .json();
    assert_eq!(stopped["status"], "stopped", "{stopped:#}");
    let deleted = controller.berth(&["delete", &id, "-o", "json"]).json();
    assert_eq!(deleted["status"], "deleted", "{deleted:#}");
    assert_eq!(tasks_of_kind(&deleted, "delete"), 1, "{deleted:#}");
    let listed = controller.berth(&["ls", "-o", "json"]).json();
    let hosts: Vec<&str> = listed[0]["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|task| task["host"].as_str())
        .collect();
    assert!(hosts.iter().all(|host| *host == "h1"), "{hosts:?}");
}

/// A rolling script app on every `role=web` host, one host at a time. In
/// version 2 the first host succeeds and the next one fails.
fn rolling(app: &str, version: &str, dir: &Path, on_failure: &str) -> String {
    let dir = dir.display();
    format!(
        r#"app = "{app}"
version = "{version}"
[target]
labels = {{ role = "web" }}
max_parallel = 1
on_failure = "{on_failure}"
[setup]
run = [
  "echo setup {version} on $BERTH_HOST >> {dir}/events",
  "if [ {version} = 2 ]; then if [ -e {dir}/first-done ]; then echo second host fails; exit 1; fi; touch {dir}/first-done; fi",
]
"#
    )
}

/// What `berth status -o json` says each host runs of `app`, once every
/// host has reported (`deployed (its agent has not reported yet)` waits).
fn versions_by_host(controller: &Controller, app: &str) -> Vec<(String, String)> {
    berth_tests::eventually(
        "every host's report",
        300,
        std::time::Duration::from_millis(100),
        || {
            let status = controller.berth(&["status", "-o", "json"]).json();
            let row = status
                .as_array()?
                .iter()
                .find(|row| row["app"] == app)?
                .clone();
            let hosts = row["host_states"].as_array()?.clone();
            let reported = hosts
                .iter()
                .all(|host| host["state"] != "deployed (its agent has not reported yet)");
            reported.then(|| {
                hosts
                    .iter()
                    .map(|host| {
                        (
                            host["host"].as_str().unwrap_or_default().to_string(),
                            host["version"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
        },
    )
}

#[test]
fn a_failed_rollout_rolls_the_switched_hosts_back_or_says_they_differ() {
    let controller = Controller::start();
    let _h1 = Agent::join(&controller, "h1", "role=web");
    let _h2 = Agent::join(&controller, "h2", "role=web");
    for (app, on_failure) in [("roll", "rollback"), ("split", "leave")] {
        let dir = controller.dir.path().join(app);
        std::fs::create_dir_all(&dir).expect("dir");
        let v1 = write_bundle(
            controller.dir.path(),
            &format!("{app}-1"),
            &rolling(app, "1", &dir, on_failure),
            &[],
        );
        let (code, _, stderr) = controller.deploy(&v1);
        assert_eq!(code, 0, "{stderr}");
        let v2 = write_bundle(
            controller.dir.path(),
            &format!("{app}-2"),
            &rolling(app, "2", &dir, on_failure),
            &[],
        );
        let (code, failed, stderr) = controller.deploy(&v2);
        assert_eq!(code, 1, "{stderr}");
        let failed = controller.wait_quiet(&id_of(&failed));
        assert_eq!(failed["status"], "failed", "{failed:#}");
        let first = events(&dir)
            .iter()
            .find(|line| line.starts_with("setup 2 on "))
            .map(|line| line.trim_start_matches("setup 2 on ").to_string())
            .expect("one host ran version 2");
        let versions = versions_by_host(&controller, app);
        let status = controller.berth(&["status", "-o", "json"]).json();
        let row = status
            .as_array()
            .and_then(|rows| rows.iter().find(|row| row["app"] == app))
            .cloned()
            .expect("a status row");
        if on_failure == "rollback" {
            assert_eq!(
                versions,
                [("h1".into(), "1".into()), ("h2".into(), "1".into())],
                "every host runs version 1 again: {failed:#}"
            );
            assert_eq!(row["version"], "1", "{row:#}");
            assert_eq!(
                events(&dir).last().map(String::as_str),
                Some(format!("setup 1 on {first}").as_str()),
                "the switched host ran version 1's setup again"
            );
            let restored = failed["transitions"]
                .as_array()
                .expect("transitions")
                .iter()
                .find(|t| t["to"] == "restored")
                .cloned()
                .unwrap_or_default();
            assert_eq!(restored["subject"], first.as_str(), "{failed:#}");
            assert!(
                restored["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("runs version 1"),
                "{restored:#}"
            );
        } else {
            let second = if first == "h1" { "h2" } else { "h1" };
            let mut expected = vec![
                (first.clone(), "2".to_string()),
                (second.into(), "1".into()),
            ];
            expected.sort();
            assert_eq!(versions, expected, "{failed:#}");
            let version = row["version"].as_str().unwrap_or_default();
            assert!(version.starts_with("mixed: "), "{row:#}");
        }
    }
}
