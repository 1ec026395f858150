//! Routes for people: users (admins only) and API tokens (each user its
//! own; admins everyone's). The same operations as `berth users` and
//! `berth api-tokens`; the dashboard's Users and tokens page calls these.
//! A secret (an API token, a setup link) is in the one answer that makes
//! it, never in a listing.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use berth_shared::record::{CreatedApiToken, Timestamp, UserView};
use serde::Serialize;
use utoipa::ToSchema;

use super::Api;
use super::auth::Authed;
use super::decode::{Fields, JsonBody, PathText};
use super::error::ApiError;
use super::openapi::requests::{NewApiTokenBody, NewUserBody, SetupLinkBody, UserChangeBody};
use super::openapi::responses::{Conflict, NotFound};
use super::reply::{self, ApiTokenList, UserList};
use crate::ops::api_tokens::NewApiToken;
use crate::ops::users::NewUser;
use crate::ops::{self, Error};
use crate::store::Role;

type Reply = Result<Response, ApiError>;

/// A one-time setup link: its URL holds the secret, shown once.
#[derive(Serialize, ToSchema)]
pub struct SetupLinkReply {
    pub user: String,
    pub url: String,
    pub expires_at: Timestamp,
}

fn role(body: &mut Fields, name: &str) -> Result<Option<Role>, Error> {
    body.string(name)?
        .map(|text| {
            text.parse::<Role>().map_err(|_| {
                Error::invalid(format!(
                    "field `{name}` is `{}`; it is one of viewer, operator or admin",
                    berth_shared::text::clip(&text, 40)
                ))
            })
        })
        .transpose()
}

fn lifetime(body: &mut Fields) -> Result<Option<Duration>, Error> {
    body.string("expires")?
        .map(|text| {
            berth_shared::time::parse_duration(&berth_shared::text::clip(&text, 40))
                .map_err(|err| Error::invalid(format!("field `expires`: {err}")))
        })
        .transpose()
}

/// Every user (admins only).
#[utoipa::path(get, path = "/api/v1/users", tag = "people",
    responses((status = 200, description = "The users", body = UserList)))]
pub async fn users(State(api): State<Arc<Api>>, Authed(caller): Authed) -> Reply {
    let users = ops::users::list(&api.context, &caller)?;
    Ok(reply::ok(&UserList { users }))
}

/// Adds a user (`berth users add`; admins only).
#[utoipa::path(post, path = "/api/v1/users", tag = "people",
    request_body(content = NewUserBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The user", body = UserView),
        (status = 409, response = Conflict),
    ))]
pub async fn add_user(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    JsonBody(mut body): JsonBody,
) -> Reply {
    let request = NewUser {
        name: body.required_string("name")?,
        role: role(&mut body, "role")?.unwrap_or(Role::Viewer),
        email: body.string("email")?,
    };
    body.finish()?;
    let user = ops::users::add(&api.context, &caller, request).await?;
    Ok(reply::json(StatusCode::CREATED, &user))
}

/// Changes a user's role, or disables or enables it (`berth users
/// set-role|disable|enable`; admins only).
#[utoipa::path(patch, path = "/api/v1/users/{name}", tag = "people",
    params(("name" = String, Path, min_length = 1, max_length = 64, description = "The user's name")),
    request_body(content = UserChangeBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ))]
pub async fn change_user(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(name): PathText,
    JsonBody(mut body): JsonBody,
) -> Reply {
    let new_role = role(&mut body, "role")?;
    let disabled = body.optional_flag("disabled")?;
    body.finish()?;
    let mut user = None;
    if let Some(new_role) = new_role {
        user = Some(ops::users::set_role(&api.context, &caller, &name, new_role).await?);
    }
    if let Some(disabled) = disabled {
        user = Some(ops::users::set_disabled(&api.context, &caller, &name, disabled).await?);
    }
    let user =
        user.ok_or_else(|| Error::invalid("name `role` or `disabled` (or both) to change"))?;
    Ok(reply::ok(&user))
}

/// Removes a user and its API tokens (`berth users rm`; admins only).
#[utoipa::path(delete, path = "/api/v1/users/{name}", tag = "people",
    params(("name" = String, Path, min_length = 1, max_length = 64, description = "The user's name")),
    responses(
        (status = 200, description = "The removed user", body = UserView),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ))]
pub async fn remove_user(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(name): PathText,
) -> Reply {
    let user = ops::users::remove(&api.context, &caller, &name).await?;
    Ok(reply::ok(&user))
}

/// A one-time link for the user to choose a web password (`berth users
/// setup-link`; admins only). A newer link replaces an older one.
#[utoipa::path(post, path = "/api/v1/users/{name}/setup-link", tag = "people",
    params(("name" = String, Path, min_length = 1, max_length = 64, description = "The user's name")),
    request_body(content = Option<SetupLinkBody>, content_type = "application/json"),
    responses(
        (status = 201, description = "The link, shown once", body = SetupLinkReply),
        (status = 404, response = NotFound),
    ))]
pub async fn setup_link(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(name): PathText,
    JsonBody(mut body): JsonBody,
) -> Reply {
    let ttl = lifetime(&mut body)?;
    body.finish()?;
    let link = ops::setup_links::create(&api.context, &caller, &name, ttl).await?;
    let link = SetupLinkReply {
        user: link.user,
        url: link.url,
        expires_at: link.expires_at,
    };
    Ok(reply::json(StatusCode::CREATED, &link))
}

/// The caller's API tokens (an admin's: everyone's), never a secret.
#[utoipa::path(get, path = "/api/v1/api-tokens", tag = "people",
    responses((status = 200, description = "The tokens", body = ApiTokenList)))]
pub async fn api_tokens(State(api): State<Arc<Api>>, Authed(caller): Authed) -> Reply {
    let tokens = ops::api_tokens::list(&api.context, &caller)?;
    Ok(reply::ok(&ApiTokenList { api_tokens: tokens }))
}

/// Makes an API token for the caller (`berth api-tokens create`). Its
/// secret is in this answer only. An API token cannot make another.
#[utoipa::path(post, path = "/api/v1/api-tokens", tag = "people",
    request_body(content = NewApiTokenBody, content_type = "application/json"),
    responses((status = 201, description = "The token, shown once", body = CreatedApiToken)))]
pub async fn create_api_token(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    JsonBody(mut body): JsonBody,
) -> Reply {
    let request = NewApiToken {
        name: body.required_string("name")?,
        expires_in: lifetime(&mut body)?.unwrap_or_default(),
        role_cap: role(&mut body, "role_cap")?,
    };
    body.finish()?;
    let token = ops::api_tokens::create(&api.context, &caller, request).await?;
    Ok(reply::json(StatusCode::CREATED, &token))
}

/// Revokes an API token: refused from the next call on (`berth
/// api-tokens revoke`). Users revoke their own; admins anyone's.
#[utoipa::path(delete, path = "/api/v1/api-tokens/{id}", tag = "people",
    params(("id" = String, Path, min_length = 1, max_length = 64, description = "The token's id")),
    responses(
        (status = 200, description = "The revoked token", body = berth_shared::record::ApiTokenView),
        (status = 404, response = NotFound),
    ))]
pub async fn revoke_api_token(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(id): PathText,
) -> Reply {
    let token = ops::api_tokens::revoke(&api.context, &caller, &id).await?;
    Ok(reply::ok(&token))
}
