//! A deployment's approval (protected environments) as its message.

use berth_proto::v1 as pb;
use berth_shared::record::{Approval, Approver};

pub fn approval(record: Approval) -> pb::Approval {
    let Approval {
        action,
        requested_by,
        requested_at,
        expires_at,
        approvals,
        outcome,
        approved,
        ended_at,
        reason,
    } = record;
    pb::Approval {
        action: action.as_str().into(),
        requested_by,
        requested_at_ms: requested_at.0,
        expires_at_ms: expires_at.0,
        approvals: approvals.into(),
        outcome: outcome.as_str().into(),
        approved: approved.map(|Approver { by, at }| pb::Approver { by, at_ms: at.0 }),
        ended_at_ms: ended_at.map(|at| at.0),
        reason,
    }
}
