//! One-time setup links: `berth users setup-link NAME` gives an admin a
//! link to send to a person, who opens it and chooses a web password, and
//! is signed in. The link works once, for a limited time; a newer link for
//! the same user replaces it. Only the SHA-256 of its secret is stored.

use std::net::IpAddr;
use std::time::Duration;

use berth_shared::record::Timestamp;
use tracing::warn;

use super::sessions::{Started, start};
use super::users::{check_password, hash_off_thread};
use super::{Caller, Code, Error, Result, credential};
use crate::server::Context;
use crate::store::{Role, SetupLinkRecord, hash_secret};

/// The prefix of a setup link's token.
pub const SETUP_PREFIX: &str = "bsl_";
/// How long a link works unless the admin says otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);
/// The longest a link may work.
pub const MAX_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// A link made for a user.
#[derive(Clone, Debug)]
pub struct SetupLink {
    pub user: String,
    pub url: String,
    pub expires_at: Timestamp,
}

/// Makes a setup link for `name` (admin only).
pub async fn create(
    context: &Context,
    caller: &Caller,
    name: &str,
    ttl: Option<Duration>,
) -> Result<SetupLink> {
    caller.require(Role::Admin)?;
    let ttl = ttl.unwrap_or(DEFAULT_TTL);
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(Error::invalid(
            "a setup link works for at most 7 days (--expires 7d); the default is 24h",
        ));
    }
    let user = context.store.get_user(name)?.ok_or_else(|| {
        Error::new(
            Code::UserNotFound,
            format!(
                "user `{}` does not exist; `berth users ls` lists them",
                berth_shared::text::clip(name, 64)
            ),
        )
    })?;
    let Some(base) = context.web.public_url.as_deref() else {
        return Err(Error::new(
            Code::HttpOff,
            "a setup link opens a page of the controller's HTTP listener, which is off; start it with `berth-controller serve --http-listen ADDR` (and `--public-url URL` when people reach it by another name)",
        ));
    };
    let (id, secret) = (credential::new_id(), credential::new_secret());
    let now = Timestamp::now();
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let record = SetupLinkRecord {
        id: id.clone(),
        user: user.name.clone(),
        secret_sha256: hash_secret(&secret),
        created_by: caller.who(),
        created_at: now,
        expires_at: Timestamp(now.0.saturating_add(ttl_ms)),
    };
    context.store.put_setup_link(&record)?;
    context
        .store
        .audit(&caller.who(), "user.setup-link", &user.name, "ok")?;
    context.store.flush().await?;
    Ok(SetupLink {
        user: user.name,
        url: format!(
            "{}/setup?token={SETUP_PREFIX}{id}_{secret}",
            base.trim_end_matches('/')
        ),
        expires_at: record.expires_at,
    })
}

fn invalid_link() -> Error {
    Error::new(
        Code::AuthSetupLinkInvalid,
        "this setup link is unknown, used already or expired; ask an admin for a new one (`berth users setup-link NAME`)",
    )
}

/// The user a link is for, if it is still good (to show on its page).
pub fn peek(context: &Context, token: &str, address: IpAddr) -> Result<String> {
    Ok(find(context, token, address)?.user)
}

fn find(context: &Context, token: &str, address: IpAddr) -> Result<SetupLinkRecord> {
    context.web.admit_address(address)?;
    let found = credential::split(SETUP_PREFIX, token).and_then(|(id, secret)| {
        let link = context.store.get_setup_link(id).ok().flatten()?;
        credential::matches(secret, &link.secret_sha256).then_some(link)
    });
    match found {
        Some(link) if link.expires_at > Timestamp::now() => Ok(link),
        _ => {
            context.web.failed(None, address);
            warn!(%address, "a setup link was refused");
            Err(invalid_link())
        }
    }
}

/// Sets the password a link was made for, uses the link up, ends the
/// user's other sessions and signs the browser in.
pub async fn redeem(
    context: &Context,
    token: &str,
    password: &str,
    address: IpAddr,
) -> Result<Started> {
    let link = find(context, token, address)?;
    check_password(password)?;
    // Of two uses at once, only the one that takes the link goes on.
    context
        .store
        .take_setup_link(&link.id)?
        .ok_or_else(invalid_link)?;
    let hash = hash_off_thread(password).await?;
    let now = Timestamp::now();
    let user = context.store.update_user(&link.user, |user| {
        user.password_hash = Some(hash.clone());
        user.password_set_at = Some(now);
    })?;
    if user.disabled {
        return Err(Error::new(
            Code::AuthDisabled,
            format!(
                "user `{}` is disabled; the password is set, and works once an admin enables the user",
                user.name
            ),
        ));
    }
    context.store.remove_sessions_of(&user.name)?;
    let started = start(context, &user.name, user.role, address)?;
    let who = format!("{} via setup link", user.name);
    context
        .store
        .audit(&who, "user.set-password", &user.name, "ok")?;
    context.store.flush().await?;
    Ok(started)
}
