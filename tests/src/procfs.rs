//! What `/proc` says about a process: resident memory, CPU time and open
//! files, finding the controller's pid by its data directory, sizes on
//! disk, and raising this process's open-file limit for the benchmark and
//! chaos programs.

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

/// Open file descriptors (sockets included), or `None` when the process
/// is gone.
pub fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
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
    let binary = crate::bin("berth-controller");
    crate::processes_running(&binary, data_dir)
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no controller process for {}", data_dir.display()))
}

/// Size of a file in MiB.
pub fn file_mib(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(f64::NAN, |meta| meta.len() as f64 / (1024.0 * 1024.0))
}

/// Bytes of the files under `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Raises the soft limit on open files to the hard limit, for this process
/// and the controllers it starts (a scale run holds one socket per
/// simulated agent on each side). `prlimit` keeps `unsafe` out of the
/// harness.
pub fn raise_open_files() {
    let pid = std::process::id().to_string();
    let hard = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &pid,
            "--nofile",
            "--raw",
            "--noheadings",
            "--output",
            "HARD",
        ])
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|hard| !hard.is_empty());
    let Some(hard) = hard else {
        eprintln!("warning: prlimit is missing; keeping the open-file limit (`ulimit -n`)");
        return;
    };
    let raised = std::process::Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={hard}:{hard}")])
        .status()
        .is_ok_and(|status| status.success());
    if raised {
        eprintln!("open-file limit raised to {hard}");
    } else {
        eprintln!("warning: could not raise the open-file limit to {hard}");
    }
}

/// True while `pid` exists and is not a zombie (an exited process whose
/// parent has not reaped it yet no longer runs anything).
pub fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The command name may hold spaces; the state follows its `)`.
        stat.rfind(')')
            .and_then(|end| stat[end + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

/// The pids of the living processes with `text` in their command line
/// (e.g. a temporary directory only they were given).
pub fn mentioning(text: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(text))
        })
        .filter(|pid| is_alive(*pid))
        .collect()
}
