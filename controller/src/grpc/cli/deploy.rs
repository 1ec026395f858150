//! Creating and stopping deployments, bundle uploads, and `berth status`.

use berth_proto::v1::{CreateDeploymentRequest, PutBlobChunk, PutBlobResponse, StopAppRequest};
use berth_shared::id::DeploymentId;
use berth_shared::labels::{format_labels, matches};
use berth_shared::manifest::{Manifest, check_environment, check_version};
use berth_shared::record::{AppStatus, Deployment, Task, TaskKind, Timestamp};
use berth_shared::state::{DeploymentStatus, TaskStatus};
use tonic::{Status, Streaming};
use tracing::info;

use crate::grpc::auth::Caller;
use crate::hub::HubEvent;
use crate::progress;
use crate::server::Context;
use crate::store::{AgentRecord, ListQuery, StoreError};

/// Receives a bundle (or other blob) in chunks and stores it verified.
pub async fn put_blob(
    context: &Context,
    caller: &Caller,
    mut chunks: Streaming<PutBlobChunk>,
) -> Result<PutBlobResponse, Status> {
    let first = chunks
        .message()
        .await?
        .ok_or_else(|| Status::invalid_argument("the upload sent no data"))?;
    let mut upload = context.blobs.begin(&first.digest, first.size).await?;
    let mut next = Some(first);
    while let Some(chunk) = next {
        if let Err(err) = upload.write(&chunk.data).await {
            context.blobs.abort(upload).await;
            return Err(err.into());
        }
        next = match chunks.message().await {
            Ok(next) => next,
            Err(status) => {
                context.blobs.abort(upload).await;
                return Err(status);
            }
        };
    }
    let (digest, size) = context.blobs.commit(upload).await?;
    context.store.put_blob_meta(&digest, size)?;
    context
        .store
        .audit(&caller.who(), "blob.put", &digest, "ok")?;
    context.store.flush().await?;
    info!(%digest, size, "blob stored");
    Ok(PutBlobResponse { digest, size })
}

/// The agents a manifest's target selects, or why there are none.
fn resolve_targets(context: &Context, manifest: &Manifest) -> Result<Vec<AgentRecord>, Status> {
    let agents: Vec<AgentRecord> = context
        .store
        .list_agents()?
        .into_iter()
        .filter(|agent| !agent.is_revoked())
        .collect();
    let target = &manifest.target;
    for host in &target.hosts {
        if !agents.iter().any(|agent| &agent.name == host) {
            return Err(Status::failed_precondition(format!(
                "target.hosts names `{host}`, but no enrolled agent has that name; see `berth agents ls`"
            )));
        }
    }
    let selected: Vec<AgentRecord> = agents
        .into_iter()
        .filter(|agent| target.hosts.is_empty() || target.hosts.contains(&agent.name))
        .filter(|agent| matches(&target.labels, &agent.labels))
        .collect();
    let selector = describe_target(manifest);
    if selected.is_empty() {
        return Err(Status::failed_precondition(format!(
            "no agent matches the target ({selector}); check the labels with `berth agents ls`"
        )));
    }
    let offline: Vec<&str> = selected
        .iter()
        .filter(|agent| !context.registry.is_online(agent.id))
        .map(|agent| agent.name.as_str())
        .collect();
    if !offline.is_empty() {
        return Err(Status::failed_precondition(format!(
            "agents matching the target ({selector}) are offline: {}; start them or narrow [target]",
            offline.join(", ")
        )));
    }
    if manifest.container.is_some() {
        let no_docker: Vec<String> = selected
            .iter()
            .filter_map(|agent| {
                let facts = context.registry.facts(agent.id).unwrap_or_default();
                facts.docker_version.is_empty().then(|| {
                    let why = if facts.docker_error.is_empty() {
                        "no Docker reported".to_string()
                    } else {
                        facts.docker_error
                    };
                    format!("{} ({why})", agent.name)
                })
            })
            .collect();
        if !no_docker.is_empty() {
            return Err(Status::failed_precondition(format!(
                "[container] needs Docker, but these hosts cannot reach it: {}; start Docker or point berth-agent --docker-host at its socket",
                no_docker.join("; ")
            )));
        }
    }
    Ok(selected)
}

