//! The command line: scenario names, `--quick`, `--no-write`, the results
//! file, and the sizes of each scenario (a size given as a flag wins over
//! the `--quick` default).

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};

pub const USAGE: &str = "usage: berth-chaos [--quick] [--no-write] [--doc PATH] [--kills N] [--flood-agents N] [--flood-rate LINES_PER_S] [--storm-agents N] [--minutes M] [--soak-agents N] kill-loop|storm|takeover|soak|failover|all...";

/// Sizes and switches of one run.
#[derive(Clone, Debug)]
pub struct Options {
    pub quick: bool,
    /// Leave `docs/RELIABILITY.md` alone after `all`.
    pub no_write: bool,
    /// The results file `all` rewrites.
    pub doc: PathBuf,
    /// kill-loop: kill -9s of the controller.
    pub kills: usize,
    /// kill-loop: real agent processes streaming logs.
    pub flood_agents: usize,
    /// kill-loop: lines per second each agent's script prints.
    pub flood_rate: u32,
    /// storm and takeover: simulated agents.
    pub storm_agents: usize,
    /// soak: duration in minutes.
    pub minutes: f64,
    /// soak: real agent processes.
    pub soak_agents: usize,
}

impl Options {
    /// Parses the arguments into options and the scenario names.
    pub fn parse(args: &[String]) -> Result<(Options, Vec<String>)> {
        let quick = args.iter().any(|arg| arg == "--quick");
        let mut options = Options {
            quick,
            no_write: false,
            doc: PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../docs/RELIABILITY.md"
            )),
            kills: if quick { 3 } else { 10 },
            flood_agents: if quick { 3 } else { 10 },
            flood_rate: if quick { 200 } else { 1_000 },
            storm_agents: if quick { 200 } else { 10_000 },
            minutes: if quick { 0.5 } else { 60.0 },
            soak_agents: 3,
        };
        let mut named = Vec::new();
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            let mut value = || {
                rest.next()
                    .with_context(|| format!("{arg} needs a value"))
                    .map(String::as_str)
            };
            match arg.as_str() {
                "--quick" => {}
                "--no-write" => options.no_write = true,
                "--doc" => options.doc = PathBuf::from(value()?),
                "--kills" => options.kills = number(arg, value()?)?,
                "--flood-agents" => options.flood_agents = number(arg, value()?)?,
                "--flood-rate" => options.flood_rate = number(arg, value()?)?,
                "--storm-agents" => options.storm_agents = number(arg, value()?)?,
                "--minutes" => options.minutes = number(arg, value()?)?,
                "--soak-agents" => options.soak_agents = number(arg, value()?)?,
                flag if flag.starts_with("--") => bail!("unknown flag {flag}"),
                name => named.push(name.to_string()),
            }
        }
        if options.flood_agents == 0 || options.soak_agents == 0 || options.storm_agents == 0 {
            bail!("agent counts must be at least 1");
        }
        if options.minutes.is_nan() || options.minutes <= 0.0 {
            bail!("--minutes must be above 0");
        }
        Ok((options, named))
    }

    /// The sizes, as the results section names them.
    pub fn sizes(&self) -> String {
        format!(
            "--kills {} --flood-agents {} --flood-rate {} --storm-agents {} --minutes {} --soak-agents {}",
            self.kills,
            self.flood_agents,
            self.flood_rate,
            self.storm_agents,
            self.minutes,
            self.soak_agents
        )
    }
}

fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T> {
    text.parse()
        .ok()
        .with_context(|| format!("{flag} takes a number, not `{text}`"))
}
