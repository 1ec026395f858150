//! Controller scale: N simulated agents (real mTLS streams from the load
//! generator, see `berth_tests::loadgen`) connected and heartbeating at the default
//! interval; the controller's resident memory per connected agent, its CPU
//! while the fleet idles, and the wall time of a fleet-wide `berth inspect`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use berth_tests::Controller;
use tokio::sync::Semaphore;

use crate::stats::{Goal, Row, Stat};
use berth_tests::loadgen::{Counters, Shared};
use berth_tests::procfs;

/// Fleet-wide inspects timed per fleet size.
const INSPECTS: usize = 7;
/// How long CPU is measured while the fleet idles.
const IDLE_WINDOW: Duration = Duration::from_secs(30);

pub fn run(quick: bool) -> Result<Vec<Row>> {
    let steps: &[usize] = if quick { &[1_000] } else { &[1_000, 10_000] };
    let total = steps.iter().copied().max().unwrap_or(1);
    let runtime = berth_tests::fleet::runtime()?;
    let controller = Controller::start();
    let pid = procfs::controller_pid(&controller.dir.path().join("controller"))?;
    let started = Instant::now();
    let enrolled = berth_tests::fleet::enroll(
        &runtime,
        &controller,
        "sim",
        total,
        |index| format!("fleet=sim,half={}", if index % 2 == 0 { "a" } else { "b" }),
        32,
    )
    .with_context(|| format!("controller log:\n{}", tail(&controller.log(), 30)))?;
    eprintln!(
        "scale: {total} agents enrolled in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let shared = Arc::new(Shared {
        url: controller.url.clone(),
        ca_pem: berth_tests::fleet::ca_pem(&controller)?,
        counters: Counters::default(),
        connecting: Semaphore::new(64),
    });
    std::thread::sleep(Duration::from_secs(3));
    let base = procfs::rss_kib(pid).context("controller RSS")?;
    let mut rows = Vec::new();
    let mut connected = 0;
    for &step in steps {
        let previous = connected;
        let started = Instant::now();
        for identity in &enrolled[connected..step] {
            runtime.spawn(berth_tests::loadgen::agent(
                shared.clone(),
                identity.clone(),
            ));
        }
        while shared.counters.welcomed() < step as u64 {
            if started.elapsed() > Duration::from_secs(300) {
                bail!(
                    "only {} of {step} simulated agents connected; last error: {}",
                    shared.counters.welcomed(),
                    shared.counters.last_error()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let connect_secs = started.elapsed().as_secs_f64();
        connected = step;
        eprintln!("scale: {step} agents connected ({connect_secs:.1}s for this step)");
        // Two heartbeat rounds, so every session is in its steady state.
        std::thread::sleep(Duration::from_secs(12));
        rows.extend(measure(&controller, pid, base, (step, total), &shared)?);
        rows.push(Row::single(
            "scale: time to connect the step's agents (64 handshakes at a time)",
            &format!("{} agents", step - previous),
            "s",
            connect_secs,
            Goal::None,
        ));
    }
    let failures = shared
        .counters
        .failures
        .load(std::sync::atomic::Ordering::Relaxed);
    if failures > 0 {
        let last = shared.counters.last_error();
        rows.push(Row::note(
            "scale: simulated sessions that ended",
            &format!("{failures}; last: {last}"),
        ));
    }
    runtime.shutdown_timeout(Duration::from_secs(5));
    Ok(rows)
}

fn measure(
    controller: &Controller,
    pid: u32,
    base_kib: u64,
    (agents, enrolled): (usize, usize),
    shared: &Shared,
) -> Result<Vec<Row>> {
    let n = if agents < enrolled {
        format!("{agents} online of {enrolled} enrolled")
    } else {
        format!("{agents} agents")
    };
    let rss = procfs::rss_kib(pid).context("controller RSS")?;
    let per_agent = (rss.saturating_sub(base_kib)) as f64 / agents as f64;
    let own = std::process::id();
    let (controller_before, bench_before) = (procfs::cpu_time(pid), procfs::cpu_time(own));
    let beats_before = shared
        .counters
        .heartbeats
        .load(std::sync::atomic::Ordering::Relaxed);
    let window = Instant::now();
    std::thread::sleep(IDLE_WINDOW);
    let seconds = window.elapsed().as_secs_f64();
    let percent = |before: Option<Duration>, after: Option<Duration>| match (before, after) {
        (Some(before), Some(after)) => 100.0 * (after - before).as_secs_f64() / seconds,
        _ => f64::NAN,
    };
    let controller_cpu = percent(controller_before, procfs::cpu_time(pid));
    let bench_cpu = percent(bench_before, procfs::cpu_time(own));
    let beats = shared
        .counters
        .heartbeats
        .load(std::sync::atomic::Ordering::Relaxed)
        - beats_before;
    eprintln!(
        "scale: {agents} agents: controller RSS {rss} KiB (base {base_kib}), {:.0} heartbeats/s, load generator CPU {bench_cpu:.1}%",
        beats as f64 / seconds
    );
    let inspect_goal = if agents >= 10_000 {
        Goal::Below(Stat::Median, 2.0, "10,000 agents under 2 s")
    } else {
        Goal::None
    };
    let mut rows = vec![
        Row::single(
            "scale: controller RSS per connected agent",
            &n,
            "KiB",
            per_agent,
            Goal::Below(Stat::Median, 100.0, "under 100 KiB"),
        ),
        Row::single(
            "scale: controller RSS total",
            &n,
            "MiB",
            rss as f64 / 1024.0,
            Goal::None,
        ),
        Row::single(
            "scale: controller CPU while the fleet idles (heartbeats every 5 s)",
            &n,
            "% of a core",
            controller_cpu,
            Goal::None,
        ),
        inspect(controller, (agents, &n), "", inspect_goal),
    ];
    if agents >= 10_000 {
        // Half the fleet, as an operator can split it today.
        let half = agents / 2;
        rows.push(inspect(
            controller,
            (half, &format!("{half} agents")),
            "half=a",
            Goal::None,
        ));
    }
    Ok(rows)
}

/// Times `berth inspect -o json [--selector S]` over `agents` hosts, or
/// says why it failed.
pub fn inspect(
    controller: &Controller,
    (agents, n): (usize, &str),
    selector: &str,
    goal: Goal,
) -> Row {
    let scenario = if selector.is_empty() {
        "scale: berth inspect across the fleet, CLI start to exit".to_string()
    } else {
        format!("scale: berth inspect --selector {selector}, CLI start to exit")
    };
    let mut walls = Vec::new();
    for _ in 0..INSPECTS {
        let mut args = vec!["inspect", "-o", "json"];
        if !selector.is_empty() {
            args.extend(["--selector", selector]);
        }
        let started = Instant::now();
        let out = controller.berth(&args);
        let wall = started.elapsed().as_secs_f64();
        if out.code != 0 {
            return Row::note(
                &scenario,
                &format!(
                    "FAILED over {agents} agents (exit {}): {}",
                    out.code,
                    out.stderr.trim()
                ),
            );
        }
        let answered = serde_json::from_str::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|hosts| {
                hosts
                    .as_array()
                    .map(|hosts| hosts.iter().filter(|host| host["answered"] == true).count())
            })
            .unwrap_or(0);
        if answered != agents {
            return Row::note(
                &scenario,
                &format!("FAILED: {answered} of {agents} agents answered"),
            );
        }
        walls.push(wall);
    }
    Row::new(&scenario, n, "s", &walls, goal)
}

/// The last `lines` lines of a log.
fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
