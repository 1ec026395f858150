//! The records berth stores and prints. Their JSON form (snake_case fields,
//! RFC 3339 times) is the stable machine-readable output of `berth -o json`.
//! Between the controller and the CLI they travel as the typed protobuf
//! messages of `berth.proto` that mirror them (the controller's
//! `grpc/cli/records.rs` and the CLI's `wire` module convert), and the CLI
//! prints the record it rebuilt.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::{AgentId, DeploymentId, TaskId};
use crate::manifest::Manifest;
use crate::state::{DeploymentStatus, TaskStatus};

mod admin;
mod approvals;
mod apps;
mod controllers;
mod dora;
mod environments;
mod fleet;
mod hooks;
mod people;
mod resources;
mod secrets;
mod snapshots;
mod variables;
mod webhooks;

pub use admin::{AuditEntry, LoggedOut, Purged, RegistryView};
pub use approvals::{Approval, ApprovalAction, ApprovalOutcome, Approver, clock};
pub use apps::{
    AppDetail, AppSummary, DeploymentBrief, EnvironmentHistory, EnvironmentSummary, RatingSummary,
};
pub use controllers::{ControllerList, ControllerRole, ControllerView};
pub use dora::{
    ChangeFailure, ChangeFailureRate, DeploymentFrequency, DoraLevel, DoraReport, FailureKind,
    LeadTime, OpenFailure, TimeToRestore,
};
pub use environments::{EnvironmentKind, EnvironmentView};
pub use fleet::{
    AgentView, AppStatus, ContainerView, Facts, FleetJob, HostInspect, HostRun, HostState,
    RunningTaskView, TokenView,
};
pub use hooks::{CreatedHook, GitProvider, HookView, PushState, PushView};
pub use people::{ApiTokenView, CreatedApiToken, UserView};
pub use resources::{ResourceState, Restored, SnapshotList, SnapshotView};
pub use secrets::{MAX_SECRET_BYTES, SecretRef, SecretScope, SecretView};
pub use snapshots::{BuildOutput, RestoreSource};
pub use variables::{Variable, VariableSource, snapshot as variables_snapshot, with_secrets};
pub use webhooks::{
    CreatedWebhook, DeliveryState, DeliveryView, TEST_EVENT, WEBHOOK_EVENTS, WebhookFormat,
    WebhookView,
};

/// A point in time, kept as Unix milliseconds and written as RFC 3339.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Timestamp {
        Timestamp(crate::time::now_ms())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::time::rfc3339(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(deserializer)?;
        let time = humantime::parse_rfc3339(&text).map_err(serde::de::Error::custom)?;
        let ms = time
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(serde::de::Error::custom)?
            .as_millis();
        Ok(Timestamp(
            i64::try_from(ms).map_err(serde::de::Error::custom)?,
        ))
    }
}

/// One deployment: what was asked, where it ran, and how it went.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Deployment {
    pub id: DeploymentId,
    pub app: String,
    pub environment: String,
    pub version: String,
    pub status: DeploymentStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub triggered_by: String,
    pub error_step: Option<String>,
    pub error_message: Option<String>,
    pub bundle_digest: String,
    pub bundle_size: u64,
    /// The manifest as validated, and its text as submitted: the snapshot
    /// that lets the deployment be re-run exactly.
    pub manifest: Manifest,
    pub manifest_toml: String,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// The image archive shipped through the blob store, if any.
    #[serde(default)]
    pub image_archive_digest: Option<String>,
    #[serde(default)]
    pub image_archive_size: u64,
    pub tasks: Vec<Task>,
    pub transitions: Vec<Transition>,
    /// The deployment this one re-runs (a retry or a rollback).
    #[serde(default)]
    pub parent_id: Option<DeploymentId>,
    /// How many retries lie between this deployment and the original.
    #[serde(default)]
    pub retry_count: u32,
    /// How it came about: `deploy`, `retry` or `rollback`.
    #[serde(default = "origin_deploy")]
    pub origin: String,
    /// Waiting for the app+environment's running deployment to end
    /// (`berth deploy --queue`); no task runs until then.
    #[serde(default)]
    pub queued: bool,
    /// When the current run times out (Unix ms); set when work starts.
    #[serde(default)]
    pub deadline_ms: Option<i64>,
    /// With `[build]`: the hash of the build's inputs (bundle digest and
    /// the build section), under which its result is kept for reuse.
    #[serde(default)]
    pub build_key: Option<String>,
    /// With `[build]`: what the build made, once it did (or was reused).
    #[serde(default)]
    pub built: Option<BuildOutput>,
    /// After a failed rollout with `on_failure = "rollback"`: the version
    /// its `restore` tasks put back on the hosts that had switched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_to: Option<RestoreSource>,
    /// Why and from what: what the person or CI job said, the branch or
    /// tag, the commit and the CI run it came from.
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub source_ref: Option<String>,
    #[serde(default)]
    pub commit_sha: Option<String>,
    /// When that commit was made (`berth deploy --commit-time`, or read
    /// from git): the start of the lead time for changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_time: Option<Timestamp>,
    /// Who made that commit, when a git push hook's delivery says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_author: Option<String>,
    #[serde(default)]
    pub build_url: Option<String>,
    /// What made it: `cli`, `api`, `webhook`, `schedule`, `retry`,
    /// `rollback` or `external`.
    #[serde(default = "trigger_cli")]
    pub trigger: String,
    /// When its work last started (left `pending`), and when that run
    /// ended (it settled), with the time between.
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    #[serde(default)]
    pub finished_at: Option<Timestamp>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// What an outside tool reported beside the deployment (`extra_metadata`
    /// of a deployment event), as it sent it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_metadata: BTreeMap<String, String>,
    /// The variables it runs with, as they were when it was made (empty
    /// in records from before variables: their container's env is the
    /// manifest's `[container] env`).
    #[serde(default)]
    pub variables: Vec<Variable>,
    /// In a protected environment: the approval a request by an operator
    /// waits for (this deployment itself, in `pending_approval`, or a stop,
    /// redeploy or start of it), and who gave it; the latest one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
}

