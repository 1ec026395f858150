//! `berth-controller backup` and `restore` on both stores, as an operator
//! would use them: a PostgreSQL store backed up while its controller
//! serves and a deployment runs, a sled store with its controller stopped;
//! each restored into an empty store the controller then serves from.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use berth_tests::{Agent, Controller, id_of, postgres, skip, write_bundle};

const MANIFEST: &str = r#"
app = "kept"
[target]
labels = { role = "web" }
[setup]
run = ["./setup.sh"]
"#;

fn controller_cmd(args: &[&str], data_dir: &Path) -> Output {
    Command::new(berth_tests::bin("berth-controller"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("run berth-controller")
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Two deployments with lines; their ids and logs, and `berth ls`.
fn history(controller: &Controller) -> (Vec<String>, Vec<String>, serde_json::Value) {
    let mut ids = Vec::new();
    for version in ["one", "two"] {
        let setup = format!("#!/bin/sh\nfor i in $(seq 1 200); do echo \"{version} $i\"; done\n");
        let bundle = write_bundle(
            controller.dir.path(),
            version,
            MANIFEST,
            &[("setup.sh", &setup)],
        );
        let (code, deployment, stderr) = controller.deploy(&bundle);
        assert_eq!(code, 0, "{stderr}");
        ids.push(id_of(&deployment));
    }
    let logs = ids
        .iter()
        .map(|id| controller.berth(&["logs", id]).ok())
        .collect();
    (ids, logs, controller.berth(&["ls", "-o", "json"]).json())
}

/// The deployments of `listed` are as they were, with their lines; the
/// listing may hold more (a deployment that ran when the backup was taken).
fn same_history(
    controller: &Controller,
    ids: &[String],
    logs: &[String],
    listed: &serde_json::Value,
) {
    let now = controller.berth(&["ls", "-o", "json"]).json();
    for before in listed.as_array().expect("a list") {
        let after = now
            .as_array()
            .expect("a list")
            .iter()
            .find(|after| after["id"] == before["id"]);
        assert_eq!(after, Some(before));
    }
    for (id, before) in ids.iter().zip(logs) {
        assert_eq!(&controller.berth(&["logs", id]).ok(), before);
    }
}

fn data_dir(controller: &Controller) -> PathBuf {
    controller.dir.path().join("controller")
}

#[test]
fn a_postgresql_store_is_backed_up_while_it_serves_and_restored_into_a_new_database() {
    let Some(server) = postgres::server() else {
        skip(
            "a_postgresql_store_is_backed_up_while_it_serves_and_restored_into_a_new_database",
            "a PostgreSQL server in BERTH_TEST_POSTGRES (scripts/test.sh starts one)",
        );
        return;
    };
    let mut controller = Controller::start_on_postgres(&server);
    let agent = Agent::join(&controller, "web-1", "role=web");
    let (ids, logs, listed) = history(&controller);
    let set = controller.berth_stdin(&["secret", "set", "kept/default", "API_KEY"], "k3y-value\n");
    assert_eq!(set.code, 0, "{}", set.stderr);

    // Taken while the controller serves and a deployment runs.
    let slow = write_bundle(
        controller.dir.path(),
        "slow",
        MANIFEST,
        &[("setup.sh", "#!/bin/sh\nsleep 1\necho slow done\n")],
    );
    let running = id_of(&controller.deploy_detached(&slow, &[]).json());
    let file = controller.dir.path().join("store.backup");
    let wrote = ok(&controller_cmd(
        &["backup", "--out", file.to_str().expect("path")],
        &data_dir(&controller),
    ));
    assert!(wrote.contains("entries, sha256"), "{wrote}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file)
        .expect("backup file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let _ = controller.wait_quiet(&running);

    // Into a new, empty database: the same history, lines and secret.
    controller.stop();
    let target = postgres::fresh_schema(&server);
    let restored = ok(&controller_cmd(
        &[
            "restore",
            "--from",
            file.to_str().expect("path"),
            "--store",
            &target,
        ],
        &data_dir(&controller),
    ));
    assert!(restored.contains("restored"), "{restored}");
    controller.resume();
    same_history(&controller, &ids, &logs, &listed);
    // The one that ran during the backup is there, as the snapshot saw it.
    let during = controller.show(&running);
    assert_eq!(during["id"], running.as_str());
    let secrets = controller.berth(&["secret", "ls"]).ok();
    assert!(secrets.contains("API_KEY"), "{secrets}");
    agent
        .process()
        .expect_logged("connected to the controller", 2, "web-1");
    // The snapshot may have caught it before its agent started it: the
    // restored controller sends it again, and it ends before the next
    // deploys of its app.
    let ended = controller.wait_quiet(&running);
    assert!(
        ["deployed", "failed"].contains(&ended["status"].as_str().unwrap_or_default()),
        "{ended:#}"
    );
    history(&controller);

    // The restored database is not restored into again.
    controller.stop();
    let again = controller_cmd(
        &["restore", "--from", file.to_str().expect("path")],
        &data_dir(&controller),
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds records"));
}

#[test]
fn a_sled_store_is_backed_up_stopped_and_a_damaged_file_is_refused() {
    let mut controller = Controller::start_on_sled();
    let _agent = Agent::join(&controller, "web-1", "role=web");
    let (ids, logs, listed) = history(&controller);
    let file = controller.dir.path().join("store.backup");
    let backup = ["backup", "--out", file.to_str().expect("path")];

    // A serving controller holds its sled store.
    let refused = controller_cmd(&backup, &data_dir(&controller));
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("controller stopped"), "{stderr}");

    controller.stop();
    ok(&controller_cmd(&backup, &data_dir(&controller)));
    let store = data_dir(&controller).join("store");
    std::fs::rename(&store, data_dir(&controller).join("store.lost")).expect("move the store");

    // A damaged file writes nothing.
    let mut damaged = std::fs::read(&file).expect("read");
    let at = damaged.len() / 3;
    damaged[at] ^= 0x10;
    let bad = controller.dir.path().join("damaged.backup");
    std::fs::write(&bad, damaged).expect("write");
    let refused = controller_cmd(
        &["restore", "--from", bad.to_str().expect("path")],
        &data_dir(&controller),
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("nothing was restored"), "{stderr}");
    std::fs::remove_dir_all(&store).expect("remove the empty store");

    ok(&controller_cmd(
        &["restore", "--from", file.to_str().expect("path")],
        &data_dir(&controller),
    ));
    controller.resume();
    same_history(&controller, &ids, &logs, &listed);
}
