//! Routes of environments as records (`berth env`): every app's, one
//! app's, and one environment read, created, changed and removed. The JSON
//! names the kind `type` and the default flag `default`, as the CLI's
//! `--type` and `--default` do. Roles and the audit are the operations'.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use berth_shared::record::EnvironmentView;

use super::Api;
use super::auth::Authed;
use super::decode::{Fields, JsonBody, PathPair, PathText};
use super::error::ApiError;
use super::openapi::requests::{
    AppPath, EnvironmentChangeBody, EnvironmentPath, NewEnvironmentBody,
};
use super::openapi::responses::{Conflict, Forbidden, NotFound};
use super::reply::{self, EnvironmentList};
use crate::ops::Error;
use crate::ops::environments::{self, EnvironmentChange, NewEnvironment, parse_kind};

type Reply = Result<Response, ApiError>;

/// `POST /api/v1/apps/{app}/environments`: a new environment of `app`.
pub fn new_environment(app: String, mut body: Fields) -> Result<NewEnvironment, Error> {
    let request = NewEnvironment {
        app,
        name: body.required_string("name")?,
        kind: parse_kind(&body.required_string("type")?)?,
        is_default: body.flag("default")?,
        protected: body.flag("protected")?,
        approvals: body.u64("approvals")?,
        window: body.string("window")?,
        vars: body.string_map("vars")?,
    };
    body.finish()?;
    Ok(request)
}

/// `PATCH /api/v1/apps/{app}/environments/{environment}`: what to change.
pub fn environment_change(mut body: Fields) -> Result<EnvironmentChange, Error> {
    let change = EnvironmentChange {
        kind: body
            .string("type")?
            .as_deref()
            .map(parse_kind)
            .transpose()?,
        is_default: body.optional_flag("default")?,
        protected: body.optional_flag("protected")?,
        approvals: body.u64("approvals")?,
        window: body.string("window")?,
        set_vars: body.string_map("vars")?,
        unset_vars: body.string_list("unset_vars")?,
    };
    body.finish()?;
    Ok(change)
}

/// Every app's environments, by app, then name (`berth env ls`).
#[utoipa::path(get, path = "/api/v1/environments", tag = "environments",
    operation_id = "list_every_environment",
    responses((status = 200, description = "The environments", body = EnvironmentList)))]
pub async fn list_all(State(api): State<Arc<Api>>, Authed(caller): Authed) -> Reply {
    let environments = environments::list(&api.context, &caller, None)?;
    Ok(reply::ok(&EnvironmentList { environments }))
}

/// One app's environments, by name (`berth env ls APP`); none is an
/// empty list.
#[utoipa::path(get, path = "/api/v1/apps/{app}/environments", tag = "environments",
    operation_id = "list_environments",
    params(AppPath),
    responses((status = 200, description = "The app's environments", body = EnvironmentList)))]
pub async fn list(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(app): PathText,
) -> Reply {
    let environments = environments::list(&api.context, &caller, Some(&app))?;
    Ok(reply::ok(&EnvironmentList { environments }))
}

/// Creates an environment of the app (`berth env create`; operators and
/// admins). A new default takes the flag from the app's earlier one.
#[utoipa::path(post, path = "/api/v1/apps/{app}/environments", tag = "environments",
    operation_id = "create_environment",
    params(AppPath),
    request_body(content = NewEnvironmentBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The environment", body = EnvironmentView),
        (status = 409, response = Conflict),
    ))]
pub async fn create(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(app): PathText,
    JsonBody(body): JsonBody,
) -> Reply {
    let request = new_environment(app, body)?;
    let environment = environments::create(&api.context, &caller, request).await?;
    Ok(reply::json(StatusCode::CREATED, &environment))
}

/// One environment (`berth env show`).
#[utoipa::path(get, path = "/api/v1/apps/{app}/environments/{environment}",
    operation_id = "get_environment",
    tag = "environments", params(EnvironmentPath),
    responses(
        (status = 200, description = "The environment", body = EnvironmentView),
        (status = 404, response = NotFound),
    ))]
pub async fn get(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathPair(app, name): PathPair,
) -> Reply {
    let environment = environments::get(&api.context, &caller, &app, &name)?;
    Ok(reply::ok(&environment))
}

/// Changes an environment's type, default flag, protection, approvals or
/// variables (`berth env set`; operators and admins). Unprotecting a
/// protected environment or changing its approvals is an admin's.
#[utoipa::path(patch, path = "/api/v1/apps/{app}/environments/{environment}",
    operation_id = "change_environment",
    tag = "environments", params(EnvironmentPath),
    request_body(content = EnvironmentChangeBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The environment after the change", body = EnvironmentView),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
pub async fn change(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathPair(app, name): PathPair,
    JsonBody(body): JsonBody,
) -> Reply {
    let change = environment_change(body)?;
    let environment = environments::set(&api.context, &caller, &app, &name, change).await?;
    Ok(reply::ok(&environment))
}

/// Removes an environment's record (`berth env rm`; a protected one only
/// by an admin); its deployments stay.
#[utoipa::path(delete, path = "/api/v1/apps/{app}/environments/{environment}",
    operation_id = "remove_environment",
    tag = "environments", params(EnvironmentPath),
    responses(
        (status = 200, description = "The removed environment", body = EnvironmentView),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
pub async fn remove(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathPair(app, name): PathPair,
) -> Reply {
    let environment = environments::remove(&api.context, &caller, &app, &name).await?;
    Ok(reply::ok(&environment))
}
