//! Which log lines `GetLogs` sends: the request's host, stage, stream,
//! level and time filters, and how serious a line is.
//!
//! A line's level is not stored; it follows from its stream and text, and
//! for berth's own lines from the deployment record: a `system` line that
//! repeats its stage's (or task's) recorded failure message is the failure
//! report. While that stage still runs the record cannot say yet, so the
//! answer for such a line is "not known" and the follower decides later.

use crate::ops::{Error, Result};
use berth_shared::id::TaskId;
use berth_shared::record::Deployment;

use crate::progress::is_quiet;
use crate::store::StoredLine;

/// The streams a line can be on: the stage's own output, berth's lines
/// about the stage, and an app container's output.
pub const STREAMS: [&str; 4] = ["stdout", "stderr", "system", "container"];

/// How serious a line is; `--level L` shows lines at L and above.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    /// The accepted spellings, lowest first.
    pub const NAMES: [&str; 3] = ["info", "warn", "error"];

    pub fn parse(text: &str) -> Option<Level> {
        match text {
            "info" => Some(Level::Info),
            "warn" => Some(Level::Warn),
            "error" => Some(Level::Error),
            _ => None,
        }
    }
}

/// The level of a line: `error` for a berth `system` line that starts with
/// `error:` or is its stage's failure message (`is_failure`), `warn` for
/// `stderr` lines and `system` lines starting with `warning:`, `info`
/// otherwise.
pub fn level(stream: &str, line: &str, is_failure: bool) -> Level {
    match stream {
        "system" if is_failure || line.starts_with("error:") => Level::Error,
        "system" if line.starts_with("warning:") => Level::Warn,
        "stderr" => Level::Warn,
        _ => Level::Info,
    }
}

/// Whether `line` of task `task_id` reports its stage's failure, as far as
/// `deployment` knows: `None` while the stage may still fail with it.
pub fn is_failure(deployment: &Deployment, task_id: TaskId, line: &StoredLine) -> Option<bool> {
    if line.stream != "system" {
        return Some(false);
    }
    let Some(task) = deployment.tasks.iter().find(|task| task.id == task_id) else {
        return Some(false);
    };
    let text = Some(line.line.as_str());
    let mut stages = task.stages.iter().filter(|stage| stage.stage == line.stage);
    if task.error_message.as_deref() == text
        || stages.clone().any(|stage| stage.error.as_deref() == text)
    {
        return Some(true);
    }
    let settled = is_quiet(deployment)
        || task.status.is_final()
        || stages
            .next_back()
            .is_some_and(|stage| stage.finished_at.is_some());
    settled.then_some(false)
}

/// The filters a logs request names; empty strings and zero mean "any".
#[derive(Clone, Debug, Default)]
pub struct LogFilters {
    pub host: String,
    pub stage: String,
    /// One of [`STREAMS`].
    pub stream: String,
    /// The lowest level shown: `info`, `warn` or `error`.
    pub level: String,
    /// Earliest time shown (Unix ms).
    pub since_ms: i64,
}

/// The checked filters of one logs request.
#[derive(Debug)]
pub struct LogFilter {
    pub host: Option<String>,
    stage: Option<String>,
    stream: Option<String>,
    /// Lowest level shown; `Info` shows everything.
    level: Level,
    /// Earliest `ts_ms` shown.
    since_ms: i64,
}

impl LogFilter {
    /// Reads and validates the request's filters.
    pub fn new(request: &LogFilters) -> Result<LogFilter> {
        let given = |text: &str| Some(text.to_string()).filter(|text| !text.is_empty());
        let stream = given(&request.stream);
        if let Some(stream) = &stream
            && !STREAMS.contains(&stream.as_str())
        {
            return Err(Error::invalid(format!(
                "unknown log stream `{stream}`; use one of {}",
                STREAMS.join(", ")
            )));
        }
        let level = match given(&request.level) {
            None => Level::Info,
            Some(text) => Level::parse(&text).ok_or_else(|| {
                Error::invalid(format!(
                    "unknown log level `{text}`; use one of {}",
                    Level::NAMES.join(", ")
                ))
            })?,
        };
        Ok(LogFilter {
            host: given(&request.host),
            stage: given(&request.stage),
            stream,
            level,
            since_ms: if request.since_ms == 0 {
                i64::MIN
            } else {
                request.since_ms
            },
        })
    }

    pub fn wants_host(&self, host: &str) -> bool {
        self.host.as_deref().is_none_or(|wanted| wanted == host)
    }

    /// Whether lines older than `ts_ms` can pass the time filter.
    pub fn admits_before(&self, ts_ms: i64) -> bool {
        self.since_ms < ts_ms
    }

    /// Whether `line` from `host` passes: `None` when that depends on
    /// whether it is its stage's failure message and `is_failure` cannot
    /// tell yet.
    pub fn wants(
        &self,
        host: &str,
        line: &StoredLine,
        is_failure: impl FnOnce() -> Option<bool>,
    ) -> Option<bool> {
        let selected = self.wants_host(host)
            && self
                .stage
                .as_deref()
                .is_none_or(|stage| stage == line.stage)
            && self
                .stream
                .as_deref()
                .is_none_or(|stream| stream == line.stream)
            && line.ts_ms >= self.since_ms;
        if !selected {
            return Some(false);
        }
        if self.level == Level::Info || level(&line.stream, &line.line, false) >= self.level {
            return Some(true);
        }
        if line.stream != "system" {
            return Some(false);
        }
        is_failure().map(|failure| level(&line.stream, &line.line, failure) >= self.level)
    }
}

