//! What `/proc` says about a process: resident memory and CPU time, and
//! finding the controller's pid by its data directory.

use std::path::Path;
use std::time::Duration;

/// Resident set size in KiB (`VmRSS`), or `None` when the process is gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// User plus system CPU time of every thread, living or ended.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields resume after its `)`.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) (utime, stime) are 11 and 12 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis(
        (utime + stime) * 1000 / clock_ticks(),
    ))
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on Linux).
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
            .unwrap_or(100)
    })
}

/// The pid of the `berth-controller serve` using `data_dir`.
pub fn controller_pid(data_dir: &Path) -> anyhow::Result<u32> {
    let binary = berth_tests::bin("berth-controller");
    berth_tests::processes_running(&binary, data_dir)
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no controller process for {}", data_dir.display()))
}

/// Size of a file in MiB.
pub fn file_mib(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(f64::NAN, |meta| meta.len() as f64 / (1024.0 * 1024.0))
}
