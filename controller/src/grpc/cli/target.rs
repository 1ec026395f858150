//! Offline target agents of a deploy: who among the selected agents is not
//! connected, the refusal that names them (also in metadata that
//! `berth deploy --wait-for-agents` matches on), and the bounded wait for
//! them to connect before the deployment is created.

use std::time::{Duration, Instant};

use berth_proto::v1::CreateDeploymentRequest;
use berth_proto::{MAX_WAIT_FOR_AGENTS, OFFLINE_AGENTS_METADATA};
use berth_shared::manifest::Manifest;
use berth_shared::time::format_duration;
use tonic::Status;
use tonic::metadata::MetadataValue;
use tracing::info;

use super::deploy::{describe_target, select_targets};
use crate::server::Context;
use crate::store::AgentRecord;

/// Names of the selected agents that are not connected now.
pub fn offline(context: &Context, selected: &[AgentRecord]) -> Vec<String> {
    selected
        .iter()
        .filter(|agent| !context.registry.is_online(agent.id))
        .map(|agent| agent.name.clone())
        .collect()
}

/// Refuses a deploy whose target has offline agents. The message names
/// them for people; the [`OFFLINE_AGENTS_METADATA`] entry names them for
/// the CLI. `waited` is how long the controller waited for them first.
pub fn offline_refusal(
    manifest: &Manifest,
    offline: &[String],
    waited: Option<Duration>,
) -> Status {
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
    let mut status = Status::failed_precondition(message);
    // Agent names are label-checked ASCII, so this always parses.
    if let Ok(value) = MetadataValue::try_from(offline.join(",")) {
        status.metadata_mut().insert(OFFLINE_AGENTS_METADATA, value);
    }
    status
}

/// With `wait_for_agents_ms` set, waits until every agent the request's
/// target selects is online, at most that long (and at most
/// [`MAX_WAIT_FOR_AGENTS`]), then returns so the deployment is created.
/// Holds no lock while waiting and wakes whenever the fleet changes (an
/// agent connects, labels change, an agent is revoked). A manifest that does
/// not parse or a target that selects nobody returns at once: creating the
/// deployment reports those.
pub async fn wait_for_agents(
    context: &Context,
    request: &CreateDeploymentRequest,
) -> Result<(), Status> {
    if request.wait_for_agents_ms == 0 {
        return Ok(());
    }
    let limit = Duration::from_millis(request.wait_for_agents_ms);
    if limit > MAX_WAIT_FOR_AGENTS {
        return Err(Status::invalid_argument(format!(
            "--wait-for-agents may be at most {}",
            format_duration(MAX_WAIT_FOR_AGENTS)
        )));
    }
    let Ok(manifest) = Manifest::parse(&request.manifest_toml) else {
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
                    return Err(Status::unavailable("the controller is shutting down; deploy again"));
                }
            }
            () = tokio::time::sleep(left) => {}
            () = context.shutdown.cancelled() => {
                return Err(Status::unavailable("the controller is shutting down; deploy again"));
            }
        }
    }
}
