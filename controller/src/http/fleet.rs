//! Routes that read the fleet: status, the controllers, agents, the audit
//! log, and who the caller is. Lists come wrapped in an object
//! (`{"agents": [...]}`) so fields can be added beside them.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use berth_shared::record::{AgentView, ControllerList, HostInspect, Timestamp};

use super::Api;
use super::auth::Authed;
use super::decode::PathText;
use super::error::ApiError;
use super::openapi::requests::{AuditParams, EnvironmentParam};
use super::openapi::responses::NotFound;
use super::query::Params;
use super::reply::{self, AgentList, AppList, AuditList, WhoAmI};
use crate::ops;

type Reply = Result<Response, ApiError>;

/// Audit entries a request gets when it names no limit (as `berth audit`).
const DEFAULT_AUDIT_LIMIT: u64 = 50;
/// Most audit entries one request gets.
const MAX_AUDIT_LIMIT: u64 = 10_000;

/// What runs where: one row per app and environment (`berth status`).
#[utoipa::path(get, path = "/api/v1/status", tag = "fleet", params(EnvironmentParam),
    responses((status = 200, description = "The apps", body = AppList)))]
pub async fn status(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    mut params: Params,
) -> Reply {
    let environment = params.one("environment")?.unwrap_or_default();
    params.finish()?;
    let apps = ops::status::status(&api.context, &caller, &environment)?;
    Ok(reply::ok(&AppList { apps }))
}

/// The controllers serving from the store, each with its agents, and
/// the holder of the once-per-store work (`berth status --controllers`).
#[utoipa::path(get, path = "/api/v1/controllers", tag = "fleet",
    responses((status = 200, description = "The controllers", body = ControllerList)))]
pub async fn controllers(State(api): State<Arc<Api>>, Authed(caller): Authed) -> Reply {
    let list = ops::controllers::list(&api.context, &caller)?;
    Ok(reply::ok(&list))
}

/// Every enrolled agent (`berth agents ls`).
#[utoipa::path(get, path = "/api/v1/agents", tag = "fleet",
    responses((status = 200, description = "The agents", body = AgentList)))]
pub async fn agents(State(api): State<Arc<Api>>, Authed(caller): Authed) -> Reply {
    let agents = ops::agents::list(&api.context, &caller)?;
    Ok(reply::ok(&AgentList { agents }))
}

/// One agent by name or id (`berth agents show`).
#[utoipa::path(get, path = "/api/v1/agents/{name}", tag = "fleet",
    params(("name" = String, Path, min_length = 1, max_length = 256, description = "The agent's name or id")),
    responses(
        (status = 200, description = "The agent", body = AgentView),
        (status = 404, response = NotFound),
    ))]
pub async fn agent(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(name): PathText,
) -> Reply {
    let agent = ops::agents::show(&api.context, &caller, &name)?;
    Ok(reply::ok(&agent))
}

/// What berth runs on one agent's host, asked live (`berth inspect`
/// for one host): containers, routes, running tasks and facts. An
/// online host has 5 s to answer.
#[utoipa::path(get, path = "/api/v1/agents/{name}/inspect", tag = "fleet",
    params(("name" = String, Path, min_length = 1, max_length = 256, description = "The agent's name")),
    responses(
        (status = 200, description = "The host's answer", body = HostInspect),
        (status = 404, response = NotFound),
    ))]
pub async fn inspect(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(name): PathText,
) -> Reply {
    let host = ops::agents::inspect_one(&api.context, &caller, &name).await?;
    Ok(reply::ok(&host))
}

/// The audit log, newest first (`berth audit`).
#[utoipa::path(get, path = "/api/v1/audit", tag = "fleet", params(AuditParams),
    responses((status = 200, description = "The entries", body = AuditList)))]
pub async fn audit(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    mut params: Params,
) -> Reply {
    let target = params.one("target")?.unwrap_or_default();
    let limit = params
        .number("limit", MAX_AUDIT_LIMIT)?
        .unwrap_or(DEFAULT_AUDIT_LIMIT) as u32;
    params.finish()?;
    let entries = ops::deployments::audit_log(&api.context, &caller, &target, limit)?;
    Ok(reply::ok(&AuditList { entries }))
}

/// Who the caller is, and whether the store has a problem.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "people",
    responses((status = 200, description = "The caller", body = WhoAmI)))]
pub async fn whoami(State(api): State<Arc<Api>>, Authed(caller): Authed) -> Reply {
    let me = ops::auth::who_am_i(&api.context, &caller)?;
    Ok(reply::ok(&WhoAmI {
        principal: me.principal,
        role: me.role.into(),
        via_token: me.via_token,
        store_problem: me.store_problem,
        store_problem_since: me
            .store_problem_since_ms
            .map(|ms| Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))),
    }))
}
