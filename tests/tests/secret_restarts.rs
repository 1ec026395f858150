//! A deployment's secrets across the restarts operators meet: its
//! container keeps its secret file and env through a restart of Docker
//! and of the agent (which keeps no value on disk); a container removed
//! by hand is reported missing with how to start it again, rather than
//! started without its secrets, and `berth redeploy` brings it back whole.

use std::time::Duration;

use berth_tests::docker::{Dockerd, HTTPD, IMAGE};
use berth_tests::{Agent, Controller, eventually_or, id_of, write_bundle};

const API_TOKEN: &str = "api-Token-restart-5d0c21-never-shown";
const DB_PASSWORD: &str = "db-Pass-restart-a81f3e-never-shown";

/// The one container of app `keep`, once it runs, with its secret file's
/// content and its env.
fn running(dockerd: &Dockerd, what: &str) -> (String, String, String) {
    eventually_or(
        what,
        150,
        Duration::from_millis(200),
        || {
            let containers = dockerd.containers_of("keep");
            let name = containers.first()?.split_whitespace().next()?.to_string();
            let up = dockerd.docker(&["inspect", "-f", "{{.State.Running}}", &name]);
            if String::from_utf8_lossy(&up.stdout).trim() != "true" {
                return None;
            }
            let file = dockerd.docker(&["exec", &name, "cat", "/run/secrets/api_token"]);
            let env = dockerd.docker(&["inspect", "-f", "{{json .Config.Env}}", &name]);
            Some((
                name,
                String::from_utf8_lossy(&file.stdout).into_owned(),
                String::from_utf8_lossy(&env.stdout).into_owned(),
            ))
        },
        || format!("{:?}", dockerd.containers_of("keep")),
    )
}

#[track_caller]
fn assert_whole(found: &(String, String, String)) {
    let (name, file, env) = found;
    assert_eq!(file, API_TOKEN, "the secret file of {name}");
    assert!(
        env.contains(&format!("DB_PASSWORD={DB_PASSWORD}")),
        "the env of {name}"
    );
}

/// The host state `berth status -o json` reports for app `keep`.
fn host_state(controller: &Controller) -> String {
    let status = controller.berth(&["status", "-o", "json"]).json();
    status[0]["host_states"][0]["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn secrets_survive_restarts_and_a_removed_container_is_not_started_without_them() {
    let Some(mut dockerd) = Dockerd::start("secrets_survive_restarts") else {
        return;
    };
    dockerd.import_busybox(IMAGE);
    let controller = Controller::start();
    let mut agent = Agent::join_with_args(
        &controller,
        "keep-1",
        "role=keep",
        &["--docker-host", &dockerd.host],
    );
    for (name, value) in [("API_TOKEN", API_TOKEN), ("DB_PASSWORD", DB_PASSWORD)] {
        let set = controller.berth_stdin(&["secret", "set", "keep/prod", name], value);
        assert_eq!(set.code, 0, "{}", set.stderr);
    }
    let manifest = format!(
        "app = \"keep\"\nenvironment = \"prod\"\nversion = \"1\"\n[target]\nlabels = {{ role = \"keep\" }}\n[secrets]\nAPI_TOKEN = {{ file = \"/run/secrets/api_token\" }}\n[container]\nimage = \"{IMAGE}\"\nport = 8080\ncommand = {HTTPD}\nstop_timeout = \"1s\"\n"
    );
    let bundle = write_bundle(controller.dir.path(), "keep", &manifest, &[]);
    let (code, deployment, stderr) = controller.deploy(&bundle);
    assert_eq!(code, 0, "{stderr}\n{deployment:#}");
    let first = running(&dockerd, "the first container");
    assert_whole(&first);

    // `systemctl restart docker`: the same container comes back with its
    // file (kept in its own layer) and its env.
    dockerd.restart();
    let after_docker = running(&dockerd, "the container after a Docker restart");
    assert_eq!(after_docker.0, first.0, "the same container");
    assert_whole(&after_docker);

    // The agent restarts (kill -9): it kept no value on disk, and the
    // container it watches runs on as it was.
    agent.kill9();
    agent.spawn();
    let running_state = eventually_or(
        "the agent reporting the app running after its restart",
        150,
        Duration::from_millis(200),
        || Some(host_state(&controller)).filter(|state| state == "running"),
        || controller.berth(&["status"]).stdout,
    );
    assert_eq!(running_state, "running");
    assert_whole(&running(&dockerd, "the container after an agent restart"));

    // Removed by hand: the repair loop cannot start it again without its
    // secrets, and says how to.
    dockerd.docker_ok(&["rm", "-f", &first.0]);
    let missing = eventually_or(
        "the container reported missing, with the way back",
        150,
        Duration::from_millis(200),
        || Some(host_state(&controller)).filter(|state| state.starts_with("missing")),
        || controller.berth(&["status"]).stdout,
    );
    assert!(
        missing.contains("started with secrets") && missing.contains("berth redeploy keep"),
        "{missing}"
    );
    assert!(
        dockerd.containers_of("keep").is_empty(),
        "not started without its secrets"
    );

    // `berth redeploy` starts it again, whole.
    let redeployed = controller.berth(&["redeploy", &id_of(&deployment), "-o", "json"]);
    assert_eq!(redeployed.code, 0, "{}", redeployed.stderr);
    assert_whole(&running(&dockerd, "the redeployed container"));
    let id = id_of(&redeployed.json());
    let state = eventually_or(
        "the redeployed app running",
        150,
        Duration::from_millis(200),
        || Some(host_state(&controller)).filter(|state| state == "running"),
        || controller.berth(&["show", &id]).stdout,
    );
    assert_eq!(state, "running");
    assert_eq!(controller.show(&id)["status"], "deployed");
    controller.berth(&["delete", &id]).ok();
}
