//! What agents report, from the agent protocol's enums (`berth.v1`,
//! protocol version 2) to what berth's records keep: the strings of the
//! stable JSON (`StageResult.outcome`, `HostRun.status`, a stored line's
//! stream, `HostState.state`) and [`TaskStatus`]. Every such mapping is
//! here; the other direction, the `TaskSpec` an agent is sent, is
//! [`crate::dispatcher::wire`].
//!
//! A value this controller does not know (0, UNSPECIFIED, or a number only
//! a newer agent sends) never panics: an outcome or status counts as failed
//! (an exec's as `error`) and [`Unknown`] says so in the record's error.

use berth_proto::v1;
use berth_shared::state::TaskStatus;

/// A value an agent sent that this controller does not know, and what it
/// was counted as instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unknown {
    what: &'static str,
    value: i32,
    counted_as: &'static str,
}

impl std::fmt::Display for Unknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Unknown {
            what,
            value,
            counted_as,
        } = self;
        if *value == 0 {
            write!(f, "the agent reported no {what}")?;
        } else {
            write!(
                f,
                "the agent reported {what} {value}, which this controller does not know"
            )?;
        }
        write!(f, "; counted as {counted_as}")
    }
}

/// A stage's outcome as `StageResult.outcome` keeps it: `succeeded`,
/// `failed`, `timed_out` or `canceled`.
pub fn stage_outcome(value: i32) -> (&'static str, Option<Unknown>) {
    match v1::StageOutcome::try_from(value) {
        Ok(v1::StageOutcome::Succeeded) => ("succeeded", None),
        Ok(v1::StageOutcome::Failed) => ("failed", None),
        Ok(v1::StageOutcome::TimedOut) => ("timed_out", None),
        Ok(v1::StageOutcome::Canceled) => ("canceled", None),
        Ok(v1::StageOutcome::Unspecified) | Err(_) => (
            "failed",
            Some(Unknown {
                what: "stage outcome",
                value,
                counted_as: "failed",
            }),
        ),
    }
}

/// The status a task's outcome moves it to.
pub fn task_status(value: i32) -> (TaskStatus, Option<Unknown>) {
    match v1::TaskOutcome::try_from(value) {
        Ok(v1::TaskOutcome::Done) => (TaskStatus::Done, None),
        Ok(v1::TaskOutcome::Failed) => (TaskStatus::Failed, None),
        Ok(v1::TaskOutcome::TimedOut) => (TaskStatus::TimedOut, None),
        Ok(v1::TaskOutcome::Canceled) => (TaskStatus::Canceled, None),
        Ok(v1::TaskOutcome::Unspecified) | Err(_) => (
            TaskStatus::Failed,
            Some(Unknown {
                what: "task outcome",
                value,
                counted_as: "failed",
            }),
        ),
    }
}

/// How a fleet exec ended on a host, as `HostRun.status` keeps it: `ok`,
/// `failed`, `timed_out` or `error`.
pub fn exec_status(value: i32) -> (&'static str, Option<Unknown>) {
    match v1::ExecStatus::try_from(value) {
        Ok(v1::ExecStatus::Ok) => ("ok", None),
        Ok(v1::ExecStatus::Failed) => ("failed", None),
        Ok(v1::ExecStatus::TimedOut) => ("timed_out", None),
        Ok(v1::ExecStatus::Error) => ("error", None),
        Ok(v1::ExecStatus::Unspecified) | Err(_) => (
            "error",
            Some(Unknown {
                what: "exec status",
                value,
                counted_as: "error",
            }),
        ),
    }
}

/// An agent's finished exec as the stored job keeps it: the status, the
/// exit code and the error (`None` when empty).
pub fn exec_finished(
    status: i32,
    exit_code: Option<i32>,
    error: String,
) -> (String, Option<i32>, Option<String>) {
    let (status, unknown) = exec_status(status);
    (status.to_string(), exit_code, error_text(&error, unknown))
}

