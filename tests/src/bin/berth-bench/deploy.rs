//! Deploy overhead: a container deploy with a health check and a Caddy
//! route switch, against a private dockerd and Caddy, and how much of its
//! wall time is berth's own.
//!
//! Method. The agent reaches Docker only through the bench's timing proxy
//! (`docker_proxy.rs`), so every Docker API call's time is known from
//! outside berth. From the wall time of `berth deploy` (CLI start to exit)
//! the bench takes away the union of:
//! - Docker API calls (the heartbeats' version probes are left out: they
//!   run beside the deploy, not in its path);
//! - the start watch, from the agent's `created container` line to its
//!   `container ... is running` line: without `[health]` the new container
//!   must stay up for 2 s (`START_WATCH` in `agent/src/stage/docker.rs`);
//!   with it, as here, it is watched during the health stage instead, so
//!   this is about nothing;
//! - the health stage (probing the new container until it answers);
//! - the route switch, from the proxy stage's start to the agent's `Caddy
//!   routes ...` line (Caddy's admin API loading the new config).
//!
//! What is left is berth's own time: the CLI packing and uploading the
//! bundle, the controller storing and dispatching, the agent's work between
//! calls, and the events and acks travelling back.

use anyhow::{Context as _, Result, bail};
use berth_shared::record::{Deployment, LogEntry, StageResult};
use berth_tests::caddy::{Caddy, free_port};
use berth_tests::docker::Dockerd;
use berth_tests::{Agent, Controller, id_of, write_bundle};

use crate::docker_proxy::{Call, DockerProxy, covered};
use crate::emit::now_us;
use crate::stats::{Goal, Row};

const IMAGE: &str = "berth-bench/busybox:1";

/// Where one deploy's wall time went, in milliseconds.
#[derive(Default)]
struct Breakdown {
    wall: f64,
    docker: f64,
    start_watch: f64,
    health: f64,
    route: f64,
    own: f64,
}

pub fn run(quick: bool) -> Result<Vec<Row>> {
    let deploys = if quick { 3 } else { 10 };
    let Some(dockerd) = Dockerd::start("berth-bench deploy") else {
        return Ok(vec![Row::note(
            "deploy overhead",
            "skipped: needs dockerd, docker, busybox-static and root",
        )]);
    };
    dockerd.import_busybox(IMAGE);
    let Some(caddy) = Caddy::start("berth-bench deploy") else {
        return Ok(vec![Row::note("deploy overhead", "skipped: needs caddy")]);
    };
    let runtime = berth_tests::fleet::runtime()?;
    let controller = Controller::start_with(&["--trigger-limit", "0"]);
    let upstream = dockerd.host.trim_start_matches("unix://").to_string();
    let proxy = DockerProxy::start(
        &runtime,
        std::path::Path::new(&upstream),
        &controller.dir.path().join("docker-proxy.sock"),
    )?;
    let (http_port, https_port) = (caddy.http_port.to_string(), free_port().to_string());
    let _agent = Agent::join_with_args(
        &controller,
        "edge-1",
        "role=edge",
        &[
            "--docker-host",
            &proxy.host,
            "--caddy-admin",
            &caddy.admin,
            "--proxy-http-port",
            &http_port,
            "--proxy-https-port",
            &https_port,
        ],
    );
    let mut all = Vec::new();
    for index in 0..=deploys {
        let breakdown = deploy_once(&controller, &caddy, &proxy, index)?;
        // The first deploy has no old container to replace: a warm-up.
        if index > 0 {
            all.push(breakdown);
        }
    }
    let n = format!("{deploys} deploys");
    let column = |pick: fn(&Breakdown) -> f64| all.iter().map(pick).collect::<Vec<_>>();
    let rows = vec![
        Row::new(
            "deploy: berth deploy wall time (container + health + route switch)",
            &n,
            "ms",
            &column(|b| b.wall),
            Goal::None,
        ),
        Row::new(
            "deploy: of which Docker API calls",
            &n,
            "ms",
            &column(|b| b.docker),
            Goal::None,
        ),
        Row::new(
            "deploy: of which the start watch (2 s only without [health])",
            &n,
            "ms",
            &column(|b| b.start_watch),
            Goal::None,
        ),
        Row::new(
            "deploy: of which the health check (app answering)",
            &n,
            "ms",
            &column(|b| b.health),
            Goal::None,
        ),
        Row::new(
            "deploy: of which Caddy loading the route",
            &n,
            "ms",
            &column(|b| b.route),
            Goal::None,
        ),
        Row::new(
            "deploy: berth's own time (the rest)",
            &n,
            "ms",
            &column(|b| b.own),
            Goal::None,
        ),
    ];
    report_docker_calls(&proxy.calls());
    drop(runtime);
    Ok(rows)
}

