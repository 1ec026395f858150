//! The command line's smaller promises: `init`'s serve hint, apps named
//! instead of deployment ids (with their only environment, or a refusal
//! listing several, for logs, stop, start and rollback), tables that fit
//! the terminal, fleet jobs read back, and a reused idempotency key said
//! as such.

use berth_tests::{Agent, Controller, bin, id_of, write_bundle};

fn script_manifest(app: &str, environment: &str, line: &str) -> String {
    format!(
        "app = \"{app}\"\nenvironment = \"{environment}\"\n[target]\nhosts = [\"box\"]\n[setup]\nrun = [\"echo {line}\"]\n[stop]\nrun = [\"true\"]\n"
    )
}

fn deploy(controller: &Controller, app: &str, environment: &str, line: &str) -> String {
    let name = format!("{app}-{environment}");
    let bundle = write_bundle(
        controller.dir.path(),
        &name,
        &script_manifest(app, environment, line),
        &[],
    );
    let (code, deployment, stderr) = controller.deploy(&bundle);
    assert_eq!(code, 0, "{stderr}");
    id_of(&deployment)
}

#[test]
fn init_hints_serve_on_the_port_it_was_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = std::process::Command::new(bin("berth-controller"))
        .args([
            "init",
            "--name",
            "127.0.0.1",
            "--port",
            "8443",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .output()
        .expect("run init");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("berth-controller serve --data-dir")
            && stdout.contains("--listen 0.0.0.0:8443"),
        "{stdout}"
    );
}

#[test]
fn an_app_stands_for_its_current_deployment_in_its_only_environment() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "box", "role=web");
    let solo = deploy(&controller, "solo", "production", "solo-line");
    deploy(&controller, "duo", "blue", "duo-blue");
    let green = deploy(&controller, "duo", "green", "duo-green");

    // logs by app: its only environment, its newest deployment.
    let logs = controller.berth(&["logs", "solo"]);
    assert_eq!(logs.code, 0, "{}", logs.stderr);
    assert!(logs.stdout.contains("solo-line"), "{}", logs.stdout);
    assert!(logs.stderr.contains(&solo), "{}", logs.stderr);
    let logs = controller.berth(&["logs", "duo", "--env", "green"]).ok();
    assert!(
        logs.contains("duo-green") && !logs.contains("duo-blue"),
        "{logs}"
    );
    let unknown = controller.berth(&["logs", "nothing-here"]);
    assert_eq!(unknown.code, 4, "{}", unknown.stderr);
    let mixed = controller.berth(&["logs", &green, "--env", "green"]);
    assert_eq!(mixed.code, 2, "{}", mixed.stderr);

    // Several environments and none named: refused, listing them.
    for args in [
        vec!["logs", "duo"],
        vec!["stop", "duo"],
        vec!["start", "duo"],
        vec!["rollback", "duo"],
    ] {
        let refused = controller.berth(&args);
        assert_eq!(refused.code, 2, "{args:?}: {}", refused.stderr);
        assert!(
            refused
                .stderr
                .contains("runs in several environments (blue, green); name one with --env"),
            "{args:?}: {}",
            refused.stderr
        );
    }
    // One environment: it is the one meant.
    let stopped = controller.berth(&["stop", "solo", "-o", "json"]).json();
    assert_eq!(stopped["status"], "stopped", "{stopped:#}");
    assert_eq!(stopped["environment"], "production");
    let started = controller.berth(&["start", "solo", "-o", "json"]).json();
    assert_eq!(started["status"], "deployed", "{started:#}");
    assert_eq!(started["environment"], "production");
}

#[test]
fn tables_fit_the_terminal_and_wide_shows_everything() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "box", "role=web,team=payments,tier=frontend");
    let id = deploy(
        &controller,
        "a-rather-long-application-name-for-tables",
        "production-europe-west",
        "x",
    );
    let narrow = [("COLUMNS", "80")];
    for args in [
        vec!["ls"],
        vec!["status"],
        vec!["agents", "ls"],
        vec!["audit"],
    ] {
        let table = controller
            .berth_env(&controller.admin(), &args, &narrow)
            .ok();
        let widest = table.lines().map(|line| line.chars().count()).max();
        assert!(
            widest.is_some_and(|width| width <= 80),
            "{args:?}:\n{table}"
        );
    }
    let ls = controller
        .berth_env(&controller.admin(), &["ls"], &narrow)
        .ok();
    assert!(ls.contains(&id[..10]) && !ls.contains(&id), "{ls}");
    let wide = controller
        .berth_env(&controller.admin(), &["ls", "-o", "wide"], &narrow)
        .ok();
    assert!(
        wide.contains(&id) && wide.contains("BY") && wide.contains("admin"),
        "{wide}"
    );
}

#[test]
fn exec_jobs_are_read_back_and_a_reused_key_says_so() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "box", "role=web");
    let ran = controller
        .berth(&[
            "exec",
            "-o",
            "json",
            "--",
            "sh",
            "-c",
            "echo job-out; echo job-err >&2",
        ])
        .json();
    let job = ran["id"].as_str().expect("job id").to_string();

    let listed = controller.berth(&["jobs", "ls", "-o", "json"]).json();
    assert_eq!(listed[0]["id"], job.as_str(), "{listed:#}");
    let table = controller.berth(&["jobs", "ls"]).ok();
    assert!(
        table.contains(&job[..10]) && table.contains("ok 1/1"),
        "{table}"
    );
    let shown = controller.berth(&["jobs", "show", &job]).ok();
    assert!(
        shown.contains("box | job-out") && shown.contains("box ! job-err"),
        "{shown}"
    );
    let json = controller
        .berth(&["jobs", "show", &job, "-o", "json"])
        .json();
    assert_eq!(json["hosts"][0]["status"], "ok", "{json:#}");
    let missing = controller.berth(&["jobs", "show", "01KBQ4ZJ0AW8Y4ZWJ0PJ7WDT5F"]);
    assert_eq!(missing.code, 4, "{}", missing.stderr);

    // The same idempotency key twice: the second deploy says it exists.
    let bundle = write_bundle(
        controller.dir.path(),
        "keyed",
        &script_manifest("keyed", "default", "k"),
        &[],
    );
    let first = controller.deploy_detached(&bundle, &["--idempotency-key", "ci-9"]);
    assert!(
        first.stderr.contains(" created:") && !first.stderr.contains("already"),
        "{}",
        first.stderr
    );
    let second = controller.deploy_detached(&bundle, &["--idempotency-key", "ci-9"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains("already created (same --idempotency-key)"),
        "{}",
        second.stderr
    );
}
