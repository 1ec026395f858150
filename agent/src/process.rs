//! Signals to process groups: the one module of the agent that needs
//! `unsafe`, for `libc::kill`. Every script stage runs in its own process
//! group, so killing the group also ends the children it started.
#![allow(unsafe_code)]

/// Sends `signal` to every process in the group `pgid`.
pub fn signal_group(pgid: u32, signal: i32) -> bool {
    let Ok(pgid) = i32::try_from(pgid) else {
        return false;
    };
    if pgid <= 1 {
        // 0 and 1 would signal our own group or every process we may signal.
        return false;
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; a
    // negative pid addresses the process group, which we checked is > 1.
    unsafe { libc::kill(-pgid, signal) == 0 }
}

/// SIGTERM.
pub const TERM: i32 = libc::SIGTERM;
/// SIGKILL.
pub const KILL: i32 = libc::SIGKILL;

/// The start time of a process (field 22 of `/proc/PID/stat`, in clock
/// ticks since boot), used to recognise a process after a restart without
/// being fooled by pid reuse.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_start_time_and_refuses_unsafe_groups() {
        assert!(start_time(std::process::id()).is_some());
        assert!(!signal_group(0, TERM));
        assert!(!signal_group(1, TERM));
    }
}
