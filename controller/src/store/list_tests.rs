//! Tests of deployment history queries: each filter, free-text search,
//! every sort in both directions, paging, and the one-time build of
//! `idx_user` for a store written before that index existed.

use berth_shared::id::DeploymentId;
use berth_shared::record::Deployment;
use berth_shared::state::DeploymentStatus::{self, *};
use ulid::Ulid;

use super::{ListQuery, Sort, Store, StoreError, encode};

/// A deployment whose id is made at `ms`, so ids sort (and read) by `ms`.
fn deployment(ms: u64, app: &str, env: &str, user: &str, status: DeploymentStatus) -> Deployment {
    let mut deployment = crate::testing::deployment(&["h1"], 0);
    deployment.id = id_at(ms);
    deployment.app = app.into();
    deployment.environment = env.into();
    deployment.triggered_by = user.into();
    deployment.status = status;
    deployment
}

fn id_at(ms: u64) -> DeploymentId {
    DeploymentId(Ulid::from_parts(ms, u128::from(ms) * 7_919))
}

/// Seven deployments, created at 1..=7 ms.
const ROWS: [(u64, &str, &str, &str, DeploymentStatus); 7] = [
    (1, "web", "prod", "alice", Superseded),
    (2, "api", "prod", "bob", Deployed),
    (3, "web", "staging", "alice", Failed),
    (4, "worker", "prod", "carol", Failed),
    (5, "web", "prod", "bob", Deployed),
    (6, "api", "staging", "alice", Pending),
    (7, "web-admin", "prod", "carol", SetupRunning),
];

fn store_with_rows() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    for (ms, app, env, user, status) in ROWS {
        store
            .create_deployment(&deployment(ms, app, env, user, status), true, false)
            .expect("create");
    }
    (dir, store)
}

/// The creation times (`ms`) of what `query` lists.
fn listed(store: &Store, query: ListQuery) -> Vec<u64> {
    store
        .list_deployments(&query)
        .expect("list")
        .iter()
        .map(|deployment| deployment.id.0.timestamp_ms())
        .collect()
}

fn check(store: &Store, query: ListQuery, expected: &[u64]) {
    assert_eq!(listed(store, query.clone()), expected, "{query:?}");
}

fn app(app: &str) -> ListQuery {
    ListQuery {
        app: Some(app.into()),
        ..Default::default()
    }
}

fn by(user: &str) -> ListQuery {
    ListQuery {
        triggered_by: Some(user.into()),
        ..Default::default()
    }
}

fn search(text: &str) -> ListQuery {
    ListQuery {
        search: Some(text.into()),
        ..Default::default()
    }
}

fn sorted(sort: Sort, ascending: bool) -> ListQuery {
    ListQuery {
        sort,
        ascending,
        ..Default::default()
    }
}

#[test]
fn filters_by_app_environment_user_and_status() {
    let (_dir, store) = store_with_rows();
    check(&store, ListQuery::default(), &[7, 6, 5, 4, 3, 2, 1]);
    check(&store, app("web"), &[5, 3, 1]);
    check(&store, app("nope"), &[]);
    let web_prod = ListQuery {
        environment: Some("prod".into()),
        ..app("web")
    };
    check(&store, web_prod, &[5, 1]);
    let staging = ListQuery {
        environment: Some("staging".into()),
        ..Default::default()
    };
    check(&store, staging, &[6, 3]);
    check(&store, by("alice"), &[6, 3, 1]);
    check(&store, by("ali"), &[]);
    let statuses = |statuses: Vec<DeploymentStatus>| ListQuery {
        statuses,
        ..Default::default()
    };
    check(&store, statuses(vec![Failed, Pending]), &[6, 4, 3]);
    check(&store, statuses(vec![Failed, Failed]), &[4, 3]);
    check(&store, statuses(vec![Deleted]), &[]);
}

#[test]
fn combines_filters_whichever_index_drives() {
    let (_dir, store) = store_with_rows();
    let failed_by_alice = ListQuery {
        statuses: vec![Failed],
        ..by("alice")
    };
    check(&store, failed_by_alice, &[3]);
    let web_by_bob = ListQuery {
        app: Some("web".into()),
        ..by("bob")
    };
    check(&store, web_by_bob, &[5]);
    let deployed_in_prod = ListQuery {
        environment: Some("prod".into()),
        statuses: vec![Deployed],
        ..Default::default()
    };
    check(&store, deployed_in_prod, &[5, 2]);
    let web_in_staging = ListQuery {
        environment: Some("staging".into()),
        ..search("web")
    };
    check(&store, web_in_staging, &[3]);
}

