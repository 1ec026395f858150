//! Web sessions and setup links on a real store: sessions act for their
//! user with the role read on every request and need their CSRF token for
//! changes; sign-out, a new password, removal and expiry end them; failed
//! sign-ins are limited per user and per address; setup links work once.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::ops::{setup_links, users};
use crate::server::Context;
use crate::testing::context;

fn admin() -> crate::ops::Caller {
    crate::testing::user("ada", Role::Admin)
}

const PASSWORD: &str = "correct horse battery";

fn here() -> IpAddr {
    "127.0.0.1".parse().expect("address")
}

/// A context with users ada (admin) and olga (operator, with a password).
async fn people(dir: &std::path::Path, change: impl FnOnce(&mut Context)) -> Arc<Context> {
    let mut owned = Arc::into_inner(context(dir).await).expect("one owner");
    change(&mut owned);
    let context = Arc::new(owned);
    for (name, role) in [("ada", Role::Admin), ("olga", Role::Operator)] {
        let user = users::NewUser {
            name: name.into(),
            role,
            email: None,
        };
        users::add(&context, &admin(), user).await.expect("user");
    }
    users::set_password(&context, &admin(), "olga", PASSWORD)
        .await
        .expect("password");
    context
}

fn login_as(name: &str, password: &str, address: IpAddr) -> Login {
    Login {
        name: name.into(),
        password: password.into(),
        address,
    }
}

#[tokio::test]
async fn a_session_acts_for_its_user_and_changes_need_its_csrf_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = people(dir.path(), |_| {}).await;
    let started = login(&context, login_as("olga", PASSWORD, here()))
        .await
        .expect("signed in");
    assert!(started.cookie.starts_with(SESSION_PREFIX));
    let (caller, session) = by_session(&context.store, &started.cookie).expect("session");
    assert_eq!(caller.principal.name, "olga");
    assert_eq!(caller.principal.role, Role::Operator);
    assert_eq!(caller.who(), "olga");
    assert_eq!(session, started.session);
    check_csrf(&session, Some(&session.csrf_token)).expect("its own token");
    for wrong in [None, Some(""), Some("abc"), Some(started.cookie.as_str())] {
        let refused = check_csrf(&session, wrong).expect_err("refused");
        assert_eq!(refused.code, Code::AuthCsrfFailed);
    }
    // The store keeps only a hash: the cookie's secret is nowhere in it.
    let (_, secret) = credential::split(SESSION_PREFIX, &started.cookie).expect("split");
    let stored = context.store.list_sessions().expect("sessions");
    assert_eq!(stored.len(), 1);
    assert!(!format!("{stored:?}").contains(secret));
    // A cookie with the right id and a wrong secret is refused.
    let forged = format!("{SESSION_PREFIX}{}_{}", stored[0].id, "x".repeat(43));
    let refused = by_session(&context.store, &forged).expect_err("forged");
    assert_eq!(refused.code, Code::AuthSessionEnded);

    // A role change applies to the session's next request.
    users::set_role(&context, &admin(), "olga", Role::Viewer)
        .await
        .expect("role");
    let (caller, _) = by_session(&context.store, &started.cookie).expect("session");
    assert_eq!(caller.principal.role, Role::Viewer);
    // Disabled: refused; removed: refused.
    users::set_disabled(&context, &admin(), "olga", true)
        .await
        .expect("disable");
    let refused = by_session(&context.store, &started.cookie).expect_err("disabled");
    assert_eq!(refused.code, Code::AuthDisabled);
    users::remove(&context, &admin(), "olga").await.expect("rm");
    let refused = by_session(&context.store, &started.cookie).expect_err("removed");
    assert_eq!(
        refused.code,
        Code::AuthSessionEnded,
        "its sessions went with it"
    );
}

#[tokio::test]
async fn sign_out_a_new_password_and_expiry_end_sessions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = people(dir.path(), |_| {}).await;
    let one = login(&context, login_as("olga", PASSWORD, here()))
        .await
        .expect("signed in");
    let two = login(&context, login_as("olga", PASSWORD, here()))
        .await
        .expect("signed in again");
    let (caller, _) = by_session(&context.store, &one.cookie).expect("session");
    logout(&context, &caller).await.expect("signed out");
    logout(&context, &caller).await.expect("twice is fine");
    let refused = by_session(&context.store, &one.cookie).expect_err("signed out");
    assert_eq!(refused.code, Code::AuthSessionEnded);
    by_session(&context.store, &two.cookie).expect("the other browser stays in");
    users::set_password(&context, &admin(), "olga", "another long password")
        .await
        .expect("password");
    let refused = by_session(&context.store, &two.cookie).expect_err("new password");
    assert_eq!(refused.code, Code::AuthSessionEnded);
    let refused = login(&context, login_as("olga", PASSWORD, here()))
        .await
        .expect_err("the old password");
    assert_eq!(refused.code, Code::AuthLoginFailed);

    let dir = tempfile::tempdir().expect("tempdir");
    let short = people(dir.path(), |context| {
        context.web = Web::new(Duration::ZERO, None);
    })
    .await;
    let started = login(&short, login_as("olga", PASSWORD, here()))
        .await
        .expect("signed in");
    let refused = by_session(&short.store, &started.cookie).expect_err("expired");
    assert_eq!(refused.code, Code::AuthSessionEnded);
    assert!(
        refused.message.contains("sign in again"),
        "{}",
        refused.message
    );
    login(&short, login_as("olga", PASSWORD, here()))
        .await
        .expect("signed in");
    assert_eq!(
        short.store.list_sessions().expect("sessions").len(),
        1,
        "expired sessions are pruned at the next sign-in"
    );
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_user_and_per_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = people(dir.path(), |_| {}).await;
    for _ in 0..FAILURES_PER_USER {
        let refused = login(&context, login_as("olga", "wrong password!", here()))
            .await
            .expect_err("wrong");
        assert_eq!(refused.code, Code::AuthLoginFailed);
    }
    // Even the right password waits now: guessing cannot go on.
    let other: IpAddr = "127.0.0.9".parse().expect("address");
    let refused = login(&context, login_as("olga", PASSWORD, other))
        .await
        .expect_err("locked");
    assert_eq!(refused.code, Code::AuthLoginRateLimited);
    let wait = refused.retry_after.expect("a wait");
    assert!(
        wait <= FAILURE_WINDOW && wait >= Duration::from_secs(1),
        "{wait:?}"
    );
    // An unknown user and a user without a password fail alike.
    for name in ["nobody", "ada"] {
        let refused = login(&context, login_as(name, PASSWORD, other))
            .await
            .expect_err("no such password");
        assert_eq!(refused.code, Code::AuthLoginFailed);
        assert_eq!(
            refused.message,
            "wrong user name or password; an admin can set a password (`berth users set-password NAME`) or send a setup link (`berth users setup-link NAME`)"
        );
    }
    // One address guessing many names runs out too.
    let guesser: IpAddr = "127.0.0.7".parse().expect("address");
    for n in 0..FAILURES_PER_ADDRESS {
        login(
            &context,
            login_as(&format!("guess{n}"), "nope nope nope", guesser),
        )
        .await
        .expect_err("wrong");
    }
    let refused = login(&context, login_as("someone", "nope nope nope", guesser))
        .await
        .expect_err("address locked");
    assert_eq!(refused.code, Code::AuthLoginRateLimited);
    // Nonsense is refused before any work.
    let refused = login(&context, login_as("", PASSWORD, here()))
        .await
        .expect_err("no name");
    assert_eq!(refused.code, Code::RequestInvalid);
}

