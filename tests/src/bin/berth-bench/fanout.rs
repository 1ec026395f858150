//! Fan-out: `berth exec -- true` on N real agent processes (N = 1, 10,
//! 100), timed from the CLI's start to its exit.

use std::time::Instant;

use anyhow::{Result, bail};
use berth_tests::Controller;

use crate::stats::{Goal, Row, Stat};

/// Runs per fleet size, after two warm-up runs.
const RUNS: usize = 30;

pub fn run(quick: bool) -> Result<Vec<Row>> {
    let sizes: &[usize] = if quick { &[1, 10] } else { &[1, 10, 100] };
    let largest = sizes.iter().copied().max().unwrap_or(1);
    let runtime = berth_tests::fleet::runtime()?;
    let controller = Controller::start();
    // Agent i carries n<size>=yes for every size it belongs to, so
    // `--selector n10=yes` picks exactly ten hosts.
    let labels = |index: usize| {
        sizes
            .iter()
            .filter(|size| index < **size)
            .map(|size| format!("n{size}=yes"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let started = Instant::now();
    let agents = berth_tests::fleet::start_agents(&runtime, &controller, "fan", largest, labels)?;
    eprintln!(
        "fanout: {} agents enrolled and connected in {:.1}s",
        agents.len(),
        started.elapsed().as_secs_f64()
    );
    let mut rows = Vec::new();
    for &size in sizes {
        let selector = format!("n{size}=yes");
        let mut samples = Vec::new();
        for run in 0..RUNS + 2 {
            let started = Instant::now();
            let out = controller.berth(&["exec", "--selector", &selector, "--", "true"]);
            let elapsed = started.elapsed();
            if out.code != 0 {
                bail!("berth exec on {size} hosts failed:\n{}", out.stderr);
            }
            if run >= 2 {
                samples.push(elapsed.as_secs_f64() * 1000.0);
            }
        }
        let goal = if size == 100 {
            Goal::Below(Stat::P95, 250.0, "N=100 under 250 ms")
        } else {
            Goal::None
        };
        rows.push(Row::new(
            "fan-out: berth exec -- true, CLI start to exit",
            &format!("{size} host{}", if size == 1 { "" } else { "s" }),
            "ms",
            &samples,
            goal,
        ));
    }
    drop(agents);
    Ok(rows)
}
