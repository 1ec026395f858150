//! Two controllers on one PostgreSQL store, one serving and one standing
//! by, as an operator runs them for failover: agents and the CLI are given
//! both addresses. The serving controller is killed mid-deploy; the
//! standby takes over, the agent and a live `berth watch` move to it, the
//! deployment completes with every line stored exactly once, and the
//! killed controller, started again, stands by in its turn. A controller
//! whose session with the database ends stops serving, and the other
//! takes over.

use std::net::TcpStream;
use std::time::Duration;

use berth_tests::{
    Agent, Controller, DEADLINE, eventually_or, id_of, postgres, skip, write_bundle,
};

const MANIFEST: &str = r#"
app = "steady"
[target]
labels = { role = "web" }
[setup]
run = ["./setup.sh"]
"#;

/// Prints `count` numbered lines, 100 a second.
fn numbered(count: u32) -> String {
    format!("#!/bin/sh\nfor i in $(seq 1 {count}); do echo \"line $i\"; sleep 0.01; done\n")
}

/// The serving controller and a standby on its store, with `first.url`
/// naming both (agents and the CLI then fail over between them).
fn pair(test: &str) -> Option<(Controller, Controller)> {
    let Some(server) = postgres::server() else {
        skip(
            test,
            "needs a PostgreSQL server: BERTH_TEST_POSTGRES (scripts/test.sh starts one)",
        );
        return None;
    };
    let mut first = Controller::start_on_postgres(&server);
    let second = first.standby();
    second
        .process()
        .stderr
        .wait_for("standing by", DEADLINE)
        .unwrap_or_else(|| panic!("no standby:\n{}", second.process().log_tail()));
    first.url = format!("{},{}", first.url, second.url);
    Some((first, second))
}

fn listens(address: &str) -> bool {
    TcpStream::connect(address).is_ok()
}

/// `berth status --controllers -o json`: (role, listen, agents) of each.
fn controllers(via: &Controller) -> (String, Vec<(String, String, u64)>) {
    let list = via.berth(&["status", "--controllers", "-o", "json"]).json();
    let rows = list["controllers"]
        .as_array()
        .expect("controllers")
        .iter()
        .map(|row| {
            (
                row["role"].as_str().unwrap_or_default().to_string(),
                row["listen"].as_str().unwrap_or_default().to_string(),
                row["agents"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    (list["store"].as_str().unwrap_or_default().to_string(), rows)
}

#[test]
fn the_standby_takes_over_a_deploy_when_the_serving_controller_is_killed() {
    let Some((mut first, mut second)) = pair("standby takeover") else {
        return;
    };
    let standby_log = second.process().log_tail();
    assert!(
        standby_log.contains(&first.address),
        "the standby names the controller that serves:\n{standby_log}"
    );
    assert!(!listens(&second.address), "a standby does not listen");
    let agent = Agent::join(&first, "web-1", "role=web");
    let (store, rows) = controllers(&first);
    assert_eq!(store, "postgresql");
    assert_eq!(
        rows,
        vec![
            ("serving".to_string(), first.address.clone(), 1),
            ("standby".to_string(), second.address.clone(), 0),
        ],
        "the serving controller with its agent, then the standby"
    );

    let bundle = write_bundle(
        first.dir.path(),
        "steady",
        MANIFEST,
        &[("setup.sh", &numbered(400))],
    );
    let created = first.deploy_detached(&bundle, &[]).json();
    let id = id_of(&created);
    let mut watch = first.berth_spawn(&["watch", &id]);
    eventually_or(
        "the first lines stored",
        600,
        Duration::from_millis(50),
        || {
            first
                .berth(&["logs", &id])
                .stdout
                .contains("line 40\n")
                .then_some(())
        },
        || agent.process().log_tail(),
    );
    first.kill9();
    second.wait_serving();
    agent
        .process()
        .stderr
        .wait_for(&format!("controller={}", second.url), DEADLINE)
        .unwrap_or_else(|| panic!("the agent did not move:\n{}", agent.process().log_tail()));

    let done = first.wait_quiet(&id);
    assert_eq!(done["status"], "deployed", "{done:#}");
    let (_, rows) = controllers(&first);
    assert_eq!(
        rows,
        vec![("serving".to_string(), second.address.clone(), 1)],
        "the standby serves, with the agent, and the killed one is gone"
    );
    let logs = first.berth(&["logs", &id]).ok();
    let lines: Vec<&str> = logs.lines().filter(|line| line.contains("line ")).collect();
    let expected: Vec<String> = (1..=400).map(|i| format!("line {i}")).collect();
    assert_eq!(
        lines.len(),
        400,
        "every line once, none lost or doubled:\n{logs}"
    );
    for (line, want) in lines.iter().zip(&expected) {
        assert!(line.ends_with(want.as_str()), "{line} where {want} was due");
    }
    assert_eq!(
        watch.wait_exit(DEADLINE),
        Some(0),
        "berth watch followed the deployment onto the standby:\n{}",
        watch.log_tail()
    );
    assert!(
        watch
            .stderr
            .all()
            .iter()
            .any(|line| line.contains("reconnected")),
        "{}",
        watch.log_tail()
    );

    // The killed controller comes back as the standby; when the serving
    // one stops, it takes over again and deploys.
    first.resume_standing_by();
    first
        .process()
        .stderr
        .wait_for("standing by", DEADLINE)
        .unwrap_or_else(|| panic!("no standby:\n{}", first.process().log_tail()));
    second.stop();
    first.wait_serving();
    first.url = format!("{},{}", first.url, second.url);
    let again = first
        .deploy_detached(&bundle, &["--wait-for-agents", "60s"])
        .json();
    let again = first.wait_quiet(&id_of(&again));
    assert_eq!(again["status"], "deployed", "{again:#}");
}

#[test]
fn a_controller_that_loses_its_database_session_stops_and_the_standby_serves() {
    let Some((mut first, mut second)) = pair("standby on a lost session") else {
        return;
    };
    let _agent = Agent::join(&first, "web-1", "role=web");
    assert!(
        postgres::end_serving_session(&first.dir.path().join("controller")),
        "the serving session was found"
    );
    let mut serving = first.process_take();
    let code = serving.wait_exit(DEADLINE);
    assert_ne!(code, Some(0), "{}", serving.log_tail());
    assert!(
        serving
            .log_tail()
            .contains("lost the PostgreSQL store's serving lock"),
        "{}",
        serving.log_tail()
    );
    second.wait_serving();
    let bundle = write_bundle(
        first.dir.path(),
        "steady",
        MANIFEST,
        &[("setup.sh", &numbered(10))],
    );
    let created = first
        .deploy_detached(&bundle, &["--wait-for-agents", "60s"])
        .json();
    let done = first.wait_quiet(&id_of(&created));
    assert_eq!(done["status"], "deployed", "{done:#}");
}
