//! Reading deployments (get, list, the app's current one), and the
//! actions that end one (cancel) or forget it (purge), and the audit log.

use berth_shared::id::DeploymentId;
use berth_shared::query::Sort;
use berth_shared::record::Deployment;
pub use berth_shared::record::Purged;
use berth_shared::state::DeploymentStatus;
use tracing::info;

use super::{Caller, Error, Result};
use crate::server::Context;
use crate::store::{AuditEntry, ListQuery, Role};

/// Most deployments one list returns.
pub const MAX_LIST_LIMIT: u32 = 1000;
/// Deployments a list returns when it names no limit.
pub const DEFAULT_LIST_LIMIT: u32 = crate::store::DEFAULT_LIMIT as u32;
/// Longest free-text search, in characters.
const MAX_SEARCH_CHARS: usize = 200;
/// Largest `offset`, so one call cannot make the store walk without end.
const MAX_LIST_OFFSET: u32 = 1_000_000;

/// A page of deployments, as a request asks for it; empty strings and
/// zeros mean "any" and "the default".
#[derive(Clone, Debug, Default)]
pub struct ListRequest {
    pub app: String,
    pub environment: String,
    /// Status names (`failed`, `deployed`, ...); any of them.
    pub statuses: Vec<String>,
    pub limit: u32,
    /// A user's name (its deployments by any credential), or `me`.
    pub triggered_by: String,
    pub search: String,
    /// A [`Sort`] name; empty for the default (newest first).
    pub sort: String,
    pub ascending: bool,
    pub offset: u32,
    /// Only deployments made up to this one (a listing's snapshot, which
    /// holds its pages in place while new deployments arrive).
    pub until: Option<DeploymentId>,
}

/// One deployment.
pub fn get(context: &Context, caller: &Caller, id: DeploymentId) -> Result<Deployment> {
    caller.require(Role::Viewer)?;
    Ok(context.store.get_deployment(id)?)
}

/// The newest deployment of an app in its environment (the only one when
/// none is named): what `berth logs APP` means.
pub fn current(
    context: &Context,
    caller: &Caller,
    app: &str,
    environment: &str,
) -> Result<Deployment> {
    caller.require(Role::Viewer)?;
    super::resolve::current_deployment(context, app, environment)
}

/// A page of deployments.
pub async fn list(
    context: &Context,
    caller: &Caller,
    request: ListRequest,
) -> Result<Vec<Deployment>> {
    caller.require(Role::Viewer)?;
    let mut request = request;
    if request.triggered_by == "me" {
        request.triggered_by = caller.principal.name.clone();
    }
    let query = list_query(request)?;
    // A search or a sort by status or app may read many index keys.
    let store = context.store.clone();
    tokio::task::spawn_blocking(move || store.list_deployments(&query))
        .await
        .map_err(|err| Error::new(super::Code::Internal, format!("list deployments: {err}")))?
        .map_err(Error::from)
}

/// Checks a list request and turns it into a store query.
fn list_query(request: ListRequest) -> Result<ListQuery> {
    let statuses = request
        .statuses
        .iter()
        .map(|status| status.parse::<DeploymentStatus>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| Error::invalid(format!("status: {err}")))?;
    let sort = match request.sort.as_str() {
        "" => Sort::default(),
        text => text
            .parse::<Sort>()
            .map_err(|err| Error::invalid(format!("sort: {err}")))?,
    };
    if request.search.chars().count() > MAX_SEARCH_CHARS {
        return Err(Error::invalid(format!(
            "search: at most {MAX_SEARCH_CHARS} characters"
        )));
    }
    if request.offset > MAX_LIST_OFFSET {
        return Err(Error::invalid(format!(
            "offset: at most {MAX_LIST_OFFSET}; narrow the query with filters instead"
        )));
    }
    let given = |text: String| Some(text).filter(|text| !text.is_empty());
    Ok(ListQuery {
        app: given(request.app),
        environment: given(request.environment),
        statuses,
        // 0 asks for the store's default page size.
        limit: request.limit.min(MAX_LIST_LIMIT) as usize,
        triggered_by: given(request.triggered_by),
        search: given(request.search),
        sort,
        ascending: request.ascending,
        offset: request.offset as usize,
        until: request.until,
    })
}

/// `berth cancel`: stops a running (or queued, or held) deployment on
/// every host; on a settled deployment whose stop, redeploy or start waits
/// for an approval, withdraws that request.
pub async fn cancel(context: &Context, caller: &Caller, id: DeploymentId) -> Result<Deployment> {
    caller.require(Role::Operator)?;
    let current = context.store.get_deployment(id)?;
    if !current.status.is_running()
        && current
            .approval
            .as_ref()
            .is_some_and(|approval| approval.is_pending())
    {
        return super::approvals::withdraw(context, caller, id).await;
    }
    let who = caller.who();
    let deployment = context
        .dispatcher
        .halt(id, DeploymentStatus::Canceled, format!("canceled by {who}"))
        .await?;
    info!(deployment_id = %id, %who, "deployment canceled");
    audit(context, &who, "cancel", &deployment, "canceled").await?;
    Ok(deployment)
}

/// `berth purge`: forgets a settled deployment's record and logs.
pub async fn purge(context: &Context, caller: &Caller, id: DeploymentId) -> Result<Purged> {
    caller.require(Role::Operator)?;
    let (deployment, lines) = context.store.purge_deployment(id)?;
    let who = caller.who();
    audit(context, &who, "purge", &deployment, "purged").await?;
    info!(deployment_id = %id, %who, log_lines = lines, "deployment purged");
    Ok(Purged {
        id,
        app: deployment.app,
        environment: deployment.environment,
        purged: true,
        log_lines_removed: lines,
    })
}

/// Writes the audit entry of a change to `deployment` and makes it
/// durable with the change.
pub(super) async fn audit(
    context: &Context,
    who: &str,
    action: &str,
    deployment: &Deployment,
    outcome: &str,
) -> Result<()> {
    audit_change(context, who, action, deployment, outcome)?;
    context.store.flush().await?;
    Ok(())
}

/// Writes the audit entry of a change to `deployment` (target `APP ENV
/// ID`), not yet flushed.
pub(super) fn audit_change(
    context: &Context,
    who: &str,
    action: &str,
    deployment: &Deployment,
    outcome: &str,
) -> Result<()> {
    let target = format!(
        "{} {} {}",
        deployment.app, deployment.environment, deployment.id
    );
    context.store.audit(who, action, &target, outcome)?;
    Ok(())
}

/// The newest `limit` audit entries, only those about `target` unless it
/// is empty.
pub fn audit_log(
    context: &Context,
    caller: &Caller,
    target: &str,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    caller.require(Role::Viewer)?;
    let limit = limit.clamp(1, 10_000) as usize;
    if target.len() > 200 {
        return Err(Error::invalid(
            "the audit target filter is longer than 200 characters",
        ));
    }
    let entries = context
        .store
        .audit_entries(if target.is_empty() { limit } else { 100_000 })?;
    Ok(entries
        .into_iter()
        .filter(|entry| entry.target.contains(target))
        .take(limit)
        .collect())
}
