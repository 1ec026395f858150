//! The secret store's operations against a real store: who may change
//! which scope, what is refused with which code, versions and their
//! pruning, what a deployment gets from `current` and `reveal`, and that
//! no value reaches an answer, an error, the audit log or the store's
//! files in clear.

use zeroize::Zeroizing;

use super::secrets::{self, SecretRef, SecretScope};
use super::{Code, Error, Result};
use crate::server::Context;
use crate::store::Role;
use crate::testing::{context, user};

const VALUE: &str = "pg://app:Tr0ub4dor-unique-7731@db/app";

fn web_prod() -> SecretScope {
    SecretScope::app("web", "prod").expect("scope")
}

fn value(text: &str) -> Zeroizing<String> {
    Zeroizing::new(text.to_string())
}

#[track_caller]
fn refused<T: std::fmt::Debug>(result: Result<T>, code: Code) -> Error {
    match result {
        Err(err) => {
            assert_eq!(err.code, code, "{err}");
            assert!(!err.message.contains(VALUE), "{err}");
            err
        }
        Ok(value) => panic!("expected {code:?}, got {value:?}"),
    }
}

async fn set(context: &Context, scope: &SecretScope, name: &str, text: &str) -> u64 {
    let admin = user("root", Role::Admin);
    let view = secrets::set(context, &admin, scope, name, value(text))
        .await
        .expect("set");
    view.version
}

#[tokio::test]
async fn operators_change_an_apps_secrets_and_only_admins_the_fleets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    let viewer = user("vic", Role::Viewer);
    let operator = user("ola", Role::Operator);
    let admin = user("ada", Role::Admin);
    let scope = web_prod();

    let set = |caller, scope: &SecretScope| {
        let scope = scope.clone();
        let context = context.clone();
        async move { secrets::set(&context, &caller, &scope, "DB_URL", value(VALUE)).await }
    };
    refused(
        set(viewer.clone(), &scope).await,
        Code::AuthPermissionDenied,
    );
    let made = set(operator.clone(), &scope)
        .await
        .expect("an operator sets");
    assert_eq!((made.version, made.created_by.as_str()), (1, "ola"));
    refused(
        set(operator.clone(), &SecretScope::Fleet).await,
        Code::AuthPermissionDenied,
    );
    let fleet = set(admin.clone(), &SecretScope::Fleet)
        .await
        .expect("admin");
    assert_eq!(fleet.scope, SecretScope::Fleet);
    let again = set(admin.clone(), &scope).await.expect("set again");
    assert_eq!(
        (
            again.version,
            again.created_by.as_str(),
            again.updated_by.as_str()
        ),
        (2, "ola", "ada")
    );

    let listed = secrets::list(&context, &viewer, None).expect("a viewer lists");
    let shown: Vec<(String, String, u64)> = listed
        .iter()
        .map(|view| (view.scope.to_string(), view.name.clone(), view.version))
        .collect();
    assert_eq!(
        shown,
        [
            ("*".to_string(), "DB_URL".to_string(), 1),
            ("web/prod".to_string(), "DB_URL".to_string(), 2)
        ]
    );
    let json = serde_json::to_string(&listed).expect("json");
    assert!(!json.contains(VALUE), "{json}");
    let only = secrets::list(&context, &viewer, Some(&scope)).expect("one scope");
    assert_eq!(only.len(), 1);

    refused(
        secrets::remove(&context, &viewer, &scope, "DB_URL").await,
        Code::AuthPermissionDenied,
    );
    refused(
        secrets::remove(&context, &operator, &SecretScope::Fleet, "DB_URL").await,
        Code::AuthPermissionDenied,
    );
    let removed = secrets::remove(&context, &operator, &scope, "DB_URL").await;
    assert_eq!(removed.expect("removed").version, 2);
    let err = refused(
        secrets::remove(&context, &operator, &scope, "DB_URL").await,
        Code::SecretNotFound,
    );
    assert!(err.message.contains("berth secret ls web/prod"), "{err}");
}

#[tokio::test]
async fn names_and_values_are_checked_and_refusals_never_hold_the_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    let admin = user("ada", Role::Admin);
    let scope = web_prod();
    let check = |name: &'static str, text: String| {
        let context = context.clone();
        let (admin, scope) = (admin.clone(), scope.clone());
        async move { secrets::set(&context, &admin, &scope, name, Zeroizing::new(text)).await }
    };
    for name in ["", "1X", "A-B", "BERTH_TOKEN"] {
        refused(check(name, VALUE.into()).await, Code::SecretInvalid);
    }
    let empty = refused(check("X", String::new()).await, Code::SecretInvalid);
    assert!(empty.message.contains("is empty"), "{empty}");
    let short = refused(check("X", "abc".into()).await, Code::SecretInvalid);
    assert!(short.message.contains("cannot be masked"), "{short}");
    let big = format!("{VALUE}{}", "x".repeat(secrets::MAX_VALUE_BYTES));
    let err = refused(check("X", big).await, Code::SecretInvalid);
    assert!(err.message.contains("at most 65536 bytes"), "{err}");
    let nul = refused(check("X", format!("{VALUE}\0")).await, Code::SecretInvalid);
    assert!(nul.message.contains("NUL"), "{nul}");
    let exact = "y".repeat(secrets::MAX_VALUE_BYTES);
    assert!(check("X", exact).await.is_ok(), "64 KiB exactly is taken");
    let bad_scope = SecretScope::App {
        app: "Web".into(),
        environment: "prod".into(),
    };
    let err = secrets::set(&context, &admin, &bad_scope, "X", value(VALUE)).await;
    refused(err, Code::SecretInvalid);
}

