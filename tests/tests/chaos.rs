//! The long fault tests in their quick mode: the built `berth-chaos`
//! program runs the controller kill -9 loop under a log flood, the
//! reconnect storm, a controller taking over another's share of the
//! storm's fleet, a short soak
//! and the failover of a replicated PostgreSQL store under Patroni (about
//! two minutes in all) and must say that every check held, with one
//! result row per scenario. Its full-size run writes `docs/RELIABILITY.md`;
//! this one writes nothing.

use std::process::{Command, Stdio};

use berth_tests::bin;

#[test]
fn every_chaos_scenario_holds_in_quick_mode() {
    let program = bin("berth-chaos");
    assert!(
        program.exists(),
        "{} is missing; run `cargo build --workspace --bins` first",
        program.display()
    );
    let started = std::time::Instant::now();
    let output = Command::new(&program)
        .args(["--quick", "--no-write", "all"])
        .stdin(Stdio::null())
        .output()
        .expect("run berth-chaos");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!(
        "berth-chaos --quick all took {:.0}s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        output.status.success(),
        "berth-chaos failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    for scenario in ["kill-loop", "storm", "takeover", "soak", "failover"] {
        let row = stdout
            .lines()
            .find(|line| line.starts_with(&format!("| {scenario} ")))
            .unwrap_or_else(|| panic!("no row for {scenario}:\n{stdout}"));
        assert!(row.contains("| held: "), "{scenario} did not hold: {row}");
        assert!(
            [
                "lines checked",
                "reconnect after restart",
                "back on B after the kill"
            ]
            .iter()
            .any(|figure| row.contains(figure)),
            "{scenario} printed no figures: {row}"
        );
    }
}
