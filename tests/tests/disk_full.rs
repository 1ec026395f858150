//! The controller's disk fills up in the middle of a deployment, then space
//! is freed: the controller refuses new work with a clear error while it
//! cannot store it, says so in `berth health` and `berth status`, and takes
//! work again by itself once there is room, without a restart. Nothing it
//! acknowledged is lost, and the lines it could not store arrive later.

use std::io::Write;
use std::time::Duration;

use berth_tests::{Agent, Controller, DEADLINE, eventually, id_of, skip, write_bundle};

/// Prints, waits for the test to release it, then prints more than fits in
/// the room the store has already taken on the disk.
const SETUP: &str = r#"#!/bin/sh
echo "before 1"
echo "before 2"
i=0
while [ ! -e "$BERTH_WORK_DIR/release" ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done
seq 1 20000 | sed 's/^/after /; s/$/ of the lines that need more room than the disk has left/'
"#;

fn manifest(version: &str) -> String {
    format!(
        "app = \"full\"\nversion = \"{version}\"\n[target]\nhosts = [\"h1\"]\n[setup]\nrun = [\"./setup.sh\"]\ntimeout = \"5m\"\n"
    )
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
    std::fs::write(agent.dir.join("work").join(&first).join("release"), b"").expect("release");
    let done = controller.wait_quiet(&first);
    assert_eq!(done["status"], "deployed", "{done:#}");

    // A second one runs while the disk fills.
    let second = id_of(&controller.deploy_detached(&bundle("v2"), &[]).json());
    let follow = controller.berth_spawn(&["logs", &second, "-f"]);
    assert!(follow.stdout.wait_for("v2 2", DEADLINE).is_some());
    let filler = fill(&controller.dir.path().join("controller"));
    std::fs::write(agent.dir.join("work").join(&second).join("release"), b"").expect("release");

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
    eventually(
        "berth health passing",
        120,
        Duration::from_millis(500),
        || (controller.berth(&["health"]).code == 0).then_some(()),
    );
    assert!(controller.is_running(), "the controller was not restarted");

    // The lines it could not store arrive; nothing acknowledged is lost.
    let done = controller.wait_quiet(&second);
    assert_eq!(done["status"], "deployed", "{done:#}\n{}", controller.log());
    let mut expected = vec!["v2 1".to_string(), "v2 2".to_string()];
    expected.extend(
        (1..=20000)
            .map(|n| format!("after {n} of the lines that need more room than the disk has left")),
    );
    assert_eq!(
        controller.stdout_lines(&second, None),
        expected,
        "every line exactly once, in order"
    );
    // Acknowledged before the disk filled, and still there (replaced by
    // the second, as it should be).
    assert_eq!(controller.show(&first)["status"], "superseded");

    let third = id_of(&controller.deploy_detached(&bundle("v3"), &[]).json());
    let follow = controller.berth_spawn(&["logs", &third, "-f"]);
    assert!(follow.stdout.wait_for("v3 2", DEADLINE).is_some());
    std::fs::write(agent.dir.join("work").join(&third).join("release"), b"").expect("release");
    let done = controller.wait_quiet(&third);
    assert_eq!(done["status"], "deployed", "{done:#}");
}

/// Waits for the release, prints about 85 MB, then leaves a mark.
const FLOOD: &str = r#"#!/bin/sh
echo "flood starts"
i=0
while [ ! -e "$BERTH_WORK_DIR/release" ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done
pad=$(printf '%0320d' 0)
seq 1 250000 | sed "s/\$/ $pad/"
echo "flood ends"
touch "$BERTH_WORK_DIR/finished"
"#;

/// The agent's spool is on a full disk while the controller is away: the
/// stage runs to its end, the agent keeps a bounded amount in memory and
/// drops the rest with a marker saying how many lines, and reports the
/// result once the controller is back.
#[test]
fn an_agent_whose_spool_cannot_be_written_stays_up_and_bounded() {
    let mut controller = Controller::start();
    let token = controller.token(&[]);
    let agent = Agent::join_with(&controller, "h1", "role=web", &token).expect("join");
    let spool = agent.dir.join("spool");
    std::fs::create_dir_all(&spool).expect("spool dir");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&spool)
        .status()
        .is_ok_and(|status| status.success());
    if !mounted {
        skip(
            "an_agent_whose_spool_cannot_be_written_stays_up_and_bounded",
            "root to mount a tmpfs",
        );
        return;
    }
    let _unmount = Unmount(spool.clone());
    let mut agent = agent.start();
    let manifest = "app = \"flood\"\n[target]\nhosts = [\"h1\"]\n[setup]\nrun = [\"./setup.sh\"]\ntimeout = \"10m\"\n";
    let bundle = write_bundle(
        controller.dir.path(),
        "flood",
        manifest,
        &[("setup.sh", FLOOD)],
    );
    let id = id_of(&controller.deploy_detached(&bundle, &[]).json());
    let follow = controller.berth_spawn(&["logs", &id, "-f"]);
    assert!(follow.stdout.wait_for("flood starts", DEADLINE).is_some());
    drop(follow);

    controller.kill9();
    let work = agent.dir.join("work").join(&id);
    std::fs::write(work.join("release"), b"").expect("release");
    assert!(
        agent
            .process()
            .stderr
            .wait_for("spool write failed", DEADLINE)
            .is_some(),
        "the full spool is reported: {}",
        agent.process().log_tail()
    );
    eventually("the flood to end", 600, Duration::from_millis(500), || {
        work.join("finished").exists().then_some(())
    });
    let pid = agent.process().pid();
    assert!(agent.process_mut().is_running(), "the agent stayed up");
    let peak_kib = peak_rss_kib(pid);

    controller.restart();
    let done = controller.wait_quiet(&id);
    assert_eq!(done["status"], "deployed", "{done:#}");
    // What arrived is the flood's beginning, each line once and in order;
    // the rest is counted by the marker, so no line went unaccounted.
    let lines = controller.stdout_lines(&id, None);
    assert_eq!(lines.first().map(String::as_str), Some("flood starts"));
    let kept = lines.len() - 1;
    for (index, line) in lines[1..].iter().enumerate() {
        let number = line.split(' ').next().unwrap_or_default();
        assert_eq!(
            number,
            (index + 1).to_string(),
            "line {index} is {line:.40}"
        );
    }
    let logs = controller.berth(&["logs", &id]).ok();
    let marker = "log lines were dropped: this task's spool cannot be written";
    let dropped: usize = logs
        .lines()
        .find(|line| line.contains(marker))
        .and_then(|line| {
            let before = &line[..line.find(marker)?];
            before.split_whitespace().last()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("the loss is marked: {:.2000}", logs));
    assert!(kept < 250_000, "some lines had to go: kept {kept}");
    assert_eq!(
        kept + dropped,
        250_001,
        "kept and dropped lines add up to all the flood's lines"
    );
    // About 85 MB went through; the agent kept at most its 64 MiB
    // memory allowance of it, and far less than the whole.
    assert!(
        peak_kib < 160 * 1024,
        "the agent's memory stayed bounded: peak {peak_kib} KiB"
    );
    eprintln!("kept {kept} lines, dropped {dropped}, agent peak {peak_kib} KiB");
}

/// Unmounts a tmpfs on drop.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// The peak resident memory of a process (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}
