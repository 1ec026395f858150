//! `[build]` on the controller side: the key of a build's inputs, reuse of
//! an earlier build's result, and the choice of build agent.

use super::{Code, Error, Result};
use berth_shared::manifest::Build;
use berth_shared::record::{BuildOutput, Deployment, StageResult, Task, TaskKind, Timestamp};
use berth_shared::state::TaskStatus;
use sha2::{Digest, Sha256};

use crate::server::Context;
use crate::store::AgentRecord;

/// The hash of what a build depends on: the bundle and the build section
/// (Dockerfile or commands, target, args, artifact path).
pub fn build_key(bundle_digest: &str, build: &Build) -> String {
    let mut hasher = Sha256::new();
    hasher.update(bundle_digest.as_bytes());
    hasher.update([0]);
    hasher.update(serde_json::to_vec(&build.kind).unwrap_or_default());
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// An earlier build with the same inputs whose result is still in the
/// blob store.
pub fn reusable(context: &Context, key: &str) -> Result<Option<BuildOutput>> {
    let Some(mut built) = context.store.get_build(key)? else {
        return Ok(None);
    };
    if context.store.blob_size(&built.digest)? != Some(built.size)
        || !context.blobs.path(&built.digest)?.exists()
    {
        return Ok(None);
    }
    context.store.touch_blob(&built.digest)?;
    built.reused = true;
    Ok(Some(built))
}

/// The build task of a deployment that reuses an earlier build: done at
/// once, its stage saying where the result came from.
pub fn reused_task(built: &BuildOutput, now: Timestamp) -> Task {
    let mut task = Task::queued(
        TaskKind::Build,
        "(reused)",
        berth_shared::id::AgentId(ulid::Ulid::nil()),
        now,
    );
    task.status = TaskStatus::Done;
    task.finished_at = Some(now);
    let mut details = std::collections::BTreeMap::from([
        ("reused_from".to_string(), built.built_by.to_string()),
        ("result_digest".to_string(), built.digest.clone()),
    ]);
    details.extend(
        built
            .image
            .clone()
            .map(|image| ("image".to_string(), image)),
    );
    details.extend(
        built
            .artifact
            .clone()
            .map(|name| ("artifact".to_string(), name)),
    );
    task.stages.push(StageResult {
        stage: "build".into(),
        outcome: "succeeded".into(),
        started_at: now,
        finished_at: Some(now),
        duration_ms: Some(0),
        exit_code: None,
        error: None,
        details,
    });
    task
}

/// Points a deployment that reuses a build at the build's image archive.
pub fn adopt_reused(deployment: &mut Deployment) {
    let Some(built) = deployment.built.clone() else {
        return;
    };
    if built.image.is_some() {
        deployment.image_archive_digest = Some(built.digest.clone());
        deployment.image_archive_size = built.size;
    }
    let reason = format!(
        "build reused from deployment {} (same bundle and [build] section): {}",
        built.built_by,
        built
            .image
            .clone()
            .or(built.artifact.clone())
            .unwrap_or_default()
    );
    crate::progress::note(deployment, "deployment", None, "pending", Some(reason));
}

/// The build agent for a new build: among the online agents whose labels
/// match `[build] labels`, the one with the most free slots.
pub fn pick_builder(context: &Context, build: &Build) -> Result<AgentRecord> {
    let selector = berth_shared::labels::format_labels(&build.labels);
    let candidates = super::target::select_agents(context, &selector)?;
    if candidates.is_empty() {
        return Err(Error::new(
            Code::BuildNoAgent,
            format!(
                "no agent matches [build] labels {selector}; give a build machine those labels (berth agents label NAME {selector}) or change [build] labels"
            ),
        ));
    }
    candidates
        .into_iter()
        .filter(|agent| context.is_online(agent.id))
        .max_by_key(|agent| context.registry.free_slots(agent.id))
        .ok_or_else(|| {
            Error::new(Code::BuildNoAgent, format!(
                "every build agent matching [build] labels {selector} is offline; start one (see berth agents ls)"
            ))
        })
}
