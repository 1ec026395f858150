//! Resources beside the app (#21), against a real private Docker daemon.
//! App `notes` runs with resource `db`, a busybox key-value store keeping
//! its keys in the named volume `data:/data`; the app's container adds one
//! to the key `hits` in `db:6379` when it starts and serves the count it
//! got as `/count`. So the count an app answers after a deploy says whether
//! the store's data survived. One test function owns the daemon, one
//! controller and one agent, and runs the scenarios in order: the data
//! across app deploys and a snapshotted replacement of the store (with its
//! output in `berth logs` and its row in `berth inspect`), a store failing
//! its health check, two environments apart, then stop and delete with and
//! without the resource flags.

use std::os::unix::fs::PermissionsExt;

use berth_tests::docker::{Dockerd, host_port, http_get};
use berth_tests::resource::{
    self, BROKEN_COMMAND, KV_COMMAND, KV_IMAGE, KV_IMAGE_NEXT, app_states, has_network,
    networks_of, resource_row, resource_rows, rows_of, stored, volumes,
};
use berth_tests::{Agent, Controller, id_of, write_bundle};
use serde_json::Value;

const APP: &str = "notes";
const HOST: &str = "box-1";
/// The health timeout of a store that works; generous for a loaded CI host.
const HEALTHY_WITHIN: &str = "30s";

/// The app network of `notes` in `environment` on `box-1`.
fn network(environment: &str) -> String {
    format!("berth-{APP}-{environment}-{HOST}")
}

/// The named volume of `db` in `environment` on `box-1`.
fn volume(environment: &str) -> String {
    format!("berth-{APP}-{environment}-{HOST}-db-data")
}

/// `[resources.db]` of `image` running `command`, checked over TCP for at
/// most `timeout`; with `snapshot = true` when `snapshot`.
fn db(image: &str, command: &str, timeout: &str, snapshot: bool) -> String {
    resource::db_section(image, command, timeout, snapshot)
}

/// Version `version` of `notes` in `environment` with the resource section
/// `resources`.
fn manifest(environment: &str, version: &str, resources: &str) -> String {
    resource::counter_manifest(APP, HOST, environment, version, resources)
}

fn deploy(
    controller: &Controller,
    environment: &str,
    version: &str,
    resources: &str,
) -> (i32, Value, String) {
    let bundle = write_bundle(
        controller.dir.path(),
        &format!("{environment}-{version}"),
        &manifest(environment, version, resources),
        &[],
    );
    controller.deploy(&bundle)
}

/// A deployed version: its deployment id, the host port of its app and
/// the names of its stages.
struct Deployed {
    id: String,
    port: String,
    stages: Vec<String>,
}

