//! Running a container: its labels and create body, the start, the watch
//! while it starts or is checked, and what it shows (port, pid, last lines).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use berth_proto::v1::{ContainerSpec, TaskSpec};
use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{CreateContainerOptions, InspectContainerOptions, LogsOptions};
use futures_util::StreamExt;

use crate::stage::shell::{LineSink, Stream};

use super::{
    EVIDENCE_LINES, LABEL_APP, LABEL_DEPLOYMENT, LABEL_ENVIRONMENT, LABEL_HOST, LABEL_MANAGED,
    LABEL_TASK, LABEL_VERSION, START_WATCH, container_name, is_not_found, remove, short, text,
};

pub(super) fn labels(task: &TaskSpec) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_MANAGED.to_string(), "berth".to_string()),
        (LABEL_APP.to_string(), task.app.clone()),
        (LABEL_ENVIRONMENT.to_string(), task.environment.clone()),
        (LABEL_DEPLOYMENT.to_string(), task.deployment_id.clone()),
        (LABEL_VERSION.to_string(), task.version.clone()),
        (LABEL_TASK.to_string(), task.task_id.clone()),
        (LABEL_HOST.to_string(), task.host.clone()),
    ])
}

pub(super) fn create_body(task: &TaskSpec, container: &ContainerSpec) -> ContainerCreateBody {
    let port_key = format!("{}/tcp", container.port);
    let (exposed, bindings) = if container.port > 0 {
        let host_port = if container.host_port > 0 {
            container.host_port.to_string()
        } else {
            String::new()
        };
        // Behind a proxy the app is reached through Caddy only.
        let host_ip = if container.proxy.is_some() {
            "127.0.0.1"
        } else {
            "0.0.0.0"
        };
        let binding = PortBinding {
            host_ip: Some(host_ip.into()),
            host_port: Some(host_port),
        };
        (
            Some(vec![port_key.clone()]),
            Some(HashMap::from([(port_key, Some(vec![binding]))])),
        )
    } else {
        (None, None)
    };
    let host_config = HostConfig {
        // Beside its resources, on the app's network, where they answer by name.
        network_mode: (!task.resources.is_empty()).then(|| super::resource::network_name(task)),
        port_bindings: bindings,
        binds: Some(container.volumes.clone()).filter(|volumes| !volumes.is_empty()),
        ..super::limited(container)
    };
    // Secrets given as files are not variables too.
    let secrets = task
        .secrets
        .iter()
        .filter(|secret| secret.file.is_empty())
        .map(|secret| (&secret.name, &secret.value));
    let mut env: Vec<String> = container
        .env
        .iter()
        .chain(secrets)
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    env.sort();
    ContainerCreateBody {
        image: Some(container.image.clone()),
        cmd: Some(container.command.clone()).filter(|command| !command.is_empty()),
        env: Some(env),
        labels: Some(labels(task)),
        exposed_ports: exposed,
        host_config: Some(host_config),
        ..Default::default()
    }
}

/// Creates and starts the deployment's container, reusing one left by an
/// earlier attempt of the same deployment. Returns its id.
pub async fn start(
    docker: &Docker,
    task: &TaskSpec,
    container: &ContainerSpec,
    sink: &dyn LineSink,
) -> Result<String, String> {
    let name = container_name(task);
    if let Ok(existing) = docker
        .inspect_container(&name, None::<InspectContainerOptions>)
        .await
    {
        let labels = existing
            .config
            .and_then(|config| config.labels)
            .unwrap_or_default();
        if labels.get(LABEL_DEPLOYMENT) == Some(&task.deployment_id) {
            sink.line(
                Stream::System,
                format!("container {name} already exists for this deployment; reusing it"),
            );
            if !existing
                .state
                .and_then(|state| state.running)
                .unwrap_or(false)
            {
                docker.start_container(&name, None).await.map_err(text)?;
            }
            return Ok(existing.id.unwrap_or(name));
        }
        sink.line(
            Stream::System,
            format!("removing a stale container named {name}"),
        );
        remove(docker, &name).await;
    }
    let options = CreateContainerOptions {
        name: Some(name.clone()),
        ..Default::default()
    };
    let created = docker
        .create_container(Some(options), create_body(task, container))
        .await
        .map_err(text)?;
    sink.line(
        Stream::System,
        format!("created container {name} ({})", short(&created.id)),
    );
    if let Err(err) = super::secret_files::put(docker, &name, task, sink).await {
        remove(docker, &name).await;
        return Err(err);
    }
    if let Err(err) = docker.start_container(&name, None).await {
        let evidence = last_lines(docker, &name).await;
        remove(docker, &name).await;
        return Err(format!("container {name} did not start: {err}{evidence}"));
    }
    Ok(created.id)
}

/// Streams the container's output and watches its state for
/// [`START_WATCH`]; an exit or a restart in that time is a failed start,
/// reported with the container's last lines.
pub async fn watch_start(docker: &Docker, name: &str, sink: &dyn LineSink) -> Result<(), String> {
    watch(docker, name, sink, Some(START_WATCH)).await
}

/// Streams the container's output and watches its state until it exits or
/// restarts (the error, with its last lines); never ends otherwise. Run
/// beside a health check, it makes a container that dies while it is
/// being checked fail at once instead of at the check's timeout.
pub async fn watch_while_checked(docker: &Docker, name: &str, sink: &dyn LineSink) -> String {
    loop {
        if let Err(error) = watch(docker, name, sink, None).await {
            return error;
        }
    }
}

