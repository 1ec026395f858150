//! Who is calling: a credential a transport received (a client
//! certificate's serial, an API token) turned into a [`Caller`], read from
//! the store on every call so that revocations, disabled users and role
//! changes apply to the next call.

use berth_shared::record::Timestamp;
use tracing::warn;

use super::{Caller, Code, Error, Result, credential};
use crate::server::Context;
use crate::store::{Principal, PrincipalKind, Role, Store, StoreError};

/// Who the caller is, and whether the controller's store has a problem
/// (`berth whoami`, `berth health`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WhoAmI {
    pub principal: String,
    pub role: Role,
    /// The API token the call came with, if any.
    pub via_token: Option<String>,
    /// Why the store cannot be written now, and since when (Unix ms).
    pub store_problem: Option<String>,
    pub store_problem_since_ms: Option<u64>,
}

/// The caller as the controller sees it.
pub fn who_am_i(context: &Context, caller: &Caller) -> Result<WhoAmI> {
    caller.require(Role::Viewer)?;
    let health = context.store.health();
    Ok(WhoAmI {
        principal: caller.principal.name.clone(),
        role: caller.principal.role,
        via_token: caller.via_token.clone(),
        store_problem: health.problem,
        store_problem_since_ms: health.since_ms,
    })
}

/// The prefix of every API token: `bta_<id>_<secret>`.
pub const API_TOKEN_PREFIX: &str = "bta_";

/// How long `last_used_at` may lag behind a token's real last use, so a
/// busy CI token does not write the store on every call.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

fn unauthenticated(message: impl Into<String>) -> Error {
    Error::new(Code::AuthUnauthenticated, message)
}

pub(super) fn store_failed(err: StoreError) -> Error {
    warn!(error = %err, "credential lookup failed");
    Error::new(
        Code::StoreFailed,
        "the controller could not read its store; see its log",
    )
}

/// The caller holding the certificate with `serial`, if it is of `kind`
/// and still honoured. A user's role and state come from the user record.
pub fn by_certificate(store: &Store, serial: &str, kind: PrincipalKind) -> Result<Caller> {
    let principal = store
        .principal(serial)
        .map_err(store_failed)?
        .ok_or_else(|| {
            unauthenticated("this certificate is not known to the controller; get a new credential")
        })?;
    if principal.revoked {
        return Err(Error::new(
            Code::AuthRevoked,
            format!(
                "the certificate of {} was revoked; an agent must join again with a new token, a user needs a new credential (`berth users credential`)",
                principal.name
            ),
        ));
    }
    if principal.kind != kind {
        let wanted = match kind {
            PrincipalKind::Agent => "an agent certificate",
            PrincipalKind::User => "a user credential",
        };
        return Err(Error::new(
            Code::AuthPermissionDenied,
            format!("this call needs {wanted}"),
        ));
    }
    let principal = match principal.kind {
        PrincipalKind::Agent => principal,
        PrincipalKind::User => as_user(store, principal)?,
    };
    Ok(Caller {
        principal,
        serial: serial.to_string(),
        via_token: None,
    })
}

/// A user principal with the role its user record holds now; refused when
/// the user was disabled or removed.
pub(super) fn as_user(store: &Store, mut principal: Principal) -> Result<Principal> {
    let user = store.get_user(&principal.name).map_err(store_failed)?;
    match user {
        // Every user principal has a record (`adopt_user_principals` runs
        // before the controller serves), so none means it was removed.
        None => Err(unauthenticated(format!(
            "user `{}` no longer exists; ask an admin for a new credential",
            principal.name
        ))),
        Some(user) if user.disabled => Err(Error::new(
            Code::AuthDisabled,
            format!(
                "user `{}` is disabled; an admin can enable it again (`berth users enable {}`)",
                user.name, user.name
            ),
        )),
        Some(user) => {
            principal.role = user.role;
            Ok(principal)
        }
    }
}

/// The caller an API token acts for: its user, at most at the token's
/// role cap. Every refusal says the same to the client (which part of a
/// guessed token was wrong is not its business) and the reason to the log.
pub fn by_api_token(store: &Store, text: &str) -> Result<Caller> {
    let refused = || {
        unauthenticated(
            "the API token is unknown, revoked or expired; create one with `berth api-tokens create`",
        )
    };
    let (id, secret) = credential::split(API_TOKEN_PREFIX, text).ok_or_else(refused)?;
    let token = store
        .get_api_token(id)
        .map_err(store_failed)?
        .ok_or_else(|| {
            warn!(token_id = %berth_shared::text::clip(id, 40), "unknown API token");
            refused()
        })?;
    let matches = credential::matches(secret, &token.secret_sha256);
    let now = Timestamp::now();
    let expired = token.expires_at.is_some_and(|at| at <= now);
    if !matches || token.revoked || expired {
        warn!(token_id = %id, revoked = token.revoked, expired, "API token refused");
        return Err(refused());
    }
    let principal = Principal {
        kind: PrincipalKind::User,
        id: token.user.clone(),
        name: token.user.clone(),
        role: Role::Viewer,
        revoked: false,
    };
    let mut principal = as_user(store, principal)?;
    if let Some(cap) = token.role_cap {
        principal.role = principal.role.min(cap);
    }
    let stale = token
        .last_used_at
        .is_none_or(|at| now.0 - at.0 >= LAST_USED_RESOLUTION_MS);
    if stale {
        let mut used = token.clone();
        used.last_used_at = Some(now);
        // Best effort: a failure to note the use does not refuse the call.
        if let Err(err) = store.put_api_token(&used) {
            warn!(error = %err, token_id = %id, "could not note the token's use");
        }
    }
    Ok(Caller {
        principal,
        serial: format!("token:{}", token.id),
        via_token: Some(token.name),
    })
}
