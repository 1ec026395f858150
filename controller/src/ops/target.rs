//! Target selection, the one place agents are picked: a manifest's
//! `[target]` (hosts and labels), a `selector` (`k=v,...`, for stop, exec
//! and inspect), the offline agents among them with the refusal that names
//! them, and the bounded wait for them to connect before a deploy.

use std::time::{Duration, Instant};

use berth_proto::MAX_WAIT_FOR_AGENTS;
use berth_shared::labels::{format_labels, matches, parse_labels};
use berth_shared::manifest::Manifest;
use berth_shared::time::format_duration;
use tracing::info;

use super::{Code, Error, Result};
use crate::server::Context;
use crate::store::AgentRecord;

/// Names of the selected agents that are not connected now.
pub fn offline(context: &Context, selected: &[AgentRecord]) -> Vec<String> {
    selected
        .iter()
        .filter(|agent| !context.is_online(agent.id))
        .map(|agent| agent.name.clone())
        .collect()
}

/// Refuses a deploy whose target has offline agents. The message names
/// them for people; [`Error::offline_agents`] names them for clients.
/// `waited` is how long the controller waited for them first.
pub fn offline_refusal(manifest: &Manifest, offline: &[String], waited: Option<Duration>) -> Error {
    let target = describe_target(manifest);
    let names = offline.join(", ");
    let message = match waited {
        None => format!(
            "agents matching the target ({target}) are offline: {names}; start them, narrow [target], or wait for them with `berth deploy --wait-for-agents DURATION`"
        ),
        Some(waited) => format!(
            "agents matching the target ({target}) are still offline after waiting {}: {names}; start them or narrow [target]",
            format_duration(waited)
        ),
    };
    Error {
        offline_agents: offline.to_vec(),
        ..Error::new(Code::AgentOffline, message)
    }
}

/// Waits until every agent the manifest's target selects is online, at
/// most `limit` (itself at most [`MAX_WAIT_FOR_AGENTS`]; zero does not
/// wait), then returns so the deployment is created.
/// Holds no lock while waiting and wakes whenever the fleet changes (an
/// agent connects, labels change, an agent is revoked). A manifest that does
/// not parse or a target that selects nobody returns at once: creating the
/// deployment reports those.
pub async fn wait_for_agents(
    context: &Context,
    manifest_toml: &str,
    limit: Duration,
) -> Result<()> {
    if limit.is_zero() {
        return Ok(());
    }
    if limit > MAX_WAIT_FOR_AGENTS {
        return Err(Error::invalid(format!(
            "the wait for agents may be at most {}",
            format_duration(MAX_WAIT_FOR_AGENTS)
        )));
    }
    let Ok(manifest) = Manifest::parse(manifest_toml) else {
        return Ok(());
    };
    let started = Instant::now();
    // Subscribed before the first look, so no change slips in between.
    let mut fleet = context.registry.watch_fleet();
    let mut waiting = false;
    loop {
        let Ok(selected) = select_targets(context, &manifest) else {
            return Ok(());
        };
        let offline = offline(context, &selected);
        if offline.is_empty() {
            if waiting {
                info!(app = %manifest.app, waited_ms = started.elapsed().as_millis(), "target agents are online");
            }
            return Ok(());
        }
        let left = limit.saturating_sub(started.elapsed());
        if left.is_zero() {
            info!(app = %manifest.app, offline = %offline.join(","), "gave up waiting for target agents");
            return Err(offline_refusal(
                &manifest,
                &offline,
                Some(started.elapsed()),
            ));
        }
        if !waiting {
            info!(app = %manifest.app, offline = %offline.join(","), wait_secs = left.as_secs(), "deploy waits for target agents");
            waiting = true;
        }
        tokio::select! {
            changed = fleet.changed() => {
                if changed.is_err() {
                    return Err(Error::shutting_down("deploy"));
                }
            }
            () = tokio::time::sleep(left) => {}
            () = context.shutdown.cancelled() => {
                return Err(Error::shutting_down("deploy"));
            }
        }
    }
}

