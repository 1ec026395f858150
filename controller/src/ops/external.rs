//! Deployments other tools made, reported as events (`POST
//! /api/v1/deployment-events`): successive events for one app, version and
//! environment update one record (origin and trigger `external`), shown in
//! `berth ls`, `status` and history like any other, and never dispatched
//! to agents: it holds no running slot and has no tasks.

use std::collections::BTreeMap;

use berth_shared::id::DeploymentId;
use berth_shared::labels::check_label_part;
use berth_shared::manifest::{Manifest, check_environment, check_version};
use berth_shared::record::{Deployment, Timestamp};
use berth_shared::state::DeploymentStatus;
use tracing::info;

use super::provenance::{Provenance, Trigger};
use super::{Caller, Code, Error, Result};
use crate::hub::HubEvent;
use crate::progress;
use crate::server::Context;
use crate::store::{Created, Role};

/// Most `extra_metadata` entries, and most bytes in all of them.
const MAX_EXTRA: usize = 32;
const MAX_EXTRA_BYTES: usize = 8 * 1024;

/// Where an outside deployment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExternalStatus {
    Pending,
    Started,
    Success,
    Failed,
    Aborted,
}

impl ExternalStatus {
    pub fn parse(text: &str) -> Result<ExternalStatus> {
        Ok(match text {
            "pending" => ExternalStatus::Pending,
            "started" => ExternalStatus::Started,
            "success" => ExternalStatus::Success,
            "failed" => ExternalStatus::Failed,
            "aborted" => ExternalStatus::Aborted,
            other => {
                return Err(Error::invalid(format!(
                    "status `{}` is not one of pending, started, success, failed, aborted",
                    berth_shared::text::clip(other, 40)
                )));
            }
        })
    }

    /// The statuses the record passes through to get here from `from`.
    fn path(self, from: DeploymentStatus) -> Result<Vec<DeploymentStatus>> {
        use DeploymentStatus::*;
        let path = match (self, from) {
            (ExternalStatus::Pending, Pending) => vec![],
            (ExternalStatus::Started, Pending | Deployed | Stopped) => vec![Deploying],
            (ExternalStatus::Started, Deploying) => vec![],
            (ExternalStatus::Success, Pending) => vec![Deploying, Deployed],
            (ExternalStatus::Success, Deploying) => vec![Deployed],
            (ExternalStatus::Success, Deployed) => vec![],
            (ExternalStatus::Failed, status) if status.is_running() => vec![Failed],
            (ExternalStatus::Failed, Failed) => vec![],
            (ExternalStatus::Aborted, status) if status.is_running() => vec![Canceled],
            (ExternalStatus::Aborted, Canceled) => vec![],
            (wanted, status) => {
                return Err(Error::new(
                    Code::DeploymentInvalidState,
                    format!(
                        "the outside deployment is {status}; a `{}` event cannot follow that",
                        wanted.as_str()
                    ),
                ));
            }
        };
        Ok(path)
    }

    fn as_str(self) -> &'static str {
        match self {
            ExternalStatus::Pending => "pending",
            ExternalStatus::Started => "started",
            ExternalStatus::Success => "success",
            ExternalStatus::Failed => "failed",
            ExternalStatus::Aborted => "aborted",
        }
    }
}

/// One event about a deployment another tool made.
#[derive(Clone, Debug)]
pub struct ExternalEvent {
    pub app: String,
    pub version: String,
    /// Empty: `default`.
    pub environment: String,
    pub status: ExternalStatus,
    /// Who deployed, as the tool knows them; default: the caller.
    pub deployed_by: Option<String>,
    pub provenance: Provenance,
    pub extra_metadata: BTreeMap<String, String>,
}

fn check(event: &ExternalEvent) -> Result<()> {
    check_label_part(&event.app, false).map_err(|err| Error::invalid(format!("app {err}")))?;
    if !event.environment.is_empty() {
        check_environment(&event.environment)
            .map_err(|err| Error::invalid(format!("environment: {err}")))?;
    }
    check_version(&event.version).map_err(|err| Error::invalid(format!("version: {err}")))?;
    if event
        .deployed_by
        .as_ref()
        .is_some_and(|who| who.len() > 128 || who.contains('\0'))
    {
        return Err(Error::invalid("deployed_by: at most 128 bytes, no NUL"));
    }
    let bytes: usize = event
        .extra_metadata
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    if event.extra_metadata.len() > MAX_EXTRA || bytes > MAX_EXTRA_BYTES {
        return Err(Error::invalid(format!(
            "extra_metadata: at most {MAX_EXTRA} entries and {MAX_EXTRA_BYTES} bytes"
        )));
    }
    Ok(())
}