/// The stream a stored line keeps: `stdout`, `stderr`, `system` or
/// `container`. A line of a stream this controller does not know is kept,
/// as `stdout`.
pub fn stream(value: i32) -> &'static str {
    match v1::OutputStream::try_from(value) {
        Ok(v1::OutputStream::Stderr) => "stderr",
        Ok(v1::OutputStream::System) => "system",
        Ok(v1::OutputStream::Container) => "container",
        Ok(v1::OutputStream::Stdout | v1::OutputStream::Unspecified) | Err(_) => "stdout",
    }
}

/// An app's state on a host as `berth status` shows it (`HostState.state`):
/// `running`, `deployed`, `missing`, `stopped` or `unknown`, followed by
/// the agent's detail (`missing; could not start it again: ...`,
/// `unknown: cannot reach Docker at ...`).
pub fn app_state(value: i32, detail: &str) -> String {
    let (state, unknown) = match v1::AppState::try_from(value) {
        Ok(v1::AppState::Running) => ("running", None),
        Ok(v1::AppState::Deployed) => ("deployed", None),
        Ok(v1::AppState::Missing) => ("missing", None),
        Ok(v1::AppState::Stopped) => ("stopped", None),
        Ok(v1::AppState::Unknown) => ("unknown", None),
        Ok(v1::AppState::Unspecified) | Err(_) => (
            "unknown",
            Some(Unknown {
                what: "app state",
                value,
                counted_as: "unknown",
            }),
        ),
    };
    match error_text(detail, unknown) {
        None => state.to_string(),
        Some(detail) if state == "unknown" => format!("{state}: {detail}"),
        Some(detail) => format!("{state}; {detail}"),
    }
}

