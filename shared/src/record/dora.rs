//! The DORA figures of one app in one environment over a window
//! (`berth metrics dora`, `GET /api/v1/apps/{app}/dora`): deployment
//! frequency, lead time for changes, change failure rate and time to
//! restore, each with its performance level. `docs/dora.md` defines every
//! figure; the controller's `ops/dora/figures.rs` computes them.

use serde::{Deserialize, Serialize};

use super::Timestamp;
use crate::id::DeploymentId;

/// A team's performance level for one figure, by the thresholds of the
/// 2023 State of DevOps report (`docs/dora.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DoraLevel {
    Elite,
    High,
    Medium,
    Low,
}

impl DoraLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            DoraLevel::Elite => "elite",
            DoraLevel::High => "high",
            DoraLevel::Medium => "medium",
            DoraLevel::Low => "low",
        }
    }
}

/// The DORA figures of one app+environment over `[from, to)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DoraReport {
    pub app: String,
    pub environment: String,
    /// The window: from (inclusive) to (exclusive, the time of the request).
    pub from: Timestamp,
    pub to: Timestamp,
    /// How soon after a change a deployment marked as a fix blames it.
    pub fix_window_ms: u64,
    pub deployment_frequency: DeploymentFrequency,
    pub lead_time: LeadTime,
    pub change_failure_rate: ChangeFailureRate,
    pub time_to_restore: TimeToRestore,
}

/// Deployments that reached `deployed` in the window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeploymentFrequency {
    pub count: u64,
    /// `count` over the window's length in days, and in weeks.
    pub per_day: f64,
    pub per_week: f64,
    /// `null` when nothing was deployed.
    pub level: Option<DoraLevel>,
}

/// From commit to deployed, for the changes that know their commit time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeadTime {
    /// Changes that reached `deployed` in the window.
    pub deployed: u64,
    /// Of those, the ones with a commit time: what the figures are of.
    pub with_commit_time: u64,
    /// Milliseconds; `null` without any commit time.
    pub median_ms: Option<u64>,
    pub p90_ms: Option<u64>,
    pub level: Option<DoraLevel>,
}

/// The share of changes that failed, were rolled back or were fixed soon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangeFailureRate {
    /// Changes (not rollbacks) that ended in the window: `deployed`,
    /// `failed` or `timed_out`.
    pub changes: u64,
    /// Of those, the failed changes, each counted once (see `failures`).
    pub failed: u64,
    /// `failed / changes`, from 0 to 1; `null` without changes.
    pub rate: Option<f64>,
    pub level: Option<DoraLevel>,
    /// The failed changes, oldest first.
    pub failures: Vec<ChangeFailure>,
}

/// Why a change counts as failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// It ended `failed` or `timed_out`.
    Failed,
    /// It was deployed, and the next deployment was a rollback.
    RolledBack,
    /// It was deployed, and the next deployment, made within the fix
    /// window, names a fix (`fix`, `hotfix` or `revert`).
    Fixed,
}

/// One failed change, and what restored service after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangeFailure {
    pub deployment_id: DeploymentId,
    pub version: String,
    pub kind: FailureKind,
    /// When the failure began: the time it failed, or, for a change rolled
    /// back or fixed, the time it was deployed.
    pub at: Timestamp,
    /// The first deployment to reach `deployed` after `at`, and when it
    /// did; `null` while the failure is open.
    pub restored_by: Option<DeploymentId>,
    pub restored_at: Option<Timestamp>,
}

/// From a failure to the next deployment that reached `deployed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimeToRestore {
    /// Failures in the window that were restored.
    pub restored: u64,
    /// Milliseconds; `null` while none was restored.
    pub median_ms: Option<u64>,
    pub p90_ms: Option<u64>,
    /// Failures in the window not restored yet: since when each is open.
    pub open: Vec<OpenFailure>,
    pub level: Option<DoraLevel>,
}

/// A failure nothing restored yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpenFailure {
    pub deployment_id: DeploymentId,
    pub since: Timestamp,
}
