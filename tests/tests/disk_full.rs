//! The controller's disk fills up in the middle of a deployment, then space
//! is freed: the controller refuses new work with a clear error while it
//! cannot store it, says so in `berth health` and `berth status`, and takes
//! work again by itself once there is room, without a restart. Nothing it
//! acknowledged is lost, and the lines it could not store arrive later.

use std::io::Write;
use std::time::Duration;

use berth_tests::{
    Agent, Controller, DEADLINE, eventually, eventually_or, id_of, skip, write_bundle,
};

/// Prints, waits for the test to release it, then prints until it is told
/// to stop: more than fits in the room the store has already taken on the
/// disk, however much that is.
const SETUP: &str = r#"#!/bin/sh
echo "before 1"
echo "before 2"
i=0
while [ ! -e "$BERTH_WORK_DIR/release" ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done
n=0
while [ ! -e "$BERTH_WORK_DIR/stop" ] && [ $n -lt 2000000 ]; do
    seq $((n + 1)) $((n + 1000)) | sed 's/^/after /; s/$/ of the lines that need more room than the disk has left/'
    n=$((n + 1000))
    sleep 0.05
done
echo "stopped after $n"
"#;

fn manifest(version: &str) -> String {
    format!(
        "app = \"full\"\nversion = \"{version}\"\n[target]\nhosts = [\"h1\"]\n[setup]\nrun = [\"./setup.sh\"]\ntimeout = \"5m\"\n"
    )
}

/// Lets the script go on, and with `stop` end at once.
fn release(agent: &Agent, deployment: &str, stop: bool) {
    let work = agent.dir.join("work").join(deployment);
    if stop {
        std::fs::write(work.join("stop"), b"").expect("stop");
    }
    std::fs::write(work.join("release"), b"").expect("release");
}

/// Fills the file system holding `dir` with one file; returns its path.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("create the filler");
    let block = vec![0u8; 1 << 20];
    while file.write_all(&block).is_ok() {}
    // The last partial block.
    while file.write_all(&block[..4096]).is_ok() {}
    path
}

#[test]
fn a_full_disk_refuses_work_then_recovers_without_a_restart() {
    if berth_tests::postgres::not_for_postgres(
        "a_full_disk_refuses_work_then_recovers_without_a_restart",
        "it fills the disk under the sled store; a PostgreSQL store is not on it",
    ) {
        return;
    }
    let Some(mut controller) = Controller::start_on_tmpfs(48, &[]) else {
        skip(
            "a_full_disk_refuses_work_then_recovers_without_a_restart",
            "root to mount a tmpfs",
        );
        return;
    };
    let agent = Agent::join(&controller, "h1", "role=web");
    let root = controller.dir.path().to_path_buf();
    let bundle = |version: &str| {
        write_bundle(
            &root,
            &format!("full-{version}"),
            &manifest(version),
            &[("setup.sh", &SETUP.replace("before", version))],
        )
    };

    // An acknowledged deployment before the disk fills.
    let first = id_of(&controller.deploy_detached(&bundle("v1"), &[]).json());
    let follow = controller.berth_spawn(&["logs", &first, "-f"]);
    assert!(follow.stdout.wait_for("v1 2", DEADLINE).is_some());
    release(&agent, &first, true);
    let done = controller.wait_quiet(&first);
    assert_eq!(done["status"], "deployed", "{done:#}");

    // A second one runs while the disk fills.
    let second = id_of(&controller.deploy_detached(&bundle("v2"), &[]).json());
    let follow = controller.berth_spawn(&["logs", &second, "-f"]);
    assert!(follow.stdout.wait_for("v2 2", DEADLINE).is_some());
    let filler = fill(&controller.dir.path().join("controller"));
    release(&agent, &second, false);

    // The controller notices and says so.
    let unhealthy = eventually(
        "berth health failing",
        60,
        Duration::from_millis(500),
        || {
            let health = controller.berth(&["health"]);
            (health.code == 1).then_some(health.stdout)
        },
    );
    assert!(
        unhealthy.contains("No space left on device") && unhealthy.contains("free"),
        "{unhealthy}"
    );
    let status = controller.berth(&["status"]);
    assert!(
        status.stderr.contains("cannot store new work"),
        "berth status warns: {}",
        status.stderr
    );
    let refused = controller.deploy_detached(&bundle("v3"), &[]);
    assert_eq!(
        refused.code, 5,
        "a new deploy is refused: {}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("cannot be written") && refused.stderr.contains("free disk space"),
        "the refusal names the cause and the way out: {}",
        refused.stderr
    );
    assert!(
        controller.log().contains("the store cannot be written"),
        "the log says so"
    );

    // Space comes back: the controller takes work again by itself.
    std::fs::remove_file(&filler).expect("free the disk");
    std::fs::write(agent.dir.join("work").join(&second).join("stop"), b"").expect("stop");
    eventually_or(
        "berth health passing again",
        120,
        Duration::from_millis(500),
        || (controller.berth(&["health"]).code == 0).then_some(()),
        || controller.log(),
    );
    assert!(
        controller.is_running(),
        "nobody had to start the controller again"
    );

    // The lines it could not store arrive; nothing acknowledged is lost.
    let done = controller.wait_quiet(&second);
    assert_eq!(done["status"], "deployed", "{done:#}\n{}", controller.log());
    let lines = controller.stdout_lines(&second, None);
    let printed: usize = lines
        .last()
        .and_then(|last| last.strip_prefix("stopped after "))
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("the script ran to its end: {:?}", lines.last()));
    let mut expected = vec!["v2 1".to_string(), "v2 2".to_string()];
    expected.extend(
        (1..=printed)
            .map(|n| format!("after {n} of the lines that need more room than the disk has left")),
    );
    expected.push(format!("stopped after {printed}"));
    assert!(
        lines == expected,
        "every line exactly once, in order ({printed} printed, {} stored)",
        lines.len()
    );
    // Acknowledged before the disk filled, and still there (replaced by
    // the second, as it should be).
    assert_eq!(controller.show(&first)["status"], "superseded");

    let third = id_of(&controller.deploy_detached(&bundle("v3"), &[]).json());
    let follow = controller.berth_spawn(&["logs", &third, "-f"]);
    assert!(follow.stdout.wait_for("v3 2", DEADLINE).is_some());
    release(&agent, &third, true);
    let done = controller.wait_quiet(&third);
    assert_eq!(done["status"], "deployed", "{done:#}");
}
