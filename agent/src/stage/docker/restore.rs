//! Putting a volume snapshot back into a resource (`berth resource
//! restore`): the resource's container is stopped and removed (Docker
//! keeps a volume while any container names it), the volume is made anew
//! and filled from the archive through a helper container that never
//! starts, and the resource's container is made again exactly as it was
//! (same name, config, labels, network alias) and started.

use std::collections::HashMap;
use std::path::Path;

use berth_proto::v1::TaskSpec;
use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, RemoveVolumeOptions, StopContainerOptions,
};

use super::resource::{self, LABEL_RESOURCE};
use super::{remove, text};

/// Restores `file`, a snapshot of the resource's volume `volume` (as the
/// manifest names it), on this host. Returns the container started again;
/// `lines` tells what was done.
pub async fn restore(
    docker: &Docker,
    scope: &TaskSpec,
    name: &str,
    volume: &str,
    file: &Path,
    lines: &mut Vec<String>,
) -> Result<String, String> {
    let Some(container) = resource::current(docker, scope, name).await? else {
        return Err(format!(
            "resource {name} has no container on this host; deploy the app first"
        ));
    };
    let inspect = docker
        .inspect_container(&container, None::<InspectContainerOptions>)
        .await
        .map_err(text)?;
    let docker_volume = resource::volume_name(scope, name, volume);
    let Some(path) = inspect
        .mounts
        .clone()
        .unwrap_or_default()
        .into_iter()
        .find(|mount| mount.name.as_deref() == Some(docker_volume.as_str()))
        .and_then(|mount| mount.destination)
    else {
        return Err(format!(
            "resource {name}'s container {container} has no volume {volume} ({docker_volume})"
        ));
    };
    let config = inspect.config.clone().unwrap_or_default();
    let image = config.image.clone().unwrap_or_default();
    let options = StopContainerOptions {
        t: Some(
            config
                .stop_timeout
                .map_or(10, |t| i32::try_from(t).unwrap_or(10)),
        ),
        ..Default::default()
    };
    let _ = docker.stop_container(&container, Some(options)).await;
    remove(docker, &container).await;
    lines.push(format!(
        "stopped and removed container {container} of resource {name}"
    ));
    docker
        .remove_volume(&docker_volume, None::<RemoveVolumeOptions>)
        .await
        .map_err(|err| format!("remove volume {docker_volume}: {err}"))?;
    let mut labels = config.labels.clone().unwrap_or_default();
    labels.retain(|key, _| {
        key.starts_with("berth.")
            && key != resource::LABEL_SPEC
            && key != resource::LABEL_HEALTH
            && key != resource::LABEL_PORT
            && key != super::LABEL_DEPLOYMENT
    });
    labels.insert(LABEL_RESOURCE.to_string(), name.to_string());
    docker
        .create_volume(VolumeCreateRequest {
            name: Some(docker_volume.clone()),
            labels: Some(labels),
            ..Default::default()
        })
        .await
        .map_err(|err| format!("create volume {docker_volume}: {err}"))?;
    lines.push(format!("made volume {docker_volume} anew"));
    let helper = format!("{container}-restore");
    remove(docker, &helper).await;
    let body = ContainerCreateBody {
        image: Some(image),
        cmd: Some(vec!["true".into()]),
        host_config: Some(HostConfig {
            binds: Some(vec![format!("{docker_volume}:{path}")]),
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let create = CreateContainerOptions {
        name: Some(helper.clone()),
        ..Default::default()
    };
    docker
        .create_container(Some(create), body)
        .await
        .map_err(|err| format!("create the helper container {helper}: {err}"))?;
    let filled = super::snapshot::restore(docker, &helper, &path, file).await;
    remove(docker, &helper).await;
    filled?;
    lines.push(format!(
        "copied {} into volume {docker_volume} at {path}",
        file.file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default()
    ));
    again(docker, &container, inspect).await?;
    lines.push(format!("made container {container} again and started it"));
    Ok(container)
}

/// Makes a removed container again from its inspect, and starts it.
async fn again(
    docker: &Docker,
    name: &str,
    inspect: bollard::models::ContainerInspectResponse,
) -> Result<(), String> {
    let config = inspect.config.unwrap_or_default();
    let endpoints: HashMap<String, EndpointSettings> = inspect
        .network_settings
        .and_then(|settings| settings.networks)
        .unwrap_or_default()
        .into_iter()
        .map(|(network, endpoint)| {
            (
                network,
                EndpointSettings {
                    aliases: endpoint.aliases,
                    ..Default::default()
                },
            )
        })
        .collect();
    let body = ContainerCreateBody {
        image: config.image,
        cmd: config.cmd,
        entrypoint: config.entrypoint,
        env: config.env,
        labels: config.labels,
        exposed_ports: config.exposed_ports,
        working_dir: config.working_dir,
        user: config.user,
        stop_timeout: config.stop_timeout,
        host_config: inspect.host_config,
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        }),
        ..Default::default()
    };
    let options = CreateContainerOptions {
        name: Some(name.to_string()),
        ..Default::default()
    };
    docker
        .create_container(Some(options), body)
        .await
        .map_err(|err| format!("make container {name} again: {err}"))?;
    docker
        .start_container(name, None)
        .await
        .map_err(|err| format!("start container {name} again: {err}"))
}
