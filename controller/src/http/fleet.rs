//! Routes that read the fleet and its people: status, agents, the audit
//! log, users, API tokens, and who the caller is. Lists come wrapped in an
//! object (`{"agents": [...]}`) so fields can be added beside them.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use berth_shared::record::Timestamp;
use serde_json::json;

use super::Api;
use super::auth::Authed;
use super::decode::PathText;
use super::error::ApiError;
use super::query::Params;
use super::reply;
use crate::ops;

type Reply = Result<Response, ApiError>;

/// Audit entries a request gets when it names no limit (as `berth audit`).
const DEFAULT_AUDIT_LIMIT: u64 = 50;
/// Most audit entries one request gets.
const MAX_AUDIT_LIMIT: u64 = 10_000;

pub async fn status(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    mut params: Params,
) -> Reply {
    let environment = params.one("environment")?.unwrap_or_default();
    params.finish()?;
    let apps = ops::status::status(&api.context, &caller, &environment)?;
    Ok(reply::ok(&json!({ "apps": apps })))
}

pub async fn agents(State(api): State<Arc<Api>>, Authed(caller): Authed) -> Reply {
    let agents = ops::agents::list(&api.context, &caller)?;
    Ok(reply::ok(&json!({ "agents": agents })))
}

pub async fn agent(
    State(api): State<Arc<Api>>,
    Authed(caller): Authed,
    PathText(name): PathText,
) -> Reply {
    let agent = ops::agents::show(&api.context, &caller, &name)?;
    Ok(reply::ok(&agent))
}

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
    Ok(reply::ok(&json!({ "entries": entries })))
}

pub async fn users(State(api): State<Arc<Api>>, Authed(caller): Authed) -> Reply {
    let users = ops::users::list(&api.context, &caller)?;
    Ok(reply::ok(&json!({ "users": users })))
}

pub async fn api_tokens(State(api): State<Arc<Api>>, Authed(caller): Authed) -> Reply {
    let tokens = ops::api_tokens::list(&api.context, &caller)?;
    Ok(reply::ok(&json!({ "api_tokens": tokens })))
}

pub async fn whoami(State(api): State<Arc<Api>>, Authed(caller): Authed) -> Reply {
    let me = ops::auth::who_am_i(&api.context, &caller)?;
    Ok(reply::ok(&json!({
        "principal": me.principal,
        "role": me.role,
        "via_token": me.via_token,
        "store_problem": me.store_problem,
        "store_problem_since": me
            .store_problem_since_ms
            .map(|ms| Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))),
    })))
}
