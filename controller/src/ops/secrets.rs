//! The secret store: `berth secret set|ls|rm` and the HTTP API's
//! `.../secrets` routes. A secret is a name and a value for one app in one
//! environment, or for the whole fleet ([`SecretScope`]); each set makes
//! a new version, sealed under the controller's secrets key
//! (`crypto.rs`), and the last ten are kept (`store/secrets.rs`).
//!
//! Operators and admins change an app's secrets, only admins the fleet's;
//! anyone signed in lists them. A value arrives with a request and leaves
//! only through [`reveal`], for the deployment that uses it: it is in no
//! answer, audit entry, log line or error message.
//!
//! For deployments: [`current`] names the versions a new deployment uses,
//! which it keeps as [`SecretRef`]s; [`reveal`] opens exactly those when the
//! dispatcher sends a task.

use std::collections::BTreeMap;

pub use berth_shared::record::{SecretRef, SecretScope, SecretView};
use tracing::{error, info};
use zeroize::Zeroizing;

use super::{Caller, Code, Error, Result};
use crate::crypto::Place;
use crate::server::Context;
use crate::store::{KEEP_VERSIONS, Role, Store, StoreError};

/// The largest value a secret holds, in bytes.
pub const MAX_VALUE_BYTES: usize = berth_shared::record::MAX_SECRET_BYTES;

/// Stores `value` as the next version of secret `name` in `scope`;
/// returns the secret as it is now (never its value).
pub async fn set(
    context: &Context,
    caller: &Caller,
    scope: &SecretScope,
    name: &str,
    value: Zeroizing<String>,
) -> Result<SecretView> {
    require_to_change(caller, scope)?;
    check(scope, name)?;
    check_value(name, &value)?;
    let key = &context.secret_key;
    let seal = |version| {
        let place = Place::Secret {
            scope,
            name,
            version,
        };
        key.seal(&place, value.as_bytes())
    };
    let secret = context.store.put_secret(scope, name, &caller.who(), seal)?;
    drop(value);
    let outcome = format!("version {}", secret.latest);
    audit(context, caller, "secret.set", scope, name, &outcome).await?;
    info!(%scope, name, version = secret.latest, "secret set");
    Ok(secret.view())
}

/// The secrets of `scope`, or of every scope (`None`), by scope and name;
/// never a value.
pub fn list(
    context: &Context,
    caller: &Caller,
    scope: Option<&SecretScope>,
) -> Result<Vec<SecretView>> {
    caller.require(Role::Viewer)?;
    if let Some(scope) = scope {
        check_scope(scope)?;
    }
    let secrets = context.store.secret_names(scope)?;
    Ok(secrets.iter().map(|secret| secret.view()).collect())
}

/// Removes secret `name` of `scope` with every version it kept; returns
/// it as it was.
pub async fn remove(
    context: &Context,
    caller: &Caller,
    scope: &SecretScope,
    name: &str,
) -> Result<SecretView> {
    require_to_change(caller, scope)?;
    check(scope, name)?;
    let Some(removed) = context.store.remove_secret(scope, name)? else {
        return Err(not_found(scope, name));
    };
    let outcome = format!("removed with its versions up to {}", removed.latest);
    audit(context, caller, "secret.remove", scope, name, &outcome).await?;
    info!(%scope, name, version = removed.latest, "secret removed");
    Ok(removed.view())
}

/// The secrets a new deployment of `app` in `environment` uses: every
/// secret of that app and environment, and the fleet-wide ones named in
/// `fleet_names`, each at its newest version, by name. A name both scopes
/// hold is the app's and environment's; a fleet name that only the fleet
/// could give and it does not hold is `secret/not-found`.
pub fn current(
    context: &Context,
    app: &str,
    environment: &str,
    fleet_names: &[String],
) -> Result<Vec<SecretRef>> {
    let scope = SecretScope::app(app, environment).map_err(invalid)?;
    let mut refs = BTreeMap::new();
    for secret in context.store.secret_names(Some(&scope))? {
        let reference = SecretRef {
            name: secret.name.clone(),
            scope: secret.scope,
            version: secret.latest,
        };
        refs.insert(secret.name, reference);
    }
    for name in fleet_names {
        if refs.contains_key(name) {
            continue;
        }
        let fleet = SecretScope::Fleet;
        let Some(secret) = context.store.secret_name(&fleet, name)? else {
            return Err(Error::new(
                Code::SecretNotFound,
                format!(
                    "the fleet-wide secret `{}` does not exist, and {scope} has no secret of that name; set it with `berth secret set --fleet {0}` (or `berth secret set {scope} {0}`), or stop asking for it",
                    berth_shared::text::clip(name, 80)
                ),
            ));
        };
        let reference = SecretRef {
            name: secret.name.clone(),
            scope: fleet,
            version: secret.latest,
        };
        refs.insert(secret.name, reference);
    }
    Ok(refs.into_values().collect())
}

