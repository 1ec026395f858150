//! An agent's page (`/fleet/{name}`): its state, labels, facts and
//! certificate, the tasks it runs, and its inspect, asked live as `berth
//! inspect` and `GET /api/v1/agents/{name}/inspect` ask it: the
//! containers berth keeps there (state, ports, restarts, health, recent
//! output) and its Caddy routes.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_shared::record::{AgentView, ContainerView, Facts, HostInspect};
use maud::{Markup, html};

use super::auth::Browser;
use super::layout::{self, Nav};
use crate::http::Api;
use crate::ops;

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes / (1 << 20))
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

fn uptime(secs: u64) -> String {
    let (days, hours, minutes) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (days, hours) {
        (0, 0) => format!("{minutes} min"),
        (0, _) => format!("{hours} h {minutes} min"),
        _ => format!("{days} d {hours} h"),
    }
}

/// `GET /fleet/{name}`.
pub async fn page(
    State(api): State<Arc<Api>>,
    browser: Browser,
    Path(name): Path<String>,
) -> Response {
    let name = berth_shared::text::clip(&name, 256);
    let agent = match ops::agents::show(&api.context, &browser.caller, &name) {
        Ok(agent) => agent,
        Err(err) => {
            let main = html! {
                h1 { "No such agent" }
                (layout::refusal(&err))
                p { a href="/fleet" { "The fleet" } }
            };
            let mut response = layout::page("Not found", Some(&browser.session), Nav::Fleet, main);
            *response.status_mut() = StatusCode::NOT_FOUND;
            return response;
        }
    };
    let inspect = if agent.status == "revoked" {
        None
    } else {
        Some(ops::agents::inspect_one(&api.context, &browser.caller, &agent.name).await)
    };
    let main = html! {
        p class="crumbs" { a href="/fleet" { "Fleet" } " / " (agent.name) }
        h1 { (agent.name) " " span class="muted" { (agent.version.as_deref().unwrap_or("")) } }
        (summary(&agent))
        section aria-labelledby="facts-title" {
            h2 id="facts-title" { "Host" }
            @match &agent.facts { Some(facts) => (facts_list(facts)), None => p class="muted" { "The agent has not reported its host yet." } }
        }
        section aria-labelledby="running-title" {
            h2 id="running-title" { "Running tasks" }
            @if agent.running_tasks.is_empty() { p class="muted" { "None." } }
            ul { @for task in &agent.running_tasks {
                li { a href=(format!("/deployments/{}", task.deployment_id)) { (task.app) } " "
                    span class=(format!("status s-{}", task.status.as_str())) { (task.status.as_str()) } }
            } }
        }
        section aria-labelledby="inspect-title" {
            h2 id="inspect-title" { "Inspect" }
            @match &inspect {
                None => p class="muted" { "The agent is revoked; nothing is asked of it." },
                Some(Err(err)) => (layout::refusal(err)),
                Some(Ok(host)) => (inspect_view(host)),
            }
        }
    };
    layout::page(&agent.name, Some(&browser.session), Nav::Fleet, main)
}

fn summary(agent: &AgentView) -> Markup {
    let state = if agent.online { "online" } else { "offline" };
    html! {
        div class="summary" {
            span class=(format!("status s-{}", if agent.online { "done" } else { "stopped" })) { (state) }
            span { "status " strong { (agent.status) } }
            span { "last seen " @if let Some(seen) = agent.last_seen_at { (layout::time(seen)) } @else { "never" } }
        }
        dl class="facts" {
            dt { "Labels" } dd {
                @if agent.labels.is_empty() { "-" }
                @for (key, value) in &agent.labels { code { (key) "=" (value) } " " }
            }
            dt { "Automatic labels" } dd { @for (key, value) in &agent.auto_labels { code { (key) "=" (value) } " " } }
            dt { "Id" } dd { code { (agent.id) } }
            dt { "Enrolled" } dd { (layout::time(agent.enrolled_at)) }
            dt { "Certificate expires" } dd { (layout::time(agent.cert_expires_at)) }
        }
    }
}

fn facts_list(facts: &Facts) -> Markup {
    html! {
        dl class="facts" {
            dt { "Hostname" } dd { (facts.hostname) }
            dt { "System" } dd { (facts.os) " " (facts.os_version) ", kernel " (facts.kernel) ", " (facts.arch) }
            dt { "CPUs" } dd { (facts.cpus) ", load " (format!("{:.2}", facts.load_1m)) }
            dt { "Memory" } dd { (mib(facts.memory_used_bytes)) " used of " (mib(facts.memory_total_bytes)) }
            dt { "Disk" } dd { (gib(facts.disk_free_bytes)) " free of " (gib(facts.disk_total_bytes)) }
            dt { "Up for" } dd { (uptime(facts.uptime_secs)) }
            dt { "Docker" } dd {
                @if facts.docker_version.is_empty() {
                    span class="error" { "unreachable" } @if !facts.docker_error.is_empty() { " — " (facts.docker_error) }
                } @else { (facts.docker_version) }
            }
        }
    }
}

fn inspect_view(host: &HostInspect) -> Markup {
    html! {
        @if let Some(error) = &host.error { p class="error" role="alert" { (error) } }
        @if !host.online { p class="muted" { "The agent is offline; this is what it last reported." } }
        @if host.answered && host.error.is_none() && host.containers.is_empty() { p class="muted" { "berth keeps no container on this host." } }
        @if !host.containers.is_empty() {
            div class="scroll" role="region" tabindex="0" aria-label="Containers table" { table class="stages" {
                thead { tr { th scope="col" { "Container" } th scope="col" { "App" } th scope="col" { "State" }
                    th scope="col" { "Image" } th scope="col" { "Ports" } th scope="col" { "Restarts" } th scope="col" { "Health" } } }
                tbody { @for container in &host.containers { (container_row(container)) } }
            } }
            @for container in host.containers.iter().filter(|c| !c.recent_logs.is_empty()) {
                details {
                    summary { "Recent output of " (container.name) }
                    pre class="log short" { @for line in &container.recent_logs { (line) "\n" } }
                }
            }
        }
        h3 { "Routes" }
        @if host.routes.is_empty() { p class="muted" { "No Caddy route." } }
        ul { @for route in &host.routes { li { code { (route) } } } }
    }
}

fn container_row(container: &ContainerView) -> Markup {
    html! {
        tr {
            td { code { (container.name) } }
            td { (container.app) " " span class="muted" { (container.environment) } br;
                @if container.resource.is_empty() {
                    a href=(format!("/deployments/{}", container.deployment_id)) { (container.version) }
                } @else {
                    "resource " strong { (container.resource) }
                    @for volume in &container.volumes { br; span class="muted" { "volume " (volume) } }
                } }
            td { (container.state) br; span class="muted" { (container.status) } }
            td class="clip" title=(container.image) { (container.image) }
            td { (container.ports.join(", ")) }
            td { (container.restart_count) }
            td { @if container.health.is_empty() { "-" } @else { (container.health) } }
        }
    }
}
