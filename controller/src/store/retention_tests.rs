//! Log retention on both engines: markers, the cursor, and on PostgreSQL
//! whole days dropped with their partition.

use std::time::Duration;

use berth_shared::state::DeploymentStatus;

use super::Store;
use super::kv::pg::{DAY_MS, Settings};
use super::logs::ExpiredLogs;
use super::logs::tests::settled_with_lines;

const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

#[test]
fn sweep_leaves_a_durable_marker_on_deployments_that_lost_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (old, empty, young) = {
        let store = Store::open(dir.path()).expect("open");
        let old = settled_with_lines(&store, 1_000, &[1_100, 4_000]);
        let empty = settled_with_lines(&store, 1_200, &[]);
        let young = settled_with_lines(&store, 5_000, &[5_100]);
        assert_eq!(store.expire_logs(3_000, RETENTION).expect("sweep"), 2);
        (old, empty, young)
    };
    // Reopened: the sweep was flushed, marker and deletion together.
    let store = crate::store::reopen(dir.path());
    assert_eq!(store.task_lines(old.0, old.1, 0).count(), 0);
    assert_eq!(
        store.expired_logs(old.0).expect("read"),
        Some(ExpiredLogs {
            // A line newer than the cutoff went too; the marker covers it.
            before_ms: 4_001,
            retention_ms: 30 * 24 * 3600 * 1000,
        })
    );
    assert_eq!(
        store.expired_logs(empty.0).expect("read"),
        None,
        "nothing was deleted"
    );
    assert_eq!(store.expired_logs(young.0).expect("read"), None);
    assert_eq!(store.task_lines(young.0, young.1, 0).count(), 1);
}

#[test]
fn marker_says_cutoff_when_every_line_was_older() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let (id, _) = settled_with_lines(&store, 1_000, &[1_100]);
    store.expire_logs(3_000, RETENTION).expect("sweep");
    let marker = store.expired_logs(id).expect("read").expect("marker");
    assert_eq!(marker.before_ms, 3_000);
}

#[test]
fn forgetting_a_deployment_removes_its_lines_and_marker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let (swept, _) = settled_with_lines(&store, 1_000, &[1_100]);
    let (kept, kept_task) = settled_with_lines(&store, 2_000, &[2_100, 2_200]);
    store.expire_logs(1_500, RETENTION).expect("sweep");
    assert!(store.expired_logs(swept).expect("read").is_some());

    assert_eq!(store.forget_deployment_logs(swept).expect("forget"), 0);
    assert_eq!(store.expired_logs(swept).expect("read"), None);
    assert_eq!(store.forget_deployment_logs(kept).expect("forget"), 2);
    assert_eq!(store.task_lines(kept, kept_task, 0).count(), 0);
}

/// A PostgreSQL store on a new schema; `None` without a server (a
/// failure under `BERTH_REQUIRE_ALL=1`).
fn postgres_store() -> Option<Store> {
    let url = super::kv::tests::fresh_url()?;
    Some(Store::open_postgres(Settings::new(&url, None, None).expect("settings")).expect("open"))
}

/// Chunks in the default partition (days without one of their own).
fn default_chunks(store: &Store) -> i64 {
    let t = store.t().expect("trees");
    let super::kv::Db::Pg(pool) = &t.db else {
        panic!("a PostgreSQL store");
    };
    let rows = pool
        .get()
        .expect("connection")
        .query("SELECT count(*) FROM kv_log_chunks_default", &[])
        .expect("count");
    rows[0].get(0)
}

