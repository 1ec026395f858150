//! The Deployments page (`/`): "My deployments" and "All deployments",
//! searched (app, id prefix, version, commit, user), filtered by status
//! and environment, sorted by creation, status or name, 50 to a page with
//! links that hold their place; each row with what the caller's role may
//! do to it. The list is `ops::deployments::list`, as for the API; the
//! script keeps rows live from `/api/v1/events` and sends actions to the
//! API with the session's CSRF token.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use berth_shared::id::DeploymentId;
use berth_shared::record::Deployment;
use berth_shared::state::{DEPLOYMENT_STATUSES, DeploymentStatus};
use maud::{Markup, html};

use super::auth::Browser;
use super::layout::{self, Nav, may_operate};
use crate::http::Api;
use crate::http::query::Params;
use crate::ops::{self, Error};

/// Rows on a page.
pub const PAGE_SIZE: u32 = 50;
/// The deepest page offset a link may ask for.
const MAX_OFFSET: u64 = 1_000_000;

/// What the page was asked to show.
#[derive(Default)]
struct View {
    mine: bool,
    /// Only this app (exactly; the search matches parts of names).
    app: String,
    search: String,
    status: String,
    environment: String,
    sort: String,
    ascending: bool,
    offset: u32,
    /// The listing's snapshot: only deployments made up to this id, so that
    /// new ones do not shift the later pages. A first page takes the
    /// current moment; its paging links carry it on.
    until: Option<DeploymentId>,
}

impl View {
    fn parse(query: Option<&str>) -> Result<View, Error> {
        let mut params = Params::parse(query.unwrap_or_default())?;
        let status = params.one("status")?.unwrap_or_default();
        if !status.is_empty() && !DEPLOYMENT_STATUSES.iter().any(|s| s.as_str() == status) {
            return Err(Error::invalid(format!(
                "status `{}` is not a deployment status",
                berth_shared::text::clip(&status, 40)
            )));
        }
        let sort = params.one("sort")?.unwrap_or_default();
        if !matches!(sort.as_str(), "" | "created" | "status" | "app") {
            return Err(Error::invalid("sort is created, status or app"));
        }
        let view = View {
            mine: params.one("view")?.as_deref() == Some("mine"),
            app: params.one("app")?.unwrap_or_default(),
            search: params.one("q")?.unwrap_or_default(),
            status,
            environment: params.one("environment")?.unwrap_or_default(),
            sort,
            ascending: params.one("order")?.as_deref() == Some("asc"),
            offset: params.number("offset", MAX_OFFSET)?.unwrap_or(0) as u32,
            until: params
                .one("until")?
                .map(|id| ops::parse_deployment_id(&berth_shared::text::clip(&id, 40)))
                .transpose()?,
        };
        Ok(view)
    }

    /// This view's link with another offset.
    fn link(&self, offset: u32) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if self.mine {
            query.append_pair("view", "mine");
        }
        for (name, value) in [
            ("app", &self.app),
            ("q", &self.search),
            ("status", &self.status),
            ("environment", &self.environment),
            ("sort", &self.sort),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        if self.ascending {
            query.append_pair("order", "asc");
        }
        if offset > 0 {
            query.append_pair("offset", &offset.to_string());
            if let Some(until) = self.until {
                query.append_pair("until", &until.to_string());
            }
        }
        let query = query.finish();
        if query.is_empty() {
            "/".into()
        } else {
            format!("/?{query}")
        }
    }

    /// Whether new deployments belong at the top of this page.
    fn is_newest_first(&self) -> bool {
        self.offset == 0
            && self.until.is_none()
            && !self.ascending
            && matches!(self.sort.as_str(), "" | "created")
    }
}

