//! How a running task reports: its stages, lines, failure and end, as
//! events in the outbox ([`Emitter`]), and why a stage did not succeed
//! ([`Failure`]).

use std::collections::BTreeMap;
use std::time::Instant;

use berth_proto::v1::task_event::Kind;
use berth_proto::v1::{LogLine, StageFinished, StageStarted, TaskFinished};
use berth_shared::id::TaskId;
use berth_shared::masking::Masker;

use crate::Agent;
use crate::stage::shell::{LineSink, Stream};

/// How a stage ended (`berth.v1.StageOutcome` on the wire, converted in
/// [`crate::wire`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageOutcome {
    Succeeded,
    Failed,
    TimedOut,
    Canceled,
}

/// How a task ended (`berth.v1.TaskOutcome` on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskOutcome {
    Done,
    Failed,
    TimedOut,
    Canceled,
}

/// How a stage that did not succeed ended; its task ends the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Failed,
    TimedOut,
    Canceled,
}

impl From<Ending> for StageOutcome {
    fn from(ending: Ending) -> StageOutcome {
        match ending {
            Ending::Failed => StageOutcome::Failed,
            Ending::TimedOut => StageOutcome::TimedOut,
            Ending::Canceled => StageOutcome::Canceled,
        }
    }
}

impl From<Ending> for TaskOutcome {
    fn from(ending: Ending) -> TaskOutcome {
        match ending {
            Ending::Failed => TaskOutcome::Failed,
            Ending::TimedOut => TaskOutcome::TimedOut,
            Ending::Canceled => TaskOutcome::Canceled,
        }
    }
}

/// Why a stage did not succeed: how it ended, the message, and the exit
/// code when there was one.
pub(super) struct Failure {
    pub(super) outcome: Ending,
    pub(super) error: String,
    pub(super) exit_code: Option<i32>,
    /// Evidence kept with the failed stage (probe output, container logs).
    pub(super) details: BTreeMap<String, String>,
}

impl Failure {
    pub(super) fn canceled(error: impl Into<String>) -> Failure {
        Failure {
            outcome: Ending::Canceled,
            ..Failure::failed(error)
        }
    }

    pub(super) fn failed(error: impl Into<String>) -> Failure {
        Failure {
            outcome: Ending::Failed,
            error: error.into(),
            exit_code: None,
            details: BTreeMap::new(),
        }
    }
}

/// Reports a task's stages through the outbox, with the task's secret
/// values masked in every text before it reaches the spool.
pub(super) struct Emitter<'a> {
    pub(super) agent: &'a Agent,
    pub(super) task_id: TaskId,
    pub(super) stage: std::sync::Mutex<(String, Instant)>,
    pub(super) mask: Masker,
}

impl Emitter<'_> {
    pub(super) fn push(&self, kind: Kind) {
        self.agent.outbox.push(self.task_id, self.masked(kind));
    }

    fn masked(&self, mut kind: Kind) -> Kind {
        if !self.mask.is_empty() {
            for text in kind.texts_mut() {
                self.mask.mask_in_place(text);
            }
        }
        kind
    }

    pub(super) fn stage(&self) -> String {
        self.stage
            .lock()
            .map(|stage| stage.0.clone())
            .unwrap_or_default()
    }

    pub(super) fn system(&self, line: String) {
        self.line(Stream::System, line);
    }

    pub(super) fn start_stage(&self, name: &str) {
        if let Ok(mut stage) = self.stage.lock() {
            *stage = (name.to_string(), Instant::now());
        }
        self.push(Kind::StageStarted(StageStarted {
            stage: name.to_string(),
        }));
    }

    pub(super) fn end_stage(
        &self,
        outcome: StageOutcome,
        exit_code: Option<i32>,
        error: &str,
        details: BTreeMap<String, String>,
    ) {
        let (stage, started) = self
            .stage
            .lock()
            .map(|stage| stage.clone())
            .unwrap_or_else(|_| (String::new(), Instant::now()));
        self.push(Kind::StageFinished(StageFinished {
            stage,
            outcome: outcome.into(),
            exit_code,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            error: error.to_string(),
            details: details.into_iter().collect(),
        }));
    }

    /// Ends the current stage and the task with a failure.
    pub(super) fn fail(&self, failure: Failure) {
        if failure.outcome == Ending::Canceled && self.agent.shutdown.is_cancelled() {
            return self.interrupted();
        }
        self.system(failure.error.clone());
        self.end_stage(
            failure.outcome.into(),
            failure.exit_code,
            &failure.error,
            failure.details,
        );
        self.push(Kind::Finished(TaskFinished {
            outcome: TaskOutcome::from(failure.outcome).into(),
            error_step: self.stage(),
            error: failure.error,
        }));
    }

    /// The agent is stopping (`systemctl restart`, an upgrade), which
    /// stopped the stage: no user canceled it, so it does not end
    /// `canceled`. The task stays unfinished in the spool, and the next
    /// start reports it failed as interrupted by the restart
    /// (`Outbox::load`).
    pub(super) fn interrupted(&self) {
        self.system(
            "the agent is stopping (a restart or an upgrade): this stage's processes were stopped; the task is reported when the agent is back"
                .into(),
        );
    }

    pub(super) fn done(&self) {
        self.push(Kind::Finished(TaskFinished {
            outcome: TaskOutcome::Done.into(),
            error_step: String::new(),
            error: String::new(),
        }));
    }
}

impl LineSink for Emitter<'_> {
    fn line(&self, stream: Stream, line: String) {
        self.push(Kind::Log(LogLine {
            stage: self.stage(),
            stream: stream.into(),
            line,
        }));
    }

    fn lines(&self, stream: Stream, lines: Vec<String>) {
        let stage = self.stage();
        let stream: i32 = stream.into();
        self.agent.outbox.push_all(
            self.task_id,
            lines.into_iter().map(|line| {
                self.masked(Kind::Log(LogLine {
                    stage: stage.clone(),
                    stream,
                    line,
                }))
            }),
        );
    }

    fn room(&self) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>> {
        let outbox = &self.agent.outbox;
        outbox
            .backlogged(self.task_id)
            .then(|| Box::pin(outbox.room(self.task_id)) as _)
    }

    fn started(&self, pid: u32) {
        self.agent.record_pid(self.task_id, pid);
    }

    fn ended(&self) {
        self.agent.clear_pid(self.task_id);
    }
}
