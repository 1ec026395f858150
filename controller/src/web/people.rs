//! The Users and tokens page (`/users`). Admins see every user, with
//! forms to add one, change a role, disable or enable, make a setup link
//! and remove; and every API token. Everyone else sees their own API
//! tokens. Lists are `ops::users::list` and `ops::api_tokens::list`, as
//! for the API; the script (`assets/people.js`) sends each change to the
//! API's people routes with the session's CSRF token and shows a new
//! token or setup link once, in a dialog. No secret is ever on the page.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use berth_shared::record::{ApiTokenView, UserView};
use maud::{Markup, html};

use super::auth::Browser;
use super::layout::{self, Nav};
use crate::http::Api;
use crate::ops;
use crate::store::Role;

/// What a user or token name may hold, as an input's pattern (the `v`
/// flag browsers use wants the dash escaped).
const NAME_PATTERN: &str = "[A-Za-z0-9._\\-]+";

const ROLES: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

/// `GET /users`.
pub async fn page(State(api): State<Arc<Api>>, browser: Browser) -> Response {
    let admin = browser.session.role == Role::Admin;
    let users = admin.then(|| ops::users::list(&api.context, &browser.caller));
    let tokens = ops::api_tokens::list(&api.context, &browser.caller);
    let title = if admin {
        "Users and tokens"
    } else {
        "API tokens"
    };
    let main = html! {
        h1 { (title) }
        @if let Some(users) = &users {
            section aria-labelledby="users-title" {
                h2 id="users-title" { "Users" }
                @match users {
                    Err(err) => (layout::refusal(err)),
                    Ok(users) => div class="scroll" role="region" tabindex="0" aria-label="Users table" { table class="stages people" {
                        thead { tr { th scope="col" { "User" } th scope="col" { "Role" } th scope="col" { "State" }
                            th scope="col" { "Web password" } th scope="col" { "API tokens" } th scope="col" { "Added" }
                            th scope="col" { span class="visually-hidden" { "Actions" } } } }
                        tbody { @for user in users { (user_row(user, &browser.session.user)) } }
                    } },
                }
                (add_user_form())
            }
        }
        section aria-labelledby="tokens-title" {
            h2 id="tokens-title" { @if admin { "API tokens" } @else { "Your API tokens" } }
            p class="muted" { "A token acts for its user, never above its role cap; CI sends it as "
                code { "Authorization: Bearer bta_…" } ". Its secret is shown once, when it is made." }
            @match &tokens {
                Err(err) => (layout::refusal(err)),
                Ok(tokens) if tokens.is_empty() => p class="empty" { "No API token yet." },
                Ok(tokens) => div class="scroll" role="region" tabindex="0" aria-label="API tokens table" { table class="stages tokens" {
                    thead { tr { th scope="col" { "Name" } @if admin { th scope="col" { "User" } }
                        th scope="col" { "Starts with" } th scope="col" { "Role cap" } th scope="col" { "State" }
                        th scope="col" { "Made" } th scope="col" { "Expires" } th scope="col" { "Last used" }
                        th scope="col" { span class="visually-hidden" { "Actions" } } } }
                    tbody { @for token in tokens { (token_row(token, admin)) } }
                } },
            }
            (new_token_form(browser.session.role))
        }
    };
    layout::page(title, Some(&browser.session), Nav::People, main)
}

fn role_options(selected: Option<Role>, up_to: Role) -> Markup {
    html! {
        @for role in ROLES.into_iter().filter(|role| *role <= up_to) {
            option value=(role.as_str()) selected[selected == Some(role)] { (role.as_str()) }
        }
    }
}

fn user_row(user: &UserView, me: &str) -> Markup {
    let role = user.role.parse::<Role>().ok();
    let select_id = format!("role-{}", user.name);
    html! {
        tr data-user=(user.name) {
            td { strong { (user.name) } @if user.name == me { " " span class="muted" { "(you)" } }
                @if let Some(email) = &user.email { br; span class="muted" { (email) } } }
            td class="inline" {
                label for=(select_id) class="visually-hidden" { "Role of " (user.name) }
                select id=(select_id) name="role" { (role_options(role, Role::Admin)) }
                button type="button" data-action="set-role" { "Change" }
            }
            td { @if user.disabled { span class="status s-stopped" { "disabled" } } @else { span class="status s-done" { "enabled" } } }
            td { @if user.password_set { "set" } @else { span class="muted" { "not set" } } }
            td { (user.api_tokens) }
            td { (layout::time(user.created_at)) br; span class="muted" { "by " (user.created_by) } }
            td class="actions" {
                @if user.disabled { button type="button" data-action="enable" { "Enable" } }
                @else { button type="button" data-action="disable" { "Disable" } }
                button type="button" data-action="setup-link" { "Setup link" }
                button type="button" class="danger" data-action="remove" { "Remove" }
            }
        }
    }
}

fn add_user_form() -> Markup {
    html! {
        h3 { "Add a user" }
        form id="add-user" class="filters" {
            div { label for="new-name" { "Name" }
                input id="new-name" name="name" required maxlength="63" pattern=(NAME_PATTERN) autocomplete="off"
                    aria-describedby="new-name-hint"; }
            div { label for="new-role" { "Role" } select id="new-role" name="role" { (role_options(Some(Role::Viewer), Role::Admin)) } }
            div { label for="new-email" { "Email (optional)" } input id="new-email" name="email" type="email" maxlength="254"; }
            div { button type="submit" class="primary" { "Add user" } }
        }
        p id="new-name-hint" class="hint" { "Letters, digits, dot, dash and underscore. The new user chooses a web password from a setup link." }
    }
}

fn token_row(token: &ApiTokenView, admin: bool) -> Markup {
    html! {
        tr data-token=(token.id) data-name=(token.name) {
            td { strong { (token.name) } }
            @if admin { td { (token.user) } }
            td { code { (token.prefix) "…" } }
            td { (token.role_cap.as_deref().unwrap_or("-")) }
            td { span class=(format!("status s-{}", if token.state == "valid" { "done" } else { "stopped" })) { (token.state) } }
            td { (layout::time(token.created_at)) }
            td { @if let Some(at) = token.expires_at { (layout::time(at)) } @else { "never" } }
            td { @if let Some(at) = token.last_used_at { (layout::time(at)) } @else { "never" } }
            td class="actions" { @if token.state == "valid" {
                button type="button" class="danger" data-action="revoke" { "Revoke" }
            } }
        }
    }
}

fn new_token_form(role: Role) -> Markup {
    html! {
        h3 { "Make an API token" }
        form id="new-token" class="filters" {
            div { label for="token-name" { "Name" }
                input id="token-name" name="name" required maxlength="64" pattern=(NAME_PATTERN) autocomplete="off" placeholder="ci"; }
            div { label for="token-expires" { "Expires after" }
                select id="token-expires" name="expires" {
                    option value="30d" { "30 days" } option value="90d" selected { "90 days" }
                    option value="365d" { "1 year" } option value="" { "never" }
                } }
            div { label for="token-cap" { "Role cap" }
                select id="token-cap" name="role_cap" { option value="" { "none (your role)" } (role_options(None, role)) } }
            div { button type="submit" class="primary" { "Make token" } }
        }
    }
}
