//! Script stages: each command runs as `/bin/sh -c COMMAND` in the unpacked
//! bundle, in its own process group, with stdout and stderr streamed line by
//! line. The stage has one deadline; on timeout or cancel the whole process
//! group gets SIGTERM, then SIGKILL after a grace period.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::process;

/// Longest line kept; longer lines are split.
pub const MAX_LINE_BYTES: usize = 16 * 1024;
/// Time between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// How one command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    Signaled(i32),
    TimedOut,
    Canceled,
}

/// Receives output lines: `(stream, line)`.
pub trait LineSink: Send + Sync {
    fn line(&self, stream: &str, line: String);
    /// Called with the process id once the command started.
    fn started(&self, _pid: u32) {}
    fn ended(&self) {}
}

/// Runs one command until it ends, the deadline passes or `cancel` fires.
pub async fn run(
    command: &str,
    dir: &Path,
    env: &BTreeMap<String, String>,
    deadline: Instant,
    cancel: &CancellationToken,
    sink: &dyn LineSink,
) -> std::io::Result<Outcome> {
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().unwrap_or(0);
    sink.started(pid);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let output = async {
        tokio::join!(pump(stdout, "stdout", sink), pump(stderr, "stderr", sink));
    };
    let waited = async {
        let (status, ()) = tokio::join!(child.wait(), output);
        status
    };
    tokio::pin!(waited);
    let outcome = tokio::select! {
        status = &mut waited => {
            let status = status?;
            use std::os::unix::process::ExitStatusExt;
            match (status.code(), status.signal()) {
                (Some(code), _) => Outcome::Exited(code),
                (None, Some(signal)) => Outcome::Signaled(signal),
                (None, None) => Outcome::Exited(-1),
            }
        }
        () = tokio::time::sleep_until(deadline) => {
            stop_group(pid, &mut waited).await;
            Outcome::TimedOut
        }
        () = cancel.cancelled() => {
            stop_group(pid, &mut waited).await;
            Outcome::Canceled
        }
    };
    sink.ended();
    Ok(outcome)
}

/// SIGTERM to the group, SIGKILL after the grace period; then drains.
async fn stop_group<F: std::future::Future + Unpin>(pid: u32, waited: &mut F) {
    process::signal_group(pid, process::TERM);
    if tokio::time::timeout(KILL_GRACE, &mut *waited)
        .await
        .is_err()
    {
        process::signal_group(pid, process::KILL);
        // Output pipes close once every member of the group is gone.
        let _ = tokio::time::timeout(KILL_GRACE, waited).await;
    }
}

async fn pump(reader: Option<impl AsyncRead + Unpin>, stream: &str, sink: &dyn LineSink) {
    let Some(reader) = reader else { return };
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        match read_line(&mut reader, &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                while line
                    .last()
                    .is_some_and(|byte| *byte == b'\n' || *byte == b'\r')
                {
                    line.pop();
                }
                sink.line(stream, clip(String::from_utf8_lossy(&line).into_owned()));
            }
        }
    }
}

/// Cuts a line to at most [`MAX_LINE_BYTES`] bytes on a character
/// boundary (lossy UTF-8 decoding can make a line longer than its bytes).
fn clip(mut line: String) -> String {
    if line.len() > MAX_LINE_BYTES {
        let mut end = MAX_LINE_BYTES;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
    }
    line
}

/// Reads one line of at most [`MAX_LINE_BYTES`] (a longer one is split).
async fn read_line<R: AsyncBufReadExt + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(total);
        }
        let room = MAX_LINE_BYTES - line.len();
        let window = &available[..available.len().min(room)];
        if let Some(newline) = window.iter().position(|byte| *byte == b'\n') {
            line.extend_from_slice(&window[..=newline]);
            reader.consume(newline + 1);
            return Ok(total + newline + 1);
        }
        let taken = window.len();
        line.extend_from_slice(window);
        reader.consume(taken);
        total += taken;
        if line.len() >= MAX_LINE_BYTES {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Lines(Mutex<Vec<(String, String)>>);

    impl LineSink for Lines {
        fn line(&self, stream: &str, line: String) {
            self.0
                .lock()
                .expect("lock")
                .push((stream.to_string(), line));
        }
    }

    async fn check(command: &str, timeout: Duration) -> (Outcome, Vec<(String, String)>) {
        let lines = Lines::default();
        let outcome = run(
            command,
            Path::new("/"),
            &BTreeMap::from([("GREETING".into(), "hi".into())]),
            Instant::now() + timeout,
            &CancellationToken::new(),
            &lines,
        )
        .await
        .expect("spawn");
        (outcome, lines.0.into_inner().expect("lock"))
    }

    #[tokio::test]
    async fn streams_both_outputs_and_exit_code() {
        let (outcome, lines) = check(
            "echo $GREETING; echo oops >&2; exit 3",
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(outcome, Outcome::Exited(3));
        assert!(lines.contains(&("stdout".into(), "hi".into())));
        assert!(lines.contains(&("stderr".into(), "oops".into())));
    }

    #[tokio::test]
    async fn times_out_and_kills_the_whole_group() {
        let started = std::time::Instant::now();
        let (outcome, _) = check(
            "sleep 30 & sleep 30; echo never",
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(outcome, Outcome::TimedOut);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the background child must not hold the pipes open"
        );
    }

    #[tokio::test]
    async fn splits_overlong_lines() {
        let (outcome, lines) = check(
            "head -c 40000 /dev/zero | tr '\\0' x; echo",
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(outcome, Outcome::Exited(0));
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].1.len(), MAX_LINE_BYTES);
    }
}