/// The agent's error text with what was not understood added; `None`
/// when both are empty.
pub fn error_text(error: &str, unknown: Option<Unknown>) -> Option<String> {
    match (error.is_empty(), unknown) {
        (true, None) => None,
        (false, None) => Some(error.to_string()),
        (true, Some(unknown)) => Some(unknown.to_string()),
        (false, Some(unknown)) => Some(format!("{error} ({unknown})")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Every protobuf value but `UNSPECIFIED` (0), up to the first number
    /// that is not one.
    fn wire_values<T: TryFrom<i32> + Into<i32>>() -> Vec<i32> {
        (1..)
            .map_while(|number| T::try_from(number).ok())
            .map(Into::into)
            .collect()
    }

    /// Values no version of the protocol defines.
    const UNKNOWN: [i32; 3] = [0, 99, -1];

    #[test]
    fn every_stage_outcome_has_its_own_string() {
        let strings: Vec<&str> = wire_values::<v1::StageOutcome>()
            .into_iter()
            .map(|value| {
                let (outcome, unknown) = stage_outcome(value);
                assert_eq!(unknown, None, "{value}");
                outcome
            })
            .collect();
        assert_eq!(strings, ["succeeded", "failed", "timed_out", "canceled"]);
        for (value, expected) in [
            (v1::StageOutcome::Succeeded, "succeeded"),
            (v1::StageOutcome::TimedOut, "timed_out"),
        ] {
            assert_eq!(stage_outcome(value.into()).0, expected);
        }
    }

    #[test]
    fn an_unknown_stage_outcome_is_failed_and_says_so() {
        for value in UNKNOWN {
            let (outcome, unknown) = stage_outcome(value);
            assert_eq!(outcome, "failed");
            let text = unknown.expect("unknown").to_string();
            assert!(text.contains("stage outcome"), "{text}");
            assert!(text.ends_with("counted as failed"), "{text}");
        }
        assert_eq!(
            stage_outcome(99).1.expect("unknown").to_string(),
            "the agent reported stage outcome 99, which this controller does not know; counted as failed"
        );
        assert_eq!(
            stage_outcome(0).1.expect("unknown").to_string(),
            "the agent reported no stage outcome; counted as failed"
        );
    }

    #[test]
    fn every_task_outcome_moves_the_task_to_its_status() {
        let statuses: Vec<TaskStatus> = wire_values::<v1::TaskOutcome>()
            .into_iter()
            .map(|value| {
                let (status, unknown) = task_status(value);
                assert_eq!(unknown, None, "{value}");
                status
            })
            .collect();
        assert_eq!(
            statuses,
            [
                TaskStatus::Done,
                TaskStatus::Failed,
                TaskStatus::TimedOut,
                TaskStatus::Canceled
            ]
        );
        assert_eq!(
            task_status(v1::TaskOutcome::Done.into()).0,
            TaskStatus::Done
        );
        for value in UNKNOWN {
            let (status, unknown) = task_status(value);
            assert_eq!(status, TaskStatus::Failed);
            assert!(
                unknown
                    .expect("unknown")
                    .to_string()
                    .contains("task outcome")
            );
        }
    }

    #[test]
    fn every_exec_status_has_its_own_string() {
        let strings: Vec<&str> = wire_values::<v1::ExecStatus>()
            .into_iter()
            .map(|value| {
                let (status, unknown) = exec_status(value);
                assert_eq!(unknown, None, "{value}");
                status
            })
            .collect();
        assert_eq!(strings, ["ok", "failed", "timed_out", "error"]);
        for value in UNKNOWN {
            let (status, unknown) = exec_status(value);
            assert_eq!(status, "error");
            assert!(
                unknown
                    .expect("unknown")
                    .to_string()
                    .ends_with("counted as error")
            );
        }
    }

    #[test]
    fn a_finished_exec_keeps_its_code_and_error() {
        assert_eq!(
            exec_finished(
                v1::ExecStatus::Failed.into(),
                Some(3),
                "exited with code 3".into()
            ),
            (
                "failed".to_string(),
                Some(3),
                Some("exited with code 3".to_string())
            )
        );
        assert_eq!(
            exec_finished(v1::ExecStatus::Ok.into(), Some(0), String::new()),
            ("ok".to_string(), Some(0), None)
        );
        let (status, code, error) = exec_finished(42, None, "boom".into());
        assert_eq!((status.as_str(), code), ("error", None));
        assert_eq!(
            error.as_deref(),
            Some(
                "boom (the agent reported exec status 42, which this controller does not know; counted as error)"
            )
        );
    }

    #[test]
    fn every_stream_has_its_own_string_and_an_unknown_one_keeps_the_line() {
        let strings: HashSet<&str> = wire_values::<v1::OutputStream>()
            .into_iter()
            .map(stream)
            .collect();
        assert_eq!(
            strings,
            HashSet::from(["stdout", "stderr", "system", "container"]),
            "one string per stream, the ones `berth logs --stream` takes"
        );
        assert_eq!(stream(v1::OutputStream::Stderr.into()), "stderr");
        for value in UNKNOWN {
            assert_eq!(stream(value), "stdout");
        }
    }

    #[test]
    fn app_states_read_as_berth_status_shows_them() {
        let states: Vec<String> = wire_values::<v1::AppState>()
            .into_iter()
            .map(|value| app_state(value, ""))
            .collect();
        assert_eq!(
            states,
            ["running", "deployed", "missing", "stopped", "unknown"]
        );
        assert_eq!(
            app_state(
                v1::AppState::Missing.into(),
                "could not start it again: gone"
            ),
            "missing; could not start it again: gone"
        );
        assert_eq!(
            app_state(v1::AppState::Unknown.into(), "cannot reach Docker at x"),
            "unknown: cannot reach Docker at x"
        );
        assert_eq!(
            app_state(7, "new"),
            "unknown: new (the agent reported app state 7, which this controller does not know; counted as unknown)"
        );
        assert_eq!(
            app_state(0, ""),
            "unknown: the agent reported no app state; counted as unknown"
        );
    }

    #[test]
    fn error_text_joins_what_the_agent_said_and_what_was_not_understood() {
        let unknown = || {
            Some(Unknown {
                what: "task outcome",
                value: 9,
                counted_as: "failed",
            })
        };
        assert_eq!(error_text("", None), None);
        assert_eq!(error_text("boom", None).as_deref(), Some("boom"));
        assert_eq!(
            error_text("", unknown()).as_deref(),
            Some(
                "the agent reported task outcome 9, which this controller does not know; counted as failed"
            )
        );
        assert!(
            error_text("boom", unknown())
                .expect("text")
                .starts_with("boom (the agent reported task outcome 9")
        );
    }
}
