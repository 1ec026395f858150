//! The engine seam's contract, run on sled and on PostgreSQL alike: the
//! same calls must give the same answers on both, or the records above
//! would differ by engine. PostgreSQL is the server `BERTH_TEST_POSTGRES`
//! names (scripts/test.sh starts one); without it only sled runs, and
//! under `BERTH_REQUIRE_ALL=1` (CI) that is a failure.

use std::ops::Bound;

use super::{Db, IVec, Transactional, TxError};
use crate::store::StoreError;

/// Each engine, opened empty, with what keeps it alive.
fn engines() -> Vec<(&'static str, Db, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let sled = sled::Config::new().path(dir.path()).open().expect("sled");
    let mut engines = vec![("sled", Db::Sled(sled), Some(dir))];
    if let Some(url) = fresh_url() {
        let settings = super::pg::Settings::new(&url, None, None).expect("settings");
        engines.push((
            "postgres",
            Db::Pg(super::pg::open(settings).expect("open")),
            None,
        ));
    }
    engines
}

/// An address on a new, empty schema of the tests' server; `None` without
/// one (a failure under `BERTH_REQUIRE_ALL=1`).
pub(in crate::store) fn fresh_url() -> Option<String> {
    match std::env::var("BERTH_TEST_POSTGRES") {
        Ok(server) if !server.is_empty() => Some(schema_url(&server)),
        _ => {
            assert!(
                std::env::var("BERTH_REQUIRE_ALL").as_deref() != Ok("1"),
                "the store's tests need PostgreSQL: set BERTH_TEST_POSTGRES to a server (scripts/test.sh starts one)"
            );
            None
        }
    }
}

/// A pool on a new, empty schema of `server`.
fn fresh_pool(server: &str) -> std::sync::Arc<super::pg::Pool> {
    let settings = super::pg::Settings::new(&schema_url(server), None, None).expect("settings");
    super::pg::open(settings).expect("open")
}

