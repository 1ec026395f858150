//! Bad input: every mistake is reported clearly, with the right exit code,
//! and nothing hostile is written anywhere.

use berth_tests::bundle::{RawEntry, write_raw};
use berth_tests::{Agent, Controller, id_of, write_bundle};

#[test]
fn a_manifest_with_three_mistakes_reports_all_three() {
    let controller = Controller::start();
    let manifest = "app = \"Bad App\"\n[target]\nlabels = { role = \"web\" }\nmax_parallel = 0\n[setup]\nrun = [\"./ok.sh\"]\ntimeout = \"forever\"\n";
    let bundle = write_bundle(controller.dir.path(), "bad", manifest, &[]);
    let result = controller.berth(&["deploy", "--bundle", bundle.to_str().expect("path")]);
    assert_eq!(result.code, 2, "{result:?}");
    for expected in [
        "3 errors",
        "app: `Bad App`",
        "target.max_parallel: must be at least 1",
        "setup.timeout: `forever` is not a duration",
    ] {
        assert!(
            result.stderr.contains(expected),
            "missing {expected:?} in:\n{}",
            result.stderr
        );
    }
    let listed = controller.berth(&["ls", "-o", "json"]).json();
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(0),
        "nothing was created"
    );
}

#[test]
fn a_symlink_leaving_the_bundle_is_refused_by_the_cli() {
    let controller = Controller::start();
    let manifest = "app = \"linky\"\n[target]\nhosts = [\"nobody\"]\n[setup]\nrun = [\"true\"]\n";
    let bundle = write_bundle(controller.dir.path(), "linky", manifest, &[]);
    std::os::unix::fs::symlink("/etc", bundle.join("escape")).expect("symlink");
    let result = controller.berth(&["deploy", "--bundle", bundle.to_str().expect("path")]);
    assert_eq!(result.code, 2, "{result:?}");
    assert!(
        result.stderr.contains("escape") && result.stderr.contains("outside the bundle"),
        "{}",
        result.stderr
    );
}

#[test]
fn a_hostile_tarball_is_refused_by_the_agent_before_it_writes_anything() {
    let controller = Controller::start();
    let agent = Agent::join(&controller, "target", "role=web");
    let manifest = "app = \"evil\"\n[target]\nhosts = [\"target\"]\n[setup]\nrun = [\"true\"]\n";
    let manifest_dir = write_bundle(controller.dir.path(), "evil", manifest, &[]);
    let victim = controller.dir.path().join("victim");
    let escape = format!(
        "../../../../../../../..{}",
        victim.join("planted").display()
    );
    let absolute = controller.dir.path().join("absolute-planted");
    let archive = controller.dir.path().join("evil.tar.gz");
    write_raw(
        &archive,
        &[
            RawEntry {
                name: "harmless.txt",
                kind: tar::EntryType::Regular,
                link: "",
                data: b"fine",
            },
            RawEntry {
                name: &escape,
                kind: tar::EntryType::Regular,
                link: "",
                data: b"owned",
            },
            RawEntry {
                name: absolute.to_str().expect("path"),
                kind: tar::EntryType::Regular,
                link: "",
                data: b"owned",
            },
        ],
    );
    let result = controller.berth(&[
        "deploy",
        "-f",
        manifest_dir.join("berth.toml").to_str().expect("path"),
        "--bundle-tar",
        archive.to_str().expect("path"),
        "-o",
        "json",
    ]);
    assert_eq!(result.code, 1, "{result:?}");
    let deployment: serde_json::Value = serde_json::from_str(&result.stdout).expect("json");
    assert_eq!(deployment["status"], "failed");
    let message = deployment["error_message"].as_str().expect("message");
    assert!(
        message.contains("refused before anything was written") && message.contains(".."),
        "{message}"
    );
    assert!(!victim.join("planted").exists() && !victim.exists());
    assert!(!absolute.exists());
    let work = agent.dir.join("work").join(id_of(&deployment));
    assert!(!work.exists(), "no work directory for a refused bundle");
    let leftovers: Vec<_> = std::fs::read_dir(agent.dir.join("work"))
        .map(|dir| dir.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        leftovers.is_empty(),
        "nothing unpacked, not even partly: {leftovers:?}"
    );
}

#[test]
fn unknown_ids_missing_targets_and_offline_hosts_are_named() {
    let controller = Controller::start();
    let unknown = controller.berth(&["show", "01JD5ZQ4W0R8S1T2V3X4Y5Z6A7"]);
    assert_eq!(unknown.code, 4, "{unknown:?}");
    assert!(
        unknown.stderr.contains("01JD5ZQ4W0R8S1T2V3X4Y5Z6A7")
            && unknown.stderr.contains("not found")
    );
    // Not an id: an app name, and there is no such app.
    let malformed = controller.berth(&["logs", "not-an-id"]);
    assert_eq!(malformed.code, 4, "{malformed:?}");
    assert!(
        malformed
            .stderr
            .contains("`not-an-id` is neither a deployment id nor an app"),
        "{}",
        malformed.stderr
    );

    let mut agent = Agent::join(&controller, "sleepy", "role=db");
    let web = write_bundle(
        controller.dir.path(),
        "web",
        "app = \"web\"\n[target]\nlabels = { role = \"web\", zone = \"eu\" }\n",
        &[],
    );
    let result = controller.berth(&["deploy", "--bundle", web.to_str().expect("path")]);
    assert_eq!(result.code, 1, "{result:?}");
    assert!(
        result.stderr.contains("no agent matches") && result.stderr.contains("role=web,zone=eu"),
        "{}",
        result.stderr
    );

    let ghost = write_bundle(
        controller.dir.path(),
        "ghost",
        "app = \"ghost\"\n[target]\nhosts = [\"ghost-1\"]\n",
        &[],
    );
    let result = controller.berth(&["deploy", "--bundle", ghost.to_str().expect("path")]);
    assert!(
        result.code == 1
            && result.stderr.contains("ghost-1")
            && result.stderr.contains("agents ls"),
        "{result:?}"
    );

    agent.kill9();
    let db = write_bundle(
        controller.dir.path(),
        "db",
        "app = \"db\"\n[target]\nlabels = { role = \"db\" }\n",
        &[],
    );
    let result = controller.berth(&["deploy", "--bundle", db.to_str().expect("path")]);
    assert!(
        result.code == 1 && result.stderr.contains("offline") && result.stderr.contains("sleepy"),
        "{result:?}"
    );
}

#[test]
fn a_container_deploy_to_a_host_without_docker_fails_at_once() {
    let controller = Controller::start();
    let socket = controller.dir.path().join("no-docker.sock");
    let docker_host = format!("unix://{}", socket.display());
    let _agent = Agent::join_with_args(
        &controller,
        "bare",
        "role=web",
        &["--docker-host", &docker_host],
    );
    let manifest =
        "app = \"boxed\"\n[target]\nhosts = [\"bare\"]\n[container]\nimage = \"hello:1\"\n";
    let bundle = write_bundle(controller.dir.path(), "boxed", manifest, &[]);
    let result = controller.berth(&["deploy", "--bundle", bundle.to_str().expect("path")]);
    assert_eq!(result.code, 1, "{result:?}");
    assert!(
        result.stderr.contains("bare") && result.stderr.contains(&docker_host),
        "names the host and the socket: {}",
        result.stderr
    );
    let listed = controller.berth(&["ls", "-o", "json"]).json();
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(0),
        "nothing was created"
    );
}
