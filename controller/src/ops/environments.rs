//! Environments as records (`berth env create|ls|show|set|rm`,
//! `/api/v1/apps/{app}/environments`): each app's environments with their
//! type (production, staging, preview, development), whether one is the
//! app's default, whether it is protected and by how many approvals, and
//! the variables it sets for the app's next deploy there.
//!
//! Viewers read; operators create, change and remove; loosening a
//! protected environment (unprotecting it, changing its approvals,
//! removing it) is an admin's. Every change is audited with the names of
//! the variables it touched, never their values. A deploy to an
//! environment without a record gets one of type development
//! ([`ensure`]); deployments outlive their environment's record.

use std::collections::BTreeMap;

use berth_shared::record::{EnvironmentKind, EnvironmentView, Timestamp};
use tracing::info;

use super::{Caller, Code, Error, Result};
use crate::server::Context;
use crate::store::{EnvironmentRecord, Role, StoreError};

mod rules;

pub use rules::MAX_VARS_BYTES;

/// `berth env create APP/ENV`.
#[derive(Clone, Debug)]
pub struct NewEnvironment {
    pub app: String,
    pub name: String,
    pub kind: EnvironmentKind,
    pub is_default: bool,
    pub protected: bool,
    /// 1 or 2; `None` is 1.
    pub approvals: Option<u64>,
    /// A deploy window (`ops::windows`); `None`: always open.
    pub window: Option<String>,
    pub vars: BTreeMap<String, String>,
}

/// `berth env set APP/ENV`: what to change; `None` and empty leave a part
/// as it is.
#[derive(Clone, Debug, Default)]
pub struct EnvironmentChange {
    pub kind: Option<EnvironmentKind>,
    pub is_default: Option<bool>,
    pub protected: Option<bool>,
    /// 1 or 2.
    pub approvals: Option<u64>,
    /// A new deploy window; empty removes it.
    pub window: Option<String>,
    /// Variables to add or give a new value.
    pub set_vars: BTreeMap<String, String>,
    /// Variables to remove (one that is not set is no error).
    pub unset_vars: Vec<String>,
}

/// A record as the CLI and the API show it.
pub fn view(record: &EnvironmentRecord) -> EnvironmentView {
    EnvironmentView {
        app: record.app.clone(),
        name: record.name.clone(),
        kind: record.kind.as_str().into(),
        is_default: record.is_default,
        protected: record.protected,
        approvals: record.approvals,
        window: record.window.clone(),
        vars: record.vars.clone(),
        created_at: record.created_at,
        created_by: record.created_by.clone(),
        updated_at: record.updated_at,
        updated_by: record.updated_by.clone(),
    }
}

/// An environment type named in a request.
pub fn parse_kind(text: &str) -> Result<EnvironmentKind> {
    text.parse().map_err(Error::invalid)
}

/// Creates an environment; `environment/exists` when the app has one of
/// that name. A new default takes the flag from the app's earlier one.
pub async fn create(
    context: &Context,
    caller: &Caller,
    request: NewEnvironment,
) -> Result<EnvironmentView> {
    caller.require(Role::Operator)?;
    rules::check_names(&request.app, &request.name)?;
    let target = format!("{}/{}", request.app, request.name);
    let approvals = rules::checked_approvals(request.approvals.unwrap_or(1))?;
    let window = rules::checked_window(&target, request.window.as_deref())?;
    rules::check_vars(&target, &request.vars)?;
    let now = Timestamp::now();
    let record = EnvironmentRecord {
        app: request.app,
        name: request.name,
        kind: request.kind,
        is_default: request.is_default,
        protected: request.protected,
        approvals,
        window,
        vars: request.vars,
        created_at: now,
        created_by: caller.who(),
        updated_at: now,
        updated_by: caller.who(),
    };
    context
        .store
        .add_environment(&record)
        .map_err(|err| match err {
            StoreError::Conflict(message) => Error::new(Code::EnvironmentExists, message),
            other => other.into(),
        })?;
    let outcome = rules::created_outcome(&record);
    audit(
        context,
        &caller.who(),
        "environment.create",
        &target,
        &outcome,
    )
    .await?;
    info!(app = %record.app, environment = %record.name, kind = %record.kind, "environment created");
    Ok(view(&record))
}

/// The environments of `app` (every app's when `None`), by app, then name.
pub fn list(context: &Context, caller: &Caller, app: Option<&str>) -> Result<Vec<EnvironmentView>> {
    caller.require(Role::Viewer)?;
    if let Some(app) = app {
        rules::check_name("app", app)?;
    }
    let records = context.store.list_environments(app)?;
    Ok(records.iter().map(view).collect())
}

