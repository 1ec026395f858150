//! The reorder buffer of the live view: entries (transitions and log
//! lines) wait [`HOLD`] so that a host's lines and the transitions its
//! events caused are printed in the task's event order (see [`in_order`]),
//! whichever of the two streams brought them first.

use std::collections::HashMap;
use std::time::Instant;

use berth_proto::v1::LogRecord;

use super::super::Format;
use super::super::output::progress;

/// How long an entry waits for what may have to be printed before it.
const HOLD: std::time::Duration = std::time::Duration::from_millis(100);

/// One entry waiting to be printed.
struct Entry {
    arrived: tokio::time::Instant,
    /// Its place in a task's event sequence, and the task, when it has one.
    numbered: Option<(u64, String)>,
    text: String,
}

/// The reorder buffer.
pub struct View {
    format: Format,
    /// Show the scripts' output lines (not with `--quiet`).
    scripts: bool,
    started: Instant,
    pending: Vec<Entry>,
}

impl View {
    pub fn new(format: Format, scripts: bool) -> View {
        View {
            format,
            scripts,
            started: Instant::now(),
            pending: Vec::new(),
        }
    }

    /// When the oldest entry has waited long enough.
    pub fn due(&self) -> Option<tokio::time::Instant> {
        self.pending.iter().map(|entry| entry.arrived + HOLD).min()
    }

    pub fn add(&mut self, numbered: Option<(u64, String)>, text: String) {
        let elapsed = self.started.elapsed().as_secs_f32();
        self.pending.push(Entry {
            arrived: tokio::time::Instant::now(),
            numbered,
            text: format!("{elapsed:>6.1}s  {text}"),
        });
    }

    /// berth's own progress lines, the scripts' output (`host | line`,
    /// `host ! line` for stderr) unless hidden, the containers' start-up
    /// output and the build's output.
    pub fn add_line(&mut self, record: &LogRecord) {
        let Some(marker) = marker(record, self.scripts) else {
            return;
        };
        let text = format!("{:<16} {marker} {}", record.host, record.line);
        self.add(Some((record.seq, record.task_id.clone())), text);
    }

    /// Prints, in order, the entries that have waited [`HOLD`] and what
    /// must come before them; the rest go on waiting.
    pub fn flush_due(&mut self) {
        let mut ordered = in_order(std::mem::take(&mut self.pending));
        let now = tokio::time::Instant::now();
        let printable = ordered
            .iter()
            .rposition(|entry| entry.arrived + HOLD <= now)
            .map_or(0, |last| last + 1);
        self.pending = ordered.split_off(printable);
        for entry in ordered {
            progress(self.format, &entry.text);
        }
    }

    /// Prints everything waiting, in order.
    pub fn flush(&mut self) {
        for entry in in_order(std::mem::take(&mut self.pending)) {
            progress(self.format, &entry.text);
        }
    }
}

/// How a log line shows in the live view, or `None` when it does not.
fn marker(record: &LogRecord, scripts: bool) -> Option<&'static str> {
    match (record.stream.as_str(), record.stage.as_str()) {
        ("system", _) => Some("#"),
        // A container's start-up output, and the build's output.
        ("container", _) | ("stdout" | "stderr", "build") => Some("|"),
        ("stdout", _) if scripts => Some("|"),
        ("stderr", _) if scripts => Some("!"),
        _ => None,
    }
}

/// `entries` in arrival order, except that a task's numbered entry goes
/// before that task's entries with higher numbers that arrived earlier
/// (and so before what arrived after those).
fn in_order(entries: Vec<Entry>) -> Vec<Entry> {
    let mut ordered: Vec<Entry> = Vec::with_capacity(entries.len());
    // The highest number placed per task: an entry above it (the usual
    // case, a script's output in order) goes last without a search, so a
    // flood of lines costs linear time.
    let mut highest: HashMap<String, u64> = HashMap::new();
    for entry in entries {
        let later = entry.numbered.as_ref().and_then(|(seq, task)| {
            if highest.get(task).is_none_or(|top| top < seq) {
                return None;
            }
            ordered.iter().position(|placed| {
                placed
                    .numbered
                    .as_ref()
                    .is_some_and(|(other, other_task)| other_task == task && other > seq)
            })
        });
        if let Some((seq, task)) = &entry.numbered {
            let top = highest.entry(task.clone()).or_insert(*seq);
            *top = (*top).max(*seq);
        }
        match later {
            Some(at) => ordered.insert(at, entry),
            None => ordered.push(entry),
        }
    }
    ordered
}

