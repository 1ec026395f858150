//! Loading the spools a previous run left: each task's header and events
//! read back, a torn tail cut off.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::path::Path;
use std::sync::Mutex;

use berth_proto::v1::task_event::Kind;
use berth_proto::v1::{LogLine, RunningTask, StageFinished, TaskFinished};
use berth_shared::id::TaskId;
use prost::Message;
use tokio::sync::Notify;
use tracing::warn;

use crate::runner::{StageOutcome, TaskOutcome};
use crate::stage::shell::Stream;

use super::{
    HEADER, MAX_MEMORY_ONLY_BYTES, MAX_SPOOL_BYTES, MEMORY_EVENTS, Outbox, TaskLog, read_records,
    task_log::event_of,
};

impl Outbox {
    /// Opens the spool in `dir`, reloading what a previous run left. Tasks
    /// that never finished were interrupted by the restart: they get a
    /// final `failed` result. Returns the outbox and the interrupted tasks.
    pub fn load(dir: &Path, agent_name: &str) -> std::io::Result<(Outbox, Vec<TaskId>)> {
        fs::create_dir_all(dir)?;
        let outbox = Outbox {
            dir: dir.to_path_buf(),
            max_spool_bytes: MAX_SPOOL_BYTES,
            max_memory_only_bytes: MAX_MEMORY_ONLY_BYTES,
            tasks: Mutex::new(HashMap::new()),
            notify: Notify::new(),
            acks: Notify::new(),
            linked: std::sync::atomic::AtomicBool::new(false),
            dropped_total: Default::default(),
        };
        let mut interrupted = Vec::new();
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().and_then(|ext| ext.to_str()) != Some("spool") {
                continue;
            }
            match outbox.load_one(&path) {
                Ok(Some(task_id)) => interrupted.push(task_id),
                Ok(None) => {}
                Err(err) => {
                    warn!(path = %path.display(), error = %err, "unreadable spool file left aside")
                }
            }
        }
        for task_id in &interrupted {
            let message = format!(
                "agent {agent_name} restarted while this task was running; its processes were stopped and the stage did not finish"
            );
            let stage = outbox
                .lock()
                .get(task_id)
                .map(|log| log.stage.clone())
                .unwrap_or_default();
            outbox.push(
                *task_id,
                Kind::Log(LogLine {
                    stage: stage.clone(),
                    stream: Stream::System.into(),
                    line: message.clone(),
                }),
            );
            if !stage.is_empty() {
                outbox.push(
                    *task_id,
                    Kind::StageFinished(StageFinished {
                        stage: stage.clone(),
                        outcome: StageOutcome::Failed.into(),
                        error: message.clone(),
                        ..Default::default()
                    }),
                );
            }
            outbox.push(
                *task_id,
                Kind::Finished(TaskFinished {
                    outcome: TaskOutcome::Failed.into(),
                    error_step: stage,
                    error: message,
                }),
            );
        }
        Ok((outbox, interrupted))
    }

    /// Loads one spool file; returns the task id if it never finished.
    fn load_one(&self, path: &Path) -> std::io::Result<Option<TaskId>> {
        let stem = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or_default();
        let Ok(task_id) = stem.parse::<TaskId>() else {
            return Ok(None);
        };
        let (records, good) = read_records(path)?;
        let file = OpenOptions::new().append(true).open(path)?;
        file.set_len(good)?;
        let mut log = TaskLog::new(path.to_path_buf(), file, "", 0, good);
        let mut offset = 0u64;
        for (kind, payload) in records {
            let at = offset;
            offset += 9 + payload.len() as u64;
            match kind {
                HEADER => {
                    if let Ok(header) = RunningTask::decode(payload.as_slice()) {
                        log.deployment_id = header.deployment_id;
                        log.generation = header.generation;
                        log.next_seq = log.next_seq.max(header.next_seq);
                    }
                }
                _ => {
                    let Some(event) = event_of(kind, &payload) else {
                        continue;
                    };
                    log.note(&event);
                    if log.offsets.is_empty() {
                        log.offsets_base = event.seq;
                    }
                    if event.seq == log.offsets_base + log.offsets.len() as u64 {
                        log.offsets.push(at);
                    }
                    log.next_seq = log.next_seq.max(event.seq + 1);
                    log.remember(event);
                    if log.memory.len() > MEMORY_EVENTS {
                        log.forget_oldest();
                    }
                }
            }
        }
        let unfinished = !log.finished;
        self.lock().insert(task_id, log);
        Ok(unfinished.then_some(task_id))
    }
}
