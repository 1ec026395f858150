//! `berth status` per host: what each host runs now, from its agent's own
//! report (version, deployment, container state, health, last repair),
//! and for hosts that are offline what the controller last knew.

use berth_shared::record::{Deployment, HostState, Timestamp};

use crate::progress;
use crate::server::Context;
use crate::store::StoreError;

/// The host rows of one app and environment; `current` is the deployment
/// the controller believes runs there.
pub fn host_states(
    context: &Context,
    app: &str,
    environment: &str,
    current: &Deployment,
) -> Result<Vec<HostState>, StoreError> {
    // One read per reporting agent, not a scan of the fleet per app.
    let name_of = |agent: berth_shared::id::AgentId| {
        context
            .store
            .get_agent(agent)
            .map_or_else(|_| agent.to_string(), |record| record.name)
    };
    let mut rows: Vec<HostState> = Vec::new();
    for (agent, reported) in context.registry.apps_of(app, environment) {
        let health = context
            .registry
            .health_of(&reported.deployment_id)
            .into_iter()
            .find(|(from, _)| *from == agent)
            .map(|(_, report)| report);
        rows.push(reported_row(name_of(agent), reported, health));
    }
    if current.status == berth_shared::state::DeploymentStatus::Deployed {
        for (agent, host) in progress::running_hosts(current) {
            if rows.iter().any(|row| row.host == host) {
                continue;
            }
            let online = context.is_online(agent);
            // An agent on another controller of the store: its report
            // as that controller stored it.
            let elsewhere = context.report_elsewhere(agent);
            if let Some(report) = &elsewhere {
                let before = rows.len();
                for reported in report
                    .apps
                    .iter()
                    .filter(|a| a.app == app && a.environment == environment)
                {
                    let health = report
                        .health
                        .iter()
                        .find(|h| h.deployment_id == reported.deployment_id)
                        .cloned();
                    rows.push(reported_row(host.clone(), reported.clone(), health));
                }
                if rows.len() > before {
                    continue;
                }
            }
            // A report older than the host's last task says nothing yet.
            let finished = current
                .tasks
                .iter()
                .filter(|task| task.agent_id == agent)
                .filter_map(|task| task.finished_at)
                .max();
            let reported = context
                .registry
                .apps_reported_at(agent)
                .or(elsewhere.map(|report| report.at));
            let awaited =
                online && reported.is_none_or(|at| finished.is_some_and(|done| at < done));
            let (state, known) = match (online, awaited) {
                (false, _) => ("offline (last known)", true),
                (true, true) => ("deployed (its agent has not reported yet)", true),
                (true, false) => ("not running (its agent reports no such app)", false),
            };
            rows.push(HostState {
                host,
                online,
                version: if known {
                    current.version.clone()
                } else {
                    String::new()
                },
                deployment_id: if known {
                    current.id.to_string()
                } else {
                    String::new()
                },
                state: state.into(),
                ..HostState::default()
            });
        }
    }
    rows.sort_by(|a, b| a.host.cmp(&b.host));
    let mut changed_of = std::collections::HashMap::new();
    for row in &mut rows {
        let Ok(id) = row.deployment_id.parse::<berth_shared::id::DeploymentId>() else {
            continue;
        };
        if let std::collections::hash_map::Entry::Vacant(entry) = changed_of.entry(id) {
            let changed = match context.store.get_deployment(id) {
                Ok(deployment) => super::secrets::changed_since(context, &deployment)?,
                Err(StoreError::NotFound(..)) => Vec::new(),
                Err(err) => return Err(err),
            };
            entry.insert(changed);
        }
        row.secrets_changed = changed_of[&id].clone();
    }
    Ok(rows)
}

/// A host's row from what its agent reported of one app, with the app's
/// last health report there.
fn reported_row(
    host: String,
    reported: berth_proto::v1::HostApp,
    health: Option<berth_proto::v1::AppHealth>,
) -> HostState {
    let health = health.map(|report| {
        if report.healthy {
            "healthy".to_string()
        } else {
            format!("unhealthy: {}", report.detail)
        }
    });
    HostState {
        host,
        online: true,
        version: reported.version,
        deployment_id: reported.deployment_id,
        state: crate::wire::app_state(reported.state, &reported.state_detail),
        health,
        since: Some(Timestamp(reported.since_ms)),
        last_repair: Some(reported.last_repair).filter(|text| !text.is_empty()),
        last_repair_at: (reported.last_repair_ms > 0).then_some(Timestamp(reported.last_repair_ms)),
        secrets_changed: Vec::new(),
        resources: reported
            .resources
            .into_iter()
            .map(|resource| berth_shared::record::ResourceState {
                name: resource.name,
                image: resource.image,
                state: resource.state,
                health: resource.health,
                volumes: resource.volumes,
            })
            .collect(),
    }
}

/// The version the hosts run: the one they agree on, or `mixed: ...`
/// naming each version with its hosts.
pub fn fleet_version(rows: &[HostState], fallback: &str) -> String {
    let mut versions: Vec<(&str, Vec<&str>)> = Vec::new();
    for row in rows.iter().filter(|row| !row.version.is_empty()) {
        match versions
            .iter_mut()
            .find(|(version, _)| *version == row.version)
        {
            Some((_, hosts)) => hosts.push(&row.host),
            None => versions.push((&row.version, vec![&row.host])),
        }
    }
    match versions.as_slice() {
        [] => fallback.to_string(),
        [(version, _)] => (*version).to_string(),
        many => {
            let parts: Vec<String> = many
                .iter()
                .map(|(version, hosts)| format!("{version} on {}", hosts.join(", ")))
                .collect();
            format!("mixed: {}", parts.join("; "))
        }
    }
}
