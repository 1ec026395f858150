//! Approvals in protected environments: what a request by an operator
//! waits for, who asked and until when, and who approved it (or how it
//! ended without). A deploy, retry or rollback held for approval is a new
//! deployment in `pending_approval`; a stop, redeploy or start held for
//! approval leaves its deployment as it is, with a pending approval on it
//! that runs the change once approved. The record travels in
//! `Deployment::approval`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Timestamp, user_of};

/// The change a request asks for, held until it is approved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApprovalAction {
    Deploy,
    Retry,
    Rollback,
    Redeploy,
    Start,
    Stop,
}

impl ApprovalAction {
    pub const ALL: [ApprovalAction; 6] = [
        ApprovalAction::Deploy,
        ApprovalAction::Retry,
        ApprovalAction::Rollback,
        ApprovalAction::Redeploy,
        ApprovalAction::Start,
        ApprovalAction::Stop,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalAction::Deploy => "deploy",
            ApprovalAction::Retry => "retry",
            ApprovalAction::Rollback => "rollback",
            ApprovalAction::Redeploy => "redeploy",
            ApprovalAction::Start => "start",
            ApprovalAction::Stop => "stop",
        }
    }

    /// True when the held request is a new deployment of its own (status
    /// `pending_approval`); false when it changes an existing one.
    pub fn makes_deployment(self) -> bool {
        matches!(
            self,
            ApprovalAction::Deploy | ApprovalAction::Retry | ApprovalAction::Rollback
        )
    }
}

impl fmt::Display for ApprovalAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApprovalAction {
    type Err = String;

    fn from_str(text: &str) -> Result<ApprovalAction, String> {
        ApprovalAction::ALL
            .into_iter()
            .find(|action| action.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "`{}` is not an approval's action",
                    crate::text::clip(text, 40)
                )
            })
    }
}

/// Where an approval stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApprovalOutcome {
    /// Waiting for someone allowed to approve it.
    Pending,
    /// Approved; the change ran (or runs).
    Approved,
    /// Nobody approved it in time; the change did not run.
    Expired,
    /// The held deployment was canceled before anyone approved it.
    Canceled,
    /// It no longer applied when it was approved (the deployment changed
    /// meanwhile, e.g. it was stopped or superseded); nothing ran.
    Void,
}

impl ApprovalOutcome {
    pub const ALL: [ApprovalOutcome; 5] = [
        ApprovalOutcome::Pending,
        ApprovalOutcome::Approved,
        ApprovalOutcome::Expired,
        ApprovalOutcome::Canceled,
        ApprovalOutcome::Void,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalOutcome::Pending => "pending",
            ApprovalOutcome::Approved => "approved",
            ApprovalOutcome::Expired => "expired",
            ApprovalOutcome::Canceled => "canceled",
            ApprovalOutcome::Void => "void",
        }
    }
}

impl FromStr for ApprovalOutcome {
    type Err = String;

    fn from_str(text: &str) -> Result<ApprovalOutcome, String> {
        ApprovalOutcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "`{}` is not an approval's outcome",
                    crate::text::clip(text, 40)
                )
            })
    }
}

/// Who approved, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Approver {
    /// As `triggered_by` names people: `carol`, or `carol via token ci`.
    pub by: String,
    pub at: Timestamp,
}

