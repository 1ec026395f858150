//! `takeover` (issue 22, T14 across two controllers): N simulated agents
//! (the load generator, given both controllers' addresses as
//! `berth-agent` is) connected to the controller serving from a PostgreSQL
//! store while a second one stands by; the serving controller is killed
//! with SIGKILL and the time until the standby listens and until every
//! agent is welcomed by it is measured (all within 60 s).

use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use berth_tests::stats::percentile;
use berth_tests::{Controller, DEADLINE, fleet, postgres, procfs};

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
            "{agents} simulated agents given both addresses, connected to the controller serving from a PostgreSQL store while a second stands by; kill -9 the serving one, time until the standby listens and every agent is back on it"
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
    let mut second = first.standby();
    second
        .process()
        .stderr
        .wait_for("standing by", DEADLINE)
        .context("the second controller did not stand by")?;
    let enrolled = fleet::enroll(
        &runtime,
        &first,
        "takeover",
        agents,
        |_| "fleet=takeover".into(),
        32,
    )?;
    let url = format!("{},{}", first.url, second.url);
    let shared = connect_fleet(&runtime, &first, &url, enrolled, "takeover")?;
    let killed = Instant::now();
    first.kill9();
    let listening = loop {
        if TcpStream::connect(&second.address).is_ok() {
            break killed.elapsed();
        }
        anyhow::ensure!(
            killed.elapsed() < GIVE_UP,
            "the standby did not listen within {}s",
            GIVE_UP.as_secs()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let (back, times) = wait_back(&shared, agents, killed);
    if let Err(err) = back {
        outcome.check(false, "every agent back", format!("{err:#}"));
        runtime.shutdown_timeout(Duration::from_secs(5));
        return Ok(outcome);
    }
    second.wait_serving();
    let pid = procfs::controller_pid(&second.dir.path().join("controller"))?;
    let fds = procfs::open_fds(pid).context("the standby's open files")?;
    let rss = procfs::rss_kib(pid).context("the standby's RSS")?;
    runtime.shutdown_timeout(Duration::from_secs(5));
    let last = times.last().copied().unwrap_or(f64::NAN);
    outcome.check(
        last < BACK_WITHIN.as_secs_f64(),
        &format!(
            "all {agents} back on the standby within {}s of the kill",
            BACK_WITHIN.as_secs()
        ),
        format!("the last one took {last:.1}s"),
    );
    outcome.figure(
        "kill to the standby listening",
        format!("{:.2} s", listening.as_secs_f64()),
    );
    outcome.figure(
        "agents back after the kill, p10 / p50 / p99 / max",
        format!(
            "{:.2} s / {:.2} s / {:.2} s / {last:.2} s",
            percentile(&times, 0.1),
            percentile(&times, 0.5),
            percentile(&times, 0.99)
        ),
    );
    outcome.figure(
        "the standby serving them: open files / RSS",
        format!("{} / {:.0} MiB", count(fds as u64), rss as f64 / 1024.0),
    );
    Ok(outcome)
}
