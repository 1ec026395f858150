//! Container stages through the Docker Engine API (bollard): make sure the
//! image is on the host, start the new container beside the old one, watch
//! it start, then retire the old one; stop an app's containers; describe
//! what berth runs on this host.
//!
//! Every container carries berth's labels, so a restarted agent finds its
//! containers again and never starts a second copy.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use berth_proto::v1::{ContainerSpec, TaskSpec};
use berth_shared::record::ContainerView;
use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ImportImageOptions, InspectContainerOptions,
    ListContainersOptions, LogsOptions, RemoveContainerOptions,
};
use futures_util::StreamExt;

use super::shell::LineSink;

mod replace;
pub use replace::{
    Made, made_by, remove_deployment, retire_others, start_again, stop_app, stop_others,
};

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
fn is_not_found(err: &bollard::errors::Error) -> bool {
    matches!(
        err,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

fn text(message: impl std::fmt::Display) -> String {
    message.to_string()
}

/// The id of the image a name refers to on the host, if it is there.
pub async fn image_id(docker: &Docker, image: &str) -> Option<String> {
    docker
        .inspect_image(image)
        .await
        .ok()
        .and_then(|image| image.id)
}

/// Pulls an image from its registry, reporting progress.
pub async fn pull(
    docker: &Docker,
    image: &str,
    auth: Option<&berth_proto::v1::RegistryAuth>,
    sink: &dyn LineSink,
) -> Result<(), String> {
    let options = CreateImageOptions {
        from_image: Some(image.to_string()),
        ..Default::default()
    };
    let credentials = auth.map(|auth| bollard::auth::DockerCredentials {
        username: Some(auth.username.clone()),
        password: Some(auth.password.clone()),
        serveraddress: Some(auth.server.clone()),
        ..Default::default()
    });
    if let Some(auth) = auth {
        sink.line(
            "system",
            format!(
                "pulling with the controller's credentials for {}",
                auth.server
            ),
        );
    }
    let mut progress = docker.create_image(Some(options), None, credentials);
    let mut last_status = String::new();
    while let Some(item) = progress.next().await {
        let info = item.map_err(text)?;
        let status = [info.id.unwrap_or_default(), info.status.unwrap_or_default()]
            .join(" ")
            .trim()
            .to_string();
        if !status.is_empty() && status != last_status {
            sink.line("system", format!("pull: {status}"));
            last_status = status;
        }
    }
    Ok(())
}

/// Loads a `docker save` tarball into Docker.
pub async fn load_archive(
    docker: &Docker,
    archive: &Path,
    sink: &dyn LineSink,
) -> Result<(), String> {
    let file = tokio::fs::File::open(archive)
        .await
        .map_err(|err| format!("open {}: {err}", archive.display()))?;
    let body = tokio_util::io::ReaderStream::new(file);
    let mut progress = docker.import_image_stream(ImportImageOptions::default(), body, None);
    while let Some(item) = progress.next().await {
        let info = item.map_err(text)?;
        if let Some(error) = info.error_detail.and_then(|detail| detail.message) {
            return Err(error);
        }
        if let Some(stream) = info
            .stream
            .map(|line| line.trim().to_string())
            .filter(|line| !line.is_empty())
        {
            sink.line("system", format!("load: {stream}"));
        }
    }
    Ok(())
}

fn labels(task: &TaskSpec) -> HashMap<String, String> {
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

fn create_body(task: &TaskSpec, container: &ContainerSpec) -> ContainerCreateBody {
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
        port_bindings: bindings,
        binds: Some(container.volumes.clone()).filter(|volumes| !volumes.is_empty()),
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        }),
        memory: (container.memory_bytes > 0)
            .then(|| i64::try_from(container.memory_bytes).unwrap_or(i64::MAX)),
        nano_cpus: (container.nano_cpus > 0)
            .then(|| i64::try_from(container.nano_cpus).unwrap_or(i64::MAX)),
        ..Default::default()
    };
    let mut env: Vec<String> = container
        .env
        .iter()
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
                "system",
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
        sink.line("system", format!("removing a stale container named {name}"));
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
        "system",
        format!("created container {name} ({})", short(&created.id)),
    );
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
async fn watch(
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
                        sink.line("container", line.trim_end().to_string());
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
                        sink.line("container", pending.trim_end().to_string());
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
async fn last_lines(docker: &Docker, name: &str) -> String {
    let text = tail(docker, name, EVIDENCE_LINES).await;
    let text = text.trim_end();
    if text.is_empty() {
        "; it printed nothing".into()
    } else {
        format!("; its last output:\n{text}")
    }
}

/// Force-removes a container, ignoring a missing one.
pub async fn remove(docker: &Docker, name: &str) {
    let options = RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    let _ = docker.remove_container(name, Some(options)).await;
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

fn filters(
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
async fn list(
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

fn name_of(summary: &bollard::models::ContainerSummary) -> String {
    summary
        .names
        .as_ref()
        .and_then(|names| names.first())
        .map(|name| name.trim_start_matches('/').to_string())
        .unwrap_or_default()
}

/// Docker's stop grace for a container spec (seconds).
fn stop_grace(container: &ContainerSpec) -> i32 {
    if container.stop_timeout_secs > 0 {
        i32::try_from(container.stop_timeout_secs).unwrap_or(i32::MAX)
    } else {
        STOP_GRACE_SECS
    }
}

/// What berth runs on this host, for `berth inspect`.
pub async fn inspect(
    docker: &Docker,
    host: &str,
    app: Option<&str>,
) -> Result<Vec<ContainerView>, String> {
    let mut views = Vec::new();
    for summary in list(docker, host, app, None).await? {
        let name = name_of(&summary);
        let labels = summary.labels.clone().unwrap_or_default();
        let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
        let restart_count = docker
            .inspect_container(&name, None::<InspectContainerOptions>)
            .await
            .ok()
            .and_then(|inspect| inspect.restart_count)
            .unwrap_or(0);
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: "5".into(),
            ..Default::default()
        };
        let mut logs = docker.logs(&name, Some(options));
        let mut recent = String::new();
        while let Some(Ok(output)) = logs.next().await {
            recent.push_str(&output.to_string());
        }
        views.push(ContainerView {
            name,
            id: short(summary.id.as_deref().unwrap_or_default()).to_string(),
            app: label(LABEL_APP),
            environment: label(LABEL_ENVIRONMENT),
            deployment_id: label(LABEL_DEPLOYMENT),
            version: label(LABEL_VERSION),
            image: summary.image.clone().unwrap_or_default(),
            state: summary
                .state
                .map(|state| state.to_string())
                .unwrap_or_default(),
            status: summary.status.clone().unwrap_or_default(),
            ports: summary
                .ports
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
                .collect(),
            restart_count,
            recent_logs: recent.lines().map(str::to_string).collect(),
            health: String::new(),
        });
    }
    views.sort_by(|a, b| (&a.app, &a.name).cmp(&(&b.app, &b.name)));
    Ok(views)
}

/// Details of a started container, for the stage result.
pub fn details(
    id: &str,
    name: &str,
    image: &str,
    host_port: Option<String>,
    retired: &[String],
) -> BTreeMap<String, String> {
    let mut details = BTreeMap::from([
        ("container_id".to_string(), short(id).to_string()),
        ("container_name".to_string(), name.to_string()),
        ("image".to_string(), image.to_string()),
    ]);
    details.extend(host_port.map(|port| ("host_port".to_string(), port)));
    if !retired.is_empty() {
        details.insert("replaced".to_string(), retired.join(","));
    }
    details
}

/// Follows a container's output from now on, in batches of lines; ends
/// when the container stops or `cancel` fires.
pub async fn follow_output(
    docker: &Docker,
    name: &str,
    cancel: &tokio_util::sync::CancellationToken,
    mut batch: impl FnMut(Vec<String>) -> bool,
) {
    let since = i32::try_from(berth_shared::time::now_ms() / 1000).unwrap_or(0);
    let options = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        since,
        ..Default::default()
    };
    let mut logs = docker.logs(name, Some(options));
    let mut pending = String::new();
    loop {
        let chunk = tokio::select! {
            () = cancel.cancelled() => return,
            chunk = logs.next() => chunk,
        };
        let Some(Ok(output)) = chunk else { return };
        pending.push_str(&output.to_string());
        let mut lines = Vec::new();
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            lines.push(line.trim_end().to_string());
        }
        if !lines.is_empty() && !batch(lines) {
            return;
        }
    }
}

/// Builds an image from `dir` as the context with the build's Dockerfile,
/// target and args, tagged `build.image_tag`, passing the builder's output
/// to `sink`; returns the image id.
pub async fn build_image(
    docker: &Docker,
    dir: &Path,
    build: &berth_proto::v1::BuildSpec,
    sink: &dyn LineSink,
) -> Result<String, String> {
    // The context is packed into a temporary file next to the directory
    // and streamed from there, so a large bundle does not sit in memory.
    let packed = dir.with_extension("context.tar");
    {
        let (context_dir, packed) = (dir.to_path_buf(), packed.clone());
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut archive = tar::Builder::new(std::fs::File::create(&packed)?);
            archive.follow_symlinks(false);
            archive.append_dir_all(".", &context_dir)?;
            archive.into_inner()?.sync_all()
        })
        .await
        .map_err(|err| format!("pack the build context: {err}"))?
        .map_err(|err| format!("pack the build context {}: {err}", dir.display()))?;
    }
    let file = tokio::fs::File::open(&packed)
        .await
        .map_err(|err| format!("open {}: {err}", packed.display()))?;
    let result = build_from(docker, build, file, sink).await;
    let _ = tokio::fs::remove_file(&packed).await;
    result
}

