//! A resource's Docker objects (`[resources.NAME]`): the app's network
//! `berth-APP-ENV-HOST`, the resource's container (reached on that network
//! by its name) and its named volumes, each with berth's labels so a
//! restarted agent finds them again. Resource containers are labelled
//! `berth.managed-by=berth-resource`, so nothing that handles the app's own
//! containers (retire, stop, delete, repair) ever touches them.

use std::collections::HashMap;

use berth_proto::v1::{ContainerSpec, ResourceSpec, TaskSpec};
use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, ContainerSummary, EndpointSettings, HostConfig, NetworkCreateRequest,
    NetworkingConfig, PortBinding, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, ListContainersOptions, ListVolumesOptions,
    RemoveVolumeOptions, StopContainerOptions,
};

use super::{LABEL_APP, LABEL_DEPLOYMENT, LABEL_ENVIRONMENT, LABEL_HOST, LABEL_MANAGED};
use super::{is_not_found, name_of, remove, short, stop_grace, text};

mod view;
pub use view::{health_now, inspect};

/// The managed-by value of resource containers, networks and volumes.
pub const MANAGED_RESOURCE: &str = "berth-resource";
/// The resource's name.
pub const LABEL_RESOURCE: &str = "berth.resource";
/// The fingerprint of the spec that made the container.
pub const LABEL_SPEC: &str = "berth.spec";
/// Its health check (a `HealthSpec`, protobuf in base64), for `inspect`.
pub const LABEL_HEALTH: &str = "berth.health";
/// The port its health check reaches on the app's network.
pub const LABEL_PORT: &str = "berth.port";

/// The app's network on this host: its containers and its resources.
pub fn network_name(task: &TaskSpec) -> String {
    format!(
        "berth-{}-{}-{}",
        task.app,
        task.environment,
        task.host.to_ascii_lowercase()
    )
}

/// The Docker volume a resource's named volume `volume` is on this host:
/// one per app, environment, host and resource, so environments never
/// share data.
pub fn volume_name(task: &TaskSpec, resource: &str, volume: &str) -> String {
    format!(
        "berth-{}-{}-{}-{resource}-{volume}",
        task.app,
        task.environment,
        task.host.to_ascii_lowercase()
    )
}

/// The resource's volumes as Docker binds: a bare name becomes the
/// resource's own named volume; a host path stays as it is.
pub fn binds(task: &TaskSpec, resource: &str, volumes: &[String]) -> Vec<String> {
    volumes
        .iter()
        .map(|volume| match volume.split_once(':') {
            Some((source, rest)) if !source.starts_with('/') => {
                format!("{}:{rest}", volume_name(task, resource, source))
            }
            _ => volume.clone(),
        })
        .collect()
}

/// One of a resource's named volumes.
pub struct NamedVolume {
    /// As the manifest names it (`data`).
    pub short: String,
    /// The Docker volume (`berth-APP-ENV-HOST-RESOURCE-data`).
    pub docker: String,
    /// Where it is mounted inside the container.
    pub path: String,
}

/// The named volumes among a resource's volumes.
pub fn named_volumes(task: &TaskSpec, resource: &str, volumes: &[String]) -> Vec<NamedVolume> {
    volumes
        .iter()
        .filter_map(|volume| {
            let mut parts = volume.split(':');
            let source = parts.next()?;
            let target = parts.next()?;
            (!source.starts_with('/')).then(|| NamedVolume {
                short: source.to_string(),
                docker: volume_name(task, resource, source),
                path: target.to_string(),
            })
        })
        .collect()
}

fn labels(task: &TaskSpec, resource: Option<&str>) -> HashMap<String, String> {
    let mut labels = HashMap::from([
        (LABEL_MANAGED.to_string(), MANAGED_RESOURCE.to_string()),
        (LABEL_APP.to_string(), task.app.clone()),
        (LABEL_ENVIRONMENT.to_string(), task.environment.clone()),
        (LABEL_HOST.to_string(), task.host.clone()),
    ]);
    labels.extend(resource.map(|name| (LABEL_RESOURCE.to_string(), name.to_string())));
    labels
}

fn label_filters(task: &TaskSpec, resource: Option<&str>) -> HashMap<String, Vec<String>> {
    let mut labels: Vec<String> = labels(task, resource)
        .into_iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    labels.sort();
    HashMap::from([("label".to_string(), labels)])
}

