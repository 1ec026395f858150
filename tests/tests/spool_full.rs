//! An agent's spool on a full disk while the controller is away: the
//! stage runs to its end, the agent keeps a bounded amount in memory and
//! drops the rest with a marker saying how many lines, and reports the
//! result once the controller is back (reliability T8).

use std::time::Duration;

use berth_tests::{Agent, Controller, DEADLINE, eventually, id_of, skip, write_bundle};

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
