//! What `berth resource` shows of an app's resources: the volume snapshots
//! its hosts keep, and what a restore did.

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// One volume snapshot of a resource on a host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SnapshotView {
    pub host: String,
    pub app: String,
    pub environment: String,
    pub resource: String,
    /// The volume as the manifest names it (`data`).
    pub volume: String,
    /// The snapshot's name, what `berth resource restore` takes.
    pub file: String,
    pub taken_at: Timestamp,
    pub bytes: u64,
}

/// The snapshots of an app's resources on its hosts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SnapshotList {
    pub snapshots: Vec<SnapshotView>,
    /// Hosts that did not answer (offline, or too slow).
    pub unanswered: Vec<String>,
}

/// What a restore did on its host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Restored {
    pub host: String,
    pub lines: Vec<String>,
}

/// One resource of an app on a host, as its agent last saw it (`berth
/// status`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResourceState {
    pub name: String,
    pub image: String,
    /// Docker's state: running, exited, restarting, ...
    pub state: String,
    /// `healthy`, `unhealthy: WHY` (checked at most every 30 s), or empty
    /// without a check.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub health: String,
    /// `docker-volume:/path` each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
}
