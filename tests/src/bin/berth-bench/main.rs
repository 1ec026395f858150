//! `berth-bench`: berth's benchmark suite. It starts the real release
//! binaries (through the `berth_tests` harness), measures what operators
//! feel and what every server pays, and prints one Markdown table row per
//! measurement: scenario, N, median, p95, p99, min, max, unit and the goal.
//!
//! Run everything with
//! `cargo run --release -p berth-tests --bin berth-bench`, or name
//! scenarios: `fanout`, `dispatch`, `scale`, `logs`, `api`, `footprint`,
//! `deploy`, `two` (two controllers on one PostgreSQL store).
//! `--quick` shrinks every scenario for a smoke run. `--store postgres`
//! runs every controller on a PostgreSQL store (a private server it starts,
//! or the one `BERTH_TEST_POSTGRES` names) and marks each row
//! `[postgres]`. It is a program, not a
//! test: `cargo test` never runs it. Every process and temporary directory
//! it starts is owned by a harness handle and removed when the scenario
//! ends (or fails). Ctrl-C reaches the daemons too (one process group) and
//! they stop, but an interrupted scenario's `/tmp/berth-*` directories stay.

mod api;
mod api_client;
mod api_follow;
mod api_list;
mod api_page;
mod deploy;
mod dispatch;
mod docker_proxy;
mod emit;
mod fanout;
mod flood;
mod footprint;
mod logs;
mod scale;
mod stats;
mod two;

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use stats::Row;

type Scenario = fn(bool) -> anyhow::Result<Vec<Row>>;

const SCENARIOS: [(&str, Scenario); 8] = [
    ("fanout", fanout::run),
    ("dispatch", dispatch::run),
    ("scale", scale::run),
    ("logs", logs::run),
    ("api", api::run),
    ("footprint", footprint::run),
    ("deploy", deploy::run),
    ("two", two::run),
];

/// Points every controller the harness starts at PostgreSQL: the server
/// `BERTH_TEST_POSTGRES` names, or a private one started here (returned, to
/// be kept running until the end).
fn postgres_store() -> anyhow::Result<Option<berth_tests::postgres::Server>> {
    let server = match berth_tests::postgres::server() {
        Some(_) => None,
        None => Some(berth_tests::postgres::Server::start()?),
    };
    let url = match &server {
        Some(server) => server.url.clone(),
        None => berth_tests::postgres::server().unwrap_or_default(),
    };
    berth_tests::postgres::use_for_every_controller(&url);
    Ok(server)
}

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("emit") {
        return emit::run(&args[1..]);
    }
    let quick = args.iter().any(|arg| arg == "--quick");
    let store = args
        .iter()
        .position(|arg| arg == "--store")
        .and_then(|at| args.get(at + 1))
        .cloned();
    let named: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|arg| !arg.starts_with("--") && Some(*arg) != store.as_deref())
        .collect();
    // Kept until the end: the private server stops when it is dropped.
    let on_postgres = store.as_deref() == Some("postgres");
    let _postgres = match store.as_deref() {
        None | Some("sled") => None,
        Some("postgres") => match postgres_store() {
            Ok(server) => server,
            Err(err) => {
                eprintln!("--store postgres: {err:#}");
                return ExitCode::FAILURE;
            }
        },
        Some(other) => {
            eprintln!("unknown store `{other}`; the stores are sled and postgres");
            return ExitCode::from(2);
        }
    };
    let marker = if on_postgres || berth_tests::postgres::in_use() {
        " [postgres]"
    } else {
        ""
    };
    if let Some(unknown) = named
        .iter()
        .find(|name| !SCENARIOS.iter().any(|(known, _)| known == *name))
    {
        let known: Vec<&str> = SCENARIOS.iter().map(|(name, _)| *name).collect();
        eprintln!(
            "unknown scenario `{unknown}`; the scenarios are {}",
            known.join(", ")
        );
        return ExitCode::from(2);
    }
    berth_tests::procfs::raise_open_files();
    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    let mut failed = false;
    println!("{}", stats::header());
    for (name, scenario) in SCENARIOS {
        if !named.is_empty() && !named.contains(&name) {
            continue;
        }
        eprintln!("== {name}");
        let begun = Instant::now();
        // A harness assertion panics; its handles still clean up while the
        // panic unwinds, and the other scenarios still run.
        let produced = match std::panic::catch_unwind(|| scenario(quick)) {
            Ok(Ok(produced)) => produced,
            Ok(Err(err)) => {
                failed = true;
                vec![Row::note(name, &format!("FAILED: {err:#}"))]
            }
            Err(_) => {
                failed = true;
                vec![Row::note(name, "FAILED: panicked (see above)")]
            }
        };
        let produced: Vec<Row> = produced
            .into_iter()
            .map(|mut row| {
                row.scenario.push_str(marker);
                row
            })
            .collect();
        for row in &produced {
            println!("{}", stats::line(row));
        }
        let _ = std::io::stdout().flush();
        eprintln!("== {name} took {:.0}s", begun.elapsed().as_secs_f64());
        rows.extend(produced);
    }
    let missed: Vec<&Row> = rows.iter().filter(|row| row.missed()).collect();
    eprintln!(
        "\n{} rows in {:.0}s; {} goal(s) missed{}",
        rows.len(),
        started.elapsed().as_secs_f64(),
        missed.len(),
        if failed { "; a scenario FAILED" } else { "" }
    );
    for row in missed {
        eprintln!("  missed: {} ({})", row.scenario, row.n);
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
