//! Container stages through the Docker Engine API (bollard): make sure the
//! image is on the host, start the new container beside the old one, watch
//! it start, then retire the old one; stop an app's containers; describe
//! what berth runs on this host.
//!
//! Every container carries berth's labels, so a restarted agent finds its
//! containers again and never starts a second copy.

use std::collections::HashMap;
use std::time::Duration;

use berth_proto::v1::{ContainerSpec, TaskSpec};
use bollard::Docker;
use bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};

use super::shell::LineSink;

mod image;
mod inspect;
mod replace;
pub mod resource;
pub mod restore;
mod run;
mod secret_files;
pub mod snapshot;
pub use image::{build_image, image_id, load_archive, pull, save_image};
pub use inspect::{details, follow_output, inspect, output};
pub use replace::{
    Made, made_by, remove_deployment, retire_others, start_again, stop_app, stop_others,
};
pub use run::{exec_in, host_port, pid_and_ips, start, tail, watch_start, watch_while_checked};

/// Label keys berth puts on its containers.
pub const LABEL_MANAGED: &str = "berth.managed-by";
pub const LABEL_APP: &str = "berth.app";
pub const LABEL_ENVIRONMENT: &str = "berth.environment";
pub const LABEL_DEPLOYMENT: &str = "berth.deployment-id";
pub const LABEL_VERSION: &str = "berth.version";
pub const LABEL_TASK: &str = "berth.task-id";
pub const LABEL_HOST: &str = "berth.host";

/// How long a new container must stay up before it counts as started.
const START_WATCH: Duration = Duration::from_secs(2);
/// Grace before Docker kills a container being stopped.
const STOP_GRACE_SECS: i32 = 10;
/// Log lines kept as evidence of a failed start.
const EVIDENCE_LINES: usize = 20;

/// The default Docker address: `DOCKER_HOST`, else the standard socket.
pub fn default_address() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into())
}

/// Connects to Docker at `address` and negotiates the API version.
pub async fn connect(address: &str) -> Result<Docker, String> {
    let client = if address.starts_with("tcp://") || address.starts_with("http://") {
        Docker::connect_with_http(address, 120, bollard::API_DEFAULT_VERSION)
    } else {
        let path = address.strip_prefix("unix://").unwrap_or(address);
        Docker::connect_with_unix(path, 120, bollard::API_DEFAULT_VERSION)
    };
    let client = client.map_err(|err| format!("{address}: {err}"))?;
    let client = tokio::time::timeout(Duration::from_secs(10), client.negotiate_version())
        .await
        .map_err(|_| format!("{address}: no answer within 10s"))?
        .map_err(|err| format!("{address}: {err}"))?;
    Ok(client)
}

/// Docker's version at `address`, or why it cannot be reached.
pub async fn probe(address: &str) -> Result<String, String> {
    let docker = connect(address).await?;
    let version = tokio::time::timeout(Duration::from_secs(10), docker.version())
        .await
        .map_err(|_| format!("{address}: no answer within 10s"))?
        .map_err(|err| format!("{address}: {err}"))?;
    Ok(version.version.unwrap_or_else(|| "unknown".into()))
}

/// The predictable name of a deployment's container on a host. The agent's
/// name is part of it so agents sharing one Docker (dev setups, tests) do
/// not collide.
pub fn container_name(task: &TaskSpec) -> String {
    name_for(
        &task.app,
        &task.environment,
        &task.host,
        &task.deployment_id,
    )
}

/// [`container_name`] from its parts.
pub fn name_for(app: &str, environment: &str, host: &str, deployment_id: &str) -> String {
    format!(
        "berth-{app}-{environment}-{}-{}",
        host.to_ascii_lowercase(),
        deployment_id.to_ascii_lowercase()
    )
}

/// True when Docker answered 404: the container (or image) is not there.
pub(super) fn is_not_found(err: &bollard::errors::Error) -> bool {
    matches!(
        err,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

pub(super) fn text(message: impl std::fmt::Display) -> String {
    message.to_string()
}

/// Force-removes a container, ignoring a missing one.
pub async fn remove(docker: &Docker, name: &str) {
    let options = RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    let _ = docker.remove_container(name, Some(options)).await;
}

pub(super) fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

pub(super) fn filters(
    host: &str,
    app: Option<&str>,
    environment: Option<&str>,
) -> HashMap<String, Vec<String>> {
    let mut labels = vec![
        format!("{LABEL_MANAGED}=berth"),
        format!("{LABEL_HOST}={host}"),
    ];
    labels.extend(app.map(|app| format!("{LABEL_APP}={app}")));
    labels.extend(environment.map(|env| format!("{LABEL_ENVIRONMENT}={env}")));
    HashMap::from([("label".to_string(), labels)])
}

/// berth's containers on this host, optionally of one app and environment.
pub(super) async fn list(
    docker: &Docker,
    host: &str,
    app: Option<&str>,
    environment: Option<&str>,
) -> Result<Vec<bollard::models::ContainerSummary>, String> {
    let options = ListContainersOptions {
        all: true,
        filters: Some(filters(host, app, environment)),
        ..Default::default()
    };
    docker.list_containers(Some(options)).await.map_err(text)
}

pub fn name_of(summary: &bollard::models::ContainerSummary) -> String {
    summary
        .names
        .as_ref()
        .and_then(|names| names.first())
        .map(|name| name.trim_start_matches('/').to_string())
        .unwrap_or_default()
}

/// A listed container's published ports, `host_ip:host_port->port/tcp`.
pub(super) fn ports_of(summary: &bollard::models::ContainerSummary) -> Vec<String> {
    summary
        .ports
        .clone()
        .unwrap_or_default()
        .iter()
        .filter_map(|port| {
            port.public_port.map(|public| {
                format!(
                    "{}:{public}->{}/tcp",
                    port.ip.clone().unwrap_or_default(),
                    port.private_port
                )
            })
        })
        .collect()
}

/// A listed container's mounts, `volume-or-host-path:/path`.
pub fn volumes_of(summary: &bollard::models::ContainerSummary) -> Vec<String> {
    summary
        .mounts
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|mount| {
            let source = mount.name.or(mount.source).unwrap_or_default();
            format!("{source}:{}", mount.destination.unwrap_or_default())
        })
        .collect()
}

/// The restart policy and limits every berth container gets.
pub(super) fn limited(container: &ContainerSpec) -> bollard::models::HostConfig {
    bollard::models::HostConfig {
        restart_policy: Some(bollard::models::RestartPolicy {
            name: Some(bollard::models::RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        }),
        memory: (container.memory_bytes > 0)
            .then(|| i64::try_from(container.memory_bytes).unwrap_or(i64::MAX)),
        nano_cpus: (container.nano_cpus > 0)
            .then(|| i64::try_from(container.nano_cpus).unwrap_or(i64::MAX)),
        ..Default::default()
    }
}

/// Docker's stop grace for a container spec (seconds).
pub(super) fn stop_grace(container: &ContainerSpec) -> i32 {
    if container.stop_timeout_secs > 0 {
        i32::try_from(container.stop_timeout_secs).unwrap_or(i32::MAX)
    } else {
        STOP_GRACE_SECS
    }
}
