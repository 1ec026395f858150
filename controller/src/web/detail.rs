//! A deployment's page (`/deployments/{id}`): its status and error, where
//! it came from (commit, ref, message, build URL, trigger, who), each
//! host's stages with durations and exit codes, what it made and the
//! variables it ran with (`made.rs`), its history, the manifest it ran
//! with, and its live log. The record is `ops::deployments::get`,
//! as for the API; the script follows the log over the API's event stream
//! (`/api/v1/deployments/{id}/logs?follow=true`) with the filters chosen.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_shared::record::{Approval, Deployment, Task};
use maud::{Markup, html};

use super::auth::Browser;
use super::layout::{self, Nav};
use crate::http::Api;
use crate::ops;

fn duration(ms: Option<u64>) -> String {
    match ms {
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) => format!("{:.1} s", ms as f64 / 1000.0),
        None => "-".into(),
    }
}

/// `GET /deployments/{id}`.
pub async fn page(
    State(api): State<Arc<Api>>,
    browser: Browser,
    Path(id): Path<String>,
) -> Response {
    let found = ops::parse_deployment_id(&berth_shared::text::clip(&id, 40))
        .and_then(|id| ops::deployments::get(&api.context, &browser.caller, id));
    match found {
        Ok(deployment) => {
            let title = format!("{} {}", deployment.app, deployment.version);
            let approve = ops::approvals::may_approve(&browser.caller, &deployment);
            layout::page(
                &title,
                Some(&browser.session),
                Nav::Deployments,
                body(&deployment, approve),
            )
        }
        Err(err) => {
            let main = html! {
                h1 { "No such deployment" }
                (layout::refusal(&err))
                p { a href="/" { "All deployments" } }
            };
            let mut response =
                layout::page("Not found", Some(&browser.session), Nav::Deployments, main);
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    }
}

fn body(deployment: &Deployment, approve: bool) -> Markup {
    let status = deployment.status.as_str();
    let id = deployment.id.to_string();
    html! {
        p class="crumbs" { a href="/" { "Deployments" } " / " code { (id) } }
        h1 { (deployment.app) " " span class="muted" { (deployment.version) } }
        div class="summary" data-deployment=(id) {
            span class=(format!("status s-{status}")) id="status" { (status) }
            span { "in " strong { (deployment.environment) } }
            span { "by " (deployment.triggered_by) }
            span { "created " (layout::time(deployment.created_at)) }
        }
        @if let Some(approval) = &deployment.approval {
            (approval_panel(deployment, approval, approve))
        }
        @if let Some(message) = &deployment.error_message {
            p class="error" role="alert" {
                @if let Some(step) = &deployment.error_step { "Failed at " strong { (step) } ": " }
                (message)
            }
        }
        section aria-labelledby="hosts" {
            h2 id="hosts" { "Hosts" }
            @if deployment.tasks.is_empty() { p class="muted" { "No host ran it (reported by another tool, or not started)." } }
            @for task in &deployment.tasks { (host(task)) }
        }
        section aria-labelledby="log-title" {
            h2 id="log-title" { "Log" }
            (log_panel(deployment))
        }
        section aria-labelledby="about" {
            h2 id="about" { "Where it came from" }
            dl class="facts" {
                dt { "Trigger" } dd { (deployment.trigger) }
                dt { "Commit" } dd { code { (deployment.commit_sha.as_deref().unwrap_or("-")) } }
                @if let Some(at) = deployment.commit_time {
                    dt { "Committed" } dd { (at) }
                }
                @if let Some(author) = &deployment.commit_author {
                    dt { "Author" } dd { (author) }
                }
                dt { "Ref" } dd { (deployment.source_ref.as_deref().unwrap_or("-")) }
                dt { "Message" } dd { (deployment.message.as_deref().unwrap_or("-")) }
                dt { "Build" } dd {
                    @match deployment.build_url.as_deref() {
                        Some(url) if url.starts_with("https://") || url.starts_with("http://") => a href=(url) rel="noopener noreferrer" { (url) },
                        Some(url) => (url),
                        None => "-",
                    }
                }
                dt { "Duration" } dd { (duration(deployment.duration_ms)) }
            }
        }
        (super::made::resources(deployment))
        (super::made::variables(deployment))
        section aria-labelledby="history" {
            h2 id="history" { "History" }
            ol class="history" {
                @for step in &deployment.transitions {
                    li {
                        (layout::time(step.at)) " " (step.subject) ": "
                        @if let Some(from) = &step.from { (from) " → " }
                        strong { (step.to) }
                        @if let Some(reason) = &step.reason { " (" (reason) ")" }
                    }
                }
            }
        }
        section aria-labelledby="manifest" {
            h2 id="manifest" { "Manifest" }
            pre class="manifest" { (deployment.manifest_toml) }
        }
    }
}

/// What the deployment waits for in its protected environment (or how its
/// approval went), with Approve for a viewer who may give it; the script
/// (`log.js`) sends it to the API and keeps it current.
fn approval_panel(deployment: &Deployment, approval: &Approval, approve: bool) -> Markup {
    let class = if approval.is_pending() {
        "approval waiting"
    } else {
        "approval"
    };
    html! {
        section class=(class) id="approval" aria-labelledby="approval-title" {
            h2 id="approval-title" { "Approval" }
            p id="approval-text" { (approval.text()) }
            @if approve {
                button type="button" data-action="approve" data-id=(deployment.id.to_string())
                    data-what=(format!("the {} of {} ({})", approval.action, deployment.app, deployment.environment)) {
                    "Approve"
                }
            }
        }
    }
}

fn host(task: &Task) -> Markup {
    html! {
        h3 { (task.host) " " span class=(format!("status s-{}", task.status.as_str())) { (task.status.as_str()) } }
        @if let Some(message) = &task.error_message { p class="error" { (message) } }
        table class="stages" {
            thead { tr { th scope="col" { "Stage" } th scope="col" { "Outcome" } th scope="col" { "Duration" } th scope="col" { "Exit code" } } }
            tbody {
                @for stage in &task.stages {
                    tr {
                        td { (stage.stage) }
                        td { (stage.outcome) @if let Some(error) = &stage.error { " — " (error) } }
                        td { (duration(stage.duration_ms)) }
                        td { (stage.exit_code.map(|code| code.to_string()).unwrap_or_else(|| "-".into())) }
                    }
                }
            }
        }
    }
}

fn log_panel(deployment: &Deployment) -> Markup {
    let hosts = super::deployments::hosts_of(deployment);
    let id = deployment.id.to_string();
    html! {
        form class="filters log-filters" id="log-filters" data-id=(id) {
            div { label for="log-level" { "Level" }
                select id="log-level" name="level" { option value="" { "all" } @for level in ["warn", "error"] { option value=(level) { (level) } } } }
            div { label for="log-stage" { "Stage" }
                select id="log-stage" name="stage" { option value="" { "any" } @for stage in ["setup", "build", "deploy", "health", "stop"] { option value=(stage) { (stage) } } } }
            div { label for="log-stream" { "Stream" }
                select id="log-stream" name="stream" { option value="" { "any" } option value="stdout" { "stdout" } option value="stderr" { "stderr" } } }
            div { label for="log-host" { "Host" }
                select id="log-host" name="host" { option value="" { "any" } @for host in hosts { option value=(host) { (host) } } } }
            div { label for="log-search" { "Find in the log" }
                input id="log-search" type="search" autocomplete="off"; }
            div class="check" { input id="log-follow" type="checkbox" checked; label for="log-follow" { "Follow" } }
            a href=(format!("/api/v1/deployments/{id}/logs")) download=(format!("{}-{id}.json", deployment.app)) { "Download" }
        }
        pre id="log" class="log" aria-live="off" tabindex="0" {}
        p id="log-state" class="muted" {}
    }
}
