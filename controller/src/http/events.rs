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
use super::sse::{self, Event};
use crate::ops;

pub async fn deployment(
    State(api): State<Arc<Api>>,
    Streaming(caller, permit): Streaming,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let snapshots = ops::watch::watch(api.context.clone(), &caller, id)?;
    let events = snapshots.map(|snapshot| Event::json("deployment", &snapshot?));
    Ok(sse::respond(events, permit, api.context.shutdown.clone()))
}

pub async fn all(
    State(api): State<Arc<Api>>,
    Streaming(caller, permit): Streaming,
) -> Result<Response, ApiError> {
    let changes = ops::watch::all(api.context.clone(), &caller)?;
    let events = changes.map(|change| Event::json("deployment", &change?));
    Ok(sse::respond(events, permit, api.context.shutdown.clone()))
}
