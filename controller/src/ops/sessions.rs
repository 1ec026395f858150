//! Web sign-in: a user's name and web password (argon2id) become a
//! session, held by the browser as the cookie `bts_<id>_<secret>`. The
//! session acts for its user with the user's current role, read on every
//! request like every other credential, and ends when it expires, when
//! the user signs out, changes password, or is removed.
//!
//! A change sent with a session must also carry the session's CSRF token
//! (derived from the cookie's secret, so nothing more is stored); failed
//! sign-ins are limited per user name and per address.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use berth_shared::record::Timestamp;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::{info, warn};

use super::auth::{as_user, store_failed};
use super::users::{hash_password, password_matches};
use super::{Caller, Code, Error, Result, credential};
use crate::limit::RateLimit;
use crate::server::Context;
use crate::store::{Principal, PrincipalKind, Role, SessionRecord, Store, hash_secret};

/// The prefix of every session cookie's value.
pub const SESSION_PREFIX: &str = "bts_";
/// How long a session lasts unless `serve --session-ttl` says otherwise.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Failed sign-ins one user name may have per [`FAILURE_WINDOW`].
pub const FAILURES_PER_USER: u32 = 5;
/// Failed sign-ins (and setup-link guesses) one address may have per
/// [`FAILURE_WINDOW`].
pub const FAILURES_PER_ADDRESS: u32 = 20;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Sessions one user may hold; the oldest ends when one more starts.
const MAX_SESSIONS_PER_USER: usize = 32;
/// Longest user name a sign-in may send.
const MAX_NAME: usize = 64;

/// The web settings and the sign-in limits, shared by every request.
pub struct Web {
    pub session_ttl: Duration,
    /// The dashboard's address as people reach it (`serve --public-url`,
    /// else the HTTP listener's URL), for setup links; `None` when the
    /// HTTP listener is off.
    pub public_url: Option<String>,
    failed_by_user: RateLimit<String>,
    failed_by_address: RateLimit<IpAddr>,
}

impl Web {
    pub fn new(session_ttl: Duration, public_url: Option<String>) -> Web {
        Web {
            session_ttl,
            public_url,
            failed_by_user: RateLimit::new(FAILURES_PER_USER, FAILURE_WINDOW),
            failed_by_address: RateLimit::new(FAILURES_PER_ADDRESS, FAILURE_WINDOW),
        }
    }

    /// Refuses a sign-in for `name` from `address` once either used up
    /// its failures.
    fn admit(&self, name: Option<&str>, address: IpAddr) -> Result<()> {
        let now = Instant::now();
        let by_user = name.map_or(Ok(()), |name| {
            self.failed_by_user.admit(&name.to_string(), now)
        });
        let wait = match (by_user, self.failed_by_address.admit(&address, now)) {
            (Ok(()), Ok(())) => return Ok(()),
            (Err(one), Err(two)) => one.max(two),
            (Err(wait), _) | (_, Err(wait)) => wait,
        };
        let mut err = Error::new(
            Code::AuthLoginRateLimited,
            format!(
                "too many failed sign-ins for this user or from this address; try again in {}s, or ask an admin for a setup link (`berth users setup-link NAME`)",
                wait.as_secs().max(1)
            ),
        );
        err.retry_after = Some(wait.max(Duration::from_secs(1)));
        Err(err)
    }

    /// Counts a failure against `name` (if any) and `address`.
    pub(super) fn failed(&self, name: Option<&str>, address: IpAddr) {
        let now = Instant::now();
        if let Some(name) = name {
            self.failed_by_user.count(name.to_string(), now);
        }
        self.failed_by_address.count(address, now);
    }

    pub(super) fn admit_address(&self, address: IpAddr) -> Result<()> {
        self.admit(None, address)
    }
}

impl Default for Web {
    fn default() -> Web {
        Web::new(DEFAULT_SESSION_TTL, None)
    }
}

/// A sign-in.
pub struct Login {
    pub name: String,
    pub password: String,
    /// Where it came from.
    pub address: IpAddr,
}

/// A session just started: `cookie` goes to the browser once.
#[derive(Debug)]
pub struct Started {
    pub cookie: String,
    pub session: SessionInfo,
}

/// What a signed-in browser may know of its session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    pub user: String,
    pub role: Role,
    /// Send it back as `X-CSRF-Token` with every change.
    pub csrf_token: String,
    pub expires_at: Timestamp,
}

/// The hash a sign-in for an unknown user (or one without a password) is
/// checked against, so that it takes as long as a real one.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password(&credential::new_secret()).unwrap_or_default())
}

/// Checks a password off the async threads (argon2 takes tens of ms).
async fn verify(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || password_matches(&hash, &password))
        .await
        .unwrap_or(false)
}