fn describe_target(manifest: &Manifest) -> String {
    let mut parts = Vec::new();
    if !manifest.target.labels.is_empty() {
        parts.push(format!("labels {}", format_labels(&manifest.target.labels)));
    }
    if !manifest.target.hosts.is_empty() {
        parts.push(format!("hosts {}", manifest.target.hosts.join(",")));
    }
    parts.join(" and ")
}

fn manifest_error(err: berth_shared::manifest::ManifestError) -> Status {
    Status::invalid_argument(err.to_string())
}

/// Validates a deploy request and builds the deployment record.
fn build(
    context: &Context,
    caller: &Caller,
    request: &CreateDeploymentRequest,
) -> Result<Deployment, Status> {
    let mut manifest = Manifest::parse(&request.manifest_toml).map_err(manifest_error)?;
    if !request.environment.is_empty() {
        check_environment(&request.environment)
            .map_err(|err| Status::invalid_argument(format!("--env: {err}")))?;
        manifest.environment = request.environment.clone();
    }
    if !request.version.is_empty() {
        check_version(&request.version)
            .map_err(|err| Status::invalid_argument(format!("--version: {err}")))?;
    }
    if request.idempotency_key.len() > 256 {
        return Err(Status::invalid_argument(
            "--idempotency-key is longer than 256 characters",
        ));
    }
    let stored_size = context.store.blob_size(&request.bundle_digest)?;
    if stored_size != Some(request.bundle_size) {
        return Err(Status::failed_precondition(format!(
            "bundle {} is not in the controller's blob store; upload it first (berth deploy does this)",
            request.bundle_digest
        )));
    }
    let archive = Some(request.image_archive_digest.clone()).filter(|digest| !digest.is_empty());
    if let Some(digest) = &archive {
        if manifest.container.is_none() {
            return Err(Status::invalid_argument(
                "--image-archive needs a [container] section in the manifest",
            ));
        }
        if context.store.blob_size(digest)? != Some(request.image_archive_size) {
            return Err(Status::failed_precondition(format!(
                "image archive {digest} is not in the controller's blob store; upload it first (berth deploy --image-archive does this)"
            )));
        }
    }
    let agents = resolve_targets(context, &manifest)?;
    let version = [
        request.version.clone(),
        manifest.version.clone().unwrap_or_default(),
    ]
    .into_iter()
    .find(|version| !version.is_empty())
    .unwrap_or_else(|| request.bundle_digest.chars().take(19).collect());
    let now = Timestamp::now();
    let tasks = agents
        .iter()
        .map(|agent| Task::queued(TaskKind::Deploy, &agent.name, agent.id, now))
        .collect();
    let mut deployment = Deployment {
        id: DeploymentId::new(),
        app: manifest.app.clone(),
        environment: manifest.environment.clone(),
        version,
        status: DeploymentStatus::Pending,
        created_at: now,
        updated_at: now,
        triggered_by: caller.who(),
        error_step: None,
        error_message: None,
        bundle_digest: request.bundle_digest.clone(),
        bundle_size: request.bundle_size,
        manifest,
        manifest_toml: request.manifest_toml.clone(),
        idempotency_key: Some(request.idempotency_key.clone()).filter(|key| !key.is_empty()),
        image_archive_digest: archive,
        image_archive_size: request.image_archive_size,
        tasks,
        transitions: Vec::new(),
    };
    let hosts: Vec<&str> = agents.iter().map(|agent| agent.name.as_str()).collect();
    let reason = format!("deploy by {} to {}", caller.who(), hosts.join(", "));
    progress::note(&mut deployment, "deployment", None, "pending", Some(reason));
    Ok(deployment)
}

