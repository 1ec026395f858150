//! Routes of the secret store: the secrets of an app in an environment
//! (operators and admins change them), the fleet's (admins), and the list
//! (anyone signed in). A value only ever comes in a request's body; the
//! answers are the secret's name, scope and version.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use berth_shared::record::{SecretScope, SecretView};
use zeroize::Zeroizing;

use super::Api;
use super::auth::Authed;
use super::decode::{Fields, JsonBody, PathText, PathTexts};
use super::error::ApiError;
use super::openapi::requests::{AppSecretPath, FleetSecretPath, SecretBody, SecretsParams};
use super::openapi::responses::NotFound;
use super::query::Params;
use super::reply::{self, SecretList};
use crate::ops::{self, Code, Error};

type Reply = Result<Response, ApiError>;

/// The value a `PUT` carries (`{"value": "..."}`); a refusal never
/// repeats it.
pub(super) fn value(mut body: Fields) -> Result<Zeroizing<String>, Error> {
    let value = body.required_secret("value")?;
    body.finish()?;
    Ok(value)
}

/// The scope a list asks for: `app` with `environment`, `fleet`, or
/// neither (every scope).
pub(super) fn listed_scope(mut params: Params) -> Result<Option<SecretScope>, Error> {
    let app = params.one("app")?;
    let environment = params.one("environment")?;
    let fleet = params.flag("fleet")?;
    params.finish()?;
    match (app, environment, fleet) {
        (None, None, false) => Ok(None),
        (None, None, true) => Ok(Some(SecretScope::Fleet)),
        (Some(app), Some(environment), false) => app_scope(&app, &environment).map(Some),
        _ => Err(Error::invalid(
            "give `app` and `environment` together, or `fleet=true`, or neither (every secret)",
        )),
    }
}

fn app_scope(app: &str, environment: &str) -> Result<SecretScope, Error> {
    SecretScope::app(app, environment).map_err(|reason| Error::new(Code::SecretInvalid, reason))
}

/// The app, environment and name of an app's secret route.
fn app_secret(path: Vec<String>) -> Result<(SecretScope, String), Error> {
    let [app, environment, name] = <[String; 3]>::try_from(path)
        .map_err(|_| Error::invalid("the path names an app, an environment and a secret"))?;
    Ok((app_scope(&app, &environment)?, name))
}

/// Secrets by scope and name: one app's in one environment
/// (`?app=web&environment=prod`), the fleet's (`?fleet=true`) or every
/// one; never a value (`berth secret ls`).
#[utoipa::path(get, path = "/api/v1/secrets", tag = "secrets", params(SecretsParams),
    responses((status = 200, description = "The secrets (never their values)", body = SecretList)))]
pub async fn list(State(api): State<Arc<Api>>, Authed(caller): Authed, params: Params) -> Reply {
    let scope = listed_scope(params)?;
    let secrets = ops::secrets::list(&api.context, &caller, scope.as_ref())?;
    Ok(reply::ok(&SecretList { secrets }))
}

/// Sets a secret of an app in an environment, making its next version
/// (`berth secret set APP/ENV NAME`; operators and admins).
#[utoipa::path(put, path = "/api/v1/apps/{app}/environments/{environment}/secrets/{name}",
    tag = "secrets", params(AppSecretPath),
    request_body(content = SecretBody, content_type = "application/json"),
    responses((status = 200, description = "The secret now (never its value)", body = SecretView)))]
pub async fn set(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathTexts(path): PathTexts,
    JsonBody(body): JsonBody,
) -> Reply {
    let (scope, name) = app_secret(path)?;
    let value = value(body)?;
    let secret = ops::secrets::set(&api.context, &caller, &scope, &name, value).await?;
    Ok(reply::ok(&secret))
}

/// Removes a secret of an app in an environment with every version it
/// kept (`berth secret rm APP/ENV NAME`; operators and admins).
#[utoipa::path(delete, path = "/api/v1/apps/{app}/environments/{environment}/secrets/{name}",
    tag = "secrets", params(AppSecretPath),
    responses(
        (status = 200, description = "The secret as it was", body = SecretView),
        (status = 404, response = NotFound),
    ))]
pub async fn remove(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathTexts(path): PathTexts,
) -> Reply {
    let (scope, name) = app_secret(path)?;
    let removed = ops::secrets::remove(&api.context, &caller, &scope, &name).await?;
    Ok(reply::ok(&removed))
}

/// Sets a fleet-wide secret, making its next version (`berth secret set
/// --fleet NAME`; admins).
#[utoipa::path(put, path = "/api/v1/secrets/{name}", tag = "secrets", params(FleetSecretPath),
    request_body(content = SecretBody, content_type = "application/json"),
    responses((status = 200, description = "The secret now (never its value)", body = SecretView)))]
pub async fn set_fleet(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(name): PathText,
    JsonBody(body): JsonBody,
) -> Reply {
    let value = value(body)?;
    let fleet = SecretScope::Fleet;
    let secret = ops::secrets::set(&api.context, &caller, &fleet, &name, value).await?;
    Ok(reply::ok(&secret))
}

/// Removes a fleet-wide secret with every version it kept (`berth secret
/// rm --fleet NAME`; admins).
#[utoipa::path(delete, path = "/api/v1/secrets/{name}", tag = "secrets", params(FleetSecretPath),
    responses(
        (status = 200, description = "The secret as it was", body = SecretView),
        (status = 404, response = NotFound),
    ))]
pub async fn remove_fleet(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(name): PathText,
) -> Reply {
    let removed = ops::secrets::remove(&api.context, &caller, &SecretScope::Fleet, &name).await?;
    Ok(reply::ok(&removed))
}
