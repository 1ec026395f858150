//! The deployment and task state machines (SPEC §5). Every status change in
//! the controller goes through [`DeploymentStatus::can_become`] or
//! [`TaskStatus::can_become`], so an impossible transition is refused rather
//! than stored.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The status of a deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    /// Held in a protected environment until an admin (or, with two
    /// approvals, another operator) approves it; nothing runs meanwhile.
    PendingApproval,
    Pending,
    SetupRunning,
    SetupComplete,
    Building,
    Deploying,
    Deployed,
    Failed,
    Canceled,
    TimedOut,
    Stopped,
    Superseded,
    Deleted,
}

/// Every deployment status, in lifecycle order.
pub const DEPLOYMENT_STATUSES: [DeploymentStatus; 13] = [
    DeploymentStatus::PendingApproval,
    DeploymentStatus::Pending,
    DeploymentStatus::SetupRunning,
    DeploymentStatus::SetupComplete,
    DeploymentStatus::Building,
    DeploymentStatus::Deploying,
    DeploymentStatus::Deployed,
    DeploymentStatus::Failed,
    DeploymentStatus::Canceled,
    DeploymentStatus::TimedOut,
    DeploymentStatus::Stopped,
    DeploymentStatus::Superseded,
    DeploymentStatus::Deleted,
];

impl DeploymentStatus {
    /// The snake_case name used in JSON, indexes and on the command line.
    pub fn as_str(self) -> &'static str {
        use DeploymentStatus::*;
        match self {
            PendingApproval => "pending_approval",
            Pending => "pending",
            SetupRunning => "setup_running",
            SetupComplete => "setup_complete",
            Building => "building",
            Deploying => "deploying",
            Deployed => "deployed",
            Failed => "failed",
            Canceled => "canceled",
            TimedOut => "timed_out",
            Stopped => "stopped",
            Superseded => "superseded",
            Deleted => "deleted",
        }
    }

    /// True while work is still in progress, or waits to start: a
    /// deployment waiting for its approval holds its app's running slot
    /// like a pending one.
    pub fn is_running(self) -> bool {
        use DeploymentStatus::*;
        matches!(
            self,
            PendingApproval | Pending | SetupRunning | SetupComplete | Building | Deploying
        )
    }

    /// True when the deployment will not change again on its own.
    pub fn is_settled(self) -> bool {
        !self.is_running()
    }

    /// Whether `self → next` is a legal transition.
    pub fn can_become(self, next: DeploymentStatus) -> bool {
        use DeploymentStatus::*;
        if self == next {
            return false;
        }
        match (self, next) {
            // Approved, or canceled (by hand, or its approval expired);
            // nothing ran, so it cannot fail or time out.
            (PendingApproval, Pending | Canceled) => true,
            (PendingApproval, _) => false,
            (from, Failed | Canceled | TimedOut) => from.is_running(),
            (Pending, SetupRunning | Building | Deploying) => true,
            (SetupRunning, SetupComplete) => true,
            (SetupComplete, Building | Deploying | Deployed) => true,
            // A build runs before any host's setup (its artifact must be
            // in place for setup), so building leads to the host stages.
            (Building, SetupRunning | Deploying | Deployed) => true,
            (Deploying, Deployed) => true,
            (Deployed, Deploying | Stopped | Superseded | Deleted) => true,
            (Stopped | Superseded | Failed | Canceled | TimedOut, Deleted) => true,
            (Stopped, Deploying) => true,
            _ => false,
        }
    }
}

impl fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeploymentStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        DEPLOYMENT_STATUSES
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<_> = DEPLOYMENT_STATUSES.iter().map(|s| s.as_str()).collect();
                format!("`{text}` is not a status; use one of: {}", names.join(", "))
            })
    }
}

