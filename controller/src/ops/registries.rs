//! Container registry credentials: `berth registry login|ls|logout`
//! (admin only to change; the password is never shown again, and is
//! stored sealed under the secrets key like a secret).

pub use berth_shared::record::LoggedOut;
use berth_shared::record::Timestamp;

use super::{Caller, Code, Error, Result};
use crate::crypto::Place;
use crate::server::Context;
use crate::store::{RegistryRecord, RegistryView, Role};

/// `berth registry login`.
#[derive(Clone, Debug, Default)]
pub struct RegistryLogin {
    pub server: String,
    pub username: String,
    pub password: String,
}

/// Stores (or replaces) the credentials of a registry.
pub async fn login(
    context: &Context,
    caller: &Caller,
    request: RegistryLogin,
) -> Result<RegistryView> {
    caller.require(Role::Admin)?;
    let server = request.server.trim().to_string();
    let valid_server = !server.is_empty()
        && server.len() <= 253
        && server
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'));
    if !valid_server {
        return Err(Error::invalid(format!(
            "`{server}` is not a registry host; write it like registry.example.com or registry.example.com:5000"
        )));
    }
    if request.username.is_empty()
        || request.password.is_empty()
        || request.username.len() > 256
        || request.password.len() > 4096
    {
        return Err(Error::invalid(
            "give a username and a password (at most 256 and 4096 characters)",
        ));
    }
    let password = zeroize::Zeroizing::new(request.password);
    let place = Place::Registry { server: &server };
    let record = RegistryRecord {
        server: server.clone(),
        username: request.username,
        sealed_password: Some(context.secret_key.seal(&place, password.as_bytes())),
        clear_password: None,
        created_at: Timestamp::now(),
        created_by: caller.who(),
    };
    context.store.put_registry(&record)?;
    context
        .store
        .audit(&caller.who(), "registry.login", &server, "ok")?;
    context.store.flush().await?;
    Ok(record.view())
}

/// The registries berth holds credentials for, without passwords.
pub fn list(context: &Context, caller: &Caller) -> Result<Vec<RegistryView>> {
    caller.require(Role::Viewer)?;
    Ok(context
        .store
        .list_registries()?
        .iter()
        .map(|record| record.view())
        .collect())
}

/// Forgets a registry's credentials.
pub async fn logout(context: &Context, caller: &Caller, server: &str) -> Result<LoggedOut> {
    caller.require(Role::Admin)?;
    if !context.store.remove_registry(server)? {
        return Err(Error::new(
            Code::RegistryNotFound,
            format!(
                "no credentials are held for registry `{server}`; `berth registry ls` lists them"
            ),
        ));
    }
    context
        .store
        .audit(&caller.who(), "registry.logout", server, "ok")?;
    context.store.flush().await?;
    Ok(LoggedOut {
        server: server.to_string(),
        removed: true,
    })
}
