//! Spool records an agent of protocol version 1 wrote (kind
//! [`EVENT_V1`](super::EVENT_V1)): a [`TaskEvent`] in version 1's field
//! layout, where outcomes and streams were strings and an exit code came
//! with `has_exit_code`. Version 2 reserves those field numbers, so its
//! decoder would drop them silently (a task that ended `done` would read
//! as an outcome of 0, UNSPECIFIED); these records are decoded with the
//! version 1 layout below instead and brought to version 2, so an agent
//! upgraded with unacknowledged events on disk sends what really happened.

use std::collections::HashMap;

use berth_proto::v1::task_event::Kind;
use berth_proto::v1::{LogLine, StageFinished, StageStarted, TaskEvent, TaskFinished};
use prost::Message;

use crate::wire::legacy;

/// `berth.v1.TaskEvent` of protocol version 1.
#[derive(Clone, PartialEq, Message)]
pub(super) struct TaskEventV1 {
    #[prost(uint64, tag = "1")]
    pub(super) seq: u64,
    #[prost(int64, tag = "2")]
    pub(super) ts_ms: i64,
    #[prost(oneof = "KindV1", tags = "3, 4, 5, 6")]
    pub(super) kind: Option<KindV1>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub(super) enum KindV1 {
    #[prost(message, tag = "3")]
    Log(LogLineV1),
    /// Unchanged in version 2.
    #[prost(message, tag = "4")]
    StageStarted(StageStarted),
    #[prost(message, tag = "5")]
    StageFinished(StageFinishedV1),
    #[prost(message, tag = "6")]
    Finished(TaskFinishedV1),
}

/// `berth.v1.LogLine` of protocol version 1.
#[derive(Clone, PartialEq, Message)]
pub(super) struct LogLineV1 {
    #[prost(string, tag = "1")]
    pub(super) stage: String,
    /// `stdout`, `stderr`, `system` or `container`.
    #[prost(string, tag = "2")]
    pub(super) stream: String,
    #[prost(string, tag = "3")]
    pub(super) line: String,
}

/// `berth.v1.StageFinished` of protocol version 1.
#[derive(Clone, PartialEq, Message)]
pub(super) struct StageFinishedV1 {
    #[prost(string, tag = "1")]
    pub(super) stage: String,
    /// `succeeded`, `failed`, `timed_out` or `canceled`.
    #[prost(string, tag = "2")]
    pub(super) outcome: String,
    #[prost(int32, tag = "3")]
    pub(super) exit_code: i32,
    #[prost(bool, tag = "4")]
    pub(super) has_exit_code: bool,
    #[prost(uint64, tag = "5")]
    pub(super) duration_ms: u64,
    #[prost(string, tag = "6")]
    pub(super) error: String,
    #[prost(map = "string, string", tag = "7")]
    pub(super) details: HashMap<String, String>,
}

/// `berth.v1.TaskFinished` of protocol version 1.
#[derive(Clone, PartialEq, Message)]
pub(super) struct TaskFinishedV1 {
    /// `done`, `failed`, `timed_out` or `canceled`.
    #[prost(string, tag = "1")]
    pub(super) outcome: String,
    #[prost(string, tag = "2")]
    pub(super) error_step: String,
    #[prost(string, tag = "3")]
    pub(super) error: String,
}

/// The version 2 event a version 1 record holds; `None` when it does not
/// decode.
pub(super) fn upgrade(payload: &[u8]) -> Option<TaskEvent> {
    let old = TaskEventV1::decode(payload).ok()?;
    let kind = old.kind.map(|kind| match kind {
        KindV1::Log(log) => Kind::Log(LogLine {
            stage: log.stage,
            stream: legacy::stream(&log.stream).into(),
            line: log.line,
        }),
        KindV1::StageStarted(started) => Kind::StageStarted(started),
        KindV1::StageFinished(finished) => Kind::StageFinished(StageFinished {
            stage: finished.stage,
            outcome: legacy::stage_outcome(&finished.outcome).into(),
            exit_code: finished.has_exit_code.then_some(finished.exit_code),
            duration_ms: finished.duration_ms,
            error: finished.error,
            details: finished.details,
        }),
        KindV1::Finished(finished) => Kind::Finished(TaskFinished {
            outcome: legacy::task_outcome(&finished.outcome).into(),
            error_step: finished.error_step,
            error: finished.error,
        }),
    });
    Some(TaskEvent {
        seq: old.seq,
        ts_ms: old.ts_ms,
        kind,
    })
}
