//! Where a deployment comes from, through the real binaries: `berth deploy
//! --message --ref --sha --build-url` and a CI job's variables are
//! recorded and shown; the run's start, end and duration are kept; a
//! retry is triggered `retry`; `berth ls --mine` lists the caller's own.

use berth_tests::{Agent, Controller, id_of, write_bundle};

#[test]
fn a_deployment_records_why_from_what_and_how_long() {
    let controller = Controller::start();
    let _agent = Agent::join(&controller, "solo", "role=web");
    let manifest = "app = \"shop\"\n[target]\nhosts = [\"solo\"]\n[setup]\nrun = [\"true\"]\n";
    let bundle = write_bundle(controller.dir.path(), "shop", manifest, &[]);
    let bundle = bundle.to_str().expect("path");
    // Flags win; what they leave comes from the CI job's variables.
    let deployed = controller.berth_env(
        &controller.admin(),
        &[
            "deploy",
            "--bundle",
            bundle,
            "--message",
            "fix the login",
            "--sha",
            "0a1b2c3d",
            "-o",
            "json",
        ],
        &[
            ("GITHUB_SHA", "ffffffffffffffffffffffffffffffffffffffff"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_SERVER_URL", "https://git.example"),
            ("GITHUB_REPOSITORY", "team/shop"),
            ("GITHUB_RUN_ID", "77"),
        ],
    );
    assert_eq!(deployed.code, 0, "{}", deployed.stderr);
    let id = id_of(&serde_json::from_str(&deployed.stdout).expect("json"));
    let shown = controller.berth(&["show", &id, "-o", "json"]).json();
    assert_eq!(shown["message"], "fix the login");
    assert_eq!(shown["commit_sha"], "0a1b2c3d", "the flag wins");
    assert_eq!(shown["source_ref"], "main");
    assert_eq!(
        shown["build_url"],
        "https://git.example/team/shop/actions/runs/77"
    );
    assert_eq!(shown["trigger"], "cli");
    let started = shown["started_at"].as_str().expect("started");
    let finished = shown["finished_at"].as_str().expect("finished");
    assert!(started <= finished, "{started} .. {finished}");
    assert!(shown["duration_ms"].as_u64().is_some(), "{shown:#}");
    let human = controller.berth(&["show", &id]).stdout;
    for line in [
        "message:      fix the login",
        "commit:       0a1b2c3d",
        "trigger:      cli",
    ] {
        assert!(human.contains(line), "{line:?} in:\n{human}");
    }

    // A value no commit has is refused before anything is created.
    let bad = controller.berth(&[
        "deploy",
        "--bundle",
        bundle,
        "--sha",
        "not-a-sha",
        "--detach",
    ]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("sha `not-a-sha`"), "{}", bad.stderr);

    // Mine: the admin's, and none for a user who deployed nothing.
    let mine = controller.berth(&["ls", "--mine", "-o", "json"]).json();
    assert_eq!(mine.as_array().map(Vec::len), Some(1), "{mine}");
    assert_eq!(
        controller
            .berth(&["users", "add", "ana", "--role", "viewer"])
            .code,
        0
    );
    let ana = controller.dir.path().join("ana.conf");
    let out = ana.to_str().expect("path");
    assert_eq!(
        controller
            .berth(&["users", "credential", "ana", "--out", out])
            .code,
        0
    );
    let hers = controller
        .berth_with(&ana, &["ls", "--mine", "-o", "json"])
        .json();
    assert_eq!(hers.as_array().map(Vec::len), Some(0), "{hers}");
    let by_admin = controller
        .berth_with(&ana, &["ls", "--by", "admin", "-o", "json"])
        .json();
    assert_eq!(by_admin.as_array().map(Vec::len), Some(1), "{by_admin}");
}
