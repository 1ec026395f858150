//! The `resources` stage: the app's resources up and healthy before its
//! deploy stage, in start order. An unchanged resource is left running (or
//! started again); a changed one is replaced stop-first, its named volumes
//! kept (and copied first with `snapshot = true`); a replacement that fails
//! is removed and the old container started again, so the old app keeps
//! its data and serves on. Stop and delete take resources only when asked.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_proto::v1::{ContainerSpec, ResourceSpec, TaskSpec};
use bollard::Docker;
use tokio_util::sync::CancellationToken;

use super::{Emitter, Failure};
use crate::Agent;
use crate::stage::docker::{self, resource, snapshot};

/// Brings every resource of the task up; the details name each one's state.
pub(super) async fn ensure(
    agent: &Arc<Agent>,
    spec: &TaskSpec,
    emitter: &Emitter<'_>,
    cancel: &CancellationToken,
) -> Result<BTreeMap<String, String>, Failure> {
    let docker = connect(agent).await?;
    let network = resource::ensure_network(&docker, spec)
        .await
        .map_err(Failure::failed)?;
    let mut details = BTreeMap::from([("network".to_string(), network.clone())]);
    for wanted in &spec.resources {
        if cancel.is_cancelled() {
            return Err(Failure::canceled(format!(
                "canceled before resource {} was brought up",
                wanted.name
            )));
        }
        let container = with_secrets(spec, wanted)?;
        let state = one(
            agent, spec, wanted, &container, &docker, &network, emitter, cancel,
        )
        .await
        .map_err(|failure| {
            if cancel.is_cancelled() {
                Failure::canceled(format!(
                    "canceled while resource {} was brought up; {}",
                    wanted.name, failure.error
                ))
            } else {
                failure
            }
        })?;
        details.insert(format!("resource.{}", wanted.name), state);
    }
    Ok(details)
}

pub(super) async fn connect(agent: &Agent) -> Result<Docker, Failure> {
    let host = &agent.identity.name;
    docker::connect(&agent.docker_host).await.map_err(|err| {
        Failure::failed(format!(
            "host {host} cannot reach Docker at {err}; start Docker or set berth-agent --docker-host"
        ))
    })
}

/// The resource's container spec with the values of the secrets it names.
fn with_secrets(spec: &TaskSpec, wanted: &ResourceSpec) -> Result<ContainerSpec, Failure> {
    let mut container = wanted.container.clone().unwrap_or_default();
    for name in &wanted.secrets {
        let Some(secret) = spec.secrets.iter().find(|secret| &secret.name == name) else {
            return Err(Failure::failed(format!(
                "resource {} uses secret {name}, which environment {}/{} does not have; set it with `berth secret set {name} --app {} --env {}` and deploy again",
                wanted.name, spec.app, spec.environment, spec.app, spec.environment
            )));
        };
        container.env.insert(name.clone(), secret.value.clone());
    }
    Ok(container)
}

#[allow(clippy::too_many_arguments)]
async fn one(
    agent: &Arc<Agent>,
    spec: &TaskSpec,
    wanted: &ResourceSpec,
    container: &ContainerSpec,
    docker: &Docker,
    network: &str,
    emitter: &Emitter<'_>,
    cancel: &CancellationToken,
) -> Result<String, Failure> {
    let name = &wanted.name;
    let existing = resource::containers(docker, spec, Some(name))
        .await
        .map_err(|err| Failure::failed(format!("resource {name}: {err}")))?;
    let (same, others): (Vec<_>, Vec<_>) = existing
        .into_iter()
        .partition(|summary| resource::label(summary, resource::LABEL_SPEC) == wanted.fingerprint);
    // A rollback puts the app back, never its database: a resource that
    // runs (whatever its spec) is kept.
    let keep = if spec.restore_of.is_empty() {
        same.first()
    } else {
        same.first().or(others.first())
    };
    if let Some(current) = keep {
        let current_name = crate::stage::docker::name_of(current);
        let how = if resource::is_running(current) {
            emitter.system(format!(
                "resource {name} is unchanged; container {current_name} keeps running"
            ));
            "unchanged"
        } else {
            docker
                .start_container(&current_name, None)
                .await
                .map_err(|err| {
                    Failure::failed(format!(
                        "resource {name}: start {current_name} again: {err}"
                    ))
                })?;
            emitter.system(format!(
                "resource {name} was stopped; started container {current_name} again"
            ));
            "started again"
        };
        check(
            wanted,
            docker,
            &current_name,
            network,
            emitter,
            cancel,
            how != "unchanged",
        )
        .await?;
        if spec.restore_of.is_empty() {
            for stale in resource::names(&others) {
                docker::remove(docker, &stale).await;
                emitter.system(format!(
                    "removed container {stale}, left by an earlier spec of resource {name}"
                ));
            }
        }
        return Ok(format!("{how}: {} ({current_name})", container.image));
    }
    super::image::ensure_image(agent, docker, container, emitter).await?;
    let old = resource::names(&others);
    for stale in &old {
        resource::stop(docker, stale, container)
            .await
            .map_err(|err| Failure::failed(format!("resource {name}: {err}")))?;
        emitter.system(format!(
            "resource {name} changed: stopped its old container {stale}"
        ));
    }
    if wanted.snapshot
        && let Some(previous) = old.first()
        && let Err(err) =
            take_snapshots(agent, spec, wanted, container, docker, previous, emitter).await
    {
        let restored = docker::start_again(docker, &old, emitter).await;
        return Err(Failure::failed(format!(
            "resource {name}: the snapshot before its replacement failed, so it was not replaced: {err}; {restored}"
        )));
    }
    let started = resource::start(docker, spec, wanted, container, network).await;
    let result = match started {
        Ok(new) => {
            emitter.system(format!(
                "resource {name}: started container {new} ({}) on network {network} as `{name}`",
                container.image
            ));
            check(wanted, docker, &new, network, emitter, cancel, true)
                .await
                .map(|()| new)
                .map_err(|failure| (failure, true))
        }
        Err(err) => Err((Failure::failed(format!("resource {name}: {err}")), false)),
    };
    match result {
        Ok(new) => {
            for stale in &old {
                docker::remove(docker, stale).await;
                emitter.system(format!(
                    "resource {name}: removed its old container {stale}; its volumes stay"
                ));
            }
            let how = if old.is_empty() {
                "created"
            } else {
                "replaced"
            };
            Ok(format!("{how}: {} ({new})", container.image))
        }
        Err((mut failure, created)) => {
            if created {
                docker::remove(docker, &resource::container_name(spec, wanted)).await;
                emitter.system(format!("resource {name}: removed the failed new container"));
            }
            if !old.is_empty() {
                let restored = docker::start_again(docker, &old, emitter).await;
                failure.error = format!("{}; {restored}", failure.error);
            }
            failure.error = format!(
                "{}; the app was not changed and keeps serving",
                failure.error
            );
            Err(failure)
        }
    }
}

