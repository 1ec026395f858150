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

/// The first chunk of an upload, which names the blob.
pub async fn first_chunk(chunks: &mut Streaming<PutBlobChunk>) -> Result<PutBlobChunk, Status> {
    chunks
        .message()
        .await?
        .ok_or_else(|| Status::invalid_argument("the upload sent no data"))
}

/// Receives a bundle (or other blob) in chunks and stores it verified.
pub async fn put_blob(
    context: &Context,
    caller: &Caller,
    mut chunks: Streaming<PutBlobChunk>,
) -> Result<PutBlobResponse, Status> {
    let first = first_chunk(&mut chunks).await?;
    let stored = receive_blob(context, first, chunks).await?;
    context
        .store
        .audit(&caller.who(), "blob.put", &stored.digest, "ok")?;
    context.store.flush().await?;
    info!(digest = %stored.digest, size = stored.size, "blob stored");
    Ok(stored)
}

/// Writes an upload whose first chunk was read already into the blob store,
/// verified against the digest and size the first chunk declares.
pub async fn receive_blob(
    context: &Context,
    first: PutBlobChunk,
    chunks: Streaming<PutBlobChunk>,
) -> Result<PutBlobResponse, Status> {
    let never = tokio_util::sync::CancellationToken::new();
    receive_blob_until(context, first, chunks, &never).await
}