/// Signs a user in with their web password.
pub async fn login(context: &Context, request: Login) -> Result<Started> {
    let name = request.name.trim();
    if name.is_empty() || name.len() > MAX_NAME || request.password.len() > 1024 {
        return Err(Error::invalid(format!(
            "a sign-in needs `name` (1 to {MAX_NAME} bytes) and `password` (at most 1024 bytes)"
        )));
    }
    let web = &context.web;
    web.admit(Some(name), request.address)?;
    let user = context.store.get_user(name)?;
    let hash = user
        .as_ref()
        .and_then(|user| user.password_hash.clone())
        .unwrap_or_else(|| decoy_hash().to_string());
    let matched = verify(hash, request.password).await;
    let Some(user) = user.filter(|user| matched && user.password_hash.is_some()) else {
        web.failed(Some(name), request.address);
        warn!(user = %berth_shared::text::clip(name, 64), address = %request.address, "a web sign-in failed");
        return Err(Error::new(
            Code::AuthLoginFailed,
            "wrong user name or password; an admin can set a password (`berth users set-password NAME`) or send a setup link (`berth users setup-link NAME`)",
        ));
    };
    if user.disabled {
        return Err(Error::new(
            Code::AuthDisabled,
            format!(
                "user `{}` is disabled; an admin can enable it again (`berth users enable {}`)",
                user.name, user.name
            ),
        ));
    }
    let started = start(context, &user.name, user.role, request.address)?;
    let who = format!("{} (web)", user.name);
    context
        .store
        .audit(&who, "session.login", &request.address.to_string(), "ok")?;
    context.store.flush().await?;
    info!(user = %user.name, address = %request.address, "signed in on the web");
    Ok(started)
}

/// Starts a session for `user` (signed in, or just set its password).
pub(crate) fn start(context: &Context, user: &str, role: Role, address: IpAddr) -> Result<Started> {
    let store = &context.store;
    let now = Timestamp::now();
    let mut held: Vec<SessionRecord> = store
        .prune_sessions(now)?
        .into_iter()
        .filter(|session| session.user == user)
        .collect();
    held.sort_by_key(|session| session.created_at);
    while held.len() >= MAX_SESSIONS_PER_USER {
        let oldest = held.remove(0);
        store.remove_session(&oldest.id)?;
    }
    let (id, secret) = (credential::new_id(), credential::new_secret());
    let ttl = i64::try_from(context.web.session_ttl.as_millis()).unwrap_or(i64::MAX);
    let record = SessionRecord {
        id: id.clone(),
        user: user.to_string(),
        secret_sha256: hash_secret(&secret),
        created_at: now,
        expires_at: Timestamp(now.0.saturating_add(ttl)),
        address: address.to_string(),
    };
    store.put_session(&record)?;
    Ok(Started {
        cookie: format!("{SESSION_PREFIX}{id}_{secret}"),
        session: SessionInfo {
            user: user.to_string(),
            role,
            csrf_token: csrf_of(&secret),
            expires_at: record.expires_at,
        },
    })
}

/// The CSRF token of the session whose secret is `secret`.
fn csrf_of(secret: &str) -> String {
    let digest = Sha256::digest(format!("berth-csrf:{secret}").as_bytes());
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

fn ended() -> Error {
    Error::new(
        Code::AuthSessionEnded,
        "your session ended (it expired, or you signed out); sign in again",
    )
}

/// The caller a session cookie stands for now, and its session.
pub fn by_session(store: &Store, cookie: &str) -> Result<(Caller, SessionInfo)> {
    let (id, secret) = credential::split(SESSION_PREFIX, cookie).ok_or_else(ended)?;
    let session = store
        .get_session(id)
        .map_err(store_failed)?
        .ok_or_else(ended)?;
    if !credential::matches(secret, &session.secret_sha256) {
        warn!(session_id = %id, "a session cookie with a wrong secret");
        return Err(ended());
    }
    if session.expires_at <= Timestamp::now() {
        return Err(ended());
    }
    let principal = Principal {
        kind: PrincipalKind::User,
        id: session.user.clone(),
        name: session.user.clone(),
        role: Role::Viewer,
        revoked: false,
    };
    let principal = as_user(store, principal)?;
    let info = SessionInfo {
        user: principal.name.clone(),
        role: principal.role,
        csrf_token: csrf_of(secret),
        expires_at: session.expires_at,
    };
    let caller = Caller {
        principal,
        serial: format!("session:{id}"),
        via_token: None,
    };
    Ok((caller, info))
}

/// Refuses a change whose `X-CSRF-Token` is not the session's.
pub fn check_csrf(session: &SessionInfo, presented: Option<&str>) -> Result<()> {
    let good = presented.is_some_and(|token| {
        bool::from(token.trim().as_bytes().ct_eq(session.csrf_token.as_bytes()))
    });
    if good {
        return Ok(());
    }
    Err(Error::new(
        Code::AuthCsrfFailed,
        "a change sent with a session cookie needs the session's CSRF token in the X-CSRF-Token header (GET /api/v1/session gives it)",
    ))
}

/// Signs a session out; signing out twice is not an error.
pub async fn logout(context: &Context, caller: &Caller) -> Result<()> {
    let Some(id) = caller.serial.strip_prefix("session:") else {
        return Err(Error::invalid(
            "only a web session can sign out; an API token is revoked with `berth api-tokens revoke`",
        ));
    };
    if context.store.remove_session(id)? {
        let who = format!("{} (web)", caller.principal.name);
        context.store.audit(&who, "session.logout", id, "ok")?;
        context.store.flush().await?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "sessions_tests.rs"]
mod tests;
