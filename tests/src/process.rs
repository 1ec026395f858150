//! Child processes whose output lines are collected by reader threads, so a
//! test can block until a line appears or the process exits, with a
//! deadline.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Lines read so far and whether the stream has ended.
type LineState = (Vec<(Instant, String)>, bool);

/// Lines read so far from one output stream, with a condition variable to
/// wait on.
#[derive(Clone, Default)]
pub struct Lines {
    inner: Arc<(Mutex<LineState>, Condvar)>,
}

impl Lines {
    fn push(&self, line: String) {
        let (lock, ready) = &*self.inner;
        lock.lock()
            .expect("lines lock")
            .0
            .push((Instant::now(), line));
        ready.notify_all();
    }

    fn close(&self) {
        let (lock, ready) = &*self.inner;
        lock.lock().expect("lines lock").1 = true;
        ready.notify_all();
    }

    /// Every line so far.
    pub fn all(&self) -> Vec<String> {
        self.inner
            .0
            .lock()
            .expect("lines lock")
            .0
            .iter()
            .map(|(_, line)| line.clone())
            .collect()
    }

    /// Every line so far with the time it was read.
    pub fn timed(&self) -> Vec<(Instant, String)> {
        self.inner.0.lock().expect("lines lock").0.clone()
    }

    /// Blocks until a line containing `needle` appears (returns it) or the
    /// stream ends or the deadline passes (returns `None`).
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Option<String> {
        self.wait_for_nth_line(needle, 1, timeout)
    }

    /// Blocks until the `n`th line (counting from 1) containing `needle`
    /// appears and returns when it was read, or `None` when the stream
    /// ends or the deadline passes first.
    pub fn wait_for_nth(&self, needle: &str, n: usize, timeout: Duration) -> Option<Instant> {
        self.nth_match(needle, n, timeout).map(|(at, _)| at)
    }

    /// Like [`Lines::wait_for_nth`], returning the line itself.
    pub fn wait_for_nth_line(&self, needle: &str, n: usize, timeout: Duration) -> Option<String> {
        self.nth_match(needle, n, timeout).map(|(_, line)| line)
    }

    fn nth_match(&self, needle: &str, n: usize, timeout: Duration) -> Option<(Instant, String)> {
        let skip = n.checked_sub(1)?;
        self.wait_until(timeout, |lines| {
            lines
                .iter()
                .filter(|(_, line)| line.contains(needle))
                .nth(skip)
                .cloned()
        })
    }

    /// Blocks until `pick` finds something in the lines read so far
    /// (returns it), or the stream ends or the deadline passes (`None`).
    fn wait_until<T>(
        &self,
        timeout: Duration,
        pick: impl Fn(&[(Instant, String)]) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let (lock, ready) = &*self.inner;
        let mut state = lock.lock().expect("lines lock");
        loop {
            if let Some(found) = pick(&state.0) {
                return Some(found);
            }
            let now = Instant::now();
            if state.1 || now >= deadline {
                return None;
            }
            state = ready
                .wait_timeout(state, deadline - now)
                .expect("lines lock")
                .0;
        }
    }

    /// How many lines so far contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        let state = self.inner.0.lock().expect("lines lock");
        state
            .0
            .iter()
            .filter(|(_, line)| line.contains(needle))
            .count()
    }

    /// Blocks until the stream ends or the deadline passes.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, ready) = &*self.inner;
        let mut state = lock.lock().expect("lines lock");
        while !state.1 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = ready
                .wait_timeout(state, deadline - now)
                .expect("lines lock")
                .0;
        }
        true
    }
}

fn collect(reader: impl std::io::Read + Send + 'static, lines: Lines, log: Option<PathBuf>) {
    std::thread::spawn(move || {
        let mut file = log.and_then(|path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .ok()
        });
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if let Some(file) = file.as_mut() {
                let _ = writeln!(file, "{line}");
            }
            lines.push(line);
        }
        lines.close();
    });
}

/// A running child process.
pub struct Running {
    child: Child,
    pub stdout: Lines,
    pub stderr: Lines,
    log: PathBuf,
}

impl Running {
    /// Spawns `command`; stderr is also appended to `log`.
    pub fn spawn(mut command: Command, log: &Path) -> Running {
        let _ = File::create(log);
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn process");
        let stdout = Lines::default();
        let stderr = Lines::default();
        collect(child.stdout.take().expect("stdout"), stdout.clone(), None);
        collect(
            child.stderr.take().expect("stderr"),
            stderr.clone(),
            Some(log.to_path_buf()),
        );
        Running {
            child,
            stdout,
            stderr,
            log: log.to_path_buf(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until this agent (or `berth-controller dev`) says it is
    /// connected to the controller; fails the test with `who` and its log
    /// otherwise.
    pub fn expect_connected(&self, who: &str) {
        self.expect_logged("connected to the controller", 1, who);
    }

    /// Waits for the `nth` line (from 1) of this process's log (stderr)
    /// containing `needle` and returns it; fails the test with `who` and
    /// the log otherwise.
    pub fn expect_logged(&self, needle: &str, nth: usize, who: &str) -> String {
        self.stderr
            .wait_for_nth_line(needle, nth, crate::DEADLINE)
            .unwrap_or_else(|| {
                panic!(
                    "{who} did not log {needle:?} (time {nth}):\n{}",
                    self.log_tail()
                )
            })
    }

    /// The last lines of stderr, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Waits for the process to exit; returns its exit code (or -1 when
    /// killed by a signal), or `None` at the deadline.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        // The output readers close when the process and its children exit;
        // both are waited for, so a caller reads all of stderr afterwards.
        let deadline = Instant::now() + timeout;
        if !self.stdout.wait_closed(timeout)
            || !self
                .stderr
                .wait_closed(deadline.saturating_duration_since(Instant::now()))
        {
            return None;
        }
        self.child
            .wait()
            .ok()
            .map(|status| status.code().unwrap_or(-1))
    }

    /// SIGTERM (a graceful stop, like Ctrl-C).
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// SIGINT (Ctrl-C at a terminal).
    pub fn interrupt(&self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill9();
    }
}
