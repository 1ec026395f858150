//! Routes of git push hooks: the one git hosts call
//! (`POST /api/v1/hooks/git/{id}`, no token: the delivery's signature or
//! GitLab's token is the credential), and the hooks' own (operators add
//! and remove them, anyone signed in lists them).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_shared::record::{CreatedHook, HookView};

use super::Api;
use super::auth::Authed;
use super::decode::{JsonBody, PathText};
use super::error::ApiError;
use super::error::ErrorReply;
use super::openapi::requests::{HookPath, NewHookBody};
use super::openapi::responses::NotFound;
use super::reply::{self, HookList};
use crate::ops;
use crate::ops::hooks::AddHook;

type Reply = Result<Response, ApiError>;

/// Takes a git host's push (GitHub, GitLab, Gitea or Forgejo), checked by
/// its signature or token; `202` with the push when it is to be deployed,
/// `200` when it is ignored (a ping, another ref), `401 hook/signature`,
/// `409 hook/replayed`.
#[utoipa::path(post, path = "/api/v1/hooks/git/{id}", tag = "hooks", params(HookPath),
    request_body(content = String, content_type = "application/json", description = "The git host's push event, as it sends it"),
    security(()),
    responses(
        (status = 202, description = "Accepted: a build agent fetches the commit and it is deployed"),
        (status = 200, description = "Ignored, with the reason"),
        (status = 401, description = "No signature or token, one that does not match, or no such hook (`hook/signature`)", body = ErrorReply),
        (status = 409, description = "A delivery id accepted before (`hook/replayed`)", body = ErrorReply),
    ))]
pub async fn receive(
    State(api): State<Arc<Api>>,
    PathText(id): PathText,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    };
    let received = ops::hooks::receive(&api.context, &id, header, &body).await?;
    let status = if received.outcome == "accepted" {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let mut response = reply::ok(&received);
    *response.status_mut() = status;
    Ok(response.into_response())
}

/// Adds a hook (`berth hook add`; operators); the answer holds its secret,
/// which no later answer shows.
#[utoipa::path(post, path = "/api/v1/hooks", tag = "hooks",
    request_body(content = NewHookBody, content_type = "application/json"),
    responses((status = 200, description = "The hook, the path to give the git host and the secret", body = CreatedHook)))]
pub async fn add(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    JsonBody(mut body): JsonBody,
) -> Reply {
    let request = AddHook {
        app: body.required_string("app")?,
        environment: body.required_string("environment")?,
        git_ref: body.required_string("ref")?,
        repo: body.required_string("repo")?,
        path: body.string("path")?,
        provider: body.string("provider")?.unwrap_or_default(),
        credential: body.string("credential")?,
        build_labels: body.string("build_labels")?.unwrap_or_default(),
    };
    body.finish()?;
    let created = ops::hooks::add(&api.context, &caller, request).await?;
    Ok(reply::ok(&created))
}

/// Every hook with its latest pushes (`berth hook ls`).
#[utoipa::path(get, path = "/api/v1/hooks", tag = "hooks",
    responses((status = 200, description = "The hooks", body = HookList)))]
pub async fn list(State(api): State<Arc<Api>>, Authed(caller): Authed) -> Reply {
    let hooks = ops::hooks::list(&api.context, &caller)?;
    Ok(reply::ok(&HookList { hooks }))
}

/// Removes a hook (`berth hook rm`; operators).
#[utoipa::path(delete, path = "/api/v1/hooks/{id}", tag = "hooks", params(HookPath),
    responses(
        (status = 200, description = "The hook as it was", body = HookView),
        (status = 404, response = NotFound),
    ))]
pub async fn remove(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(id): PathText,
) -> Reply {
    let removed = ops::hooks::remove(&api.context, &caller, &id).await?;
    Ok(reply::ok(&removed))
}
