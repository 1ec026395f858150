//! A deployment message and its parts (tasks, stages, history, build and
//! restore) as the berth-shared records.

use berth_proto::v1 as pb;
use berth_shared::manifest::Manifest;
use berth_shared::record::{
    Approval, Approver, BuildOutput, Deployment, RestoreSource, StageResult, Task, Transition,
    Variable,
};

use super::{
    all, deployment_status, parse, parse_opt, task_kind, task_status, ts, ts_opt, unreadable,
};
use crate::Failure;

/// A deployment message as its record.
pub fn deployment_message(message: pb::Deployment) -> Result<Deployment, Failure> {
    let pb::Deployment {
        id,
        app,
        environment,
        version,
        status,
        created_at_ms,
        updated_at_ms,
        triggered_by,
        error_step,
        error_message,
        bundle_digest,
        bundle_size,
        manifest_json,
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
        message: note,
        source_ref,
        commit_sha,
        commit_time_ms,
        commit_author,
        build_url,
        trigger,
        started_at_ms,
        finished_at_ms,
        duration_ms,
        extra_metadata,
        variables,
        approval,
    } = message;
    Ok(Deployment {
        id: parse(&id, "a deployment id")?,
        app,
        environment,
        version,
        status: deployment_status(status)?,
        created_at: ts(created_at_ms),
        updated_at: ts(updated_at_ms),
        triggered_by,
        error_step,
        error_message,
        bundle_digest,
        bundle_size,
        manifest: manifest(&manifest_json)?,
        manifest_toml,
        idempotency_key,
        image_archive_digest,
        image_archive_size,
        tasks: all(tasks, task)?,
        transitions: all(transitions, transition)?,
        parent_id: parse_opt(parent_id, "a deployment id")?,
        retry_count,
        origin,
        queued,
        deadline_ms,
        build_key,
        built: built.map(build_output).transpose()?,
        restore_to: restore_to.map(restore_source).transpose()?,
        message: note,
        source_ref,
        commit_sha,
        commit_time: ts_opt(commit_time_ms),
        commit_author,
        build_url,
        trigger,
        started_at: ts_opt(started_at_ms),
        finished_at: ts_opt(finished_at_ms),
        duration_ms,
        extra_metadata: extra_metadata.into_iter().collect(),
        variables: all(variables, variable)?,
        approval: approval.map(self::approval).transpose()?,
    })
}

/// An approval message as its record.
fn approval(message: pb::Approval) -> Result<Approval, Failure> {
    let pb::Approval {
        action,
        requested_by,
        requested_at_ms,
        expires_at_ms,
        approvals,
        outcome,
        approved,
        ended_at_ms,
        reason,
    } = message;
    Ok(Approval {
        action: parse(&action, "an approval's action")?,
        requested_by,
        requested_at: ts(requested_at_ms),
        expires_at: ts(expires_at_ms),
        approvals: u8::try_from(approvals)
            .map_err(|_| unreadable(format!("an approval's count ({approvals})")))?,
        outcome: parse(&outcome, "an approval's outcome")?,
        approved: approved.map(|pb::Approver { by, at_ms }| Approver { by, at: ts(at_ms) }),
        ended_at: ts_opt(ended_at_ms),
        reason,
    })
}

fn variable(message: pb::Variable) -> Result<Variable, Failure> {
    let pb::Variable {
        name,
        value,
        source,
        secret_version,
        secret_scope,
    } = message;
    let secret_scope = if secret_scope.is_empty() {
        None
    } else {
        Some(parse(&secret_scope, "a secret's scope")?)
    };
    Ok(Variable {
        name,
        value,
        source: parse(&source, "a variable's source")?,
        secret_version,
        secret_scope,
    })
}

/// The manifest, the one document inside the records (its serde JSON).
fn manifest(json: &str) -> Result<Manifest, Failure> {
    serde_json::from_str(json).map_err(|err| unreadable(format!("a manifest ({err})")))
}

fn restore_source(message: pb::RestoreSource) -> Result<RestoreSource, Failure> {
    let pb::RestoreSource {
        deployment_id,
        version,
        manifest_json,
        bundle_digest,
        bundle_size,
        image_archive_digest,
        image_archive_size,
        built,
        variables,
    } = message;
    Ok(RestoreSource {
        deployment_id: parse(&deployment_id, "a deployment id")?,
        version,
        manifest: manifest(&manifest_json)?,
        bundle_digest,
        bundle_size,
        image_archive_digest,
        image_archive_size,
        built: built.map(build_output).transpose()?,
        variables: all(variables, variable)?,
    })
}

fn build_output(message: pb::BuildOutput) -> Result<BuildOutput, Failure> {
    let pb::BuildOutput {
        digest,
        size,
        image,
        image_id,
        artifact,
        built_by,
        reused,
    } = message;
    Ok(BuildOutput {
        digest,
        size,
        image,
        image_id,
        artifact,
        built_by: parse(&built_by, "a deployment id")?,
        reused,
    })
}

fn task(message: pb::Task) -> Result<Task, Failure> {
    let pb::Task {
        id,
        kind,
        host,
        agent_id,
        status,
        generation,
        stages,
        error_step,
        error_message,
        created_at_ms,
        assigned_at_ms,
        finished_at_ms,
        acked_seq,
        stale_events,
        with_resources,
        purge_volumes,
    } = message;
    Ok(Task {
        id: parse(&id, "a task id")?,
        kind: task_kind(kind)?,
        host,
        agent_id: parse(&agent_id, "an agent id")?,
        status: task_status(status)?,
        generation,
        stages: stages.into_iter().map(stage_result).collect(),
        error_step,
        error_message,
        created_at: ts(created_at_ms),
        assigned_at: ts_opt(assigned_at_ms),
        finished_at: ts_opt(finished_at_ms),
        acked_seq,
        stale_events,
        with_resources,
        purge_volumes,
    })
}

fn stage_result(message: pb::StageResult) -> StageResult {
    let pb::StageResult {
        stage,
        outcome,
        started_at_ms,
        finished_at_ms,
        duration_ms,
        exit_code,
        error,
        details,
    } = message;
    StageResult {
        stage,
        outcome,
        started_at: ts(started_at_ms),
        finished_at: ts_opt(finished_at_ms),
        duration_ms,
        exit_code,
        error,
        details: details.into_iter().collect(),
    }
}

fn transition(message: pb::Transition) -> Result<Transition, Failure> {
    let pb::Transition {
        at_ms,
        subject,
        from,
        to,
        reason,
        seq,
        task,
    } = message;
    Ok(Transition {
        at: ts(at_ms),
        subject,
        from,
        to,
        reason,
        seq,
        task: parse_opt(task, "a task id")?,
    })
}
