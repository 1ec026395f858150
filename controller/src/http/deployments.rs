//! Routes about deployments and apps: create, list, get, and the
//! lifecycle actions. Each takes the caller, decodes, calls one operation
//! and encodes its record; roles and audit live in the operations.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use berth_shared::record::{Deployment, Purged};
use tracing::field::display;

use super::Api;
use super::auth::Authed;
use super::codec;
use super::decode::{JsonBody, PathId, PathText};
use super::error::ApiError;
use super::openapi::requests::{
    AppBody, AppPath, ClaimBody, DeleteBody, DeploymentPath, EmptyBody, EnvironmentParam,
    ExternalEventBody, ListParams, NewDeploymentBody, RollbackBody, StopBody,
};
use super::openapi::responses::{BadRequest, Conflict, Forbidden, NotFound, TooManyRequests};
use super::query::Params;
use super::reply::{self, DeploymentPage};
use crate::ops;

type Reply = Result<Response, ApiError>;

/// Creates a deployment of an uploaded bundle (`berth deploy`).
///
/// With `wait_for_agents_secs` it first waits that long for offline target
/// agents. The deployment records `trigger: "api"`.
#[utoipa::path(post, path = "/api/v1/deployments", tag = "deployments",
    request_body(content = NewDeploymentBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The new deployment", body = Deployment),
        (status = 200, description = "The deployment an earlier request with the same `idempotency_key` made", body = Deployment,
            headers(("berth-existing-deployment" = String, description = "`true`"))),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 429, response = TooManyRequests),
    ))]
pub async fn create(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    JsonBody(body): JsonBody,
) -> Reply {
    let request = codec::new_deployment(body)?;
    let created = ops::create::create(&api.context, &caller, request).await?;
    tracing::Span::current().record("deployment_id", display(created.deployment.id));
    Ok(codec::created(created))
}

/// Records a deployment another tool made, or moves its status.
#[utoipa::path(post, path = "/api/v1/deployment-events", tag = "deployments",
    request_body(content = ExternalEventBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The recorded deployment", body = Deployment),
        (status = 409, response = Conflict),
    ))]
pub async fn external_event(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    JsonBody(body): JsonBody,
) -> Reply {
    let event = codec::external_event(body)?;
    let recorded = ops::external::record(&api.context, &caller, event).await?;
    tracing::Span::current().record("deployment_id", display(recorded.id));
    Ok(reply::ok(&recorded))
}

/// A page of deployments, filtered and sorted (`berth history`).
#[utoipa::path(get, path = "/api/v1/deployments", tag = "deployments", params(ListParams),
    responses((status = 200, description = "A page", body = DeploymentPage)))]
pub async fn list(State(api): State<Arc<Api>>, Authed(caller): Authed, params: Params) -> Reply {
    let request = codec::list_request(params)?;
    let (offset, limit) = (request.offset, request.limit);
    let found = ops::deployments::list(&api.context, &caller, request).await?;
    Ok(codec::deployment_page(found, offset, limit))
}

/// One deployment.
#[utoipa::path(get, path = "/api/v1/deployments/{id}", tag = "deployments", params(DeploymentPath),
    responses(
        (status = 200, description = "The deployment", body = Deployment),
        (status = 404, response = NotFound),
    ))]
pub async fn get(State(api): State<Arc<Api>>, Authed(caller): Authed, PathId(id): PathId) -> Reply {
    let found = ops::deployments::get(&api.context, &caller, id)?;
    Ok(reply::ok(&found))
}

/// Stops a running or queued deployment on every host (`berth cancel`).
#[utoipa::path(post, path = "/api/v1/deployments/{id}/cancel", tag = "deployments", params(DeploymentPath),
    request_body(content = Option<EmptyBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "The deployment", body = Deployment),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ))]
pub async fn cancel(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathId(id): PathId,
    JsonBody(body): JsonBody,
) -> Reply {
    body.finish()?;
    let canceled = ops::deployments::cancel(&api.context, &caller, id).await?;
    Ok(reply::ok(&canceled))
}

/// Approves what a deployment waits for in a protected environment
/// (`berth approve`): a held deploy, retry or rollback starts, a held
/// stop, redeploy or start runs. Never the requester's own; with one
/// approval only an admin's.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/approve", tag = "deployments", params(DeploymentPath),
    request_body(content = Option<EmptyBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "The deployment, with who approved it", body = Deployment),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ))]
pub async fn approve(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathId(id): PathId,
    JsonBody(body): JsonBody,
) -> Reply {
    body.finish()?;
    let approved = ops::approvals::approve(&api.context, &caller, id).await?;
    Ok(reply::ok(&approved))
}