/// Deploys, asserting it deployed and that its app answers `count`.
fn deploy_counted(
    controller: &Controller,
    environment: &str,
    version: &str,
    resources: &str,
    count: &str,
) -> Deployed {
    let (code, deployment, stderr) = deploy(controller, environment, version, resources);
    assert_eq!(code, 0, "{environment} {version}: {stderr}\n{deployment:#}");
    assert_eq!(deployment["status"], "deployed", "{deployment:#}");
    let deployed = Deployed {
        id: id_of(&deployment),
        port: host_port(&deployment, 0),
        stages: deployment["tasks"][0]["stages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|stage| stage["stage"].as_str().map(str::to_string))
            .collect(),
    };
    assert_eq!(
        counted(&deployed.port),
        count,
        "the count after deploy {version} in {environment}"
    );
    deployed
}

/// What the app on `port` answers at `/count`.
fn counted(port: &str) -> String {
    http_get(port, "/count").map_or_else(|| "no answer".into(), |body| body.trim().to_string())
}

#[test]
fn resources_beside_the_app() {
    let Some(dockerd) = Dockerd::start("resources_beside_the_app") else {
        return;
    };
    resource::import(&dockerd);
    let controller = Controller::start_with(&["--trigger-limit", "100"]);
    let agent = Agent::join_with_args(
        &controller,
        HOST,
        "role=db",
        &["--docker-host", &dockerd.host],
    );
    let staging =
        data_survives_app_deploys_and_a_snapshotted_replacement(&controller, &agent, &dockerd);
    let staging =
        an_unhealthy_store_fails_the_deploy_and_the_old_one_stays(&controller, &dockerd, staging);
    let production = environments_have_their_own_network_and_data(&controller, &dockerd, &staging);
    stop_and_delete_leave_the_store_unless_asked(&controller, &dockerd, production);
    staging_is_untouched(&dockerd, &staging);
    a_snapshot_restores_the_data_it_holds(&controller, &dockerd, &staging);
}

/// Asserts that the one container of `db` in `environment` is `id`, in
/// Docker's `state`.
#[track_caller]
fn store_is(dockerd: &Dockerd, environment: &str, id: &str, state: &str) {
    let row = resource_row(dockerd, APP, environment, "db");
    assert_eq!(
        (row.id.as_str(), row.state.as_str()),
        (id, state),
        "db in {environment}"
    );
}

/// The app in staging now, and its store's container id.
struct Staging {
    app: Deployed,
    store: String,
}

fn data_survives_app_deploys_and_a_snapshotted_replacement(
    controller: &Controller,
    agent: &Agent,
    dockerd: &Dockerd,
) -> Staging {
    let kept = db(KV_IMAGE, KV_COMMAND, HEALTHY_WITHIN, false);
    deploy_counted(controller, "staging", "1", &kept, "1");
    let first = resource_row(dockerd, APP, "staging", "db").id;
    store_is(dockerd, "staging", &first, "running");
    for version in ["2", "3"] {
        deploy_counted(controller, "staging", version, &kept, version);
        // An unchanged store is left alone: the same container.
        store_is(dockerd, "staging", &first, "running");
    }
    the_store_shows_in_logs_and_inspect(controller);

    // A new image, snapshotted first: a new container on the same data.
    let replaced = db(KV_IMAGE_NEXT, KV_COMMAND, HEALTHY_WITHIN, true);
    let app = deploy_counted(controller, "staging", "4", &replaced, "4");
    let at = |name: &str| app.stages.iter().position(|stage| stage == name);
    assert!(
        at("resources").is_some() && at("resources") < at("deploy"),
        "the resources stage runs before deploy: {:?}",
        app.stages
    );
    let store = resource_row(dockerd, APP, "staging", "db").id;
    assert_ne!(store, first, "a changed spec: a new container");
    store_is(dockerd, "staging", &store, "running");
    one_snapshot_holding_the_count_before(controller, agent, "3");
    Staging { app, store }
}

/// `berth logs --resource` shows what the store printed; `berth inspect`
/// lists the store beside the app's own container.
fn the_store_shows_in_logs_and_inspect(controller: &Controller) {
    let logs = controller
        .berth(&["logs", APP, "--env", "staging", "--resource", "db"])
        .ok();
    assert!(logs.contains("kv store ready"), "{logs}");
    let inspect = controller.berth(&["inspect", APP, "-o", "json"]).json();
    let (stores, own) = (rows_of(&inspect, "db"), rows_of(&inspect, ""));
    assert_eq!((stores.len(), own.len()), (1, 1), "{inspect:#}");
    let store = &stores[0];
    assert_eq!(store["image"], KV_IMAGE, "{store:#}");
    assert_eq!(store["state"], "running", "{store:#}");
    assert!(
        store["volumes"].is_array() && store["volumes"].to_string().contains("/data"),
        "its volume: {store:#}"
    );
    // `berth status` has it from the host's next heartbeat.
    let status = berth_tests::eventually(
        "berth status showing the store",
        60,
        std::time::Duration::from_millis(500),
        || {
            let status = controller.berth(&["status", "-o", "json"]).json();
            let resources: Vec<Value> = status
                .as_array()
                .into_iter()
                .flatten()
                .filter(|row| row["app"] == APP && row["environment"] == "staging")
                .flat_map(|row| row["host_states"].as_array().cloned().unwrap_or_default())
                .flat_map(|host| host["resources"].as_array().cloned().unwrap_or_default())
                .collect();
            let shown = resources.into_iter().find(|row| {
                row["name"] == "db" && row["state"] == "running" && row["health"] == "healthy"
            });
            shown.map(|row| (status.clone(), row))
        },
    );
    assert!(
        status.1["volumes"].to_string().contains("/data") && status.1["image"] == KV_IMAGE,
        "{:#}",
        status.0
    );
    let text = controller.berth(&["status"]).ok();
    assert!(text.contains("resource db running"), "{text}");
}

/// `berth resource snapshots notes --env staging -o json`.
fn staging_snapshots(controller: &Controller) -> Value {
    let args = [
        "resource",
        "snapshots",
        APP,
        "--env",
        "staging",
        "-o",
        "json",
    ];
    controller.berth(&args).json()
}

/// `berth resource snapshots` lists one snapshot of `db` in staging, the
/// file is under the agent's data directory (0600), and it holds the key
/// `hits` with `count`.
fn one_snapshot_holding_the_count_before(controller: &Controller, agent: &Agent, count: &str) {
    let listed = staging_snapshots(controller);
    let of_db = rows_of(&listed, "db");
    assert_eq!(of_db.len(), 1, "one snapshot of db: {listed:#}");
    let file_name =
        resource::tar_named(&of_db[0]).unwrap_or_else(|| panic!("a .tar file name: {listed:#}"));
    let dir = agent.dir.join(format!("snapshots/{APP}/staging/db"));
    assert_eq!(
        resource::files_in(&dir),
        [file_name.as_str()],
        "in {}",
        dir.display()
    );
    assert!(file_name.starts_with("data-"), "{file_name}");
    let path = dir.join(&file_name);
    let mode = std::fs::metadata(&path).map(|file| file.permissions().mode() & 0o777);
    assert_eq!(mode.ok(), Some(0o600), "{file_name}");
    assert_eq!(
        resource::archived(&path, "hits").as_deref(),
        Some(count),
        "the key hits in {file_name}"
    );
}

/// A store that never listens fails the deploy at `resources`; the old
/// store runs again with its data, the old app keeps answering, and the
/// good spec again is left alone.
fn an_unhealthy_store_fails_the_deploy_and_the_old_one_stays(
    controller: &Controller,
    dockerd: &Dockerd,
    staging: Staging,
) -> Staging {
    let broken = db(KV_IMAGE_NEXT, BROKEN_COMMAND, "3s", true);
    let (code, failed, stderr) = deploy(controller, "staging", "5", &broken);
    assert_ne!(code, 0, "{stderr}\n{failed:#}");
    let shown = controller.show(&id_of(&failed));
    assert_eq!(shown["status"], "failed", "{shown:#}");
    assert_eq!(shown["error_step"], "resources", "{shown:#}");
    assert!(
        shown.to_string().contains("kv broken"),
        "the store's last lines: {shown:#}"
    );
    assert_eq!(
        counted(&staging.app.port),
        "4",
        "the old app keeps answering"
    );
    assert_eq!(app_states(dockerd, APP, "staging"), ["running"]);
    store_is(dockerd, "staging", &staging.store, "running");
    assert_eq!(stored(dockerd, &staging.store, "hits"), "4");

    let good = db(KV_IMAGE_NEXT, KV_COMMAND, HEALTHY_WITHIN, true);
    let app = deploy_counted(controller, "staging", "6", &good, "5");
    store_is(dockerd, "staging", &staging.store, "running");
    Staging {
        app,
        store: staging.store,
    }
}

/// Production gets its own network, store and volume: its count starts
/// at 1 while staging's stays.
fn environments_have_their_own_network_and_data(
    controller: &Controller,
    dockerd: &Dockerd,
    staging: &Staging,
) -> Deployed {
    let kept = db(KV_IMAGE, KV_COMMAND, HEALTHY_WITHIN, false);
    deploy_counted(controller, "production", "1", &kept, "1");
    let production = deploy_counted(controller, "production", "2", &kept, "2");
    let store = resource_row(dockerd, APP, "production", "db");
    let pairs = [
        ("staging", "production", &staging.store),
        ("production", "staging", &store.id),
    ];
    for (environment, other, id) in pairs {
        let attached = networks_of(dockerd, id);
        assert!(
            attached.contains(&network(environment)) && !attached.contains(&network(other)),
            "the {environment} store is on its own network: {attached:?}"
        );
        assert_eq!(volumes(dockerd, APP, environment), [volume(environment)]);
    }
    assert_eq!(stored(dockerd, &store.id, "hits"), "2");
    assert_eq!(stored(dockerd, &staging.store, "hits"), "5");
    assert_eq!(counted(&staging.app.port), "5");
    production
}

/// `berth stop` and `berth delete` in production, with and without the
/// resource flags.
fn stop_and_delete_leave_the_store_unless_asked(
    controller: &Controller,
    dockerd: &Dockerd,
    production: Deployed,
) {
    let env = "production";
    let kept = db(KV_IMAGE, KV_COMMAND, HEALTHY_WITHIN, false);
    let lifecycle = |args: &[&str], status: &str| {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let done = controller.berth(&all).json();
        assert_eq!(done["status"], status, "{args:?}: {done:#}");
    };
    let all_exited =
        |states: Vec<String>| !states.is_empty() && states.iter().all(|s| s == "exited");
    let store = resource_row(dockerd, APP, env, "db").id;

    lifecycle(&["stop", APP, "--env", env], "stopped");
    assert!(all_exited(app_states(dockerd, APP, env)));
    assert_eq!(counted(&production.port), "no answer", "the app is stopped");
    assert_eq!(resource_row(dockerd, APP, env, "db").state, "running");

    let third = deploy_counted(controller, env, "3", &kept, "3");
    lifecycle(&["stop", APP, "--env", env, "--with-resources"], "stopped");
    assert!(all_exited(app_states(dockerd, APP, env)));
    store_is(dockerd, env, &store, "exited");

    lifecycle(&["delete", &third.id], "deleted");
    assert!(app_states(dockerd, APP, env).is_empty());
    assert_eq!(resource_row(dockerd, APP, env, "db").id, store);
    assert_eq!(volumes(dockerd, APP, env), [volume(env)]);
    assert!(has_network(dockerd, &network(env)));

    // The stopped store is started again, not replaced.
    let fourth = deploy_counted(controller, env, "4", &kept, "4");
    store_is(dockerd, env, &store, "running");

    lifecycle(&["delete", &fourth.id, "--with-resources"], "deleted");
    assert!(app_states(dockerd, APP, env).is_empty());
    assert!(resource_rows(dockerd, APP, env, "db").is_empty());
    assert!(!has_network(dockerd, &network(env)));
    assert_eq!(
        volumes(dockerd, APP, env),
        [volume(env)],
        "the volume stays"
    );

    // A new store on the kept volume.
    let fifth = deploy_counted(controller, env, "5", &kept, "5");
    assert_ne!(resource_row(dockerd, APP, env, "db").id, store);
    for confirm in [&[][..], &["--confirm", "WRONG"][..]] {
        let mut args = vec!["delete", fifth.id.as_str(), "--purge-volumes", "-o", "json"];
        args.extend(confirm);
        let refused = controller.berth(&args);
        assert_ne!(refused.code, 0, "{args:?}: {}", refused.stdout);
        assert!(
            format!("{}{}", refused.stdout, refused.stderr).contains("resource/confirm"),
            "{args:?}: {}\n{}",
            refused.stdout,
            refused.stderr
        );
        assert_eq!(counted(&fifth.port), "5", "nothing removed after {args:?}");
        assert_eq!(app_states(dockerd, APP, env), ["running"]);
        assert_eq!(resource_row(dockerd, APP, env, "db").state, "running");
        assert_eq!(volumes(dockerd, APP, env), [volume(env)]);
    }
    lifecycle(
        &["delete", &fifth.id, "--purge-volumes", "--confirm", APP],
        "deleted",
    );
    assert!(resource::containers(dockerd, APP, env).is_empty());
    assert!(volumes(dockerd, APP, env).is_empty());
    assert!(!has_network(dockerd, &network(env)));
}

/// `berth resource restore` puts the snapshot (taken at count 3) back:
/// the store runs again on a volume holding 3, and the next deploy leaves
/// the restored store alone and counts on from there.
fn a_snapshot_restores_the_data_it_holds(
    controller: &Controller,
    dockerd: &Dockerd,
    staging: &Staging,
) {
    let listed = staging_snapshots(controller);
    let file = resource::tar_named(&rows_of(&listed, "db")[0]).expect("a snapshot");
    let restore = |snapshot: &str| {
        let args = [
            "resource",
            "restore",
            APP,
            snapshot,
            "--env",
            "staging",
            "--resource",
            "db",
            "--host",
            HOST,
            "-o",
            "json",
        ];
        controller.berth(&args)
    };
    let unknown = restore("data-20000101T000000000Z.tar");
    assert_ne!(unknown.code, 0);
    assert!(
        unknown.stdout.contains("snapshot/not-found")
            || unknown.stderr.contains("snapshot/not-found"),
        "{unknown:?}"
    );
    assert_eq!(
        stored(dockerd, &staging.store, "hits"),
        "5",
        "a refused restore changes nothing"
    );
    let restored = restore(&file).ok();
    assert!(
        restored.contains("copied") && restored.contains(HOST),
        "{restored}"
    );
    let store = resource_row(dockerd, APP, "staging", "db");
    assert_eq!(store.state, "running");
    assert_eq!(
        stored(dockerd, &store.id, "hits"),
        "3",
        "the snapshot's data"
    );
    let good = db(KV_IMAGE_NEXT, KV_COMMAND, HEALTHY_WITHIN, true);
    deploy_counted(controller, "staging", "7", &good, "4");
    store_is(dockerd, "staging", &store.id, "running");

    // A store stopped behind berth's back is started again by the agent,
    // as the app's own container would be.
    dockerd.docker_ok(&["stop", "-t", "1", &store.id]);
    berth_tests::eventually(
        "the agent starting the store again",
        60,
        std::time::Duration::from_millis(500),
        || (resource_row(dockerd, APP, "staging", "db").state == "running").then_some(()),
    );
    store_is(dockerd, "staging", &store.id, "running");

    // A resource taken out of the manifest is stopped once the next
    // deploy took over; its volume stays, the others run on.
    let extra = format!(
        "{good}[resources.extra]\nimage = \"{KV_IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\nstop_timeout = \"1s\"\nvolumes = [\"scratch:/scratch\"]\n"
    );
    deploy_counted(controller, "staging", "8", &extra, "5");
    assert_eq!(
        resource_row(dockerd, APP, "staging", "extra").state,
        "running"
    );
    deploy_counted(controller, "staging", "9", &good, "6");
    assert_eq!(
        resource_row(dockerd, APP, "staging", "extra").state,
        "exited"
    );
    store_is(dockerd, "staging", &store.id, "running");
    assert_eq!(
        volumes(dockerd, APP, "staging").len(),
        2,
        "both volumes stay"
    );
}

/// Nothing done to production touched staging.
fn staging_is_untouched(dockerd: &Dockerd, staging: &Staging) {
    assert!(has_network(dockerd, &network("staging")));
    assert_eq!(volumes(dockerd, APP, "staging"), [volume("staging")]);
    store_is(dockerd, "staging", &staging.store, "running");
    assert_eq!(stored(dockerd, &staging.store, "hits"), "5");
    assert_eq!(counted(&staging.app.port), "5");
}
