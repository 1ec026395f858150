//! The deploy stage of a container: image in place, the new container up
//! (beside the old one, or after it with `update = "stop-first"`),
//! checked, routed, then the old one retired; on any failure the new
//! container goes and the previous version serves again.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_proto::v1::{ContainerSpec, TaskSpec};
use tokio_util::sync::CancellationToken;

use super::{Emitter, Failure, StageOutcome, environment, prepare};
use crate::Agent;
use crate::stage::docker;
use berth_shared::manifest::UpdateOrder;

/// The deploy stage: image in place, new container up and steady, old
/// containers of the app retired. A failed start removes the new container
/// and leaves the old one serving.
pub(super) async fn deploy_container(
    agent: &Arc<Agent>,
    spec: &TaskSpec,
    container: &ContainerSpec,
    emitter: &Emitter<'_>,
    cancel: &CancellationToken,
) -> Result<BTreeMap<String, String>, Failure> {
    let host = &agent.identity.name;
    let docker = docker::connect(&agent.docker_host)
        .await
        .map_err(|err| Failure::failed(format!("host {host} cannot reach Docker at {err}; start Docker or set berth-agent --docker-host")))?;
    if container.proxy.is_some() {
        // Fail before touching Docker when the route cannot be set.
        agent.caddy.ping().await.map_err(|err| {
            Failure::failed(format!(
                "host {host}: {err}; start Caddy or set berth-agent --caddy-admin"
            ))
        })?;
    }
    super::image::ensure_image(agent, &docker, container, emitter).await?;
    if cancel.is_cancelled() {
        return Err(Failure::canceled(
            "canceled before the new container started",
        ));
    }
    let name = docker::container_name(spec);
    let stop_first = container.update == UpdateOrder::StopFirst.as_str();
    let previous = if stop_first {
        docker::stop_others(&docker, spec, container, &name, emitter)
            .await
            .map_err(Failure::failed)?
    } else {
        Vec::new()
    };
    let started = start_new(agent, spec, container, &docker, &name, emitter, cancel).await;
    match started {
        Err(mut failure) if !previous.is_empty() => {
            let restored = docker::start_again(&docker, &previous, emitter).await;
            failure.error = format!("{}; {restored}", failure.error);
            Err(failure)
        }
        started => started,
    }
}

/// Starts the new container, checks it, moves the route to it and
/// retires the app's other containers.
#[allow(clippy::too_many_arguments)]
async fn start_new(
    agent: &Arc<Agent>,
    spec: &TaskSpec,
    container: &ContainerSpec,
    docker: &bollard::Docker,
    name: &str,
    emitter: &Emitter<'_>,
    cancel: &CancellationToken,
) -> Result<BTreeMap<String, String>, Failure> {
    let host = &agent.identity.name;
    let id = docker::start(docker, spec, container, emitter)
        .await
        .map_err(Failure::failed)?;
    // With a check that reaches the app (http, run), staying up is watched
    // while it is checked (`check_health`); otherwise the container must
    // stay up a while first. A TCP connect is answered by Docker's port
    // proxy even when nothing listens inside, so it proves too little.
    let checked_at_once = container.health.as_ref().is_some_and(|health| !health.tcp);
    let watched = if checked_at_once {
        Ok(())
    } else {
        docker::watch_start(docker, name, emitter).await
    };
    if let Err(error) = watched {
        docker::remove(docker, name).await;
        emitter.system(format!(
            "removed the failed container {name}; the previous version keeps running"
        ));
        return Err(Failure::failed(error));
    }
    abandon_if_canceled(cancel, docker, name, emitter).await?;
    let host_port = if container.port > 0 {
        docker::host_port(docker, name, container.port).await
    } else {
        None
    };
    if let Some(port) = &host_port {
        emitter.system(format!(
            "container {name} is running; port {} is published on host port {port}",
            container.port
        ));
    }
    let mut details = docker::details(&id, name, &container.image, host_port.clone(), &[]);
    if let Some(health) = &container.health {
        emitter.end_stage(StageOutcome::Succeeded, None, "", details);
        emitter.start_stage("health");
        details = check_health(
            agent,
            spec,
            health,
            docker,
            name,
            host_port.as_deref(),
            emitter,
            cancel,
        )
        .await
        .map_err(|failure| {
            if cancel.is_cancelled() {
                Failure::canceled("canceled during the health check; the new container was removed")
            } else {
                failure
            }
        })?;
    }
    abandon_if_canceled(cancel, docker, name, emitter).await?;
    // An HTTP check answered on the published port proves the app only if
    // the port reaches this container (another daemon's container or a
    // NAT rule may answer there): checked before anything switches.
    let http_checked = container
        .health
        .as_ref()
        .is_some_and(|health| !health.http_path.is_empty());
    if let (true, Some(port)) = (http_checked, &host_port) {
        let (pid, ips) = docker::pid_and_ips(docker, name).await;
        if let Err(conflict) = crate::stage::reach::check(pid, container.port, port, &ips).await {
            docker::remove(docker, name).await;
            emitter.system(format!(
                "removed the new container {name}: its published port reaches something else"
            ));
            return Err(Failure::failed(format!(
                "host {host}: host port {port} does not reach the new container {name}, so its health check proved nothing; {conflict}"
            )));
        }
        emitter.system(format!("host port {port} reaches container {name}"));
    }
    if let (Some(proxy), Some(port)) = (&container.proxy, &host_port) {
        emitter.end_stage(
            StageOutcome::Succeeded,
            None,
            "",
            std::mem::take(&mut details),
        );
        emitter.start_stage("proxy");
        let route = crate::stage::caddy::Route {
            id: crate::stage::caddy::route_id(&spec.app, &spec.environment),
            domain: proxy.domain.clone(),
            upstream: format!("127.0.0.1:{port}"),
            tls: proxy.tls.clone(),
            deployment_id: spec.deployment_id.clone(),
            app: spec.app.clone(),
        };
        reload_handover(emitter);
        if let Err(err) = agent.caddy.apply(&route).await {
            docker::remove(docker, name).await;
            emitter.system(format!(
                "removed the new container {name}; the previous version keeps serving"
            ));
            return Err(Failure::failed(format!(
                "host {host}: could not route {} to the new container: {err}",
                proxy.domain
            )));
        }
        agent.routes.set(route.clone());
        emitter.system(format!(
            "Caddy routes {} to {} (route {})",
            route.domain, route.upstream, route.id
        ));
        details = BTreeMap::from([
            ("route".to_string(), route.id),
            ("domain".to_string(), route.domain),
            ("upstream".to_string(), route.upstream),
        ]);
    }
    if let Some(health) = &container.health {
        use prost::Message;
        agent.monitor.watch(crate::stage::monitor::Watch {
            deployment_id: spec.deployment_id.clone(),
            app: spec.app.clone(),
            environment: spec.environment.clone(),
            host_port: host_port.clone(),
            work_dir: Some(agent.files.work().join(&spec.deployment_id)).filter(|dir| dir.exists()),
            spec: health.encode_to_vec(),
            healthy: Some(true),
            detail: details.get("health_probe").cloned().unwrap_or_default(),
            since_ms: berth_shared::time::now_ms(),
        });
    }
    agent
        .current
        .deployed(spec, Some(name.to_string()), host_port.clone());
    let retired = docker::retire_others(docker, spec, container, name, emitter)
        .await
        .map_err(Failure::failed)?;
    if !retired.is_empty() {
        details.insert("replaced".to_string(), retired.join(","));
    }
    Ok(details)
}

