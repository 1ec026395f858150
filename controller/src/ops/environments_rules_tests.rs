//! Tests of an environment's rules through the operations: who may
//! loosen a protected environment, and the refusals of bad names,
//! variables and approvals, each naming what is wrong.

use berth_shared::record::EnvironmentKind;

use super::apps_tests::refused;
use super::environments::{self, EnvironmentChange, NewEnvironment};
use super::environments_tests::{SECRET, new, store_context, vars};
use super::*;
use crate::store::Role;
use crate::testing::user;

#[tokio::test]
async fn only_an_admin_loosens_a_protected_environment() {
    let (_dir, context) = store_context().await;
    let olga = user("olga", Role::Operator);
    let ada = user("ada", Role::Admin);
    let mut prod = new("web", "prod", EnvironmentKind::Production);
    prod.protected = true;
    prod.approvals = Some(2);
    environments::create(&context, &olga, prod)
        .await
        .expect("create");
    let change = |protected: Option<bool>, approvals: Option<u64>| EnvironmentChange {
        protected,
        approvals,
        ..Default::default()
    };
    let unprotect = environments::set(&context, &olga, "web", "prod", change(Some(false), None));
    let err = refused(unprotect.await, Code::AuthPermissionDenied);
    assert!(
        err.message
            .contains("unprotecting the protected environment web/prod needs an admin"),
        "{}",
        err.message
    );
    let fewer = environments::set(&context, &olga, "web", "prod", change(None, Some(1)));
    refused(fewer.await, Code::AuthPermissionDenied);
    // The same number is no change, so an operator may send it.
    let same = environments::set(&context, &olga, "web", "prod", change(None, Some(2)));
    same.await.expect("unchanged approvals");
    let removal = environments::remove(&context, &olga, "web", "prod").await;
    let err = refused(removal, Code::AuthPermissionDenied);
    assert!(err.message.contains("ask an admin"), "{}", err.message);
    // Refused, nothing changed.
    let shown = environments::get(&context, &olga, "web", "prod").expect("get");
    assert_eq!((shown.protected, shown.approvals), (true, 2));
    // An operator may change what is not a rule, and tighten the rules
    // of an environment that is not protected.
    let retype = EnvironmentChange {
        set_vars: vars(&[("A", "1")]),
        ..Default::default()
    };
    environments::set(&context, &olga, "web", "prod", retype)
        .await
        .expect("vars of a protected environment");
    environments::create(
        &context,
        &olga,
        new("web", "dev", EnvironmentKind::Development),
    )
    .await
    .expect("create");
    environments::set(&context, &olga, "web", "dev", change(Some(true), Some(2)))
        .await
        .expect("protect");
    // An admin loosens and removes.
    let loosened = environments::set(&context, &ada, "web", "prod", change(Some(false), Some(1)));
    let loosened = loosened.await.expect("admin");
    assert_eq!((loosened.protected, loosened.approvals), (false, 1));
    environments::remove(&context, &ada, "web", "dev")
        .await
        .expect("admin removes");
}

#[tokio::test]
async fn bad_names_variables_and_approvals_are_refused_by_name() {
    let (_dir, context) = store_context().await;
    let olga = user("olga", Role::Operator);
    let check = |request: NewEnvironment, says: &'static str| {
        let context = context.clone();
        let olga = olga.clone();
        async move {
            let err = refused(
                environments::create(&context, &olga, request).await,
                Code::RequestInvalid,
            );
            assert!(err.message.contains(says), "{says}: {}", err.message);
            assert!(!err.message.contains(SECRET), "{}", err.message);
        }
    };
    let kind = EnvironmentKind::Staging;
    check(new("Web", "prod", kind), "app name `Web`").await;
    check(new("web", "prod/x", kind), "environment name `prod/x`").await;
    check(new("web", &"x".repeat(300), kind), "environment name").await;
    for approvals in [0, 3, 300] {
        let mut request = new("web", "prod", kind);
        request.approvals = Some(approvals);
        check(request, "give 1 or 2").await;
    }
    let with = |pairs: &[(&str, &str)]| {
        let mut request = new("web", "prod", kind);
        request.vars = vars(pairs);
        request
    };
    check(with(&[("1A", SECRET)]), "`1A` is not a variable name").await;
    check(with(&[("BERTH_APP", SECRET)]), "BERTH_").await;
    let nul = format!("{SECRET}\0");
    check(with(&[("A", &nul)]), "the value of A contains a NUL").await;
    let huge = "x".repeat(berth_shared::variables::MAX_VALUE + 1);
    check(with(&[("A", &huge)]), "the value of A is").await;
    let many: Vec<(String, String)> = (0..=berth_shared::variables::MAX_COUNT)
        .map(|n| (format!("V{n}"), "1".into()))
        .collect();
    let mut request = new("web", "prod", kind);
    request.vars = many.into_iter().collect();
    check(request, "at most 200").await;
    let big = "x".repeat(30_000);
    check(
        with(&[("A", &big), ("B", &big), ("C", &big)]),
        "at most 65536",
    )
    .await;

    environments::create(&context, &olga, new("web", "prod", kind))
        .await
        .expect("create");
    let change = |change: EnvironmentChange, says: &str| {
        let context = context.clone();
        let olga = olga.clone();
        let says = says.to_string();
        async move {
            let result = environments::set(&context, &olga, "web", "prod", change).await;
            let err = refused(result, Code::RequestInvalid);
            assert!(err.message.contains(&says), "{says}: {}", err.message);
        }
    };
    change(EnvironmentChange::default(), "names nothing to change").await;
    let both = EnvironmentChange {
        set_vars: vars(&[("A", "1")]),
        unset_vars: vec!["A".into()],
        ..Default::default()
    };
    change(both, "A is both set and unset").await;
    let bad_unset = EnvironmentChange {
        unset_vars: vec!["no-such".into()],
        ..Default::default()
    };
    change(bad_unset, "`no-such` is not a variable name").await;
    let approvals = EnvironmentChange {
        approvals: Some(5),
        ..Default::default()
    };
    change(approvals, "approvals 5").await;
    assert!(parse_kind_refuses("prod"));
}

fn parse_kind_refuses(text: &str) -> bool {
    environments::parse_kind(text).is_err_and(|err| err.code == Code::RequestInvalid)
}
