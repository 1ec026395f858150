//! `berth agents ls|show|label|revoke` and `berth inspect`: the fleet as
//! the controller knows it, and what berth runs on each host.

use berth_shared::labels::{LabelChange, format_labels};
use berth_shared::record::{AgentView, ContainerView, HostInspect, RunningTaskView};
use tracing::info;

use super::{Caller, Error, Result};
use crate::server::Context;
use crate::store::{AgentRecord, Role, StoreError, Thing};

/// The berth tasks each agent runs now, read once for the whole fleet.
fn running_tasks(
    context: &Context,
) -> Result<std::collections::HashMap<berth_shared::id::AgentId, Vec<RunningTaskView>>> {
    let mut running: std::collections::HashMap<_, Vec<RunningTaskView>> = Default::default();
    for deployment_id in context.dispatcher.active_ids() {
        let deployment = context.store.get_deployment(deployment_id)?;
        for task in deployment
            .tasks
            .iter()
            .filter(|task| task.status.is_active())
        {
            running
                .entry(task.agent_id)
                .or_default()
                .push(RunningTaskView {
                    deployment_id,
                    task_id: task.id,
                    app: deployment.app.clone(),
                    status: task.status,
                });
        }
    }
    Ok(running)
}

fn view(context: &Context, record: &AgentRecord) -> Result<AgentView> {
    view_with(context, record, &running_tasks(context)?)
}

/// An agent as the CLI shows it, with the fleet's running tasks read once.
fn view_with(
    context: &Context,
    record: &AgentRecord,
    running: &std::collections::HashMap<berth_shared::id::AgentId, Vec<RunningTaskView>>,
) -> Result<AgentView> {
    let online = context.is_online(record.id);
    let running_tasks = running.get(&record.id).cloned().unwrap_or_default();
    Ok(AgentView {
        id: record.id,
        name: record.name.clone(),
        online,
        status: record.status.clone(),
        labels: record.labels.clone(),
        auto_labels: record.auto_labels.clone(),
        facts: context
            .registry
            .facts(record.id)
            .or_else(|| record.facts.clone()),
        version: record.version.clone(),
        enrolled_at: record.enrolled_at,
        last_seen_at: if online {
            Some(berth_shared::record::Timestamp::now())
        } else {
            record.last_seen_at
        },
        cert_expires_at: record.cert_not_after,
        valid_certificates: if record.is_revoked() {
            0
        } else {
            record.serials.len()
        },
        running_tasks,
    })
}

/// Every agent, revoked ones included.
pub fn list(context: &Context, caller: &Caller) -> Result<Vec<AgentView>> {
    caller.require(Role::Viewer)?;
    let running = running_tasks(context)?;
    context
        .store
        .list_agents()?
        .iter()
        .map(|record| view_with(context, record, &running))
        .collect()
}

/// One agent by name (a revoked one too).
pub fn show(context: &Context, caller: &Caller, name: &str) -> Result<AgentView> {
    caller.require(Role::Viewer)?;
    let record = context.store.agent_by_name(name).or_else(|_| {
        // A revoked agent no longer owns its name; find it among all agents.
        context
            .store
            .list_agents()?
            .into_iter()
            .rev()
            .find(|agent| agent.name == name)
            .ok_or_else(|| StoreError::NotFound(Thing::Agent, format!("agent `{name}`")))
    })?;
    view(context, &record)
}

/// Revokes an agent's certificates and cuts its connection at once.
pub async fn revoke(context: &Context, caller: &Caller, name: &str) -> Result<AgentView> {
    caller.require(Role::Admin)?;
    let record = context.store.revoke_agent(name)?;
    context
        .store
        .audit(&caller.who(), "agent.revoke", name, "ok")?;
    context.store.flush().await?;
    context.registry.disconnect(record.id);
    context.cluster.signal(crate::cluster::Signal::Revoked {
        agent: record.id.to_string(),
    });
    context.registry.fleet_changed();
    info!(agent_id = %record.id, %name, "agent revoked");
    view(context, &record)
}