/// The health stage: the new container must pass before it takes over. A
/// failure keeps the evidence (last probe, the container's last 100 lines)
/// with the stage, removes the new container and leaves the old one serving.
#[allow(clippy::too_many_arguments)]
async fn check_health(
    agent: &Arc<Agent>,
    spec: &TaskSpec,
    health: &berth_proto::v1::HealthSpec,
    docker: &bollard::Docker,
    name: &str,
    host_port: Option<&str>,
    emitter: &Emitter<'_>,
    cancel: &CancellationToken,
) -> Result<BTreeMap<String, String>, Failure> {
    let work_dir = if health.run.is_empty() {
        None
    } else {
        Some(
            prepare(agent, spec, emitter)
                .await
                .map_err(|err| Failure::failed(format!("{err:#}")))?,
        )
    };
    let mut env = environment(
        agent,
        spec,
        work_dir.as_deref().unwrap_or(std::path::Path::new("/")),
    );
    env.extend(host_port.map(|port| ("BERTH_HOST_PORT".to_string(), port.to_string())));
    let target = crate::stage::health::Target {
        host_port,
        work_dir: work_dir.as_deref(),
        env: &env,
        address: None,
        inside: None,
    };
    let checked = tokio::select! {
        checked = crate::stage::health::check(health, &target, emitter, cancel) => checked,
        exited = docker::watch_while_checked(docker, name, emitter) => {
            let mut evidence = BTreeMap::new();
            evidence.insert("container_state".to_string(), "exited".to_string());
            Err((exited, evidence))
        }
    };
    match checked {
        Ok(details) => Ok(details),
        Err((message, mut evidence)) => {
            evidence.insert(
                "container_logs".to_string(),
                docker::tail(docker, name, 100).await,
            );
            docker::remove(docker, name).await;
            emitter.system(format!(
                "removed the unhealthy container {name}; the previous version keeps running"
            ));
            Err(Failure {
                details: evidence,
                ..Failure::failed(message)
            })
        }
    }
}

/// A cancel that arrived while the new container was coming up: it is
/// removed and the previous version keeps serving.
async fn abandon_if_canceled(
    cancel: &CancellationToken,
    docker: &bollard::Docker,
    name: &str,
    emitter: &Emitter<'_>,
) -> Result<(), Failure> {
    if !cancel.is_cancelled() {
        return Ok(());
    }
    docker::remove(docker, name).await;
    emitter.system(format!(
        "canceled: removed the new container {name}; the previous version keeps running"
    ));
    Err(Failure::canceled(
        "canceled while the new container was starting; it was removed",
    ))
}

/// Every route change reloads Caddy; see [`crate::stage::caddy::ensure_reload_handover`].
pub(super) fn reload_handover(emitter: &Emitter<'_>) {
    let setting = std::path::Path::new(crate::stage::caddy::MIGRATE_REQ);
    if let Some(line) = crate::stage::caddy::ensure_reload_handover(setting) {
        emitter.system(line);
    }
}
