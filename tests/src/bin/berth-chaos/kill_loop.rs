//! `kill-loop` (reliability.md T2, with T1's reconnect): K real
//! `berth-agent` processes each run a deployment whose script floods
//! numbered lines; meanwhile the controller is killed with SIGKILL N times
//! at random points and restarted on the same store. Just before each kill
//! one more short deployment is created, so every kill lands right after an
//! acknowledged write. At the end every flood is released and every
//! deployment must end in its true state (the scripts' exit codes decide:
//! every third flood fails on purpose), with every line it printed read
//! back by `berth logs` exactly once and in order.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use berth_tests::loadgen::rand_below;
use berth_tests::stats::percentile;
use berth_tests::{Controller, DEADLINE, Running, fleet, id_of};

use crate::flood::{self, Flood};
use crate::options::Options;
use crate::report::{Outcome, count};

const CONNECTED: &str = "connected to the controller";
/// Longest random pause between an agent fleet being back and the next kill.
const MAX_PAUSE_MS: u64 = 4_000;

/// A deployment created during the run and the end it must reach.
struct Created {
    id: String,
    app: String,
    /// The host its lines come from.
    host: String,
    expected: &'static str,
    /// Prints until released.
    unlimited: bool,
}

pub fn run(options: &Options) -> Result<Outcome> {
    let (agents, kills) = (options.flood_agents, options.kills);
    let mut outcome = Outcome::new(
        "kill-loop (T1, T2)",
        format!(
            "{kills} kill -9s of the controller at random points (0-{}s apart) while {agents} real agents stream numbered lines at {} lines/s each; a deployment is acknowledged just before each kill; restart on the same store after each",
            MAX_PAUSE_MS / 1000,
            options.flood_rate
        ),
    );
    let mut controller = Controller::start_with(&["--trigger-limit", "0", "--lost-grace", "10m"]);
    let runtime = fleet::runtime()?;
    let fleet = fleet::start_agents(&runtime, &controller, "flood", agents, |_| {
        "role=flood".to_string()
    })?;
    let names: Vec<String> = (0..agents)
        .map(|index| format!("flood-{index:05}"))
        .collect();
    let mut created = start_floods(&controller, &names, options.flood_rate)?;
    let mut reconnects = Vec::new();
    let mut restarts = Vec::new();
    for kill in 1..=kills {
        std::thread::sleep(Duration::from_millis(rand_below(MAX_PAUSE_MS)));
        created.push(acknowledged(&controller, kill, &names[kill % agents])?);
        let before: Vec<usize> = fleet
            .iter()
            .map(|(_, agent)| agent.stderr.count(CONNECTED))
            .collect();
        let killed = Instant::now();
        controller.kill9();
        controller.restart();
        let listening = Instant::now();
        restarts.push(listening - killed);
        reconnects.extend(wait_reconnected(&fleet, &before, listening)?);
        eprintln!(
            "kill-loop: kill {kill} of {kills}: back in {:.2}s, agents reconnected",
            (listening - killed).as_secs_f64()
        );
    }
    let checked = settle(&controller, &fleet, &created, &mut outcome)?;
    outcome.check(
        true,
        &format!("the store reopened after each of {kills} kills"),
        String::new(),
    );
    outcome.figure("kills survived", count(kills as u64));
    outcome.figure("lines checked", count(checked));
    outcome.figure("deployments checked", count(created.len() as u64));
    let millis = |durations: &[Duration]| {
        let mut sorted: Vec<f64> = durations.iter().map(Duration::as_secs_f64).collect();
        sorted.sort_by(f64::total_cmp);
        (
            percentile(&sorted, 0.5),
            sorted.last().copied().unwrap_or(f64::NAN),
        )
    };
    let (median, max) = millis(&reconnects);
    outcome.figure(
        "agent reconnect after restart, median / max",
        format!(
            "{median:.3} s / {max:.3} s ({} reconnects)",
            reconnects.len()
        ),
    );
    let (median, max) = millis(&restarts);
    outcome.figure(
        "kill to listening again, median / max",
        format!("{median:.3} s / {max:.3} s"),
    );
    Ok(outcome)
}