/// A new, empty schema of `server`, as an address whose connections use it.
fn schema_url(server: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let schema = format!(
        "kv{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    let mut client = postgres::Client::connect(server, postgres::NoTls).expect("connect");
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .expect("schema");
    std::thread::spawn(move || drop(client))
        .join()
        .expect("close");
    let joiner = if server.contains('?') { '&' } else { '?' };
    format!("{server}{joiner}options=-c%20search_path%3D{schema}")
}

fn key(n: u32) -> [u8; 4] {
    n.to_be_bytes()
}

fn keys(iter: impl Iterator<Item = Result<(IVec, IVec), StoreError>>) -> Vec<u32> {
    iter.map(|entry| {
        let (key, _) = entry.expect("entry");
        u32::from_be_bytes(key.as_ref().try_into().expect("4 bytes"))
    })
    .collect()
}

#[test]
fn reads_and_writes_return_what_was_there() {
    for (engine, db, _keep) in engines() {
        let tree = db.open_tree("meta").expect("tree");
        assert_eq!(
            tree.insert(b"a", b"1".as_slice()).expect("insert"),
            None,
            "{engine}"
        );
        let old = tree.insert(b"a", b"2".as_slice()).expect("insert");
        assert_eq!(old.as_deref(), Some(b"1".as_slice()), "{engine}");
        assert_eq!(
            tree.get(b"a").expect("get").as_deref(),
            Some(b"2".as_slice())
        );
        assert!(tree.contains_key(b"a").expect("contains"), "{engine}");
        let removed = tree.remove(b"a").expect("remove");
        assert_eq!(removed.as_deref(), Some(b"2".as_slice()), "{engine}");
        assert_eq!(tree.remove(b"a").expect("remove"), None, "{engine}");
        assert!(tree.is_empty().expect("empty"), "{engine}");

        assert!(
            tree.compare_and_swap(b"c", None, Some(b"x".to_vec()))
                .expect("cas")
                .is_ok()
        );
        assert!(
            tree.compare_and_swap(b"c", None, Some(b"y".to_vec()))
                .expect("cas")
                .is_err()
        );
        let bumped = tree
            .update_and_fetch(b"c", |old| old.map(|old| [old, b"!"].concat()))
            .expect("update");
        assert_eq!(bumped.as_deref(), Some(b"x!".as_slice()), "{engine}");
        let first = db.generate_id().expect("id");
        assert!(db.generate_id().expect("id") > first, "{engine}");
    }
}

#[test]
fn scans_keep_byte_order_from_both_ends_across_pages() {
    for (engine, db, _keep) in engines() {
        let tree = db.open_tree("deployments").expect("tree");
        // More than one page of the largest size, and keys whose bytes
        // sort differently as signed bytes or as text.
        let all: Vec<u32> = (0..2_500).map(|n| n * 104_729 % 3_000_017).collect();
        for n in &all {
            tree.insert(key(*n), n.to_string().into_bytes())
                .expect("insert");
        }
        let mut sorted = all.clone();
        sorted.sort_unstable();
        assert_eq!(keys(tree.iter()), sorted, "{engine}: forward");
        let mut reversed = sorted.clone();
        reversed.reverse();
        assert_eq!(keys(tree.iter().rev()), reversed, "{engine}: backward");

        // Both ends at once meet in the middle, each entry once.
        let mut iter = tree.iter();
        let mut seen = Vec::new();
        loop {
            let front = iter.next();
            let back = iter.next_back();
            if front.is_none() && back.is_none() {
                break;
            }
            seen.extend(keys(front.into_iter().chain(back)));
        }
        seen.sort_unstable();
        assert_eq!(seen, sorted, "{engine}: from both ends");

        let (low, high) = (sorted[100], sorted[1_900]);
        let ranged = keys(tree.range((Bound::Excluded(key(low)), Bound::Included(key(high)))));
        assert_eq!(ranged, sorted[101..=1_900], "{engine}: range");
        let prefix = keys(tree.scan_prefix([0u8, 0x10]));
        let expected: Vec<u32> = sorted.iter().copied().filter(|n| n >> 16 == 0x10).collect();
        assert_eq!(prefix, expected, "{engine}: prefix");
        assert_eq!(
            keys(tree.first().into_iter().flatten().map(Ok)),
            [sorted[0]],
            "{engine}: first"
        );
    }
}

#[test]
fn a_transaction_writes_every_tree_or_none() {
    for (engine, db, _keep) in engines() {
        let (a, b) = (
            db.open_tree("jobs").expect("a"),
            db.open_tree("builds").expect("b"),
        );
        let refused = (&a, &b).transaction(|(a, b)| {
            a.insert(b"k", b"1".as_slice())?;
            b.insert(b"k", b"1".as_slice())?;
            Err::<(), _>(TxError::Abort(StoreError::Refused("no".into())))
        });
        assert!(matches!(refused, Err(StoreError::Refused(_))), "{engine}");
        assert_eq!(a.get(b"k").expect("get"), None, "{engine}: rolled back");
        assert_eq!(b.get(b"k").expect("get"), None, "{engine}: rolled back");

        (&a, &b)
            .transaction(|(a, b)| {
                a.insert(b"k", b"2".as_slice())?;
                b.insert(b"k", b"2".as_slice())?;
                Ok(())
            })
            .expect("commit");
        assert_eq!(a.get(b"k").expect("get").as_deref(), Some(b"2".as_slice()));
        assert_eq!(b.get(b"k").expect("get").as_deref(), Some(b"2".as_slice()));
    }
}

#[test]
fn a_transaction_reads_its_own_writes_and_removes_what_others_committed() {
    for (engine, db, _keep) in engines() {
        let (a, b) = (
            db.open_tree("jobs").expect("a"),
            db.open_tree("builds").expect("b"),
        );
        a.insert(b"gone", b"0".as_slice())
            .expect("committed before");
        let seen = (&a, &b)
            .transaction(|(a, b)| {
                a.insert(b"k", b"1".as_slice())?;
                a.insert(b"k", b"2".as_slice())?;
                b.insert(b"k", b"3".as_slice())?;
                b.remove(b"k")?;
                a.remove(b"gone")?;
                for n in 0..700u32 {
                    b.insert(key(n), &key(n))?;
                }
                super::TxTree::read_ahead(&[(a, b"gone".as_slice()), (b, b"absent".as_slice())])?;
                assert_eq!(b.get(b"absent")?, None);
                Ok((a.get(b"k")?, b.get(b"k")?, a.get(b"gone")?))
            })
            .expect("commit");
        assert_eq!(
            seen,
            (Some(IVec::from(b"2".as_slice())), None, None),
            "{engine}"
        );
        assert_eq!(a.get(b"k").expect("get").as_deref(), Some(b"2".as_slice()));
        assert_eq!(b.get(b"k").expect("get"), None, "{engine}");
        assert_eq!(a.get(b"gone").expect("get"), None, "{engine}");
        assert_eq!(b.iter().count(), 700, "{engine}");
    }
}

#[test]
fn concurrent_transactions_lose_no_update() {
    for (engine, db, _keep) in engines() {
        let (counter, log) = (
            db.open_tree("meta").expect("a"),
            db.open_tree("audit").expect("b"),
        );
        std::thread::scope(|scope| {
            for thread in 0..6u32 {
                let (counter, log) = (&counter, &log);
                scope.spawn(move || {
                    for step in 0..25u32 {
                        (counter, log)
                            .transaction(|(counter, log)| {
                                if thread % 2 == 0 {
                                    // Half read the counter ahead (`pg/ahead.rs`).
                                    super::TxTree::read_ahead(&[
                                        (counter, b"n".as_slice()),
                                        (log, key(thread * 1_000 + step).as_slice()),
                                    ])?;
                                }
                                let now = counter.get(b"n")?.map_or(0, |v| {
                                    u32::from_be_bytes(v.as_ref().try_into().unwrap_or_default())
                                });
                                counter.insert(b"n", (now + 1).to_be_bytes().to_vec())?;
                                log.insert(key(thread * 1_000 + step), &key(now))?;
                                Ok(())
                            })
                            .expect("transaction");
                    }
                });
            }
        });
        let total = counter.get(b"n").expect("get").expect("counted");
        assert_eq!(total.as_ref(), 150u32.to_be_bytes(), "{engine}");
        // Each increment saw a distinct count: none was lost or doubled.
        let mut seen: Vec<Vec<u8>> = log
            .iter()
            .values()
            .map(|v| v.expect("v").to_vec())
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 150, "{engine}");
    }
}

