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
/// A spool whose events are all acknowledged is cut back to its header
/// once it grows past this, so a long task's spool stays small.
const COMPACT_BYTES: u64 = 8 * 1024 * 1024;
/// Past this size (the controller unreachable for long while a task
/// floods), new log lines are dropped and counted, never the task's stage
/// and result events; a system line then says how many were dropped.
const MAX_SPOOL_BYTES: u64 = 512 * 1024 * 1024;
/// Unacknowledged events a task may have while the controller is
/// connected before its output is paused (see [`Outbox::room`]): four full
/// batches, what the pump keeps in flight, so batches still leave full
/// while the lag a follower sees stays well under a second.
const MAX_BACKLOG: u64 = 2048;
/// A paused producer resumes when the controller acknowledged nothing for
/// this long, and is not paused again until it acknowledges more (a
/// controller that cannot store must not slow the scripts); its lines
/// then wait in the spool.
const STALL: std::time::Duration = std::time::Duration::from_secs(5);
/// What a task may keep in memory once its spool cannot be written (a
/// full or failing disk): past it, new log lines are dropped and counted
/// as with a full spool, never the stage and result events.
const MAX_MEMORY_ONLY_BYTES: u64 = 64 * 1024 * 1024;
/// Largest single spool record accepted when reading.
const MAX_RECORD: u32 = 1024 * 1024;

const HEADER: u8 = 0;
const EVENT: u8 = 1;

/// Limits on the size of one batch.
struct Budget {
    events: usize,
    bytes: usize,
    taken: usize,
}

impl Budget {
    fn new(events: usize, bytes: usize) -> Budget {
        Budget {
            events,
            bytes,
            taken: 0,
        }
    }

    /// Takes room for an event; the first event always fits, so a batch is
    /// never empty.
    fn take(&mut self, event: &TaskEvent) -> bool {
        let size = event.encoded_len();
        if self.taken >= self.events || (self.taken > 0 && size > self.bytes) {
            return false;
        }
        self.bytes = self.bytes.saturating_sub(size);
        self.taken += 1;
        true
    }
}

/// Reads events with seq > `after` from `path` starting at byte `start`.
fn read_events_from(
    path: &Path,
    start: u64,
    after: u64,
    budget: &mut Budget,
) -> std::io::Result<Vec<TaskEvent>> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(start))?;
    let mut reader = BufReader::new(file);
    let mut events = Vec::new();
    while let Some((kind, payload)) = read_record(&mut reader) {
        if kind != EVENT {
            continue;
        }
        let Ok(event) = TaskEvent::decode(payload.as_slice()) else {
            continue;
        };
        if event.seq <= after {
            continue;
        }
        if !budget.take(&event) {
            break;
        }
        events.push(event);
    }
    Ok(events)
}

struct TaskLog {
    deployment_id: String,
    /// Byte offset in the spool file of each event from `offsets_base` on.
    offsets: Vec<u64>,
    /// The sequence number of `offsets[0]`.
    offsets_base: u64,
    /// Log lines dropped because the spool was full, not yet reported.
    dropped: u64,
    /// Length of the spool file as written so far.
    file_len: u64,
    /// Written since the last sync.
    dirty: bool,
    generation: u64,
    next_seq: u64,
    acked: u64,
    memory: VecDeque<TaskEvent>,
    /// Encoded size of `memory`.
    memory_bytes: u64,
    file: Option<File>,
    path: PathBuf,
    finished: bool,
    /// The stage that last started, for the record of an interrupted task.
    stage: String,
    /// The ack at which a paused producer waited out [`STALL`]: until the
    /// controller acknowledges more, the task's output is not paused.
    stalled_at: Option<u64>,
}

