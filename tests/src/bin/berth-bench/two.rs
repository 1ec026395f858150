//! Two controllers serving from one PostgreSQL store (a private server,
//! or the one `BERTH_TEST_POSTGRES` names): the dispatch latency of a
//! deploy accepted by A for an agent connected to B (the change reaches B
//! as a LISTEN/NOTIFY signal) beside the same deploy for an agent on A;
//! then N simulated agents split between them (half given A first, half B
//! first): the time to connect them, each controller's resident memory,
//! and a fleet-wide `berth inspect` through A, whose questions for B's
//! agents go through B.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use berth_tests::loadgen::{Counters, Shared};
use berth_tests::{Agent, Controller, procfs};
use tokio::sync::Semaphore;

use crate::stats::{Goal, Row, Stat};

pub fn run(quick: bool) -> Result<Vec<Row>> {
    // Kept until the end: a private server stops when it is dropped.
    let _private = match berth_tests::postgres::server() {
        Some(url) => {
            berth_tests::postgres::use_for_every_controller(&url);
            None
        }
        None => {
            let server = berth_tests::postgres::Server::start()?;
            berth_tests::postgres::use_for_every_controller(&server.url);
            Some(server)
        }
    };
    let deploys = if quick { 20 } else { 100 };
    let agents = if quick { 1_000 } else { 10_000 };
    let n = format!("{deploys} deploys");
    let mut a = Controller::start_with(&["--trigger-limit", "0"]);
    let mut b = a.peer();
    b.wait_serving();
    let on_a = Agent::join(&a, "on-a", "role=on-a");
    let on_b = Agent::join(&b, "on-b", "role=on-b");
    let (local, _) = crate::dispatch::timed_deploys(&a, "on-a", deploys)?;
    let (across, walls) = crate::dispatch::timed_deploys(&a, "on-b", deploys)?;
    drop((on_a, on_b));
    let mut rows = vec![
        Row::new(
            "two controllers: deploy accepted by A to first stage started on an agent of A",
            &n,
            "ms",
            &local,
            Goal::None,
        ),
        Row::new(
            "two controllers: deploy accepted by A to first stage started on an agent of B",
            &n,
            "ms",
            &across,
            Goal::Below(
                Stat::P99,
                40.0,
                "p99 under 40 ms (2x one controller's goal)",
            ),
        ),
        Row::new(
            "two controllers: berth deploy through A to an agent of B, CLI start to exit",
            &n,
            "ms",
            &walls,
            Goal::None,
        ),
    ];
    rows.extend(fleet(&mut a, &mut b, agents)?);
    Ok(rows)
}

/// `agents` simulated agents split between `a` and `b`.
fn fleet(a: &mut Controller, b: &mut Controller, agents: usize) -> Result<Vec<Row>> {
    let runtime = berth_tests::fleet::runtime()?;
    let enrolled =
        berth_tests::fleet::enroll(&runtime, a, "two", agents, |_| "fleet=two".into(), 32)?;
    let ca_pem = berth_tests::fleet::ca_pem(a)?;
    let orders = [
        format!("{},{}", a.url, b.url),
        format!("{},{}", b.url, a.url),
    ];
    let shared: Vec<Arc<Shared>> = orders
        .iter()
        .map(|url| {
            Arc::new(Shared {
                url: url.clone(),
                ca_pem: ca_pem.clone(),
                counters: Counters::default(),
                connecting: Semaphore::new(32),
            })
        })
        .collect();
    let started = Instant::now();
    for (index, identity) in enrolled.into_iter().enumerate() {
        runtime.spawn(berth_tests::loadgen::agent(
            shared[index % 2].clone(),
            identity,
        ));
    }
    let welcomed = || shared.iter().map(|s| s.counters.welcomed()).sum::<u64>();
    while welcomed() < agents as u64 {
        if started.elapsed() > Duration::from_secs(300) {
            bail!(
                "only {} of {agents} simulated agents connected; last error: {}",
                welcomed(),
                shared[0].counters.last_error()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let connect_secs = started.elapsed().as_secs_f64();
    // Two heartbeat rounds, so every session is in its steady state.
    std::thread::sleep(Duration::from_secs(12));
    let n = format!("{agents} agents, half on each");
    let mut rows = vec![Row::single(
        "two controllers: time to connect the agents (64 handshakes at a time)",
        &n,
        "s",
        connect_secs,
        Goal::None,
    )];
    for (name, controller) in [("A", &*a), ("B", &*b)] {
        let pid = procfs::controller_pid(&controller.dir.path().join("controller"))?;
        let rss = procfs::rss_kib(pid).context("controller RSS")?;
        rows.push(Row::single(
            &format!("two controllers: controller {name} RSS"),
            &n,
            "MiB",
            rss as f64 / 1024.0,
            Goal::None,
        ));
    }
    rows.push(
        crate::scale::inspect(a, (agents, &n), "", Goal::None).renamed(
            "two controllers: berth inspect across the fleet through A, CLI start to exit",
        ),
    );
    runtime.shutdown_timeout(Duration::from_secs(5));
    Ok(rows)
}
