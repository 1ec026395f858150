//! The `api` scenario's follow half: the log flood of [`flood`], followed
//! by an HTTP client on `GET /api/v1/deployments/{id}/logs?follow=true`
//! instead of `berth logs -f`. Each `line` event's data is parsed as the
//! log line it carries; latency is from the line being printed to its
//! event being parsed. Every line must arrive exactly once: the count per
//! host and printed number is checked, and the stream must close with
//! `end`.

use std::collections::HashMap;

use anyhow::{Context as _, Result, bail};
use berth_shared::record::LogEntry;
use berth_tests::Controller;

use crate::api_client::{Connection, Events};
use crate::flood::{self, Flood, Seen};

/// What one followed flood measured.
pub struct Followed {
    pub lines: u64,
    pub stored_secs: f64,
    pub produced_secs: f64,
    pub latencies_ms: Vec<f64>,
    /// CPU seconds of the controller and of the bench (the client) while
    /// the stream was read.
    pub controller_cpu_secs: f64,
    pub client_cpu_secs: f64,
    /// Printed lines no event carried, and events carrying a line again.
    pub missing: u64,
    pub repeated: u64,
}

/// Runs one flood (`rate` 0: as fast as the scripts can) and follows it
/// over the API with `token`.
pub fn measure(
    controller: &Controller,
    token: &str,
    app: &str,
    agents: usize,
    lines: u64,
    rate: u64,
) -> Result<Followed> {
    let pid = controller.process().pid();
    let runtime = crate::api::runtime()?;
    let cpu_before = (flood::cpu_secs(pid), flood::cpu_secs(std::process::id()));
    let flood = flood::start(controller, app, agents, lines, rate)?;
    let (seen, counts) = runtime.block_on(follow(controller, token, &flood, lines))?;
    let controller_cpu_secs = flood::cpu_secs(pid) - cpu_before.0;
    let client_cpu_secs = flood::cpu_secs(std::process::id()) - cpu_before.1;
    let stored_secs = flood::stored_secs(controller, &flood)?;
    let mut missing = 0;
    let mut repeated = 0;
    for host in counts.values() {
        missing += host.iter().filter(|count| **count == 0).count() as u64;
        repeated += host
            .iter()
            .map(|count| u64::from(count.saturating_sub(1)))
            .sum::<u64>();
    }
    missing += (agents - counts.len().min(agents)) as u64 * lines;
    Ok(Followed {
        lines: flood.expected,
        stored_secs,
        produced_secs: seen.produced_secs(),
        latencies_ms: seen.latencies_ms,
        controller_cpu_secs,
        client_cpu_secs,
        missing,
        repeated,
    })
}

/// Reads the event stream until `end`: the latencies, and per host how
/// many times each printed line number arrived.
async fn follow(
    controller: &Controller,
    token: &str,
    flood: &Flood,
    lines: u64,
) -> Result<(Seen, HashMap<String, Vec<u32>>)> {
    let mut connection = Connection::open(&controller.http_url, token).await?;
    let path = format!("/api/v1/deployments/{}/logs?follow=true", flood.id);
    let mut events = Events::of(connection.send("GET", &path, None).await?).await?;
    let mut seen = Seen::with_capacity(flood.expected);
    let mut counts: HashMap<String, Vec<u32>> = HashMap::new();
    let per_host = usize::try_from(lines).context("lines per host")?;
    loop {
        let Some(event) = events.next().await? else {
            bail!(
                "the event stream closed without `end` after {} lines",
                seen.lines()
            );
        };
        match event.name.as_str() {
            "line" => {
                if event.id.is_none() {
                    bail!("a line event without an id: {}", event.data);
                }
                let entry: LogEntry = serde_json::from_str(&event.data)
                    .with_context(|| format!("a line event's data: {}", event.data))?;
                if !seen.line(&entry.line) {
                    continue;
                }
                let number = printed_number(&entry.line)
                    .with_context(|| format!("the line number of `{}`", entry.line))?;
                let host = counts
                    .entry(entry.host)
                    .or_insert_with(|| vec![0; per_host]);
                match host.get_mut(number) {
                    Some(count) => *count += 1,
                    None => bail!("line number {number} of {per_host}: {}", entry.line),
                }
            }
            "end" => return Ok((seen, counts)),
            "error" => bail!("the event stream failed: {}", event.data),
            _ => {}
        }
    }
}

/// The number `emit` printed in a line (`TAG NUMBER t=... ...`).
fn printed_number(line: &str) -> Option<usize> {
    line.split(' ').nth(1)?.parse().ok()
}
