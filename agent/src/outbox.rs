//! The outbox: every task's events (log lines, stage starts and ends, the
//! final result) get a per-task sequence number and are appended to a spool
//! file before they are sent. They stay until the controller acknowledges
//! them, so they survive a cut link, a controller restart and an agent
//! restart; after a reconnect everything unacknowledged is sent again and
//! the controller drops duplicates by sequence number.
//!
//! Spool record format: `[kind u8][len u32][crc32 u32][prost bytes]`, kind 0
//! a [`RunningTask`] header (the last one wins), kind 1 a [`TaskEvent`]. A
//! torn tail left by a crash is cut off when the spool is loaded.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use berth_proto::v1::task_event::Kind;
use berth_proto::v1::{LogLine, RunningTask, StageFinished, TaskEvent, TaskEvents, TaskFinished};
use berth_shared::id::TaskId;
use prost::Message;
use tokio::sync::Notify;
use tracing::warn;

/// Unacknowledged events kept in memory per task; older ones are read back
/// from the spool file when they must be sent again.
const MEMORY_EVENTS: usize = 4096;
/// Largest single spool record accepted when reading.
const MAX_RECORD: u32 = 1024 * 1024;

const HEADER: u8 = 0;
const EVENT: u8 = 1;

struct TaskLog {
    deployment_id: String,
    generation: u64,
    next_seq: u64,
    acked: u64,
    memory: VecDeque<TaskEvent>,
    file: Option<File>,
    path: PathBuf,
    finished: bool,
    /// The stage that last started, for the record of an interrupted task.
    stage: String,
}

/// Pending events of all tasks.
pub struct Outbox {
    dir: PathBuf,
    tasks: Mutex<HashMap<TaskId, TaskLog>>,
    notify: Notify,
}

