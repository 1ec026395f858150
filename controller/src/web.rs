//! The web dashboard: pages for people, served beside the HTTP API on the
//! same listener. A third thin adapter over the application layer: each
//! page handler authenticates the browser's session (`auth.rs`), calls the
//! same operations as the API, and renders HTML with maud (every value
//! escaped). What changes state goes through the public API from the
//! page's script (`assets/app.js`) with the session's CSRF token; live
//! updates come from the API's event streams. No inline script or style:
//! every page carries a strict Content-Security-Policy (`layout.rs`).

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::http::Api;

mod agent;
mod apps;
mod assets;
mod auth;
mod deployments;
mod detail;
mod dora;
mod environments;
mod fleet;
mod layout;
mod login;
mod made;
mod people;
#[cfg(test)]
mod tests;
mod webhooks;

/// The pages and their assets.
pub fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/", get(deployments::page))
        .route("/deployments/{id}", get(detail::page))
        .route("/apps", get(apps::list))
        .route("/apps/{app}", get(apps::page))
        .route("/status", get(fleet::status))
        .route("/fleet", get(fleet::fleet))
        .route("/fleet/{name}", get(agent::page))
        .route("/audit", get(fleet::audit))
        .route("/users", get(people::page))
        .route("/webhooks", get(webhooks::page))
        .route("/login", get(login::page))
        .route("/assets/{name}", get(assets::serve))
        .route("/favicon.ico", get(assets::favicon))
}