/// See [`watch_start`]; `hold: None` watches until the container exits.
pub(super) async fn watch(
    docker: &Docker,
    name: &str,
    sink: &dyn LineSink,
    hold: Option<Duration>,
) -> Result<(), String> {
    let options = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let mut logs = docker.logs(name, Some(options));
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    let mut pending = String::new();
    loop {
        tokio::select! {
            chunk = logs.next() => match chunk {
                Some(Ok(output)) => {
                    pending.push_str(&output.to_string());
                    while let Some(end) = pending.find('\n') {
                        let line: String = pending.drain(..=end).collect();
                        sink.line(Stream::Container, line.trim_end().to_string());
                    }
                }
                // The log stream ends when the container stops.
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            },
            _ = ticker.tick() => {
                let inspect = match docker.inspect_container(name, None::<InspectContainerOptions>).await {
                    Ok(inspect) => inspect,
                    // Beside a long health check a passing Docker error is
                    // not the container's fault: look again at the next tick.
                    Err(err) if hold.is_none() && !is_not_found(&err) => {
                        tracing::warn!(container = %name, error = %err, "could not inspect the container; trying again");
                        continue;
                    }
                    Err(err) => return Err(format!("container {name}: {err}")),
                };
                let state = inspect.state.unwrap_or_default();
                let restarts = inspect.restart_count.unwrap_or(0);
                let running = state.running.unwrap_or(false);
                if !running || restarts > 0 {
                    if !pending.trim().is_empty() {
                        sink.line(Stream::Container, pending.trim_end().to_string());
                    }
                    let phase = if hold.is_some() { "during start-up" } else { "while its health was checked" };
                    let what = if running {
                        format!("kept exiting {phase} (Docker restarted it {restarts} time(s))")
                    } else {
                        let code = state.exit_code.map_or_else(String::new, |code| format!(" with code {code}"));
                        format!("exited{code} {phase}")
                    };
                    let evidence = last_lines(docker, name).await;
                    return Err(format!("container {name} {what}{evidence}"));
                }
                if hold.is_some_and(|hold| started.elapsed() >= hold) {
                    return Ok(());
                }
            }
        }
    }
}

/// The host port Docker published for `port`, if any.
pub async fn host_port(docker: &Docker, name: &str, port: u32) -> Option<String> {
    let inspect = docker
        .inspect_container(name, None::<InspectContainerOptions>)
        .await
        .ok()?;
    let ports = inspect.network_settings?.ports?;
    let bindings = ports.get(&format!("{port}/tcp"))?.clone()?;
    bindings
        .into_iter()
        .find_map(|binding| binding.host_port.filter(|port| !port.is_empty()))
}

/// The container's main process id on the host (0 when it does not run)
/// and its addresses on its networks.
pub async fn pid_and_ips(docker: &Docker, name: &str) -> (i64, Vec<String>) {
    let Ok(inspect) = docker
        .inspect_container(name, None::<InspectContainerOptions>)
        .await
    else {
        return (0, Vec::new());
    };
    let pid = inspect.state.and_then(|state| state.pid).unwrap_or(0);
    let ips = inspect
        .network_settings
        .and_then(|settings| settings.networks)
        .map(|networks| {
            networks
                .into_values()
                .filter_map(|network| network.ip_address.filter(|ip| !ip.is_empty()))
                .collect()
        })
        .unwrap_or_default();
    (pid, ips)
}

/// The container's last `lines` lines of output.
pub async fn tail(docker: &Docker, name: &str, lines: usize) -> String {
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        tail: lines.to_string(),
        ..Default::default()
    };
    let mut logs = docker.logs(name, Some(options));
    let mut text = String::new();
    while let Some(Ok(output)) = logs.next().await {
        text.push_str(&output.to_string());
    }
    text.trim_end().to_string()
}

/// The container's last lines, formatted as evidence for an error message.
pub(super) async fn last_lines(docker: &Docker, name: &str) -> String {
    let text = tail(docker, name, EVIDENCE_LINES).await;
    let text = text.trim_end();
    if text.is_empty() {
        "; it printed nothing".into()
    } else {
        format!("; its last output:\n{text}")
    }
}

/// Runs `command` with `/bin/sh -c` inside a running container; its exit
/// code and output (clipped to 4 KiB).
pub async fn exec_in(docker: &Docker, name: &str, command: &str) -> Result<(i64, String), String> {
    use bollard::exec::{CreateExecOptions, StartExecResults};
    let exec = docker
        .create_exec(
            name,
            CreateExecOptions {
                cmd: Some(vec!["/bin/sh", "-c", command]),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(text)?;
    let mut output = String::new();
    if let StartExecResults::Attached {
        output: mut stream, ..
    } = docker.start_exec(&exec.id, None).await.map_err(text)?
    {
        while let Some(Ok(chunk)) = stream.next().await {
            if output.len() < 4096 {
                output.push_str(&chunk.to_string());
            }
        }
    }
    let code = docker
        .inspect_exec(&exec.id)
        .await
        .map_err(text)?
        .exit_code
        .unwrap_or(-1);
    Ok((code, output))
}
