//! What a scenario found ([`Outcome`]: the checks that held, the ones that
//! broke, and the figures it measured), printed as a Markdown table row,
//! and the results section of `docs/RELIABILITY.md` that `all` rewrites
//! between two markers, leaving the hand-written part of the file alone.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::options::Options;

const BEGIN: &str = "<!-- berth-chaos results: begin (written by berth-chaos all) -->";
const END: &str = "<!-- berth-chaos results: end -->";

/// One scenario's result.
pub struct Outcome {
    /// The scenario and the tests of reliability.md §4.3 it runs.
    pub test: String,
    /// What it does, with the sizes of this run.
    pub what: String,
    /// Checks that held, in a few words each.
    pub held: Vec<String>,
    /// Checks that broke, saying what was seen.
    pub broke: Vec<String>,
    /// Measured figures, `name: value`.
    pub figures: Vec<String>,
}

impl Outcome {
    pub fn new(test: &str, what: String) -> Outcome {
        Outcome {
            test: test.to_string(),
            what,
            held: Vec::new(),
            broke: Vec::new(),
            figures: Vec::new(),
        }
    }

    /// A scenario that could not finish.
    pub fn failed(test: &str, why: &str) -> Outcome {
        let mut outcome = Outcome::new(test, "-".to_string());
        outcome.broke.push(format!("did not finish: {why}"));
        outcome
    }

    /// Records a check: `what` held, or broke with `seen`.
    pub fn check(&mut self, passed: bool, what: &str, seen: String) {
        if passed {
            self.held.push(what.to_string());
        } else {
            self.broke.push(format!("{what}: {seen}"));
        }
    }

    pub fn figure(&mut self, name: &str, value: String) {
        self.figures.push(format!("{name}: {value}"));
    }

    pub fn held(&self) -> bool {
        self.broke.is_empty()
    }
}

/// The table header.
pub fn header() -> String {
    "| test | what it does | what held | figures |\n|---|---|---|---|".to_string()
}

/// One table row.
pub fn row(outcome: &Outcome) -> String {
    let held = if outcome.held() {
        format!("held: {}", outcome.held.join("; "))
    } else {
        format!("**BROKE**: {}", outcome.broke.join("; "))
    };
    let cell = |text: &str| text.replace('|', "\\|").replace('\n', " ");
    format!(
        "| {} | {} | {} | {} |",
        cell(&outcome.test),
        cell(&outcome.what),
        cell(&held),
        cell(&outcome.figures.join("; "))
    )
}

/// A count with thousands separators.
pub fn count(value: u64) -> String {
    let digits = value.to_string();
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// Replaces what stands between the markers of `doc` with this run's
/// table and how it was made.
pub fn write_doc(
    doc: &Path,
    options: &Options,
    args: &[String],
    outcomes: &[Outcome],
    wall: Duration,
) -> Result<()> {
    let text = std::fs::read_to_string(doc).with_context(|| format!("read {}", doc.display()))?;
    let (Some(begin), Some(end)) = (text.find(BEGIN), text.find(END)) else {
        bail!("{} lacks the markers `{BEGIN}` and `{END}`", doc.display());
    };
    if end < begin {
        bail!(
            "{}: the end marker comes before the begin marker",
            doc.display()
        );
    }
    let mut section = format!("{BEGIN}\n\n{}\n\n", provenance(options, args, wall));
    section.push_str(&header());
    section.push('\n');
    for outcome in outcomes {
        section.push_str(&row(outcome));
        section.push('\n');
    }
    section.push('\n');
    let updated = format!("{}{section}{}", &text[..begin], &text[end..]);
    std::fs::write(doc, updated).with_context(|| format!("write {}", doc.display()))
}

/// When, where and how the run was made.
fn provenance(options: &Options, args: &[String], wall: Duration) -> String {
    let run = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .output()
            .ok()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .filter(|out| !out.is_empty())
            .unwrap_or_else(|| "unknown".to_string())
    };
    let date = run("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let commit = run("git", &["rev-parse", "--short", "HEAD"]);
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or("unknown".to_string(), |kib| {
            format!("{:.0} GiB", kib as f64 / 1048576.0)
        });
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    format!(
        "One run on {date}: {cpus} CPUs, {memory} RAM, Linux {}, {profile} build, commit `{commit}`, {:.0} minutes in all{}.\n\
         Command: `berth-chaos {}` (sizes: `{}`).",
        run("uname", &["-r"]),
        wall.as_secs_f64() / 60.0,
        if options.quick { ", quick mode" } else { "" },
        args.join(" "),
        options.sizes()
    )
}
