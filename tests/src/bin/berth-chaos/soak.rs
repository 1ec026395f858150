//! `soak` (reliability.md T13's "flat over time", for a working fleet): a
//! few real agents take deploy after deploy (every fifth one fails on
//! purpose) and a fleet-wide `berth exec` after each, for `--minutes`.
//! Every deployment must end in its true state with every line it printed
//! read back once and in order, every exec must answer from every host,
//! and the controller's resident memory and open files, sampled after each
//! round, must show no growth beyond the stated bounds between the window
//! after warm-up and the last window. Each checked deployment is purged
//! (`berth purge`), as retention would in time, so the live data stays
//! level and memory that keeps growing is not explained by more data to
//! cache.

use std::time::{Duration, Instant};

use anyhow::Result;
use berth_shared::record::FleetJob;
use berth_tests::stats::percentile;
use berth_tests::{Controller, fleet, id_of, procfs};

use crate::flood::{self, Flood};
use crate::options::Options;
use crate::report::{Outcome, count};

/// Lines each host's script prints per deployment.
const LINES: u64 = 200;
/// Apps the deployments rotate through.
const APPS: u64 = 4;
/// The share of the run, at its start and at its end, whose samples are
/// compared (the first one after a warm-up of the same length).
const WINDOW: f64 = 0.2;
/// Resident memory may grow by this share of the early median, plus
/// [`RSS_SLACK_KIB`] (allocator and cache noise).
const RSS_GROWTH: f64 = 0.25;
const RSS_SLACK_KIB: u64 = 16 * 1024;
/// Open files may grow by this many (sled's segment files, a CLI call in
/// flight).
const FD_SLACK: f64 = 16.0;

/// One sample of the controller.
struct Sample {
    at: f64,
    rss_kib: u64,
    fds: usize,
}

/// What the rounds saw.
#[derive(Default)]
struct Tally {
    deploys: u64,
    execs: u64,
    lines: u64,
    broken: Vec<String>,
}

pub fn run(options: &Options) -> Result<Outcome> {
    let agents = options.soak_agents;
    let duration = Duration::from_secs_f64(options.minutes * 60.0);
    let mut outcome = Outcome::new(
        "soak (T13 over time)",
        format!(
            "{} minutes of deploy after deploy ({LINES} numbered lines per host, every fifth failing on purpose, each purged once checked) and a fleet-wide exec after each, on {agents} real agents; controller RSS and open files sampled after every round",
            options.minutes
        ),
    );
    let controller = Controller::start_with(&["--trigger-limit", "0"]);
    let runtime = fleet::runtime()?;
    let _agents = fleet::start_agents(&runtime, &controller, "soak", agents, |_| {
        "role=soak".to_string()
    })?;
    let data = controller.dir.path().join("controller");
    let pid = procfs::controller_pid(&data)?;
    let store = data.join("store");
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut samples = Vec::new();
    let mut round = 0u64;
    while started.elapsed() < duration && tally.broken.len() < 10 {
        round += 1;
        deploy_round(&controller, round, agents, &mut tally);
        exec_round(&controller, round, agents, &mut tally);
        if let (Some(rss_kib), Some(fds)) = (procfs::rss_kib(pid), procfs::open_fds(pid)) {
            let at = started.elapsed().as_secs_f64();
            samples.push(Sample { at, rss_kib, fds });
        }
    }
    let broken = tally.broken.join("; ");
    outcome.check(
        tally.broken.is_empty(),
        &format!(
            "all {} deployments ended in their true state with every line once and in order and were purged, all {} execs answered by every host",
            tally.deploys, tally.execs
        ),
        broken,
    );
    judge_growth(&samples, &mut outcome);
    outcome.figure("deployments (purged once checked)", count(tally.deploys));
    outcome.figure(
        "store on disk at the end",
        format!("{:.1} MiB", procfs::dir_bytes(&store) as f64 / 1048576.0),
    );
    outcome.figure("execs", count(tally.execs));
    outcome.figure("lines checked", count(tally.lines));
    Ok(outcome)
}

