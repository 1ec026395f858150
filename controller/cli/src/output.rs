//! Output helpers: `-o table` prints for people on stdout (`-o wide` with
//! every column), `-o json` prints only JSON on stdout and sends progress
//! to stderr.

use clap::ValueEnum;
use serde::Serialize;

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tables for people, fitted to the terminal.
    Table,
    /// JSON on stdout, progress on stderr.
    Json,
    /// Tables with every column and whole cells, however wide.
    Wide,
}

/// Prints `value` as JSON, or the text `human` builds.
pub fn emit<T: Serialize>(format: Format, value: &T, human: impl FnOnce() -> String) {
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Format::Table | Format::Wide => println!("{}", human()),
    }
}

/// Prints `value` as [`emit`] does, but with the keys of its JSON objects
/// in alphabetical order, not the record's field order: how `-o json`
/// printed the records this CLI once read as untyped JSON (`purge`,
/// `audit`, `registry`), kept byte for byte.
pub fn emit_sorted<T: Serialize>(format: Format, value: &T, human: impl FnOnce() -> String) {
    match serde_json::to_value(value) {
        Ok(sorted) => emit(format, &sorted, human),
        Err(_) => emit(format, value, human),
    }
}

/// Progress text: stdout for people, stderr when stdout holds JSON.
pub fn progress(format: Format, line: &str) {
    match format {
        Format::Json => eprintln!("{line}"),
        Format::Table | Format::Wide => println!("{line}"),
    }
}

pub use super::grid::{Column, grid};

/// Bytes as a short human size.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// "3m ago" style age of a timestamp.
pub fn ago(ts: berth_shared::record::Timestamp) -> String {
    let elapsed = (berth_shared::time::now_ms() - ts.0).max(0) as u64;
    let rounded = std::time::Duration::from_secs(elapsed / 1000);
    if rounded.as_secs() == 0 {
        "just now".into()
    } else {
        format!("{} ago", humantime::format_duration(rounded))
    }
}

/// One history entry as text: `subject  from → to  (reason)`.
pub fn transition_text(transition: &berth_shared::record::Transition) -> String {
    let from = transition
        .from
        .as_deref()
        .map(|from| format!("{from} → "))
        .unwrap_or_default();
    let reason = transition
        .reason
        .as_deref()
        .map(|reason| format!("  ({reason})"))
        .unwrap_or_default();
    format!("{:<16} {from}{}{reason}", transition.subject, transition.to)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_well() {
        assert_eq!(super::size(512), "512 B");
        assert_eq!(super::size(1536), "1.5 KiB");
        assert_eq!(super::size(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
