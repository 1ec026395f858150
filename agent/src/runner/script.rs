//! The script stage: the bundle fetched and unpacked into the work
//! directory (and a build's artifact placed there), then the commands run
//! with the `BERTH_*` environment.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_proto::v1::TaskSpec;
use tokio_util::sync::CancellationToken;

use crate::Agent;
use crate::stage::sandbox;
use crate::stage::shell::{self, Outcome};

use super::{Emitter, Ending, Failure};

/// The script stage: fetch and unpack the bundle, run the commands.
pub(super) async fn run_script(
    agent: &Arc<Agent>,
    spec: &TaskSpec,
    emitter: &Emitter<'_>,
    cancel: &CancellationToken,
) -> Result<(), Failure> {
    let dir = prepare(agent, spec, emitter)
        .await
        .map_err(|err| Failure::failed(format!("{err:#}")))?;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(spec.timeout_ms.max(1));
    let env = environment(agent, spec, &dir);
    for command in &spec.commands {
        emitter.system(format!("$ {command}"));
        let watch = sandbox::Watch::new(emitter);
        let outcome = shell::run(command, &dir, &env, deadline, cancel, &watch).await;
        let failure = match outcome {
            Ok(Outcome::Exited(0)) => continue,
            Ok(Outcome::Exited(code)) => Failure {
                exit_code: Some(code),
                ..Failure::failed(
                    watch.explain(format!("command `{command}` exited with code {code}")),
                )
            },
            Ok(Outcome::Signaled(signal)) => {
                Failure::failed(format!("command `{command}` was killed by signal {signal}"))
            }
            Ok(Outcome::TimedOut) => {
                let limit =
                    berth_shared::time::format_duration(Duration::from_millis(spec.timeout_ms));
                Failure {
                    outcome: Ending::TimedOut,
                    ..Failure::failed(format!(
                        "{} stage timed out after {limit} while running `{command}`; its processes were killed",
                        spec.stage
                    ))
                }
            }
            Ok(Outcome::Canceled) => {
                Failure::canceled(format!("canceled while running `{command}`"))
            }
            Err(err) => Failure::failed(format!("could not start `{command}`: {err}")),
        };
        return Err(failure);
    }
    Ok(())
}

pub(super) fn environment(
    agent: &Agent,
    spec: &TaskSpec,
    dir: &std::path::Path,
) -> BTreeMap<String, String> {
    // The deployment's variables and secrets (all of them, also those its
    // container gets as files) first; berth's own names always win.
    let secrets = spec
        .secrets
        .iter()
        .map(|secret| (&secret.name, &secret.value));
    let mut env: BTreeMap<String, String> = spec
        .env
        .iter()
        .chain(secrets)
        .filter(|(name, _)| !name.starts_with("BERTH_"))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    env.extend([
        ("BERTH_APP".into(), spec.app.clone()),
        ("BERTH_ENVIRONMENT".into(), spec.environment.clone()),
        ("BERTH_VERSION".into(), spec.version.clone()),
        ("BERTH_DEPLOYMENT_ID".into(), spec.deployment_id.clone()),
        ("BERTH_TASK_ID".into(), spec.task_id.clone()),
        ("BERTH_HOST".into(), agent.identity.name.clone()),
        ("BERTH_STAGE".into(), spec.stage.clone()),
        (
            "BERTH_ARTIFACT".into(),
            spec.artifact
                .as_ref()
                .and_then(|artifact| std::path::Path::new(&artifact.name).file_name())
                .map(|name| dir.join(name).display().to_string())
                .unwrap_or_default(),
        ),
        ("BERTH_WORK_DIR".into(), dir.display().to_string()),
    ]);
    env
}

/// Makes sure the deployment's bundle is unpacked in its work directory.
pub(super) async fn prepare(
    agent: &Arc<Agent>,
    spec: &TaskSpec,
    emitter: &Emitter<'_>,
) -> anyhow::Result<PathBuf> {
    prepare_in(agent, spec, emitter, "").await
}

/// The bundle unpacked in `work/<deployment>` (with `purpose`, e.g.
/// `build`, as a `.purpose` suffix, so a build never shares its directory
/// with a deploy on the same host), with the build's artifact in it when
/// the deployment has one.
pub(super) async fn prepare_in(
    agent: &Arc<Agent>,
    spec: &TaskSpec,
    emitter: &Emitter<'_>,
    purpose: &str,
) -> anyhow::Result<PathBuf> {
    let deployment: berth_shared::id::DeploymentId =
        spec.deployment_id.parse().map_err(anyhow::Error::msg)?;
    let name = if purpose.is_empty() {
        deployment.to_string()
    } else {
        format!("{deployment}.{purpose}")
    };
    let dir = agent.files.work().join(name);
    if !dir.exists() {
        emitter.system(format!(
            "fetching bundle {} ({} bytes)",
            spec.bundle_digest, spec.bundle_size
        ));
        let archive = fetch_blob(agent, &spec.bundle_digest, spec.bundle_size, emitter).await?;
        std::fs::create_dir_all(agent.files.work())?;
        let target = dir.clone();
        tokio::task::spawn_blocking(move || crate::bundle::unpack(&archive, &target)).await??;
        emitter.system(format!("bundle unpacked into {}", dir.display()));
    }
    // Also after a restart between the unpack and the artifact.
    if let Some(artifact) = spec.artifact.as_ref().filter(|_| purpose.is_empty()) {
        place_artifact(agent, artifact, &dir, emitter).await?;
    }
    Ok(dir)
}

/// A blob from the controller's store in `bundles/` (resumed, verified,
/// reused when already here).
pub(super) async fn fetch_blob(
    agent: &Arc<Agent>,
    digest: &str,
    size: u64,
    emitter: &Emitter<'_>,
) -> anyhow::Result<PathBuf> {
    let mut channel = agent.channel.subscribe();
    crate::fetch::blob(&agent.files.bundles(), digest, size, &mut channel, |line| {
        emitter.system(line)
    })
    .await
}

/// Fetches the build's artifact (verified, resumable, skipped when this
/// host already holds it) and puts it in the work dir.
pub(super) async fn place_artifact(
    agent: &Arc<Agent>,
    artifact: &berth_proto::v1::ArtifactRef,
    dir: &std::path::Path,
    emitter: &Emitter<'_>,
) -> anyhow::Result<()> {
    let name = std::path::Path::new(&artifact.name)
        .file_name()
        .ok_or_else(|| {
            anyhow::anyhow!("the artifact name `{}` is not a file name", artifact.name)
        })?;
    let target = dir.join(name);
    if tokio::fs::metadata(&target)
        .await
        .is_ok_and(|meta| meta.len() == artifact.size)
    {
        return Ok(());
    }
    emitter.system(format!(
        "fetching the build artifact {} ({} bytes)",
        artifact.digest, artifact.size
    ));
    let fetched = fetch_blob(agent, &artifact.digest, artifact.size, emitter).await?;
    tokio::fs::copy(&fetched, &target).await?;
    emitter.system(format!("artifact placed at {}", target.display()));
    Ok(())
}