/// Makes the app's network unless it is there; returns its name.
pub async fn ensure_network(docker: &Docker, task: &TaskSpec) -> Result<String, String> {
    let name = network_name(task);
    match docker.inspect_network(&name, None).await {
        Ok(_) => return Ok(name),
        Err(err) if !is_not_found(&err) => return Err(format!("network {name}: {err}")),
        Err(_) => {}
    }
    let request = NetworkCreateRequest {
        name: name.clone(),
        driver: Some("bridge".into()),
        labels: Some(labels(task, None)),
        ..Default::default()
    };
    match docker.create_network(request).await {
        Ok(_) => Ok(name),
        // Made meanwhile by another task of the same app: fine.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => Ok(name),
        Err(err) => Err(format!("create network {name}: {err}")),
    }
}

/// Removes the app's network (after its containers are gone).
pub async fn remove_network(docker: &Docker, task: &TaskSpec) -> Result<bool, String> {
    let name = network_name(task);
    match docker.remove_network(&name).await {
        Ok(()) => Ok(true),
        Err(err) if is_not_found(&err) => Ok(false),
        Err(err) => Err(format!("remove network {name}: {err}")),
    }
}

/// The resource containers of this app on this host (of one resource, or all).
pub async fn containers(
    docker: &Docker,
    task: &TaskSpec,
    resource: Option<&str>,
) -> Result<Vec<ContainerSummary>, String> {
    let options = ListContainersOptions {
        all: true,
        filters: Some(label_filters(task, resource)),
        ..Default::default()
    };
    docker.list_containers(Some(options)).await.map_err(text)
}

/// The container of resource `name` of this app that counts now: the
/// running one, else the newest.
pub async fn current(
    docker: &Docker,
    task: &TaskSpec,
    name: &str,
) -> Result<Option<String>, String> {
    let mut listed = containers(docker, task, Some(name)).await?;
    listed.sort_by_key(|summary| (is_running(summary), summary.created.unwrap_or(0)));
    Ok(names(&listed).pop())
}

/// Every resource container berth runs on this host, optionally of one app.
pub async fn all_containers(
    docker: &Docker,
    host: &str,
    app: Option<&str>,
) -> Result<Vec<ContainerSummary>, String> {
    let mut labels = vec![
        format!("{LABEL_MANAGED}={MANAGED_RESOURCE}"),
        format!("{LABEL_HOST}={host}"),
    ];
    labels.extend(app.map(|app| format!("{LABEL_APP}={app}")));
    let options = ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([("label".to_string(), labels)])),
        ..Default::default()
    };
    docker.list_containers(Some(options)).await.map_err(text)
}

/// The label `key` of a listed container.
pub fn label(summary: &ContainerSummary, key: &str) -> String {
    summary
        .labels
        .as_ref()
        .and_then(|labels| labels.get(key).cloned())
        .unwrap_or_default()
}

/// Whether a listed container runs now.
pub fn is_running(summary: &ContainerSummary) -> bool {
    summary
        .state
        .as_ref()
        .is_some_and(|state| state.to_string() == "running")
}

/// The resource container's name for a spec: its fingerprint's first
/// characters tell an old container from its replacement.
pub fn container_name(task: &TaskSpec, resource: &ResourceSpec) -> String {
    format!(
        "berth-{}-{}-{}-{}-{}",
        task.app,
        task.environment,
        task.host.to_ascii_lowercase(),
        resource.name,
        &resource.fingerprint[..resource.fingerprint.len().min(8)]
    )
}