/// The resource's health check (or, without one, that it stays up a
/// moment), watched for an exit meanwhile. A failure carries its last lines.
#[allow(clippy::too_many_arguments)]
async fn check(
    wanted: &ResourceSpec,
    docker: &Docker,
    container_name: &str,
    network: &str,
    emitter: &Emitter<'_>,
    cancel: &CancellationToken,
    just_started: bool,
) -> Result<(), Failure> {
    let name = &wanted.name;
    let spec = wanted.container.clone().unwrap_or_default();
    let Some(health) = &spec.health else {
        if !just_started {
            return Ok(());
        }
        return docker::watch_start(docker, container_name, emitter)
            .await
            .map_err(|err| Failure::failed(format!("resource {name}: {err}")));
    };
    let address = resource::address(docker, container_name, network)
        .await
        .map(|ip| format!("{ip}:{}", spec.port));
    let env = BTreeMap::new();
    let target = crate::stage::health::Target {
        host_port: None,
        address,
        inside: Some((docker, container_name)),
        work_dir: None,
        env: &env,
    };
    let checked = tokio::select! {
        checked = crate::stage::health::check(health, &target, emitter, cancel) => checked,
        exited = docker::watch_while_checked(docker, container_name, emitter) => Err((exited, BTreeMap::new())),
    };
    match checked {
        Ok(_) => {
            emitter.system(format!("resource {name} is healthy"));
            Ok(())
        }
        Err((message, mut evidence)) => {
            let lines = docker::tail(docker, container_name, 100).await;
            let last: Vec<&str> = lines.lines().rev().take(10).collect();
            let last: Vec<&str> = last.into_iter().rev().collect();
            evidence.insert("container_logs".to_string(), lines.clone());
            let shown = if last.is_empty() {
                "it printed nothing".to_string()
            } else {
                format!("its last lines:\n{}", last.join("\n"))
            };
            Err(Failure {
                details: evidence,
                ..Failure::failed(format!(
                    "resource {name} is not healthy: {message}; {shown}"
                ))
            })
        }
    }
}

async fn take_snapshots(
    agent: &Agent,
    spec: &TaskSpec,
    wanted: &ResourceSpec,
    container: &ContainerSpec,
    docker: &Docker,
    previous: &str,
    emitter: &Emitter<'_>,
) -> Result<(), String> {
    let dir = snapshot::directory(
        &agent.files.snapshots(),
        &spec.app,
        &spec.environment,
        &wanted.name,
    );
    let keep = usize::try_from(wanted.snapshot_keep).unwrap_or(1);
    for volume in resource::named_volumes(spec, &wanted.name, &container.volumes) {
        let file =
            snapshot::take(docker, previous, &volume.short, &volume.path, &dir, keep).await?;
        let bytes = std::fs::metadata(&file).map(|meta| meta.len()).unwrap_or(0);
        emitter.system(format!(
            "resource {}: snapshot of volume {} ({bytes} bytes) in {}",
            wanted.name,
            volume.short,
            file.display()
        ));
    }
    Ok(())
}
