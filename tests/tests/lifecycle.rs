//! The lifecycle actions on real deployments through the real binaries:
//! cancel, retry, redeploy, rollback, purge, the one-running guard with
//! `--queue`, the per-app trigger limit and the deployment timeout; each
//! with its resulting status, its audit entry and, where it stops work,
//! the host left clean.

use std::path::Path;
use std::time::Duration;

use berth_tests::{Agent, Controller, eventually, id_of, write_bundle};

/// A script-only app whose setup appends to `runs` in `dir`, then waits
/// for `dir/release` (when `wait`), with a child process whose pid it
/// writes to `dir/child.pid`.
fn manifest(app: &str, version: &str, dir: &Path, wait: bool, extra: &str) -> String {
    let dir = dir.display();
    let wait = if wait {
        format!(
            "sleep 300 & child=$!; echo $child > {dir}/child.pid; while [ ! -e {dir}/release ] && [ -d {dir} ]; do sleep 0.05; done; kill $child"
        )
    } else {
        "true".to_string()
    };
    format!(
        r#"app = "{app}"
version = "{version}"
{extra}
[target]
hosts = ["h1"]
[setup]
run = ["echo {version} >> {dir}/runs", "test ! -e {dir}/fail", "{wait}"]
timeout = "5m"
"#
    )
}

