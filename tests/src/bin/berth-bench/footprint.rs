//! Footprint: one real agent connected and idle for a minute (resident
//! memory sampled every second, CPU time over the whole minute), the
//! controller beside it, and the sizes of the release binaries.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use berth_tests::{Agent, Controller, bin};

use crate::stats::{Goal, Row, Stat};
use berth_tests::procfs;

pub fn run(quick: bool) -> Result<Vec<Row>> {
    let window = Duration::from_secs(if quick { 15 } else { 60 });
    let controller = Controller::start();
    let agent = Agent::join(&controller, "idle-1", "role=idle");
    let agent_pid = agent.process().pid();
    let controller_pid = procfs::controller_pid(&controller.dir.path().join("controller"))?;
    // Let start-up work (the first facts, the hello) settle.
    std::thread::sleep(Duration::from_secs(5));
    let agent_before = procfs::cpu_time(agent_pid).context("agent CPU")?;
    let controller_before = procfs::cpu_time(controller_pid).context("controller CPU")?;
    let started = Instant::now();
    let mut agent_rss = Vec::new();
    let mut controller_rss = Vec::new();
    while started.elapsed() < window {
        std::thread::sleep(Duration::from_secs(1));
        agent_rss.extend(procfs::rss_kib(agent_pid).map(|kib| kib as f64 / 1024.0));
        controller_rss.extend(procfs::rss_kib(controller_pid).map(|kib| kib as f64 / 1024.0));
    }
    let seconds = started.elapsed().as_secs_f64();
    let agent_cpu = procfs::cpu_time(agent_pid).context("agent CPU")? - agent_before;
    let controller_cpu =
        procfs::cpu_time(controller_pid).context("controller CPU")? - controller_before;
    let n = format!("1 agent, {}s", window.as_secs());
    let mut rows = vec![
        Row::new(
            "footprint: agent idle RSS",
            &n,
            "MiB",
            &agent_rss,
            Goal::Below(Stat::P99, 15.0, "under 15 MiB"),
        ),
        Row::single(
            "footprint: agent idle CPU",
            &n,
            "% of a core",
            100.0 * agent_cpu.as_secs_f64() / seconds,
            Goal::Below(Stat::Median, 0.2, "under 0.2 %"),
        ),
        Row::new(
            "footprint: controller RSS with one idle agent",
            &n,
            "MiB",
            &controller_rss,
            Goal::None,
        ),
        Row::single(
            "footprint: controller CPU with one idle agent",
            &n,
            "% of a core",
            100.0 * controller_cpu.as_secs_f64() / seconds,
            Goal::None,
        ),
    ];
    for name in ["berth-agent", "berth-controller", "berth"] {
        rows.push(Row::single(
            &format!("footprint: release binary size, {name}"),
            "1 file",
            "MiB",
            procfs::file_mib(&bin(name)),
            Goal::None,
        ));
    }
    drop(agent);
    Ok(rows)
}
