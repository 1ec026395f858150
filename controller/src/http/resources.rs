//! Routes of an app's resources: the volume snapshots its hosts keep, and
//! putting one back (`berth resource`).

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use berth_shared::record::{Restored, SnapshotList};

use super::Api;
use super::auth::Authed;
use super::decode::{JsonBody, PathPair, PathText};
use super::error::ApiError;
use super::openapi::requests::{AppPath, ResourcePath, RestoreBody, SnapshotParams};
use super::openapi::responses::{BadRequest, Conflict, Forbidden, NotFound};
use super::query::Params;
use super::reply;
use crate::ops;

type Reply = Result<Response, ApiError>;

/// The volume snapshots of the app's resources on its hosts (`berth
/// resource snapshots`); hosts that did not answer are listed apart.
#[utoipa::path(get, path = "/api/v1/apps/{app}/snapshots", tag = "apps", params(AppPath, SnapshotParams),
    responses(
        (status = 200, description = "The snapshots", body = SnapshotList),
        (status = 404, response = NotFound),
    ))]
pub async fn snapshots(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(app): PathText,
    mut params: Params,
) -> Reply {
    let query = ops::resources::SnapshotQuery {
        app,
        environment: params.one("environment")?.unwrap_or_default(),
        resource: params.one("resource")?.unwrap_or_default(),
    };
    params.finish()?;
    let list = ops::resources::snapshots(&api.context, &caller, &query).await?;
    Ok(reply::ok(&list))
}

/// Puts a snapshot back into the resource's volume on one host (`berth
/// resource restore`): the resource stops, its volume is made anew from
/// the snapshot, and it starts again and must pass its health check.
#[utoipa::path(post, path = "/api/v1/apps/{app}/resources/{resource}/restore", tag = "apps", params(ResourcePath),
    request_body(content = RestoreBody, content_type = "application/json"),
    responses(
        (status = 200, description = "What was done", body = Restored),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ))]
pub async fn restore(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathPair(app, resource): PathPair,
    JsonBody(mut body): JsonBody,
) -> Reply {
    let request = ops::resources::Restore {
        app,
        resource,
        environment: body.string("environment")?.unwrap_or_default(),
        host: body.string("host")?.unwrap_or_default(),
        snapshot: body.string("snapshot")?.unwrap_or_default(),
    };
    body.finish()?;
    let restored = ops::resources::restore(&api.context, &caller, &request).await?;
    Ok(reply::ok(&restored))
}