/// Pending events of all tasks.
pub struct Outbox {
    dir: PathBuf,
    /// See [`MAX_SPOOL_BYTES`] (smaller in tests).
    max_spool_bytes: u64,
    /// See [`MAX_MEMORY_ONLY_BYTES`] (smaller in tests).
    max_memory_only_bytes: u64,
    tasks: Mutex<HashMap<TaskId, TaskLog>>,
    notify: Notify,
    /// Woken on every acknowledgement and link change.
    acks: Notify,
    /// True while a session with the controller is up.
    linked: std::sync::atomic::AtomicBool,
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
    while let Some(record) = read_record(&mut reader) {
        good += 9 + record.1.len() as u64;
        records.push(record);
    }
    Ok((records, good))
}

/// Reads one record; `None` at the end or at a damaged record.
fn read_record(reader: &mut impl Read) -> Option<Record> {
    let mut head = [0u8; 9];
    reader.read_exact(&mut head).ok()?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    let crc = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
    if len > MAX_RECORD {
        return None;
    }
    let mut payload = vec![0u8; len as usize];
    reader.read_exact(&mut payload).ok()?;
    (crc32fast::hash(&payload) == crc).then_some((head[0], payload))
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
            max_spool_bytes: MAX_SPOOL_BYTES,
            max_memory_only_bytes: MAX_MEMORY_ONLY_BYTES,
            tasks: Mutex::new(HashMap::new()),
            notify: Notify::new(),
            acks: Notify::new(),
            linked: std::sync::atomic::AtomicBool::new(false),
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
                    let Ok(event) = TaskEvent::decode(payload.as_slice()) else {
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
            next_seq: 1,
        };
        let bytes = record(HEADER, &header.encode_to_vec());
        file.write_all(&bytes)?;
        let log = TaskLog::new(path, file, deployment_id, generation, bytes.len() as u64);
        self.lock().insert(task_id, log);
        Ok(())
    }

    /// True when the outbox holds this task.
    pub fn knows(&self, task_id: TaskId) -> bool {
        self.lock().contains_key(&task_id)
    }

    /// The generation of a task the outbox holds.
    pub fn generation(&self, task_id: TaskId) -> Option<u64> {
        self.lock().get(&task_id).map(|log| log.generation)
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
            next_seq: log.next_seq,
        };
        log.append(&record(HEADER, &header.encode_to_vec()));
        drop(tasks);
        self.notify.notify_one();
    }

    /// Appends an event to a task and wakes the sender.
    pub fn push(&self, task_id: TaskId, kind: Kind) {
        self.push_all(task_id, std::iter::once(kind));
    }

    /// Appends events to a task, in order, with one spool write, and wakes
    /// the sender.
    pub fn push_all(&self, task_id: TaskId, kinds: impl IntoIterator<Item = Kind>) {
        let mut tasks = self.lock();
        let Some(log) = tasks.get_mut(&task_id) else {
            warn!(%task_id, "event for a task the outbox does not hold");
            return;
        };
        let mut spooled = Vec::new();
        for kind in kinds {
            let is_log = matches!(kind, Kind::Log(_));
            let spool_full = log.file_len + spooled.len() as u64 > self.max_spool_bytes;
            let memory_full = log.file.is_none() && log.memory_bytes > self.max_memory_only_bytes;
            if is_log && (spool_full || memory_full) {
                log.dropped += 1;
                continue;
            }
            if log.dropped > 0 {
                let line = if log.file.is_none() {
                    format!(
                        "{} log lines were dropped: this task's spool cannot be written (see the agent's log), and the {} MiB kept in memory instead were not acknowledged yet",
                        log.dropped,
                        self.max_memory_only_bytes / (1024 * 1024)
                    )
                } else {
                    format!(
                        "{} log lines were dropped: this task's spool reached its limit of {} MiB while the controller did not acknowledge them",
                        log.dropped,
                        self.max_spool_bytes / (1024 * 1024)
                    )
                };
                log.dropped = 0;
                let stage = log.stage.clone();
                log.add(
                    Kind::Log(LogLine {
                        stage,
                        stream: "system".into(),
                        line,
                    }),
                    &mut spooled,
                );
            }
            log.add(kind, &mut spooled);
        }
        log.append(&spooled);
        drop(tasks);
        self.notify.notify_one();
    }

    /// Says whether a session with the controller is up (paused producers
    /// resume when it goes down: their lines wait in the spool).
    pub fn set_linked(&self, linked: bool) {
        self.linked
            .store(linked, std::sync::atomic::Ordering::SeqCst);
        self.acks.notify_waiters();
    }

    /// True when `task_id`'s producer should wait for [`Outbox::room`]:
    /// the controller is connected and has not acknowledged
    /// [`MAX_BACKLOG`] of the task's events. A task printing faster than
    /// the controller stores is slowed to its pace this way (its pipe
    /// fills and its writes block), instead of its log lagging further
    /// and further behind and its spool growing.
    pub fn backlogged(&self, task_id: TaskId) -> bool {
        self.linked.load(std::sync::atomic::Ordering::SeqCst)
            && self.lock().get(&task_id).is_some_and(|log| {
                log.next_seq.saturating_sub(log.acked + 1) > MAX_BACKLOG
                    && log.stalled_at != Some(log.acked)
            })
    }

    /// Waits while [`Outbox::backlogged`] holds, or until the controller
    /// acknowledged nothing of the task for [`STALL`].
    pub async fn room(&self, task_id: TaskId) {
        self.room_or_stall(task_id, STALL).await;
    }

    async fn room_or_stall(&self, task_id: TaskId, stall: std::time::Duration) {
        let mut progress = self.lock().get(&task_id).map(|log| log.acked);
        // Only this task's acks move the deadline (the wake-ups are shared).
        let mut deadline = tokio::time::Instant::now() + stall;
        loop {
            let woken = self.acks.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if !self.backlogged(task_id) {
                return;
            }
            let timed_out = tokio::time::timeout_at(deadline, woken).await.is_err();
            let mut tasks = self.lock();
            let Some(log) = tasks.get_mut(&task_id) else {
                return;
            };
            if Some(log.acked) != progress {
                progress = Some(log.acked);
                deadline = tokio::time::Instant::now() + stall;
            } else if timed_out {
                log.stalled_at = Some(log.acked);
                return;
            }
        }
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
                next_seq: log.next_seq,
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

    /// Events of a task after sequence number `after`, at most
    /// `max_events` of them and about `max_bytes` encoded (at least one).
    /// Everything returned is on disk first (the spool is synced), so an
    /// acknowledged event can never be missing from the spool after a crash.
    pub fn batch(
        &self,
        task_id: TaskId,
        after: u64,
        max_events: usize,
        max_bytes: usize,
    ) -> Option<TaskEvents> {
        let mut tasks = self.lock();
        let log = tasks.get_mut(&task_id)?;
        if after + 1 >= log.next_seq {
            return None;
        }
        log.sync();
        let header = |events: Vec<TaskEvent>| TaskEvents {
            task_id: task_id.to_string(),
            deployment_id: log.deployment_id.clone(),
            generation: log.generation,
            events,
        };
        let mut budget = Budget::new(max_events, max_bytes);
        if log
            .memory
            .front()
            .is_some_and(|first| first.seq <= after + 1)
        {
            let events: Vec<TaskEvent> = log
                .memory
                .iter()
                .filter(|event| event.seq > after)
                .take_while(|event| budget.take(event))
                .cloned()
                .collect();
            return Some(header(events));
        }
        // Spilled: read from the spool file, from the first wanted event's offset.
        let index = usize::try_from((after + 1).checked_sub(log.offsets_base)?).ok()?;
        let start = log.offsets.get(index).copied()?;
        let path = log.path.clone();
        let reply = header(Vec::new());
        drop(tasks);
        let events = read_events_from(&path, start, after, &mut budget).unwrap_or_default();
        (!events.is_empty()).then_some(TaskEvents { events, ..reply })
    }

    /// Records an acknowledgement; forgets a finished task once all of its
    /// events are acknowledged.
    pub fn ack(&self, task_id: TaskId, upto: u64) {
        let mut tasks = self.lock();
        let Some(log) = tasks.get_mut(&task_id) else {
            return;
        };
        log.acked = log.acked.max(upto);
        self.acks.notify_waiters();
        while log.memory.front().is_some_and(|event| event.seq <= upto) {
            log.forget_oldest();
        }
        if !log.finished && log.acked + 1 >= log.next_seq && log.file_len > COMPACT_BYTES {
            log.compact(task_id);
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
    fn new(
        path: PathBuf,
        file: File,
        deployment_id: &str,
        generation: u64,
        file_len: u64,
    ) -> TaskLog {
        TaskLog {
            deployment_id: deployment_id.to_string(),
            offsets: Vec::new(),
            offsets_base: 1,
            dropped: 0,
            file_len,
            dirty: false,
            generation,
            next_seq: 1,
            acked: 0,
            memory: VecDeque::new(),
            memory_bytes: 0,
            file: Some(file),
            path,
            finished: false,
            stage: String::new(),
            stalled_at: None,
        }
    }

    /// Makes everything appended so far durable.
    fn sync(&mut self) {
        if !self.dirty {
            return;
        }
        if let Some(file) = self.file.as_ref()
            && let Err(err) = file.sync_data()
        {
            warn!(path = %self.path.display(), error = %err, "spool sync failed");
        }
        self.dirty = false;
    }

    /// Numbers and keeps one event, and adds its spool record to
    /// `spooled` (at the file offset it will have once `spooled` is
    /// appended).
    fn add(&mut self, kind: Kind, spooled: &mut Vec<u8>) {
        let event = TaskEvent {
            seq: self.next_seq,
            ts_ms: berth_shared::time::now_ms(),
            kind: Some(kind),
        };
        self.next_seq += 1;
        self.note(&event);
        if self.file.is_some() {
            if self.offsets.is_empty() {
                self.offsets_base = event.seq;
            }
            self.offsets.push(self.file_len + spooled.len() as u64);
        }
        spooled.extend_from_slice(&record(EVENT, &event.encode_to_vec()));
        self.remember(event);
        if self.memory.len() > MEMORY_EVENTS && self.file.is_some() {
            self.forget_oldest();
        }
    }

    fn remember(&mut self, event: TaskEvent) {
        self.memory_bytes += event.encoded_len() as u64;
        self.memory.push_back(event);
    }

    fn forget_oldest(&mut self) {
        if let Some(event) = self.memory.pop_front() {
            self.memory_bytes = self.memory_bytes.saturating_sub(event.encoded_len() as u64);
        }
    }

    /// Cuts the spool back to its header when every event in it is
    /// acknowledged (nothing in it will ever be sent again).
    fn compact(&mut self, task_id: TaskId) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let header = RunningTask {
            task_id: task_id.to_string(),
            deployment_id: self.deployment_id.clone(),
            generation: self.generation,
            next_seq: self.next_seq,
        };
        let bytes = record(HEADER, &header.encode_to_vec());
        let result = file
            .set_len(0)
            .and_then(|()| file.write_all(&bytes))
            .and_then(|()| file.sync_data());
        match result {
            Ok(()) => {
                self.file_len = bytes.len() as u64;
                self.offsets.clear();
                self.offsets_base = self.next_seq;
                self.dirty = false;
            }
            Err(err) => warn!(path = %self.path.display(), error = %err, "spool compaction failed"),
        }
    }

    fn note(&mut self, event: &TaskEvent) {
        match &event.kind {
            Some(Kind::Finished(_)) => self.finished = true,
            Some(Kind::StageStarted(started)) => self.stage = started.stage.clone(),
            _ => {}
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        let Some(file) = self.file.as_mut().filter(|_| !bytes.is_empty()) else {
            return;
        };
        match file.write_all(bytes) {
            Ok(()) => {
                self.file_len += bytes.len() as u64;
                self.dirty = true;
            }
            Err(err) => {
                warn!(path = %self.path.display(), error = %err, "spool write failed; keeping events in memory only");
                self.file = None;
            }
        }
    }
}

#[cfg(test)]
mod tests;