/// The agents a manifest's target selects (by name, and by their effective
/// labels: own and automatic), online or not, or why there are none.
/// Revoked agents never match.
pub fn select_targets(context: &Context, manifest: &Manifest) -> Result<Vec<AgentRecord>> {
    let agents: Vec<AgentRecord> = context
        .store
        .list_agents()?
        .into_iter()
        .filter(|agent| !agent.is_revoked())
        .collect();
    let target = &manifest.target;
    for host in &target.hosts {
        if !agents.iter().any(|agent| &agent.name == host) {
            return Err(Error::new(
                Code::TargetUnknownHost,
                format!(
                    "target.hosts names `{host}`, but no enrolled agent has that name; see `berth agents ls`"
                ),
            ));
        }
    }
    let selected: Vec<AgentRecord> = agents
        .into_iter()
        .filter(|agent| target.hosts.is_empty() || target.hosts.contains(&agent.name))
        .filter(|agent| matches(&target.labels, &agent.effective_labels()))
        .collect();
    if selected.is_empty() {
        return Err(Error::new(
            Code::TargetNoMatch,
            format!(
                "no agent matches the target ({}); check the labels with `berth agents ls`",
                describe_target(manifest)
            ),
        ));
    }
    Ok(selected)
}

/// The agents a manifest's target selects, every one online (and, for a
/// `[container]`, with Docker), or why not.
pub fn resolve_targets(context: &Context, manifest: &Manifest) -> Result<Vec<AgentRecord>> {
    let selected = select_targets(context, manifest)?;
    let offline = offline(context, &selected);
    if !offline.is_empty() {
        return Err(offline_refusal(manifest, &offline, None));
    }
    if manifest.container.is_some() {
        let no_docker: Vec<String> = selected
            .iter()
            .filter_map(|agent| {
                let facts = context
                    .registry
                    .facts(agent.id)
                    .or_else(|| agent.facts.clone())
                    .unwrap_or_default();
                facts.docker_version.is_empty().then(|| {
                    let why = if facts.docker_error.is_empty() {
                        "no Docker reported".to_string()
                    } else {
                        facts.docker_error
                    };
                    format!("{} ({why})", agent.name)
                })
            })
            .collect();
        if !no_docker.is_empty() {
            return Err(Error::new(
                Code::AgentNoDocker,
                format!(
                    "[container] needs Docker, but these hosts cannot reach it: {}; start Docker or point berth-agent --docker-host at its socket",
                    no_docker.join("; ")
                ),
            ));
        }
    }
    Ok(selected)
}

/// The target in words, for messages: `labels k=v and hosts a,b`.
pub fn describe_target(manifest: &Manifest) -> String {
    let mut parts = Vec::new();
    if !manifest.target.labels.is_empty() {
        parts.push(format!("labels {}", format_labels(&manifest.target.labels)));
    }
    if !manifest.target.hosts.is_empty() {
        parts.push(format!("hosts {}", manifest.target.hosts.join(",")));
    }
    if parts.is_empty() {
        return "every agent".into();
    }
    parts.join(" and ")
}

/// The active agents whose effective labels (own and automatic, see
/// [`AgentRecord::effective_labels`]) match a `--selector` text
/// (`k=v,k2=v2`; empty matches every agent), oldest first. Revoked agents
/// never match. Bad syntax is `invalid_argument` naming `--selector`.
pub fn select_agents(context: &Context, selector_text: &str) -> Result<Vec<AgentRecord>> {
    let selector =
        parse_labels(selector_text).map_err(|err| Error::invalid(format!("selector: {err}")))?;
    Ok(context
        .store
        .list_agents()?
        .into_iter()
        .filter(|agent| !agent.is_revoked() && matches(&selector, &agent.effective_labels()))
        .collect())
}
