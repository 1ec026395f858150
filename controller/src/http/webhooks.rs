//! Routes of outgoing webhooks (admins): add (the answer shows the signing
//! secret once), list, remove, enable, test, and an endpoint's deliveries.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use berth_shared::record::{CreatedWebhook, DeliveryView, WebhookView};

use super::Api;
use super::auth::Authed;
use super::decode::{JsonBody, PathText};
use super::error::ApiError;
use super::openapi::requests::{DeliveriesParams, NewWebhookBody, WebhookPath};
use super::openapi::responses::NotFound;
use super::query::Params;
use super::reply::{self, DeliveryList, WebhookList};
use crate::ops::webhooks::AddWebhook;
use crate::ops::{self, Error};

type Reply = Result<Response, ApiError>;

/// Adds an endpoint (`berth webhook add`); the answer holds its signing
/// secret, which no later answer shows.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks",
    request_body(content = NewWebhookBody, content_type = "application/json"),
    responses((status = 200, description = "The endpoint and its signing secret", body = CreatedWebhook)))]
pub async fn add(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    JsonBody(mut body): JsonBody,
) -> Reply {
    let url = body.required_string("url")?;
    let events = body.string_list("events")?;
    let app = body.string("app")?;
    let environment = body.string("environment")?;
    let format = body.string("format")?.unwrap_or_default();
    body.finish()?;
    let request = AddWebhook {
        url,
        events,
        app,
        environment,
        format,
    };
    let created = ops::webhooks::add(&api.context, &caller, request).await?;
    Ok(reply::ok(&created))
}

/// Every endpoint, with its URL cut to scheme and host (`berth webhook ls`).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, description = "The endpoints", body = WebhookList)))]
pub async fn list(State(api): State<Arc<Api>>, Authed(caller): Authed) -> Reply {
    let webhooks = ops::webhooks::list(&api.context, &caller)?;
    Ok(reply::ok(&WebhookList { webhooks }))
}

/// Removes an endpoint and what waits for it (`berth webhook rm`).
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(WebhookPath),
    responses(
        (status = 200, description = "The endpoint as it was", body = WebhookView),
        (status = 404, response = NotFound),
    ))]
pub async fn remove(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(id): PathText,
) -> Reply {
    let removed = ops::webhooks::remove(&api.context, &caller, &id).await?;
    Ok(reply::ok(&removed))
}

/// Enables an endpoint disabled for failing (`berth webhook enable`).
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/enable", tag = "webhooks", params(WebhookPath),
    responses(
        (status = 200, description = "The endpoint now", body = WebhookView),
        (status = 404, response = NotFound),
    ))]
pub async fn enable(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(id): PathText,
) -> Reply {
    let enabled = ops::webhooks::enable(&api.context, &caller, &id).await?;
    Ok(reply::ok(&enabled))
}

/// Queues a `webhook.test` delivery (`berth webhook test`).
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", tag = "webhooks", params(WebhookPath),
    responses(
        (status = 200, description = "The delivery queued", body = DeliveryView),
        (status = 404, response = NotFound),
    ))]
pub async fn test(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(id): PathText,
) -> Reply {
    let queued = ops::webhooks::test(&api.context, &caller, &id).await?;
    Ok(reply::ok(&queued))
}

/// An endpoint's deliveries, newest first (`berth webhook deliveries`).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(WebhookPath, DeliveriesParams),
    responses(
        (status = 200, description = "The deliveries", body = DeliveryList),
        (status = 404, response = NotFound),
    ))]
pub async fn deliveries(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(id): PathText,
    mut params: Params,
) -> Reply {
    let limit = match params.one("limit")? {
        Some(text) => text.parse::<usize>().map_err(|_| {
            Error::invalid(format!(
                "`limit` must be a number from 1 to 200, not `{text}`"
            ))
        })?,
        None => 0,
    };
    params.finish()?;
    let deliveries = ops::webhooks::deliveries(&api.context, &caller, &id, limit)?;
    Ok(reply::ok(&DeliveryList { deliveries }))
}
