//! Whether the store can be written, and getting it back when it cannot.
//!
//! sled 0.34 remembers the first write that failed (a full disk, say) and
//! refuses every later write with that same error, even after space is
//! freed, until the database is reopened. So a failed write marks the store
//! unwritable (callers then answer `RESOURCE_EXHAUSTED` and acknowledge
//! nothing), and [`Store::check`], run every few seconds by the server,
//! reopens the database in place once the disk has room again: the new
//! database holds exactly what was made durable, which is everything that
//! was acknowledged.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use serde::Serialize;
use tracing::{error, info, warn};

use super::{Store, StoreError, Trees};

/// How often [`Store::check`] should run.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);
/// The longest wait between two attempts to reopen.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Free space below which reopening is not tried (it would fail again).
const MIN_FREE_BYTES: u64 = 2 << 20;
/// How long a reopen waits for the old database's file lock to be let go.
const LOCK_WAIT: Duration = Duration::from_secs(5);
/// How long a whole reopen may take before the store counts as stuck:
/// sled 0.34 can hang for good flushing a database whose large-value write
/// failed for a full disk (even closing it flushes), and only a new
/// process gets it back.
const REOPEN_WAIT: Duration = Duration::from_secs(15);

/// What [`Store::check`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Checked {
    /// The store takes writes (or is waiting for room or its next try).
    Fine,
    /// The database could not be let go of (its reopen hung, or its file
    /// lock stayed held); only a new process can open it again (see
    /// [`REOPEN_WAIT`]).
    Stuck,
}

/// What operators see of the store's health.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct StoreHealth {
    /// Why the store cannot be written; `None` when it can.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// When the problem began (Unix milliseconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
}

#[derive(Default)]
pub(super) struct Health {
    problem: Mutex<Option<Problem>>,
}

struct Problem {
    reason: String,
    since_ms: u64,
    next_try: Instant,
    backoff: Duration,
}

/// Set when any store write failed for a full disk since the last
/// [`Store::check`]: a write's error reaches its caller through `?`, far
/// from the store, and sled does not always remember it (a failed write in
/// a transaction leaves later small writes working until its buffer is
/// flushed). Process-wide; one controller has one store.
static DISK_FULL_SEEN: Mutex<Option<&'static str>> = Mutex::new(None);

