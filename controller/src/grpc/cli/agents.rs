//! `berth agents ls|show|label|revoke`, `berth inspect`, and
//! [`select_agents`], the one place a `--selector` picks agents.

use berth_shared::labels::{LabelChange, format_labels, matches, parse_labels};
use berth_shared::record::{AgentView, RunningTaskView};

use tonic::Status;
use tracing::info;

use crate::grpc::auth::Caller;
use crate::server::Context;
use crate::store::{AgentRecord, StoreError};

/// The berth tasks each agent runs now, read once for the whole fleet.
fn running_tasks(
    context: &Context,
) -> Result<std::collections::HashMap<berth_shared::id::AgentId, Vec<RunningTaskView>>, Status> {
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

fn view(context: &Context, record: &AgentRecord) -> Result<AgentView, Status> {
    view_with(context, record, &running_tasks(context)?)
}

/// An agent as the CLI shows it, with the fleet's running tasks read once.
fn view_with(
    context: &Context,
    record: &AgentRecord,
    running: &std::collections::HashMap<berth_shared::id::AgentId, Vec<RunningTaskView>>,
) -> Result<AgentView, Status> {
    let online = context.registry.is_online(record.id);
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

pub fn list(context: &Context) -> Result<Vec<AgentView>, Status> {
    let running = running_tasks(context)?;
    context
        .store
        .list_agents()?
        .iter()
        .map(|record| view_with(context, record, &running))
        .collect()
}

pub fn show(context: &Context, name: &str) -> Result<AgentView, Status> {
    let record = context.store.agent_by_name(name).or_else(|_| {
        // A revoked agent no longer owns its name; find it among all agents.
        context
            .store
            .list_agents()?
            .into_iter()
            .rev()
            .find(|agent| agent.name == name)
            .ok_or_else(|| crate::store::StoreError::NotFound(format!("agent `{name}`")))
    })?;
    view(context, &record)
}

pub async fn revoke(context: &Context, caller: &Caller, name: &str) -> Result<AgentView, Status> {
    let record = context.store.revoke_agent(name)?;
    context
        .store
        .audit(&caller.who(), "agent.revoke", name, "ok")?;
    context.store.flush().await?;
    context.registry.disconnect(record.id);
    context.registry.fleet_changed();
    info!(agent_id = %record.id, %name, "agent revoked");
    view(context, &record)
}

/// Sets and removes an agent's own labels (`berth agents label`), audited
/// and flushed before the reply, which is the agent as changed.
pub async fn label(
    context: &Context,
    caller: &Caller,
    request: &berth_proto::v1::LabelAgentRequest,
) -> Result<AgentView, Status> {
    let name = &request.name;
    let change = LabelChange::parse(&request.set, &request.remove)
        .map_err(|err| Status::invalid_argument(format!("agent `{name}`: {err}")))?;
    let current = context.store.agent_by_name(name)?;
    // Checked here to answer with a usage error; checked again below in
    // case a concurrent change added labels meanwhile.
    change
        .apply(&mut current.labels.clone())
        .map_err(|err| Status::invalid_argument(format!("agent `{name}`: {err}")))?;
    let (record, ()) = context.store.update_agent(current.id, |record| {
        if record.is_revoked() {
            return Err(StoreError::NotFound(format!("agent `{name}`")));
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

/// The active agents whose effective labels (own and automatic, see
/// [`AgentRecord::effective_labels`]) match a `--selector` text
/// (`k=v,k2=v2`; empty matches every agent), oldest first. Revoked agents
/// never match. Bad syntax is `invalid_argument` naming `--selector`.
pub fn select_agents(context: &Context, selector_text: &str) -> Result<Vec<AgentRecord>, Status> {
    let selector = parse_labels(selector_text)
        .map_err(|err| Status::invalid_argument(format!("--selector: {err}")))?;
    Ok(context
        .store
        .list_agents()?
        .into_iter()
        .filter(|agent| !agent.is_revoked() && matches(&selector, &agent.effective_labels()))
        .collect())
}

/// How long each host has to answer a fleet-wide inspect.
const INSPECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Asks every matching agent, in parallel, what berth runs on it. Hosts that
/// are offline or do not answer in time are listed as such.
pub async fn inspect(
    context: &Context,
    request: &berth_proto::v1::InspectAppRequest,
) -> Result<Vec<berth_shared::record::HostInspect>, Status> {
    use berth_shared::record::{ContainerView, HostInspect};
    let agents = select_agents(context, &request.selector)?;
    let running = running_tasks(context)?;
    let running = &running;
    let asks = agents.iter().map(|agent| async move {
        let online = context.registry.is_online(agent.id);
        let reply = if online {
            context
                .registry
                .inspect(agent.id, &request.app, INSPECT_TIMEOUT)
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
                Ok(containers) => host.containers = containers,
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