/// A request held for approval, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Approval {
    pub action: ApprovalAction,
    /// Who asked (`ana`, or `ana via token ci`); never its approver.
    pub requested_by: String,
    pub requested_at: Timestamp,
    /// When a pending approval expires (the controller's
    /// `--approval-ttl` after the request).
    pub expires_at: Timestamp,
    /// The environment's approvals when it was asked: 1, an admin
    /// approves; 2, an admin or another operator does.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 2))]
    pub approvals: u8,
    pub outcome: ApprovalOutcome,
    /// Who approved it, once someone did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<Approver>,
    /// When and why it ended without approval (expired, canceled, void).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Approval {
    /// A new pending approval.
    pub fn pending(
        action: ApprovalAction,
        requested_by: &str,
        requested_at: Timestamp,
        ttl_ms: i64,
        approvals: u8,
    ) -> Approval {
        Approval {
            action,
            requested_by: requested_by.to_string(),
            requested_at,
            expires_at: Timestamp(requested_at.0.saturating_add(ttl_ms)),
            approvals,
            outcome: ApprovalOutcome::Pending,
            approved: None,
            ended_at: None,
            reason: None,
        }
    }

    pub fn is_pending(&self) -> bool {
        self.outcome == ApprovalOutcome::Pending
    }

    /// True when it is still pending at `now` but its time is up.
    pub fn is_due(&self, now: Timestamp) -> bool {
        self.is_pending() && self.expires_at <= now
    }

    /// The user who asked (the first pair of eyes), whatever credential.
    pub fn requester(&self) -> &str {
        user_of(&self.requested_by)
    }

    /// Who may approve it, for people.
    pub fn approvers(&self) -> &'static str {
        if self.approvals >= 2 {
            "an admin (or another operator)"
        } else {
            "an admin"
        }
    }

    /// Ends a pending approval without its change.
    pub fn end(&mut self, outcome: ApprovalOutcome, at: Timestamp, reason: String) {
        self.outcome = outcome;
        self.ended_at = Some(at);
        self.reason = Some(reason);
    }

    /// One line for people: what waits for whom until when, or who
    /// approved it, or how it ended.
    pub fn text(&self) -> String {
        let asked = format!("{} requested by {}", self.action, self.requested_by);
        match self.outcome {
            ApprovalOutcome::Pending => format!(
                "waiting for approval by {} until {} ({}); {asked}",
                self.approvers(),
                clock(self.expires_at),
                crate::time::age(self.expires_at.0)
            ),
            ApprovalOutcome::Approved => match &self.approved {
                Some(approver) => {
                    format!("approved by {} at {}; {asked}", approver.by, approver.at)
                }
                None => format!("approved; {asked}"),
            },
            outcome => {
                let at = self
                    .ended_at
                    .map(|at| format!(" at {at}"))
                    .unwrap_or_default();
                let reason = self
                    .reason
                    .as_ref()
                    .map(|reason| format!(": {reason}"))
                    .unwrap_or_default();
                format!("{}{at}{reason}; {asked}", outcome.as_str())
            }
        }
    }
}

/// A moment as `HH:MM UTC`.
pub fn clock(at: Timestamp) -> String {
    let text = at.to_string();
    format!("{} UTC", text.get(11..16).unwrap_or(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval(approvals: u8) -> Approval {
        // 2023-11-14T22:13:20Z, an hour to go.
        Approval::pending(
            ApprovalAction::Stop,
            "ana via token ci",
            Timestamp(1_700_000_000_000),
            3_600_000,
            approvals,
        )
    }

    #[test]
    fn a_pending_approval_is_due_at_its_expiry() {
        let pending = approval(1);
        assert_eq!(pending.expires_at, Timestamp(1_700_003_600_000));
        assert!(!pending.is_due(Timestamp(1_700_003_599_999)));
        assert!(pending.is_due(Timestamp(1_700_003_600_000)));
        let mut approved = approval(1);
        approved.outcome = ApprovalOutcome::Approved;
        assert!(!approved.is_due(Timestamp(i64::MAX)), "only a pending one");
        assert_eq!(pending.requester(), "ana");
    }

    #[test]
    fn its_text_says_who_may_approve_until_when_and_how_it_ended() {
        let pending = approval(2);
        let text = pending.text();
        assert!(
            text.starts_with(
                "waiting for approval by an admin (or another operator) until 23:13 UTC"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("; stop requested by ana via token ci"),
            "{text}"
        );
        assert!(approval(1).text().contains("by an admin until"));
        let mut approved = approval(1);
        approved.outcome = ApprovalOutcome::Approved;
        approved.approved = Some(Approver {
            by: "carol".into(),
            at: Timestamp(1_700_000_060_000),
        });
        assert_eq!(
            approved.text(),
            "approved by carol at 2023-11-14T22:14:20.000Z; stop requested by ana via token ci"
        );
        let mut expired = approval(1);
        expired.end(
            ApprovalOutcome::Expired,
            Timestamp(1_700_003_600_000),
            "nobody approved it within 1h".into(),
        );
        assert_eq!(
            expired.text(),
            "expired at 2023-11-14T23:13:20.000Z: nobody approved it within 1h; stop requested by ana via token ci"
        );
    }

    #[test]
    fn approvals_and_their_names_round_trip_in_json() {
        let json = serde_json::to_value(approval(1)).expect("json");
        assert_eq!(json["action"], "stop");
        assert_eq!(json["outcome"], "pending");
        assert!(json.get("approved").is_none(), "{json}");
        let back: Approval = serde_json::from_value(json).expect("read back");
        assert_eq!(back, approval(1));
        for action in ApprovalAction::ALL {
            let json = serde_json::to_string(&action).expect("json");
            assert_eq!(json, format!("\"{}\"", action.as_str()));
            assert_eq!(action.as_str().parse::<ApprovalAction>(), Ok(action));
        }
        for outcome in ApprovalOutcome::ALL {
            let json = serde_json::to_string(&outcome).expect("json");
            assert_eq!(json, format!("\"{}\"", outcome.as_str()));
            assert_eq!(outcome.as_str().parse::<ApprovalOutcome>(), Ok(outcome));
        }
        assert!("later".parse::<ApprovalOutcome>().is_err());
    }
}
