//! Moving an installation from sled to PostgreSQL with `berth-controller
//! migrate`, as an operator would: a controller with history and logs is
//! stopped, its store moved, and started again on the same data directory;
//! everything it knew is still there and it keeps working.

use std::process::Command;

use berth_tests::{Agent, Controller, bin, id_of, postgres, skip, write_bundle};

const MANIFEST: &str = r#"
app = "moved"
[target]
labels = { role = "web" }
[setup]
run = ["./setup.sh"]
"#;

fn setup(version: &str) -> String {
    format!("#!/bin/sh\nfor i in $(seq 1 300); do echo \"{version} line $i\"; done\n")
}

fn migrate(controller: &Controller, to: &str) -> std::process::Output {
    Command::new(bin("berth-controller"))
        .args(["migrate", "--from"])
        .arg(controller.dir.path().join("controller"))
        .args(["--to", to])
        .output()
        .expect("run berth-controller migrate")
}

#[test]
fn a_sled_installation_moves_to_postgresql_with_its_history_and_logs() {
    let Some(server) = postgres::server() else {
        skip(
            "a_sled_installation_moves_to_postgresql_with_its_history_and_logs",
            "a PostgreSQL server in BERTH_TEST_POSTGRES (scripts/test.sh starts one)",
        );
        return;
    };
    let mut controller = Controller::start_on_sled();
    let agent = Agent::join(&controller, "web-1", "role=web");
    let mut ids = Vec::new();
    for version in ["v1", "v2"] {
        let bundle = write_bundle(
            controller.dir.path(),
            version,
            MANIFEST,
            &[("setup.sh", &setup(version))],
        );
        let (code, deployment, stderr) = controller.deploy(&bundle);
        assert_eq!(code, 0, "{stderr}");
        ids.push(id_of(&deployment));
    }
    let set = controller.berth_stdin(&["secret", "set", "moved/default", "TOKEN"], "s3cret\n");
    assert_eq!(set.code, 0, "{}", set.stderr);
    let listed = controller.berth(&["ls", "-o", "json"]).json();
    let logs: Vec<String> = ids
        .iter()
        .map(|id| controller.berth(&["logs", id]).ok())
        .collect();
    assert!(logs[1].contains("v2 line 300"), "{}", logs[1]);

    // A running controller holds its sled store: migrate says to stop it.
    let target = postgres::fresh_schema(&server);
    let refused = migrate(&controller, &target);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("stop the controller first"), "{stderr}");

    controller.stop();
    let moved = migrate(&controller, &target);
    let stdout = String::from_utf8_lossy(&moved.stdout);
    assert!(
        moved.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&moved.stderr)
    );
    assert!(stdout.contains("every count matches"), "{stdout}");
    let count_of = |name: &str| -> Vec<u64> {
        let row = stdout
            .lines()
            .find(|line| line.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no `{name}` row in:\n{stdout}"));
        row.split_whitespace()
            .skip(1)
            .map(|n| n.parse().expect("count"))
            .collect()
    };
    assert_eq!(count_of("deployments"), [2, 2]);
    assert_eq!(count_of("secrets"), [1, 1]);
    let lines = stdout
        .lines()
        .find(|line| line.starts_with("log lines"))
        .expect("log lines row");
    let lines: Vec<u64> = lines
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], lines[1]);
    assert!(lines[0] >= 600, "{lines:?}");
    assert!(controller.dir.path().join("controller/store.toml").exists());

    // Started again without a flag, it serves from PostgreSQL: the same
    // history, the same lines, and new work.
    controller.resume();
    assert_eq!(controller.berth(&["ls", "-o", "json"]).json(), listed);
    for (id, before) in ids.iter().zip(&logs) {
        assert_eq!(&controller.berth(&["logs", id]).ok(), before);
    }
    let secrets = controller.berth(&["secret", "ls"]).ok();
    // The agent finds the controller again (its second connection).
    agent
        .process()
        .expect_logged("connected to the controller", 2, "web-1");
    assert!(secrets.contains("TOKEN"), "{secrets}");
    let bundle = write_bundle(
        controller.dir.path(),
        "v3",
        MANIFEST,
        &[("setup.sh", &setup("v3"))],
    );
    let (code, deployment, stderr) = controller.deploy(&bundle);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(deployment["status"], "deployed");
    let rows = psql_count(&target, "SELECT count(*) FROM kv_deployments");
    assert_eq!(rows, 3, "the new deployment is in PostgreSQL");
    drop(agent);

    // Once moved, there is no sled store to move again.
    controller.stop();
    let again = migrate(&controller, &postgres::fresh_schema(&server));
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("keeps its store in PostgreSQL already"),
        "{stderr}"
    );
}

#[test]
fn a_database_that_holds_records_is_refused() {
    let Some(server) = postgres::server() else {
        skip(
            "a_database_that_holds_records_is_refused",
            "a PostgreSQL server in BERTH_TEST_POSTGRES (scripts/test.sh starts one)",
        );
        return;
    };
    let target = postgres::fresh_schema(&server);
    let mut first = Controller::start_on_sled();
    first.stop();
    let moved = migrate(&first, &target);
    assert!(
        moved.status.success(),
        "{}",
        String::from_utf8_lossy(&moved.stderr)
    );

    let mut second = Controller::start_on_sled();
    second.stop();
    let refused = migrate(&second, &target);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("already holds records"), "{stderr}");
    assert!(
        !second.dir.path().join("controller/store.toml").exists(),
        "a refused move leaves the directory on sled"
    );
    second.resume();
    second.berth(&["ls"]).ok();
}

fn psql_count(url: &str, sql: &str) -> u64 {
    let said = postgres::psql(url, sql).unwrap_or_else(|err| panic!("{err}"));
    said.trim()
        .parse()
        .unwrap_or_else(|_| panic!("psql said {said:?}"))
}
