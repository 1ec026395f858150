//! Session advisory locks: each controller's own lock (`store/members.rs`)
//! and the lock of the once-per-store work (`store/serving.rs`), taken at
//! once or waited for, and watched so that a controller whose session
//! ended (its lock with it) learns so within seconds.

use std::sync::mpsc;
use std::time::Duration;

use super::{Pool, Settings, StoreError, blocking, failed, reason};

/// Server-side TCP keepalives and a send timeout on a lock's session, so
/// PostgreSQL ends the session of a controller whose machine is gone (no
/// FIN, no RST) within about 11 s instead of the system's default two
/// hours, which frees its locks for the others. Unix-socket sessions ignore
/// them: a local peer's end is always seen.
const KEEPALIVES: &str = "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; \
     SET tcp_keepalives_count = 3; SET tcp_user_timeout = 10000";

/// A connection of its own for a session lock (see [`KEEPALIVES`]).
fn lock_session(settings: &Settings) -> Result<postgres::Client, StoreError> {
    let mut conn = settings.connect()?;
    conn.batch_execute(KEEPALIVES).map_err(failed)?;
    Ok(conn)
}

/// A PostgreSQL session-level advisory lock, held on a connection of its
/// own for as long as this lives.
pub struct SessionLock {
    conn: Option<postgres::Client>,
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        // Closing the connection ends the session and its lock; closing
        // blocks, so on a thread of its own (see `Pool`'s drop).
        if let Some(conn) = self.conn.take() {
            let _ = std::thread::spawn(move || drop(conn)).join();
        }
    }
}

impl Pool {
    /// The id of the advisory lock `name` of `key` in this store: the
    /// first 8 bytes of SHA-256(schema, name, key), the same in every
    /// controller of every version (two that share an id only wait for
    /// each other).
    pub fn lock_id(&self, name: &str, key: &[u8]) -> i64 {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        hash.update(self.schema.get().map_or("", String::as_str).as_bytes());
        hash.update([0]);
        hash.update(name.as_bytes());
        hash.update([0]);
        hash.update(key);
        let digest = hash.finalize();
        i64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
    }

    /// Takes the advisory lock `key` without waiting; `None` when another
    /// session holds it.
    pub fn try_session_lock(&self, key: i64) -> Result<Option<SessionLock>, StoreError> {
        blocking(|| {
            let mut conn = lock_session(&self.settings)?;
            let taken: bool = conn
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .map_err(failed)?
                .get(0);
            let lock = SessionLock { conn: Some(conn) };
            Ok(taken.then_some(lock))
        })?
    }

    /// Takes the advisory lock `key` and, shared, the lock `shared`, both
    /// without waiting, on a session named `name`; `None` when another
    /// session holds either (the session then ends, freeing what it took).
    pub fn try_session_locks(
        &self,
        key: i64,
        shared: i64,
        name: &str,
    ) -> Result<Option<SessionLock>, StoreError> {
        let settings = self.settings.named(name);
        blocking(|| {
            let mut conn = lock_session(&settings)?;
            let row = conn
                .query_one(
                    "SELECT pg_try_advisory_lock($1), pg_try_advisory_lock_shared($2)",
                    &[&key, &shared],
                )
                .map_err(failed)?;
            let (own, both): (bool, bool) = (row.get(0), row.get(1));
            let lock = SessionLock { conn: Some(conn) };
            Ok((own && both).then_some(lock))
        })?
    }

    /// Waits until the advisory lock `key` is free and takes it, on a
    /// session named `name` (`application_name`, so others can list who
    /// waits: [`Pool::waiting_for`]). The wait is PostgreSQL's own
    /// (`pg_advisory_lock` returns when the holder's session ends), on a
    /// thread of its own; dropping the future leaves that thread waiting
    /// until the process ends.
    pub async fn session_lock(&self, key: i64, name: &str) -> Result<SessionLock, StoreError> {
        let settings = self.settings.named(name);
        let (taken, told) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let result = lock_session(&settings).and_then(|mut conn| {
                conn.query_one("SELECT pg_advisory_lock($1)", &[&key])
                    .map_err(failed)?;
                Ok(SessionLock { conn: Some(conn) })
            });
            let _ = taken.send(result);
        });
        told.await.map_err(|_| {
            StoreError::Database("the thread waiting for the advisory lock ended".into())
        })?
    }
}

/// A session holding advisory locks.
#[derive(Clone, Debug)]
pub struct Holding {
    /// Its `application_name`.
    pub name: String,
    /// Since when it is connected, in Unix milliseconds.
    pub since_ms: u64,
    /// The ids of the (exclusive) advisory locks it holds.
    pub locks: Vec<i64>,
}

