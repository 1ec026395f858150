//! Environments against a real store: create, list, get, set and remove
//! with their roles, one default per app, the admin's rules for protected
//! environments, refusals with their codes, `ensure` and `default_of`, and
//! audit entries that name variables but never hold their values.

use std::collections::BTreeMap;

use berth_shared::record::{EnvironmentKind, EnvironmentView};

use super::apps_tests::refused;
use super::environments::{self, EnvironmentChange, NewEnvironment};
use super::*;
use crate::server::Context;
use crate::store::Role;
use crate::testing::{context, user};

/// A value no audit entry may hold.
pub(super) const SECRET: &str = "s3cr3t-value-9f8e";

pub(super) fn new(app: &str, name: &str, kind: EnvironmentKind) -> NewEnvironment {
    NewEnvironment {
        app: app.into(),
        name: name.into(),
        kind,
        is_default: false,
        protected: false,
        approvals: None,
        window: None,
        vars: BTreeMap::new(),
    }
}

pub(super) fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// The app's environments that are its default.
pub(super) fn defaults(context: &Context, app: &str) -> Vec<String> {
    let admin = user("root", Role::Admin);
    let listed = environments::list(context, &admin, Some(app)).expect("list");
    listed
        .into_iter()
        .filter(|env| env.is_default)
        .map(|env| env.name)
        .collect()
}

pub(super) async fn store_context() -> (tempfile::TempDir, std::sync::Arc<Context>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = context(dir.path()).await;
    (dir, context)
}

#[tokio::test]
async fn operators_create_and_change_environments_and_viewers_read_them() {
    let (_dir, context) = store_context().await;
    let olga = user("olga", Role::Operator);
    let vic = user("vic", Role::Viewer);
    let mut prod = new("web", "prod", EnvironmentKind::Production);
    prod.vars = vars(&[("DATABASE_URL", SECRET), ("LOG", "info")]);
    prod.is_default = true;
    let made = environments::create(&context, &olga, prod.clone()).await;
    let made = made.expect("create");
    assert_eq!(
        (made.kind.as_str(), made.is_default, made.approvals),
        ("production", true, 1)
    );
    assert_eq!(made.created_by, "olga");
    refused(
        environments::create(&context, &olga, prod).await,
        Code::EnvironmentExists,
    );
    refused(
        environments::create(&context, &vic, new("web", "qa", EnvironmentKind::Preview)).await,
        Code::AuthPermissionDenied,
    );
    let staging = new("web", "staging", EnvironmentKind::Staging);
    environments::create(&context, &olga, staging)
        .await
        .expect("create");
    let api = new("api", "prod", EnvironmentKind::Production);
    environments::create(&context, &olga, api)
        .await
        .expect("create");

    let names = |listed: Vec<EnvironmentView>| -> Vec<String> {
        listed
            .into_iter()
            .map(|env| format!("{}/{}", env.app, env.name))
            .collect()
    };
    let web = environments::list(&context, &vic, Some("web")).expect("list");
    assert_eq!(names(web), ["web/prod", "web/staging"]);
    let all = environments::list(&context, &vic, None).expect("list");
    assert_eq!(names(all), ["api/prod", "web/prod", "web/staging"]);
    let shown = environments::get(&context, &vic, "web", "prod").expect("get");
    assert_eq!(shown.vars["DATABASE_URL"], SECRET);
    refused(
        environments::get(&context, &vic, "web", "nope"),
        Code::EnvironmentNotFound,
    );

    let change = EnvironmentChange {
        kind: Some(EnvironmentKind::Preview),
        set_vars: vars(&[("LOG", "debug"), ("TOKEN", SECRET)]),
        // Not set there: unsetting it is no change.
        unset_vars: vec!["DATABASE_URL".into()],
        ..Default::default()
    };
    let changed = environments::set(&context, &olga, "web", "staging", change).await;
    let changed = changed.expect("set");
    assert_eq!(changed.kind, "preview");
    assert_eq!(changed.vars, vars(&[("LOG", "debug"), ("TOKEN", SECRET)]));
    let unset = EnvironmentChange {
        unset_vars: vec!["LOG".into(), "NEVER_SET".into()],
        ..Default::default()
    };
    let changed = environments::set(&context, &olga, "web", "staging", unset).await;
    assert_eq!(changed.expect("set").vars, vars(&[("TOKEN", SECRET)]));
    refused(
        environments::set(
            &context,
            &vic,
            "web",
            "staging",
            EnvironmentChange::default(),
        )
        .await,
        Code::AuthPermissionDenied,
    );
    let missing = EnvironmentChange {
        is_default: Some(true),
        ..Default::default()
    };
    refused(
        environments::set(&context, &olga, "web", "nope", missing).await,
        Code::EnvironmentNotFound,
    );

    let removed = environments::remove(&context, &olga, "web", "staging").await;
    assert_eq!(removed.expect("remove").name, "staging");
    refused(
        environments::remove(&context, &olga, "web", "staging").await,
        Code::EnvironmentNotFound,
    );

    // The audit log names who changed what, and never a value.
    let entries = context.store.audit_entries(100).expect("audit");
    let text = serde_json::to_string(&entries).expect("json");
    assert!(!text.contains(SECRET), "a value is audited: {text}");
    let of = |action: &str| -> Vec<String> {
        entries
            .iter()
            .filter(|entry| entry.action == action)
            .map(|entry| format!("{} {} {}", entry.who, entry.target, entry.outcome))
            .collect()
    };
    let created = of("environment.create");
    assert!(
        created.contains(&"olga web/prod type production; default; vars DATABASE_URL, LOG".into()),
        "{created:?}"
    );
    let set = of("environment.set");
    assert!(
        set.contains(&"olga web/staging type staging -> preview; set LOG, TOKEN".into()),
        "{set:?}"
    );
    assert!(
        set.contains(&"olga web/staging unset LOG".into()),
        "{set:?}"
    );
    assert_eq!(
        of("environment.remove"),
        ["olga web/staging removed (type preview)"]
    );
}

