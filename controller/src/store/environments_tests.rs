//! The `environments` tree against a real sled: records by app and name,
//! one default per app whatever adds, changes or removes one, refusals
//! that change nothing, and records written before a field existed.

use std::collections::BTreeMap;

use berth_shared::record::{EnvironmentKind, Timestamp};

use super::{EnvironmentRecord, Store, StoreError, Thing};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    (dir, store)
}

fn record(app: &str, name: &str, is_default: bool) -> EnvironmentRecord {
    EnvironmentRecord {
        app: app.into(),
        name: name.into(),
        kind: EnvironmentKind::Staging,
        is_default,
        protected: false,
        approvals: 1,
        window: None,
        vars: BTreeMap::new(),
        created_at: Timestamp(1),
        created_by: "ana".into(),
        updated_at: Timestamp(1),
        updated_by: "ana".into(),
    }
}

/// The app's environments that say they are its default, and the one the
/// store names.
#[track_caller]
fn defaults(store: &Store, app: &str) -> (Vec<String>, Option<String>) {
    let flagged = store
        .list_environments(Some(app))
        .expect("list")
        .into_iter()
        .filter(|env| env.is_default)
        .map(|env| env.name)
        .collect();
    (flagged, store.default_environment(app).expect("default"))
}

#[track_caller]
fn check_default(store: &Store, app: &str, expected: Option<&str>) {
    let (flagged, named) = defaults(store, app);
    let expected_flagged: Vec<String> = expected.iter().map(|name| name.to_string()).collect();
    assert_eq!(flagged, expected_flagged, "{app}");
    assert_eq!(named.as_deref(), expected, "{app}");
}

#[test]
fn environments_list_by_app_then_name_and_apps_do_not_mix() {
    let (_dir, store) = store();
    for (app, name) in [("web", "staging"), ("web", "prod"), ("web-admin", "prod")] {
        store
            .add_environment(&record(app, name, false))
            .expect("add");
    }
    store
        .add_environment(&record("api", "prod", false))
        .expect("add");
    let names = |app: Option<&str>| -> Vec<String> {
        let records = store.list_environments(app).expect("list");
        records
            .into_iter()
            .map(|env| format!("{}/{}", env.app, env.name))
            .collect()
    };
    assert_eq!(names(Some("web")), ["web/prod", "web/staging"]);
    assert_eq!(names(Some("we")), Vec::<String>::new());
    assert_eq!(
        names(None),
        ["api/prod", "web/prod", "web/staging", "web-admin/prod"]
    );
    let again = store.add_environment(&record("web", "prod", true));
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    check_default(&store, "web", None);
    let got = store.get_environment("web", "prod").expect("get");
    assert_eq!(got, Some(record("web", "prod", false)));
    assert_eq!(store.get_environment("web", "nope").expect("get"), None);
}

#[test]
fn an_app_keeps_at_most_one_default_through_every_change() {
    let (_dir, store) = store();
    store
        .add_environment(&record("web", "prod", true))
        .expect("add");
    store
        .add_environment(&record("api", "prod", true))
        .expect("add");
    check_default(&store, "web", Some("prod"));
    // A new default takes the flag from the earlier one.
    let mut staging = record("web", "staging", true);
    staging.updated_by = "bo".into();
    staging.updated_at = Timestamp(2);
    store.add_environment(&staging).expect("add");
    check_default(&store, "web", Some("staging"));
    let prod = store.get_environment("web", "prod").expect("get");
    let prod = prod.expect("prod stays");
    assert_eq!(
        (prod.updated_by.as_str(), prod.updated_at),
        ("bo", Timestamp(2))
    );
    // Another app's default is its own.
    check_default(&store, "api", Some("prod"));

    // A change makes prod the default again, or takes it away.
    let changed = store.update_environment("web", "prod", |env| {
        env.is_default = true;
        Ok::<_, ()>(())
    });
    assert!(matches!(changed, Ok(Ok(_))), "{changed:?}");
    check_default(&store, "web", Some("prod"));
    let _ = store.update_environment("web", "prod", |env| {
        env.is_default = false;
        Ok::<_, ()>(())
    });
    check_default(&store, "web", None);
    // A change that leaves the flag alone leaves the default alone.
    let _ = store.update_environment("web", "staging", |env| {
        env.is_default = true;
        Ok::<_, ()>(())
    });
    let _ = store.update_environment("web", "prod", |env| {
        env.vars.insert("A".into(), "1".into());
        Ok::<_, ()>(())
    });
    check_default(&store, "web", Some("staging"));
    // Removing the default leaves the app without one.
    let removed = store.remove_environment("web", "staging", |_| Ok::<_, ()>(()));
    assert!(matches!(removed, Ok(Ok(_))), "{removed:?}");
    check_default(&store, "web", None);
    check_default(&store, "api", Some("prod"));
}

#[test]
fn a_refused_change_or_removal_changes_nothing() {
    let (_dir, store) = store();
    store
        .add_environment(&record("web", "prod", true))
        .expect("add");
    let refused = store.update_environment("web", "prod", |env| {
        env.is_default = false;
        env.protected = true;
        Err::<(), _>("no")
    });
    assert!(matches!(refused, Ok(Err("no"))), "{refused:?}");
    assert_eq!(
        store.get_environment("web", "prod").expect("get"),
        Some(record("web", "prod", true))
    );
    check_default(&store, "web", Some("prod"));
    let refused = store.remove_environment("web", "prod", |_| Err("no"));
    assert!(matches!(refused, Ok(Err("no"))), "{refused:?}");
    check_default(&store, "web", Some("prod"));
    let missing = store.update_environment("web", "nope", |_| Ok::<_, ()>(()));
    assert!(
        matches!(missing, Err(StoreError::NotFound(Thing::Environment, _))),
        "{missing:?}"
    );
    let missing = store.remove_environment("web", "nope", |_| Ok::<_, ()>(()));
    assert!(
        matches!(missing, Err(StoreError::NotFound(..))),
        "{missing:?}"
    );
}

#[test]
fn ensuring_adds_once_and_then_returns_the_stored_record() {
    let (_dir, store) = store();
    let (made, added) = store
        .ensure_environment(&record("web", "dev", false))
        .expect("ensure");
    assert!(added);
    assert_eq!(made, record("web", "dev", false));
    let mut other = record("web", "dev", false);
    other.kind = EnvironmentKind::Production;
    let (kept, added) = store.ensure_environment(&other).expect("ensure");
    assert!(!added);
    assert_eq!(kept.kind, EnvironmentKind::Staging);
}

#[test]
fn a_record_written_before_the_rules_reads_with_their_defaults() {
    let (_dir, store) = store();
    let old = serde_json::json!({
        "app": "web", "name": "prod", "kind": "production",
        "created_at": "2024-01-01T00:00:00Z", "created_by": "ana",
        "updated_at": "2024-01-01T00:00:00Z", "updated_by": "ana",
    });
    store
        .t()
        .expect("trees")
        .environments
        .insert(b"web\0prod", super::encode(&old))
        .expect("insert");
    let read = store.get_environment("web", "prod").expect("get");
    let read = read.expect("stored");
    assert_eq!(
        (
            read.is_default,
            read.protected,
            read.approvals,
            read.vars.len()
        ),
        (false, false, 1, 0)
    );
    store
        .t()
        .expect("trees")
        .environments
        .insert(b"web\0bad", b"junk".to_vec())
        .expect("insert");
    assert!(matches!(
        store.list_environments(Some("web")),
        Err(StoreError::Corrupt {
            tree: "environments",
            ..
        })
    ));
}