#[cfg(test)]
mod tests {
    use berth_proto::v1::LogRecord;

    use super::{Entry, in_order, marker};

    #[test]
    fn script_output_shows_unless_quiet() {
        let line = |stream: &str, stage: &str| LogRecord {
            stream: stream.into(),
            stage: stage.into(),
            ..LogRecord::default()
        };
        assert_eq!(marker(&line("stdout", "setup"), true), Some("|"));
        assert_eq!(marker(&line("stderr", "setup"), true), Some("!"));
        assert_eq!(marker(&line("stdout", "setup"), false), None);
        assert_eq!(marker(&line("stderr", "stop"), false), None);
        assert_eq!(marker(&line("system", "setup"), false), Some("#"));
        assert_eq!(marker(&line("stdout", "build"), false), Some("|"));
        assert_eq!(marker(&line("container", "deploy"), false), Some("|"));
    }

    /// An entry; `task` names the task's sequence (unused without `seq`).
    fn entry(task: &str, seq: Option<u64>, text: &str) -> Entry {
        Entry {
            arrived: tokio::time::Instant::now(),
            numbered: seq.map(|seq| (seq, task.to_string())),
            text: text.into(),
        }
    }

    fn texts(entries: Vec<Entry>) -> Vec<String> {
        in_order(entries)
            .into_iter()
            .map(|entry| entry.text)
            .collect()
    }

    #[test]
    fn a_stages_lines_come_before_its_end_whichever_stream_was_first() {
        // The snapshot first, then the lines the same batch carried.
        let snapshot_first = vec![
            entry("h1", Some(3), "deploy → health"),
            entry("h1", Some(5), "health → proxy"),
            entry("h1", Some(7), "proxy → done"),
            entry("deployment", None, "deploying → deployed"),
            entry("h1", Some(2), "container is running"),
            entry("h1", Some(4), "health check passed"),
            entry("h1", Some(6), "Caddy routes"),
        ];
        let expected = [
            "container is running",
            "deploy → health",
            "health check passed",
            "health → proxy",
            "Caddy routes",
            "proxy → done",
            "deploying → deployed",
        ];
        assert_eq!(texts(snapshot_first), expected);
        // The lines first.
        let lines_first = vec![
            entry("h1", Some(2), "container is running"),
            entry("h1", Some(4), "health check passed"),
            entry("h1", Some(6), "Caddy routes"),
            entry("h1", Some(3), "deploy → health"),
            entry("h1", Some(5), "health → proxy"),
            entry("h1", Some(7), "proxy → done"),
            entry("deployment", None, "deploying → deployed"),
        ];
        assert_eq!(texts(lines_first), expected);
    }

    #[test]
    fn two_tasks_on_one_host_keep_their_own_numbering() {
        // A build and then a deploy on the same host: each numbers its
        // events from 1, and neither moves the other's entries.
        let entries = vec![
            entry("build", Some(5), "build → done"),
            entry("deploy", Some(2), "fetching bundle"),
            entry("build", Some(4), "last build line"),
            entry("deploy", Some(1), "assigned → setup"),
        ];
        assert_eq!(
            texts(entries),
            [
                "last build line",
                "build → done",
                "assigned → setup",
                "fetching bundle",
            ]
        );
    }

    #[test]
    fn a_flood_in_order_is_placed_quickly() {
        let entries: Vec<Entry> = (1..=200_000)
            .map(|seq| entry("h1", Some(seq), "line"))
            .collect();
        let started = std::time::Instant::now();
        let ordered = in_order(entries);
        assert_eq!(ordered.len(), 200_000);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let seqs: Vec<u64> = ordered
            .iter()
            .filter_map(|entry| entry.numbered.as_ref().map(|(seq, _)| *seq))
            .collect();
        assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn other_hosts_and_unnumbered_entries_keep_their_place() {
        let entries = vec![
            entry("deployment", None, "pending → setup_running"),
            entry("h1", None, "queued → assigned"),
            entry("h2", Some(2), "h2 second"),
            entry("h1", Some(1), "h1 first"),
            entry("h2", Some(1), "h2 first"),
        ];
        assert_eq!(
            texts(entries),
            [
                "pending → setup_running",
                "queued → assigned",
                "h2 first",
                "h2 second",
                "h1 first",
            ]
        );
    }
}
