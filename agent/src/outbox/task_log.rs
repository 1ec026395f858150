//! One task's pending events: in memory and in its spool file (records
//! `[kind u8][len u32][crc32 u32][prost bytes]`), and the batch budget.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use berth_proto::v1::task_event::Kind;
use berth_proto::v1::{RunningTask, TaskEvent};
use berth_shared::id::TaskId;
use prost::Message;
use tracing::warn;

use super::{EVENT, EVENT_V1, HEADER, MAX_RECORD, MEMORY_EVENTS, legacy};

/// Limits on the size of one batch.
pub(super) struct Budget {
    pub(super) events: usize,
    pub(super) bytes: usize,
    pub(super) taken: usize,
}

impl Budget {
    pub(super) fn new(events: usize, bytes: usize) -> Budget {
        Budget {
            events,
            bytes,
            taken: 0,
        }
    }

    /// Takes room for an event; the first event always fits, so a batch is
    /// never empty.
    pub(super) fn take(&mut self, event: &TaskEvent) -> bool {
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
pub(super) fn read_events_from(
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
        let Some(event) = event_of(kind, &payload) else {
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

/// The event a spool record holds: `None` for a header, a record of a kind
/// this agent does not know, or one that does not decode.
pub(super) fn event_of(kind: u8, payload: &[u8]) -> Option<TaskEvent> {
    match kind {
        EVENT => TaskEvent::decode(payload).ok(),
        EVENT_V1 => legacy::upgrade(payload),
        _ => None,
    }
}

pub(super) struct TaskLog {
    pub(super) deployment_id: String,
    /// Byte offset in the spool file of each event from `offsets_base` on.
    pub(super) offsets: Vec<u64>,
    /// The sequence number of `offsets[0]`.
    pub(super) offsets_base: u64,
    /// Log lines dropped because the spool was full, not yet reported.
    pub(super) dropped: u64,
    /// Length of the spool file as written so far.
    pub(super) file_len: u64,
    /// Written since the last sync.
    pub(super) dirty: bool,
    pub(super) generation: u64,
    pub(super) next_seq: u64,
    pub(super) acked: u64,
    pub(super) memory: VecDeque<TaskEvent>,
    /// Encoded size of `memory`.
    pub(super) memory_bytes: u64,
    pub(super) file: Option<File>,
    pub(super) path: PathBuf,
    pub(super) finished: bool,
    /// The stage that last started, for the record of an interrupted task.
    pub(super) stage: String,
    /// The ack at which a paused producer waited out [`STALL`]: until the
    /// controller acknowledges more, the task's output is not paused.
    pub(super) stalled_at: Option<u64>,
}

pub(super) fn record(kind: u8, payload: &[u8]) -> Vec<u8> {
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
pub(super) type Record = (u8, Vec<u8>);

/// Reads records until the end or the first damaged one; returns them and
/// the length of the good prefix.
pub(super) fn read_records(path: &Path) -> std::io::Result<(Vec<Record>, u64)> {
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
pub(super) fn read_record(reader: &mut impl Read) -> Option<Record> {
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

impl TaskLog {
    pub(super) fn new(
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
    pub(super) fn sync(&mut self) {
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
    pub(super) fn add(&mut self, kind: Kind, spooled: &mut Vec<u8>) {
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

    pub(super) fn remember(&mut self, event: TaskEvent) {
        self.memory_bytes += event.encoded_len() as u64;
        self.memory.push_back(event);
    }

    pub(super) fn forget_oldest(&mut self) {
        if let Some(event) = self.memory.pop_front() {
            self.memory_bytes = self.memory_bytes.saturating_sub(event.encoded_len() as u64);
        }
    }

    /// Cuts the spool back to its header when every event in it is
    /// acknowledged (nothing in it will ever be sent again).
    pub(super) fn compact(&mut self, task_id: TaskId) {
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

    pub(super) fn note(&mut self, event: &TaskEvent) {
        match &event.kind {
            Some(Kind::Finished(_)) => self.finished = true,
            Some(Kind::StageStarted(started)) => self.stage = started.stage.clone(),
            _ => {}
        }
    }

    pub(super) fn append(&mut self, bytes: &[u8]) {
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
