//! Answers to the controller's questions on the stream: what berth runs
//! on this host (inspect), and a container's live output (relay).

use std::sync::Arc;

use berth_proto::v1::AgentMessage;
use berth_proto::v1::agent_message::Kind as Outgoing;
use tokio::sync::mpsc;

use crate::Agent;

/// Relays a container's output to the controller until the container
/// stops, the controller says stop, or the connection goes.
pub(super) async fn relay(
    agent: Arc<Agent>,
    request: berth_proto::v1::FollowContainer,
    sender: mpsc::Sender<AgentMessage>,
    cancel: tokio_util::sync::CancellationToken,
) {
    use berth_proto::v1::ContainerOutput;
    let request_id = request.request_id;
    if let Ok(docker) = crate::stage::docker::connect(&agent.docker_host).await {
        let send = |lines| {
            let message = AgentMessage {
                kind: Some(Outgoing::Output(ContainerOutput {
                    request_id,
                    lines,
                    ended: false,
                })),
            };
            sender.try_send(message).is_ok() || !sender.is_closed()
        };
        if request.resource.is_empty() {
            let name = crate::stage::docker::name_for(
                &request.app,
                &request.environment,
                &agent.identity.name,
                &request.deployment_id,
            );
            crate::stage::docker::follow_output(&docker, &name, &cancel, send).await;
        } else if let Some(name) = resource_container(&agent, &docker, &request).await {
            let tail = Some(request.tail);
            crate::stage::docker::output(&docker, &name, &cancel, tail, !request.once, send).await;
        }
    }
    let ended = AgentMessage {
        kind: Some(Outgoing::Output(ContainerOutput {
            request_id,
            lines: Vec::new(),
            ended: true,
        })),
    };
    let _ = sender.send(ended).await;
    agent.stop_relay(request_id);
}

/// The resource's container on this host: the running one, else the newest.
async fn resource_container(
    agent: &Agent,
    docker: &bollard::Docker,
    request: &berth_proto::v1::FollowContainer,
) -> Option<String> {
    use crate::stage::docker::resource;
    let scope = berth_proto::v1::TaskSpec {
        app: request.app.clone(),
        environment: request.environment.clone(),
        host: agent.identity.name.clone(),
        ..Default::default()
    };
    resource::current(docker, &scope, &request.resource)
        .await
        .ok()
        .flatten()
}

/// What berth runs on this host, for a fleet-wide inspect.
pub(super) async fn inspect(
    agent: &Agent,
    request: berth_proto::v1::InspectRequest,
) -> berth_proto::v1::InspectReply {
    let app = Some(request.app.as_str()).filter(|app| !app.is_empty());
    let routes: Vec<String> = agent
        .routes
        .all()
        .into_iter()
        .filter(|route| app.is_none_or(|app| route.app == app))
        .map(|route| format!("{} -> {} ({})", route.domain, route.upstream, route.id))
        .collect();
    let reply = inspect_containers(agent, &request, app).await;
    berth_proto::v1::InspectReply { routes, ..reply }
}

async fn inspect_containers(
    agent: &Agent,
    request: &berth_proto::v1::InspectRequest,
    app: Option<&str>,
) -> berth_proto::v1::InspectReply {
    let result = match crate::stage::docker::connect(&agent.docker_host).await {
        Ok(docker) => crate::stage::docker::inspect(&docker, &agent.identity.name, app).await,
        Err(err) => Err(format!("cannot reach Docker at {err}")),
    };
    match result {
        Ok(mut views) if !views.is_empty() => {
            for view in &mut views {
                if let Some((healthy, detail)) = agent.monitor.of(&view.deployment_id) {
                    view.health = if healthy {
                        "healthy".into()
                    } else {
                        format!("unhealthy: {detail}")
                    };
                }
            }
            berth_proto::v1::InspectReply {
                request_id: request.request_id,
                json: serde_json::to_string(&views).unwrap_or_default(),
                ..Default::default()
            }
        }
        Ok(views) => berth_proto::v1::InspectReply {
            request_id: request.request_id,
            json: serde_json::to_string(&views).unwrap_or_default(),
            ..Default::default()
        },
        Err(error) => berth_proto::v1::InspectReply {
            request_id: request.request_id,
            error,
            ..Default::default()
        },
    }
}
