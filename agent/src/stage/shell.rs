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

/// Which output a line came from (`berth.v1.OutputStream` on the wire,
/// converted in [`crate::wire`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
    /// berth's own account of what it does (`$ ./setup.sh`, `pulling image`).
    System,
    /// A deployed container's own output.
    Container,
}

/// Receives output lines: `(stream, line)`.
pub trait LineSink: Send + Sync {
    fn line(&self, stream: Stream, line: String);
    /// Several lines of one stream, in order (one hand-over for all that
    /// one read of the pipe brought).
    fn lines(&self, stream: Stream, lines: Vec<String>) {
        for line in lines {
            self.line(stream, line);
        }
    }
    /// A wait to finish before reading more output, when the lines so far
    /// are not yet taken in fast enough; `None` when there is room.
    fn room(&self) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>> {
        None
    }
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
    // Set when the command is being stopped: its last output is read at
    // once, without waiting for room, before the kill grace runs out.
    let stopping = CancellationToken::new();
    let output = async {
        tokio::join!(
            pump(stdout, Stream::Stdout, sink, &stopping),
            pump(stderr, Stream::Stderr, sink, &stopping)
        );
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
            stopping.cancel();
            stop_group(pid, &mut waited).await;
            Outcome::TimedOut
        }
        () = cancel.cancelled() => {
            stopping.cancel();
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

/// Lines handed over at most at once.
const LINES_PER_HANDOVER: usize = 512;

/// Reads one stream's lines and hands them to `sink` in blocks: what one
/// read of the pipe brought goes over at once, so a flood of output costs
/// one hand-over (and one spool write) per read, not per line.
async fn pump(
    reader: Option<impl AsyncRead + Unpin>,
    stream: Stream,
    sink: &dyn LineSink,
    stopping: &CancellationToken,
) {
    let Some(reader) = reader else { return };
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut line = Vec::new();
    let mut block = Vec::new();
    loop {
        line.clear();
        let read = read_line(&mut reader, &mut line).await;
        let ended = matches!(read, Ok(0) | Err(_));
        if !ended {
            while line
                .last()
                .is_some_and(|byte| *byte == b'\n' || *byte == b'\r')
            {
                line.pop();
            }
            block.push(clip(String::from_utf8_lossy(&line).into_owned()));
        }
        // Hand over before the next read could wait on the pipe.
        if ended || !line_ready(reader.buffer()) || block.len() >= LINES_PER_HANDOVER {
            if !block.is_empty() {
                sink.lines(stream, std::mem::take(&mut block));
            }
            if let Some(room) = sink.room().filter(|_| !stopping.is_cancelled()) {
                tokio::select! {
                    () = room => {}
                    () = stopping.cancelled() => {}
                }
            }
        }
        if ended {
            return;
        }
    }
}

/// True when [`read_line`] can return a line from `buffer` without reading
/// the pipe.
fn line_ready(buffer: &[u8]) -> bool {
    buffer.len() >= MAX_LINE_BYTES || buffer.contains(&b'\n')
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
    struct Lines(Mutex<Vec<(Stream, String)>>);

    impl LineSink for Lines {
        fn line(&self, stream: Stream, line: String) {
            self.0.lock().expect("lock").push((stream, line));
        }
    }

    async fn check(command: &str, timeout: Duration) -> (Outcome, Vec<(Stream, String)>) {
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
        assert!(lines.contains(&(Stream::Stdout, "hi".into())));
        assert!(lines.contains(&(Stream::Stderr, "oops".into())));
    }

    // The paused clock reaches the timeout as soon as nothing else can
    // happen; the real time taken shows the group was killed and the
    // pipes closed, not waited out.
    #[tokio::test(start_paused = true)]
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

    /// Records when each line arrived.
    struct Timed(Mutex<Vec<(String, std::time::Instant)>>);

    impl LineSink for Timed {
        fn line(&self, _stream: Stream, line: String) {
            self.0
                .lock()
                .expect("lock")
                .push((line, std::time::Instant::now()));
        }
    }

    #[tokio::test]
    async fn a_whole_line_is_handed_over_before_a_partial_one_completes() {
        let sink = Timed(Mutex::new(Vec::new()));
        let started = std::time::Instant::now();
        let outcome = run(
            "echo first; printf part; sleep 1; echo ial",
            Path::new("/"),
            &BTreeMap::new(),
            Instant::now() + Duration::from_secs(10),
            &CancellationToken::new(),
            &sink,
        )
        .await
        .expect("spawn");
        let ended = started.elapsed();
        assert_eq!(outcome, Outcome::Exited(0));
        let lines = sink.0.into_inner().expect("lock");
        let texts: Vec<&str> = lines.iter().map(|(line, _)| line.as_str()).collect();
        assert_eq!(texts, ["first", "partial"]);
        let first_after = lines[0].1.duration_since(started);
        assert!(
            first_after + Duration::from_millis(500) < ended,
            "`first` arrived {first_after:?} after the start, the command took {ended:?}"
        );
    }

    /// Never has room for more output.
    struct Stuck(Mutex<Vec<String>>);

    impl LineSink for Stuck {
        fn line(&self, _stream: Stream, line: String) {
            self.0.lock().expect("lock").push(line);
        }

        fn room(
            &self,
        ) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>> {
            Some(Box::pin(std::future::pending()))
        }
    }

    #[tokio::test]
    async fn a_stopped_command_s_last_output_is_read_even_without_room() {
        let dir = tempfile::tempdir().expect("tempdir");
        let written = dir.path().join("written");
        let sink = Stuck(Mutex::new(Vec::new()));
        let cancel = CancellationToken::new();
        // Cancel once all the output is in the pipe (far more than one
        // hand-over, far less than the pipe holds).
        let canceler = tokio::spawn({
            let (cancel, written) = (cancel.clone(), written.clone());
            async move {
                for _ in 0..1000 {
                    if written.exists() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                cancel.cancel();
            }
        });
        let outcome = run(
            &format!("seq 1 2000; touch {}; sleep 30", written.display()),
            Path::new("/"),
            &BTreeMap::new(),
            Instant::now() + Duration::from_secs(60),
            &cancel,
            &sink,
        )
        .await
        .expect("spawn");
        canceler.await.expect("canceler");
        assert_eq!(outcome, Outcome::Canceled);
        let lines = sink.0.into_inner().expect("lock");
        let expected: Vec<String> = (1..=2000).map(|n| n.to_string()).collect();
        assert_eq!(
            lines.len(),
            expected.len(),
            "every line printed before the stop"
        );
        assert!(lines == expected, "in order");
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
