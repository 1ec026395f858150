//! The log table's day partitions (migration V2): `kv_log_chunks` is
//! partitioned by range of key, and a chunk's key starts with its
//! deployment's ULID, whose first six bytes are the creation time in Unix
//! ms, so the partition `kv_log_chunks_YYYY_MM_DD` holds the chunks of
//! the deployments created that day (UTC). Days without one fall in
//! `kv_log_chunks_default`.
//!
//! Partitions are made ahead of their day; one is never made for a day
//! the default partition already holds chunks of (PostgreSQL would refuse
//! it, and would first scan the whole default partition to find out).
//! Making or dropping one locks the parent table briefly, so both give up
//! after [`LOCK_WAIT`] rather than queue every log write behind a long
//! reader (a backup), and are tried again at the next sweep.

use jiff::tz::TimeZone;

use super::{Pool, StoreError, blocking, failed};

/// A day, in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// How long making or dropping a partition waits for its locks.
const LOCK_WAIT: &str = "1s";

const PARENT: &str = "kv_log_chunks";
const PREFIX: &str = "kv_log_chunks_";

/// The table name of day `day` (days since the Unix epoch, UTC); `None`
/// for a day outside the calendar's years 1 to 9999.
fn table(day: i64) -> Option<String> {
    let date = jiff::Timestamp::from_millisecond(day.checked_mul(DAY_MS)?)
        .ok()?
        .to_zoned(TimeZone::UTC)
        .date();
    Some(format!("{PREFIX}{}", date.strftime("%Y_%m_%d")))
}

/// The day of a partition's table name; `None` for another name.
fn day_of(name: &str) -> Option<i64> {
    let date = name.strip_prefix(PREFIX)?;
    let mut parts = date.split('_');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    let date =
        jiff::civil::Date::new(year.parse().ok()?, month.parse().ok()?, day.parse().ok()?).ok()?;
    let ms = date
        .to_zoned(TimeZone::UTC)
        .ok()?
        .timestamp()
        .as_millisecond();
    Some(ms.div_euclid(DAY_MS))
}

/// The first key of day `day`: its first millisecond as a ULID's six
/// time bytes.
fn day_start(day: i64) -> Vec<u8> {
    let ms = u64::try_from(day.saturating_mul(DAY_MS)).unwrap_or_default();
    ms.to_be_bytes()[2..].to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl Pool {
    /// The days that have a partition of their own, ascending.
    pub fn log_days(&self) -> Result<Vec<i64>, StoreError> {
        blocking(|| {
            let rows = self
                .get()?
                .query(
                    "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                     WHERE i.inhparent = $1::text::regclass",
                    &[&PARENT],
                )
                .map_err(failed)?;
            let mut days: Vec<i64> = rows
                .iter()
                .filter_map(|row| day_of(row.get::<_, &str>(0)))
                .collect();
            days.sort_unstable();
            Ok(days)
        })?
    }

    /// Makes the partition of each of `days` that has none and of which
    /// the default partition holds no chunk; returns the days made.
    pub fn add_log_days(&self, days: &[i64]) -> Result<Vec<i64>, StoreError> {
        let have = self.log_days()?;
        let mut made = Vec::new();
        for &day in days.iter().filter(|day| !have.contains(day)) {
            let Some(name) = table(day) else { continue };
            let (from, to) = (day_start(day), day_start(day + 1));
            let added = blocking(|| -> Result<bool, StoreError> {
                let mut conn = self.get()?;
                let begun = conn
                    .query(
                        "SELECT 1 FROM kv_log_chunks_default WHERE k >= $1 AND k < $2 LIMIT 1",
                        &[&from, &to],
                    )
                    .map_err(failed)?;
                if !begun.is_empty() {
                    return Ok(false);
                }
                // The name and bounds are made of a number, never of input.
                changed(
                    &mut conn,
                    &format!(
                        "CREATE TABLE IF NOT EXISTS {name} PARTITION OF {PARENT} \
                         FOR VALUES FROM ('\\x{}') TO ('\\x{}')",
                        hex(&from),
                        hex(&to)
                    ),
                )?;
                Ok(true)
            })??;
            if added {
                made.push(day);
            }
        }
        Ok(made)
    }

    /// Drops day `day`'s partition and every chunk in it.
    pub fn drop_log_day(&self, day: i64) -> Result<(), StoreError> {
        let Some(name) = table(day) else {
            return Ok(());
        };
        blocking(|| {
            let mut conn = self.get()?;
            changed(&mut conn, &format!("DROP TABLE IF EXISTS {name}"))
        })?
    }
}

/// Runs one change of the table's partitions in a transaction that waits
/// at most [`LOCK_WAIT`] for its locks.
fn changed(conn: &mut super::Conn, statement: &str) -> Result<(), StoreError> {
    let sql = format!("BEGIN; SET LOCAL lock_timeout = '{LOCK_WAIT}'; {statement}; COMMIT");
    conn.client.batch_execute(&sql).map_err(|err| {
        let _ = conn.client.batch_execute("ROLLBACK");
        failed(err)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_and_its_table_name_go_both_ways() {
        let day = 1_796_601_600_000 / DAY_MS; // 2026-12-07
        assert_eq!(table(day).as_deref(), Some("kv_log_chunks_2026_12_07"));
        assert_eq!(day_of("kv_log_chunks_2026_12_07"), Some(day));
        assert_eq!(day_of("kv_log_chunks_default"), None);
        assert_eq!(table(0).as_deref(), Some("kv_log_chunks_1970_01_01"));
    }

    #[test]
    fn a_day_starts_at_its_first_ulid_time_bytes() {
        let day = 20_429;
        let ulid = ulid::Ulid::from_parts(u64::try_from(day * DAY_MS).unwrap_or_default(), 0);
        assert_eq!(day_start(day), ulid.to_bytes()[..6].to_vec());
        let last = ulid::Ulid::from_parts(
            u64::try_from((day + 1) * DAY_MS - 1).unwrap_or_default(),
            u128::MAX,
        );
        assert!(last.to_bytes()[..].to_vec() < day_start(day + 1));
        assert!(ulid.to_bytes()[..].to_vec() >= day_start(day));
    }

    /// A store an older build made (one log table, no partitions) keeps
    /// its lines when this build moves them into the partitioned table.
    #[test]
    fn the_log_table_is_partitioned_with_its_lines_kept() {
        let Some(url) = super::super::super::tests::fresh_url() else {
            return;
        };
        let settings = super::super::Settings::new(&url, None, None).expect("settings");
        super::super::connect::migrate_to(&settings, 1);
        let day = 20_300;
        let key = |day: i64, n: u8| {
            let mut key = day_start(day);
            key.push(n);
            key
        };
        let mut client = settings.connect().expect("connect");
        client
            .execute(
                "INSERT INTO kv_log_chunks (k, v) VALUES ($1, $2)",
                &[&key(day, 1), &&b"one"[..]],
            )
            .expect("an older build's line");
        std::thread::spawn(move || drop(client))
            .join()
            .expect("close");
        let pool = super::super::open(settings).expect("open");
        let table = super::super::Table::new(pool.clone(), "log_chunks").expect("table");
        assert_eq!(pool.add_log_days(&[day, day + 1]).expect("add"), [day + 1]);
        table.insert(&key(day + 1, 2), b"two").expect("insert");
        assert_eq!(table.count().expect("count"), 2);
        pool.drop_log_day(day + 1).expect("drop");
        assert_eq!(table.count().expect("count"), 1);
        assert_eq!(
            table.get(&key(day, 1)).expect("get").as_deref(),
            Some(&b"one"[..])
        );
    }
}