fn manifest(index: usize) -> String {
    format!(
        r#"app = "site"
version = "v{index}"
[target]
hosts = ["edge-1"]
[container]
image = "{IMAGE}"
port = 8080
command = ["httpd", "-f", "-p", "8080", "-h", "/www"]
stop_timeout = "1s"
[health]
http = "/index.html"
interval = "200ms"
timeout = "10s"
[proxy]
domain = "site.bench"
tls = "off"
"#
    )
}

fn deploy_once(
    controller: &Controller,
    caddy: &Caddy,
    proxy: &DockerProxy,
    index: usize,
) -> Result<Breakdown> {
    let bundle = write_bundle(
        controller.dir.path(),
        &format!("site-{index}"),
        &manifest(index),
        &[("VERSION", &format!("{index}\n"))],
    );
    let (from, (code, deployment, stderr), to) = (now_us(), controller.deploy(&bundle), now_us());
    if code != 0 {
        bail!("container deploy {index} failed ({code}):\n{stderr}");
    }
    if caddy
        .get("site.bench", "/index.html")
        .map(|(status, _)| status)
        != Some(200)
    {
        bail!("site.bench does not answer through Caddy after deploy {index}");
    }
    let id = id_of(&deployment);
    let deployment: Deployment = serde_json::from_value(deployment)?;
    let logs: Vec<LogEntry> = controller
        .berth(&["logs", &id, "-o", "json"])
        .ok()
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .context("read the deploy's log")?;
    let line_at = |text: &str| {
        logs.iter()
            .find(|entry| entry.line.contains(text))
            .map(|entry| entry.ts.0 as u64 * 1000)
            .with_context(|| format!("no `{text}` line in deploy {index}'s log"))
    };
    let stage = |name: &str| -> Result<&StageResult> {
        deployment.tasks[0]
            .stages
            .iter()
            .find(|stage| stage.stage == name)
            .with_context(|| format!("no {name} stage in deploy {index}"))
    };
    let span = |stage: &StageResult| {
        let end = stage.finished_at.map_or(stage.started_at.0, |at| at.0);
        (stage.started_at.0 as u64 * 1000, end as u64 * 1000)
    };
    let docker = docker_spans(&proxy.calls());
    let watch = (line_at("created container")?, line_at("is running; port")?);
    let health = span(stage("health")?);
    let route = (span(stage("proxy")?).0, line_at("Caddy routes")?);
    let all: Vec<(u64, u64)> = docker
        .iter()
        .copied()
        .chain([watch, health, route])
        .collect();
    let ms = |us: u64| us as f64 / 1000.0;
    let wall = to - from;
    let breakdown = Breakdown {
        wall: ms(wall),
        docker: ms(covered(docker.clone(), from, to)),
        start_watch: ms(
            covered(vec![watch], watch.0, watch.1) - covered(docker.clone(), watch.0, watch.1)
        ),
        health: ms(covered(vec![health], from, to)),
        route: ms(covered(vec![route], from, to)),
        own: ms(wall - covered(all, from, to)),
    };
    Ok(breakdown)
}

/// Spans of the Docker calls on the deploy's path: connections that only
/// asked for the version are the heartbeats' probes.
fn docker_spans(calls: &[Call]) -> Vec<(u64, u64)> {
    let is_probe = |conn: u64| {
        calls
            .iter()
            .filter(|call| call.conn == conn)
            .all(|call| call.request.ends_with("/version") || call.request.ends_with("/_ping"))
    };
    calls
        .iter()
        .filter(|call| !is_probe(call.conn))
        .map(|call| (call.start_us, call.end_us))
        .collect()
}

/// Prints where Docker's time went, per kind of call, to stderr.
fn report_docker_calls(calls: &[Call]) {
    let mut kinds: std::collections::BTreeMap<String, (usize, u64)> = Default::default();
    for call in calls {
        let (method, path) = call.request.split_once(' ').unwrap_or(("?", &call.request));
        let path = path.split('?').next().unwrap_or(path);
        let shape: Vec<&str> = path
            .split('/')
            .map(|part| {
                if part.starts_with("berth-") || part.len() >= 32 {
                    "{name}"
                } else {
                    part
                }
            })
            .collect();
        let entry = kinds
            .entry(format!("{method} {}", shape.join("/")))
            .or_default();
        entry.0 += 1;
        entry.1 += call.end_us.saturating_sub(call.start_us);
    }
    eprintln!("deploy: Docker API calls over the whole run (count, total ms, mean ms):");
    for (kind, (count, total)) in kinds {
        eprintln!(
            "  {kind}: {count}, {:.1}, {:.2}",
            total as f64 / 1000.0,
            total as f64 / 1000.0 / count as f64
        );
    }
}
