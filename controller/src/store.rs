//! The controller's store: sled trees behind a small domain-level API, so
//! another engine can replace sled without touching callers.
//!
//! Every value is wrapped as `[schema u16][crc32 u32][JSON payload]` and the
//! checksum is verified on read. Keys are ordered bytes: ids are ULIDs in
//! their 16-byte big-endian form, so the primary trees sort by time.
//! Callers make a change durable with [`Store::flush`] before they tell
//! anyone about it.

mod agents;
mod approvals;
mod apps;
mod audit;
mod backup;
#[cfg(test)]
mod backup_tests;
mod blobs;
mod copy;
mod deployments;
mod environments;
#[cfg(test)]
mod environments_tests;
mod health;
mod hooks;
mod jobs;
mod keys;
pub(crate) mod kv;
mod lifecycle;
mod list;
mod logs;
mod members;
#[cfg(test)]
mod members_tests;
mod observed;
mod ratings;
mod registries;
mod retention;
#[cfg(test)]
mod retention_tests;
mod sealed;
mod secrets;
mod serving;
mod sessions;
mod tokens;
mod trees;
mod users;
mod webhooks;
#[cfg(test)]
mod webhooks_tests;

pub use tokens::hash_secret as tokens_hash;

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use agents::{AgentRecord, Principal, PrincipalKind, Role};
pub use audit::AuditEntry;
pub use backup::Backup;
pub use copy::Copied;
pub use deployments::{Created, EventOutcome};
pub use environments::EnvironmentRecord;
pub use health::{CHECK_EVERY, Checked, StoreHealth, is_disk_full, write_errors};
pub use hooks::{Accepted, HookRecord, PushRecord};
pub use list::{DEFAULT_LIMIT, ListQuery, Sort};
pub use logs::{ExpiredLogs, LogWrite, StoredLine};
pub use members::{Lease, Member};
pub use ratings::{RatingRecord, RatingTally};
pub use registries::{RegistryCredentials, RegistryRecord, RegistryView};
pub use sealed::Resealed;
pub use secrets::{KEEP_VERSIONS, SecretName, SecretVersion};
#[cfg(test)]
pub(crate) use secrets::{open_sealed, put_sealed};
pub use serving::{Serving, ServingController};
pub use sessions::{SessionRecord, SetupLinkRecord};
pub use tokens::hash_secret;
pub use tokens::{TokenRecord, TokenState};
use trees::Trees;
pub use users::{ApiTokenRecord, UserRecord};
pub use webhooks::{DeliveryRecord, OutboxEvent, WebhookRecord, deployment_events};

/// Version of the value encoding written by this build.
const SCHEMA_VERSION: u16 = 1;

/// What a [`StoreError::NotFound`] did not find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Thing {
    Deployment,
    Agent,
    Job,
    Task,
    Token,
    User,
    Environment,
    Webhook,
    Hook,
}

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store I/O failed: {0}")]
    Sled(sled::Error),
    /// PostgreSQL refused or could not be reached.
    #[error("the controller's PostgreSQL store failed: {0}")]
    Database(String),
    /// The disk under the store is full (or over quota).
    #[error(
        "the controller's store cannot be written: {0}; free disk space on the controller's data directory, and it takes new work again by itself within seconds"
    )]
    DiskFull(String),
    /// The database is being reopened after a write failure.
    #[error(
        "the controller's store is being reopened after a write failure; try again in a few seconds"
    )]
    Reopening,
    #[error(
        "stored value in tree `{tree}` is corrupt ({reason}); restore from a backup or remove the record"
    )]
    Corrupt { tree: &'static str, reason: String },
    #[error("{1} not found")]
    NotFound(Thing, String),
    /// The app and environment has a deployment running already.
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Refused(String),
    /// A sealed value (a secret, a registry password) did not open with
    /// the controller's secrets key; the message names the value, never
    /// its content.
    #[error("{0}")]
    Unsealed(String),
}

impl StoreError {
    /// True when the failure is the disk or the database, not the request.
    pub fn is_internal(&self) -> bool {
        !matches!(
            self,
            StoreError::NotFound(..)
                | StoreError::Busy(_)
                | StoreError::Conflict(_)
                | StoreError::Refused(_)
        )
    }
}

