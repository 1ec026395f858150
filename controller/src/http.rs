//! The HTTP/JSON API under `/api/v1`: a second thin adapter over the
//! application layer (`crate::ops`) beside the gRPC `Cli` service, for CI
//! scripts and the web pages. Each handler takes the caller
//! ([`auth`]), decodes the request ([`decode`], [`query`], [`codec`]),
//! calls one operation and encodes its record ([`reply`], [`sse`]); errors
//! become responses in one place ([`error`]). Routes are listed in
//! [`router`], described in `docs/http-api.md`, and in the OpenAPI
//! document made from the handlers' annotations ([`openapi`]).
//!
//! Bounds: JSON bodies at most [`decode::MAX_JSON_BYTES`], request heads
//! at most [`serve::MAX_HEADER_BYTES`], [`REQUEST_TIMEOUT`] for a request
//! to be answered (blob uploads instead give up when idle), and
//! [`sse::MAX_STREAMS_PER_CREDENTIAL`] open streams (event streams and log
//! reads) per token, each ended once its token is refused.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use berth_proto::MAX_WAIT_FOR_AGENTS;
use futures_util::FutureExt;
use tracing::field::Empty;
use tracing::{Instrument, debug, error, info_span};

use crate::ops::{Code, Error};
use crate::server::Context;

mod apps;
pub(crate) mod auth;
mod blobs;
mod codec;
mod decode;
mod deployments;
mod environments;
mod error;
mod events;
mod fleet;
mod hooks;
mod listen;
mod logs;
mod openapi;
mod people;
pub(crate) mod query;
mod reply;
mod resources;
mod secrets;
mod serve;
mod session;
mod setup;
mod sse;
#[cfg(test)]
mod tests;
mod webhooks;

pub use error::status_of;
pub use listen::{Bound, DEFAULT_HTTP_LISTEN, HttpConfig, HttpListen, bind};
pub use serve::{spawn, spawn_named};

/// How long a request may take to be answered. Event streams are answered
/// at once and then stream; a create may first wait for agents.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What the handlers share.
pub struct Api {
    pub context: Arc<Context>,
    /// Open event streams per credential.
    pub streams: Arc<sse::StreamCap>,
    /// The OpenAPI document, made once.
    pub document: bytes::Bytes,
}

/// Every route of the API.
pub fn router(context: Arc<Context>) -> Router {
    let metrics = context.metrics.clone();
    let api = Arc::new(Api {
        context,
        streams: Arc::new(sse::StreamCap::default()),
        document: openapi::document().into(),
    });
    Router::new()
        .route("/api/v1/openapi.json", get(openapi::serve))
        .route("/api/v1/whoami", get(fleet::whoami))
        .route(
            "/api/v1/session",
            get(session::current)
                .post(session::login)
                .delete(session::logout),
        )
        .route("/setup", get(setup::page).post(setup::submit))
        .route("/api/v1/status", get(fleet::status))
        .route("/api/v1/controllers", get(fleet::controllers))
        .route("/api/v1/agents", get(fleet::agents))
        .route("/api/v1/agents/{name}", get(fleet::agent))
        .route("/api/v1/agents/{name}/inspect", get(fleet::inspect))
        .route("/api/v1/audit", get(fleet::audit))
        .route("/api/v1/users", get(people::users).post(people::add_user))
        .route(
            "/api/v1/users/{name}",
            patch(people::change_user).delete(people::remove_user),
        )
        .route("/api/v1/users/{name}/setup-link", post(people::setup_link))
        .route(
            "/api/v1/api-tokens",
            get(people::api_tokens).post(people::create_api_token),
        )
        .route("/api/v1/api-tokens/{id}", delete(people::revoke_api_token))
        .route("/api/v1/blobs/{digest}", put(blobs::put).head(blobs::stat))
        .route(
            "/api/v1/deployments",
            get(deployments::list).post(deployments::create),
        )
        .route("/api/v1/deployments/{id}", get(deployments::get))
        .route("/api/v1/deployments/{id}/logs", get(logs::logs))
        .route("/api/v1/deployments/{id}/events", get(events::deployment))
        .route("/api/v1/deployments/{id}/cancel", post(deployments::cancel))
        .route(
            "/api/v1/deployments/{id}/approve",
            post(deployments::approve),
        )
        .route("/api/v1/deployments/{id}/retry", post(deployments::retry))
        .route(
            "/api/v1/deployments/{id}/redeploy",
            post(deployments::redeploy),
        )
        .route("/api/v1/deployments/{id}/delete", post(deployments::delete))
        .route("/api/v1/deployments/{id}/purge", post(deployments::purge))
        .route("/api/v1/apps", get(apps::list))
        .route("/api/v1/apps/{app}", get(apps::get))
        .route("/api/v1/apps/{app}/dora", get(apps::dora))
        .route("/api/v1/apps/{app}/snapshots", get(resources::snapshots))
        .route(
            "/api/v1/apps/{app}/resources/{resource}/restore",
            post(resources::restore),
        )
        .route(
            "/api/v1/apps/{app}/rating",
            put(apps::rate).delete(apps::clear),
        )
        .route(
            "/api/v1/apps/{app}/environments",
            get(environments::list).post(environments::create),
        )
        .route(
            "/api/v1/apps/{app}/environments/{environment}",
            get(environments::get)
                .patch(environments::change)
                .delete(environments::remove),
        )
        .route("/api/v1/environments", get(environments::list_all))
        .route("/api/v1/apps/{app}/stop", post(deployments::stop_app))
        .route("/api/v1/apps/{app}/start", post(deployments::start_app))
        .route("/api/v1/apps/{app}/rollback", post(deployments::rollback))
        .route(
            "/api/v1/apps/{app}/environments/{environment}/secrets/{name}",
            put(secrets::set).delete(secrets::remove),
        )
        .route("/api/v1/secrets", get(secrets::list))
        .route(
            "/api/v1/secrets/{name}",
            put(secrets::set_fleet).delete(secrets::remove_fleet),
        )
        .route("/api/v1/hooks", get(hooks::list).post(hooks::add))
        .route("/api/v1/hooks/{id}", delete(hooks::remove))
        .route("/api/v1/hooks/git/{id}", post(hooks::receive))
        .route("/api/v1/webhooks", get(webhooks::list).post(webhooks::add))
        .route("/api/v1/webhooks/{id}", delete(webhooks::remove))
        .route("/api/v1/webhooks/{id}/enable", post(webhooks::enable))
        .route("/api/v1/webhooks/{id}/test", post(webhooks::test))
        .route(
            "/api/v1/webhooks/{id}/deliveries",
            get(webhooks::deliveries),
        )
        .route("/api/v1/events", get(events::all))
        .route(
            "/api/v1/deployment-events",
            post(deployments::external_event),
        )
        .merge(crate::web::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(time_limit))
        .layer(middleware::from_fn(trace))
        .layer(middleware::from_fn_with_state(
            metrics,
            crate::metrics::http::track,
        ))
        .with_state(api)
}

