//! The `api` scenario's listing half: a controller holding N deployment
//! records, seeded through `POST /api/v1/deployment-events` (one record
//! per event: app, environment and version make it distinct) over a few
//! keep-alive connections at once, then `GET /api/v1/deployments` pages
//! timed from sending the request to the last byte of the answer, one
//! request at a time on one keep-alive connection, each answer checked to
//! be a full page.

use std::collections::HashSet;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use berth_tests::Controller;
use serde_json::{Value, json};

use crate::api_client::Connection;
use crate::stats::{Goal, Row, Stat};

/// Apps the records are spread over (`svc-00` ... `svc-99`).
pub const APPS: u64 = 100;
/// Connections seeding at once.
const SEEDERS: u64 = 8;
/// Requests before the timed ones of each shape.
const WARM_UPS: usize = 20;

/// How the store was filled.
pub struct Seeded {
    pub records: u64,
    pub secs: f64,
}

/// The event that makes record `index`: 100 apps, two environments, a
/// version of its own; one in 20 failed, one in 50 aborted, the rest
/// deployed; seven CI users.
fn event(index: u64) -> String {
    let environment = if (index / APPS).is_multiple_of(2) {
        "production"
    } else {
        "staging"
    };
    let status = if index % 20 == 7 {
        "failed"
    } else if index % 50 == 3 {
        "aborted"
    } else {
        "success"
    };
    json!({
        "app": format!("svc-{:02}", index % APPS),
        "environment": environment,
        "version": format!("1.0.{index}"),
        "status": status,
        "deployed_by": format!("ci-{}", index % 7),
        "message": "seeded by berth-bench",
    })
    .to_string()
}

/// Makes `records` records over [`SEEDERS`] connections and checks each
/// event made a record of its own.
pub async fn seed(controller: &Controller, token: &str, records: u64) -> Result<Seeded> {
    let started = Instant::now();
    let mut seeders = tokio::task::JoinSet::new();
    for first in 0..SEEDERS {
        let (base, token) = (controller.http_url.clone(), token.to_string());
        seeders.spawn(async move {
            let mut connection = Connection::open(&base, &token).await?;
            let mut ids = Vec::new();
            for index in (first..records).step_by(SEEDERS as usize) {
                let body = Some(event(index));
                let (status, body) = connection
                    .call("POST", "/api/v1/deployment-events", body)
                    .await?;
                if status != 200 {
                    bail!(
                        "deployment event {index}: {status} {}",
                        String::from_utf8_lossy(&body)
                    );
                }
                let record: Value = serde_json::from_slice(&body).context("the record")?;
                ids.push(record["id"].as_str().unwrap_or_default().to_string());
                if first == 0 && index > 0 && index % (records / 10).max(1) < SEEDERS {
                    eprintln!("  seeded about {index} of {records} records");
                }
            }
            anyhow::Ok(ids)
        });
    }
    let mut ids = HashSet::new();
    while let Some(made) = seeders.join_next().await {
        ids.extend(made.context("a seeding task")??);
    }
    let secs = started.elapsed().as_secs_f64();
    if ids.len() as u64 != records || ids.contains("") {
        bail!("{records} events made {} distinct records", ids.len());
    }
    Ok(Seeded { records, secs })
}

/// Checks the list holds exactly `records` deployments: the page at
/// `records - 1` has one, the one at `records` none.
pub async fn check_count(connection: &mut Connection, records: u64) -> Result<()> {
    for (offset, expected) in [(records - 1, 1), (records, 0)] {
        let path = format!("/api/v1/deployments?limit=50&offset={offset}");
        let page = page_of(connection.call("GET", &path, None).await?, &path)?;
        if page != expected {
            bail!(
                "{path} listed {page} deployments, not {expected}: the store does not hold {records}"
            );
        }
    }
    Ok(())
}

/// The number of deployments in a listing's answer.
fn page_of((status, body): (u16, bytes::Bytes), path: &str) -> Result<usize> {
    if status != 200 {
        bail!("{path}: {status} {}", String::from_utf8_lossy(&body));
    }
    let page: Value = serde_json::from_slice(&body).with_context(|| format!("{path}: JSON"))?;
    page["deployments"]
        .as_array()
        .map(Vec::len)
        .with_context(|| format!("{path}: no deployments array"))
}

/// Times `samples` requests of `path` (after warm-ups), each answer a
/// page of 50.
pub async fn time_page(
    connection: &mut Connection,
    path: &str,
    samples: usize,
) -> Result<Vec<f64>> {
    let mut timings = Vec::with_capacity(samples);
    for round in 0..WARM_UPS + samples {
        let started = Instant::now();
        let answer = connection.call("GET", path, None).await?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let page = page_of(answer, path)?;
        if page != 50 {
            bail!("{path} listed {page} deployments, not 50");
        }
        if round >= WARM_UPS {
            timings.push(ms);
        }
    }
    Ok(timings)
}

/// The listing rows: the first page (the goal), a status filter, a search
/// and a page deep in the history.
pub async fn rows(connection: &mut Connection, records: u64, quick: bool) -> Result<Vec<Row>> {
    let (many, some) = if quick { (100, 30) } else { (1000, 300) };
    let deep = records / 10;
    let failed = (0..records).filter(|index| index % 20 == 7).count();
    let searched = (0..APPS)
        .filter(|app| format!("svc-{app:02}").contains("svc-4"))
        .count() as u64
        * (records / APPS);
    let shapes = [
        (
            "/api/v1/deployments?limit=50".to_string(),
            String::new(),
            many,
            Goal::Below(Stat::P99, 20.0, "p99 under 20 ms"),
        ),
        (
            "/api/v1/deployments?status=failed&limit=50".to_string(),
            format!(", {failed} match"),
            some,
            Goal::None,
        ),
        (
            "/api/v1/deployments?search=svc-4&limit=50".to_string(),
            format!(", {searched} match"),
            some,
            Goal::None,
        ),
        (
            format!("/api/v1/deployments?limit=50&offset={deep}"),
            String::new(),
            some,
            Goal::None,
        ),
    ];
    let mut rows = Vec::new();
    for (path, matching, samples, goal) in shapes {
        let timings = time_page(connection, &path, samples).await?;
        rows.push(Row::new(
            &format!("api: GET {path}, request to last byte"),
            &format!("{records} deployments{matching}"),
            "ms",
            &timings,
            goal,
        ));
    }
    Ok(rows)
}