/// Creates a deployment and hands its tasks to the dispatcher.
pub async fn create(
    context: &Context,
    caller: &Caller,
    request: CreateDeploymentRequest,
) -> Result<Deployment, Status> {
    let deployment = build(context, caller, &request)?;
    match context
        .store
        .create_deployment(&deployment, request.force)?
    {
        crate::store::Created::Existing(id) => {
            let existing = context.store.get_deployment(id)?;
            if existing.manifest_toml != request.manifest_toml
                || existing.bundle_digest != request.bundle_digest
            {
                return Err(Status::already_exists(format!(
                    "idempotency key `{}` was used for deployment {id} with a different manifest or bundle; use a new key",
                    request.idempotency_key
                )));
            }
            return Ok(existing);
        }
        crate::store::Created::New => {}
    }
    info!(deployment_id = %deployment.id, app = %deployment.app, environment = %deployment.environment, version = %deployment.version, "deployment created");
    announce(context, &caller.who(), "deploy", "created", deployment).await
}

/// Audits a request that changed a deployment, makes it durable, tells
/// the followers, and hands the new tasks to the dispatcher.
async fn announce(
    context: &Context,
    who: &str,
    action: &str,
    outcome: &str,
    deployment: Deployment,
) -> Result<Deployment, Status> {
    let target = format!(
        "{} {} {}",
        deployment.app, deployment.environment, deployment.id
    );
    context.store.audit(who, action, &target, outcome)?;
    context.store.flush().await?;
    context.hub.publish(HubEvent::Changed {
        deployment: deployment.id,
    });
    context.dispatcher.track(&deployment);
    context.dispatcher.kick_all().await;
    Ok(deployment)
}

/// Stops an app: runs `[stop]` on the hosts of its deployed deployment, or
/// marks it stopped when it has no stop commands.
pub async fn stop(
    context: &Context,
    caller: &Caller,
    request: StopAppRequest,
) -> Result<Deployment, Status> {
    let environment = if request.environment.is_empty() {
        "default".to_string()
    } else {
        request.environment
    };
    let current = context
        .store
        .list_deployments(&ListQuery {
            app: Some(request.app.clone()),
            environment: Some(environment.clone()),
            statuses: vec![DeploymentStatus::Deployed],
            limit: 1,
        })?
        .into_iter()
        .next()
        .ok_or_else(|| Status::not_found(format!("app `{}` has no deployed deployment in environment `{environment}`; see `berth status`", request.app)))?;
    let now = Timestamp::now();
    let who = caller.who();
    let (deployment, ()) = context.store.update_deployment(current.id, |deployment| {
        // Checked inside the transaction, so two concurrent stops cannot
        // both add stop tasks.
        if deployment.status != DeploymentStatus::Deployed {
            return Err(StoreError::Conflict(format!(
                "deployment {} is {} now, not deployed",
                deployment.id, deployment.status
            )));
        }
        if deployment
            .tasks
            .iter()
            .any(|task| task.kind == TaskKind::Stop && !task.status.is_final())
        {
            return Err(StoreError::Conflict(format!(
                "deployment {} is already stopping",
                deployment.id
            )));
        }
        if deployment.manifest.stop.is_none() && deployment.manifest.container.is_none() {
            progress::set_status(
                deployment,
                DeploymentStatus::Stopped,
                Some(format!(
                    "stopped by {who}; nothing to run on the hosts (no [stop], no [container])"
                )),
            );
            return Ok(());
        }
        let hosts: Vec<Task> = deployment
            .tasks
            .iter()
            .filter(|task| task.kind == TaskKind::Deploy && task.status == TaskStatus::Done)
            .cloned()
            .collect();
        deployment.error_step = None;
        deployment.error_message = None;
        for host in hosts {
            deployment
                .tasks
                .push(Task::queued(TaskKind::Stop, &host.host, host.agent_id, now));
        }
        progress::note(
            deployment,
            "deployment",
            None,
            "stopping",
            Some(format!("stop by {who}")),
        );
        progress::settle(deployment);
        Ok(())
    })?;
    announce(context, &who, "stop", "requested", deployment).await
}