/// How long a route may take to answer: uploads are bounded by their
/// idle time instead, and a create may wait for agents first.
fn time_limit_of(method: &Method, route: Option<&str>) -> Option<Duration> {
    match (method, route) {
        (&Method::PUT, Some("/api/v1/blobs/{digest}")) => None,
        (&Method::POST, Some("/api/v1/deployments")) => Some(MAX_WAIT_FOR_AGENTS + REQUEST_TIMEOUT),
        _ => Some(REQUEST_TIMEOUT),
    }
}

async fn time_limit(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let Some(limit) = time_limit_of(request.method(), route) else {
        return next.run(request).await;
    };
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => error::ApiError(Error::new(
            Code::RequestTimedOut,
            format!(
                "the request took longer than {}s; what it asked for may have happened, so look before sending it again",
                limit.as_secs()
            ),
        ))
        .into_response(),
    }
}

/// A span per request (method, path, and once known the caller and the
/// deployment), a debug line with the outcome, and a 500 instead of a
/// dropped connection should a handler ever panic.
async fn trace(request: Request, next: Next) -> Response {
    let path = berth_shared::text::clip(request.uri().path(), 200);
    let span = info_span!(
        "http_request",
        method = %request.method(),
        path = %path,
        principal = Empty,
        deployment_id = Empty,
    );
    let started = Instant::now();
    async move {
        let response = match AssertUnwindSafe(next.run(request)).catch_unwind().await {
            Ok(response) => response,
            Err(_) => {
                error!("an HTTP handler panicked");
                error::ApiError(Error::new(
                    Code::Internal,
                    "the controller failed on this request; see its log",
                ))
                .into_response()
            }
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        debug!(status = response.status().as_u16(), elapsed_ms, "request");
        response
    }
    .instrument(span)
    .await
}

async fn not_found(method: Method, uri: Uri) -> error::ApiError {
    error::ApiError(Error::new(
        Code::RequestNotFound,
        format!(
            "no route {method} {}; the API's routes are under /api/v1 (docs/http-api.md)",
            berth_shared::text::clip(uri.path(), 200)
        ),
    ))
}

async fn method_not_allowed(method: Method, uri: Uri) -> error::ApiError {
    error::ApiError(Error::new(
        Code::RequestMethodNotAllowed,
        format!(
            "{} does not take {method}; the Allow header says what it takes",
            berth_shared::text::clip(uri.path(), 200)
        ),
    ))
}
