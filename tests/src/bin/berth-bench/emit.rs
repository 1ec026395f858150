//! `berth-bench emit`: the log producer a benchmark deployment's script
//! runs. It prints numbered lines, each stamped with the wall-clock time
//! (Unix microseconds) at which it was written, either as fast as it can
//! or at a given rate, so a follower can tell how long a line took to
//! reach it.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Wall-clock microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
        })
}

/// The stamp a line carries, if it is one of ours.
pub fn stamp_of(line: &str) -> Option<u64> {
    let start = line.find(" t=")? + 3;
    let digits = &line[start..];
    let end = digits.find(' ').unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// `emit --lines N [--rate LINES_PER_SECOND] [--tag T]`.
pub fn run(args: &[String]) -> std::process::ExitCode {
    let value = |name: &str| {
        args.iter()
            .position(|arg| arg == name)
            .and_then(|at| args.get(at + 1))
            .cloned()
    };
    let lines: u64 = value("--lines")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rate: u64 = value("--rate").and_then(|v| v.parse().ok()).unwrap_or(0);
    let tag = value("--tag").unwrap_or_else(|| "line".into());
    // About 100 bytes a line, a typical application log line.
    let padding = "x".repeat(48);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let started = Instant::now();
    for seq in 0..lines {
        if rate > 0 {
            // Paced: every line goes out when written, on schedule.
            let due = started + Duration::from_secs_f64(seq as f64 / rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        if writeln!(out, "{tag} {seq:09} t={} {padding}", now_us()).is_err() {
            return std::process::ExitCode::FAILURE;
        }
        if rate > 0 && out.flush().is_err() {
            return std::process::ExitCode::FAILURE;
        }
    }
    if out.flush().is_err() {
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
