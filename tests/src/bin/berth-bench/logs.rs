//! Log throughput: the flood of [`flood`] (M real agents printing stamped
//! lines as fast as they can), whose lines travel the agents' outboxes and
//! streams into the controller, which makes them durable in sled, while
//! one `berth logs -f` follows; follow latency is the time from a line
//! being printed to the follower printing it. A second, paced run shows
//! the follow latency of a fleet that is not saturated.

use std::io::BufRead;
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};
use berth_tests::{Controller, bin};

use crate::emit::stamp_of;
use crate::flood::{self, Seen};
use crate::stats::{Goal, Row, Stat};

/// Secrets of the masked flood's app.
const SECRETS: usize = 5;

/// The time `Masker::mask` takes per line, as the agent and the
/// controller each spend it on every line of an app with secrets: lines
/// of the flood's length that hold no secret (the common case), and one in
/// a thousand that does.
fn masking_ns_per_line(lines: usize) -> f64 {
    let values: Vec<String> = (1..=SECRETS)
        .map(|n| format!("bench-secret-value-{n}-{}", "x".repeat(24)))
        .collect();
    let masker = berth_shared::masking::Masker::new(values.iter().map(String::as_str));
    let plain = "2026-12-06T14:00:00.123Z stamp=1733493600123456 flood line 0000042 payload abcdef";
    let leaky = format!("connecting with password={} now", values[2]);
    let started = std::time::Instant::now();
    let mut masked = 0usize;
    for i in 0..lines {
        let line = if i % 1000 == 0 { leaky.as_str() } else { plain };
        masked += usize::from(matches!(
            std::hint::black_box(masker.mask(std::hint::black_box(line))),
            std::borrow::Cow::Owned(_)
        ));
    }
    let elapsed = started.elapsed();
    assert_eq!(masked, lines.div_ceil(1000), "every leaky line is masked");
    elapsed.as_nanos() as f64 / lines as f64
}

/// What one run measured.
struct Measured {
    lines: u64,
    /// First stage started to deployment `deployed`.
    stored_secs: f64,
    /// First to last stamp printed.
    produced_secs: f64,
    latencies_ms: Vec<f64>,
    /// CPU seconds of the controller and of `berth logs -f` while it
    /// followed.
    controller_cpu_secs: f64,
    follower_cpu_secs: f64,
    store_bytes: u64,
    /// Seconds `berth logs ID` took to print every stored line.
    read_back_secs: f64,
}

pub fn run(quick: bool) -> Result<Vec<Row>> {
    let agents = 4;
    let per_agent: u64 = if quick { 50_000 } else { 500_000 };
    let (flood, paced) = {
        let controller = Controller::start_with(&["--trigger-limit", "0"]);
        let _agents = flood::agents(&controller, agents);
        let flood = measure(&controller, "flood", agents, per_agent, 0)?;
        let paced = measure(&controller, "paced", agents, 25_000, 2_500)?;
        (flood, paced)
    };
    // The same flood from an app with secrets, on a fresh controller (as
    // the first flood): every line is masked by its agent and again by
    // the controller before it is stored.
    let masked = {
        let controller = Controller::start_with(&["--trigger-limit", "0"]);
        let _agents = flood::agents(&controller, agents);
        for n in 1..=SECRETS {
            let set = controller.berth_stdin(
                &["secret", "set", "masked/default", &format!("SECRET_{n}")],
                &format!("bench-secret-value-{n}-{}", "x".repeat(24)),
            );
            if set.code != 0 {
                bail!("berth secret set failed: {}", set.stderr);
            }
        }
        measure(&controller, "masked", agents, per_agent, 0)?
    };
    let mask_ns = masking_ns_per_line(if quick { 200_000 } else { 2_000_000 });
    let n = format!("{agents} agents x {per_agent} lines");
    let paced_n = format!("{agents} agents x 2,500 lines/s");
    Ok(vec![
        Row::single(
            "logs: lines stored per second (flood)",
            &n,
            "lines/s",
            flood.lines as f64 / flood.stored_secs,
            Goal::AtLeast(Stat::Median, 200_000.0, "at least 200,000 lines/s"),
        ),
        Row::single(
            &format!("logs: lines stored per second with {SECRETS} secrets masked (flood)"),
            &n,
            "lines/s",
            masked.lines as f64 / masked.stored_secs,
            Goal::AtLeast(Stat::Median, 200_000.0, "at least 200,000 lines/s"),
        ),
        Row::single(
            &format!(
                "logs: masking one 80-byte line for {SECRETS} secrets (in process, each of agent and controller)"
            ),
            "2,000,000 lines",
            "ns",
            mask_ns,
            Goal::None,
        ),
        Row::single(
            "logs: lines printed per second by the scripts (flood)",
            &n,
            "lines/s",
            flood.lines as f64 / flood.produced_secs,
            Goal::None,
        ),
        Row::single(
            "logs: stored lines printed per second by berth logs (after the flood)",
            &format!("{} lines", flood.lines),
            "lines/s",
            flood.lines as f64 / flood.read_back_secs,
            Goal::None,
        ),
        Row::new(
            "logs: follow latency, printed to shown by berth logs -f (flood)",
            &n,
            "ms",
            &flood.latencies_ms,
            Goal::Below(Stat::P99, 100.0, "p99 under 100 ms"),
        ),
        Row::single(
            "logs: controller CPU per line while berth logs -f follows (flood)",
            &n,
            "µs",
            flood.controller_cpu_secs * 1e6 / flood.lines as f64,
            Goal::None,
        ),
        Row::single(
            "logs: berth logs -f CPU per line shown (flood)",
            &n,
            "µs",
            flood.follower_cpu_secs * 1e6 / flood.lines as f64,
            Goal::None,
        ),
        Row::new(
            "logs: follow latency, printed to shown by berth logs -f (paced)",
            &paced_n,
            "ms",
            &paced.latencies_ms,
            Goal::Below(Stat::P99, 100.0, "p99 under 100 ms"),
        ),
        Row::single(
            if berth_tests::postgres::in_use() {
                "logs: PostgreSQL table size per stored line (kv_log_chunks with its index and TOAST, after both runs)"
            } else {
                "logs: sled store size per stored line (after both runs)"
            },
            &format!("{} lines", flood.lines + paced.lines),
            "bytes",
            paced.store_bytes as f64 / (flood.lines + paced.lines) as f64,
            Goal::None,
        ),
    ])
}

