//! `berth-chaos`: berth's long fault tests (the kill -9 loop under a log
//! flood, the reconnect storm, one of two controllers taking over the
//! other's share of the fleet,
//! the soak, the failover of a replicated PostgreSQL store), run against the real binaries
//! through the `berth_tests` harness. Each scenario checks what it
//! promises, prints what broke when a check fails, and ends in one row of
//! `docs/RELIABILITY.md`: test, what it does, what held, figures. The
//! figures are measured by the run; nothing in the table is typed by hand.
//!
//! `berth-chaos [--quick] [--no-write] [sizes] kill-loop|storm|takeover|soak|failover|all`;
//! `all` also rewrites the results section of `docs/RELIABILITY.md` unless
//! `--no-write` is given. The program exits non-zero when any check broke.
//! It is a program, not a test: `cargo test` runs only its quick mode
//! (`tests/tests/chaos.rs`). Like `berth-bench`, every process and
//! temporary directory it starts is owned by a harness handle.

mod failover;
mod flood;
mod kill_loop;
mod options;
mod report;
mod soak;
mod storm;
mod takeover;

use std::process::ExitCode;
use std::time::Instant;

use options::Options;
use report::Outcome;

type Scenario = fn(&Options) -> anyhow::Result<Outcome>;

const SCENARIOS: [(&str, Scenario); 5] = [
    ("kill-loop", kill_loop::run),
    ("storm", storm::run),
    ("takeover", takeover::run),
    ("soak", soak::run),
    ("failover", failover::run),
];

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (options, named) = match Options::parse(&args) {
        Ok(parsed) => parsed,
        Err(err) => {
            eprintln!("{err:#}\n\n{}", options::USAGE);
            return ExitCode::from(2);
        }
    };
    if let Some(unknown) = named
        .iter()
        .find(|name| *name != "all" && !SCENARIOS.iter().any(|(known, _)| known == name))
    {
        eprintln!("unknown scenario `{unknown}`\n\n{}", options::USAGE);
        return ExitCode::from(2);
    }
    if named.is_empty() {
        eprintln!("name a scenario\n\n{}", options::USAGE);
        return ExitCode::from(2);
    }
    let all = named.iter().any(|name| name == "all");
    berth_tests::procfs::raise_open_files();
    let started = Instant::now();
    let mut outcomes = Vec::new();
    println!("{}", report::header());
    for (name, scenario) in SCENARIOS {
        if !all && !named.iter().any(|wanted| wanted == name) {
            continue;
        }
        eprintln!("== {name}");
        let begun = Instant::now();
        let outcome = run_one(name, scenario, &options);
        for broke in &outcome.broke {
            eprintln!("BROKE: {name}: {broke}");
        }
        println!("{}", report::row(&outcome));
        eprintln!("== {name} took {:.0}s", begun.elapsed().as_secs_f64());
        outcomes.push(outcome);
    }
    let failed = outcomes.iter().filter(|outcome| !outcome.held()).count();
    eprintln!(
        "\n{} scenario(s) in {:.0}s; {failed} broke",
        outcomes.len(),
        started.elapsed().as_secs_f64()
    );
    if all && !options.no_write {
        let wall = started.elapsed();
        match report::write_doc(&options.doc, &options, &args, &outcomes, wall) {
            Ok(()) => eprintln!("results written to {}", options.doc.display()),
            Err(err) => {
                eprintln!("could not write the results: {err:#}");
                return ExitCode::FAILURE;
            }
        }
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs one scenario; an error or a panic (a harness assertion) becomes a
/// broken check, and the handles it owned clean up while it unwinds.
fn run_one(name: &'static str, scenario: Scenario, options: &Options) -> Outcome {
    match std::panic::catch_unwind(|| scenario(options)) {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(err)) => Outcome::failed(name, &format!("{err:#}")),
        Err(_) => Outcome::failed(name, "panicked (see above)"),
    }
}