#[tokio::test]
async fn an_app_has_one_default_at_most() {
    let (_dir, context) = store_context().await;
    let olga = user("olga", Role::Operator);
    for (name, is_default) in [("prod", true), ("staging", true), ("dev", false)] {
        let mut env = new("web", name, EnvironmentKind::Staging);
        env.is_default = is_default;
        environments::create(&context, &olga, env)
            .await
            .expect("create");
    }
    assert_eq!(defaults(&context, "web"), ["staging"]);
    assert_eq!(
        environments::default_of(&context, "web").expect("default"),
        Some("staging".into())
    );
    let to_dev = EnvironmentChange {
        is_default: Some(true),
        ..Default::default()
    };
    environments::set(&context, &olga, "web", "dev", to_dev)
        .await
        .expect("set");
    assert_eq!(defaults(&context, "web"), ["dev"]);
    environments::remove(&context, &olga, "web", "dev")
        .await
        .expect("remove");
    assert_eq!(defaults(&context, "web"), Vec::<String>::new());
    assert_eq!(
        environments::default_of(&context, "web").expect("default"),
        None
    );
    assert_eq!(
        environments::default_of(&context, "api").expect("default"),
        None
    );
}

#[tokio::test]
async fn ensure_makes_a_development_environment_once() {
    let (_dir, context) = store_context().await;
    let made = environments::ensure(&context, "web", "pr-12", "olga")
        .await
        .expect("ensure");
    assert_eq!(
        (made.kind, made.protected, made.is_default, made.vars.len()),
        (EnvironmentKind::Development, false, false, 0)
    );
    assert_eq!(made.created_by, "olga");
    let olga = user("olga", Role::Operator);
    let change = EnvironmentChange {
        kind: Some(EnvironmentKind::Preview),
        ..Default::default()
    };
    environments::set(&context, &olga, "web", "pr-12", change)
        .await
        .expect("set");
    let again = environments::ensure(&context, "web", "pr-12", "bo")
        .await
        .expect("ensure");
    assert_eq!(
        (again.kind, again.created_by.as_str()),
        (EnvironmentKind::Preview, "olga")
    );
    let created = context.store.audit_entries(100).expect("audit");
    let created = created
        .iter()
        .filter(|entry| entry.action == "environment.create")
        .count();
    assert_eq!(created, 1, "made once");
    refused(
        environments::ensure(&context, "web", "Bad", "olga").await,
        Code::RequestInvalid,
    );
}
