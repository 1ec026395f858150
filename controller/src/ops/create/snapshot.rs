//! What a new deployment is made of ([`Snapshot`]: a manifest, its
//! bundle, its provenance and variables) and the `pending` record made
//! from one ([`from_snapshot`]): a deploy takes it from its request, a
//! retry, redeploy or rollback from the deployment it repeats.

use berth_shared::id::DeploymentId;
use berth_shared::manifest::Manifest;
use berth_shared::record::{Deployment, Task, TaskKind, Timestamp, Variable};
use berth_shared::state::DeploymentStatus;

use crate::ops::provenance::{Provenance, Trigger};
use crate::ops::target::resolve_targets;
use crate::ops::{Caller, Code, Error, Result};
use crate::progress;
use crate::server::Context;

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
    pub provenance: Provenance,
    pub trigger: Trigger,
    /// The variables to run with: `None` takes them from the manifest and
    /// the environment now (a new deploy); a re-run keeps the earlier
    /// deployment's.
    pub variables: Option<Vec<Variable>>,
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
            provenance: Provenance::of(deployment),
            // The caller says how it re-runs it (retry, rollback).
            trigger: Trigger::Retry,
            variables: Some(deployment.variables.clone()),
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
) -> Result<Deployment> {
    let blobs = std::iter::once(("bundle", &snapshot.bundle_digest, snapshot.bundle_size)).chain(
        snapshot
            .image_archive
            .as_ref()
            .map(|(digest, size)| ("image archive", digest, *size)),
    );
    for (what, digest, size) in blobs {
        if context.store.blob_size(digest)? != Some(size) {
            return Err(Error::new(
                Code::DeploymentBlobMissing,
                format!(
                    "{what} {digest} is not in the controller's blob store; upload it first (berth deploy does this)"
                ),
            ));
        }
    }
    crate::ops::domain::check_claim(context, &snapshot.manifest)?;
    let variables = match snapshot.variables {
        Some(variables) => variables,
        None => crate::ops::variables::for_new(context, &snapshot.manifest)?,
    };
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
            let key = crate::ops::build::build_key(&snapshot.bundle_digest, build);
            let reuse = if snapshot.rebuild {
                None
            } else {
                crate::ops::build::reusable(context, &key)?
            };
            match reuse {
                Some(built) => {
                    tasks.insert(0, crate::ops::build::reused_task(&built, now));
                    (Some(key), Some(built))
                }
                None => {
                    let agent = crate::ops::build::pick_builder(context, build)?;
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
        message: snapshot.provenance.message,
        source_ref: snapshot.provenance.source_ref,
        commit_sha: snapshot.provenance.commit_sha,
        commit_time: snapshot.provenance.commit_time,
        commit_author: snapshot.provenance.commit_author.clone(),
        build_url: snapshot.provenance.build_url,
        trigger: snapshot.trigger.as_str().into(),
        started_at: None,
        finished_at: None,
        duration_ms: None,
        extra_metadata: Default::default(),
        variables,
        approval: None,
    };
    crate::ops::build::adopt_reused(&mut deployment);
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
