//! The controller's background sweeps, started by `server::run`: blobs
//! evicted under the store's budget, expired log lines removed, and the
//! store watched after a write failure (reopened, or the controller
//! started afresh when sled cannot let go of the old database).

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::blob::BlobStore;
use crate::server::Listening;
use crate::store::Store;

/// How often the blob store is checked against its budget.
const BLOB_SWEEP: Duration = Duration::from_secs(60);

/// Keeps the blob store under `budget`: deletes the least recently used
/// blobs that no running, deployed or stopped deployment needs (and the
/// build results kept in them), at start and then every minute.
pub async fn evict_blobs(store: Store, blobs: BlobStore, budget: u64, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(BLOB_SWEEP);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let chooser = store.clone();
        let evict = match tokio::task::spawn_blocking(move || chooser.blobs_to_evict(budget)).await
        {
            Ok(Ok(evict)) => evict,
            Ok(Err(err)) => {
                warn!(error = %err, "blob budget check failed");
                continue;
            }
            Err(err) => {
                warn!(error = %err, "blob budget check panicked");
                continue;
            }
        };
        for digest in evict {
            // The record goes first: a crash in between leaves a file no
            // record names, never a record without its file.
            let removed = store.forget_blob(&digest).map(|()| digest.clone());
            match removed {
                Ok(digest) => {
                    if let Err(err) = store.flush().await {
                        warn!(error = %err, "could not flush a blob eviction");
                        break;
                    }
                    if let Err(err) = blobs.remove(&digest).await {
                        warn!(%digest, error = %err, "could not delete an evicted blob's file");
                    }
                    info!(%digest, budget, "blob evicted (least recently used, no live deployment needs it)");
                }
                Err(err) => warn!(%digest, error = %err, "could not evict a blob"),
            }
        }
    }
}

/// How often expired log lines are looked for, at most.
const RETENTION_SWEEP: Duration = Duration::from_secs(3600);
/// How often expired log lines are looked for, at least.
const RETENTION_SWEEP_MIN: Duration = Duration::from_secs(1);

/// The sweep period: hourly, or a tenth of the retention when that is
/// shorter (but not below a second), so a short retention is kept closely.
fn sweep_period(retention: Duration) -> Duration {
    (retention / 10).clamp(RETENTION_SWEEP_MIN, RETENTION_SWEEP)
}

/// Makes the log partitions of the days ahead (PostgreSQL) and deletes
/// log lines older than `retention`, at start and then every
/// [`sweep_period`].
pub async fn sweep_logs(store: Store, retention: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(sweep_period(retention));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = berth_shared::time::now_ms();
        let cutoff = now - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let sweeper = store.clone();
        match tokio::task::spawn_blocking(move || sweeper.prepare_log_days(now)).await {
            Ok(Ok(days)) if days.is_empty() => {}
            Ok(Ok(days)) => info!(
                days = days.len(),
                "made the log partitions of the days ahead"
            ),
            Ok(Err(err)) => {
                warn!(error = %err, "making the log partitions of the days ahead failed; the lines go to the default partition meanwhile")
            }
            Err(err) => warn!(error = %err, "making the log partitions panicked"),
        }
        let sweeper = store.clone();
        match tokio::task::spawn_blocking(move || sweeper.expire_logs(cutoff, retention)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(removed)) => info!(removed, "expired log lines removed"),
            Ok(Err(err)) => warn!(error = %err, "log retention sweep failed"),
            Err(err) => warn!(error = %err, "log retention sweep panicked"),
        }
    }
}

/// Keeps an eye on the store: a write failure (a full disk) makes it
/// unwritable until it is reopened, which [`Store::check`] does once there
/// is room again; when sled cannot let go of the old database, the
/// controller starts afresh in its own process (see [`crate::restart`]).
pub async fn watch_store(store: Store, listening: Listening, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(crate::store::CHECK_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if store.check().await == crate::store::Checked::Stuck {
            error!(
                store = %store.location(),
                "the store could not be reopened in place (sled still holds the old database); everything acknowledged is on disk, so the controller starts afresh in its own process to open it again"
            );
            crate::restart::start_afresh(
                listening.grpc,
                listening.http.map(|(address, _)| address),
                listening.metrics,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::sweep_period;

    #[test]
    fn sweep_period_follows_a_short_retention() {
        let check = |retention: u64, period: u64| {
            assert_eq!(
                sweep_period(Duration::from_secs(retention)),
                Duration::from_secs(period),
                "retention {retention}s"
            );
        };
        check(30 * 24 * 3600, 3600);
        check(20_000, 2_000);
        check(60, 6);
        check(2, 1);
        check(0, 1);
    }
}
