//! Which controller serves from a store.
//!
//! On sled the database's file lock makes the serving controller the only
//! one. On PostgreSQL the serving controller holds the advisory lock
//! `serving` on a session of its own for as long as it serves. Another
//! controller started on the same database stands by: it waits on that
//! lock (PostgreSQL's own wait, no polling) without listening, and takes
//! over the moment the session ends, whether its holder stopped, was
//! killed or lost the database. A serving controller checks its session
//! every second and stops serving when it is gone, since a standby may
//! already have taken over.

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
/// How long a standby waits before waiting again when the database broke
/// off its wait.
const RETRY_WAIT: Duration = Duration::from_secs(2);
/// How a standby's waiting session names itself:
/// `berth-standby PID LISTEN HOST` (PostgreSQL keeps 63 bytes of it).
const STANDBY_PREFIX: &str = "berth-standby ";

fn standby_name(me: &ServingController) -> String {
    format!("{STANDBY_PREFIX}{} {} {}", me.pid, me.listen, me.host)
}

/// A controller standing by, as its waiting session names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Standby {
    pub host: String,
    pub pid: u32,
    /// The gRPC address it will listen on.
    pub listen: String,
    /// Since when it waits, in Unix milliseconds.
    pub since_ms: u64,
}

/// The controller that serves from a store, as it recorded itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServingController {
    /// The host it runs on.
    pub host: String,
    pub pid: u32,
    /// The gRPC address it listens on.
    pub listen: String,
    /// When it took over, in Unix milliseconds.
    pub since_ms: u64,
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
    /// Takes the right to serve from this store. On PostgreSQL, when
    /// another controller serves, calls `standing_by` with what it
    /// recorded and waits until it stops, on a session named after `me`
    /// (so the serving one lists it: [`Store::standbys`]); a wait the
    /// database breaks off is taken up again.
    pub async fn take_serving(
        &self,
        me: &ServingController,
        standing_by: impl FnOnce(Option<ServingController>),
    ) -> Result<Serving, StoreError> {
        let pool = match &self.t()?.db {
            Db::Sled(_) => return Ok(Serving::Alone),
            Db::Pg(pool) => pool.clone(),
        };
        let id = pool.lock_id(SERVING_LOCK, b"");
        if let Some(lock) = pool.try_session_lock(id)? {
            return Ok(Serving::Held(lock.watch(CHECK_EVERY)));
        }
        standing_by(self.serving_controller()?);
        let name = standby_name(me);
        loop {
            match pool.session_lock(id, &name).await {
                Ok(lock) => {
                    pool.forget_idle();
                    return Ok(Serving::Held(lock.watch(CHECK_EVERY)));
                }
                Err(err) => {
                    warn!(error = %err, "standing by: the wait for the serving lock broke off; waiting again in {}s", RETRY_WAIT.as_secs());
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

    /// The controllers standing by on this store (none on sled).
    pub fn standbys(&self) -> Result<Vec<Standby>, StoreError> {
        let pool = match &self.t()?.db {
            Db::Sled(_) => return Ok(Vec::new()),
            Db::Pg(pool) => pool.clone(),
        };
        let waiting = pool.waiting_for(pool.lock_id(SERVING_LOCK, b""))?;
        Ok(waiting
            .into_iter()
            .filter_map(|session| {
                let rest = session.name.strip_prefix(STANDBY_PREFIX)?;
                let mut words = rest.splitn(3, ' ');
                Some(Standby {
                    pid: words.next()?.parse().ok()?,
                    listen: words.next()?.to_string(),
                    host: words.next().unwrap_or_default().to_string(),
                    since_ms: session.since_ms,
                })
            })
            .collect())
    }

    /// Records `me` as the controller serving from this store since now
    /// (`berth status` shows it).
    pub fn record_serving(&self, me: &ServingController) -> Result<(), StoreError> {
        let record = ServingController {
            since_ms: now_ms(),
            ..me.clone()
        };
        let bytes = serde_json::to_vec(&record)
            .map_err(|err| StoreError::Database(format!("encode the serving record: {err}")))?;
        self.t()?.meta.insert(SERVING_KEY, bytes)?;
        Ok(())
    }

    /// The controller that recorded itself as serving last; `None` on sled
    /// or before any did.
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
                .try_session_lock(pool.lock_id(SERVING_LOCK, b""))?
                .map(Some)
                .ok_or_else(|| {
                    StoreError::Refused(
                        "a controller is serving from this PostgreSQL store; Stop it first (every controller on the database, standbys too: systemctl stop berth-controller), then run this again".into(),
                    )
                }),
        }
    }
}
