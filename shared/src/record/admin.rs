//! Records of the controller's administration: the audit log, registry
//! credentials (never with their password), and what `berth purge` and
//! `berth registry logout` removed.

use serde::{Deserialize, Serialize};

use super::Timestamp;
use crate::id::DeploymentId;

/// One audited action: who did what, when, with what result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub at: Timestamp,
    pub who: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
}

/// The credentials the controller holds for one registry, as
/// `berth registry ls` shows them (no password).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryView {
    pub server: String,
    pub username: String,
    pub created_at: Timestamp,
    pub created_by: String,
}

/// What `berth purge` removed: a deployment's record and its log lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Purged {
    pub id: DeploymentId,
    pub app: String,
    pub environment: String,
    pub purged: bool,
    pub log_lines_removed: u64,
}

/// What `berth registry logout` removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedOut {
    pub server: String,
    pub removed: bool,
}