/// `GET /`.
pub async fn page(
    State(api): State<Arc<Api>>,
    browser: Browser,
    RawQuery(query): RawQuery,
) -> Response {
    let view = View::parse(query.as_deref());
    let snapshot = DeploymentId::last_of(berth_shared::time::now_ms().max(0) as u64);
    let listed = match &view {
        Ok(view) => {
            let request = ops::deployments::ListRequest {
                statuses: view
                    .status
                    .split_terminator(',')
                    .map(str::to_string)
                    .take(1)
                    .collect(),
                app: view.app.clone(),
                environment: view.environment.clone(),
                triggered_by: if view.mine {
                    "me".into()
                } else {
                    String::new()
                },
                search: view.search.clone(),
                sort: view.sort.clone(),
                ascending: view.ascending,
                offset: view.offset,
                until: Some(view.until.unwrap_or(snapshot)),
                // One more than a page says whether there is a next one.
                limit: PAGE_SIZE + 1,
            };
            ops::deployments::list(&api.context, &browser.caller, request).await
        }
        Err(err) => Err(err.clone()),
    };
    let view = view.unwrap_or_default();
    let paging = View {
        until: Some(view.until.unwrap_or(snapshot)),
        ..clone_of(&view)
    };
    let main = html! {
        h1 { "Deployments" }
        (tabs(&view))
        (filters(&view))
        @match &listed {
            Ok(rows) => (table(&view, &paging, rows, &browser.caller, may_operate(browser.session.role))),
            Err(err) => (layout::refusal(err)),
        }
    };
    layout::page(
        "Deployments",
        Some(&browser.session),
        Nav::Deployments,
        main,
    )
}

fn tabs(view: &View) -> Markup {
    let mine = View {
        mine: true,
        offset: 0,
        ..clone_of(view)
    };
    let all = View {
        mine: false,
        offset: 0,
        ..clone_of(view)
    };
    html! {
        nav class="tabs" aria-label="Whose deployments" {
            a href=(mine.link(0)) aria-current=[view.mine.then_some("page")] { "My deployments" }
            a href=(all.link(0)) aria-current=[(!view.mine).then_some("page")] { "All deployments" }
        }
    }
}

fn clone_of(view: &View) -> View {
    View {
        mine: view.mine,
        app: view.app.clone(),
        search: view.search.clone(),
        status: view.status.clone(),
        environment: view.environment.clone(),
        sort: view.sort.clone(),
        ascending: view.ascending,
        offset: view.offset,
        until: view.until,
    }
}

fn filters(view: &View) -> Markup {
    html! {
        form class="filters" method="get" action="/" role="search" {
            @if view.mine { input type="hidden" name="view" value="mine"; }
            @if !view.app.is_empty() {
                div class="only-app" {
                    input type="hidden" name="app" value=(view.app);
                    span { "App " strong { (view.app) } " " }
                    a href=(View { app: String::new(), offset: 0, ..clone_of(view) }.link(0)) { "show every app" }
                }
            }
            div {
                label for="q" { "Search" }
                input id="q" name="q" type="search" value=(view.search)
                    placeholder="app, id, version, commit or user";
            }
            div {
                label for="status" { "Status" }
                select id="status" name="status" {
                    option value="" selected[view.status.is_empty()] { "any" }
                    @for status in DEPLOYMENT_STATUSES {
                        option value=(status.as_str()) selected[view.status == status.as_str()] { (status.as_str()) }
                    }
                }
            }
            div {
                label for="environment" { "Environment" }
                input id="environment" name="environment" value=(view.environment) placeholder="any";
            }
            div {
                label for="sort" { "Sort by" }
                select id="sort" name="sort" {
                    option value="created" selected[matches!(view.sort.as_str(), "" | "created")] { "created" }
                    option value="status" selected[view.sort == "status"] { "status" }
                    option value="app" selected[view.sort == "app"] { "name" }
                }
            }
            div {
                label for="order" { "Order" }
                select id="order" name="order" {
                    option value="desc" selected[!view.ascending] { "newest / Z first" }
                    option value="asc" selected[view.ascending] { "oldest / A first" }
                }
            }
            button type="submit" { "Apply" }
        }
    }
}