fn record(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(payload.len() + 9);
    bytes.push(kind);
    bytes.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    bytes.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// One spool record: its kind and payload.
type Record = (u8, Vec<u8>);

/// Reads records until the end or the first damaged one; returns them and
/// the length of the good prefix.
fn read_records(path: &Path) -> std::io::Result<(Vec<Record>, u64)> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut records = Vec::new();
    let mut good = 0u64;
    loop {
        let mut head = [0u8; 9];
        if reader.read_exact(&mut head).is_err() {
            break;
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        let crc = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
        if len > MAX_RECORD {
            break;
        }
        let mut payload = vec![0u8; len as usize];
        if reader.read_exact(&mut payload).is_err() || crc32fast::hash(&payload) != crc {
            break;
        }
        good += 9 + u64::from(len);
        records.push((head[0], payload));
    }
    Ok((records, good))
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, HashMap<TaskId, TaskLog>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens the spool in `dir`, reloading what a previous run left. Tasks
    /// that never finished were interrupted by the restart: they get a
    /// final `failed` result. Returns the outbox and the interrupted tasks.
    pub fn load(dir: &Path, agent_name: &str) -> std::io::Result<(Outbox, Vec<TaskId>)> {
        fs::create_dir_all(dir)?;
        let outbox = Outbox {
            dir: dir.to_path_buf(),
            tasks: Mutex::new(HashMap::new()),
            notify: Notify::new(),
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
                    stream: "system".into(),
                    line: message.clone(),
                }),
            );
            if !stage.is_empty() {
                outbox.push(
                    *task_id,
                    Kind::StageFinished(StageFinished {
                        stage: stage.clone(),
                        outcome: "failed".into(),
                        error: message.clone(),
                        ..Default::default()
                    }),
                );
            }
            outbox.push(
                *task_id,
                Kind::Finished(TaskFinished {
                    outcome: "failed".into(),
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
        let mut log = TaskLog {
            deployment_id: String::new(),
            generation: 0,
            next_seq: 1,
            acked: 0,
            memory: VecDeque::new(),
            file: Some(file),
            path: path.to_path_buf(),
            finished: false,
            stage: String::new(),
        };
        for (kind, payload) in records {
            match kind {
                HEADER => {
                    if let Ok(header) = RunningTask::decode(payload.as_slice()) {
                        log.deployment_id = header.deployment_id;
                        log.generation = header.generation;
                    }
                }
                _ => {
                    let Ok(event) = TaskEvent::decode(payload.as_slice()) else {
                        continue;
                    };
                    log.note(&event);
                    log.next_seq = log.next_seq.max(event.seq + 1);
                    log.memory.push_back(event);
                    if log.memory.len() > MEMORY_EVENTS {
                        log.memory.pop_front();
                    }
                }
            }
        }
        let unfinished = !log.finished;
        self.lock().insert(task_id, log);
        Ok(unfinished.then_some(task_id))
    }

    /// Starts the outbox of a new task.
    pub fn open(
        &self,
        task_id: TaskId,
        deployment_id: &str,
        generation: u64,
    ) -> std::io::Result<()> {
        let path = self.dir.join(format!("{task_id}.spool"));
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        let header = RunningTask {
            task_id: task_id.to_string(),
            deployment_id: deployment_id.to_string(),
            generation,
        };
        file.write_all(&record(HEADER, &header.encode_to_vec()))?;
        let log = TaskLog {
            deployment_id: deployment_id.to_string(),
            generation,
            next_seq: 1,
            acked: 0,
            memory: VecDeque::new(),
            file: Some(file),
            path,
            finished: false,
            stage: String::new(),
        };
        self.lock().insert(task_id, log);
        Ok(())
    }

    /// True when the outbox holds this task.
    pub fn knows(&self, task_id: TaskId) -> bool {
        self.lock().contains_key(&task_id)
    }

    /// Moves a known task to a newer generation (the controller re-sent it).
    pub fn set_generation(&self, task_id: TaskId, generation: u64) {
        let mut tasks = self.lock();
        let Some(log) = tasks.get_mut(&task_id) else {
            return;
        };
        log.generation = generation;
        let header = RunningTask {
            task_id: task_id.to_string(),
            deployment_id: log.deployment_id.clone(),
            generation,
        };
        log.append(&record(HEADER, &header.encode_to_vec()));
        drop(tasks);
        self.notify.notify_one();
    }

    /// Appends an event to a task and wakes the sender.
    pub fn push(&self, task_id: TaskId, kind: Kind) {
        let mut tasks = self.lock();
        let Some(log) = tasks.get_mut(&task_id) else {
            warn!(%task_id, "event for a task the outbox does not hold");
            return;
        };
        let event = TaskEvent {
            seq: log.next_seq,
            ts_ms: berth_shared::time::now_ms(),
            kind: Some(kind),
        };
        log.next_seq += 1;
        log.note(&event);
        log.append(&record(EVENT, &event.encode_to_vec()));
        log.memory.push_back(event);
        if log.memory.len() > MEMORY_EVENTS && log.file.is_some() {
            log.memory.pop_front();
        }
        drop(tasks);
        self.notify.notify_one();
    }

    /// Waits until something is pushed.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }

    /// Tasks the outbox holds, for the hello.
    pub fn tasks(&self) -> Vec<RunningTask> {
        self.lock()
            .iter()
            .map(|(task_id, log)| RunningTask {
                task_id: task_id.to_string(),
                deployment_id: log.deployment_id.clone(),
                generation: log.generation,
            })
            .collect()
    }

    /// Tasks whose events have not all been acknowledged, with the last
    /// acknowledged sequence number.
    pub fn acked(&self) -> Vec<(TaskId, u64)> {
        self.lock()
            .iter()
            .map(|(task_id, log)| (*task_id, log.acked))
            .collect()
    }

    /// Up to `max` events of a task after sequence number `after`.
    pub fn batch(&self, task_id: TaskId, after: u64, max: usize) -> Option<TaskEvents> {
        let tasks = self.lock();
        let log = tasks.get(&task_id)?;
        if after + 1 >= log.next_seq {
            return None;
        }
        let in_memory = log
            .memory
            .front()
            .is_some_and(|first| first.seq <= after + 1);
        let events: Vec<TaskEvent> = if in_memory {
            log.memory
                .iter()
                .filter(|event| event.seq > after)
                .take(max)
                .cloned()
                .collect()
        } else {
            read_records(&log.path)
                .map(|(records, _)| {
                    records
                        .into_iter()
                        .filter(|(kind, _)| *kind == EVENT)
                        .filter_map(|(_, payload)| TaskEvent::decode(payload.as_slice()).ok())
                        .filter(|event| event.seq > after)
                        .take(max)
                        .collect()
                })
                .unwrap_or_default()
        };
        (!events.is_empty()).then(|| TaskEvents {
            task_id: task_id.to_string(),
            deployment_id: log.deployment_id.clone(),
            generation: log.generation,
            events,
        })
    }

    /// Records an acknowledgement; forgets a finished task once all of its
    /// events are acknowledged.
    pub fn ack(&self, task_id: TaskId, upto: u64) {
        let mut tasks = self.lock();
        let Some(log) = tasks.get_mut(&task_id) else {
            return;
        };
        log.acked = log.acked.max(upto);
        while log.memory.front().is_some_and(|event| event.seq <= upto) {
            log.memory.pop_front();
        }
        if log.finished
            && log.acked + 1 >= log.next_seq
            && let Some(log) = tasks.remove(&task_id)
        {
            let _ = fs::remove_file(&log.path);
        }
    }
}

impl TaskLog {
    fn note(&mut self, event: &TaskEvent) {
        match &event.kind {
            Some(Kind::Finished(_)) => self.finished = true,
            Some(Kind::StageStarted(started)) => self.stage = started.stage.clone(),
            _ => {}
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        if let Some(file) = self.file.as_mut()
            && let Err(err) = file.write_all(bytes)
        {
            warn!(path = %self.path.display(), error = %err, "spool write failed; keeping events in memory only");
            self.file = None;
        }
    }
}

#[cfg(test)]
mod tests;