/// Runs a failed deployment again as a new one (`berth retry`).
#[utoipa::path(post, path = "/api/v1/deployments/{id}/retry", tag = "deployments", params(DeploymentPath),
    request_body(content = Option<ClaimBody>, content_type = "application/json"),
    responses(
        (status = 201, description = "The new deployment", body = Deployment),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 429, response = TooManyRequests),
    ))]
pub async fn retry(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathId(id): PathId,
    JsonBody(body): JsonBody,
) -> Reply {
    let claim = codec::claim(body)?;
    let made = ops::rerun::retry(&api.context, &caller, id, claim).await?;
    Ok(reply::json(StatusCode::CREATED, &made))
}

/// Runs a deployment's stages again on its hosts (`berth redeploy`).
#[utoipa::path(post, path = "/api/v1/deployments/{id}/redeploy", tag = "deployments", params(DeploymentPath),
    request_body(content = Option<ClaimBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "The deployment", body = Deployment),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 429, response = TooManyRequests),
    ))]
pub async fn redeploy(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathId(id): PathId,
    JsonBody(body): JsonBody,
) -> Reply {
    let claim = codec::claim(body)?;
    let redeployed = ops::rerun::redeploy(&api.context, &caller, id, claim).await?;
    Ok(reply::ok(&redeployed))
}

/// Tears down what a deployment made on its hosts (`berth delete`).
#[utoipa::path(post, path = "/api/v1/deployments/{id}/delete", tag = "deployments", params(DeploymentPath),
    request_body(content = Option<DeleteBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "The deployment", body = Deployment),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ))]
pub async fn delete(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathId(id): PathId,
    JsonBody(mut body): JsonBody,
) -> Reply {
    let teardown = ops::stop::Teardown {
        with_resources: body.flag("with_resources")?,
        purge_volumes: body.flag("purge_volumes")?,
        confirm: body.string("confirm")?.unwrap_or_default(),
    };
    body.finish()?;
    let deleted = ops::stop::delete(&api.context, &caller, id, &teardown).await?;
    Ok(reply::ok(&deleted))
}

/// Forgets a settled deployment's record and logs (`berth purge`).
#[utoipa::path(post, path = "/api/v1/deployments/{id}/purge", tag = "deployments", params(DeploymentPath),
    request_body(content = Option<EmptyBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "What was removed", body = Purged),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ))]
pub async fn purge(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathId(id): PathId,
    JsonBody(body): JsonBody,
) -> Reply {
    body.finish()?;
    let purged = ops::deployments::purge(&api.context, &caller, id).await?;
    Ok(reply::ok(&purged))
}

/// Stops an app in an environment (`berth stop`).
#[utoipa::path(post, path = "/api/v1/apps/{app}/stop", tag = "apps", params(AppPath, EnvironmentParam),
    request_body(content = Option<StopBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "The stopped deployment", body = Deployment),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ))]
pub async fn stop_app(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(app): PathText,
    params: Params,
    JsonBody(mut body): JsonBody,
) -> Reply {
    let with_resources = body.flag("with_resources")?;
    let app = codec::app_ref(app, params, body)?;
    let stopped = ops::stop::stop(&api.context, &caller, &app, with_resources).await?;
    tracing::Span::current().record("deployment_id", display(stopped.id));
    Ok(reply::ok(&stopped))
}

/// Starts a stopped app again (`berth start`).
#[utoipa::path(post, path = "/api/v1/apps/{app}/start", tag = "apps", params(AppPath, EnvironmentParam),
    request_body(content = Option<AppBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "The started deployment", body = Deployment),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 429, response = TooManyRequests),
    ))]
pub async fn start_app(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(app): PathText,
    params: Params,
    JsonBody(body): JsonBody,
) -> Reply {
    let app = codec::app_ref(app, params, body)?;
    let started = ops::rerun::start(&api.context, &caller, &app).await?;
    tracing::Span::current().record("deployment_id", display(started.id));
    Ok(reply::ok(&started))
}

/// Deploys an earlier version of an app again (`berth rollback`).
#[utoipa::path(post, path = "/api/v1/apps/{app}/rollback", tag = "apps", params(AppPath, EnvironmentParam),
    request_body(content = Option<RollbackBody>, content_type = "application/json"),
    responses(
        (status = 201, description = "The new deployment", body = Deployment),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 429, response = TooManyRequests),
    ))]
pub async fn rollback(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(app): PathText,
    params: Params,
    JsonBody(body): JsonBody,
) -> Reply {
    let rollback = codec::rollback(app, params, body)?;
    let made = ops::rerun::rollback(&api.context, &caller, &rollback).await?;
    tracing::Span::current().record("deployment_id", display(made.id));
    Ok(reply::json(StatusCode::CREATED, &made))
}