/// Creates the resource's volumes (with labels) and its container on the
/// app's network, then starts it. `container` is the resource's spec with
/// its secrets' values in `env`. Returns the container's name.
pub async fn start(
    docker: &Docker,
    task: &TaskSpec,
    resource: &ResourceSpec,
    container: &ContainerSpec,
    network: &str,
) -> Result<String, String> {
    let name = container_name(task, resource);
    if docker
        .inspect_container(&name, None::<InspectContainerOptions>)
        .await
        .is_ok()
    {
        // A leftover of an interrupted attempt with this very spec.
        remove(docker, &name).await;
    }
    for volume in named_volumes(task, &resource.name, &container.volumes) {
        let volume = volume.docker;
        let request = VolumeCreateRequest {
            name: Some(volume.clone()),
            labels: Some(labels(task, Some(&resource.name))),
            ..Default::default()
        };
        docker
            .create_volume(request)
            .await
            .map_err(|err| format!("create volume {volume}: {err}"))?;
    }
    let mut container_labels = labels(task, Some(&resource.name));
    container_labels.insert(LABEL_SPEC.to_string(), resource.fingerprint.clone());
    container_labels.insert(LABEL_DEPLOYMENT.to_string(), task.deployment_id.clone());
    container_labels.insert(LABEL_PORT.to_string(), container.port.to_string());
    if let Some(health) = &container.health {
        use base64::Engine;
        use prost::Message;
        container_labels.insert(
            LABEL_HEALTH.to_string(),
            base64::engine::general_purpose::STANDARD.encode(health.encode_to_vec()),
        );
    }
    let port_key = format!("{}/tcp", container.port);
    let (exposed, bindings) = if container.port > 0 && container.host_port > 0 {
        let host_ip = if resource.host_ip.is_empty() {
            "127.0.0.1".to_string()
        } else {
            resource.host_ip.clone()
        };
        let binding = PortBinding {
            host_ip: Some(host_ip),
            host_port: Some(container.host_port.to_string()),
        };
        (
            Some(vec![port_key.clone()]),
            Some(HashMap::from([(port_key, Some(vec![binding]))])),
        )
    } else {
        (None, None)
    };
    let mut env: Vec<String> = container
        .env
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    env.sort();
    let body = ContainerCreateBody {
        image: Some(container.image.clone()),
        cmd: Some(container.command.clone()).filter(|command| !command.is_empty()),
        env: Some(env),
        labels: Some(container_labels),
        exposed_ports: exposed,
        // Docker's own grace, so a stop that no longer has the spec uses it.
        stop_timeout: Some(i64::from(stop_grace(container))),
        host_config: Some(HostConfig {
            network_mode: Some(network.to_string()),
            port_bindings: bindings,
            binds: Some(binds(task, &resource.name, &container.volumes))
                .filter(|binds| !binds.is_empty()),
            ..super::limited(container)
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network.to_string(),
                EndpointSettings {
                    aliases: Some(vec![resource.name.clone()]),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    };
    let options = CreateContainerOptions {
        name: Some(name.clone()),
        ..Default::default()
    };
    let created = docker
        .create_container(Some(options), body)
        .await
        .map_err(|err| format!("create container {name}: {err}"))?;
    if let Err(err) = docker.start_container(&name, None).await {
        let evidence = super::run::last_lines(docker, &name).await;
        remove(docker, &name).await;
        return Err(format!("container {name} did not start: {err}{evidence}"));
    }
    tracing::info!(container = %name, id = %short(&created.id), "resource container started");
    Ok(name)
}

/// Stops a resource container (with the resource's stop grace).
pub async fn stop(docker: &Docker, name: &str, container: &ContainerSpec) -> Result<(), String> {
    let options = StopContainerOptions {
        t: Some(stop_grace(container)),
        ..Default::default()
    };
    match docker.stop_container(name, Some(options)).await {
        Ok(()) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(format!("stop {name}: {err}")),
    }
}

/// The container's address on the app's network.
pub async fn address(docker: &Docker, name: &str, network: &str) -> Option<String> {
    let inspect = docker
        .inspect_container(name, None::<InspectContainerOptions>)
        .await
        .ok()?;
    inspect
        .network_settings?
        .networks?
        .get(network)?
        .ip_address
        .clone()
        .filter(|ip| !ip.is_empty())
}

/// Removes the app's resource volumes on this host; returns their names.
pub async fn remove_volumes(docker: &Docker, task: &TaskSpec) -> Result<Vec<String>, String> {
    let options = ListVolumesOptions {
        filters: Some(label_filters(task, None)),
    };
    let listed = docker.list_volumes(Some(options)).await.map_err(text)?;
    let mut removed = Vec::new();
    for volume in listed.volumes.unwrap_or_default() {
        match docker
            .remove_volume(&volume.name, None::<RemoveVolumeOptions>)
            .await
        {
            Ok(()) => removed.push(volume.name),
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(format!("remove volume {}: {err}", volume.name)),
        }
    }
    Ok(removed)
}

/// The names of listed containers.
pub fn names(summaries: &[ContainerSummary]) -> Vec<String> {
    summaries.iter().map(name_of).collect()
}
