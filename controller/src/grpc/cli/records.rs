//! The `Cli` service's records as messages: each berth-shared record (and
//! the controller's own, re-exported from there) becomes the typed message
//! of `berth.proto` that mirrors it. The CLI's `wire` module turns them
//! back into the records it prints.
//!
//! Every conversion destructures its record completely, so a field added
//! to a record does not compile until it is carried here (and in the
//! message). This file holds deployments and their parts, and the enums;
//! `records/fleet.rs` the fleet's records, `records/admin.rs` the
//! administration's, `records/approvals.rs` a deployment's approval,
//! `records/apps.rs` the app catalogue's,
//! `records/environments.rs` environments' and `records/secrets.rs` the
//! secret store's.

use berth_proto::v1 as pb;
use berth_shared::manifest::Manifest;
use berth_shared::record::{
    BuildOutput, Deployment, RestoreSource, StageResult, Task, TaskKind, Timestamp, Transition,
    Variable,
};
use berth_shared::state::{DeploymentStatus, TaskStatus};
use tonic::Status;

use crate::ops::{Code, Error};

mod admin;
mod approvals;
pub mod apps;
#[cfg(test)]
mod apps_tests;
pub mod dora;
pub mod environments;
mod fleet;
pub mod hooks;
pub mod people;
pub mod resources;
pub mod secrets;
#[cfg(test)]
mod tests;
pub mod webhooks;

pub use admin::{audit, logged_out, purged, registry, registry_list};
pub use fleet::{
    agent, agent_list, app_statuses, controller_list, fleet_job, host_inspect, job, job_list,
    token, token_list,
};

/// A deployment as a `DeploymentReply`.
pub fn deployment_reply(record: Deployment) -> Result<pb::DeploymentReply, Status> {
    Ok(pb::DeploymentReply {
        deployment: Some(deployment(record)?),
    })
}

/// Deployments as messages, in order.
pub fn deployments(records: Vec<Deployment>) -> Result<Vec<pb::Deployment>, Status> {
    records.into_iter().map(deployment).collect()
}

pub fn deployment(record: Deployment) -> Result<pb::Deployment, Status> {
    let Deployment {
        id,
        app,
        environment,
        version,
        status,
        created_at,
        updated_at,
        triggered_by,
        error_step,
        error_message,
        bundle_digest,
        bundle_size,
        manifest,
        manifest_toml,
        idempotency_key,
        image_archive_digest,
        image_archive_size,
        tasks,
        transitions,
        parent_id,
        retry_count,
        origin,
        queued,
        deadline_ms,
        build_key,
        built,
        restore_to,
        message,
        source_ref,
        commit_sha,
        commit_time,
        commit_author,
        build_url,
        trigger,
        started_at,
        finished_at,
        duration_ms,
        extra_metadata,
        variables,
        approval,
    } = record;
    Ok(pb::Deployment {
        id: id.to_string(),
        app,
        environment,
        version,
        status: deployment_status(status).into(),
        created_at_ms: created_at.0,
        updated_at_ms: updated_at.0,
        triggered_by,
        error_step,
        error_message,
        bundle_digest,
        bundle_size,
        manifest_json: manifest_json(&manifest)?,
        manifest_toml,
        idempotency_key,
        image_archive_digest,
        image_archive_size,
        tasks: tasks.into_iter().map(task).collect(),
        transitions: transitions.into_iter().map(transition).collect(),
        parent_id: parent_id.map(|id| id.to_string()),
        retry_count,
        origin,
        queued,
        deadline_ms,
        build_key,
        built: built.map(build_output),
        restore_to: restore_to.map(restore_source).transpose()?,
        message,
        source_ref,
        commit_sha,
        commit_time_ms: commit_time.map(|at| at.0),
        commit_author,
        build_url,
        trigger,
        started_at_ms: started_at.map(|at| at.0),
        finished_at_ms: finished_at.map(|at| at.0),
        duration_ms,
        extra_metadata: extra_metadata.into_iter().collect(),
        variables: variables.into_iter().map(variable).collect(),
        approval: approval.map(approvals::approval),
    })
}

fn variable(record: Variable) -> pb::Variable {
    let Variable {
        name,
        value,
        source,
        secret_version,
        secret_scope,
    } = record;
    pb::Variable {
        name,
        value,
        source: source.as_str().to_string(),
        secret_version,
        secret_scope: secret_scope
            .map(|scope| scope.to_string())
            .unwrap_or_default(),
    }
}

/// The one document inside the records: the manifest's serde JSON.
fn manifest_json(manifest: &Manifest) -> Result<String, Status> {
    serde_json::to_string(manifest)
        .map_err(|err| Error::new(Code::Internal, format!("encode the manifest: {err}")).into())
}

