//! Two sections of a deployment's page: the variables it ran with (the
//! snapshot kept in its record, so a later change never rewrites it) and
//! what it made: each host's container (name, id, image, published port,
//! what it replaced), its Caddy route, and its artifacts (the bundle, an
//! image archive, a build's output).

use berth_shared::record::{Deployment, Task};
use maud::{Markup, html};

fn size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

/// A digest's first characters (`sha256:` and 12 hex digits).
fn digest(text: &str) -> String {
    match text.get(..19) {
        Some(start) if start.len() < text.len() => format!("{start}…"),
        _ => text.to_string(),
    }
}

/// The variables it ran with, each with where its value came from; a
/// secret's value is never in the record (`***`).
pub fn variables(deployment: &Deployment) -> Markup {
    let mut rows: Vec<(String, String, String)> = deployment
        .variables
        .iter()
        .map(|variable| {
            let from = match (&variable.secret_scope, variable.secret_version) {
                (Some(scope), Some(version)) => {
                    format!("{} {scope} (version {version})", variable.source.as_str())
                }
                (None, Some(version)) => {
                    format!("{} (version {version})", variable.source.as_str())
                }
                _ => variable.source.as_str().to_string(),
            };
            (variable.name.clone(), variable.value.clone(), from)
        })
        .collect();
    if rows.is_empty() {
        // A record from before variables: its container's own env.
        rows = deployment
            .env()
            .into_iter()
            .map(|(name, value)| (name, value, "container".to_string()))
            .collect();
    }
    html! {
        section aria-labelledby="variables" {
            h2 id="variables" { "Variables" }
            @if rows.is_empty() {
                p class="muted" { "None: the manifest's " code { "[env]" } " and the environment's variables set them." }
            } @else {
                div class="scroll" role="region" tabindex="0" aria-label="Variables table" { table class="stages" {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Value" } th scope="col" { "From" } } }
                    tbody { @for (name, value, from) in &rows {
                        tr { td { code { (name) } } td class="clip" title=(value) { code { (value) } } td { (from) } }
                    } }
                } }
            }
        }
    }
}

fn host_made(task: &Task) -> Option<Markup> {
    let made = task
        .stages
        .iter()
        .rev()
        .find(|stage| stage.details.contains_key("container_name"))?;
    let detail = |key: &str| made.details.get(key).map(String::as_str).unwrap_or("-");
    Some(html! {
        tr {
            td { (task.host) }
            td { code { (detail("container_name")) } br; span class="muted" { (detail("container_id")) } }
            td class="clip" title=(detail("image")) { (detail("image")) }
            td { (detail("host_port")) }
            td class="clip" title=(detail("replaced")) { (detail("replaced")) }
        }
    })
}

/// What the deployment made on its hosts, and its artifacts.
pub fn resources(deployment: &Deployment) -> Markup {
    let hosts: Vec<Markup> = deployment.tasks.iter().filter_map(host_made).collect();
    html! {
        section aria-labelledby="made" {
            h2 id="made" { "What it made" }
            @if hosts.is_empty() { p class="muted" { "No container (a script deployment, or not deployed yet)." } }
            @else {
                div class="scroll" role="region" tabindex="0" aria-label="Containers it made" { table class="stages" {
                    thead { tr { th scope="col" { "Host" } th scope="col" { "Container" } th scope="col" { "Image" }
                        th scope="col" { "Host port" } th scope="col" { "Replaced" } } }
                    tbody { @for row in hosts { (row) } }
                } }
            }
            dl class="facts" {
                @if let Some(proxy) = &deployment.manifest.proxy {
                    dt { "Route" } dd { code { (proxy.domain) } " → the container (TLS " (proxy.tls) ")" }
                }
                dt { "Bundle" } dd { code title=(deployment.bundle_digest) { (digest(&deployment.bundle_digest)) } " · " (size(deployment.bundle_size)) }
                @if let Some(archive) = &deployment.image_archive_digest {
                    dt { "Image archive" } dd { code title=(archive) { (digest(archive)) } " · " (size(deployment.image_archive_size)) }
                }
                @if let Some(built) = &deployment.built {
                    dt { "Build output" } dd {
                        @if let Some(image) = &built.image { "image " code { (image) } " · " }
                        @if let Some(artifact) = &built.artifact { "artifact " code { (artifact) } " · " }
                        code title=(built.digest) { (digest(&built.digest)) } " · " (size(built.size))
                        @if built.built_by != deployment.id {
                            " · built by " a href=(format!("/deployments/{}", built.built_by)) { "an earlier deployment" }
                        }
                    }
                }
            }
        }
    }
}
