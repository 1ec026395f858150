//! The outbox: every task's events (log lines, stage starts and ends, the
//! final result) get a per-task sequence number and are appended to a spool
//! file before they are sent. They stay until the controller acknowledges
//! them, so they survive a cut link, a controller restart and an agent
//! restart; after a reconnect everything unacknowledged is sent again and
//! the controller drops duplicates by sequence number.
//!
//! Spool record format: `[kind u8][len u32][crc32 u32][prost bytes]`, kind 0
//! a [`RunningTask`] header (the last one wins), kind 2 a [`TaskEvent`]. A
//! torn tail left by a crash is cut off when the spool is loaded.
//!
//! Kind 1 is a [`TaskEvent`] as agents of protocol version 1 wrote it (its
//! outcomes and streams were strings, in fields version 2 reserves): an
//! agent upgraded with such events unacknowledged reads them with that
//! layout and sends them as version 2 events ([`legacy`]). Records of a
//! kind it does not know (a newer agent's, after a downgrade) are skipped.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use berth_proto::v1::task_event::Kind;
use berth_proto::v1::{LogLine, RunningTask, TaskEvent, TaskEvents};
use berth_shared::id::TaskId;
use prost::Message;
use tokio::sync::Notify;
use tracing::warn;

use crate::stage::shell::Stream;

mod legacy;
mod load;
mod task_log;
use task_log::{Budget, TaskLog, read_events_from, read_records, record};

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
/// A protocol version 1 event, read (see [`legacy`]) but no longer written.
const EVENT_V1: u8 = 1;
const EVENT: u8 = 2;

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
    /// Log lines dropped since the agent started, for its metrics.
    dropped_total: std::sync::atomic::AtomicU64,
}

/// What the spool holds now (`berth_agent_spool_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spooled {
    /// Bytes of every task's spool file.
    pub bytes: u64,
    /// Events not acknowledged yet (log lines among them).
    pub events: u64,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, HashMap<TaskId, TaskLog>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
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
                self.dropped_total
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
                        stream: Stream::System.into(),
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

    /// Log lines dropped (a full spool or memory) since the agent started.
    pub fn dropped_lines(&self) -> u64 {
        self.dropped_total
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The size of the spool now.
    pub fn spooled(&self) -> Spooled {
        self.lock()
            .values()
            .fold(Spooled::default(), |total, log| Spooled {
                bytes: total.bytes + log.file_len,
                events: total.events + log.next_seq.saturating_sub(log.acked + 1),
            })
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

#[cfg(test)]
mod tests;
