//! Two controllers serving from one PostgreSQL store at once, as an
//! operator runs them: agents and the CLI are given both addresses, in
//! different orders, so the agents split between them. A deploy created
//! through A to an agent on B completes and its log is followed live
//! through A, and `berth status` through A shows B's agent's own report;
//! `inspect` and a fleet `exec` from A reach the agents on
//! both (those on B through B); `kill -9`
//! of the controller that holds an agent mid-deploy moves the agent to the
//! other, and the deployment completes with every line stored exactly
//! once; a cancel through A stops the task on B's agent, and a revocation
//! through A cuts B's agent off. A controller whose lock of the
//! once-per-store work is taken from it stops, and the other takes that
//! work over.

use std::time::Duration;

use berth_tests::{
    Agent, Controller, DEADLINE, eventually_or, id_of, postgres, skip, write_bundle,
};

/// Runs on hosts labelled `role=ROLE` and prints `count` numbered lines,
/// 100 a second.
fn bundle(controller: &Controller, role: &str, count: u32) -> std::path::PathBuf {
    let manifest = format!(
        "app = \"steady-{role}\"\n[target]\nlabels = {{ role = \"{role}\" }}\n[setup]\nrun = [\"./setup.sh\"]\n"
    );
    let script =
        format!("#!/bin/sh\nfor i in $(seq 1 {count}); do echo \"line $i\"; sleep 0.01; done\n");
    write_bundle(
        controller.dir.path(),
        &format!("steady-{role}"),
        &manifest,
        &[("setup.sh", &script)],
    )
}

/// Two controllers on one store, both serving; `first.url` names A then
/// B, `second.url` B then A.
fn pair(test: &str) -> Option<(Controller, Controller)> {
    let Some(server) = postgres::server() else {
        skip(
            test,
            "needs a PostgreSQL server: BERTH_TEST_POSTGRES (scripts/test.sh starts one)",
        );
        return None;
    };
    let mut first = Controller::start_on_postgres(&server);
    let mut second = first.peer();
    second.wait_serving();
    let (a, b) = (first.url.clone(), second.url.clone());
    first.url = format!("{a},{b}");
    second.url = format!("{b},{a}");
    Some((first, second))
}