#[tokio::test]
async fn audit_entries_and_the_stores_files_never_hold_a_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    set(&context, &web_prod(), "DB_URL", VALUE).await;
    set(&context, &SecretScope::Fleet, "TOKEN", VALUE).await;
    let admin = user("ada", Role::Admin);
    secrets::remove(&context, &admin, &SecretScope::Fleet, "TOKEN")
        .await
        .expect("remove");
    let entries = context.store.audit_entries(10).expect("audit");
    // Entries made within one millisecond sort by their ids' random part:
    // compare them as a set.
    let mut shown: Vec<(String, String, String)> = entries
        .iter()
        .map(|entry| {
            let text = format!("{entry:?}");
            assert!(!text.contains(VALUE), "{text}");
            (
                entry.action.clone(),
                entry.target.clone(),
                entry.outcome.clone(),
            )
        })
        .collect();
    shown.sort();
    let said = |action: &str, target: &str, outcome: &str| {
        (action.to_string(), target.to_string(), outcome.to_string())
    };
    assert_eq!(
        shown,
        [
            said(
                "secret.remove",
                "* TOKEN",
                "removed with its versions up to 1"
            ),
            said("secret.set", "* TOKEN", "version 1"),
            said("secret.set", "web/prod DB_URL", "version 1"),
        ]
    );
    context.store.flush().await.expect("flush");
    for entry in walkdir(&dir.path().join("store")) {
        // sled's own flusher may replace a snapshot file meanwhile.
        let Ok(bytes) = std::fs::read(&entry) else {
            continue;
        };
        let found = bytes
            .windows(VALUE.len())
            .any(|window| window == VALUE.as_bytes());
        assert!(!found, "the value is in clear in {}", entry.display());
    }
}

fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walkdir(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn a_deployment_gets_its_apps_secrets_and_the_fleet_names_it_asks_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    let scope = web_prod();
    set(&context, &scope, "DB_URL", "app-db").await;
    set(&context, &scope, "DB_URL", "app-db-2").await;
    set(&context, &scope, "SHARED", "from-the-app").await;
    set(&context, &SecretScope::Fleet, "SHARED", "from-the-fleet").await;
    set(&context, &SecretScope::Fleet, "SENTRY_DSN", "the-dsn").await;
    set(&context, &SecretScope::Fleet, "UNASKED", "not-asked").await;
    let staging = SecretScope::app("web", "staging").expect("scope");
    set(&context, &staging, "DB_URL", "staging-db").await;

    let asked = ["SHARED".to_string(), "SENTRY_DSN".to_string()];
    let refs = secrets::current(&context, "web", "prod", &asked).expect("current");
    let reference = |name: &str, scope: &SecretScope, version| SecretRef {
        name: name.into(),
        scope: scope.clone(),
        version,
    };
    assert_eq!(
        refs,
        [
            reference("DB_URL", &scope, 2),
            reference("SENTRY_DSN", &SecretScope::Fleet, 1),
            reference("SHARED", &scope, 1),
        ],
        "the app's SHARED wins over the fleet's"
    );
    let values = secrets::reveal(&context.store, &refs).expect("reveal");
    let values: Vec<(&str, &str)> = values
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    assert_eq!(
        values,
        [
            ("DB_URL", "app-db-2"),
            ("SENTRY_DSN", "the-dsn"),
            ("SHARED", "from-the-app")
        ]
    );
    // An older version a queued deployment holds still opens.
    let older = secrets::reveal(&context.store, &[reference("DB_URL", &scope, 1)]).expect("v1");
    assert_eq!(older[0].1.as_str(), "app-db");

    let missing = ["NOPE".to_string()];
    let err = refused(
        secrets::current(&context, "web", "prod", &missing),
        Code::SecretNotFound,
    );
    assert!(err.message.contains("`NOPE`"), "{err}");
    assert!(err.message.contains("--fleet NOPE"), "{err}");
    let none = secrets::current(&context, "api", "prod", &[]).expect("no secrets");
    assert!(none.is_empty());
}

#[tokio::test]
async fn a_version_past_the_last_ten_is_gone_and_says_to_deploy_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    let scope = web_prod();
    for n in 1..=11 {
        assert_eq!(set(&context, &scope, "K", &format!("value{n}")).await, n);
    }
    let version = |version| SecretRef {
        name: "K".into(),
        scope: scope.clone(),
        version,
    };
    let err = refused(
        secrets::reveal(&context.store, &[version(1)]),
        Code::SecretVersionGone,
    );
    assert!(err.message.contains("deploy again"), "{err}");
    let kept = secrets::reveal(&context.store, &[version(2), version(11)]).expect("kept");
    assert_eq!(kept[0].1.as_str(), "value2");
    assert_eq!(kept[1].1.as_str(), "value11");
    let admin = user("ada", Role::Admin);
    secrets::remove(&context, &admin, &scope, "K")
        .await
        .expect("remove");
    refused(
        secrets::reveal(&context.store, &[version(11)]),
        Code::SecretVersionGone,
    );
}

#[tokio::test]
async fn a_value_sealed_under_another_key_is_unreadable_not_revealed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    let scope = web_prod();
    let other = crate::crypto::SecretKey::generate();
    crate::store::put_sealed(&context.store, &other, &scope, "K", VALUE);
    let reference = SecretRef {
        name: "K".into(),
        scope: scope.clone(),
        version: 1,
    };
    refused(
        secrets::reveal(&context.store, &[reference]),
        Code::SecretUnreadable,
    );
}