/// One environment; `environment/not-found` when it has no record.
pub fn get(context: &Context, caller: &Caller, app: &str, name: &str) -> Result<EnvironmentView> {
    caller.require(Role::Viewer)?;
    rules::check_names(app, name)?;
    match context.store.get_environment(app, name)? {
        Some(record) => Ok(view(&record)),
        None => Err(not_found(app, name)),
    }
}

/// Changes an environment's type, default flag, protection, approvals or
/// variables; what changed is audited, with variable names only.
pub async fn set(
    context: &Context,
    caller: &Caller,
    app: &str,
    name: &str,
    change: EnvironmentChange,
) -> Result<EnvironmentView> {
    caller.require(Role::Operator)?;
    rules::check_names(app, name)?;
    let target = format!("{app}/{name}");
    rules::check_change(&target, &change)?;
    let who = caller.who();
    let now = Timestamp::now();
    let changed = context.store.update_environment(app, name, |record| {
        let outcome = rules::apply(record, &change, caller)?;
        record.updated_at = now;
        record.updated_by.clone_from(&who);
        Ok::<_, Error>(outcome)
    });
    let (record, outcome) = stored(changed, app, name)?;
    audit(context, &who, "environment.set", &target, &outcome).await?;
    info!(app, environment = name, "environment changed");
    Ok(view(&record))
}

/// Removes an environment's record (a protected one only by an admin);
/// its deployments stay.
pub async fn remove(
    context: &Context,
    caller: &Caller,
    app: &str,
    name: &str,
) -> Result<EnvironmentView> {
    caller.require(Role::Operator)?;
    rules::check_names(app, name)?;
    let target = format!("{app}/{name}");
    let removed = context.store.remove_environment(app, name, |record| {
        if record.protected {
            let what = format!("removing the protected environment {target}");
            rules::require_admin(caller, &what)?;
        }
        Ok::<_, Error>(())
    });
    let record = stored(removed, app, name)?;
    let outcome = format!("removed (type {})", record.kind);
    audit(
        context,
        &caller.who(),
        "environment.remove",
        &target,
        &outcome,
    )
    .await?;
    info!(app, environment = name, "environment removed");
    Ok(view(&record))
}

/// `app`'s environment `name`, made with type development (not protected,
/// no variables) when it has no record, so that a deploy to a new
/// environment works as it did before environments were records. `by` is
/// who deploys.
pub async fn ensure(
    context: &Context,
    app: &str,
    name: &str,
    by: &str,
) -> Result<EnvironmentRecord> {
    rules::check_names(app, name)?;
    let now = Timestamp::now();
    let new = EnvironmentRecord {
        app: app.to_string(),
        name: name.to_string(),
        kind: EnvironmentKind::Development,
        is_default: false,
        protected: false,
        approvals: 1,
        window: None,
        vars: BTreeMap::new(),
        created_at: now,
        created_by: by.to_string(),
        updated_at: now,
        updated_by: by.to_string(),
    };
    let (record, added) = context.store.ensure_environment(&new)?;
    if added {
        let target = format!("{app}/{name}");
        let outcome = "type development, made by the first deploy there";
        audit(context, by, "environment.create", &target, outcome).await?;
        info!(app, environment = name, "environment made by a deploy");
    }
    Ok(record)
}

/// The name of `app`'s default environment, if it has one.
pub fn default_of(context: &Context, app: &str) -> Result<Option<String>> {
    Ok(context.store.default_environment(app)?)
}

fn not_found(app: &str, name: &str) -> Error {
    Error::new(
        Code::EnvironmentNotFound,
        format!(
            "environment `{app}/{name}` has no record; `berth env ls {app}` lists the app's environments, `berth env create {app}/{name} --type TYPE` makes one"
        ),
    )
}

/// The outcome of a store change that may be refused, with the store's
/// not-found said as [`not_found`].
fn stored<T>(
    outcome: std::result::Result<Result<T>, StoreError>,
    app: &str,
    name: &str,
) -> Result<T> {
    match outcome {
        Ok(result) => result,
        Err(StoreError::NotFound(..)) => Err(not_found(app, name)),
        Err(other) => Err(other.into()),
    }
}

async fn audit(
    context: &Context,
    who: &str,
    action: &str,
    target: &str,
    outcome: &str,
) -> Result<()> {
    context.store.audit(who, action, target, outcome)?;
    context.store.flush().await?;
    Ok(())
}
