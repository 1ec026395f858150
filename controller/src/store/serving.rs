//! Which controller runs the work done once per store (the lost-task and
//! deadline sweeper, log retention, webhook delivery, the git push worker,
//! blob eviction).
//!
//! On sled the database's file lock makes its controller the only one. On
//! PostgreSQL every controller serves agents and people at once
//! (`members.rs`), and the one holding the advisory lock `serving`, on a
//! session of its own, runs that work. The others wait on the lock
//! (PostgreSQL's own wait, no polling) and one of them takes over the
//! moment the holder's session ends, whether it stopped, was killed or
//! lost the database. Each holder records itself with a fencing token one
//! above its predecessor's. A holder checks its session every second and
//! stops serving when it is gone, since another may already hold the lock.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::warn;

use super::health::now_ms;
use super::keys::SERVING_KEY;
use super::kv::Db;
use super::kv::pg::{HeldLock, SessionLock};
use super::{Store, StoreError};

/// The name of the advisory lock of the controller serving from a store.
const SERVING_LOCK: &str = "serving";
/// How often a serving controller checks its lock's session.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long a controller waits before waiting again when the database broke
/// off its wait.
const RETRY_WAIT: Duration = Duration::from_secs(2);
/// The controller that runs the store's once-per-store work, as it
/// recorded itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServingController {
    /// The host it runs on.
    pub host: String,
    pub pid: u32,
    /// The gRPC address it listens on.
    pub listen: String,
    /// When it took over, in Unix milliseconds.
    pub since_ms: u64,
    /// Its fencing token: one above the previous holder's.
    #[serde(default)]
    pub token: u64,
}

impl std::fmt::Display for ServingController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on {}, listening on {}",
            self.pid, self.host, self.listen
        )
    }
}

/// This controller's right to serve (see the module's note).
pub enum Serving {
    /// sled: the file lock, held as long as the store is open.
    Alone,
    /// PostgreSQL: the `serving` lock, watched.
    Held(HeldLock),
}

impl Serving {
    /// Resolves when this controller may no longer serve, with the reason;
    /// never on sled.
    pub async fn lost(&mut self) -> String {
        match self {
            Serving::Alone => std::future::pending().await,
            Serving::Held(lock) => lock.lost().await,
        }
    }
}

impl Store {
    /// Takes the lock of the store's once-per-store work, waiting while
    /// another controller holds it; a wait the database breaks off is
    /// taken up again.
    pub async fn take_serving(&self) -> Result<Serving, StoreError> {
        let pool = match &self.t()?.db {
            Db::Sled(_) => return Ok(Serving::Alone),
            Db::Pg(pool) => pool.clone(),
        };
        let id = pool.lock_id(SERVING_LOCK, b"");
        if let Some(lock) = pool.try_session_lock(id)? {
            return Ok(Serving::Held(lock.watch(CHECK_EVERY)));
        }
        loop {
            match pool.session_lock(id, "berth-singleton-wait").await {
                Ok(lock) => return Ok(Serving::Held(lock.watch(CHECK_EVERY))),
                Err(err) => {
                    warn!(error = %err, "the wait for the lock of the once-per-store work broke off; waiting again in {}s", RETRY_WAIT.as_secs());
                    tokio::time::sleep(RETRY_WAIT).await;
                }
            }
        }
    }

    /// `sled` or `postgresql`.
    pub fn engine(&self) -> Result<&'static str, StoreError> {
        Ok(match &self.t()?.db {
            Db::Sled(_) => "sled",
            Db::Pg(_) => "postgresql",
        })
    }

    /// Records `me` as the holder of the once-per-store work since now,
    /// with the next fencing token, which it returns (`berth status
    /// --controllers` shows it).
    pub fn record_serving(&self, me: &ServingController) -> Result<u64, StoreError> {
        let token = self.serving_controller()?.map_or(0, |last| last.token) + 1;
        let record = ServingController {
            since_ms: now_ms(),
            token,
            ..me.clone()
        };
        let bytes = serde_json::to_vec(&record)
            .map_err(|err| StoreError::Database(format!("encode the serving record: {err}")))?;
        self.t()?.meta.insert(SERVING_KEY, bytes)?;
        Ok(token)
    }

    /// The controller that recorded itself as the holder last; `None`
    /// before any did.
    pub fn serving_controller(&self) -> Result<Option<ServingController>, StoreError> {
        let Some(bytes) = self.t()?.meta.get(SERVING_KEY)? else {
            return Ok(None);
        };
        Ok(serde_json::from_slice(&bytes).ok())
    }

    /// Refuses while any controller serves from this store (for offline
    /// commands such as `rotate-key`); the guard keeps controllers from
    /// starting until it drops.
    pub fn refuse_while_served(&self) -> Result<Option<SessionLock>, StoreError> {
        match &self.t()?.db {
            Db::Sled(_) => Ok(None),
            Db::Pg(pool) => pool
                .try_session_lock(pool.lock_id(super::members::OFFLINE_LOCK, b""))?
                .map(Some)
                .ok_or_else(|| {
                    StoreError::Refused(
                        "a controller is serving from this PostgreSQL store; Stop it first (every controller on the database: systemctl stop berth-controller), then run this again".into(),
                    )
                }),
        }
    }
}