fn trigger_cli() -> String {
    "cli".into()
}

fn origin_deploy() -> String {
    "deploy".to_string()
}

impl Deployment {
    /// The task with this id.
    pub fn task_mut(&mut self, task_id: TaskId) -> Option<&mut Task> {
        self.tasks.iter_mut().find(|task| task.id == task_id)
    }
}

/// What a task does on its host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Runs the deployment's stages.
    Deploy,
    /// Runs the `[stop]` commands and stops the app's containers.
    Stop,
    /// Removes what the deployment created on the host.
    Delete,
    /// Builds the bundle once (`[build]`) on a build agent.
    Build,
    /// Puts the previous version back on a host after the rollout of
    /// this deployment failed (`[target] on_failure = "rollback"`).
    Restore,
}

/// One host's part of a deployment.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Task {
    pub id: TaskId,
    pub kind: TaskKind,
    pub host: String,
    pub agent_id: AgentId,
    pub status: TaskStatus,
    /// Fencing number of the current assignment; results from an older
    /// generation are stale.
    pub generation: u64,
    pub stages: Vec<StageResult>,
    pub error_step: Option<String>,
    pub error_message: Option<String>,
    pub created_at: Timestamp,
    pub assigned_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// Highest event sequence number made durable.
    #[serde(default)]
    pub acked_seq: u64,
    /// Events received from an old generation or after the task ended.
    #[serde(default)]
    pub stale_events: u64,
    /// A stop or delete that takes the app's resources too
    /// (`--with-resources`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub with_resources: bool,
    /// A delete that removes the resources' named volumes too
    /// (`--purge-volumes`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub purge_volumes: bool,
}

impl Task {
    /// A new task waiting for its agent.
    pub fn queued(kind: TaskKind, host: &str, agent_id: AgentId, created_at: Timestamp) -> Task {
        Task {
            id: TaskId::new(),
            kind,
            host: host.to_string(),
            agent_id,
            status: TaskStatus::Queued,
            generation: 0,
            stages: Vec::new(),
            error_step: None,
            error_message: None,
            created_at,
            assigned_at: None,
            finished_at: None,
            acked_seq: 0,
            stale_events: 0,
            with_resources: false,
            purge_volumes: false,
        }
    }
}

/// The outcome of one stage on one host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StageResult {
    pub stage: String,
    /// `running`, `succeeded`, `failed`, `timed_out` or `canceled`.
    pub outcome: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub duration_ms: Option<u64>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    /// What the stage made: container id and name, host port, ...
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
}

/// One entry of a deployment's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Transition {
    pub at: Timestamp,
    /// `deployment`, or the host name for a task's transition.
    pub subject: String,
    pub from: Option<String>,
    pub to: String,
    pub reason: Option<String>,
    /// For a task's transition caused by one of its agent's events, that
    /// event's sequence number: it orders the transition among the task's
    /// log lines, which share the numbering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The task whose event sequence `seq` belongs to (a host may run a
    /// build and a deploy task of one deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskId>,
}

/// A stored log line as `berth logs -o json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogEntry {
    pub host: String,
    pub stage: String,
    pub stream: String,
    pub seq: u64,
    pub ts: Timestamp,
    pub line: String,
}

/// Free-form extra fields some replies carry.
pub type Extra = BTreeMap<String, serde_json::Value>;

/// True when nothing more will happen to this deployment without a new
/// request: its status is settled and no task is still running.
/// The user a `triggered_by` names: `ana` for `ana` and for
/// `ana via token ci` (a deployment made with one of ana's API tokens).
pub fn user_of(triggered_by: &str) -> &str {
    triggered_by
        .split_once(" via token ")
        .map_or(triggered_by, |(user, _)| user)
}

pub fn is_quiet(deployment: &Deployment) -> bool {
    deployment.status.is_settled() && deployment.tasks.iter().all(|task| task.status.is_final())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_in_json() {
        let json = serde_json::to_string(&Timestamp(1_700_000_000_123)).expect("json");
        assert_eq!(json, "\"2023-11-14T22:13:20.123Z\"");
        let back: Timestamp = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, Timestamp(1_700_000_000_123));
    }
}