/// The record of a new outside deployment, before its first status.
fn new_record(event: &ExternalEvent, who: String, key: String) -> Result<Deployment> {
    let environment = berth_shared::manifest::environment_or_default(&event.environment);
    // The snapshot of a deployment berth did not run: its app and
    // environment, and a target that selects no agent.
    let manifest_toml = format!(
        "app = \"{}\"\nenvironment = \"{environment}\"\n[target]\nhosts = []\nlabels = {{ berth-external = \"true\" }}\n",
        event.app
    );
    let manifest = Manifest::parse(&manifest_toml)?;
    let now = Timestamp::now();
    let provenance = event.provenance.clone().checked()?;
    Ok(Deployment {
        id: DeploymentId::new(),
        app: event.app.clone(),
        environment,
        version: event.version.clone(),
        status: DeploymentStatus::Pending,
        created_at: now,
        updated_at: now,
        triggered_by: who,
        error_step: None,
        error_message: None,
        bundle_digest: String::new(),
        bundle_size: 0,
        manifest,
        manifest_toml,
        idempotency_key: Some(key),
        image_archive_digest: None,
        image_archive_size: 0,
        tasks: Vec::new(),
        transitions: Vec::new(),
        parent_id: None,
        retry_count: 0,
        origin: "external".into(),
        queued: false,
        deadline_ms: None,
        build_key: None,
        built: None,
        restore_to: None,
        message: provenance.message,
        source_ref: provenance.source_ref,
        commit_sha: provenance.commit_sha,
        commit_time: provenance.commit_time,
        commit_author: provenance.commit_author.clone(),
        build_url: provenance.build_url,
        trigger: Trigger::External.as_str().into(),
        started_at: None,
        finished_at: None,
        duration_ms: None,
        extra_metadata: event.extra_metadata.clone(),
        variables: Vec::new(),
        approval: None,
    })
}

/// Records an event: the first for an app, version and environment makes
/// the record, the next ones move its status.
pub async fn record(
    context: &Context,
    caller: &Caller,
    event: ExternalEvent,
) -> Result<Deployment> {
    caller.require(Role::Operator)?;
    check(&event)?;
    let environment = berth_shared::manifest::environment_or_default(&event.environment);
    let key = format!("external\0{}\0{environment}\0{}", event.app, event.version);
    let who = event.deployed_by.clone().unwrap_or_else(|| caller.who());
    let fresh = new_record(&event, who, key)?;
    let id = match context.store.record_external(&fresh)? {
        Created::Existing(id) => id,
        Created::New | Created::Queued(_) => fresh.id,
    };
    let reporter = caller.who();
    let (deployment, ()) = context.store.update_deployment(id, |deployment| {
        if deployment.origin != "external" {
            return Err(crate::store::StoreError::Conflict(format!(
                "deployment {id} was made by berth, not reported by another tool"
            )));
        }
        let path = event
            .status
            .path(deployment.status)
            .map_err(|err| crate::store::StoreError::Conflict(err.message))?;
        for step in path {
            let reason = format!("{} reported by {reporter}", event.status.as_str());
            progress::set_status(deployment, step, Some(reason));
        }
        if event.status == ExternalStatus::Failed {
            deployment.error_step = Some("external".into());
            deployment.error_message = Some(format!(
                "the deploying tool reported a failure ({reporter})"
            ));
        }
        deployment
            .extra_metadata
            .extend(event.extra_metadata.clone());
        Ok(())
    })?;
    let target = format!(
        "{} {} {}",
        deployment.app, deployment.environment, deployment.id
    );
    context.store.audit(
        &reporter,
        "deployment.external",
        &target,
        event.status.as_str(),
    )?;
    context.store.flush().await?;
    context.hub.publish(HubEvent::Changed { deployment: id });
    info!(deployment_id = %id, app = %deployment.app, status = %deployment.status, "outside deployment recorded");
    Ok(deployment)
}