impl From<sled::Error> for StoreError {
    fn from(err: sled::Error) -> Self {
        health::count_write_error();
        match &err {
            sled::Error::Io(io) if health::is_disk_full(io) => {
                let reason = health::disk_full_reason(io);
                health::note_disk_full(reason);
                StoreError::DiskFull(reason.into())
            }
            _ => StoreError::Sled(err),
        }
    }
}

impl From<sled::transaction::TransactionError<StoreError>> for StoreError {
    fn from(err: sled::transaction::TransactionError<StoreError>) -> Self {
        match err {
            sled::transaction::TransactionError::Abort(inner) => inner,
            sled::transaction::TransactionError::Storage(inner) => inner.into(),
        }
    }
}

/// Encodes a value with its schema version and checksum.
fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let payload = serde_json::to_vec(value).expect("records serialize to JSON infallibly");
    let mut bytes = Vec::with_capacity(payload.len() + 6);
    bytes.extend_from_slice(&SCHEMA_VERSION.to_be_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_be_bytes());
    bytes.extend_from_slice(&payload);
    bytes
}

/// Decodes a value, verifying its schema version and checksum.
fn decode<T: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { tree, reason };
    if bytes.len() < 6 {
        return Err(corrupt(format!(
            "value of {} bytes is too short",
            bytes.len()
        )));
    }
    let version = u16::from_be_bytes([bytes[0], bytes[1]]);
    if version != SCHEMA_VERSION {
        return Err(corrupt(format!("unknown schema version {version}")));
    }
    let crc = u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
    let payload = &bytes[6..];
    if crc32fast::hash(payload) != crc {
        return Err(corrupt("checksum mismatch".into()));
    }
    serde_json::from_slice(payload).map_err(|err| corrupt(err.to_string()))
}

/// The controller's durable state. Cheap to clone: every clone shares one
/// database, which [`Store::recover`] may swap for a freshly opened one
/// after a write failure (sled refuses every write after one failed until
/// it is reopened; see `health.rs`).
#[derive(Clone)]
pub struct Store {
    shared: std::sync::Arc<Shared>,
}

struct Shared {
    /// The sled directory, or `None` on PostgreSQL.
    dir: Option<std::path::PathBuf>,
    /// Where the store is, for messages.
    location: String,
    /// `None` only while the database is being reopened.
    current: std::sync::RwLock<Option<std::sync::Arc<Trees>>>,
    health: health::Health,
    flushes: FlushGroup,
    /// The secrets key, once `serve` has loaded it (see `sealed.rs`): the
    /// dispatcher holds only the store and opens registry passwords with
    /// it.
    secret_key: std::sync::RwLock<Option<std::sync::Arc<crate::crypto::SecretKey>>>,
    /// Some webhook endpoint exists, so changes write their events to the
    /// outbox (`webhooks.rs`).
    webhooks_active: std::sync::atomic::AtomicBool,
    /// Wakes the webhook delivery worker.
    webhook_wake: std::sync::Arc<tokio::sync::Notify>,
    /// Wakes the git push worker.
    push_wake: std::sync::Arc<tokio::sync::Notify>,
    /// The metrics committed changes of deployments are counted in, once
    /// `serve` has made them ([`Store::observe`]).
    metrics: std::sync::OnceLock<std::sync::Arc<crate::metrics::Metrics>>,
}

/// Group commit for [`Store::flush`]: callers that arrive while a flush
/// runs share the next one, so there is at most one flush at a time.
///
/// One at a time is also what keeps the controller alive: sled 0.34's
/// `flush_async` runs on sled's own thread pool and, called concurrently
/// (hundreds of agents saying hello at once), fills that pool with flushes
/// waiting for an IO buffer whose write is queued behind them on the same
/// pool, and the store deadlocks (spacejam/sled#1308, fixed only in sled's
/// unreleased main branch).
#[derive(Default)]
struct FlushGroup {
    /// Flushes asked for; a caller's ticket is the count after its request.
    requested: std::sync::atomic::AtomicU64,
    /// Every ticket up to this one is durable.
    done: std::sync::atomic::AtomicU64,
    turn: tokio::sync::Mutex<()>,
}