/// [`receive_blob`] that gives up, keeping nothing, once `cancel` fires (an
/// agent's upload when the agent is revoked).
pub async fn receive_blob_until(
    context: &Context,
    first: PutBlobChunk,
    mut chunks: Streaming<PutBlobChunk>,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<PutBlobResponse, Status> {
    let mut upload = context.blobs.begin(&first.digest, first.size).await?;
    let mut next = Some(first);
    while let Some(chunk) = next {
        if let Err(err) = upload.write(&chunk.data).await {
            context.blobs.abort(upload).await;
            return Err(err.into());
        }
        let message = tokio::select! {
            biased;
            () = cancel.cancelled() => Err(Status::permission_denied(
                "the uploader was revoked; the upload is discarded",
            )),
            message = chunks.message() => message,
        };
        next = match message {
            Ok(next) => next,
            Err(status) => {
                context.blobs.abort(upload).await;
                return Err(status);
            }
        };
    }
    let (digest, size) = context.blobs.commit(upload).await?;
    context.store.put_blob_meta(&digest, size)?;
    Ok(PutBlobResponse { digest, size })
}

/// The agents a manifest's target selects (by name, and by their effective
/// labels: own and automatic), online or not, or why there are none.
/// Revoked agents never match.
pub fn select_targets(context: &Context, manifest: &Manifest) -> Result<Vec<AgentRecord>, Status> {
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
        .filter(|agent| matches(&target.labels, &agent.effective_labels()))
        .collect();
    if selected.is_empty() {
        return Err(Status::failed_precondition(format!(
            "no agent matches the target ({}); check the labels with `berth agents ls`",
            describe_target(manifest)
        )));
    }
    Ok(selected)
}

/// The agents a manifest's target selects, every one online (and, for a
/// `[container]`, with Docker), or why not.
pub fn resolve_targets(context: &Context, manifest: &Manifest) -> Result<Vec<AgentRecord>, Status> {
    let selected = select_targets(context, manifest)?;
    let offline = super::target::offline(context, &selected);
    if !offline.is_empty() {
        return Err(super::target::offline_refusal(manifest, &offline, None));
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

/// The target in words, for messages: `labels k=v and hosts a,b`.
pub fn describe_target(manifest: &Manifest) -> String {
    let mut parts = Vec::new();
    if !manifest.target.labels.is_empty() {
        parts.push(format!("labels {}", format_labels(&manifest.target.labels)));
    }
    if !manifest.target.hosts.is_empty() {
        parts.push(format!("hosts {}", manifest.target.hosts.join(",")));
    }
    if parts.is_empty() {
        return "every agent".into();
    }
    parts.join(" and ")
}

fn manifest_error(err: berth_shared::manifest::ManifestError) -> Status {
    Status::invalid_argument(err.to_string())
}

/// What a new deployment is made of: the snapshot a retry or rollback
/// takes from an earlier deployment.
pub struct Snapshot {
    pub manifest: Manifest,
    pub manifest_toml: String,
    pub bundle_digest: String,
    pub bundle_size: u64,
    pub version: String,
    pub image_archive: Option<(String, u64)>,
    /// Build again even when an earlier build of the same inputs exists.
    pub rebuild: bool,
}

impl Snapshot {
    pub fn of(deployment: &Deployment) -> Snapshot {
        Snapshot {
            manifest: deployment.manifest.clone(),
            manifest_toml: deployment.manifest_toml.clone(),
            bundle_digest: deployment.bundle_digest.clone(),
            bundle_size: deployment.bundle_size,
            version: deployment.version.clone(),
            // A built image comes from the build (reused when its inputs
            // are the same), not from the earlier run's archive.
            image_archive: deployment
                .image_archive_digest
                .clone()
                .filter(|_| deployment.manifest.build.is_none())
                .map(|digest| (digest, deployment.image_archive_size)),
            rebuild: false,
        }
    }
}

/// A new `pending` deployment of `snapshot` on the agents its target
/// selects now, with the blobs it needs checked to be in the store.
pub fn from_snapshot(
    context: &Context,
    caller: &Caller,
    snapshot: Snapshot,
    idempotency_key: Option<String>,
) -> Result<Deployment, Status> {
    let blobs = std::iter::once(("bundle", &snapshot.bundle_digest, snapshot.bundle_size)).chain(
        snapshot
            .image_archive
            .as_ref()
            .map(|(digest, size)| ("image archive", digest, *size)),
    );
    for (what, digest, size) in blobs {
        if context.store.blob_size(digest)? != Some(size) {
            return Err(Status::failed_precondition(format!(
                "{what} {digest} is not in the controller's blob store; upload it first (berth deploy does this)"
            )));
        }
    }
    super::domain::check_claim(context, &snapshot.manifest)?;
    let agents = resolve_targets(context, &snapshot.manifest)?;
    let now = Timestamp::now();
    let mut tasks: Vec<Task> = agents
        .iter()
        .map(|agent| Task::queued(TaskKind::Deploy, &agent.name, agent.id, now))
        .collect();
    let id = DeploymentId::new();
    let mut builder_busy = None;
    let (build_key, built) = match &snapshot.manifest.build {
        Some(build) => {
            let key = super::build::build_key(&snapshot.bundle_digest, build);
            let reuse = if snapshot.rebuild {
                None
            } else {
                super::build::reusable(context, &key)?
            };
            match reuse {
                Some(built) => {
                    tasks.insert(0, super::build::reused_task(&built, now));
                    (Some(key), Some(built))
                }
                None => {
                    let agent = super::build::pick_builder(context, build)?;
                    if context.registry.free_slots(agent.id) == 0 {
                        builder_busy = Some(agent.name.clone());
                    }
                    tasks.insert(0, Task::queued(TaskKind::Build, &agent.name, agent.id, now));
                    (Some(key), None)
                }
            }
        }
        None => (None, None),
    };
    let mut deployment = Deployment {
        id,
        app: snapshot.manifest.app.clone(),
        environment: snapshot.manifest.environment.clone(),
        version: snapshot.version,
        status: DeploymentStatus::Pending,
        created_at: now,
        updated_at: now,
        triggered_by: caller.who(),
        error_step: None,
        error_message: None,
        bundle_digest: snapshot.bundle_digest,
        bundle_size: snapshot.bundle_size,
        manifest: snapshot.manifest,
        manifest_toml: snapshot.manifest_toml,
        idempotency_key,
        image_archive_size: snapshot.image_archive.as_ref().map_or(0, |(_, size)| *size),
        image_archive_digest: snapshot.image_archive.map(|(digest, _)| digest),
        tasks,
        transitions: Vec::new(),
        parent_id: None,
        retry_count: 0,
        origin: "deploy".into(),
        queued: false,
        deadline_ms: None,
        build_key,
        built,
        restore_to: None,
    };
    super::build::adopt_reused(&mut deployment);
    if let Some(builder) = builder_busy {
        let reason = format!(
            "waiting for build agent {builder}: every matching build agent is busy; the build starts when a slot frees"
        );
        progress::note(&mut deployment, "deployment", None, "pending", Some(reason));
    }
    deployment.deadline_ms = Some(crate::dispatcher::deadline(&deployment));
    let hosts: Vec<&str> = agents.iter().map(|agent| agent.name.as_str()).collect();
    let reason = format!("deploy by {} to {}", caller.who(), hosts.join(", "));
    progress::note(&mut deployment, "deployment", None, "pending", Some(reason));
    Ok(deployment)
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
    let archive = Some(request.image_archive_digest.clone()).filter(|digest| !digest.is_empty());
    if archive.is_some() && manifest.container.is_none() {
        return Err(Status::invalid_argument(
            "--image-archive needs a [container] section in the manifest",
        ));
    }
    let version = [
        request.version.clone(),
        manifest.version.clone().unwrap_or_default(),
    ]
    .into_iter()
    .find(|version| !version.is_empty())
    .unwrap_or_else(|| request.bundle_digest.chars().take(19).collect());
    let snapshot = Snapshot {
        manifest,
        manifest_toml: request.manifest_toml.clone(),
        bundle_digest: request.bundle_digest.clone(),
        bundle_size: request.bundle_size,
        version,
        image_archive: archive.map(|digest| (digest, request.image_archive_size)),
        rebuild: request.rebuild,
    };
    let key = Some(request.idempotency_key.clone()).filter(|key| !key.is_empty());
    from_snapshot(context, caller, snapshot, key)
}

/// Creates a deployment and hands its tasks to the dispatcher; `true`
/// with the deployment an earlier request with the same idempotency key
/// made.
pub async fn create(
    context: &Context,
    caller: &Caller,
    request: CreateDeploymentRequest,
) -> Result<(Deployment, bool), Status> {
    super::target::wait_for_agents(context, &request).await?;
    let deployment = build(context, caller, &request)?;
    check_trigger_rate(context, &deployment.app)?;
    let created = context
        .store
        .create_deployment(&deployment, request.force, request.queue)?;
    match created {
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
            return Ok((existing, true));
        }
        crate::store::Created::New | crate::store::Created::Queued(_) => {}
    }
    let deployment = submitted(context, caller, "deploy", deployment, &created).await?;
    Ok((deployment, false))
}

/// Refuses a trigger (deploy, retry, redeploy, rollback) over the app's
/// rate limit, saying when to try again.
pub fn check_trigger_rate(context: &Context, app: &str) -> Result<(), Status> {
    let Some(limit) = &context.triggers else {
        return Ok(());
    };
    limit
        .check(app.to_string(), std::time::Instant::now())
        .map_err(|wait| {
            Status::resource_exhausted(format!(
                "app `{app}` was triggered {} times within a minute, its limit (berth-controller serve --trigger-limit); try again in {}",
                limit.limit(),
                berth_shared::time::format_duration(wait.max(std::time::Duration::from_secs(1)))
            ))
        })
}

/// A deployment that reuses an earlier build says so in its build log.
fn log_reused_build(context: &Context, deployment: Deployment) -> Result<Deployment, Status> {
    let Some(built) = deployment.built.clone().filter(|built| built.reused) else {
        return Ok(deployment);
    };
    let Some(task) = deployment
        .tasks
        .iter()
        .find(|task| task.kind == TaskKind::Build)
        .map(|task| task.id)
    else {
        return Ok(deployment);
    };
    let line = crate::store::StoredLine {
        stage: "build".into(),
        stream: "system".into(),
        ts_ms: berth_shared::time::now_ms(),
        line: format!(
            "build reused from deployment {} (same bundle and [build] section; deploy with --rebuild to build again): {} {}",
            built.built_by,
            built.image.or(built.artifact).unwrap_or_default(),
            built.digest
        ),
    };
    let (stored, (), _) = context
        .store
        .update_deployment_with_logs(deployment.id, |_| Ok(((), vec![(task, 1, line.clone())])))?;
    Ok(stored)
}

/// Announces a stored new deployment; a queued one is recorded as
/// waiting for the running one and not dispatched yet.
pub async fn submitted(
    context: &Context,
    caller: &Caller,
    action: &str,
    mut deployment: Deployment,
    created: &crate::store::Created,
) -> Result<Deployment, Status> {
    deployment = log_reused_build(context, deployment)?;
    if let crate::store::Created::Queued(holder) = created {
        let reason = format!("queued behind deployment {holder}, which is still running");
        let (stored, ()) = context
            .store
            .update_deployment(deployment.id, |deployment| {
                progress::note(
                    deployment,
                    "deployment",
                    None,
                    "queued",
                    Some(reason.clone()),
                );
                Ok(())
            })?;
        deployment = stored;
        info!(deployment_id = %deployment.id, %holder, "deployment queued");
        return announce(context, &caller.who(), action, "queued", deployment).await;
    }
    info!(deployment_id = %deployment.id, app = %deployment.app, environment = %deployment.environment, version = %deployment.version, origin = %deployment.origin, "deployment created");
    announce(context, &caller.who(), action, "created", deployment).await
}

/// Audits a request that changed a deployment, makes it durable, tells
/// the followers, and hands the new tasks to the dispatcher.
pub async fn announce(
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
    let environment =
        super::resolve::resolve_environment(context, &request.app, &request.environment)?;
    let current = context
        .store
        .list_deployments(&ListQuery {
            app: Some(request.app.clone()),
            environment: Some(environment.clone()),
            statuses: vec![DeploymentStatus::Deployed],
            limit: 1,
            ..Default::default()
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
        // One stop per host, whatever number of deploy rounds (redeploys)
        // reached it.
        let hosts = progress::running_hosts(deployment);
        deployment.error_step = None;
        deployment.error_message = None;
        for (agent_id, host) in hosts {
            deployment
                .tasks
                .push(Task::queued(TaskKind::Stop, &host, agent_id, now));
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

/// `berth stop --selector`: stops every deployed app (or the one named) on
/// the hosts whose labels match, each stop recorded against its
/// deployment. A deployment stopped on only some of its hosts stays
/// `deployed` and records which hosts stopped.
pub async fn stop_selected(
    context: &Context,
    caller: &Caller,
    request: berth_proto::v1::StopSelectedRequest,
) -> Result<Vec<Deployment>, Status> {
    if request.selector.trim().is_empty() {
        return Err(Status::invalid_argument(
            "--selector is empty; name the hosts, e.g. --selector role=web (or stop one app with `berth stop APP --env E`)",
        ));
    }
    let agents = super::agents::select_agents(context, &request.selector)?;
    if agents.is_empty() {
        return Err(Status::failed_precondition(format!(
            "no agent matches --selector `{}`; see `berth agents ls`",
            request.selector
        )));
    }
    let selected: Vec<berth_shared::id::AgentId> = agents.iter().map(|agent| agent.id).collect();
    let deployed = context.store.list_deployments(&ListQuery {
        app: Some(request.app.clone()).filter(|app| !app.is_empty()),
        statuses: vec![DeploymentStatus::Deployed],
        limit: usize::MAX,
        ..Default::default()
    })?;
    let who = caller.who();
    let now = Timestamp::now();
    let mut stopped = Vec::new();
    for candidate in deployed {
        let on_selected = progress::running_hosts(&candidate)
            .into_iter()
            .any(|(agent, _)| selected.contains(&agent));
        if !on_selected {
            continue;
        }
        let changed = context
            .store
            .update_deployment(candidate.id, |deployment| {
                if deployment.status != DeploymentStatus::Deployed
                    || deployment
                        .tasks
                        .iter()
                        .any(|task| task.kind == TaskKind::Stop && !task.status.is_final())
                {
                    return Ok(false);
                }
                let hosts: Vec<(berth_shared::id::AgentId, String)> =
                    progress::running_hosts(deployment)
                        .into_iter()
                        .filter(|(agent, _)| selected.contains(agent))
                        .collect();
                if hosts.is_empty() {
                    return Ok(false);
                }
                let names: Vec<&str> = hosts.iter().map(|(_, name)| name.as_str()).collect();
                let reason = format!(
                    "stop on {} by {who} (--selector {})",
                    names.join(", "),
                    request.selector
                );
                if deployment.manifest.stop.is_none() && deployment.manifest.container.is_none() {
                    progress::note(deployment, "deployment", None, "stopped", Some(reason));
                    for (_, host) in &hosts {
                        progress::note(
                            deployment,
                            host,
                            None,
                            "stopped",
                            Some("nothing to run on the host (no [stop], no [container])".into()),
                        );
                    }
                    if progress::running_hosts(deployment)
                        .iter()
                        .all(|(agent, _)| selected.contains(agent))
                    {
                        progress::set_status(
                            deployment,
                            DeploymentStatus::Stopped,
                            Some("stopped on every host".into()),
                        );
                    }
                    return Ok(true);
                }
                for (agent, host) in &hosts {
                    deployment
                        .tasks
                        .push(Task::queued(TaskKind::Stop, host, *agent, now));
                }
                progress::note(deployment, "deployment", None, "stopping", Some(reason));
                progress::settle(deployment);
                Ok(true)
            })?;
        if let (deployment, true) = changed {
            stopped.push(announce(context, &who, "stop", "requested", deployment).await?);
        }
    }
    if stopped.is_empty() {
        let app = if request.app.is_empty() {
            "no berth-managed app".to_string()
        } else {
            format!("app `{}` is not", request.app)
        };
        return Err(Status::not_found(format!(
            "{app} deployed on the hosts matching --selector `{}`; see `berth status`",
            request.selector
        )));
    }
    Ok(stopped)
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
        // Every host the deployment reached may hold something of it; one
        // delete per host, whatever number of deploy rounds reached it.
        let mut touched: Vec<Task> = Vec::new();
        for task in &deployment.tasks {
            let reached = task.kind == TaskKind::Deploy && task.assigned_at.is_some();
            if reached && !touched.iter().any(|seen| seen.agent_id == task.agent_id) {
                touched.push(task.clone());
            }
        }
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

/// Where a deployment's build stands, while it has one to wait for.
fn build_state(deployment: &Deployment) -> Option<String> {
    let build = deployment
        .tasks
        .iter()
        .rfind(|task| task.kind == TaskKind::Build)?;
    match build.status {
        TaskStatus::Queued => Some(format!(
            "waiting for build agent {} (all its slots are busy)",
            build.host
        )),
        status if status.is_active() => Some(format!("building on {}", build.host)),
        _ => None,
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
            ..Default::default()
        };
        let in_progress = context.store.slot_holder(&app, &env)?;
        let build_state = match in_progress {
            Some(id) => build_state(&context.store.get_deployment(id)?),
            None => None,
        };
        let queued = context.store.queued_for(&app, &env)?;
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
        let mut hosts: Vec<String> = progress::running_hosts(&current)
            .into_iter()
            .map(|(_, host)| host)
            .collect();
        hosts.sort();
        let health = health_of(context, &current);
        let host_states = super::hosts::host_states(context, &app, &env, &current)?;
        let version = super::hosts::fleet_version(&host_states, &current.version);
        rows.push(AppStatus {
            app: app.clone(),
            environment: env.clone(),
            version,
            host_states,
            deployment_id: current.id,
            status: current.status,
            since,
            hosts,
            in_progress,
            queued,
            build_state,
            health,
        });
    }
    Ok(rows)
}
