//! The app catalogue (`berth apps ls|show`, `GET /api/v1/apps`): every app
//! that has deployments, with the newest deployment in each environment,
//! its recent history, and its ratings with the caller's own. Viewers and
//! up read it. Apps and environments come from the store by seeking
//! (`store/apps.rs`), so listing costs a few reads per app and
//! environment however long the history is.

use berth_shared::record::{
    AppDetail, AppSummary, DeploymentBrief, EnvironmentHistory, EnvironmentSummary,
};

use super::ratings::{summary, user_of};
use super::{Caller, Code, Error, Result};
use crate::server::Context;
use crate::store::{ListQuery, Role, Store};

/// Deployments per environment [`get`] returns, newest first.
pub const HISTORY_LIMIT: usize = 20;
/// Longest app name a request may name (longer ones are never stored).
const MAX_APP_CHARS: usize = 256;

/// Every app, by name, with the newest deployment in each environment and
/// its ratings.
pub async fn list(context: &Context, caller: &Caller) -> Result<Vec<AppSummary>> {
    caller.require(Role::Viewer)?;
    let user = user_of(caller)?;
    off_thread(context, move |store| catalogue(store, &user)).await
}

/// One app: its ratings and its newest [`HISTORY_LIMIT`] deployments in
/// each environment; `app/not-found` when it has no deployment at all.
pub async fn get(context: &Context, caller: &Caller, app: &str) -> Result<AppDetail> {
    caller.require(Role::Viewer)?;
    let user = user_of(caller)?;
    let app = app.to_string();
    off_thread(context, move |store| detail(store, &app, &user)).await
}

/// Refuses an app name longer than any app's.
pub(super) fn check_length(app: &str) -> Result<()> {
    if app.chars().count() > MAX_APP_CHARS {
        return Err(Error::invalid(format!(
            "an app name has at most {MAX_APP_CHARS} characters"
        )));
    }
    Ok(())
}

/// `app/not-found` unless `app` has a deployment.
pub(super) fn existing(store: &Store, app: &str) -> Result<()> {
    check_length(app)?;
    if !store.has_app(app)? {
        return Err(not_found(app));
    }
    Ok(())
}

fn not_found(app: &str) -> Error {
    Error::new(
        Code::AppNotFound,
        format!(
            "app `{}` has no deployment; `berth apps ls` lists the apps there are",
            berth_shared::text::clip(app, 80)
        ),
    )
}

/// Runs a read of many keys on the blocking threads.
async fn off_thread<T: Send + 'static>(
    context: &Context,
    read: impl FnOnce(&Store) -> Result<T> + Send + 'static,
) -> Result<T> {
    let store = context.store.clone();
    tokio::task::spawn_blocking(move || read(&store))
        .await
        .map_err(|err| Error::new(Code::Internal, format!("read the app catalogue: {err}")))?
}

fn catalogue(store: &Store, user: &str) -> Result<Vec<AppSummary>> {
    let mut apps: Vec<AppSummary> = Vec::new();
    for (app, environment) in store.app_environments()? {
        let Some(latest) = store.newest_deployment(&app, &environment)? else {
            continue;
        };
        let environment = EnvironmentSummary {
            environment,
            latest: DeploymentBrief::from(&latest),
        };
        match apps.last_mut() {
            Some(last) if last.app == app => last.environments.push(environment),
            _ => apps.push(AppSummary {
                rating: summary(store, &app, user)?,
                app,
                environments: vec![environment],
            }),
        }
    }
    Ok(apps)
}

fn detail(store: &Store, app: &str, user: &str) -> Result<AppDetail> {
    existing(store, app)?;
    let mut environments = Vec::new();
    for environment in store.environments_of(app)? {
        let deployments = store.list_deployments(&ListQuery {
            app: Some(app.to_string()),
            environment: Some(environment.clone()),
            limit: HISTORY_LIMIT,
            ..Default::default()
        })?;
        environments.push(EnvironmentHistory {
            environment,
            deployments: deployments.iter().map(DeploymentBrief::from).collect(),
        });
    }
    Ok(AppDetail {
        app: app.to_string(),
        rating: summary(store, app, user)?,
        environments,
    })
}