#[test]
fn tables_are_only_made_of_tree_names() {
    for (_, db, _keep) in engines() {
        if let Db::Pg(pool) = &db {
            assert!(super::pg::Table::new(pool.clone(), "x; DROP TABLE kv_meta").is_err());
        }
    }
}

#[test]
fn a_schema_migrated_by_a_newer_build_is_refused() {
    let Ok(server) = std::env::var("BERTH_TEST_POSTGRES") else {
        assert!(
            std::env::var("BERTH_REQUIRE_ALL").as_deref() != Ok("1"),
            "this test needs PostgreSQL: set BERTH_TEST_POSTGRES"
        );
        return;
    };
    let pool = fresh_pool(&server);
    // A migration this build does not know, as a newer build would leave.
    let conn_url = {
        let mut lent = pool.get().expect("connection");
        lent.query(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) VALUES (1000, 'later', '2027-01-01T00:00:00Z', '0')",
            &[],
        )
        .expect("insert");
        let rows = lent.query("SELECT current_schema()", &[]).expect("schema");
        rows[0].get::<_, String>(0)
    };
    drop(pool);
    let joiner = if server.contains('?') { '&' } else { '?' };
    let url = format!("{server}{joiner}options=-c%20search_path%3D{conn_url}");
    let settings = super::pg::Settings::new(&url, None, None).expect("settings");
    let refused = super::pg::open(settings).err().expect("refused");
    assert!(
        matches!(&refused, StoreError::Refused(message) if message.contains("newer berth-controller")),
        "{refused}"
    );
}

#[test]
fn of_racing_inserts_of_an_absent_key_exactly_one_wins() {
    for (engine, db, _keep) in engines() {
        let (claims, winners) = (
            db.open_tree("idx_idempotency").expect("a"),
            db.open_tree("jobs").expect("b"),
        );
        for round in 0..20u32 {
            std::thread::scope(|scope| {
                for thread in 0..4u32 {
                    let (claims, winners) = (&claims, &winners);
                    scope.spawn(move || {
                        (claims, winners)
                            .transaction(|(claims, winners)| {
                                // Read absent, then write: a second one
                                // must see the first's claim.
                                if claims.get(key(round))?.is_none() {
                                    claims.insert(key(round), &key(thread))?;
                                    winners.insert(key(round * 10 + thread), &key(thread))?;
                                }
                                Ok(())
                            })
                            .expect("transaction");
                    });
                }
            });
        }
        let won = winners.iter().count();
        assert_eq!(won, 20, "{engine}: one winner per round");
    }
}