async fn build_from(
    docker: &Docker,
    build: &berth_proto::v1::BuildSpec,
    context: tokio::fs::File,
    sink: &dyn LineSink,
) -> Result<String, String> {
    use bollard::query_parameters::BuildImageOptions;
    let options = BuildImageOptions {
        dockerfile: build.dockerfile.clone(),
        t: Some(build.image_tag.clone()),
        target: build.target.clone(),
        buildargs: Some(build.args.clone().into_iter().collect()),
        rm: true,
        forcerm: true,
        ..Default::default()
    };
    let body = bollard::body_try_stream(tokio_util::io::ReaderStream::new(context));
    let mut progress = docker.build_image(options, None, Some(body));
    let mut image_id = String::new();
    while let Some(item) = progress.next().await {
        let info = item.map_err(text)?;
        if let Some(error) = info.error_detail.and_then(|detail| detail.message) {
            return Err(error);
        }
        if let Some(id) = info.aux.and_then(|aux| aux.id) {
            image_id = id;
        }
        for line in info.stream.iter().flat_map(|text| text.lines()) {
            let line = line.trim_end();
            if !line.is_empty() {
                sink.line("stdout", line.to_string());
            }
        }
    }
    if image_id.is_empty() {
        let inspected = docker
            .inspect_image(&build.image_tag)
            .await
            .map_err(|err| {
                format!(
                    "the build ended without image {}: {}",
                    build.image_tag,
                    text(err)
                )
            })?;
        image_id = inspected.id.unwrap_or_default();
    }
    Ok(image_id)
}

/// Writes `docker save` of `image` to `path`.
pub async fn save_image(docker: &Docker, image: &str, path: &Path) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|err| format!("create {}: {err}", path.display()))?;
    let mut stream = docker.export_image(image);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(text)?;
        file.write_all(&chunk)
            .await
            .map_err(|err| format!("write {}: {err}", path.display()))?;
    }
    file.sync_all()
        .await
        .map_err(|err| format!("write {}: {err}", path.display()))?;
    Ok(())
}