fn measure(
    controller: &Controller,
    app: &str,
    agents: usize,
    lines: u64,
    rate: u64,
) -> Result<Measured> {
    let pid = controller.process().pid();
    let cpu_before = flood::cpu_secs(pid);
    let flood = flood::start(controller, app, agents, lines, rate)?;
    let (mut follower, stdout) = berth_logs(controller, &["logs", &flood.id, "-f"])?;
    let mut seen = Seen::with_capacity(flood.expected);
    for line in std::io::BufReader::with_capacity(1 << 20, stdout).lines() {
        seen.line(&line.context("read the follower")?);
    }
    let controller_cpu_secs = flood::cpu_secs(pid) - cpu_before;
    // Read before it is reaped: an exited child's stat stays until then.
    let follower_cpu_secs = flood::cpu_secs(follower.id());
    follower.wait().context("wait for berth logs -f")?;
    let stored_secs = flood::stored_secs(controller, &flood)?;
    if seen.lines() != flood.expected {
        bail!(
            "berth logs -f showed {} of {} lines",
            seen.lines(),
            flood.expected
        );
    }
    let data = controller.dir.path().join("controller");
    let store_bytes = berth_tests::postgres::stored_log_bytes(&data)
        .unwrap_or_else(|| berth_tests::procfs::dir_bytes(&data.join("store")));
    let read_back_secs = read_back(controller, &flood.id, flood.expected)?;
    Ok(Measured {
        lines: flood.expected,
        stored_secs,
        produced_secs: seen.produced_secs(),
        latencies_ms: seen.latencies_ms,
        controller_cpu_secs,
        follower_cpu_secs,
        store_bytes,
        read_back_secs,
    })
}

/// Starts `berth ARGS` with its stdout piped to the bench.
fn berth_logs(
    controller: &Controller,
    args: &[&str],
) -> Result<(std::process::Child, std::process::ChildStdout)> {
    let mut child = Command::new(bin("berth"))
        .args(args)
        .env("BERTH_CONFIG", controller.admin())
        .env("BERTH_CONTROLLER", &controller.url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("start berth {}", args.join(" ")))?;
    let stdout = child.stdout.take().context("berth's stdout")?;
    Ok((child, stdout))
}

/// Times `berth logs ID` printing all `expected` stored lines into a pipe.
fn read_back(controller: &Controller, id: &str, expected: u64) -> Result<f64> {
    let started = std::time::Instant::now();
    let (mut reader, stdout) = berth_logs(controller, &["logs", id])?;
    let mut lines = 0u64;
    for line in std::io::BufReader::with_capacity(1 << 20, stdout).lines() {
        if stamp_of(&line.context("read berth logs")?).is_some() {
            lines += 1;
        }
    }
    reader.wait().context("wait for berth logs")?;
    if lines != expected {
        bail!("berth logs printed {lines} of {expected} lines");
    }
    Ok(started.elapsed().as_secs_f64())
}
