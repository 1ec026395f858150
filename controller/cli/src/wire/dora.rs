//! An app's DORA figures from their message.

use berth_proto::v1 as pb;
use berth_shared::record::{
    ChangeFailure, ChangeFailureRate, DeploymentFrequency, DoraLevel, DoraReport, FailureKind,
    LeadTime, OpenFailure, TimeToRestore,
};

use super::{all, parse, parse_opt, required, ts, ts_opt, unreadable};
use crate::Failure;

pub fn dora(reply: pb::DoraReply) -> Result<DoraReport, Failure> {
    let pb::DoraReport {
        app,
        environment,
        from_ms,
        to_ms,
        fix_window_ms,
        deployment_frequency,
        lead_time,
        change_failure_rate,
        time_to_restore,
    } = required(reply.report, "report")?;
    let frequency = required(deployment_frequency, "deployment frequency")?;
    let lead = required(lead_time, "lead time")?;
    let rate = required(change_failure_rate, "change failure rate")?;
    let restore = required(time_to_restore, "time to restore")?;
    Ok(DoraReport {
        app,
        environment,
        from: ts(from_ms),
        to: ts(to_ms),
        fix_window_ms,
        deployment_frequency: DeploymentFrequency {
            count: frequency.count,
            per_day: frequency.per_day,
            per_week: frequency.per_week,
            level: level(&frequency.level)?,
        },
        lead_time: LeadTime {
            deployed: lead.deployed,
            with_commit_time: lead.with_commit_time,
            median_ms: lead.median_ms,
            p90_ms: lead.p90_ms,
            level: level(&lead.level)?,
        },
        change_failure_rate: ChangeFailureRate {
            changes: rate.changes,
            failed: rate.failed,
            rate: rate.rate,
            level: level(&rate.level)?,
            failures: all(rate.failures, failure)?,
        },
        time_to_restore: TimeToRestore {
            restored: restore.restored,
            median_ms: restore.median_ms,
            p90_ms: restore.p90_ms,
            open: all(restore.open, |open| {
                Ok(OpenFailure {
                    deployment_id: parse(&open.deployment_id, "a deployment id")?,
                    since: ts(open.since_ms),
                })
            })?,
            level: level(&restore.level)?,
        },
    })
}

fn level(text: &str) -> Result<Option<DoraLevel>, Failure> {
    Ok(Some(match text {
        "" => return Ok(None),
        "elite" => DoraLevel::Elite,
        "high" => DoraLevel::High,
        "medium" => DoraLevel::Medium,
        "low" => DoraLevel::Low,
        other => return Err(unreadable(format!("a DORA level `{other}`"))),
    }))
}

fn failure(message: pb::DoraFailure) -> Result<ChangeFailure, Failure> {
    let pb::DoraFailure {
        deployment_id,
        version,
        kind,
        at_ms,
        restored_by,
        restored_at_ms,
    } = message;
    Ok(ChangeFailure {
        deployment_id: parse(&deployment_id, "a deployment id")?,
        version,
        kind: match kind.as_str() {
            "failed" => FailureKind::Failed,
            "rolled_back" => FailureKind::RolledBack,
            "fixed" => FailureKind::Fixed,
            other => return Err(unreadable(format!("a failure kind `{other}`"))),
        },
        at: ts(at_ms),
        restored_by: parse_opt(restored_by, "a deployment id")?,
        restored_at: ts_opt(restored_at_ms),
    })
}
