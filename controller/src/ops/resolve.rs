//! Naming an app instead of a deployment: which environment a request
//! means when it names none (`berth stop`, `berth rollback`, `berth logs
//! APP`), and which deployment is an app's current one.
//!
//! An app with one environment needs no `--env`; one with several means
//! its default environment (`berth env set APP/ENV --default`) when it has
//! one, and is otherwise refused, listing them, rather than silently
//! taking `default`.

use super::{Code, Error, Result};
use berth_shared::manifest::environment_or_default;
use berth_shared::record::Deployment;

use crate::server::Context;
use crate::store::ListQuery;

/// The environment a request about `app` means: `given` when it names one,
/// else the app's only environment (or `default` when the app has none, so
/// the caller's own not-found message names it).
pub fn resolve_environment(context: &Context, app: &str, given: &str) -> Result<String> {
    if !given.is_empty() {
        return Ok(given.to_string());
    }
    let environments = context.store.environments_of(app)?;
    if environments.len() > 1
        && let Some(default) = super::environments::default_of(context, app)?
    {
        return Ok(default);
    }
    pick_environment(app, &environments)
}

/// [`resolve_environment`] once the app's environments are known.
fn pick_environment(app: &str, environments: &[String]) -> Result<String> {
    match environments {
        [] => Ok(environment_or_default("")),
        [only] => Ok(only.clone()),
        several => Err(Error::new(
            Code::AppAmbiguousEnvironment,
            format!(
                "app `{app}` runs in several environments ({}); name one with --env",
                several.join(", ")
            ),
        )),
    }
}

/// The newest deployment of `app` in its environment (resolved as in
/// [`resolve_environment`]).
pub fn current_deployment(context: &Context, app: &str, environment: &str) -> Result<Deployment> {
    let environment = resolve_environment(context, app, environment)?;
    let newest = context.store.list_deployments(&ListQuery {
        app: Some(app.to_string()),
        environment: Some(environment.clone()),
        limit: 1,
        ..Default::default()
    })?;
    newest.into_iter().next().ok_or_else(|| {
        Error::new(Code::AppNotFound, format!(
            "`{app}` is neither a deployment id nor an app with a deployment in environment `{environment}`; `berth ls` lists deployments and their apps"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::pick_environment;

    fn check(environments: &[&str], expected: Result<&str, &str>) {
        let environments: Vec<String> = environments.iter().map(|e| e.to_string()).collect();
        let picked = pick_environment("shop", &environments);
        match (picked, expected) {
            (Ok(picked), Ok(expected)) => assert_eq!(picked, expected),
            (Err(status), Err(expected)) => {
                assert_eq!(status.code, crate::ops::Code::AppAmbiguousEnvironment);
                assert!(status.message.contains(expected), "{}", status.message);
            }
            (picked, expected) => panic!("{environments:?}: got {picked:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn an_app_with_one_environment_needs_no_env() {
        check(&["production"], Ok("production"));
        check(&[], Ok("default"));
    }

    #[test]
    fn an_app_with_several_environments_lists_them() {
        check(
            &["production", "staging"],
            Err(
                "app `shop` runs in several environments (production, staging); name one with --env",
            ),
        );
    }
}
