//! Routes about deployments and apps: create, list, get, and the
//! lifecycle actions. Each takes the caller, decodes, calls one operation
//! and encodes its record; roles and audit live in the operations.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use tracing::field::display;

use super::Api;
use super::auth::Authed;
use super::codec;
use super::decode::{JsonBody, PathId, PathText};
use super::error::ApiError;
use super::query::Params;
use super::reply;
use crate::ops;

type Reply = Result<Response, ApiError>;

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

/// `POST /api/v1/deployment-events`.
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

pub async fn list(State(api): State<Arc<Api>>, Authed(caller): Authed, params: Params) -> Reply {
    let request = codec::list_request(params)?;
    let (offset, limit) = (request.offset, request.limit);
    let found = ops::deployments::list(&api.context, &caller, request).await?;
    Ok(codec::deployment_page(found, offset, limit))
}

pub async fn get(State(api): State<Arc<Api>>, Authed(caller): Authed, PathId(id): PathId) -> Reply {
    let found = ops::deployments::get(&api.context, &caller, id)?;
    Ok(reply::ok(&found))
}

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

pub async fn delete(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathId(id): PathId,
    JsonBody(body): JsonBody,
) -> Reply {
    body.finish()?;
    let deleted = ops::stop::delete(&api.context, &caller, id).await?;
    Ok(reply::ok(&deleted))
}

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

pub async fn stop_app(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(app): PathText,
    params: Params,
    JsonBody(body): JsonBody,
) -> Reply {
    let app = codec::app_ref(app, params, body)?;
    let stopped = ops::stop::stop(&api.context, &caller, &app).await?;
    tracing::Span::current().record("deployment_id", display(stopped.id));
    Ok(reply::ok(&stopped))
}

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