/// The status of one host's task within a deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Queued,
    Assigned,
    Setup,
    Build,
    Deploy,
    Proxy,
    Health,
    /// Running the `[stop]` commands.
    Stop,
    /// Removing what the deployment created.
    Delete,
    Done,
    Failed,
    Canceled,
    TimedOut,
    Lost,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        use TaskStatus::*;
        match self {
            Queued => "queued",
            Assigned => "assigned",
            Setup => "setup",
            Build => "build",
            Deploy => "deploy",
            Proxy => "proxy",
            Health => "health",
            Stop => "stop",
            Delete => "delete",
            Done => "done",
            Failed => "failed",
            Canceled => "canceled",
            TimedOut => "timed_out",
            Lost => "lost",
        }
    }

    /// True once the task will not change again.
    pub fn is_final(self) -> bool {
        use TaskStatus::*;
        matches!(self, Done | Failed | Canceled | TimedOut | Lost)
    }

    /// True while an agent holds the task (assigned or running a stage).
    pub fn is_active(self) -> bool {
        !self.is_final() && self != TaskStatus::Queued
    }

    /// The status for a stage name reported by an agent.
    pub fn for_stage(stage: &str) -> Option<TaskStatus> {
        use TaskStatus::*;
        Some(match stage {
            "setup" => Setup,
            "build" => Build,
            "deploy" => Deploy,
            "proxy" => Proxy,
            "health" => Health,
            "stop" => Stop,
            "delete" => Delete,
            _ => return None,
        })
    }

    /// Whether `self → next` is a legal transition.
    pub fn can_become(self, next: TaskStatus) -> bool {
        use TaskStatus::*;
        if self.is_final() || self == next {
            return false;
        }
        let order = |status: TaskStatus| match status {
            Queued => 0,
            Assigned => 1,
            Setup | Stop | Delete => 2,
            Build => 3,
            // A new container must be healthy before the proxy switches to
            // it, so health comes before proxy (SPEC §5 lists them the
            // other way round; the zero-downtime switch needs this order).
            Deploy => 4,
            Health => 5,
            Proxy => 6,
            _ => 7,
        };
        match next {
            Failed | Canceled | TimedOut | Lost => true,
            Queued => false,
            _ => order(next) > order(self),
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks `can_become` against a whole matrix: one row per `from`, one
    /// column per `to`, in the order of `all`; `x` legal, `.` not. Every
    /// pair is pinned, so adding or removing any arm fails a test.
    fn check_matrix<S: Copy + fmt::Display>(
        all: &[S],
        can_become: impl Fn(S, S) -> bool,
        matrix: &[(&str, &str)],
    ) {
        assert_eq!(matrix.len(), all.len(), "one row per status");
        for (from, (name, row)) in all.iter().zip(matrix) {
            assert_eq!(from.to_string(), *name, "rows in order");
            assert_eq!(row.len(), all.len(), "one column per status in row {name}");
            for (to, mark) in all.iter().zip(row.chars()) {
                assert_eq!(
                    can_become(*from, *to),
                    mark == 'x',
                    "{from} -> {to} should be {}",
                    if mark == 'x' { "legal" } else { "illegal" }
                );
            }
        }
    }

    #[test]
    fn deployment_transition_matrix() {
        // Columns: pending_approval pending setup_running setup_complete
        // building deploying deployed failed canceled timed_out stopped
        // superseded deleted.
        check_matrix(
            &DEPLOYMENT_STATUSES,
            DeploymentStatus::can_become,
            &[
                ("pending_approval", ".x......x...."),
                ("pending", "..x.xx.xxx..."),
                ("setup_running", "...x...xxx..."),
                ("setup_complete", "....xxxxxx..."),
                ("building", "..x..xxxxx..."),
                ("deploying", "......xxxx..."),
                ("deployed", ".....x....xxx"),
                ("failed", "............x"),
                ("canceled", "............x"),
                ("timed_out", "............x"),
                ("stopped", ".....x......x"),
                ("superseded", "............x"),
                ("deleted", "............."),
            ],
        );
    }

    #[test]
    fn a_deployment_waiting_for_approval_holds_its_slot() {
        // Running (it keeps the app's running slot, `berth ls` lists it
        // with the running ones), never settled until approved or canceled.
        assert!(DeploymentStatus::PendingApproval.is_running());
        assert!(!DeploymentStatus::PendingApproval.is_settled());
        assert_eq!(
            "pending_approval".parse::<DeploymentStatus>(),
            Ok(DeploymentStatus::PendingApproval)
        );
    }

    #[test]
    fn task_transition_matrix() {
        use TaskStatus::*;
        // Columns in the order of the rows. Stages only move forward
        // (setup, stop and delete are one rank), any running task may
        // fail, be canceled, time out or be lost, and a final one never
        // changes.
        check_matrix(
            &[
                Queued, Assigned, Setup, Build, Deploy, Proxy, Health, Stop, Delete, Done, Failed,
                Canceled, TimedOut, Lost,
            ],
            TaskStatus::can_become,
            &[
                ("queued", ".xxxxxxxxxxxxx"),
                ("assigned", "..xxxxxxxxxxxx"),
                ("setup", "...xxxx..xxxxx"),
                ("build", "....xxx..xxxxx"),
                ("deploy", ".....xx..xxxxx"),
                ("proxy", ".........xxxxx"),
                ("health", ".....x...xxxxx"),
                ("stop", "...xxxx..xxxxx"),
                ("delete", "...xxxx..xxxxx"),
                ("done", ".............."),
                ("failed", ".............."),
                ("canceled", ".............."),
                ("timed_out", ".............."),
                ("lost", ".............."),
            ],
        );
    }

    #[test]
    fn statuses_round_trip() {
        for status in DEPLOYMENT_STATUSES {
            assert_eq!(status.as_str().parse::<DeploymentStatus>(), Ok(status));
            let json = serde_json::to_string(&status).expect("json");
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        assert!("bogus".parse::<DeploymentStatus>().is_err());
    }
}