/// The table of `rows`, with paging links that hold `paging`'s snapshot;
/// each row with the actions `viewer` may take.
fn table(
    view: &View,
    paging: &View,
    rows: &[Deployment],
    viewer: &ops::Caller,
    operator: bool,
) -> Markup {
    let more = rows.len() > PAGE_SIZE as usize;
    let rows = &rows[..rows.len().min(PAGE_SIZE as usize)];
    html! {
        // The table is there even when empty, so rows can arrive live.
        div class="scroll" role="region" tabindex="0" aria-label="Deployments table" {
            table class="deployments" data-live=[view.is_newest_first().then_some("prepend")]
                data-operator=[operator.then_some("yes")] {
                thead { tr {
                    th scope="col" { "ID" } th scope="col" { "App" } th scope="col" { "Environment" }
                    th scope="col" { "Version" } th scope="col" { "Status" } th scope="col" { "Hosts" }
                    th scope="col" { "Created" } th scope="col" { "By" } th scope="col" { "Actions" }
                } }
                tbody {
                    @for deployment in rows {
                        (row(deployment, operator, ops::approvals::may_approve(viewer, deployment)))
                    }
                }
            }
        }
        p class="empty" hidden[!rows.is_empty()] { "No deployments match." }
        nav class="pager" aria-label="Pages" {
            @if view.offset > 0 {
                a href=(paging.link(view.offset.saturating_sub(PAGE_SIZE))) rel="prev" { "← Previous" }
            }
            @if more {
                a href=(paging.link(view.offset + PAGE_SIZE)) rel="next" { "Next →" }
            }
        }
    }
}

/// The hosts a deployment ran on, by name, each once.
pub fn hosts_of(deployment: &Deployment) -> Vec<&str> {
    let mut hosts: Vec<&str> = deployment
        .tasks
        .iter()
        .map(|task| task.host.as_str())
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    hosts
}

/// One row; the script builds the same from an event (`deployments.js`).
fn row(deployment: &Deployment, operator: bool, approve: bool) -> Markup {
    let id = deployment.id.to_string();
    let status = deployment.status;
    html! {
        tr data-id=(id) data-app=(deployment.app) data-environment=(deployment.environment) data-status=(status.as_str())
            data-approve=[approve.then_some("yes")] {
            td { a href=(format!("/deployments/{id}")) { code { (id) } } }
            td class="clip" title=(deployment.app) { (deployment.app) }
            td class="clip" title=(deployment.environment) { (deployment.environment) }
            td class="clip" title=(deployment.version) { (deployment.version) }
            td { span class=(format!("status s-{}", status.as_str())) { (status.as_str()) } }
            td { (hosts_of(deployment).join(", ")) }
            td { (layout::time(deployment.created_at)) }
            td class="clip" title=(deployment.triggered_by) { (deployment.triggered_by) }
            td class="actions" { @if operator { (actions(status, approve)) } }
        }
    }
}

/// The actions an operator may take on a deployment in `status`, with
/// Approve when it waits for an approval the viewer may give.
fn actions(status: DeploymentStatus, approve: bool) -> Markup {
    use DeploymentStatus::*;
    let retry = matches!(status, Failed | Canceled | TimedOut);
    let redeploy = matches!(status, Deployed | Stopped | Superseded);
    let rollback = matches!(status, Deployed);
    let stop = matches!(status, Deployed);
    let cancel = status.is_running();
    let delete = !status.is_running() && status != Deleted;
    html! {
        @if approve { button type="button" data-action="approve" { "Approve" } }
        @if cancel { button type="button" data-action="cancel" { "Cancel" } }
        @if retry { button type="button" data-action="retry" title="Run it again with the same configuration" { "Update" } }
        @if redeploy { button type="button" data-action="redeploy" { "Redeploy" } }
        @if rollback { button type="button" data-action="rollback" { "Roll back" } }
        @if stop { button type="button" data-action="stop" { "Stop" } }
        @if delete { button type="button" class="danger" data-action="delete" { "Delete" } }
        @if !status.is_running() { button type="button" class="danger" data-action="purge" { "Purge" } }
    }
}
