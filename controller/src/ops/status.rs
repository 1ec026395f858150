//! `berth status`: what version of each app runs where, since when,
//! and how healthy.

use berth_shared::record::{AppStatus, Deployment, TaskKind};
use berth_shared::state::{DeploymentStatus, TaskStatus};

use super::{Caller, Result};
use crate::progress;
use crate::server::Context;
use crate::store::{ListQuery, Role};

/// The periodic health of a deployment's app across its hosts, from what
/// the agents last reported: `healthy`, or `unhealthy: host: probe; ...`.
fn health_of(context: &Context, deployment: &Deployment) -> Option<String> {
    if deployment.manifest.health.is_none() || deployment.status != DeploymentStatus::Deployed {
        return None;
    }
    let id = deployment.id.to_string();
    let mut reports = context.registry.health_of(&id);
    // Hosts whose agents are on another controller of the store: their
    // reports as that controller stored them.
    let mut elsewhere: Vec<berth_shared::id::AgentId> = deployment
        .tasks
        .iter()
        .map(|task| task.agent_id)
        .filter(|agent| !context.registry.is_online(*agent))
        .collect();
    elsewhere.sort_unstable();
    elsewhere.dedup();
    for agent in elsewhere {
        if let Some(report) = context.report_elsewhere(agent) {
            reports.extend(
                report
                    .health
                    .into_iter()
                    .filter(|health| health.deployment_id == id)
                    .map(|health| (agent, health)),
            );
        }
    }
    if reports.is_empty() {
        return Some("unknown (no report yet)".into());
    }
    let host = |agent| {
        deployment
            .tasks
            .iter()
            .find(|task| task.agent_id == agent)
            .map_or_else(|| agent.to_string(), |task| task.host.clone())
    };
    let unhealthy: Vec<String> = reports
        .iter()
        .filter(|(_, report)| !report.healthy)
        .map(|(agent, report)| format!("{}: {}", host(*agent), report.detail))
        .collect();
    if unhealthy.is_empty() {
        Some("healthy".into())
    } else {
        Some(format!("unhealthy: {}", unhealthy.join("; ")))
    }
}

/// Where a deployment's build stands, while it has one to wait for.
fn build_state(deployment: &Deployment) -> Option<String> {
    let build = deployment
        .tasks
        .iter()
        .rfind(|task| task.kind == TaskKind::Build)?;
    match build.status {
        TaskStatus::Queued => Some(format!(
            "waiting for build agent {} (all its slots are busy)",
            build.host
        )),
        status if status.is_active() => Some(format!("building on {}", build.host)),
        _ => None,
    }
}

/// What a deployment waits for an approval for, if it does: `waiting for
/// approval by an admin until 14:05 UTC (in 59 min); deploy requested by
/// ana (deployment 01K..)`.
fn waiting_for_approval(deployment: &Deployment) -> Option<String> {
    let approval = deployment.approval.as_ref().filter(|a| a.is_pending())?;
    Some(format!(
        "{} (deployment {})",
        approval.text(),
        deployment.id
    ))
}

/// What version of each app runs where, since when.
pub fn status(context: &Context, caller: &Caller, environment: &str) -> Result<Vec<AppStatus>> {
    caller.require(Role::Viewer)?;
    let mut rows = Vec::new();
    for (app, env) in context.store.app_environments()? {
        if !environment.is_empty() && env != environment {
            continue;
        }
        let query = |statuses: Vec<DeploymentStatus>| ListQuery {
            app: Some(app.clone()),
            environment: Some(env.clone()),
            statuses,
            limit: 1,
            ..Default::default()
        };
        let in_progress = context.store.slot_holder(&app, &env)?;
        let holder = match in_progress {
            Some(id) => Some(context.store.get_deployment(id)?),
            None => None,
        };
        let build_state = holder.as_ref().and_then(build_state);
        let queued = context.store.queued_for(&app, &env)?;
        let current = context
            .store
            .list_deployments(&query(vec![
                DeploymentStatus::Deployed,
                DeploymentStatus::Stopped,
            ]))?
            .into_iter()
            .next();
        let Some(current) = current.or(context
            .store
            .list_deployments(&query(Vec::new()))?
            .into_iter()
            .next())
        else {
            continue;
        };
        let since = current
            .transitions
            .iter()
            .rev()
            .find(|transition| {
                transition.subject == "deployment" && transition.to == current.status.as_str()
            })
            .map_or(current.updated_at, |transition| transition.at);
        let mut hosts: Vec<String> = progress::running_hosts(&current)
            .into_iter()
            .map(|(_, host)| host)
            .collect();
        hosts.sort();
        let health = health_of(context, &current);
        let approval = holder
            .iter()
            .chain(std::iter::once(&current))
            .find_map(waiting_for_approval);
        let host_states = super::hosts::host_states(context, &app, &env, &current)?;
        let version = super::hosts::fleet_version(&host_states, &current.version);
        rows.push(AppStatus {
            app: app.clone(),
            environment: env.clone(),
            version,
            host_states,
            deployment_id: current.id,
            status: current.status,
            since,
            hosts,
            in_progress,
            queued,
            build_state,
            health,
            approval,
        });
    }
    Ok(rows)
}
