//! The HTTP API (#17): listing deployments with 100,000 stored
//! (`api_list`), and following a deployment's logs as server-sent events
//! under the log flood (`api_follow`), beside `berth logs -f` of the
//! `logs` scenario. Each half has a controller of its own, serving the API
//! on loopback; the bench calls it with an API token the admin made.

use anyhow::{Context as _, Result, bail};
use berth_tests::Controller;

use crate::api_client::Connection;
use crate::stats::{Goal, Row, Stat};
use crate::{api_follow, api_list, api_page, flood};

pub fn run(quick: bool) -> Result<Vec<Row>> {
    let mut rows = list(quick)?;
    rows.extend(follow(quick)?);
    Ok(rows)
}

/// An API token of the admin (`berth api-tokens create`).
fn token(controller: &Controller) -> Result<String> {
    if controller.http_url.is_empty() {
        bail!("the controller serves no HTTP API");
    }
    let made = controller.berth(&["api-tokens", "create", "--name", "bench"]);
    if made.code != 0 {
        bail!("berth api-tokens create: {}", made.stderr);
    }
    Ok(made.stdout.trim().to_string())
}

/// A one-thread runtime for the bench's HTTP clients.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("a tokio runtime")
}

fn list(quick: bool) -> Result<Vec<Row>> {
    let records: u64 = if quick { 10_000 } else { 100_000 };
    let controller = Controller::start();
    let token = token(&controller)?;
    runtime()?.block_on(async {
        let seeded = api_list::seed(&controller, &token, records).await?;
        eprintln!("  seeded {} records in {:.1}s", seeded.records, seeded.secs);
        let mut connection = Connection::open(&controller.http_url, &token).await?;
        api_list::check_count(&mut connection, records).await?;
        let mut rows = vec![Row::single(
            "api: POST /api/v1/deployment-events, records made per second (seeding, 8 connections)",
            &format!("{records} records"),
            "records/s",
            seeded.records as f64 / seeded.secs,
            Goal::None,
        )];
        rows.extend(api_list::rows(&mut connection, records, quick).await?);
        rows.extend(api_page::rows(&controller, records, api_list::APPS as usize, quick).await?);
        Ok(rows)
    })
}

fn follow(quick: bool) -> Result<Vec<Row>> {
    let agents = 4;
    let per_agent: u64 = if quick { 50_000 } else { 500_000 };
    let controller = Controller::start_with(&["--trigger-limit", "0"]);
    let token = token(&controller)?;
    let _agents = flood::agents(&controller, agents);
    let flooded = api_follow::measure(&controller, &token, "flood", agents, per_agent, 0)?;
    let paced = api_follow::measure(&controller, &token, "paced", agents, 25_000, 2_500)?;
    let n = format!("{agents} agents x {per_agent} lines");
    let paced_n = format!("{agents} agents x 2,500 lines/s");
    let mut rows = vec![
        Row::single(
            "api: lines stored per second while the event stream follows (flood)",
            &n,
            "lines/s",
            flooded.lines as f64 / flooded.stored_secs,
            Goal::None,
        ),
        Row::single(
            "api: lines printed per second by the scripts (flood)",
            &n,
            "lines/s",
            flooded.lines as f64 / flooded.produced_secs,
            Goal::None,
        ),
        Row::new(
            "api: follow latency, printed to parsed from GET .../logs?follow=true events (flood)",
            &n,
            "ms",
            &flooded.latencies_ms,
            Goal::Below(Stat::P99, 100.0, "p99 under 100 ms"),
        ),
        Row::single(
            "api: controller CPU per line while the event stream follows (flood)",
            &n,
            "µs",
            flooded.controller_cpu_secs * 1e6 / flooded.lines as f64,
            Goal::None,
        ),
        Row::single(
            "api: event stream client (the bench) CPU per line parsed (flood)",
            &n,
            "µs",
            flooded.client_cpu_secs * 1e6 / flooded.lines as f64,
            Goal::None,
        ),
        Row::new(
            "api: follow latency, printed to parsed from GET .../logs?follow=true events (paced)",
            &paced_n,
            "ms",
            &paced.latencies_ms,
            Goal::Below(Stat::P99, 100.0, "p99 under 100 ms"),
        ),
    ];
    for (run, followed) in [("flood", &flooded), ("paced", &paced)] {
        let mut row = Row::single(
            &format!("api: lines the event stream carried ({run})"),
            &format!("{} lines printed", followed.lines),
            "lines",
            followed.latencies_ms.len() as f64,
            Goal::None,
        );
        row.goal = if followed.missing == 0 && followed.repeated == 0 {
            "met (each line exactly once)".to_string()
        } else {
            format!(
                "MISSED (each line exactly once: {} missing, {} repeated)",
                followed.missing, followed.repeated
            )
        };
        rows.push(row);
    }
    Ok(rows)
}
