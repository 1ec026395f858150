//! Dispatch latency: from a deployment being accepted (its `created_at`,
//! stamped by the controller) to the agent starting its first stage (that
//! stage's `started_at`, stamped by the agent), both clocks of this
//! machine. Every deploy ships a new tiny bundle, so each one includes the
//! assignment, the bundle download and its unpacking.
//!
//! Then the same again on a controller with five webhook endpoints that
//! take every delivery's connection and never answer (each attempt waits
//! out its 15 s limit, then retries): a deploy's events go into the
//! webhook outbox in the deployment's own transaction, and sending them
//! must not slow the deploy.

use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use berth_shared::record::Deployment;
use berth_tests::{Agent, Controller, write_bundle};

use crate::stats::{Goal, Row, Stat};

pub fn run(quick: bool) -> Result<Vec<Row>> {
    let deploys = if quick { 20 } else { 100 };
    let n = format!("{deploys} deploys");
    let (latencies, walls) = measure(deploys, 0)?;
    let (hooked, hooked_walls) = measure(deploys, 5)?;
    let with = format!("{n}, 5 webhook endpoints that never answer");
    Ok(vec![
        Row::new(
            "dispatch: deploy accepted to first stage started",
            &n,
            "ms",
            &latencies,
            Goal::Below(Stat::P99, 20.0, "p99 under 20 ms"),
        ),
        Row::new(
            "dispatch: berth deploy of a one-command bundle, CLI start to exit",
            &n,
            "ms",
            &walls,
            Goal::None,
        ),
        Row::new(
            "dispatch with webhooks: deploy accepted to first stage started",
            &with,
            "ms",
            &hooked,
            Goal::Below(Stat::P99, 20.0, "p99 under 20 ms, as without"),
        ),
        Row::new(
            "dispatch with webhooks: berth deploy, CLI start to exit",
            &with,
            "ms",
            &hooked_walls,
            Goal::None,
        ),
    ])
}

/// A listener that takes connections and never answers; it lives as long
/// as the process.
fn black_hole() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("bind")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    Ok(port)
}

/// Deploys `deploys` times (after two warm-ups) on a fresh controller with
/// `webhooks` silent endpoints; the dispatch latencies and CLI walls.
fn measure(deploys: usize, webhooks: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    // No trigger limit: the bench deploys one app many times a minute.
    let controller = Controller::start_with(&["--trigger-limit", "0"]);
    let _agent = Agent::join(&controller, "dispatch-1", "role=dispatch");
    for _ in 0..webhooks {
        let url = format!("http://127.0.0.1:{}/hook", black_hole()?);
        let added = controller.berth(&["webhook", "add", "--url", &url]);
        if added.code != 0 {
            bail!("webhook add failed: {}", added.stderr);
        }
    }
    timed_deploys(&controller, "dispatch", deploys)
}

/// Deploys app `role` to the agent labelled `role=ROLE` through `via`,
/// `deploys` times after two warm-ups, each with a new tiny bundle: the
/// dispatch latencies (accepted to first stage started) and CLI walls.
pub fn timed_deploys(via: &Controller, role: &str, deploys: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let mut latencies = Vec::new();
    let mut walls = Vec::new();
    for index in 0..deploys + 2 {
        let manifest = format!(
            "app = \"{role}\"\nversion = \"v{index}\"\n[target]\nlabels = {{ role = \"{role}\" }}\n[setup]\nrun = [\"true\"]\n"
        );
        let bundle = write_bundle(
            via.dir.path(),
            &format!("{role}-{index}"),
            &manifest,
            &[("VERSION", &format!("{index}\n"))],
        );
        let started = Instant::now();
        let (code, deployment, stderr) = via.deploy(&bundle);
        let wall = started.elapsed().as_secs_f64() * 1000.0;
        if code != 0 {
            bail!("deploy {index} to {role} failed ({code}):\n{stderr}");
        }
        let deployment: Deployment =
            serde_json::from_value(deployment).context("read the deployment")?;
        let first = deployment
            .tasks
            .first()
            .and_then(|task| task.stages.first())
            .context("a first stage")?;
        if index >= 2 {
            latencies.push((first.started_at.0 - deployment.created_at.0) as f64);
            walls.push(wall);
        }
    }
    Ok((latencies, walls))
}
