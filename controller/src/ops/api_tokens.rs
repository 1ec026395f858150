//! API tokens: `berth api-tokens create|ls|revoke`. A token acts for the
//! user who made it, at most at its role cap; its secret is shown once and
//! only its SHA-256 is kept. Users manage their own; admins see and revoke
//! everyone's.

use std::time::Duration;

use berth_shared::record::{ApiTokenView, CreatedApiToken, Timestamp};

use super::auth::API_TOKEN_PREFIX;
use super::{Caller, Code, Error, Result, credential};
use crate::server::Context;
use crate::store::{ApiTokenRecord, Role, hash_secret};

/// Longest lifetime a token may have.
const MAX_TTL: Duration = Duration::from_secs(2 * 365 * 24 * 3600);
/// Longest token name.
const MAX_NAME: usize = 64;

/// `berth api-tokens create`.
#[derive(Clone, Debug, Default)]
pub struct NewApiToken {
    pub name: String,
    /// Zero: it does not expire.
    pub expires_in: Duration,
    pub role_cap: Option<Role>,
}

pub fn view(token: &ApiTokenRecord, now: Timestamp) -> ApiTokenView {
    let state = if token.revoked {
        "revoked"
    } else if token.expires_at.is_some_and(|at| at <= now) {
        "expired"
    } else {
        "valid"
    };
    ApiTokenView {
        id: token.id.clone(),
        prefix: format!("{API_TOKEN_PREFIX}{}_", token.id),
        user: token.user.clone(),
        name: token.name.clone(),
        role_cap: token.role_cap.map(|role| role.as_str().to_string()),
        created_at: token.created_at,
        expires_at: token.expires_at,
        last_used_at: token.last_used_at,
        state: state.into(),
    }
}

/// Makes a token for the calling user; its secret is in the answer only.
pub async fn create(
    context: &Context,
    caller: &Caller,
    request: NewApiToken,
) -> Result<CreatedApiToken> {
    caller.require(Role::Viewer)?;
    if caller.via_token.is_some() {
        return Err(Error::new(
            Code::AuthPermissionDenied,
            "an API token cannot make API tokens; use your CLI credential",
        ));
    }
    let name = request.name.trim();
    let valid_name = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid_name {
        return Err(Error::invalid(format!(
            "token name `{}` must be 1 to {MAX_NAME} letters, digits, `-`, `_` or `.`",
            berth_shared::text::clip(name, 80)
        )));
    }
    if request.expires_in > MAX_TTL {
        return Err(Error::invalid("an API token lives at most 2 years (730d)"));
    }
    let (id, secret) = (credential::new_id(), credential::new_secret());
    let now = Timestamp::now();
    let record = ApiTokenRecord {
        id: id.clone(),
        user: caller.principal.name.clone(),
        name: name.to_string(),
        secret_sha256: hash_secret(&secret),
        role_cap: request.role_cap,
        created_at: now,
        expires_at: (!request.expires_in.is_zero()).then(|| {
            Timestamp(now.0 + i64::try_from(request.expires_in.as_millis()).unwrap_or(i64::MAX))
        }),
        last_used_at: None,
        revoked: false,
    };
    context.store.put_api_token(&record)?;
    context.store.audit(
        &caller.who(),
        "api-token.create",
        &format!("{id} {name}"),
        "ok",
    )?;
    context.store.flush().await?;
    Ok(CreatedApiToken {
        token: format!("{API_TOKEN_PREFIX}{id}_{secret}"),
        view: view(&record, now),
    })
}

/// The caller's tokens; an admin sees everyone's.
pub fn list(context: &Context, caller: &Caller) -> Result<Vec<ApiTokenView>> {
    caller.require(Role::Viewer)?;
    let admin = caller.principal.role == Role::Admin;
    let now = Timestamp::now();
    Ok(context
        .store
        .list_api_tokens()?
        .iter()
        .filter(|token| admin || token.user == caller.principal.name)
        .map(|token| view(token, now))
        .collect())
}

/// Revokes a token: it is refused from the next call on.
pub async fn revoke(context: &Context, caller: &Caller, id: &str) -> Result<ApiTokenView> {
    caller.require(Role::Viewer)?;
    let not_found = || {
        Error::new(
            Code::ApiTokenNotFound,
            format!(
                "API token `{}` does not exist; `berth api-tokens ls` lists yours",
                berth_shared::text::clip(id, 40)
            ),
        )
    };
    let mut token = context.store.get_api_token(id)?.ok_or_else(not_found)?;
    // Someone else's token is not found, not forbidden: its id says nothing.
    if token.user != caller.principal.name && caller.principal.role != Role::Admin {
        return Err(not_found());
    }
    token.revoked = true;
    context.store.put_api_token(&token)?;
    context.store.audit(
        &caller.who(),
        "api-token.revoke",
        &format!("{id} {}", token.name),
        "ok",
    )?;
    context.store.flush().await?;
    Ok(view(&token, Timestamp::now()))
}
