//! The records berth stores and prints. Their JSON form (snake_case fields,
//! RFC 3339 times) is the stable machine-readable output of `berth -o json`
//! and travels unchanged from the controller to the CLI.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::{AgentId, DeploymentId, TaskId};
use crate::labels::Labels;
use crate::manifest::Manifest;
use crate::state::{DeploymentStatus, TaskStatus};

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
}

/// The previous deployment a failed rollout puts back: enough of its
/// snapshot to run its stages again.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RestoreSource {
    pub deployment_id: DeploymentId,
    pub version: String,
    pub manifest: Manifest,
    pub bundle_digest: String,
    pub bundle_size: u64,
    #[serde(default)]
    pub image_archive_digest: Option<String>,
    #[serde(default)]
    pub image_archive_size: u64,
    #[serde(default)]
    pub built: Option<BuildOutput>,
}

impl RestoreSource {
    pub fn of(deployment: &Deployment) -> RestoreSource {
        RestoreSource {
            deployment_id: deployment.id,
            version: deployment.version.clone(),
            manifest: deployment.manifest.clone(),
            bundle_digest: deployment.bundle_digest.clone(),
            bundle_size: deployment.bundle_size,
            image_archive_digest: deployment.image_archive_digest.clone(),
            image_archive_size: deployment.image_archive_size,
            built: deployment.built.clone(),
        }
    }
}

/// What a build made: an image (shipped as a `docker save` archive) or an
/// artifact file, in the controller's blob store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildOutput {
    /// The blob holding the result.
    pub digest: String,
    pub size: u64,
    /// The image's tag (`berth/APP:VERSION`) and id, for an image build.
    pub image: Option<String>,
    pub image_id: Option<String>,
    /// The artifact's file name, for an artifact build.
    pub artifact: Option<String>,
    /// The deployment whose build made it.
    pub built_by: DeploymentId,
    /// True when this deployment reused an earlier build.
    #[serde(default)]
    pub reused: bool,
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
        }
    }
}

/// The outcome of one stage on one host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
pub struct LogEntry {
    pub host: String,
    pub stage: String,
    pub stream: String,
    pub seq: u64,
    pub ts: Timestamp,
    pub line: String,
}

/// Host facts an agent reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    pub hostname: String,
    pub os: String,
    /// The OS family the agent was built for (`linux`, `macos`, ...): Rust's
    /// `std::env::consts::OS`. Empty from agents that predate it.
    #[serde(default)]
    pub os_family: String,
    pub os_version: String,
    pub kernel: String,
    pub arch: String,
    pub cpus: u32,
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
    pub disk_total_bytes: u64,
    pub disk_free_bytes: u64,
    pub uptime_secs: u64,
    pub load_1m: f32,
    /// Docker's version; empty when Docker cannot be reached.
    #[serde(default)]
    pub docker_version: String,
    /// Why Docker cannot be reached, naming the address tried.
    #[serde(default)]
    pub docker_error: String,
}

/// An enrolled agent as `berth agents ls|show` prints it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AgentView {
    pub id: AgentId,
    pub name: String,
    pub online: bool,
    pub status: String,
    /// The agent's own labels (from join and `berth agents label`).
    pub labels: Labels,
    /// Labels berth derives from the host facts (`os`, `arch`,
    /// `hostname`); selectors match both, own labels winning on a clash.
    #[serde(default)]
    pub auto_labels: Labels,
    pub facts: Option<Facts>,
    pub version: Option<String>,
    pub enrolled_at: Timestamp,
    pub last_seen_at: Option<Timestamp>,
    pub cert_expires_at: Timestamp,
    /// How many certificates of the agent the controller still accepts:
    /// one, or two between a renewal and the first connection with the
    /// renewed certificate.
    #[serde(default)]
    pub valid_certificates: usize,
    pub running_tasks: Vec<RunningTaskView>,
}

/// A task an agent is working on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningTaskView {
    pub deployment_id: DeploymentId,
    pub task_id: TaskId,
    pub app: String,
    pub status: TaskStatus,
}

