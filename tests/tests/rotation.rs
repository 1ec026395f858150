//! T12: the controller's server certificate replaced by a new one from the
//! same CA (`berth-controller rotate-server-cert`) and the controller
//! restarted. Agents pin the CA and a fixed name, not the certificate, so
//! they reconnect by themselves: same identity, no new join, and they take
//! deploys after.

use std::collections::BTreeMap;
use std::process::Command;

use berth_tests::probe::served_certificate;
use berth_tests::{Agent, Controller, DEADLINE, bin};

/// Agent name to agent id, from `berth agents ls`, with whether it is online.
fn agents(controller: &Controller) -> BTreeMap<String, (String, bool)> {
    let listed = controller.berth(&["agents", "ls", "-o", "json"]).json();
    listed
        .as_array()
        .expect("agents")
        .iter()
        .map(|agent| {
            let text = |key: &str| agent[key].as_str().unwrap_or_default().to_string();
            (text("name"), (text("id"), agent["online"] == true))
        })
        .collect()
}

/// What an agent's identity consists of on its disk.
fn identity_files(agent: &Agent) -> Vec<String> {
    ["agent.toml", "cert.pem", "key.pem", "ca.pem"]
        .iter()
        .map(|name| std::fs::read_to_string(agent.dir.join(name)).unwrap_or_default())
        .collect()
}

#[test]
fn agents_reconnect_to_a_rotated_server_certificate_without_joining_again() {
    let mut controller = Controller::start();
    let fleet = [
        Agent::join(&controller, "north", "role=web"),
        Agent::join(&controller, "south", "role=web"),
    ];
    let enrolled = agents(&controller);
    let identities: Vec<Vec<String>> = fleet.iter().map(identity_files).collect();
    let pki = controller.dir.path().join("controller/pki");
    let ca = std::fs::read_to_string(pki.join("ca.pem")).expect("ca");
    let old_key = std::fs::read_to_string(pki.join("server.key")).expect("key");
    let old = served_certificate(&controller);

    let rotate = Command::new(bin("berth-controller"))
        .args(["rotate-server-cert", "--data-dir"])
        .arg(controller.dir.path().join("controller"))
        .output()
        .expect("run rotate-server-cert");
    let said = String::from_utf8_lossy(&rotate.stdout);
    assert!(
        rotate.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&rotate.stderr)
    );
    assert!(said.contains("new server certificate"), "{said}");
    assert!(said.contains("restart the controller"), "{said}");
    assert_eq!(
        std::fs::read_to_string(pki.join("ca.pem")).expect("ca"),
        ca,
        "the same CA"
    );
    assert_ne!(
        std::fs::read_to_string(pki.join("server.key")).expect("key"),
        old_key,
        "a new key"
    );

    controller.restart();
    let new = served_certificate(&controller);
    assert_ne!(new.serial, old.serial, "the controller serves the new one");
    assert!(said.contains(&new.serial), "{said}");
    assert_eq!(new.names, old.names, "for the same names");
    assert!(new.not_after_ms >= old.not_after_ms);

    for agent in &fleet {
        assert!(
            agent
                .process()
                .stderr
                .wait_for_nth("connected to the controller", 2, DEADLINE)
                .is_some(),
            "{} did not reconnect:\n{}",
            agent.name,
            agent.process().log_tail()
        );
    }
    let after: Vec<Vec<String>> = fleet.iter().map(identity_files).collect();
    assert_eq!(after, identities, "no agent changed its identity");
    let reconnected = agents(&controller);
    assert_eq!(
        reconnected.keys().collect::<Vec<_>>(),
        enrolled.keys().collect::<Vec<_>>(),
        "no new agent"
    );
    for (name, (id, online)) in &reconnected {
        assert_eq!(id, &enrolled[name].0, "{name} keeps its id");
        assert!(online, "{name} is online");
    }
    assert!(
        !controller.log().contains("agent joined"),
        "nobody joined again:\n{}",
        controller.log()
    );

    let deployment = controller.deploy_ok(
        "after",
        "app = \"after\"\n[target]\nlabels = { role = \"web\" }\n[setup]\nrun = [\"echo on $BERTH_HOST\"]\n",
    );
    let mut lines = controller.stdout_lines(&berth_tests::id_of(&deployment), None);
    lines.sort();
    assert_eq!(lines, ["on north", "on south"]);
}

#[test]
fn a_rotation_can_name_the_controller_anew() {
    let controller = Controller::start();
    let data = controller.dir.path().join("controller");
    let rotate = |args: &[&str]| {
        Command::new(bin("berth-controller"))
            .args(["rotate-server-cert", "--data-dir"])
            .arg(&data)
            .args(args)
            .output()
            .expect("run rotate-server-cert")
    };
    let refused = rotate(&["--san", "ctl.example.com"]);
    assert_eq!(refused.status.code(), Some(2), "--san needs --name");

    let renamed = rotate(&["--name", "ctl.example.com", "--san", "198.18.0.9"]);
    let said = String::from_utf8_lossy(&renamed.stdout);
    assert!(renamed.status.success(), "{said}");
    for name in ["ctl.example.com", "198.18.0.9", "127.0.0.1", "localhost"] {
        assert!(said.contains(name), "{name} missing: {said}");
    }
}
