//! The dashboard's Deployments page (`GET /`) and Apps page (`GET /apps`)
//! over the same 100,000 records as the API rows: the admin signs in with
//! a password (set with `berth users set-password`, as a person would),
//! then each page is timed from sending the request to its last byte on
//! one keep-alive connection, with the session cookie; each answer is
//! checked to hold its rows (50 deployments; every app).

use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use berth_tests::Controller;
use serde_json::json;

use crate::api_client::Connection;
use crate::stats::{Goal, Row, Stat};

const PASSWORD: &str = "bench password, long enough";
const WARM_UPS: usize = 20;

/// The session cookie of the admin, signed in over the API.
async fn sign_in(controller: &Controller) -> Result<String> {
    let set = controller.berth_stdin(
        &["users", "set-password", "admin"],
        &format!("{PASSWORD}\n"),
    );
    if set.code != 0 {
        bail!("berth users set-password: {}", set.stderr);
    }
    let mut connection =
        Connection::open_with(&controller.http_url, ("x-bench", String::new())).await?;
    let body = json!({ "name": "admin", "password": PASSWORD }).to_string();
    let response = connection
        .send("POST", "/api/v1/session", Some(body))
        .await?;
    if response.status() != 200 {
        bail!("sign-in answered {}", response.status());
    }
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .context("the sign-in set no cookie")?;
    Ok(cookie.to_string())
}

/// One page timed: `path` answered 200 with `expected` times `marker`.
struct Page {
    path: &'static str,
    marker: &'static str,
    expected: usize,
    label: &'static str,
}

/// The rows: `GET /` (50 rows) and `GET /apps` (every app with its
/// environments and rating) with `records` deployments stored.
pub async fn rows(
    controller: &Controller,
    records: u64,
    apps: usize,
    quick: bool,
) -> Result<Vec<Row>> {
    let cookie = sign_in(controller).await?;
    let mut connection = Connection::open_with(&controller.http_url, ("cookie", cookie)).await?;
    let samples = if quick { 30 } else { 300 };
    let pages = [
        Page {
            path: "/",
            marker: "<tr data-id=",
            expected: 50,
            label: "web: GET / (the Deployments page, 50 rows), request to last byte",
        },
        Page {
            path: "/apps",
            marker: "<tr data-app=",
            expected: apps,
            label: "web: GET /apps (every app, its environments and rating), request to last byte",
        },
    ];
    let mut rows = Vec::new();
    for page in pages {
        let mut timings = Vec::with_capacity(samples);
        for round in 0..WARM_UPS + samples {
            let started = Instant::now();
            let (status, body) = connection.call("GET", page.path, None).await?;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            let found = String::from_utf8_lossy(&body).matches(page.marker).count();
            if status != 200 || found != page.expected {
                bail!(
                    "GET {} answered {status} with {found} rows, not 200 with {}",
                    page.path,
                    page.expected
                );
            }
            if round >= WARM_UPS {
                timings.push(ms);
            }
        }
        rows.push(Row::new(
            page.label,
            &format!("{records} deployments"),
            "ms",
            &timings,
            Goal::Below(Stat::P99, 200.0, "p99 under 200 ms"),
        ));
    }
    Ok(rows)
}
