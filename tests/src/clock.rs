//! A skewed wall clock for one process, without touching the machine's:
//! libfaketime (Debian's `faketime` package) preloaded into it shifts what
//! `clock_gettime(CLOCK_REALTIME)` answers by a fixed offset, while the
//! monotonic clock (timers, timeouts) stays real.

use std::path::PathBuf;

use crate::skip;

/// The preloadable library of Debian's `libfaketime`, if installed.
fn library() -> Option<PathBuf> {
    let lib = std::fs::read_dir("/usr/lib").ok()?;
    lib.flatten()
        .map(|entry| entry.path().join("faketime/libfaketime.so.1"))
        .chain([PathBuf::from("/usr/lib/faketime/libfaketime.so.1")])
        .find(|path| path.is_file())
}

/// Environment variables that run a process with its wall clock shifted
/// by `offset` (libfaketime's syntax: `-10m`, `+2h`); or `None` after
/// skipping `test` (printing why) when libfaketime is not installed.
pub fn skewed(test: &str, offset: &str) -> Option<Vec<(String, String)>> {
    let Some(library) = library() else {
        skip(test, "libfaketime (apt-get install faketime)");
        return None;
    };
    Some(vec![
        ("LD_PRELOAD".into(), library.to_string_lossy().into_owned()),
        ("FAKETIME".into(), offset.into()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
    ])
}