/// The values of exactly the versions `refs` name, in their order, as
/// `(name, value)`: what the dispatcher sends with an assignment. A
/// version no longer kept is `secret/version-gone`.
pub fn reveal(store: &Store, refs: &[SecretRef]) -> Result<Vec<(String, Zeroizing<String>)>> {
    let mut values = Vec::with_capacity(refs.len());
    for reference in refs {
        let SecretRef {
            name,
            scope,
            version,
        } = reference;
        let opened = store
            .open_secret(scope, name, *version)
            .map_err(|err| match err {
                StoreError::Unsealed(reason) => {
                    error!(%scope, name, version, error = %reason, "a secret did not open");
                    Error::new(
                        Code::SecretUnreadable,
                        format!(
                            "{reason}; the store or the key file keys/secrets.key is damaged or from another controller: restore both from one backup of the data directory"
                        ),
                    )
                }
                other => other.into(),
            })?;
        let Some(value) = opened else {
            return Err(Error::new(
                Code::SecretVersionGone,
                format!(
                    "version {version} of secret `{name}` ({scope}) is no longer kept: a secret keeps its last {KEEP_VERSIONS} versions, and it was set again since or removed; deploy again to use its current value"
                ),
            ));
        };
        values.push((name.clone(), value));
    }
    Ok(values)
}

/// The secrets `deployment` uses that changed since it was made, as
/// `NAME (v1, now v2)` or `NAME (v1, removed since)`.
pub fn changed_since(
    context: &Context,
    deployment: &berth_shared::record::Deployment,
) -> std::result::Result<Vec<String>, StoreError> {
    let mut changed = Vec::new();
    for used in deployment
        .variables
        .iter()
        .filter_map(berth_shared::record::Variable::secret_ref)
    {
        let now = context.store.secret_name(&used.scope, &used.name)?;
        match now {
            Some(now) if !now.removed && now.latest == used.version => {}
            Some(now) if !now.removed => changed.push(format!(
                "{} (v{}, now v{})",
                used.name, used.version, now.latest
            )),
            _ => changed.push(format!("{} (v{}, removed since)", used.name, used.version)),
        }
    }
    Ok(changed)
}

/// Writes the audit entry of a change (the target `SCOPE NAME`, never the
/// value) and makes the change and the entry durable.
async fn audit(
    context: &Context,
    caller: &Caller,
    action: &str,
    scope: &SecretScope,
    name: &str,
    outcome: &str,
) -> Result<()> {
    let target = format!("{scope} {name}");
    context
        .store
        .audit(&caller.who(), action, &target, outcome)?;
    context.store.flush().await?;
    Ok(())
}

/// Operators and admins change an app's secrets; only admins the fleet's.
fn require_to_change(caller: &Caller, scope: &SecretScope) -> Result<()> {
    match scope {
        SecretScope::App { .. } => caller.require(Role::Operator),
        SecretScope::Fleet => caller.require(Role::Admin),
    }
}

fn check(scope: &SecretScope, name: &str) -> Result<()> {
    check_scope(scope)?;
    berth_shared::variables::check_name(name)
        .map_err(|reason| invalid(format!("secret name {reason}")))
}

fn check_scope(scope: &SecretScope) -> Result<()> {
    match scope {
        SecretScope::App { app, environment } => {
            SecretScope::app(app, environment).map_err(invalid)?;
            Ok(())
        }
        SecretScope::Fleet => Ok(()),
    }
}

/// Refuses an empty value, one over [`MAX_VALUE_BYTES`] or one with a NUL
/// byte, naming the secret and never the value.
fn check_value(name: &str, value: &str) -> Result<()> {
    let reason = if value.is_empty() {
        "is empty; give a value (`berth secret rm` removes a secret)".to_string()
    } else if value.len() < berth_shared::masking::MIN_MASKED {
        format!(
            "is {} bytes; a secret holds at least {} bytes, because a shorter value cannot be masked in logs without hiding ordinary text",
            value.len(),
            berth_shared::masking::MIN_MASKED
        )
    } else if value.len() > MAX_VALUE_BYTES {
        format!(
            "is {} bytes; a secret holds at most {MAX_VALUE_BYTES} bytes (64 KiB)",
            value.len()
        )
    } else if value.contains('\0') {
        "holds a NUL byte, which no environment variable can hold".to_string()
    } else {
        return Ok(());
    };
    Err(invalid(format!("the value of secret `{name}` {reason}")))
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(Code::SecretInvalid, message)
}

fn not_found(scope: &SecretScope, name: &str) -> Error {
    let listing = match scope {
        SecretScope::App { .. } => format!("berth secret ls {scope}"),
        SecretScope::Fleet => "berth secret ls --fleet".to_string(),
    };
    Error::new(
        Code::SecretNotFound,
        format!("there is no secret `{name}` in {scope}; `{listing}` lists them"),
    )
}
