//! The live view of `berth deploy`, `cancel`, `retry` and friends: the
//! deployment's transitions (from `WatchDeployment` snapshots) and berth's
//! own progress lines (from a `GetLogs` follow), in the order they happened.
//!
//! The two arrive on separate streams, so a stage's last lines can come
//! after the snapshot saying the stage ended. Everything waits [`HOLD`] in
//! a small buffer, and a host's lines and the transitions its agent's
//! events caused (both numbered in the task's event sequence) are put in
//! sequence order (see [`in_order`]).

use std::time::Instant;

use berth_proto::v1::{GetDeploymentRequest, GetLogsRequest, LogRecord};
use berth_shared::record::Deployment;

use super::deploy::parse;
use super::output::{progress, transition_text};
use super::{Failure, Format, Session};

/// How long an entry waits for what may have to be printed before it.
const HOLD: std::time::Duration = std::time::Duration::from_millis(100);

/// Prints each new transition and progress line until the deployment is
/// quiet; returns the last snapshot.
pub async fn follow(session: &mut Session, deployment: &Deployment) -> Result<Deployment, Failure> {
    let id = deployment.id.to_string();
    let mut watch = session
        .client
        .watch_deployment(GetDeploymentRequest { id: id.clone() })
        .await?
        .into_inner();
    // berth's own progress lines (bundle fetch, image pull or load, container
    // start) and the containers' start-up output, beside the transitions.
    let request = GetLogsRequest {
        deployment_id: id,
        follow: true,
        host: String::new(),
        stage: String::new(),
        tail: 0,
        app_output: false,
        stream: String::new(),
        level: String::new(),
        since_ms: 0,
        after_seq: Default::default(),
    };
    let mut logs = session.client.clone().get_logs(request).await?.into_inner();
    let mut logs_open = true;
    let mut view = View::new(session.format);
    let mut printed = deployment.transitions.len();
    let mut last = deployment.clone();
    loop {
        let due = view.due();
        tokio::select! {
            reply = watch.message() => {
                let reply = match reply {
                    Ok(reply) => reply,
                    Err(status) => {
                        view.flush();
                        return Err(status.into());
                    }
                };
                let Some(reply) = reply else { break };
                let current: Deployment = parse(&reply.json)?;
                for transition in current.transitions.iter().skip(printed) {
                    // Numbered entries are ordered within their task.
                    let numbered = transition
                        .seq
                        .zip(transition.task.map(|task| task.to_string()));
                    view.add(numbered, transition_text(transition));
                }
                printed = current.transitions.len();
                last = current;
            }
            record = logs.message(), if logs_open => match record {
                Ok(Some(record)) => view.add_line(&record),
                // The live view goes on without lines if their stream fails.
                Ok(None) | Err(_) => logs_open = false,
            },
            () = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                view.flush_due();
            }
        }
    }
    // Lines still in flight when the deployment settled.
    while logs_open {
        match tokio::time::timeout(std::time::Duration::from_secs(2), logs.message()).await {
            Ok(Ok(Some(record))) => view.add_line(&record),
            _ => logs_open = false,
        }
    }
    view.flush();
    Ok(last)
}

/// One entry waiting to be printed.
struct Entry {
    arrived: tokio::time::Instant,
    /// Its place in a task's event sequence, and the task, when it has one.
    numbered: Option<(u64, String)>,
    text: String,
}

/// The reorder buffer.
struct View {
    format: Format,
    started: Instant,
    pending: Vec<Entry>,
}

impl View {
    fn new(format: Format) -> View {
        View {
            format,
            started: Instant::now(),
            pending: Vec::new(),
        }
    }

    /// When the oldest entry has waited long enough.
    fn due(&self) -> Option<tokio::time::Instant> {
        self.pending.iter().map(|entry| entry.arrived + HOLD).min()
    }

    fn add(&mut self, numbered: Option<(u64, String)>, text: String) {
        let elapsed = self.started.elapsed().as_secs_f32();
        self.pending.push(Entry {
            arrived: tokio::time::Instant::now(),
            numbered,
            text: format!("{elapsed:>6.1}s  {text}"),
        });
    }

    /// berth's own progress lines and the containers' start-up output
    /// (script output stays in `berth logs`).
    fn add_line(&mut self, record: &LogRecord) {
        let marker = match (record.stream.as_str(), record.stage.as_str()) {
            ("system", _) => "#",
            // A container's start-up output, and the build's output.
            ("container", _) | ("stdout" | "stderr", "build") => "|",
            _ => return,
        };
        let text = format!("{:<16} {marker} {}", record.host, record.line);
        self.add(Some((record.seq, record.task_id.clone())), text);
    }

    /// Prints, in order, the entries that have waited [`HOLD`] and what
    /// must come before them; the rest go on waiting.
    fn flush_due(&mut self) {
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
    fn flush(&mut self) {
        for entry in in_order(std::mem::take(&mut self.pending)) {
            progress(self.format, &entry.text);
        }
    }
}

/// `entries` in arrival order, except that a task's numbered entry goes
/// before that task's entries with higher numbers that arrived earlier
/// (and so before what arrived after those).
fn in_order(entries: Vec<Entry>) -> Vec<Entry> {
    let mut ordered: Vec<Entry> = Vec::with_capacity(entries.len());
    for entry in entries {
        let later = entry.numbered.as_ref().and_then(|(seq, task)| {
            ordered.iter().position(|placed| {
                placed
                    .numbered
                    .as_ref()
                    .is_some_and(|(other, other_task)| other_task == task && other > seq)
            })
        });
        match later {
            Some(at) => ordered.insert(at, entry),
            None => ordered.push(entry),
        }
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::{Entry, in_order};

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
