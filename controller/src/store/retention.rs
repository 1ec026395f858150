//! Log retention: the lines of settled deployments created before the
//! cutoff go, oldest deployment first, each leaving an [`ExpiredLogs`]
//! marker so `berth logs` can say why lines are missing.
//!
//! On PostgreSQL, the chunks of a day that has a partition of its own
//! (`kv/pg/days.rs`) are not deleted row by row: once the whole day is
//! past the cutoff, each deployment of that day gets its marker, and once
//! every deployment created that day is swept, the day's partition is
//! dropped whole. That removes a day of lines in one cheap statement,
//! with nothing left to vacuum and no WAL for each deleted row; the price
//! is that lines are kept up to a day longer than the retention. Chunks
//! of days without a partition (sled's, PostgreSQL's before the store had
//! partitions) and every day under a retention shorter than [`BY_DAY`]
//! are deleted row by row as before.

use std::time::Duration;

use berth_shared::id::DeploymentId;

use super::keys::expired_key;
use super::kv::pg::DAY_MS;
use super::kv::{IVec, Transactional, TxError};
use super::logs::ExpiredLogs;
use super::{Store, StoreError, decode, encode};

/// Days ahead of today whose log partitions are made (today's too, while
/// none of its chunks has been stored without one).
const DAYS_AHEAD: i64 = 2;

/// The shortest retention that drops whole days: a shorter one (a test's,
/// or a tight disk's) deletes row by row on every day, since waiting for
/// a whole day to pass would keep lines several times longer than asked.
const BY_DAY: Duration = Duration::from_secs(24 * 3600);

/// The creation time of a deployment, from its ULID.
fn created_ms(id: DeploymentId) -> i64 {
    i64::try_from(id.0.timestamp_ms()).unwrap_or(i64::MAX)
}

impl Store {
    /// Makes the log partitions of today and the next [`DAYS_AHEAD`]
    /// days (on PostgreSQL; nothing on sled); returns the days made.
    pub fn prepare_log_days(&self, now_ms: i64) -> Result<Vec<i64>, StoreError> {
        let today = now_ms.div_euclid(DAY_MS);
        let days: Vec<i64> = (today..=today + DAYS_AHEAD).collect();
        self.t()?.db.add_log_days(&days)
    }

    /// Deletes the log lines of settled deployments created before
    /// `cutoff_ms` (Unix ms). Deployments are visited oldest first from a
    /// durable cursor, so each is swept once; the sweep stops at the first
    /// deployment that is still running. Each deployment that loses lines
    /// gets an [`ExpiredLogs`] marker naming `retention`, written in the
    /// same transaction as the deletion (or, on a day with a partition,
    /// before the partition is dropped), and the whole sweep is flushed
    /// before it returns. Returns the number of lines deleted row by row;
    /// a dropped day's lines are not counted.
    pub fn expire_logs(&self, cutoff_ms: i64, retention: Duration) -> Result<u64, StoreError> {
        let t = self.t()?;
        let days = t.db.log_days()?;
        let by_day = retention >= BY_DAY;
        let cursor = t
            .meta
            .get(b"retention_cursor")?
            .map(|bytes| bytes.to_vec())
            .unwrap_or_default();
        let start = if cursor.is_empty() {
            std::ops::Bound::Unbounded
        } else {
            std::ops::Bound::Excluded(cursor)
        };
        let (mut removed, mut swept) = (0u64, false);
        // Every deployment created before this has been swept.
        let mut frontier_ms = cutoff_ms;
        for entry in t
            .deployments
            .range::<Vec<u8>, _>((start, std::ops::Bound::Unbounded))
        {
            let (key, value) = entry?;
            let Ok(bytes) = <[u8; 16]>::try_from(key.as_ref()) else {
                continue;
            };
            let id = DeploymentId::from_bytes(bytes);
            let created = created_ms(id);
            if created >= cutoff_ms {
                break;
            }
            let deployment: berth_shared::record::Deployment = decode("deployments", &value)?;
            if deployment.status.is_running() {
                frontier_ms = created;
                break;
            }
            let day = created.div_euclid(DAY_MS);
            if by_day && days.contains(&day) {
                if (day + 1).saturating_mul(DAY_MS) > cutoff_ms {
                    // The day goes whole, once all of it is past the cutoff.
                    frontier_ms = created;
                    break;
                }
                // Its lines go with the day: the marker's time is the later
                // of the cutoff and the deployment's last change, when its
                // last line was stored.
                let had_lines = t.logs.scan_prefix(id.to_bytes()).next().is_some();
                let newest_ms = deployment.updated_at.0;
                self.record_expiry(id, &[], had_lines, newest_ms, cutoff_ms, retention)?;
            } else {
                // A corrupt chunk is deleted all the same; only its lines'
                // times are unknown.
                let (chunks, lines, newest_ms) = self.deployment_chunks(id)?;
                let had_lines = !chunks.is_empty();
                self.record_expiry(id, &chunks, had_lines, newest_ms, cutoff_ms, retention)?;
                removed += lines;
            }
            swept = true;
        }
        if swept {
            t.db.flush()?;
        }
        for day in days {
            if (day + 1).saturating_mul(DAY_MS) > frontier_ms.min(cutoff_ms) {
                break;
            }
            t.db.drop_log_day(day)?;
            tracing::info!(
                day = %berth_shared::time::rfc3339(day * DAY_MS).get(..10).unwrap_or_default(),
                "dropped a day of log lines past retention"
            );
        }
        Ok(removed)
    }

    /// Deletes `chunks` of a deployment (none when they go with their
    /// day's partition), records its marker when it `had_lines` (every
    /// line older than the cutoff or than just after `newest_ms`), and
    /// moves the cursor past it, all in one transaction.
    fn record_expiry(
        &self,
        id: DeploymentId,
        chunks: &[IVec],
        had_lines: bool,
        newest_ms: i64,
        cutoff_ms: i64,
        retention: Duration,
    ) -> Result<(), StoreError> {
        let marker = ExpiredLogs {
            before_ms: cutoff_ms.max(newest_ms.saturating_add(1)),
            retention_ms: u64::try_from(retention.as_millis()).unwrap_or(u64::MAX),
        };
        let t = self.t()?;
        (&t.logs, &t.meta).transaction(|(logs, meta)| {
            for key in chunks {
                logs.remove(key)?;
            }
            if had_lines {
                meta.insert(expired_key(id), encode(&marker))?;
            }
            meta.insert(b"retention_cursor", &id.to_bytes())?;
            Ok::<_, TxError>(())
        })?;
        Ok(())
    }
}