impl Pool {
    /// The sessions whose name starts with `prefix`, with the exclusive
    /// advisory locks each holds.
    pub fn holding(&self, prefix: &str) -> Result<Vec<Holding>, StoreError> {
        let pattern = format!("{}%", prefix.replace('%', "\\%").replace('_', "\\_"));
        blocking(|| {
            let rows = self
                .get()?
                .query(
                    "SELECT a.application_name, (extract(epoch FROM a.backend_start) * 1000)::bigint, \
                     ((l.classid::bigint << 32) | l.objid::bigint) \
                     FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
                     AND l.mode = 'ExclusiveLock' AND a.application_name LIKE $1 \
                     ORDER BY a.backend_start",
                    &[&pattern],
                )
                .map_err(failed)?;
            let mut sessions: Vec<Holding> = Vec::new();
            for row in &rows {
                let name = row.get::<_, Option<String>>(0).unwrap_or_default();
                let since_ms = u64::try_from(row.get::<_, Option<i64>>(1).unwrap_or_default())
                    .unwrap_or_default();
                let lock = row.get::<_, Option<i64>>(2).unwrap_or_default();
                match sessions
                    .iter_mut()
                    .find(|s| s.name == name && s.since_ms == since_ms)
                {
                    Some(session) => session.locks.push(lock),
                    None => sessions.push(Holding {
                        name,
                        since_ms,
                        locks: vec![lock],
                    }),
                }
            }
            Ok(sessions)
        })?
    }
}

impl SessionLock {
    /// Checks the lock's session every `every` on a thread of its own
    /// (a round trip on its connection) until the returned [`HeldLock`]
    /// drops, which ends the session and the lock.
    pub fn watch(mut self, every: Duration) -> HeldLock {
        let (stop, stopped) = mpsc::channel::<()>();
        let (beat, beats) = tokio::sync::watch::channel(Beat::Alive);
        let conn = self.conn.take();
        std::thread::spawn(move || {
            let Some(mut conn) = conn else { return };
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                match conn.simple_query("SELECT 1") {
                    // `send_replace` marks a change even for an equal value.
                    Ok(_) => {
                        beat.send_replace(Beat::Alive);
                    }
                    Err(err) => {
                        beat.send_replace(Beat::Gone(reason(&err)));
                        return;
                    }
                }
            }
        });
        HeldLock {
            every,
            beats,
            _stop: stop,
        }
    }
}

/// What the watching thread saw last.
#[derive(Clone, Debug)]
enum Beat {
    Alive,
    Gone(String),
}

/// A session lock being watched (see [`SessionLock::watch`]).
pub struct HeldLock {
    every: Duration,
    beats: tokio::sync::watch::Receiver<Beat>,
    /// Dropped with the lock: the watching thread then closes the session.
    _stop: mpsc::Sender<()>,
}

impl HeldLock {
    /// Resolves once the lock's session is gone (the connection failed a
    /// check, or no check answered within five periods), with the reason.
    pub async fn lost(&mut self) -> String {
        let patience = self.every * 5;
        loop {
            match tokio::time::timeout(patience, self.beats.changed()).await {
                Err(_) => {
                    return format!(
                        "the database did not answer the lock's check for {}s",
                        patience.as_secs()
                    );
                }
                Ok(Err(_)) => return "the lock's watching thread ended".into(),
                Ok(Ok(())) => {
                    if let Beat::Gone(reason) = &*self.beats.borrow_and_update() {
                        return reason.clone();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests' server over TCP (a lost machine is a TCP matter).
    fn tcp_settings() -> Option<Settings> {
        let url = crate::store::kv::tests::fresh_url()?;
        let config: postgres::Config = url.parse().ok()?;
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or("postgres").to_owned();
        Settings::new(
            &format!("postgres://{user}@127.0.0.1:{port}/postgres?sslmode=disable"),
            None,
            None,
        )
        .ok()
    }

    #[test]
    fn a_lock_session_tells_the_server_to_notice_a_lost_machine() {
        let Some(settings) = tcp_settings() else {
            return;
        };
        let mut conn = lock_session(&settings).expect("a lock session over TCP");
        for (setting, want) in [
            ("tcp_keepalives_idle", "5"),
            ("tcp_keepalives_interval", "2"),
            ("tcp_keepalives_count", "3"),
            ("tcp_user_timeout", "10000"),
        ] {
            let row = conn
                .query_one(&format!("SHOW {setting}"), &[])
                .expect("show the setting");
            let shown: String = row.get(0);
            assert_eq!(shown, want, "{setting}");
        }
    }
}
