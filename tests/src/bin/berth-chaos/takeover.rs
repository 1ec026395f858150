//! `takeover` (issue 22, T14 across two controllers): N simulated agents
//! (the load generator, given both controllers' addresses as
//! `berth-agent` is, half of them A first and half B first) connected to
//! two controllers serving from one PostgreSQL store at once. Each
//! controller's share, open files and memory are read; then A is killed
//! with SIGKILL and the time until each of its agents is welcomed by B is
//! measured (all within 60 s), while B's own agents stay connected and B
//! lists all N as its own.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use berth_tests::stats::percentile;
use berth_tests::{Controller, fleet, postgres, procfs};

use crate::options::Options;
use crate::report::{Outcome, count};
use crate::storm::{GIVE_UP, connect_fleet, wait_back};

/// All agents must be back within this long after the kill.
const BACK_WITHIN: Duration = Duration::from_secs(60);

pub fn run(options: &Options) -> Result<Outcome> {
    let agents = options.storm_agents;
    let mut outcome = Outcome::new(
        "takeover (issue 22, T14)",
        format!(
            "{agents} simulated agents split between two controllers serving from one PostgreSQL store (half given A then B, half B then A); kill -9 A, time until each of its agents is back on B"
        ),
    );
    // The tests' server, or a private one for this run.
    let private;
    let server = match postgres::server() {
        Some(server) => server,
        None => {
            private = postgres::Server::start().context("start a private PostgreSQL")?;
            private.url.clone()
        }
    };
    let runtime = fleet::runtime()?;
    let mut first = Controller::start_on_postgres(&server);
    let mut second = first.peer();
    second.wait_serving();
    let mut enrolled = fleet::enroll(
        &runtime,
        &first,
        "takeover",
        agents,
        |_| "fleet=takeover".into(),
        32,
    )?;
    let on_b = enrolled.split_off(agents / 2);
    let on_a = enrolled;
    let (a_first, b_first) = (
        format!("{},{}", first.url, second.url),
        format!("{},{}", second.url, first.url),
    );
    let shared_a = connect_fleet(&runtime, &first, &a_first, on_a, "takeover, A first")?;
    let shared_b = connect_fleet(&runtime, &first, &b_first, on_b, "takeover, B first")?;
    let (half_a, half_b) = (agents / 2, agents - agents / 2);
    let listed = agents_listed(&second);
    outcome.check(
        listed == vec![half_a as u64, half_b as u64],
        "each controller lists its share of the agents",
        format!("{listed:?}"),
    );
    let footprints: Vec<String> = [&first, &second]
        .iter()
        .map(|controller| {
            let pid = procfs::controller_pid(&controller.dir.path().join("controller"))?;
            Ok(format!(
                "{} / {:.0} MiB",
                count(procfs::open_fds(pid).context("open files")? as u64),
                procfs::rss_kib(pid).context("RSS")? as f64 / 1024.0
            ))
        })
        .collect::<Result<_>>()?;
    let killed = Instant::now();
    first.kill9();
    let (back, times) = wait_back(&shared_a, half_a, killed);
    if let Err(err) = back {
        outcome.check(false, "every agent of A back on B", format!("{err:#}"));
        runtime.shutdown_timeout(Duration::from_secs(5));
        return Ok(outcome);
    }
    let stayed = shared_b.counters.welcomed_after(killed).len();
    outcome.check(
        stayed == 0,
        "B's own agents stayed connected",
        format!("{stayed} of them connected again"),
    );
    let deadline = Instant::now() + GIVE_UP;
    let mut listed = agents_listed(&second);
    while listed != vec![agents as u64] && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        listed = agents_listed(&second);
    }
    outcome.check(
        listed == vec![agents as u64],
        "B alone, listing every agent",
        format!("{listed:?}"),
    );
    let pid = procfs::controller_pid(&second.dir.path().join("controller"))?;
    let fds = procfs::open_fds(pid).context("B's open files")?;
    let rss = procfs::rss_kib(pid).context("B's RSS")?;
    runtime.shutdown_timeout(Duration::from_secs(5));
    let last = times.last().copied().unwrap_or(f64::NAN);
    outcome.check(
        last < BACK_WITHIN.as_secs_f64(),
        &format!(
            "all {half_a} of A's agents back on B within {}s of the kill",
            BACK_WITHIN.as_secs()
        ),
        format!("the last one took {last:.1}s"),
    );
    outcome.figure(
        "agents connected across the two controllers, open files / RSS of A and of B",
        format!(
            "{} + {}; {} and {}",
            count(half_a as u64),
            count(half_b as u64),
            footprints[0],
            footprints[1]
        ),
    );
    outcome.figure(
        "A's agents back on B after the kill, p10 / p50 / p99 / max",
        format!(
            "{:.2} s / {:.2} s / {:.2} s / {last:.2} s",
            percentile(&times, 0.1),
            percentile(&times, 0.5),
            percentile(&times, 0.99)
        ),
    );
    outcome.figure(
        "B serving all of them: open files / RSS",
        format!("{} / {:.0} MiB", count(fds as u64), rss as f64 / 1024.0),
    );
    Ok(outcome)
}

/// The agents each controller lists (`berth status --controllers`), in
/// the order they started.
fn agents_listed(via: &Controller) -> Vec<u64> {
    let list = via.berth(&["status", "--controllers", "-o", "json"]).json();
    list["controllers"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| row["agents"].as_u64().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}