/// Opens a store a test just dropped: sled's background flusher may hold
/// the file lock for a moment after the last handle goes, so this retries
/// for up to 5 s.
#[cfg(test)]
pub(crate) fn reopen(dir: &Path) -> Store {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match Store::open(dir) {
            Ok(store) => return store,
            Err(err) if std::time::Instant::now() < deadline => {
                let _ = err;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(err) => panic!("reopen the store: {err}"),
        }
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`. sled's file lock refuses a
    /// second process on the same directory.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let store = Store::with(Trees::open(dir)?, Some(dir), dir.display().to_string())?;
        store.migrate_line_keys_once()?;
        Ok(store)
    }

    /// Opens the store in a PostgreSQL database, bringing its schema up to
    /// this build's first (see `kv/pg.rs`).
    pub fn open_postgres(settings: kv::pg::Settings) -> Result<Store, StoreError> {
        let location = format!("postgres://{}", settings.describe());
        let pool = kv::pg::open(settings)?;
        Store::with(Trees::of(kv::Db::Pg(pool))?, None, location)
    }

    fn with(trees: Trees, dir: Option<&Path>, location: String) -> Result<Store, StoreError> {
        let store = Store {
            shared: std::sync::Arc::new(Shared {
                dir: dir.map(Path::to_path_buf),
                location,
                current: std::sync::RwLock::new(Some(std::sync::Arc::new(trees))),
                health: Default::default(),
                flushes: Default::default(),
                secret_key: Default::default(),
                webhooks_active: Default::default(),
                webhook_wake: Default::default(),
                push_wake: Default::default(),
                metrics: Default::default(),
            }),
        };
        store.note_webhooks_present()?;
        store.index_users_once()?;
        Ok(store)
    }

    /// The open database, or [`StoreError::Reopening`] in the moment it is
    /// being swapped.
    fn t(&self) -> Result<std::sync::Arc<Trees>, StoreError> {
        self.shared
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or(StoreError::Reopening)
    }

    /// Makes every earlier write durable (see [`FlushGroup`]).
    pub async fn flush(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        if self.shared.dir.is_none() {
            // PostgreSQL's commits were durable when they returned.
            return Ok(());
        }
        // Our writes happened before this ticket was drawn.
        let flushes = &self.shared.flushes;
        let ticket = flushes.requested.fetch_add(1, SeqCst) + 1;
        let _turn = flushes.turn.lock().await;
        if flushes.done.load(SeqCst) >= ticket {
            // A flush that started after our ticket has finished.
            return Ok(());
        }
        // This flush starts after every ticket drawn so far, so it covers them.
        let covered = flushes.requested.load(SeqCst);
        let db = self.t()?.db.clone();
        let flushed = tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|err| StoreError::Sled(sled::Error::ReportableBug(err.to_string())))?;
        if let Err(err) = flushed {
            return Err(self.failed(err));
        }
        flushes.done.fetch_max(covered, SeqCst);
        Ok(())
    }

    /// The next assignment generation (a durable, strictly increasing
    /// counter used for fencing).
    pub fn next_generation(&self) -> Result<u64, StoreError> {
        use kv::Transactional as _;
        self.t()?.meta.transaction(bump_generation)
    }
}

/// Draws the next generation inside a transaction on `meta` (every
/// change of the counter is one, so they are serialised).
pub(super) fn bump_generation(meta: &kv::TxTree<'_>) -> Result<u64, kv::TxError> {
    let current = match meta.get(b"generation")? {
        None => 0,
        Some(bytes) => <[u8; 8]>::try_from(bytes.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| {
                kv::TxError::Abort(StoreError::Corrupt {
                    tree: "meta",
                    reason: "generation counter unreadable".into(),
                })
            })?,
    };
    meta.insert(b"generation", &(current + 1).to_be_bytes())?;
    Ok(current + 1)
}

#[cfg(test)]
mod list_tests;
#[cfg(test)]
mod tests;