/// A join token as `berth token ls` prints it (never with its secret).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenView {
    pub id: String,
    pub labels: Labels,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub uses_allowed: u32,
    pub uses: u32,
    pub revoked: bool,
    pub created_by: String,
    pub state: String,
}

/// One row of `berth status`: what runs where.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AppStatus {
    pub app: String,
    pub environment: String,
    pub version: String,
    pub deployment_id: DeploymentId,
    pub status: DeploymentStatus,
    pub since: Timestamp,
    pub hosts: Vec<String>,
    /// The deployment in progress for this app, if any: the one holding
    /// the app+environment.
    pub in_progress: Option<DeploymentId>,
    /// Deployments waiting for their turn (`--queue`), oldest first.
    #[serde(default)]
    pub queued: Vec<DeploymentId>,
    /// What the deployment in progress waits for or does, when it is its
    /// build: `waiting for build agent NAME` or `building on NAME`.
    #[serde(default)]
    pub build_state: Option<String>,
    /// `healthy`, or `unhealthy` with the hosts and their last probe, from
    /// the periodic checks; absent without a `[health]` section.
    #[serde(default)]
    pub health: Option<String>,
    /// What each host runs now, as its agent reports it (or, for a host
    /// that is offline, what it last ran as far as the controller knows).
    #[serde(default)]
    pub host_states: Vec<HostState>,
}

/// One app on one host, as `berth status` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostState {
    pub host: String,
    pub online: bool,
    /// The version and deployment running there; empty when none runs.
    pub version: String,
    pub deployment_id: String,
    /// `running`, `deployed` (script-only), `missing`, `stopped`, `offline`,
    /// `not running`, or why the agent could not look.
    pub state: String,
    /// `healthy` or `unhealthy: PROBE` from the host's periodic check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    pub since: Option<Timestamp>,
    /// The last repair the agent made, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_repair: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_repair_at: Option<Timestamp>,
}

/// One berth-managed container on a host, as `berth inspect` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerView {
    pub name: String,
    pub id: String,
    pub app: String,
    pub environment: String,
    pub deployment_id: String,
    pub version: String,
    pub image: String,
    /// Docker's state: running, exited, restarting, ...
    pub state: String,
    /// Docker's status text, e.g. "Up 5 minutes".
    pub status: String,
    /// Published ports as `host_ip:host_port->container_port/proto`.
    pub ports: Vec<String>,
    pub restart_count: i64,
    pub recent_logs: Vec<String>,
    /// The periodic health check's verdict, when the app has one.
    #[serde(default)]
    pub health: String,
}

/// One host's answer to `berth inspect`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostInspect {
    pub host: String,
    pub online: bool,
    /// False when the host did not answer in time.
    pub answered: bool,
    pub error: Option<String>,
    pub containers: Vec<ContainerView>,
    /// Load, memory and disk, from the host's last report.
    #[serde(default)]
    pub facts: Option<Facts>,
    /// berth tasks running on the host now.
    #[serde(default)]
    pub running_tasks: Vec<RunningTaskView>,
    /// The Caddy routes the host's agent keeps.
    #[serde(default)]
    pub routes: Vec<String>,
}

/// A fleet-wide command (`berth exec`) and what each host made of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetJob {
    /// A ULID: jobs sort by start time.
    pub id: String,
    pub argv: Vec<String>,
    pub selector: String,
    pub triggered_by: String,
    pub timeout_ms: u64,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub hosts: Vec<HostRun>,
}

/// One host's part of a fleet job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRun {
    pub host: String,
    /// `ok`, `failed`, `timed_out`, `offline`, `no_answer` or `error`.
    pub status: String,
    pub exit_code: Option<i32>,
    /// Output lines in order; stderr lines start with `stderr: `.
    pub output: Vec<String>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// Free-form extra fields some replies carry.
pub type Extra = BTreeMap<String, serde_json::Value>;

/// True when nothing more will happen to this deployment without a new
/// request: its status is settled and no task is still running.
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