#[test]
fn on_postgresql_a_swept_day_is_dropped_whole_with_its_partition() {
    let Some(store) = postgres_store() else {
        return;
    };
    let day = 20_000; // 2024-10-04, long past
    let at = |day: i64, ms: i64| u64::try_from(day * DAY_MS + ms).expect("positive");
    let db = &store.t().expect("trees").db;
    assert_eq!(
        db.add_log_days(&[day, day + 1]).expect("add"),
        [day, day + 1]
    );

    // The day before has no partition: its lines are in the default one.
    let before = settled_with_lines(&store, at(day - 1, 5), &[1, 2]);
    let swept = settled_with_lines(&store, at(day, 1_000), &[3, 4]);
    let running = settled_with_lines(&store, at(day, 2_000), &[5]);
    store
        .update_deployment_with_logs(running.0, |deployment| {
            deployment.status = DeploymentStatus::Deploying;
            Ok(((), Vec::new()))
        })
        .expect("running");
    let next_day = settled_with_lines(&store, at(day + 1, 1_000), &[6]);
    assert_eq!(
        default_chunks(&store),
        1,
        "only the day without a partition"
    );

    let cutoff = i64::try_from(at(day + 2, 0)).expect("small");
    assert_eq!(
        store.expire_logs(cutoff, RETENTION).expect("sweep"),
        2,
        "the default partition's lines are deleted row by row"
    );
    assert_eq!(store.task_lines(before.0, before.1, 0).count(), 0);
    assert!(store.expired_logs(before.0).expect("read").is_some());
    // A deployment of the day still runs: the day stays, its lines too.
    assert_eq!(db.log_days().expect("days"), [day, day + 1]);
    assert!(store.expired_logs(swept.0).expect("read").is_some());
    assert_eq!(store.task_lines(running.0, running.1, 0).count(), 1);

    store
        .update_deployment_with_logs(running.0, |deployment| {
            deployment.status = DeploymentStatus::Deployed;
            Ok(((), Vec::new()))
        })
        .expect("settled");
    // Half of the next day is past the cutoff: that day waits, whole.
    let midday = i64::try_from(at(day + 1, DAY_MS / 2)).expect("small");
    assert_eq!(store.expire_logs(midday, RETENTION).expect("again"), 0);
    assert_eq!(db.log_days().expect("days"), [day + 1]);
    assert_eq!(store.task_lines(next_day.0, next_day.1, 0).count(), 1);
    assert_eq!(store.expired_logs(next_day.0).expect("read"), None);

    assert_eq!(store.expire_logs(cutoff, RETENTION).expect("again"), 0);
    assert_eq!(db.log_days().expect("days"), Vec::<i64>::new());
    for (id, task) in [swept, running, next_day] {
        assert_eq!(store.task_lines(id, task, 0).count(), 0);
        let marker = store.expired_logs(id).expect("read").expect("marker");
        assert!(marker.before_ms >= cutoff, "{marker:?}");
    }
    assert!(store.get_deployment(swept.0).is_ok(), "the record stays");

    // A retention shorter than a day deletes row by row, partition or not.
    let later = day + 10;
    db.add_log_days(&[later]).expect("add");
    let short = settled_with_lines(&store, at(later, 1_000), &[7, 8]);
    let cutoff = i64::try_from(at(later, 2_000)).expect("small");
    let hour = Duration::from_secs(3600);
    assert_eq!(store.expire_logs(cutoff, hour).expect("short"), 2);
    assert_eq!(store.task_lines(short.0, short.1, 0).count(), 0);
    assert_eq!(db.log_days().expect("days"), [later], "its day is not over");
}

#[test]
fn on_postgresql_no_partition_is_made_for_a_day_begun_without_one() {
    let Some(store) = postgres_store() else {
        return;
    };
    let day = 20_100;
    let at = |ms: i64| u64::try_from(day * DAY_MS + ms).expect("positive");
    let begun = settled_with_lines(&store, at(10), &[1]);
    let now = i64::try_from(at(60_000)).expect("small");
    assert_eq!(
        store.prepare_log_days(now).expect("prepare"),
        [day + 1, day + 2],
        "today has lines in the default partition already"
    );
    assert_eq!(
        store.prepare_log_days(now).expect("again"),
        Vec::<i64>::new()
    );
    // The day's lines stay readable where they are, and new days' go to
    // their own partitions.
    assert_eq!(store.task_lines(begun.0, begun.1, 0).count(), 1);
    let tomorrow = settled_with_lines(&store, at(DAY_MS + 5), &[1, 2]);
    assert_eq!(store.task_lines(tomorrow.0, tomorrow.1, 0).count(), 2);
    assert_eq!(default_chunks(&store), 1);
}

#[test]
fn on_sled_no_day_is_partitioned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    assert_eq!(
        store.prepare_log_days(1_000).expect("prepare"),
        Vec::<i64>::new()
    );
    let (id, _) = settled_with_lines(&store, 1_000, &[1_100]);
    assert_eq!(store.expire_logs(3_000, RETENTION).expect("sweep"), 1);
    assert_eq!(
        store.expired_logs(id).expect("read"),
        Some(ExpiredLogs {
            before_ms: 3_000,
            retention_ms: 30 * 24 * 3600 * 1000,
        })
    );
}
