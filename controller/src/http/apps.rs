//! Routes of the app catalogue and its ratings: every app with the newest
//! deployment per environment and its ratings, one app with its recent
//! history, and the caller's rating of an app set or cleared. The rating
//! is the caller's user's, whether it comes with a token, a certificate or
//! a web session (whose change carries its CSRF token, as every change).

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use berth_shared::record::{AppDetail, DoraReport, RatingSummary};

use super::Api;
use super::auth::Authed;
use super::codec;
use super::decode::{JsonBody, PathText};
use super::error::ApiError;
use super::openapi::requests::{AppPath, DoraParams, RatingBody};
use super::openapi::responses::{InsufficientStorage, NotFound, TooLarge, UnsupportedMediaType};
use super::query::Params;
use super::reply::{self, AppCatalogue};
use crate::ops;

type Reply = Result<Response, ApiError>;

/// Every app, by name, with the newest deployment in each environment and
/// its ratings (`berth apps ls`).
#[utoipa::path(get, path = "/api/v1/apps", tag = "apps",
    responses((status = 200, description = "The apps", body = AppCatalogue)))]
pub async fn list(State(api): State<Arc<Api>>, Authed(caller): Authed) -> Reply {
    let apps = ops::apps::list(&api.context, &caller).await?;
    Ok(reply::ok(&AppCatalogue { apps }))
}

/// One app: its ratings and its newest deployments in each environment
/// (`berth apps show`).
#[utoipa::path(get, path = "/api/v1/apps/{app}", tag = "apps", params(AppPath),
    responses(
        (status = 200, description = "The app", body = AppDetail),
        (status = 404, response = NotFound),
    ))]
pub async fn get(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(app): PathText,
) -> Reply {
    let app = ops::apps::get(&api.context, &caller, &app).await?;
    Ok(reply::ok(&app))
}

/// Rates an app 1 to 5 stars as the caller's user, replacing its earlier
/// rating (`berth apps rate`).
#[utoipa::path(put, path = "/api/v1/apps/{app}/rating", tag = "apps", params(AppPath),
    request_body(content = RatingBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The app's ratings after it", body = RatingSummary),
        (status = 404, response = NotFound),
        (status = 413, response = TooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 507, response = InsufficientStorage),
    ))]
pub async fn rate(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(app): PathText,
    JsonBody(body): JsonBody,
) -> Reply {
    let stars = codec::rating(body)?;
    let summary = ops::ratings::rate(&api.context, &caller, &app, stars).await?;
    Ok(reply::ok(&summary))
}

/// Takes the caller's rating of an app back (`berth apps rate --clear`);
/// no error when there is none.
#[utoipa::path(delete, path = "/api/v1/apps/{app}/rating", tag = "apps", params(AppPath),
    responses(
        (status = 200, description = "The app's ratings after it", body = RatingSummary),
        (status = 507, response = InsufficientStorage),
    ))]
pub async fn clear(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(app): PathText,
) -> Reply {
    let summary = ops::ratings::clear(&api.context, &caller, &app).await?;
    Ok(reply::ok(&summary))
}

/// The app's DORA figures in one environment over a window ending now
/// (`berth metrics dora`; `docs/dora.md` defines them).
#[utoipa::path(get, path = "/api/v1/apps/{app}/dora", tag = "apps", params(AppPath, DoraParams),
    responses(
        (status = 200, description = "The figures", body = DoraReport),
        (status = 404, response = NotFound),
    ))]
pub async fn dora(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(app): PathText,
    mut params: Params,
) -> Reply {
    let request = ops::dora::DoraRequest {
        app,
        environment: params.one("environment")?.unwrap_or_default(),
        since: params.one("since")?.unwrap_or_default(),
        fix_window: params.one("fix_window")?.unwrap_or_default(),
    };
    params.finish()?;
    let report = ops::dora::report(&api.context, &caller, &request).await?;
    Ok(reply::ok(&report))
}
