//! Event streams of deployment snapshots: one deployment's
//! (`ops::watch::watch`), ending with `event: end` once it is quiet, and
//! every deployment's change the caller may see (`ops::watch::all`), for
//! as long as the client listens. Each snapshot is `event: deployment`
//! with the deployment's JSON; a reconnecting client gets the current
//! state first, so the events carry no ids.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use futures_util::StreamExt;

use super::Api;
use super::auth::Streaming;
use super::decode::PathId;
use super::error::ApiError;
use super::openapi::requests::DeploymentPath;
use super::openapi::responses::{NotFound, TooManyRequests};
use super::openapi::streams::DeploymentEvent;
use super::sse::{self, Event};
use crate::ops;

/// A deployment's snapshots as an event stream.
///
/// `deployment` events (data a `Deployment`) now and at each change, then
/// `end` once it is quiet; an `error` event (data `ErrorReply`) ends it on
/// failure.
#[utoipa::path(get, path = "/api/v1/deployments/{id}/events", tag = "deployments",
    params(DeploymentPath),
    responses(
        (status = 200, description = "The event stream", content_type = "text/event-stream", body = DeploymentEvent),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    ))]
pub async fn deployment(
    State(api): State<Arc<Api>>,
    Streaming(caller, permit): Streaming,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let snapshots = ops::watch::watch(api.context.clone(), &caller, id)?;
    let events = snapshots.map(|snapshot| Event::json("deployment", &snapshot?));
    Ok(sse::respond(events, permit, api.context.shutdown.clone()))
}

/// Every deployment change, as an event stream.
///
/// `deployment` events (data a `Deployment`) for as long as the client
/// listens; an `error` event (data `ErrorReply`) ends it on failure.
#[utoipa::path(get, path = "/api/v1/events", tag = "deployments",
    responses(
        (status = 200, description = "The event stream", content_type = "text/event-stream", body = DeploymentEvent),
        (status = 429, response = TooManyRequests),
    ))]
pub async fn all(
    State(api): State<Arc<Api>>,
    Streaming(caller, permit): Streaming,
) -> Result<Response, ApiError> {
    let changes = ops::watch::all(api.context.clone(), &caller)?;
    let events = changes.map(|change| Event::json("deployment", &change?));
    Ok(sse::respond(events, permit, api.context.shutdown.clone()))
}