/// `berth status --controllers -o json`: (listen, agents) of each.
fn controllers(via: &Controller) -> Vec<(String, u64)> {
    let list = via.berth(&["status", "--controllers", "-o", "json"]).json();
    assert_eq!(list["store"], "postgresql", "{list:#}");
    let mut rows: Vec<(String, u64)> = list["controllers"]
        .as_array()
        .expect("controllers")
        .iter()
        .map(|row| {
            assert_eq!(row["role"], "serving", "{row:#}");
            (
                row["listen"].as_str().unwrap_or_default().to_string(),
                row["agents"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// Waits until `line N` of deployment `id` is stored.
fn wait_for_line(via: &Controller, id: &str, n: u32, agent: &Agent) {
    eventually_or(
        &format!("line {n} stored"),
        600,
        Duration::from_millis(50),
        || {
            via.berth(&["logs", id])
                .stdout
                .contains(&format!("line {n}\n"))
                .then_some(())
        },
        || agent.process().log_tail(),
    );
}

/// The `line N` lines of a deployment's log, checked to be 1..=count once
/// each and in order.
fn assert_every_line_once(logs: &str, count: u32) {
    let lines: Vec<&str> = logs.lines().filter(|line| line.contains("line ")).collect();
    assert_eq!(
        lines.len(),
        count as usize,
        "every line once, none lost or doubled:\n{logs}"
    );
    for (line, n) in lines.iter().zip(1..=count) {
        assert!(
            line.ends_with(&format!("line {n}")),
            "{line} where line {n} was due"
        );
    }
}

#[test]
fn two_controllers_share_the_agents_and_a_killed_one_s_agent_moves_to_the_other() {
    let Some((mut first, mut second)) = pair("two controllers") else {
        return;
    };
    let on_a = Agent::join(&first, "web-a", "role=a");
    let on_b = Agent::join(&second, "web-b", "role=b");
    for (agent, controller) in [(&on_a, &first), (&on_b, &second)] {
        let address = controller
            .url
            .split(',')
            .next()
            .expect("address")
            .to_string();
        agent
            .process()
            .stderr
            .wait_for(&format!("controller={address}"), DEADLINE)
            .unwrap_or_else(|| panic!("not on {address}:\n{}", agent.process().log_tail()));
    }
    let mut expected = vec![(first.address.clone(), 1), (second.address.clone(), 1)];
    expected.sort();
    eventually_or(
        "each controller lists one agent",
        200,
        Duration::from_millis(50),
        || (controllers(&first) == expected).then_some(()),
        || format!("{:?}", controllers(&first)),
    );
    let status = first.berth(&["status", "--controllers"]).ok();
    assert!(
        status.contains("once-per-store work, fencing token"),
        "one controller holds the once-per-store work:\n{status}"
    );

    // Created through A for the agent on B, followed live through A.
    let created = first.deploy_detached(&bundle(&first, "b", 300), &[]).json();
    let id = id_of(&created);
    let mut follow = first.berth_spawn(&["logs", "-f", &id]);
    let done = first.wait_quiet(&id);
    assert_eq!(done["status"], "deployed", "{done:#}");
    assert_eq!(follow.wait_exit(DEADLINE), Some(0), "{}", follow.log_tail());
    assert_every_line_once(&follow.stdout.all().join("\n"), 300);
    let moved = on_b.process().log_tail();
    assert!(
        !moved.contains(&format!("controller=https://{}", first.address)),
        "the agent on B stayed on B:\n{moved}"
    );

    // `berth status` through A shows what B's agent reported to B, as B
    // does (B stores each agent's report when it changes).
    let host_states = |via: &Controller| {
        let status = via.berth(&["status", "-o", "json"]).json();
        status
            .as_array()
            .and_then(|apps| apps.iter().find(|app| app["app"] == "steady-b"))
            .map(|app| app["host_states"].clone())
            .unwrap_or_default()
    };
    eventually_or(
        "status through A as through B",
        300,
        Duration::from_millis(100),
        || {
            let (via_a, via_b) = (host_states(&first), host_states(&second));
            (via_a == via_b && via_a[0]["state"] == "deployed").then_some(())
        },
        || {
            format!(
                "A: {:#}\nB: {:#}",
                host_states(&first),
                host_states(&second)
            )
        },
    );

    // Inspect through A asks the agent on B, through B.
    let inspect = first.berth(&["inspect", "steady-b", "-o", "json"]).json();
    let hosts = inspect.as_array().expect("hosts");
    assert_eq!(hosts.len(), 2, "{inspect:#}");
    for host in hosts {
        assert_eq!(host["online"], true, "{inspect:#}");
        assert_eq!(host["answered"], true, "{inspect:#}");
    }

    // A fleet exec from A reaches the agents on both controllers.
    let ran = first
        .berth(&["exec", "-o", "json", "--", "echo", "from-each"])
        .json();
    let hosts = ran["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 2, "{ran:#}");
    for host in hosts {
        assert_eq!(host["status"], "ok", "{ran:#}");
    }
    let job = ran["id"].as_str().expect("job id");
    let shown = first.berth(&["jobs", "show", job]).ok();
    for name in ["web-a", "web-b"] {
        assert!(
            shown
                .lines()
                .any(|line| line.starts_with(&format!("{name} | from-each"))),
            "{name}'s output came back through A:\n{shown}"
        );
    }

    // A cancel through A stops the task running on B's agent.
    let created = first
        .deploy_detached(&bundle(&first, "b", 3000), &[])
        .json();
    let id = id_of(&created);
    wait_for_line(&first, &id, 20, &on_b);
    first.berth(&["cancel", &id]).ok();
    let canceled = first.wait_quiet(&id);
    assert_eq!(canceled["status"], "canceled", "{canceled:#}");
    assert_eq!(canceled["tasks"][0]["status"], "canceled", "{canceled:#}");
    let stored = first.berth(&["logs", &id]).ok();
    assert!(
        !stored.contains("line 3000"),
        "the script was stopped on its host:\n{stored}"
    );

    // kill -9 of B mid-deploy: its agent moves to A and the deployment
    // completes, every line once.
    let created = first.deploy_detached(&bundle(&first, "b", 400), &[]).json();
    let id = id_of(&created);
    wait_for_line(&first, &id, 40, &on_b);
    second.kill9();
    on_b.process()
        .stderr
        .wait_for(&format!("controller=https://{}", first.address), DEADLINE)
        .unwrap_or_else(|| panic!("the agent did not move:\n{}", on_b.process().log_tail()));
    let done = first.wait_quiet(&id);
    assert_eq!(done["status"], "deployed", "{done:#}");
    assert_every_line_once(&first.berth(&["logs", &id]).ok(), 400);
    eventually_or(
        "A alone, with both agents",
        200,
        Duration::from_millis(50),
        || (controllers(&first) == vec![(first.address.clone(), 2)]).then_some(()),
        || format!("{:?}", controllers(&first)),
    );
    first.url = first.url.split(',').next().expect("A").to_string();
    let again = first.deploy_detached(&bundle(&first, "a", 10), &[]).json();
    let again = first.wait_quiet(&id_of(&again));
    assert_eq!(again["status"], "deployed", "{again:#}");
}

#[test]
fn a_controller_that_loses_the_once_per_store_work_stops_and_the_other_takes_it() {
    let Some((mut first, second)) = pair("lost once-per-store lock") else {
        return;
    };
    let _agent = Agent::join(&second, "web-b", "role=b");
    // An agent on B revoked through A is cut off by B.
    let mut doomed = Agent::join(&second, "web-c", "role=c");
    first.berth(&["agents", "revoke", "web-c"]).ok();
    assert!(
        doomed.process_mut().wait_exit(DEADLINE).is_some(),
        "the revoked agent on B was cut off:\n{}",
        doomed.process().log_tail()
    );
    assert!(
        doomed
            .process()
            .log_tail()
            .contains("the certificate of web-c was revoked"),
        "{}",
        doomed.process().log_tail()
    );
    assert!(
        postgres::end_serving_session(&first.dir.path().join("controller")),
        "the session of the once-per-store work was found"
    );
    let mut holder = first.process_take();
    let code = holder.wait_exit(DEADLINE);
    assert_ne!(code, Some(0), "{}", holder.log_tail());
    assert!(
        holder
            .log_tail()
            .contains("lost the PostgreSQL store's lock of the once-per-store work"),
        "{}",
        holder.log_tail()
    );
    second
        .process()
        .stderr
        .wait_for("runs the store's once-per-store work now", DEADLINE)
        .unwrap_or_else(|| panic!("B did not take it:\n{}", second.process().log_tail()));
    let created = second
        .deploy_detached(&bundle(&second, "b", 10), &[])
        .json();
    let done = second.wait_quiet(&id_of(&created));
    assert_eq!(done["status"], "deployed", "{done:#}");
}