/// Starts one flood deployment per agent, each pinned to its agent.
fn start_floods(controller: &Controller, names: &[String], rate: u32) -> Result<Vec<Created>> {
    let burst = (rate / 10).max(1);
    let mut created = Vec::new();
    for (index, host) in names.iter().enumerate() {
        let app = format!("flood-{index}");
        let target = format!("hosts = [\"{host}\"]");
        let flood = Flood {
            app: &app,
            target: &target,
            burst,
            limit: 0,
            exit_code: if index % 3 == 2 { 3 } else { 0 },
        };
        let bundle = flood.bundle(controller, 1);
        let id = deploy(controller, &bundle)?;
        created.push(Created {
            id,
            expected: flood.expected_status(),
            app,
            host: host.clone(),
            unlimited: true,
        });
    }
    Ok(created)
}

/// Creates the short deployment acknowledged just before kill `kill`.
fn acknowledged(controller: &Controller, kill: usize, host: &str) -> Result<Created> {
    let app = format!("acked-{kill}");
    let target = format!("hosts = [\"{host}\"]");
    let flood = Flood {
        app: &app,
        target: &target,
        burst: 20,
        limit: 20,
        exit_code: 0,
    };
    let id = deploy(controller, &flood.bundle(controller, 1))?;
    Ok(Created {
        id,
        expected: flood.expected_status(),
        app,
        host: host.to_string(),
        unlimited: false,
    })
}

fn deploy(controller: &Controller, bundle: &std::path::Path) -> Result<String> {
    let created = controller.deploy_detached(bundle, &[]);
    if created.code != 0 {
        bail!("deploy {} failed: {}", bundle.display(), created.stderr);
    }
    Ok(id_of(
        &serde_json::from_str(&created.stdout).context("deployment JSON")?,
    ))
}

/// Waits until every agent logged one more connection than `before`;
/// returns how long after `listening` each one did.
fn wait_reconnected(
    fleet: &[(PathBuf, Running)],
    before: &[usize],
    listening: Instant,
) -> Result<Vec<Duration>> {
    let mut times = Vec::new();
    for ((dir, agent), seen) in fleet.iter().zip(before) {
        let at = agent
            .stderr
            .wait_for_nth(CONNECTED, seen + 1, DEADLINE)
            .with_context(|| {
                format!(
                    "agent {} did not reconnect within {DEADLINE:?}:\n{}",
                    dir.display(),
                    agent.log_tail()
                )
            })?;
        times.push(at.saturating_duration_since(listening));
    }
    Ok(times)
}

/// Releases the floods, waits for every deployment to finish and checks
/// its end and its lines; returns the lines checked.
fn settle(
    controller: &Controller,
    fleet: &[(PathBuf, Running)],
    created: &[Created],
    outcome: &mut Outcome,
) -> Result<u64> {
    for deployment in created.iter().filter(|created| created.unlimited) {
        let index = fleet_index(&deployment.host)?;
        flood::release(&fleet[index].0, &deployment.id)
            .with_context(|| format!("release {}", deployment.app))?;
    }
    let (mut lines, mut wrong_end, mut wrong_lines) = (0, Vec::new(), Vec::new());
    for deployment in created {
        let done = controller.wait_quiet(&deployment.id);
        let status = done["status"].as_str().unwrap_or("?");
        if status != deployment.expected {
            wrong_end.push(format!(
                "{} ended {status}, not {}",
                deployment.app, deployment.expected
            ));
        }
        match flood::check(&controller.stdout_lines(&deployment.id, None)) {
            Ok(checked) => lines += checked + 1,
            Err(what) => wrong_lines.push(format!("{}: {what}", deployment.app)),
        }
    }
    outcome.check(
        wrong_end.is_empty(),
        &format!(
            "all {} deployments ended in their true state",
            created.len()
        ),
        wrong_end.join(", "),
    );
    outcome.check(
        wrong_lines.is_empty(),
        "every line read back exactly once and in order",
        wrong_lines.join(", "),
    );
    Ok(lines)
}

/// The index in the fleet of host `flood-NNNNN`.
fn fleet_index(host: &str) -> Result<usize> {
    host.strip_prefix("flood-")
        .and_then(|index| index.parse().ok())
        .with_context(|| format!("unexpected host name {host}"))
}
