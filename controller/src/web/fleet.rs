//! The read-only pages of what runs where: Status (`/status`: each app's
//! version per environment and per host, since when, healthy or not),
//! Fleet (`/fleet`: the agents, online or not, with labels, facts and
//! running tasks) and Audit (`/audit`: who changed what). Each is one
//! operation of the application layer, as `berth status`, `berth agents
//! ls` and `berth audit` call it.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use berth_shared::record::{AgentView, AppStatus, AuditEntry};
use maud::{Markup, html};

use super::auth::Browser;
use super::layout::{self, Nav};
use crate::http::Api;
use crate::ops;

/// Audit entries the page shows.
const AUDIT_ENTRIES: u32 = 200;

/// `GET /status`.
pub async fn status(State(api): State<Arc<Api>>, browser: Browser) -> Response {
    let rows = ops::status::status(&api.context, &browser.caller, "");
    let main = html! {
        h1 { "Status" }
        p class="muted" { "What runs in each environment, on each host." }
        @match &rows {
            Err(err) => (layout::refusal(err)),
            Ok(rows) if rows.is_empty() => p class="empty" { "Nothing is deployed yet." },
            Ok(rows) => { @for row in rows { (app_status(row)) } },
        }
    };
    layout::page("Status", Some(&browser.session), Nav::Status, main)
}

fn app_status(row: &AppStatus) -> Markup {
    html! {
        section class="app-status" {
            h2 {
                (row.app) " " span class="muted" { "in " (row.environment) }
                " " span class=(format!("status s-{}", row.status.as_str())) { (row.status.as_str()) }
            }
            p {
                "Version " strong { (row.version) } " since " (layout::time(row.since)) " — "
                a href=(format!("/deployments/{}", row.deployment_id)) { "deployment" }
                @if let Some(health) = &row.health { " · health: " (health) }
                @if let Some(running) = row.in_progress {
                    " · " a href=(format!("/deployments/{running}")) { "a deployment is in progress" }
                }
            }
            @if !row.host_states.is_empty() {
                div class="scroll" role="region" tabindex="0" aria-label=(format!("Hosts of {} in {}", row.app, row.environment)) { table class="stages" {
                    thead { tr { th scope="col" { "Host" } th scope="col" { "Version" } th scope="col" { "State" }
                        th scope="col" { "Health" } th scope="col" { "Since" } th scope="col" { "Last repair" } } }
                    tbody { @for host in &row.host_states { tr {
                        td { (host.host) @if !host.online { " " span class="muted" { "(offline, last known)" } } }
                        td { (host.version) }
                        td { (host.state)
                            @if !host.secrets_changed.is_empty() {
                                br; span class="warn" { "older secrets: " (host.secrets_changed.join(", ")) "; deploy again to use them" }
                            }
                        }
                        td { (host.health.as_deref().unwrap_or("-")) }
                        td { @if let Some(since) = host.since { (layout::time(since)) } @else { "-" } }
                        td { (host.last_repair.as_deref().unwrap_or("-")) }
                    }
                    @for resource in &host.resources { tr class="resource" {
                        td {}
                        td colspan="5" {
                            "resource " strong { (resource.name) } " " (resource.state) " · " span class="muted" { (resource.image) }
                            @if !resource.health.is_empty() { " · " (resource.health) }
                            @for volume in &resource.volumes { " · " span class="muted" { "volume " code { (volume) } } }
                        }
                    } } } }
                } }
            }
        }
    }
}

/// `GET /fleet`.
pub async fn fleet(State(api): State<Arc<Api>>, browser: Browser) -> Response {
    let agents = ops::agents::list(&api.context, &browser.caller);
    let main = html! {
        h1 { "Fleet" }
        @match &agents {
            Err(err) => (layout::refusal(err)),
            Ok(agents) if agents.is_empty() => p class="empty" { "No agent has joined yet (berth token create, then berth-agent join)." },
            Ok(agents) => div class="scroll" role="region" tabindex="0" aria-label="Agents table" { table class="stages fleet" {
                thead { tr { th scope="col" { "Agent" } th scope="col" { "State" } th scope="col" { "Labels" }
                    th scope="col" { "System" } th scope="col" { "Running" } th scope="col" { "Last seen" } } }
                tbody { @for agent in agents { (agent_row(agent)) } }
            } },
        }
    };
    layout::page("Fleet", Some(&browser.session), Nav::Fleet, main)
}

fn agent_row(agent: &AgentView) -> Markup {
    let state = if agent.online { "online" } else { "offline" };
    let labels: Vec<String> = agent
        .labels
        .iter()
        .chain(agent.auto_labels.iter())
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    html! {
        tr {
            td { a href=(format!("/fleet/{}", agent.name)) { strong { (agent.name) } } br; span class="muted" { (agent.version.as_deref().unwrap_or("")) } }
            td { span class=(format!("status s-{}", if agent.online { "done" } else { "stopped" })) { (state) } }
            td class="clip" title=(labels.join(", ")) { (labels.join(", ")) }
            td { @if let Some(facts) = &agent.facts {
                (facts.os) " " (facts.os_version) ", " (facts.cpus) " CPUs, "
                (facts.memory_total_bytes / (1 << 20)) " MiB"
            } @else { "-" } }
            td { (agent.running_tasks.len()) }
            td { @if let Some(seen) = agent.last_seen_at { (layout::time(seen)) } @else { "never" } }
        }
    }
}

/// `GET /audit`.
pub async fn audit(State(api): State<Arc<Api>>, browser: Browser) -> Response {
    let entries = ops::deployments::audit_log(&api.context, &browser.caller, "", AUDIT_ENTRIES);
    let main = html! {
        h1 { "Audit" }
        p class="muted" { "Every change, newest first (the last " (AUDIT_ENTRIES) "; berth audit has them all)." }
        @match &entries {
            Err(err) => (layout::refusal(err)),
            Ok(entries) => div class="scroll" role="region" tabindex="0" aria-label="Audit table" { table class="stages" {
                thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Did" }
                    th scope="col" { "To" } th scope="col" { "Outcome" } } }
                tbody { @for entry in entries { (audit_row(entry)) } }
            } },
        }
    };
    layout::page("Audit", Some(&browser.session), Nav::Audit, main)
}

fn audit_row(entry: &AuditEntry) -> Markup {
    html! {
        tr {
            td { (layout::time(entry.at)) }
            td { (entry.who) }
            td { code { (entry.action) } }
            td class="clip" title=(entry.target) { (entry.target) }
            td { (entry.outcome) }
        }
    }
}
