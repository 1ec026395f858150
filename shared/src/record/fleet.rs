//! Records about the fleet and what runs on it: agents and their host
//! facts, join tokens, `berth status` rows, `berth inspect` answers and
//! fleet jobs (`berth exec`).

use serde::{Deserialize, Serialize};

use super::Timestamp;
use crate::id::{AgentId, DeploymentId, TaskId};
use crate::labels::Labels;
use crate::state::{DeploymentStatus, TaskStatus};

/// Host facts an agent reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentView {
    pub id: AgentId,
    pub name: String,
    pub online: bool,
    pub status: String,
    /// The agent's own labels (from join and `berth agents label`).
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub labels: Labels,
    /// Labels berth derives from the host facts (`os`, `arch`,
    /// `hostname`); selectors match both, own labels winning on a clash.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// What waits for an approval here (a deployment, or a stop, redeploy
    /// or start of the current one), by whom and until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
}

/// One app on one host, as `berth status` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Secrets that changed since the deployment running there was made
    /// (`DB_PASSWORD (v1, now v2)`): a deploy picks them up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets_changed: Vec<String>,
    /// The app's resources there (`[resources.NAME]`), as its agent last
    /// saw them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<super::ResourceState>,
}

/// One berth-managed container on a host, as `berth inspect` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// The periodic health check's verdict, when the app has one; for a
    /// resource, its check's answer now.
    #[serde(default)]
    pub health: String,
    /// The resource it runs (`[resources.NAME]`); empty for the app's own
    /// containers.
    #[serde(default)]
    pub resource: String,
    /// Its volumes as `source:path` (a named volume by its Docker name).
    #[serde(default)]
    pub volumes: Vec<String>,
}

/// One host's answer to `berth inspect`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