/// One deployment to every agent, followed to its end, then checked.
fn deploy_round(controller: &Controller, round: u64, agents: usize, tally: &mut Tally) {
    let app = format!("soak-{}", round % APPS);
    let flood = Flood {
        app: &app,
        target: "labels = { role = \"soak\" }",
        burst: 50,
        limit: LINES,
        exit_code: if round.is_multiple_of(5) { 4 } else { 0 },
    };
    let bundle = flood.bundle(controller, round);
    let (_, deployment, stderr) = controller.deploy(&bundle);
    tally.deploys += 1;
    if deployment.is_null() {
        tally.broken.push(format!(
            "round {round}: deploy printed no deployment: {stderr}"
        ));
        return;
    }
    let id = id_of(&deployment);
    let status = deployment["status"].as_str().unwrap_or("?");
    if status != flood.expected_status() {
        tally.broken.push(format!(
            "round {round}: {id} ended {status}, not {}",
            flood.expected_status()
        ));
    }
    for index in 0..agents {
        let host = format!("soak-{index:05}");
        match flood::check(&controller.stdout_lines(&id, Some(&host))) {
            Ok(lines) if lines == LINES => tally.lines += lines + 1,
            Ok(lines) => tally.broken.push(format!(
                "round {round}: {host} printed {lines} of {LINES} lines"
            )),
            Err(what) => tally.broken.push(format!("round {round}: {host}: {what}")),
        }
    }
    let purge = controller.berth(&["purge", &id]);
    if purge.code != 0 {
        tally.broken.push(format!(
            "round {round}: purge {id} failed: {}",
            purge.stderr.trim()
        ));
    }
}

/// A fleet-wide `berth exec`; every host must answer with its name.
fn exec_round(controller: &Controller, round: u64, agents: usize, tally: &mut Tally) {
    let result = controller.berth(&[
        "exec",
        "-o",
        "json",
        "--selector",
        "role=soak",
        "--",
        "sh",
        "-c",
        "echo $BERTH_HOST",
    ]);
    tally.execs += 1;
    let answered = serde_json::from_str::<FleetJob>(&result.stdout).map_or(0, |job| {
        job.hosts
            .iter()
            .filter(|run| run.status == "ok" && run.output.first() == Some(&run.host))
            .count()
    });
    if result.code != 0 || answered != agents {
        tally.broken.push(format!(
            "round {round}: exec answered by {answered} of {agents} hosts (exit {}): {}",
            result.code,
            result.stderr.trim()
        ));
    }
}

/// Compares the samples of the window after warm-up with the last window.
fn judge_growth(samples: &[Sample], outcome: &mut Outcome) {
    let total = samples.last().map_or(0.0, |last| last.at);
    let window = |from: f64, to: f64| -> (f64, f64) {
        let picked: Vec<&Sample> = samples
            .iter()
            .filter(|sample| sample.at >= from * total && sample.at <= to * total)
            .collect();
        let median = |values: Vec<f64>| {
            let mut values = values;
            values.sort_by(f64::total_cmp);
            percentile(&values, 0.5)
        };
        (
            median(picked.iter().map(|s| s.rss_kib as f64).collect()),
            median(picked.iter().map(|s| s.fds as f64).collect()),
        )
    };
    let (early_rss, early_fds) = window(WINDOW, 2.0 * WINDOW);
    let (late_rss, late_fds) = window(1.0 - WINDOW, 1.0);
    if early_rss.is_nan() || late_rss.is_nan() {
        outcome.check(
            false,
            "enough samples to judge growth",
            format!("{} samples in {total:.0}s", samples.len()),
        );
        return;
    }
    let rss_bound = early_rss * (1.0 + RSS_GROWTH) + RSS_SLACK_KIB as f64;
    outcome.check(
        late_rss <= rss_bound,
        &format!(
            "no RSS growth beyond {:.0}% + {} MiB (last {:.0}% of the run against {:.0}-{:.0}%)",
            RSS_GROWTH * 100.0,
            RSS_SLACK_KIB / 1024,
            WINDOW * 100.0,
            WINDOW * 100.0,
            2.0 * WINDOW * 100.0
        ),
        format!(
            "median RSS grew from {:.1} to {:.1} MiB",
            early_rss / 1024.0,
            late_rss / 1024.0
        ),
    );
    outcome.check(
        late_fds <= early_fds + FD_SLACK,
        &format!("no open-file growth beyond {FD_SLACK}"),
        format!("median open files grew from {early_fds} to {late_fds}"),
    );
    let peak = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    outcome.figure(
        "controller RSS median early / late / peak",
        format!(
            "{:.1} / {:.1} / {:.1} MiB",
            early_rss / 1024.0,
            late_rss / 1024.0,
            peak as f64 / 1024.0
        ),
    );
    outcome.figure(
        "controller open files median early / late",
        format!("{early_fds:.0} / {late_fds:.0}"),
    );
    outcome.figure("samples", count(samples.len() as u64));
    outcome.figure(
        "controller RSS at each tenth of the run",
        format!("{} MiB", tenths(samples).join(", ")),
    );
}

/// The RSS of the sample closest after each tenth of the run, in MiB.
fn tenths(samples: &[Sample]) -> Vec<String> {
    let total = samples.last().map_or(0.0, |last| last.at);
    (1..=10)
        .filter_map(|tenth| {
            let at = total * f64::from(tenth) / 10.0;
            samples.iter().find(|sample| sample.at >= at)
        })
        .map(|sample| format!("{:.0}", sample.rss_kib as f64 / 1024.0))
        .collect()
}
