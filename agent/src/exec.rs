//! Fleet-wide `berth exec` on this host: runs the program (not a shell
//! line) with a timeout, in its own process group so a timeout kills its
//! children too, and streams its output back in batches. Output beyond
//! [`MAX_OUTPUT`] bytes is counted, not sent.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use berth_proto::v1::agent_message::Kind as Outgoing;
use berth_proto::v1::{AgentMessage, ExecLine, ExecOutput, ExecRequest};
use tokio::sync::mpsc;

use crate::Agent;
use crate::stage::shell::{self, LineSink, Outcome, Stream};

/// Most output bytes one exec sends back.
pub const MAX_OUTPUT: usize = 1024 * 1024;
/// Longest timeout accepted.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// How often collected lines are sent.
const BATCH_EVERY: Duration = Duration::from_millis(50);

/// How the command ended on this host (`berth.v1.ExecStatus` on the wire,
/// converted in [`crate::wire`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// It exited with code 0.
    Ok,
    /// It exited with another code, or was killed by a signal.
    Failed,
    /// It ran past its timeout and was killed.
    TimedOut,
    /// It could not run: no command, it could not start, the agent stopping.
    Error,
}

#[derive(Default)]
struct Collected {
    lines: Vec<ExecLine>,
    bytes: usize,
    dropped: u64,
}

#[derive(Default)]
struct Collector(Mutex<Collected>);

impl Collector {
    fn take(&self) -> Vec<ExecLine> {
        std::mem::take(&mut self.lock().lines)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Collected> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl LineSink for Collector {
    fn line(&self, stream: Stream, line: String) {
        let mut collected = self.lock();
        if collected.bytes + line.len() > MAX_OUTPUT {
            collected.dropped += 1;
            return;
        }
        collected.bytes += line.len();
        collected.lines.push(ExecLine {
            stream: stream.into(),
            line,
        });
    }
}

/// Quotes one argument for `/bin/sh -c`, so the program runs with exactly
/// these arguments and no shell expansion.
pub fn quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// Runs one exec request and reports to `sender` until it ends.
pub async fn run(agent: &Agent, request: ExecRequest, sender: mpsc::Sender<AgentMessage>) {
    let request_id = request.request_id;
    let send = |output: ExecOutput| {
        let sender = sender.clone();
        async move {
            let _ = sender
                .send(AgentMessage {
                    kind: Some(Outgoing::ExecOutput(output)),
                })
                .await;
        }
    };
    if request.argv.is_empty() || request.argv[0].is_empty() {
        send(finished(
            request_id,
            Status::Error,
            None,
            "no command given".into(),
        ))
        .await;
        return;
    }
    let timeout = Duration::from_millis(request.timeout_ms.max(1)).min(MAX_TIMEOUT);
    let line = request
        .argv
        .iter()
        .map(|arg| quote(arg))
        .collect::<Vec<_>>()
        .join(" ");
    let command = format!("exec {line}");
    let env = BTreeMap::from([("BERTH_HOST".to_string(), agent.identity.name.clone())]);
    let collector = Collector::default();
    let deadline = tokio::time::Instant::now() + timeout;
    let cancel = agent.shutdown.child_token();
    tracing::info!(request_id, argv = ?request.argv, "fleet exec started");
    let outcome = {
        let running = shell::run(
            &command,
            Path::new("/"),
            &env,
            deadline,
            &cancel,
            &collector,
        );
        tokio::pin!(running);
        let mut ticker = tokio::time::interval(BATCH_EVERY);
        loop {
            tokio::select! {
                outcome = &mut running => break outcome,
                _ = ticker.tick() => {
                    let lines = collector.take();
                    if !lines.is_empty() {
                        send(ExecOutput { request_id, lines, ..Default::default() }).await;
                    }
                }
            }
        }
    };
    let lines = collector.take();
    if !lines.is_empty() {
        send(ExecOutput {
            request_id,
            lines,
            ..Default::default()
        })
        .await;
    }
    let dropped = collector.lock().dropped;
    let note = if dropped > 0 {
        format!("; {dropped} output lines past {MAX_OUTPUT} bytes were not sent")
    } else {
        String::new()
    };
    let (status, exit_code, error) = match outcome {
        Ok(Outcome::Exited(0)) => (
            Status::Ok,
            Some(0),
            note.trim_start_matches("; ").to_string(),
        ),
        Ok(Outcome::Exited(127)) => (
            Status::Failed,
            Some(127),
            format!("`{}` was not found on this host{note}", request.argv[0]),
        ),
        Ok(Outcome::Exited(code)) => (
            Status::Failed,
            Some(code),
            format!("exited with code {code}{note}"),
        ),
        Ok(Outcome::Signaled(signal)) => (
            Status::Failed,
            None,
            format!("killed by signal {signal}{note}"),
        ),
        Ok(Outcome::TimedOut) => (
            Status::TimedOut,
            None,
            format!(
                "timed out after {}; its processes were killed{note}",
                berth_shared::time::format_duration(timeout)
            ),
        ),
        Ok(Outcome::Canceled) => (
            Status::Error,
            None,
            "the agent is shutting down".to_string(),
        ),
        Err(err) => (Status::Error, None, format!("could not start: {err}")),
    };
    tracing::info!(request_id, ?status, "fleet exec finished");
    send(finished(request_id, status, exit_code, error)).await;
}

fn finished(request_id: u64, status: Status, exit_code: Option<i32>, error: String) -> ExecOutput {
    ExecOutput {
        request_id,
        lines: Vec::new(),
        finished: true,
        status: status.into(),
        exit_code,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_arguments_as_they_are() {
        assert_eq!(quote("plain"), "'plain'");
        assert_eq!(quote("it's $HOME; rm -rf /"), r"'it'\''s $HOME; rm -rf /'");
    }

    #[tokio::test]
    async fn quoted_arguments_reach_the_program_unexpanded() {
        let collector = Collector::default();
        let argv = ["printf", "%s|", "a b", "$HOME", "it's"];
        let line = argv
            .iter()
            .map(|arg| quote(arg))
            .collect::<Vec<_>>()
            .join(" ");
        let outcome = shell::run(
            &format!("exec {line}"),
            Path::new("/"),
            &BTreeMap::new(),
            tokio::time::Instant::now() + Duration::from_secs(10),
            &tokio_util::sync::CancellationToken::new(),
            &collector,
        )
        .await
        .expect("run");
        assert!(matches!(outcome, Outcome::Exited(0)));
        let lines: Vec<String> = collector.take().into_iter().map(|l| l.line).collect();
        assert_eq!(lines, ["a b|$HOME|it's|"]);
    }
}
