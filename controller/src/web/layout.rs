//! The shell every page shares: the head (stylesheet, script, the
//! session's CSRF token for the script), the header with the navigation
//! and the signed-in user, and the security headers: a strict
//! Content-Security-Policy with no inline script or style, no framing,
//! no referrer, no caching of pages that show data.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use maud::{DOCTYPE, Markup, html};

use super::assets;
use berth_shared::record::Timestamp;

use crate::ops::Error;
use crate::ops::sessions::SessionInfo;
use crate::store::Role;

/// The policy of every page: only this origin's script, style and
/// connections (the API and its event streams); nothing inline.
pub const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The pages in the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Deployments,
    Apps,
    Status,
    Fleet,
    Audit,
    People,
    Webhooks,
    None,
}

/// The navigation's pages for `role`: where each is and what it is called
/// (Webhooks for admins only).
fn pages(role: Role) -> Vec<(Nav, &'static str, &'static str)> {
    let people = if role == Role::Admin {
        "Users"
    } else {
        "Tokens"
    };
    [
        (Nav::Deployments, "/", "Deployments"),
        (Nav::Apps, "/apps", "Apps"),
        (Nav::Status, "/status", "Status"),
        (Nav::Fleet, "/fleet", "Fleet"),
        (Nav::Audit, "/audit", "Audit"),
        (Nav::People, "/users", people),
        (Nav::Webhooks, "/webhooks", "Webhooks"),
    ]
    .into_iter()
    .filter(|(nav, ..)| *nav != Nav::Webhooks || role == Role::Admin)
    .collect()
}

/// The scripts every page loads, in order: `app.js` first (the others use
/// what it shares); each page's own script finds nothing to do elsewhere.
const SCRIPTS: [&str; 7] = [
    "app.js",
    "deployments.js",
    "log.js",
    "people.js",
    "apps.js",
    "environments.js",
    "webhooks.js",
];

/// A whole page.
pub fn page(title: &str, session: Option<&SessionInfo>, nav: Nav, main: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(session) = session {
                    meta name="csrf-token" content=(session.csrf_token);
                    meta name="berth-user" content=(session.user);
                    meta name="berth-role" content=(session.role.as_str());
                }
                title { (title) " · berth" }
                link rel="icon" href=(assets::url("icon.svg")) type="image/svg+xml";
                link rel="stylesheet" href=(assets::url("app.css"));
                @for script in SCRIPTS { script src=(assets::url(script)) defer {} }
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href="/" { "berth" }
                    @if let Some(session) = session {
                        nav aria-label="Main" {
                            @for (page, href, name) in pages(session.role) {
                                a href=(href) aria-current=[(nav == page).then_some("page")] { (name) }
                            }
                        }
                        div class="who" {
                            span { (session.user) " · " span class="role" { (session.role.as_str()) } }
                            button type="button" class="link" data-action="sign-out" { "Sign out" }
                        }
                    }
                }
                main id="main" { (main) }
                div class="toast" role="status" aria-live="polite" {}
            }
        }
    };
    respond(StatusCode::OK, markup)
}

/// `markup` as an HTML response with the security headers.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut response = Response::new(Body::from(markup.into_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CONTENT_SECURITY_POLICY, POLICY),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A moment, said relative to now, exact in its title.
pub fn time(at: Timestamp) -> Markup {
    html! { time datetime=(at) title=(at) { (berth_shared::time::age(at.0)) } }
}

/// An operation's refusal on a page: its message and its code.
pub fn refusal(err: &Error) -> Markup {
    html! { p class="error" role="alert" { (err.message) " (" code { (err.code.as_str()) } ")" } }
}

/// Whether `role` may change deployments (deploy, retry, stop, ...).
pub fn may_operate(role: Role) -> bool {
    role >= Role::Operator
}