#[tokio::test]
async fn a_user_holds_a_bounded_number_of_sessions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = people(dir.path(), |_| {}).await;
    let first = start(&context, "olga", Role::Operator, here()).expect("session");
    // Sessions are ordered by their start, in milliseconds.
    let started_at = Timestamp::now();
    while Timestamp::now() == started_at {
        std::thread::yield_now();
    }
    for _ in 0..MAX_SESSIONS_PER_USER {
        start(&context, "olga", Role::Operator, here()).expect("session");
    }
    assert_eq!(
        context.store.list_sessions().expect("sessions").len(),
        MAX_SESSIONS_PER_USER
    );
    let refused = by_session(&context.store, &first.cookie).expect_err("the oldest ended");
    assert_eq!(refused.code, Code::AuthSessionEnded);
}

#[tokio::test]
async fn a_setup_link_sets_a_password_once_and_signs_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = people(dir.path(), |_| {}).await;
    let viewer = Caller {
        principal: Principal {
            role: Role::Operator,
            ..admin().principal
        },
        ..admin()
    };
    let refused = setup_links::create(&context, &viewer, "olga", None)
        .await
        .expect_err("admins only");
    assert_eq!(refused.code, Code::AuthPermissionDenied);
    let refused = setup_links::create(&context, &admin(), "nobody", None)
        .await
        .expect_err("no user");
    assert_eq!(refused.code, Code::UserNotFound);
    let link = setup_links::create(&context, &admin(), "ada", None)
        .await
        .expect("link");
    let token = link
        .url
        .strip_prefix("http://127.0.0.1:7080/setup?token=")
        .expect("a link to the setup page");
    assert_eq!(
        setup_links::peek(&context, token, here()).expect("good"),
        "ada"
    );
    let refused = setup_links::redeem(&context, token, "short", here())
        .await
        .expect_err("too short");
    assert_eq!(refused.code, Code::RequestInvalid);
    let started = setup_links::redeem(&context, token, PASSWORD, here())
        .await
        .expect("set");
    by_session(&context.store, &started.cookie).expect("signed in");
    login(&context, login_as("ada", PASSWORD, here()))
        .await
        .expect("the new password works");
    let refused = setup_links::redeem(&context, token, PASSWORD, here())
        .await
        .expect_err("used up");
    assert_eq!(refused.code, Code::AuthSetupLinkInvalid);
    // A newer link replaces an older one; a wrong secret is refused.
    let old = setup_links::create(&context, &admin(), "olga", None)
        .await
        .expect("link");
    let new = setup_links::create(&context, &admin(), "olga", None)
        .await
        .expect("link");
    let token_of = |url: &str| url.split("token=").nth(1).expect("token").to_string();
    let refused = setup_links::peek(&context, &token_of(&old.url), here()).expect_err("replaced");
    assert_eq!(refused.code, Code::AuthSetupLinkInvalid);
    let good = token_of(&new.url);
    let forged = format!("{}{}", &good[..good.len() - 4], "AAAA");
    let refused = setup_links::peek(&context, &forged, here()).expect_err("forged");
    assert_eq!(refused.code, Code::AuthSetupLinkInvalid);
    let refused = setup_links::create(
        &context,
        &admin(),
        "olga",
        Some(Duration::from_secs(8 * 86400)),
    )
    .await
    .expect_err("too long");
    assert_eq!(refused.code, Code::RequestInvalid);

    let dir = tempfile::tempdir().expect("tempdir");
    let off = people(dir.path(), |context| {
        context.web = Web::new(DEFAULT_SESSION_TTL, None);
    })
    .await;
    let refused = setup_links::create(&off, &admin(), "olga", None)
        .await
        .expect_err("no HTTP listener");
    assert_eq!(refused.code, Code::HttpOff);
}