#[test]
fn searches_app_names_users_and_id_prefixes() {
    let (_dir, store) = store_with_rows();
    check(&store, search("WEB"), &[7, 5, 3, 1]);
    check(&store, search("ob"), &[5, 2]);
    check(&store, search("car"), &[7, 4]);
    check(&store, search("  worker "), &[4]);
    let fourth = id_at(4).to_string();
    check(&store, search(&fourth[..10]), &[4]);
    check(&store, search(&fourth.to_lowercase()), &[4]);
    check(&store, search("000000000"), &[7, 6, 5, 4, 3, 2, 1]);
    // No id starts above 7, and I, L, O and U are not Crockford digits.
    check(&store, search("8"), &[]);
    check(&store, search("0000000000I"), &[]);
    check(&store, search("zzz"), &[]);
    check(&store, search(""), &[7, 6, 5, 4, 3, 2, 1]);
    let oldest_first = ListQuery {
        ascending: true,
        ..search("web")
    };
    check(&store, oldest_first, &[1, 3, 5, 7]);
}

#[test]
fn sorts_by_created_both_ways() {
    let (_dir, store) = store_with_rows();
    check(&store, sorted(Sort::Created, false), &[7, 6, 5, 4, 3, 2, 1]);
    check(&store, sorted(Sort::Created, true), &[1, 2, 3, 4, 5, 6, 7]);
    let alice_oldest_first = ListQuery {
        ascending: true,
        ..by("alice")
    };
    check(&store, alice_oldest_first, &[1, 3, 6]);
}

#[test]
fn sorts_by_status_in_lifecycle_order_newest_first_within() {
    let (_dir, store) = store_with_rows();
    check(&store, sorted(Sort::Status, true), &[6, 7, 5, 2, 4, 3, 1]);
    check(&store, sorted(Sort::Status, false), &[1, 4, 3, 5, 2, 7, 6]);
    // Driven by another index, the statuses come from the records.
    let web = |ascending| ListQuery {
        sort: Sort::Status,
        ascending,
        ..app("web")
    };
    check(&store, web(true), &[5, 3, 1]);
    check(&store, web(false), &[1, 3, 5]);
}

#[test]
fn sorts_by_app_then_environment_newest_first_within() {
    let (_dir, store) = store_with_rows();
    check(&store, sorted(Sort::App, true), &[2, 6, 5, 1, 3, 7, 4]);
    check(&store, sorted(Sort::App, false), &[4, 7, 3, 5, 1, 6, 2]);
    let failed_or_deployed = |ascending| ListQuery {
        statuses: vec![Failed, Deployed],
        sort: Sort::App,
        ascending,
        ..Default::default()
    };
    check(&store, failed_or_deployed(true), &[2, 5, 3, 4]);
    check(&store, failed_or_deployed(false), &[4, 3, 5, 2]);
    let alice = ListQuery {
        sort: Sort::App,
        ascending: true,
        ..by("alice")
    };
    check(&store, alice, &[6, 1, 3]);
}

#[test]
fn pages_with_offset_and_limit_after_sorting() {
    let (_dir, store) = store_with_rows();
    let page = |offset, limit| ListQuery {
        offset,
        limit,
        ..Default::default()
    };
    check(&store, page(0, 2), &[7, 6]);
    check(&store, page(2, 2), &[5, 4]);
    check(&store, page(6, 2), &[1]);
    check(&store, page(7, 2), &[]);
    // The user index drives; the status is checked on each record, so the
    // offset counts only matches.
    let alice_settled = |offset| ListQuery {
        statuses: vec![Failed, Superseded],
        offset,
        limit: 1,
        ..by("alice")
    };
    check(&store, alice_settled(0), &[3]);
    check(&store, alice_settled(1), &[1]);
    check(&store, alice_settled(2), &[]);
    let by_app = ListQuery {
        sort: Sort::App,
        ascending: true,
        offset: 2,
        limit: 3,
        ..Default::default()
    };
    check(&store, by_app, &[5, 1, 3]);
    let web_by_status = ListQuery {
        sort: Sort::Status,
        ascending: true,
        offset: 1,
        limit: 5,
        ..app("web")
    };
    check(&store, web_by_status, &[3, 1]);
}