#[cfg(test)]
mod tests {
    use berth_shared::record::{StageResult, Timestamp};
    use berth_shared::state::{DeploymentStatus, TaskStatus};

    use super::*;

    #[test]
    fn levels_of_lines() {
        let check = |stream: &str, line: &str, is_failure: bool, expected: Level| {
            assert_eq!(
                level(stream, line, is_failure),
                expected,
                "{stream}: {line} (failure: {is_failure})"
            );
        };
        check("stdout", "hello", false, Level::Info);
        check("stdout", "error: not berth's", false, Level::Info);
        check("container", "warning: app's own", false, Level::Info);
        check("stderr", "anything", false, Level::Warn);
        check("stderr", "error: still the script's", false, Level::Warn);
        check("system", "$ ./setup.sh", false, Level::Info);
        check("system", "warning: disk almost full", false, Level::Warn);
        check("system", "error: could not fetch", false, Level::Error);
        check(
            "system",
            "command `exit 7` exited with code 7",
            true,
            Level::Error,
        );
        assert!(Level::Info < Level::Warn && Level::Warn < Level::Error);
    }

    fn line(stage: &str, stream: &str, text: &str, ts_ms: i64) -> StoredLine {
        StoredLine {
            stage: stage.into(),
            stream: stream.into(),
            ts_ms,
            line: text.into(),
        }
    }

    /// A running deployment whose one task is in `setup`, which failed
    /// with `error` when given.
    fn setup(error: Option<&str>) -> Deployment {
        let mut deployment = crate::testing::deployment(&["h1"], 0);
        deployment.status = DeploymentStatus::SetupRunning;
        let task = &mut deployment.tasks[0];
        task.status = TaskStatus::Setup;
        task.stages.push(StageResult {
            stage: "setup".into(),
            outcome: if error.is_some() { "failed" } else { "running" }.into(),
            started_at: Timestamp(1),
            finished_at: error.map(|_| Timestamp(2)),
            duration_ms: None,
            exit_code: None,
            error: error.map(str::to_string),
            details: Default::default(),
        });
        deployment
    }

    #[test]
    fn failure_messages_are_known_once_the_stage_ends() {
        let message = "command `exit 7` exited with code 7";
        let failing = line("setup", "system", message, 1);
        let running = setup(None);
        let task = running.tasks[0].id;
        assert_eq!(is_failure(&running, task, &failing), None);
        let output = line("setup", "stdout", message, 1);
        assert_eq!(is_failure(&running, task, &output), Some(false));
        let failed = setup(Some(message));
        let task = failed.tasks[0].id;
        assert_eq!(is_failure(&failed, task, &failing), Some(true));
        let other = line("setup", "system", "$ exit 7", 1);
        assert_eq!(is_failure(&failed, task, &other), Some(false));
    }

    fn filter(request: LogFilters) -> LogFilter {
        LogFilter::new(&request).expect("valid filter")
    }

    #[test]
    fn filters_by_host_stage_stream_and_time() {
        let all = filter(LogFilters::default());
        let some = filter(LogFilters {
            host: "h1".into(),
            stage: "setup".into(),
            stream: "stdout".into(),
            since_ms: 100,
            ..Default::default()
        });
        let unknown = || None;
        let check = |host: &str, line: StoredLine, expected: bool| {
            assert_eq!(all.wants(host, &line, unknown), Some(true));
            assert_eq!(some.wants(host, &line, unknown), Some(expected), "{line:?}");
        };
        check("h1", line("setup", "stdout", "x", 100), true);
        check("h2", line("setup", "stdout", "x", 100), false);
        check("h1", line("stop", "stdout", "x", 100), false);
        check("h1", line("setup", "stderr", "x", 100), false);
        check("h1", line("setup", "stdout", "x", 99), false);
        assert!(!some.admits_before(100) && some.admits_before(101));
        assert!(all.admits_before(0));
    }

    #[test]
    fn level_filter_waits_only_for_lines_that_may_be_failures() {
        let warn = filter(LogFilters {
            level: "warn".into(),
            ..Default::default()
        });
        let check = |line: StoredLine, failure: Option<bool>, expected: Option<bool>| {
            assert_eq!(warn.wants("h1", &line, || failure), expected, "{line:?}");
        };
        check(line("setup", "stderr", "oops", 1), None, Some(true));
        check(line("setup", "stdout", "fine", 1), None, Some(false));
        check(line("setup", "system", "error: bad", 1), None, Some(true));
        check(line("setup", "system", "$ ./setup.sh", 1), None, None);
        check(
            line("setup", "system", "$ ./setup.sh", 1),
            Some(false),
            Some(false),
        );
        check(
            line("setup", "system", "exited 7", 1),
            Some(true),
            Some(true),
        );
    }

    #[test]
    fn unknown_stream_or_level_is_invalid_and_names_the_choices() {
        let check = |request: LogFilters, expected: &str| {
            let status = LogFilter::new(&request).expect_err("invalid");
            assert_eq!(status.code, crate::ops::Code::RequestInvalid);
            assert!(status.message.contains(expected), "{}", status.message);
        };
        let stream = LogFilters {
            stream: "stdin".into(),
            ..Default::default()
        };
        check(stream, "stdout, stderr, system, container");
        let level = LogFilters {
            level: "debug".into(),
            ..Default::default()
        };
        check(level, "info, warn, error");
    }
}