/// Sets and removes an agent's own labels (`berth agents label`), audited
/// and flushed before the reply, which is the agent as changed.
pub async fn label(
    context: &Context,
    caller: &Caller,
    name: &str,
    set: &[String],
    remove: &[String],
) -> Result<AgentView> {
    caller.require(Role::Operator)?;
    let change = LabelChange::parse(set, remove)
        .map_err(|err| Error::invalid(format!("agent `{name}`: {err}")))?;
    let current = context.store.agent_by_name(name)?;
    // Checked here to answer with a usage error; checked again below in
    // case a concurrent change added labels meanwhile.
    change
        .apply(&mut current.labels.clone())
        .map_err(|err| Error::invalid(format!("agent `{name}`: {err}")))?;
    let (record, ()) = context.store.update_agent(current.id, |record| {
        if record.is_revoked() {
            return Err(StoreError::NotFound(
                Thing::Agent,
                format!("agent `{name}`"),
            ));
        }
        change
            .apply(&mut record.labels)
            .map_err(|err| StoreError::Conflict(format!("agent `{name}`: {err}")))
    })?;
    let mut described: Vec<String> = change
        .set
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    described.extend(change.remove.iter().map(|key| format!("-{key}")));
    let target = format!("{name} {}", described.join(" "));
    context
        .store
        .audit(&caller.who(), "agent.label", &target, "ok")?;
    context.store.flush().await?;
    context.registry.fleet_changed();
    info!(agent_id = %record.id, %name, labels = %format_labels(&record.labels), "agent labels changed");
    view(context, &record)
}

/// How long each host has to answer a fleet-wide inspect.
const INSPECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Asks every matching agent, in parallel, what berth runs on it. Hosts that
/// are offline or do not answer in time are listed as such.
pub async fn inspect(
    context: &Context,
    caller: &Caller,
    selector: &str,
    app: &str,
) -> Result<Vec<HostInspect>> {
    caller.require(Role::Viewer)?;
    let agents = super::target::select_agents(context, selector)?;
    ask_agents(context, &agents, app).await
}

/// Asks one agent, by name, what berth runs on it (its page on the
/// dashboard); an offline agent is said to be so at once.
pub async fn inspect_one(context: &Context, caller: &Caller, name: &str) -> Result<HostInspect> {
    caller.require(Role::Viewer)?;
    let agent = context.store.agent_by_name(name)?;
    let hosts = ask_agents(context, std::slice::from_ref(&agent), "").await?;
    hosts.into_iter().next().ok_or_else(|| {
        Error::new(
            super::Code::AgentNotFound,
            format!("agent `{name}` did not answer; `berth agents ls` lists the agents"),
        )
    })
}

/// An inspect answer's containers (JSON) with the secret values of their
/// deployments masked; `None` when it is no list of containers.
pub(crate) fn masked_json(context: &Context, json: &str) -> Option<String> {
    let containers = serde_json::from_str::<Vec<ContainerView>>(json).ok()?;
    serde_json::to_string(&masked(context, containers)).ok()
}

/// Containers with the secret values of their deployments masked in what
/// they printed lately.
fn masked(context: &Context, mut containers: Vec<ContainerView>) -> Vec<ContainerView> {
    for container in &mut containers {
        if let Ok(id) = container.deployment_id.parse() {
            let texts = container
                .recent_logs
                .iter_mut()
                .chain(std::iter::once(&mut container.health));
            context.dispatcher.mask_texts(id, texts);
        }
    }
    containers
}

async fn ask_agents(
    context: &Context,
    agents: &[AgentRecord],
    app: &str,
) -> Result<Vec<HostInspect>> {
    let running = running_tasks(context)?;
    let running = &running;
    let asks = agents.iter().map(|agent| async move {
        let online = context.is_online(agent.id);
        let reply = if online {
            context
                .registry
                .inspect(agent.id, app, INSPECT_TIMEOUT)
                .await
        } else {
            None
        };
        let mut host = HostInspect {
            host: agent.name.clone(),
            online,
            answered: reply.is_some(),
            error: None,
            containers: Vec::new(),
            facts: context
                .registry
                .facts(agent.id)
                .or_else(|| agent.facts.clone()),
            running_tasks: running.get(&agent.id).cloned().unwrap_or_default(),
            routes: Vec::new(),
        };
        if let Some(reply) = reply {
            host.routes = reply.routes;
            if !reply.error.is_empty() {
                host.error = Some(reply.error);
            }
            match serde_json::from_str::<Vec<ContainerView>>(&reply.json) {
                Ok(containers) => host.containers = masked(context, containers),
                Err(_) if reply.json.is_empty() => {}
                Err(err) => host.error = Some(format!("unreadable answer: {err}")),
            }
        } else if online {
            host.error = Some(format!(
                "did not answer within {}s",
                INSPECT_TIMEOUT.as_secs()
            ));
        }
        host
    });
    Ok(futures_util::future::join_all(asks).await)
}
