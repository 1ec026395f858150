//! An app's DORA figures as messages (the CLI's `wire/dora.rs` reads them
//! back); levels and failure kinds travel as their JSON names.

use berth_proto::v1 as pb;
use berth_shared::record::{
    ChangeFailure, ChangeFailureRate, DeploymentFrequency, DoraLevel, DoraReport, FailureKind,
    LeadTime, OpenFailure, TimeToRestore,
};

pub fn dora_reply(record: DoraReport) -> pb::DoraReply {
    let DoraReport {
        app,
        environment,
        from,
        to,
        fix_window_ms,
        deployment_frequency,
        lead_time,
        change_failure_rate,
        time_to_restore,
    } = record;
    pb::DoraReply {
        report: Some(pb::DoraReport {
            app,
            environment,
            from_ms: from.0,
            to_ms: to.0,
            fix_window_ms,
            deployment_frequency: Some(frequency(deployment_frequency)),
            lead_time: Some(lead(lead_time)),
            change_failure_rate: Some(failure_rate(change_failure_rate)),
            time_to_restore: Some(restore(time_to_restore)),
        }),
    }
}

fn level(level: Option<DoraLevel>) -> String {
    level.map_or("", DoraLevel::as_str).to_string()
}

fn frequency(record: DeploymentFrequency) -> pb::DoraFrequency {
    let DeploymentFrequency {
        count,
        per_day,
        per_week,
        level: grade,
    } = record;
    pb::DoraFrequency {
        count,
        per_day,
        per_week,
        level: level(grade),
    }
}

fn lead(record: LeadTime) -> pb::DoraLeadTime {
    let LeadTime {
        deployed,
        with_commit_time,
        median_ms,
        p90_ms,
        level: grade,
    } = record;
    pb::DoraLeadTime {
        deployed,
        with_commit_time,
        median_ms,
        p90_ms,
        level: level(grade),
    }
}

fn failure_rate(record: ChangeFailureRate) -> pb::DoraFailureRate {
    let ChangeFailureRate {
        changes,
        failed,
        rate,
        level: grade,
        failures,
    } = record;
    pb::DoraFailureRate {
        changes,
        failed,
        rate,
        level: level(grade),
        failures: failures.into_iter().map(failure).collect(),
    }
}

fn failure(record: ChangeFailure) -> pb::DoraFailure {
    let ChangeFailure {
        deployment_id,
        version,
        kind,
        at,
        restored_by,
        restored_at,
    } = record;
    pb::DoraFailure {
        deployment_id: deployment_id.to_string(),
        version,
        kind: match kind {
            FailureKind::Failed => "failed",
            FailureKind::RolledBack => "rolled_back",
            FailureKind::Fixed => "fixed",
        }
        .into(),
        at_ms: at.0,
        restored_by: restored_by.map(|id| id.to_string()),
        restored_at_ms: restored_at.map(|at| at.0),
    }
}

fn restore(record: TimeToRestore) -> pb::DoraRestore {
    let TimeToRestore {
        restored,
        median_ms,
        p90_ms,
        open,
        level: grade,
    } = record;
    pb::DoraRestore {
        restored,
        median_ms,
        p90_ms,
        open: open
            .into_iter()
            .map(
                |OpenFailure {
                     deployment_id,
                     since,
                 }| pb::DoraOpenFailure {
                    deployment_id: deployment_id.to_string(),
                    since_ms: since.0,
                },
            )
            .collect(),
        level: level(grade),
    }
}