#[test]
fn until_holds_the_pages_in_place_whichever_index_drives() {
    let (_dir, store) = store_with_rows();
    let until = Some(DeploymentId::last_of(5));
    let page = |offset, query: ListQuery| ListQuery {
        offset,
        limit: 2,
        until,
        ..query
    };
    // Made at 6 and 7 ms, after the snapshot: never listed, so page 2
    // starts where it did.
    check(&store, page(0, ListQuery::default()), &[5, 4]);
    check(&store, page(2, ListQuery::default()), &[3, 2]);
    check(&store, page(0, by("alice")), &[3, 1]);
    check(&store, page(0, app("api")), &[2]);
    check(&store, page(0, search("web")), &[5, 3]);
    check(&store, page(0, sorted(Sort::Status, true)), &[5, 2]);
    check(&store, page(0, sorted(Sort::App, true)), &[2, 5]);
    let last_of_7 = ListQuery {
        until: Some(DeploymentId::last_of(7)),
        ..Default::default()
    };
    check(&store, last_of_7, &[7, 6, 5, 4, 3, 2, 1]);
}

#[test]
fn limit_defaults_to_fifty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    for ms in 1..=55 {
        let deployment = deployment(ms, "many", "prod", "admin", Failed);
        store
            .create_deployment(&deployment, true, false)
            .expect("create");
    }
    let all = listed(&store, ListQuery::default());
    assert_eq!(all.len(), 50);
    assert_eq!(all.first(), Some(&55));
    let rest = ListQuery {
        offset: 50,
        ..Default::default()
    };
    check(&store, rest, &[5, 4, 3, 2, 1]);
}

#[test]
fn filtered_queries_read_only_their_candidates() {
    let (_dir, store) = store_with_rows();
    // A damaged record that no index names: a query reading every record
    // would trip over it.
    store
        .t()
        .expect("open")
        .deployments
        .insert(id_at(100).to_bytes(), &b"damaged"[..])
        .expect("insert");
    assert!(matches!(
        store.list_deployments(&ListQuery::default()),
        Err(StoreError::Corrupt { .. })
    ));
    check(&store, app("web"), &[5, 3, 1]);
    check(&store, by("carol"), &[7, 4]);
    check(&store, search("api"), &[6, 2]);
    check(&store, sorted(Sort::Status, true), &[6, 7, 5, 2, 4, 3, 1]);
    check(&store, sorted(Sort::App, true), &[2, 6, 5, 1, 3, 7, 4]);
}

#[test]
fn builds_the_user_index_once_for_an_older_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        // A store as written before `idx_user` existed: records, no index.
        let db = sled::Config::new()
            .path(dir.path())
            .mode(sled::Mode::LowSpace)
            .open()
            .expect("open sled");
        let deployments = db.open_tree("deployments").expect("tree");
        for (ms, app, env, user, status) in ROWS {
            let deployment = deployment(ms, app, env, user, status);
            deployments
                .insert(deployment.id.to_bytes(), encode(&deployment))
                .expect("insert");
        }
        db.flush().expect("flush");
    }
    // sled's flusher may hold the file lock a moment after the drop.
    let store = crate::store::reopen(dir.path());
    check(&store, by("alice"), &[6, 3, 1]);
    check(&store, search("carol"), &[7, 4]);
    assert!(
        store
            .t()
            .expect("open")
            .meta
            .contains_key(b"schema:idx_user")
            .expect("meta"),
        "the marker records that the index is complete"
    );
    // New deployments are indexed as they are created.
    store
        .create_deployment(&deployment(8, "web", "prod", "alice", Pending), true, false)
        .expect("create");
    check(&store, by("alice"), &[8, 6, 3, 1]);
    drop(store);

    // With the marker set, opening does not walk the records again.
    let store = crate::store::reopen(dir.path());
    {
        let trees = store.t().expect("open");
        for key in trees.idx_user.iter().keys() {
            trees.idx_user.remove(key.expect("key")).expect("remove");
        }
    }
    store.t().expect("open").db.flush().expect("flush");
    drop(store);
    let store = crate::store::reopen(dir.path());
    check(&store, by("alice"), &[]);
}

#[test]
fn user_keys_separate_user_and_id() {
    let id = id_at(9);
    let key = super::keys::user_key("alice", id);
    assert_eq!(&key[..6], b"alice\0");
    assert_eq!(&key[6..], &id.to_bytes()[..]);
}

#[test]
fn sort_names_round_trip_and_unknown_ones_list_the_choices() {
    for sort in Sort::ALL {
        assert_eq!(sort.as_str().parse::<Sort>(), Ok(sort));
    }
    let err = "size".parse::<Sort>().expect_err("unknown sort");
    assert!(err.contains("created, status, app"), "{err}");
}