/// Tears a deployment down on every host it touched: its containers and
/// its work directory. Status `deleted` once every host is done.
pub async fn delete(
    context: &Context,
    caller: &Caller,
    id: berth_shared::id::DeploymentId,
) -> Result<Deployment, Status> {
    let now = Timestamp::now();
    let who = caller.who();
    let (deployment, ()) = context.store.update_deployment(id, |deployment| {
        if deployment.status.is_running() {
            return Err(StoreError::Conflict(format!(
                "deployment {id} is {}; wait for it to end before deleting it",
                deployment.status
            )));
        }
        if deployment.status == DeploymentStatus::Deleted {
            return Err(StoreError::Conflict(format!(
                "deployment {id} is already deleted"
            )));
        }
        if deployment.tasks.iter().any(|task| !task.status.is_final()) {
            return Err(StoreError::Conflict(format!(
                "deployment {id} has work in progress on its hosts; wait for it"
            )));
        }
        // Every host the deployment reached may hold something of it.
        let touched: Vec<Task> = deployment
            .tasks
            .iter()
            .filter(|task| task.kind == TaskKind::Deploy && task.assigned_at.is_some())
            .cloned()
            .collect();
        deployment.error_step = None;
        deployment.error_message = None;
        if touched.is_empty() {
            progress::set_status(
                deployment,
                DeploymentStatus::Deleted,
                Some(format!("deleted by {who}; nothing was created on any host")),
            );
            return Ok(());
        }
        for host in touched {
            deployment.tasks.push(Task::queued(
                TaskKind::Delete,
                &host.host,
                host.agent_id,
                now,
            ));
        }
        progress::note(
            deployment,
            "deployment",
            None,
            "deleting",
            Some(format!("delete by {who}")),
        );
        Ok(())
    })?;
    announce(context, &who, "delete", "requested", deployment).await
}

/// The periodic health of a deployment's app across its hosts, from what
/// the agents last reported: `healthy`, or `unhealthy: host: probe; ...`.
fn health_of(context: &Context, deployment: &Deployment) -> Option<String> {
    if deployment.manifest.health.is_none() || deployment.status != DeploymentStatus::Deployed {
        return None;
    }
    let reports = context.registry.health_of(&deployment.id.to_string());
    if reports.is_empty() {
        return Some("unknown (no report yet)".into());
    }
    let host = |agent| {
        deployment
            .tasks
            .iter()
            .find(|task| task.agent_id == agent)
            .map_or_else(|| agent.to_string(), |task| task.host.clone())
    };
    let unhealthy: Vec<String> = reports
        .iter()
        .filter(|(_, report)| !report.healthy)
        .map(|(agent, report)| format!("{}: {}", host(*agent), report.detail))
        .collect();
    if unhealthy.is_empty() {
        Some("healthy".into())
    } else {
        Some(format!("unhealthy: {}", unhealthy.join("; ")))
    }
}

/// What version of each app runs where, since when.
pub fn status(context: &Context, environment: &str) -> Result<Vec<AppStatus>, Status> {
    let mut rows = Vec::new();
    for (app, env) in context.store.app_environments()? {
        if !environment.is_empty() && env != environment {
            continue;
        }
        let query = |statuses: Vec<DeploymentStatus>| ListQuery {
            app: Some(app.clone()),
            environment: Some(env.clone()),
            statuses,
            limit: 1,
        };
        let running: Vec<_> = berth_shared::state::DEPLOYMENT_STATUSES
            .into_iter()
            .filter(|s| s.is_running())
            .collect();
        let in_progress = context
            .store
            .list_deployments(&query(running))?
            .into_iter()
            .next()
            .map(|d| d.id);
        let current = context
            .store
            .list_deployments(&query(vec![
                DeploymentStatus::Deployed,
                DeploymentStatus::Stopped,
            ]))?
            .into_iter()
            .next();
        let Some(current) = current.or(context
            .store
            .list_deployments(&query(Vec::new()))?
            .into_iter()
            .next())
        else {
            continue;
        };
        let since = current
            .transitions
            .iter()
            .rev()
            .find(|transition| {
                transition.subject == "deployment" && transition.to == current.status.as_str()
            })
            .map_or(current.updated_at, |transition| transition.at);
        let hosts = current
            .tasks
            .iter()
            .filter(|task| task.kind == TaskKind::Deploy && task.status == TaskStatus::Done)
            .map(|task| task.host.clone())
            .collect();
        let health = health_of(context, &current);
        rows.push(AppStatus {
            app: app.clone(),
            environment: env.clone(),
            version: current.version.clone(),
            deployment_id: current.id,
            status: current.status,
            since,
            hosts,
            in_progress,
            health,
        });
    }
    Ok(rows)
}
