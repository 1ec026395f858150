//! Taking an app down on this host: `berth stop` stops its containers and
//! route; `berth delete` removes what one deployment created.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_proto::v1::{ContainerSpec, TaskSpec};

use super::container::reload_handover;
use super::{Emitter, Failure};
use crate::Agent;
use crate::stage::docker;

/// Removes what the deployment created on this host: its containers and
/// its work directory (`berth delete`).
pub(super) async fn delete(
    agent: &Arc<Agent>,
    spec: &TaskSpec,
    emitter: &Emitter<'_>,
) -> Result<BTreeMap<String, String>, Failure> {
    let mut details = BTreeMap::new();
    agent
        .current
        .forget(&spec.app, &spec.environment, Some(&spec.deployment_id));
    if spec.container.is_some() {
        let host = &agent.identity.name;
        let docker = docker::connect(&agent.docker_host)
            .await
            .map_err(|err| Failure::failed(format!("host {host} cannot reach Docker at {err}")))?;
        agent
            .monitor
            .forget(&spec.app, &spec.environment, Some(&spec.deployment_id));
        let id = crate::stage::caddy::route_id(&spec.app, &spec.environment);
        // Only the route that still points to this deployment goes.
        if spec
            .container
            .as_ref()
            .is_some_and(|container| container.proxy.is_some())
            && agent.routes.forget(&id, Some(&spec.deployment_id))
        {
            reload_handover(emitter);
            agent.caddy.remove(&id).await.map_err(|err| {
                Failure::failed(format!("host {host}: could not remove route {id}: {err}"))
            })?;
            emitter.system(format!("removed Caddy route {id}"));
        }
        let removed = docker::remove_deployment(&docker, spec, emitter)
            .await
            .map_err(Failure::failed)?;
        details.insert("containers_removed".to_string(), removed.to_string());
    }
    if spec.with_resources {
        super::resources::remove_all(agent, spec, emitter, &mut details).await?;
    }
    let work = agent.files.work().join(&spec.deployment_id);
    if work.exists() {
        std::fs::remove_dir_all(&work)
            .map_err(|err| Failure::failed(format!("remove {}: {err}", work.display())))?;
        emitter.system(format!("removed {}", work.display()));
    }
    Ok(details)
}

/// Stops the app's containers on this host (`berth stop`).
pub(super) async fn stop_containers(
    agent: &Arc<Agent>,
    spec: &TaskSpec,
    container: &ContainerSpec,
    emitter: &Emitter<'_>,
) -> Result<BTreeMap<String, String>, Failure> {
    let host = &agent.identity.name;
    let docker = docker::connect(&agent.docker_host)
        .await
        .map_err(|err| Failure::failed(format!("host {host} cannot reach Docker at {err}")))?;
    agent.monitor.forget(&spec.app, &spec.environment, None);
    agent.current.forget(&spec.app, &spec.environment, None);
    if container.proxy.is_some() {
        let id = crate::stage::caddy::route_id(&spec.app, &spec.environment);
        agent.routes.forget(&id, None);
        reload_handover(emitter);
        agent.caddy.remove(&id).await.map_err(|err| {
            Failure::failed(format!("host {host}: could not remove route {id}: {err}"))
        })?;
        emitter.system(format!("removed Caddy route {id}"));
    }
    let stopped = docker::stop_app(&docker, spec, container, emitter)
        .await
        .map_err(Failure::failed)?;
    Ok(BTreeMap::from([(
        "containers_stopped".to_string(),
        stopped.to_string(),
    )]))
}
