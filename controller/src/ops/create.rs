//! Creating deployments: the snapshot a deployment is made of, the checks
//! before it exists, and handing its tasks to the dispatcher.

use std::time::Duration;

use berth_shared::manifest::{Manifest, check_environment, check_version, names_environment};
use berth_shared::record::{ApprovalAction, Deployment, TaskKind};
use berth_shared::state::DeploymentStatus;
use tracing::info;

use super::provenance::{Provenance, Trigger};
use super::{Caller, Code, Error, Result};
use crate::hub::HubEvent;
use crate::progress;
use crate::server::Context;
use crate::store::{Created, Role};

mod snapshot;
pub use snapshot::{Snapshot, from_snapshot};

/// A request for a new deployment: the manifest and the blobs uploaded
/// before (`berth deploy`, the HTTP API).
#[derive(Clone, Debug, Default)]
pub struct NewDeployment {
    pub manifest_toml: String,
    /// Overrides the manifest's environment; empty keeps it.
    pub environment: String,
    /// Overrides the manifest's version; empty keeps it (or, without
    /// one, the bundle digest's start names the version).
    pub version: String,
    pub bundle_digest: String,
    pub bundle_size: u64,
    /// A prebuilt image archive for `[container]`, uploaded before.
    pub image_archive: Option<(String, u64)>,
    /// A second request with the same key returns the first deployment.
    pub idempotency_key: String,
    /// Start even though a deployment of the app runs already.
    pub force: bool,
    /// Wait for the running deployment of the app, then start.
    pub queue: bool,
    /// Build again even when an earlier build of the same inputs exists.
    pub rebuild: bool,
    /// Wait this long for offline target agents before refusing.
    pub wait_for_agents: Duration,
    /// Why and from what (message, branch, commit, CI run).
    pub provenance: Provenance,
    /// Which front door it came through (`cli`, `api`).
    pub trigger: Trigger,
}

/// What [`create`] did.
#[derive(Clone, Debug)]
pub struct CreatedDeployment {
    pub deployment: Deployment,
    /// The deployment an earlier request with the same idempotency key
    /// made, returned again.
    pub existing: bool,
}

/// Validates a deploy request and builds the deployment record.
fn build(context: &Context, caller: &Caller, request: &NewDeployment) -> Result<Deployment> {
    let mut manifest = Manifest::parse(&request.manifest_toml)?;
    if request.environment.is_empty() && !names_environment(&request.manifest_toml) {
        // Neither the request nor the manifest names one: the app's
        // default environment (`berth env set APP/ENV --default`), if any.
        if let Some(default) = super::environments::default_of(context, &manifest.app)? {
            manifest.environment = default;
        }
    }
    if !request.environment.is_empty() {
        check_environment(&request.environment)
            .map_err(|err| Error::invalid(format!("environment: {err}")))?;
        manifest.environment = request.environment.clone();
    }
    if !request.version.is_empty() {
        check_version(&request.version).map_err(|err| Error::invalid(format!("version: {err}")))?;
    }
    if request.idempotency_key.len() > 256 {
        return Err(Error::invalid(
            "the idempotency key is longer than 256 characters",
        ));
    }
    if request.image_archive.is_some() && manifest.container.is_none() {
        return Err(Error::invalid(
            "an image archive needs a [container] section in the manifest",
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
        image_archive: request.image_archive.clone(),
        rebuild: request.rebuild,
        provenance: request.provenance.clone().checked()?,
        trigger: request.trigger,
        variables: None,
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
    request: NewDeployment,
) -> Result<CreatedDeployment> {
    caller.require(Role::Operator)?;
    super::target::wait_for_agents(context, &request.manifest_toml, request.wait_for_agents)
        .await?;
    let mut deployment = build(context, caller, &request)?;
    super::windows::check(
        context,
        caller,
        &deployment.app,
        &deployment.environment,
        request.force,
    )
    .await?;
    check_trigger_rate(context, &deployment.app)?;
    // A first deploy to an environment gives it a record (`development`).
    super::environments::ensure(
        context,
        &deployment.app,
        &deployment.environment,
        &caller.who(),
    )
    .await?;
    // In a protected environment, an operator's deploy waits for its
    // approval (`ops::approvals`).
    if let Some(approval) = super::approvals::required(
        context,
        caller,
        &deployment.app,
        &deployment.environment,
        ApprovalAction::Deploy,
    )? {
        progress::approval::hold(&mut deployment, approval);
    }
    let created = context
        .store
        .create_deployment(&deployment, request.force, request.queue)?;
    match created {
        Created::Existing(id) => {
            let existing = context.store.get_deployment(id)?;
            if existing.manifest_toml != request.manifest_toml
                || existing.bundle_digest != request.bundle_digest
            {
                return Err(Error::new(
                    Code::DeploymentIdempotencyConflict,
                    format!(
                        "idempotency key `{}` was used for deployment {id} with a different manifest or bundle; use a new key",
                        request.idempotency_key
                    ),
                ));
            }
            return Ok(CreatedDeployment {
                deployment: existing,
                existing: true,
            });
        }
        Created::New | Created::Queued(_) => {}
    }
    let deployment = submitted(context, caller, "deploy", deployment, &created).await?;
    Ok(CreatedDeployment {
        deployment,
        existing: false,
    })
}

/// Refuses a trigger (deploy, retry, redeploy, rollback) over the app's
/// rate limit, saying when to try again.
pub fn check_trigger_rate(context: &Context, app: &str) -> Result<()> {
    let Some(limit) = &context.triggers else {
        return Ok(());
    };
    limit
        .check(app.to_string(), std::time::Instant::now())
        .map_err(|wait| {
            // Whole seconds, rounded up, so a client waiting this long is
            // past the window.
            let wait = Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(Duration::from_secs(1));
            Error {
                retry_after: Some(wait),
                ..Error::new(Code::DeploymentRateLimited, format!(
                    "app `{app}` was triggered {} times within a minute, its limit (berth-controller serve --trigger-limit); try again in {}",
                    limit.limit(),
                    berth_shared::time::format_duration(wait)
                ))
            }
        })
}

/// A deployment that reuses an earlier build says so in its build log.
fn log_reused_build(context: &Context, deployment: Deployment) -> Result<Deployment> {
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
/// waiting for the running one, and neither it nor one waiting for its
/// approval is dispatched yet (audited `pending-approval`).
pub async fn submitted(
    context: &Context,
    caller: &Caller,
    action: &str,
    mut deployment: Deployment,
    created: &crate::store::Created,
) -> Result<Deployment> {
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
    } else {
        info!(deployment_id = %deployment.id, app = %deployment.app, environment = %deployment.environment, version = %deployment.version, origin = %deployment.origin, "deployment created");
    }
    let outcome = if deployment.status == DeploymentStatus::PendingApproval {
        "pending-approval"
    } else if deployment.queued {
        "queued"
    } else {
        "created"
    };
    announce(context, &caller.who(), action, outcome, deployment).await
}

/// Audits a request that changed a deployment, makes it durable, tells
/// the followers, and hands the new tasks to the dispatcher.
pub async fn announce(
    context: &Context,
    who: &str,
    action: &str,
    outcome: &str,
    deployment: Deployment,
) -> Result<Deployment> {
    super::deployments::audit(context, who, action, &deployment, outcome).await?;
    context.hub.publish(HubEvent::Changed {
        deployment: deployment.id,
    });
    context.dispatcher.track(&deployment);
    context.dispatcher.kick_all().await;
    Ok(deployment)
}