fn audit_actions(controller: &Controller, id: &str) -> Vec<(String, String)> {
    let entries = controller
        .berth(&["audit", "--target", id, "-o", "json"])
        .json();
    entries
        .as_array()
        .expect("entries")
        .iter()
        .map(|entry| {
            (
                entry["action"].as_str().unwrap_or_default().to_string(),
                entry["who"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn assert_audited(controller: &Controller, id: &str, action: &str) {
    let actions = audit_actions(controller, id);
    assert!(
        actions
            .iter()
            .any(|(done, who)| done == action && who.contains("admin")),
        "no `{action}` audit entry by the admin for {id}: {actions:?}"
    );
}

fn wait_for_file(path: &Path) -> String {
    eventually(
        &format!("{} to appear", path.display()),
        1200,
        Duration::from_millis(50),
        || {
            std::fs::read_to_string(path)
                .ok()
                .filter(|text| !text.trim().is_empty())
        },
    )
}

fn process_gone(pid: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()));
    // Gone, or a zombie waiting for its reaper: no longer running.
    stat.map_or(true, |stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
    })
}

fn scratch(controller: &Controller, name: &str) -> std::path::PathBuf {
    let dir = controller.dir.path().join(name);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn cancel_kills_the_running_stage_and_is_audited() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "h1", "role=web");
    let dir = scratch(&controller, "cancel");
    let bundle = write_bundle(
        controller.dir.path(),
        "slow",
        &manifest("slow", "1", &dir, true, ""),
        &[],
    );
    let id = id_of(&controller.deploy_detached(&bundle, &[]).json());
    let child = wait_for_file(&dir.join("child.pid"));
    assert!(!process_gone(&child), "the setup's child runs");
    // Fleet-wide inspect shows the running task and the host's resources.
    let hosts = controller.berth(&["inspect", "-o", "json"]).json();
    let host = &hosts[0];
    assert_eq!(host["host"], "h1", "{hosts:#}");
    assert_eq!(
        host["running_tasks"][0]["deployment_id"],
        id.as_str(),
        "{host:#}"
    );
    assert_eq!(host["running_tasks"][0]["status"], "setup", "{host:#}");
    assert!(
        host["facts"]["memory_total_bytes"]
            .as_u64()
            .is_some_and(|bytes| bytes > 0),
        "{host:#}"
    );

    let canceled = controller.berth(&["cancel", &id, "-o", "json"]).json();
    assert_eq!(canceled["status"], "canceled", "{canceled:#}");
    assert_eq!(canceled["tasks"][0]["status"], "canceled", "{canceled:#}");
    assert!(
        canceled["error_message"]
            .as_str()
            .is_some_and(|message| message.contains("canceled by")),
        "{canceled:#}"
    );
    eventually(
        "the setup's child killed",
        100,
        Duration::from_millis(50),
        || process_gone(&child).then_some(()),
    );
    assert_audited(&controller, &id, "cancel");

    // A settled deployment cannot be canceled: exit 5, with the reason.
    let again = controller.berth(&["cancel", &id]);
    assert_eq!(again.code, 5, "{}", again.stderr);
    assert!(
        again.stderr.contains("only a running deployment"),
        "{}",
        again.stderr
    );
}

#[test]
fn retry_redeploy_and_rollback_run_snapshots_again() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "h1", "role=web");
    let dir = scratch(&controller, "rerun");
    let runs = || {
        std::fs::read_to_string(dir.join("runs"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };

    // v1 fails, then its retry succeeds with the same snapshot.
    std::fs::write(dir.join("fail"), "").expect("fail marker");
    let v1 = write_bundle(
        controller.dir.path(),
        "v1",
        &manifest("web", "1", &dir, false, ""),
        &[],
    );
    let (code, failed, _) = controller.deploy(&v1);
    assert_eq!((code, failed["status"].as_str()), (1, Some("failed")));
    std::fs::remove_file(dir.join("fail")).expect("remove marker");
    let failed_id = id_of(&failed);
    let retried = controller
        .berth(&["retry", &failed_id, "-o", "json"])
        .json();
    assert_eq!(retried["status"], "deployed", "{retried:#}");
    assert_eq!(retried["parent_id"], failed_id.as_str());
    assert_eq!(
        (retried["retry_count"].as_u64(), retried["origin"].as_str()),
        (Some(1), Some("retry"))
    );
    assert_eq!(retried["version"], "1");
    assert_audited(&controller, &id_of(&retried), "retry");
    // Retrying a deployed one is refused, naming the right action.
    let refused = controller.berth(&["retry", &id_of(&retried)]);
    assert_eq!(refused.code, 5, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("berth redeploy"),
        "{}",
        refused.stderr
    );

    // v2 supersedes the retried v1.
    let v2 = write_bundle(
        controller.dir.path(),
        "v2",
        &manifest("web", "2", &dir, false, ""),
        &[],
    );
    let (code, second, stderr) = controller.deploy(&v2);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(controller.show(&id_of(&retried))["status"], "superseded");

    // Redeploy runs v2's stages again on its host: deployed → deploying.
    let before = runs().len();
    let redeployed = controller
        .berth(&["redeploy", &id_of(&second), "-o", "json"])
        .json();
    assert_eq!(redeployed["status"], "deployed", "{redeployed:#}");
    assert_eq!(runs().len(), before + 1, "setup ran again: {:?}", runs());
    let moves: Vec<(String, String)> = redeployed["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .filter(|t| t["subject"] == "deployment")
        .map(|t| {
            (
                t["from"].as_str().unwrap_or_default().into(),
                t["to"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    assert!(
        moves.contains(&("deployed".into(), "deploying".into())),
        "{moves:?}"
    );
    assert_audited(&controller, &id_of(&second), "redeploy");

    // Rollback deploys the previous successful version's snapshot.
    let rolled = controller
        .berth(&["rollback", "web", "--env", "default", "-o", "json"])
        .json();
    assert_eq!(rolled["status"], "deployed", "{rolled:#}");
    assert_eq!(rolled["version"], "1");
    assert_eq!(rolled["origin"], "rollback");
    assert_eq!(rolled["parent_id"], id_of(&retried).as_str());
    assert_eq!(runs().last().map(String::as_str), Some("1"));
    assert_eq!(controller.show(&id_of(&second))["status"], "superseded");
    assert_audited(&controller, &id_of(&rolled), "rollback");
    // Rolling back to what runs now is refused with the reason.
    let same = controller.berth(&["rollback", "web", "--to", &id_of(&rolled)]);
    assert_ne!(same.code, 0);
    assert!(same.stderr.contains("runs now"), "{}", same.stderr);
    // An app with one deployment has nothing to roll back to.
    let lone = write_bundle(
        controller.dir.path(),
        "lone",
        &manifest("lone", "1", &dir, false, ""),
        &[],
    );
    assert_eq!(controller.deploy(&lone).0, 0);
    let nothing = controller.berth(&["rollback", "lone"]);
    assert_eq!(nothing.code, 1, "{}", nothing.stderr);
    assert!(
        nothing.stderr.contains("no earlier successful deployment"),
        "{}",
        nothing.stderr
    );
}

#[test]
fn one_running_deployment_per_app_with_queue_and_force() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "h1", "role=web");
    let dir = scratch(&controller, "guard");
    let slow = write_bundle(
        controller.dir.path(),
        "slow",
        &manifest("guarded", "1", &dir, true, ""),
        &[],
    );
    let first = id_of(&controller.deploy_detached(&slow, &[]).json());
    wait_for_file(&dir.join("child.pid"));
    let next = write_bundle(
        controller.dir.path(),
        "next",
        &manifest("guarded", "2", &dir, false, ""),
        &[],
    );
    let refused = controller.deploy_detached(&next, &[]);
    assert_eq!(refused.code, 5, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&first),
        "names the running one: {}",
        refused.stderr
    );

    let queued = controller.deploy_detached(&next, &["--queue"]).json();
    let queued_id = id_of(&queued);
    assert_eq!(queued["queued"], true, "{queued:#}");
    let status = controller.berth(&["status", "-o", "json"]).json();
    let row = status
        .as_array()
        .expect("rows")
        .iter()
        .find(|row| row["app"] == "guarded")
        .cloned()
        .expect("a row for the app");
    assert_eq!(row["in_progress"], first.as_str(), "{row:#}");
    assert_eq!(row["queued"][0], queued_id.as_str(), "{row:#}");

    // The first ends; the queued one runs after it, by itself.
    std::fs::write(dir.join("release"), "").expect("release");
    let done = controller.wait_quiet(&first);
    // It reached deployed; the queued one may already have superseded it.
    assert!(
        done["transitions"]
            .as_array()
            .expect("transitions")
            .iter()
            .any(|t| t["subject"] == "deployment" && t["to"] == "deployed"),
        "{done:#}"
    );
    let after = eventually(
        "the queued deployment to finish",
        400,
        Duration::from_millis(50),
        || {
            let current = controller.show(&queued_id);
            (current["status"] == "deployed").then_some(current)
        },
    );
    assert_eq!(after["queued"], false);
    assert_eq!(controller.show(&first)["status"], "superseded");

    // --force runs beside a running one.
    std::fs::remove_file(dir.join("release")).expect("unrelease");
    std::fs::remove_file(dir.join("child.pid")).expect("pid");
    let third = id_of(&controller.deploy_detached(&slow, &[]).json());
    wait_for_file(&dir.join("child.pid"));
    let forced = controller.deploy_detached(&next, &["--force"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    std::fs::write(dir.join("release"), "").expect("release");
    controller.wait_quiet(&third);
}

#[test]
fn the_trigger_limit_refuses_with_when_to_retry() {
    let controller = Controller::start_with(&["--trigger-limit", "2"]);
    let _agent = Agent::join(&controller, "h1", "role=web");
    let dir = scratch(&controller, "limit");
    let bundle = write_bundle(
        controller.dir.path(),
        "limited",
        &manifest("limited", "1", &dir, false, ""),
        &[],
    );
    for _ in 0..2 {
        assert_eq!(controller.deploy(&bundle).0, 0);
    }
    let third = controller.berth(&["deploy", "--bundle", bundle.to_str().expect("path")]);
    assert_eq!(third.code, 5, "{}", third.stderr);
    assert!(
        third.stderr.contains("limited") && third.stderr.contains("try again in"),
        "{}",
        third.stderr
    );
    // Other apps are not held back by it.
    let other = write_bundle(
        controller.dir.path(),
        "other",
        &manifest("other", "1", &dir, false, ""),
        &[],
    );
    assert_eq!(controller.deploy(&other).0, 0);
}

#[test]
fn a_deployment_past_its_timeout_is_timed_out_and_stopped() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "h1", "role=web");
    let dir = scratch(&controller, "timeout");
    let bundle = write_bundle(
        controller.dir.path(),
        "late",
        &manifest("late", "1", &dir, true, "timeout = \"2s\""),
        &[],
    );
    let (code, deployment, stderr) = controller.deploy(&bundle);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(deployment["status"], "timed_out", "{deployment:#}");
    assert_eq!(deployment["error_step"], "setup", "{deployment:#}");
    assert!(
        deployment["error_message"]
            .as_str()
            .is_some_and(|message| message.contains("timed out after 2s")),
        "{deployment:#}"
    );
    assert_eq!(deployment["tasks"][0]["status"], "canceled");
    let child = wait_for_file(&dir.join("child.pid"));
    eventually(
        "the setup's child killed",
        100,
        Duration::from_millis(50),
        || process_gone(&child).then_some(()),
    );
}

#[test]
fn purge_forgets_the_record_and_logs_but_not_the_host() {
    let controller = Controller::start();
    let agent = Agent::join(&controller, "h1", "role=web");
    let dir = scratch(&controller, "purge");
    let bundle = write_bundle(
        controller.dir.path(),
        "gone",
        &manifest("gone", "1", &dir, false, ""),
        &[],
    );
    let (code, deployment, _) = controller.deploy(&bundle);
    assert_eq!(code, 0);
    let id = id_of(&deployment);
    assert!(!controller.berth(&["logs", &id]).ok().is_empty());
    let purged = controller.berth(&["purge", &id, "-o", "json"]).json();
    assert_eq!(purged["purged"], true);
    assert!(
        purged["log_lines_removed"].as_u64().is_some_and(|n| n > 0),
        "{purged:#}"
    );
    assert_eq!(controller.berth(&["show", &id]).code, 4);
    assert_eq!(controller.berth(&["logs", &id]).code, 4);
    let listed = controller
        .berth(&["ls", "--app", "gone", "-o", "json"])
        .json();
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed:#}");
    assert!(dir.join("runs").exists(), "the host is left as it is");
    let work = agent.dir.join("work").join(&id);
    assert!(work.exists(), "the work dir stays: {}", work.display());
    assert_audited(&controller, &id, "purge");
    // A running deployment cannot be purged.
    let slow = write_bundle(
        controller.dir.path(),
        "busy",
        &manifest("busy", "1", &dir, true, ""),
        &[],
    );
    let running = id_of(&controller.deploy_detached(&slow, &[]).json());
    let refused = controller.berth(&["purge", &running]);
    assert_eq!(refused.code, 5, "{}", refused.stderr);
    std::fs::write(dir.join("release"), "").expect("release");
    controller.wait_quiet(&running);
}

#[test]
fn stop_and_delete_are_audited_and_leave_the_host_clean() {
    let controller = Controller::start();
    let agent = Agent::join(&controller, "h1", "role=web");
    let dir = scratch(&controller, "teardown");
    let stop = format!(
        "[stop]\nrun = [\"echo stopped > {}/stopped\"]",
        dir.display()
    );
    let text =
        manifest("tidy", "1", &dir, false, "").replace("[target]", &format!("{stop}\n[target]"));
    let bundle = write_bundle(controller.dir.path(), "tidy", &text, &[]);
    let (code, deployment, stderr) = controller.deploy(&bundle);
    assert_eq!(code, 0, "{stderr}");
    let id = id_of(&deployment);
    let work = agent.dir.join("work").join(&id);
    assert!(work.exists());

    let stopped = controller
        .berth(&["stop", "tidy", "--env", "default", "-o", "json"])
        .json();
    assert_eq!(stopped["status"], "stopped", "{stopped:#}");
    assert!(dir.join("stopped").exists(), "the [stop] commands ran");
    assert_audited(&controller, &id, "stop");

    let deleted = controller.berth(&["delete", &id, "-o", "json"]).json();
    assert_eq!(deleted["status"], "deleted", "{deleted:#}");
    assert!(
        !work.exists(),
        "the work dir is removed: {}",
        work.display()
    );
    assert_audited(&controller, &id, "delete");
}

#[test]
fn an_idempotency_key_returns_the_same_deployment_and_guards_its_manifest() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "h1", "role=web");
    let dir = scratch(&controller, "idem");
    let bundle = write_bundle(
        controller.dir.path(),
        "once",
        &manifest("once", "1", &dir, false, ""),
        &[],
    );
    let first = controller
        .deploy_detached(&bundle, &["--idempotency-key", "ci-run-7"])
        .json();
    let again = controller
        .deploy_detached(&bundle, &["--idempotency-key", "ci-run-7"])
        .json();
    assert_eq!(
        id_of(&first),
        id_of(&again),
        "the same key gives the same deployment"
    );
    let changed = write_bundle(
        controller.dir.path(),
        "changed",
        &manifest("once", "2", &dir, false, ""),
        &[],
    );
    let refused = controller.deploy_detached(&changed, &["--idempotency-key", "ci-run-7"]);
    assert_eq!(refused.code, 5, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("ci-run-7") && refused.stderr.contains("different manifest"),
        "{}",
        refused.stderr
    );
    controller.wait_quiet(&id_of(&first));
    let listed = controller
        .berth(&["ls", "--app", "once", "-o", "json"])
        .json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed:#}");
}

#[test]
fn a_canceled_deployment_holds_its_app_until_its_hosts_have_stopped() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "h1", "role=web");
    let dir = scratch(&controller, "stopping");
    let d = dir.display();
    // On SIGTERM the setup takes its time to stop: until `release` appears
    // (the agent would SIGKILL it after 5 s).
    let slow_stop = format!(
        "app = \"drain\"\nversion = \"1\"\n[target]\nhosts = [\"h1\"]\n[setup]\nrun = [\"trap 'echo x > {d}/stopping; while [ ! -e {d}/release ] && [ -d {d} ]; do sleep 0.05; done; exit 1' TERM; echo x > {d}/started; while [ -d {d} ]; do sleep 0.05; done\"]\ntimeout = \"5m\"\n"
    );
    let bundle = write_bundle(controller.dir.path(), "drain", &slow_stop, &[]);
    let id = id_of(&controller.deploy_detached(&bundle, &[]).json());
    wait_for_file(&dir.join("started"));
    let canceled = controller.berth(&["cancel", &id, "--detach", "-o", "json"]);
    assert_eq!(canceled.code, 0, "{}", canceled.stderr);
    wait_for_file(&dir.join("stopping"));

    // Canceled, but h1 still runs its setup: nothing new may start beside it.
    let next = write_bundle(
        controller.dir.path(),
        "next",
        &manifest("drain", "2", &dir, false, ""),
        &[],
    );
    let refused = controller.deploy_detached(&next, &[]);
    assert_eq!(refused.code, 5, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&id)
            && refused
                .stderr
                .contains("is canceled but host(s) h1 are still stopping"),
        "{}",
        refused.stderr
    );

    // Once the host has stopped, the app is free.
    std::fs::write(dir.join("release"), b"").expect("release");
    let done = controller.wait_quiet(&id);
    assert_eq!(done["status"], "canceled", "{done:#}");
    let created = controller.deploy_detached(&next, &[]);
    assert_eq!(created.code, 0, "{}", created.stderr);
    let second = controller.wait_quiet(&id_of(&created.json()));
    assert_eq!(second["status"], "deployed", "{second:#}");
}