fn restore_source(record: RestoreSource) -> Result<pb::RestoreSource, Status> {
    let RestoreSource {
        deployment_id,
        version,
        manifest,
        bundle_digest,
        bundle_size,
        image_archive_digest,
        image_archive_size,
        built,
        variables,
    } = record;
    Ok(pb::RestoreSource {
        deployment_id: deployment_id.to_string(),
        version,
        manifest_json: manifest_json(&manifest)?,
        bundle_digest,
        bundle_size,
        image_archive_digest,
        image_archive_size,
        built: built.map(build_output),
        variables: variables.into_iter().map(variable).collect(),
    })
}

fn build_output(record: BuildOutput) -> pb::BuildOutput {
    let BuildOutput {
        digest,
        size,
        image,
        image_id,
        artifact,
        built_by,
        reused,
    } = record;
    pb::BuildOutput {
        digest,
        size,
        image,
        image_id,
        artifact,
        built_by: built_by.to_string(),
        reused,
    }
}

fn task(record: Task) -> pb::Task {
    let Task {
        id,
        kind,
        host,
        agent_id,
        status,
        generation,
        stages,
        error_step,
        error_message,
        created_at,
        assigned_at,
        finished_at,
        acked_seq,
        stale_events,
        with_resources,
        purge_volumes,
    } = record;
    pb::Task {
        id: id.to_string(),
        kind: task_kind(kind).into(),
        host,
        agent_id: agent_id.to_string(),
        status: task_status(status).into(),
        generation,
        stages: stages.into_iter().map(stage_result).collect(),
        error_step,
        error_message,
        created_at_ms: created_at.0,
        assigned_at_ms: ms(assigned_at),
        finished_at_ms: ms(finished_at),
        acked_seq,
        stale_events,
        with_resources,
        purge_volumes,
    }
}

fn stage_result(record: StageResult) -> pb::StageResult {
    let StageResult {
        stage,
        outcome,
        started_at,
        finished_at,
        duration_ms,
        exit_code,
        error,
        details,
    } = record;
    pb::StageResult {
        stage,
        outcome,
        started_at_ms: started_at.0,
        finished_at_ms: ms(finished_at),
        duration_ms,
        exit_code,
        error,
        details: details.into_iter().collect(),
    }
}

fn transition(record: Transition) -> pb::Transition {
    let Transition {
        at,
        subject,
        from,
        to,
        reason,
        seq,
        task,
    } = record;
    pb::Transition {
        at_ms: at.0,
        subject,
        from,
        to,
        reason,
        seq,
        task: task.map(|id| id.to_string()),
    }
}

/// An optional time as optional Unix milliseconds.
fn ms(time: Option<Timestamp>) -> Option<i64> {
    time.map(|time| time.0)
}

pub fn deployment_status(status: DeploymentStatus) -> pb::DeploymentStatus {
    use pb::DeploymentStatus as P;
    match status {
        DeploymentStatus::PendingApproval => P::PendingApproval,
        DeploymentStatus::Pending => P::Pending,
        DeploymentStatus::SetupRunning => P::SetupRunning,
        DeploymentStatus::SetupComplete => P::SetupComplete,
        DeploymentStatus::Building => P::Building,
        DeploymentStatus::Deploying => P::Deploying,
        DeploymentStatus::Deployed => P::Deployed,
        DeploymentStatus::Failed => P::Failed,
        DeploymentStatus::Canceled => P::Canceled,
        DeploymentStatus::TimedOut => P::TimedOut,
        DeploymentStatus::Stopped => P::Stopped,
        DeploymentStatus::Superseded => P::Superseded,
        DeploymentStatus::Deleted => P::Deleted,
    }
}

pub fn task_status(status: TaskStatus) -> pb::TaskStatus {
    use pb::TaskStatus as P;
    match status {
        TaskStatus::Queued => P::Queued,
        TaskStatus::Assigned => P::Assigned,
        TaskStatus::Setup => P::Setup,
        TaskStatus::Build => P::Build,
        TaskStatus::Deploy => P::Deploy,
        TaskStatus::Proxy => P::Proxy,
        TaskStatus::Health => P::Health,
        TaskStatus::Stop => P::Stop,
        TaskStatus::Delete => P::Delete,
        TaskStatus::Done => P::Done,
        TaskStatus::Failed => P::Failed,
        TaskStatus::Canceled => P::Canceled,
        TaskStatus::TimedOut => P::TimedOut,
        TaskStatus::Lost => P::Lost,
    }
}

fn task_kind(kind: TaskKind) -> pb::TaskKind {
    match kind {
        TaskKind::Deploy => pb::TaskKind::Deploy,
        TaskKind::Stop => pb::TaskKind::Stop,
        TaskKind::Delete => pb::TaskKind::Delete,
        TaskKind::Build => pb::TaskKind::Build,
        TaskKind::Restore => pb::TaskKind::Restore,
    }
}
