//! `berth agents ls|show|revoke`.

use berth_shared::record::{AgentView, RunningTaskView};

use tonic::Status;
use tracing::info;

use crate::grpc::auth::Caller;
use crate::server::Context;
use crate::store::AgentRecord;

fn view(context: &Context, record: &AgentRecord) -> Result<AgentView, Status> {
    let online = context.registry.is_online(record.id);
    let mut running_tasks = Vec::new();
    for deployment_id in context.dispatcher.active_ids() {
        let deployment = context.store.get_deployment(deployment_id)?;
        for task in deployment
            .tasks
            .iter()
            .filter(|task| task.agent_id == record.id && task.status.is_active())
        {
            running_tasks.push(RunningTaskView {
                deployment_id,
                task_id: task.id,
                app: deployment.app.clone(),
                status: task.status,
            });
        }
    }
    Ok(AgentView {
        id: record.id,
        name: record.name.clone(),
        online,
        status: record.status.clone(),
        labels: record.labels.clone(),
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
        running_tasks,
    })
}

pub fn list(context: &Context) -> Result<Vec<AgentView>, Status> {
    context
        .store
        .list_agents()?
        .iter()
        .map(|record| view(context, record))
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
    info!(agent_id = %record.id, %name, "agent revoked");
    view(context, &record)
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
    let selector = berth_shared::labels::parse_labels(&request.selector)
        .map_err(|err| Status::invalid_argument(format!("--selector: {err}")))?;
    let agents: Vec<AgentRecord> = context
        .store
        .list_agents()?
        .into_iter()
        .filter(|agent| {
            !agent.is_revoked() && berth_shared::labels::matches(&selector, &agent.labels)
        })
        .collect();
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
        };
        if let Some(reply) = reply {
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
