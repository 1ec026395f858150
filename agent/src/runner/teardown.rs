//! Taking an app down on this host: `berth stop` stops its containers and
//! route; `berth delete` removes what one deployment created; each with
//! `--with-resources` its resources too. And the resources a deploy left
//! behind are stopped.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_proto::v1::{ContainerSpec, TaskSpec};

use super::container::reload_handover;
use super::{Emitter, Failure};
use crate::Agent;
use crate::stage::docker::{self, resource};

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
        remove_resources(agent, spec, emitter, &mut details).await?;
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

/// After a deploy took over: the resources of the app that this host no
/// longer runs (taken out of the manifest, or now for other hosts) are
/// stopped, never removed; their data stays for `berth delete
/// --with-resources --purge-volumes`. A problem is only reported.
pub(super) async fn retire_unwanted(agent: &Arc<Agent>, spec: &TaskSpec, emitter: &Emitter<'_>) {
    let Ok(docker) = docker::connect(&agent.docker_host).await else {
        return;
    };
    let Ok(listed) = resource::containers(&docker, spec, None).await else {
        return;
    };
    for summary in listed
        .iter()
        .filter(|summary| resource::is_running(summary))
    {
        let of = resource::label(summary, resource::LABEL_RESOURCE);
        if spec.resources.iter().any(|wanted| wanted.name == of) {
            continue;
        }
        let name = crate::stage::docker::name_of(summary);
        // The grace Docker keeps with the container (its spec is gone).
        let stopped = docker
            .stop_container(
                &name,
                None::<bollard::query_parameters::StopContainerOptions>,
            )
            .await;
        match stopped {
            Ok(()) => emitter.system(format!(
                "resource {of} is no longer in this deployment for this host: stopped its container {name}; its volumes stay (berth delete --with-resources --purge-volumes removes them)"
            )),
            Err(err) => emitter.system(format!(
                "warning: resource {of} is no longer in this deployment, but stopping {name} failed: {err}"
            )),
        }
    }
}

/// `berth stop --with-resources`: stops the app's resource containers here.
pub(super) async fn stop_resources(
    agent: &Arc<Agent>,
    spec: &TaskSpec,
    emitter: &Emitter<'_>,
) -> Result<BTreeMap<String, String>, Failure> {
    let docker = super::resources::connect(agent).await?;
    let running = resource::containers(&docker, spec, None)
        .await
        .map_err(Failure::failed)?;
    let mut stopped = 0;
    for summary in running
        .iter()
        .filter(|summary| resource::is_running(summary))
    {
        let name = crate::stage::docker::name_of(summary);
        let of = resource::label(summary, resource::LABEL_RESOURCE);
        let grace = spec
            .resources
            .iter()
            .find(|wanted| wanted.name == of)
            .and_then(|wanted| wanted.container.clone())
            .unwrap_or_default();
        resource::stop(&docker, &name, &grace)
            .await
            .map_err(Failure::failed)?;
        emitter.system(format!("stopped resource {of} (container {name})"));
        stopped += 1;
    }
    Ok(BTreeMap::from([(
        "resources_stopped".to_string(),
        stopped.to_string(),
    )]))
}

/// `berth delete --with-resources [--purge-volumes]`: removes the app's
/// resource containers and its network here, and with `purge_volumes`
/// their named volumes.
pub(super) async fn remove_resources(
    agent: &Arc<Agent>,
    spec: &TaskSpec,
    emitter: &Emitter<'_>,
    details: &mut BTreeMap<String, String>,
) -> Result<(), Failure> {
    let docker = super::resources::connect(agent).await?;
    let listed = resource::containers(&docker, spec, None)
        .await
        .map_err(Failure::failed)?;
    for name in resource::names(&listed) {
        docker::remove(&docker, &name).await;
        emitter.system(format!("removed resource container {name}"));
    }
    details.insert("resources_removed".to_string(), listed.len().to_string());
    match resource::remove_network(&docker, spec).await {
        Ok(true) => emitter.system(format!("removed network {}", resource::network_name(spec))),
        Ok(false) => {}
        Err(err) => emitter.system(format!("warning: {err}; it is still in use, so it stays")),
    }
    if spec.purge_volumes {
        let removed = resource::remove_volumes(&docker, spec)
            .await
            .map_err(Failure::failed)?;
        for volume in &removed {
            emitter.system(format!("removed volume {volume}"));
        }
        details.insert("volumes_removed".to_string(), removed.len().to_string());
    } else {
        emitter
            .system("the resources' volumes stay (remove them with --purge-volumes)".to_string());
    }
    Ok(())
}