/// Store operations sled failed since the process started (see
/// [`write_errors`]). Process-wide, like [`DISK_FULL_SEEN`].
static WRITE_ERRORS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts one failed store operation: every sled error becomes a
/// [`StoreError`] in one place, and sled fails writes, transactions and
/// flushes (reads only on a broken database).
pub(super) fn count_write_error() {
    WRITE_ERRORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Store operations sled failed since the controller started
/// (`berth_store_write_errors_total`).
pub fn write_errors() -> u64 {
    WRITE_ERRORS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Records that a write failed for a full disk, and why (see
/// [`DISK_FULL_SEEN`]).
pub fn note_disk_full(reason: &'static str) {
    *DISK_FULL_SEEN
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(reason);
}

/// True for the I/O errors a full disk (ENOSPC, 28) or an exhausted quota
/// (EDQUOT, 122) gives.
pub fn is_disk_full(io: &std::io::Error) -> bool {
    if io.kind() == std::io::ErrorKind::StorageFull || matches!(io.raw_os_error(), Some(28 | 122)) {
        return true;
    }
    // sled may wrap the OS error in a custom one that keeps only its text.
    let text = io.to_string();
    ["os error 28", "code: 28,", "os error 122", "code: 122,"]
        .iter()
        .any(|needle| text.contains(needle))
}

/// The reason in plain words (sled keeps only the text of the OS error).
pub fn disk_full_reason(io: &std::io::Error) -> &'static str {
    let text = io.to_string();
    if io.raw_os_error() == Some(122) || text.contains("error 122") || text.contains("code: 122,") {
        "Disk quota exceeded"
    } else {
        "No space left on device"
    }
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// Bytes free for unprivileged writers on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    fs2::available_space(dir).ok()
}

impl Store {
    /// The sled directory; `None` on PostgreSQL.
    pub fn dir(&self) -> Option<&Path> {
        self.shared.dir.as_deref()
    }

    /// Where the store is (a directory or a database), for messages.
    pub fn location(&self) -> &str {
        &self.shared.location
    }

    /// Whether the store can be written now.
    pub fn health(&self) -> StoreHealth {
        let problem = self.lock_problem();
        StoreHealth {
            problem: problem.as_ref().map(|problem| problem.reason.clone()),
            since_ms: problem.as_ref().map(|problem| problem.since_ms),
        }
    }

    fn lock_problem(&self) -> std::sync::MutexGuard<'_, Option<Problem>> {
        self.shared
            .health
            .problem
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the store unwritable when `err` is the disk's fault, and gives
    /// `err` back.
    pub(super) fn failed(&self, err: StoreError) -> StoreError {
        let reason = match &err {
            StoreError::DiskFull(reason) => reason.clone(),
            StoreError::Sled(sled::Error::Io(io)) => io.to_string(),
            _ => return err,
        };
        let mut problem = self.lock_problem();
        if problem.is_none() {
            error!(
                store = %self.location(),
                reason = %reason,
                "the store cannot be written: new work is refused and nothing more is acknowledged until it can; free disk space there and the controller resumes by itself"
            );
            *problem = Some(Problem {
                reason,
                since_ms: now_ms(),
                next_try: Instant::now() + CHECK_EVERY,
                backoff: CHECK_EVERY,
            });
        }
        err
    }

    /// One look at the store: while it is healthy, a write that failed for
    /// a full disk since the last look, or a small write that fails now,
    /// makes it unhealthy; while it is not, the database is
    /// reopened once the disk has room, and the store is healthy again
    /// when the reopened one takes a durable write.
    pub async fn check(&self) -> Checked {
        let due = self
            .lock_problem()
            .as_ref()
            .map(|problem| problem.next_try <= Instant::now());
        match due {
            None => {
                let seen = DISK_FULL_SEEN
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                if let Some(reason) = seen {
                    self.failed(StoreError::DiskFull(reason.into()));
                } else if let Err(err) = self.probe() {
                    self.failed(err);
                }
            }
            Some(false) => {}
            Some(true) => {
                let store = self.clone();
                let reopen = tokio::task::spawn_blocking(move || store.reopen());
                let Ok(result) = tokio::time::timeout(REOPEN_WAIT, reopen).await else {
                    return Checked::Stuck;
                };
                let result = result.unwrap_or_else(|err| {
                    Err(StoreError::Corrupt {
                        tree: "meta",
                        reason: format!("reopen panicked: {err}"),
                    })
                });
                // Something in this process still holds the old database
                // (a flush that never returns): the same as a hung reopen.
                if result
                    .as_ref()
                    .is_err_and(|err| err.to_string().contains("could not acquire lock"))
                {
                    return Checked::Stuck;
                }
                self.after_reopen(result);
            }
        }
        Checked::Fine
    }

    fn probe(&self) -> Result<(), StoreError> {
        self.t()?.meta.insert(b"probe", &now_ms().to_be_bytes())?;
        Ok(())
    }

    fn after_reopen(&self, result: Result<bool, StoreError>) {
        let mut problem = self.lock_problem();
        let Some(current) = problem.as_mut() else {
            return;
        };
        match result {
            Ok(true) => {
                let down = now_ms().saturating_sub(current.since_ms);
                info!(store = %self.location(), down_ms = down, "the store takes writes again");
                *problem = None;
            }
            Ok(false) => current.next_try = Instant::now() + CHECK_EVERY,
            Err(err) => {
                warn!(store = %self.location(), error = %err, retry_in = ?current.backoff, "the store is still unwritable");
                current.reason = match err {
                    StoreError::DiskFull(reason) => reason,
                    other => other.to_string(),
                };
                current.next_try = Instant::now() + current.backoff;
                current.backoff = (current.backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    /// Reopens the database in place; `Ok(false)` when the disk has no
    /// room yet. The old database stays in use until it can be let go.
    fn reopen(&self) -> Result<bool, StoreError> {
        let Some(dir) = self.dir() else {
            // PostgreSQL: the pool opens new connections by itself; the
            // store is back when a write goes through.
            self.probe()?;
            return Ok(true);
        };
        if free_bytes(dir).is_some_and(|free| free < MIN_FREE_BYTES) {
            return Ok(false);
        }
        let old = self
            .shared
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let weak = old.as_ref().map(Arc::downgrade);
        drop(old);
        // Calls in flight hold the old database for a moment, and sled's
        // flusher thread a moment longer; its file lock goes with them.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let opened = loop {
            match Trees::open(dir) {
                Ok(trees) => break Ok(trees),
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(err) => break Err(err),
            }
        };
        let mut current = self
            .shared
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match opened {
            Ok(trees) => {
                let trees = Arc::new(trees);
                *current = Some(trees.clone());
                drop(current);
                trees.meta.insert(b"probe", &now_ms().to_be_bytes())?;
                trees.db.flush()?;
                Ok(true)
            }
            Err(err) => {
                // Still held elsewhere, or unreadable: keep serving reads
                // from the old one while it lives.
                *current = weak.and_then(|weak| weak.upgrade());
                Err(err)
            }
        }
    }
}
