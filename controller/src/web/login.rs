//! The sign-in page. The form posts nothing itself: the page's script
//! sends the name and password as JSON to `POST /api/v1/session` (the
//! public API; JSON is what no other site's form can send) and follows
//! `next` once signed in.

use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::layout::{self, Nav};
use crate::http::query::Params;

/// Where `next` may lead: a path of this site, never another site.
pub fn safe_next(next: Option<String>) -> String {
    match next {
        Some(next) if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') => {
            next
        }
        _ => "/".into(),
    }
}

/// `GET /login`.
pub async fn page(mut params: Params) -> Response {
    let next = safe_next(params.one("next").ok().flatten());
    let main = html! {
        section class="narrow" {
            h1 { "Sign in to berth" }
            form id="sign-in" data-next=(next) novalidate {
                p class="error" role="alert" hidden {}
                label for="name" { "User name" }
                input id="name" name="name" autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                button type="submit" class="primary" { "Sign in" }
            }
            p class="hint" {
                "No password yet? Ask an admin for a setup link ("
                code { "berth users setup-link NAME" } ")."
            }
        }
    };
    let mut response = layout::page("Sign in", None, Nav::None, main);
    *response.status_mut() = StatusCode::OK;
    response
}
