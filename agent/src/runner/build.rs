//! The build stage (`[build]`): the bundle is fetched into its own build
//! directory, then either built into an image with the Docker Engine API
//! (tagged `berth/APP:VERSION`, exported with `docker save`) or run through
//! the build commands to make one artifact file; the result is uploaded to
//! the controller's blob store under the build task, and its digest goes
//! back in the stage's details.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_proto::v1::{BuildSpec, TaskSpec};
use tokio_util::sync::CancellationToken;

use super::{Emitter, Ending, Failure};
use crate::Agent;
use crate::stage::shell::{self, LineSink, Outcome, Stream};

/// Output lines kept for the failure message.
const LAST_LINES: usize = 20;

/// Passes lines on to the stage's log and keeps the last few.
struct Tail<'a> {
    inner: &'a Emitter<'a>,
    last: Mutex<VecDeque<String>>,
}

impl<'a> Tail<'a> {
    fn new(inner: &'a Emitter<'a>) -> Tail<'a> {
        Tail {
            inner,
            last: Mutex::new(VecDeque::new()),
        }
    }

    fn text(&self) -> String {
        let last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        last.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    fn failure(&self, message: String) -> Failure {
        let last = self.text();
        let mut failure = if last.is_empty() {
            Failure::failed(message)
        } else {
            Failure::failed(format!("{message}; last lines:\n{last}"))
        };
        failure.details.insert("last_lines".into(), last);
        failure
    }
}

impl LineSink for Tail<'_> {
    fn line(&self, stream: Stream, line: String) {
        {
            let mut last = self
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.len() == LAST_LINES {
                last.pop_front();
            }
            last.push_back(line.clone());
        }
        self.inner.line(stream, line);
    }

    fn started(&self, pid: u32) {
        self.inner.started(pid);
    }

    fn ended(&self) {
        self.inner.ended();
    }
}

/// Runs the build task; the stage details name what was uploaded.
pub(super) async fn run(
    agent: &Arc<Agent>,
    spec: &TaskSpec,
    emitter: &Emitter<'_>,
    cancel: &CancellationToken,
) -> Result<BTreeMap<String, String>, Failure> {
    let build = spec
        .build
        .as_ref()
        .ok_or_else(|| Failure::failed("the build task came without a build section"))?;
    let host = &agent.identity.name;
    let dir = super::prepare_in(agent, spec, emitter, "build")
        .await
        .map_err(|err| Failure::failed(format!("{err:#}")))?;
    let tail = Tail::new(emitter);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(spec.timeout_ms.max(1));
    let (path, mut details) = if build.dockerfile.is_empty() {
        artifact(agent, spec, build, &dir, &tail, deadline, cancel).await?
    } else {
        image(agent, build, &dir, &tail, deadline).await?
    };
    emitter.system(format!(
        "uploading the build result to the controller ({})",
        path.display()
    ));
    let (digest, size) = crate::fetch::upload(&agent.channel, &path, &spec.task_id, 0)
        .await
        .map_err(|err| {
            Failure::failed(format!(
                "host {host} could not upload the build result: {err:#}"
            ))
        })?;
    emitter.system(format!("uploaded {digest} ({size} bytes)"));
    if !build.dockerfile.is_empty() {
        let _ = tokio::fs::remove_file(&path).await;
    }
    details.insert("result_digest".into(), digest);
    details.insert("result_size".into(), size.to_string());
    Ok(details)
}

/// `run` + `artifact`: the commands, then the file they made.
async fn artifact(
    agent: &Arc<Agent>,
    spec: &TaskSpec,
    build: &BuildSpec,
    dir: &Path,
    tail: &Tail<'_>,
    deadline: tokio::time::Instant,
    cancel: &CancellationToken,
) -> Result<(PathBuf, BTreeMap<String, String>), Failure> {
    let env = super::environment(agent, spec, dir);
    for command in &build.run {
        tail.inner.system(format!("$ {command}"));
        let outcome = shell::run(command, dir, &env, deadline, cancel, tail).await;
        match outcome {
            Ok(Outcome::Exited(0)) => {}
            Ok(Outcome::Exited(code)) => {
                return Err(Failure {
                    exit_code: Some(code),
                    ..tail.failure(format!("build command `{command}` exited with code {code}"))
                });
            }
            Ok(Outcome::TimedOut) => {
                return Err(Failure {
                    outcome: Ending::TimedOut,
                    ..tail.failure(format!(
                        "the build timed out while running `{command}`; its processes were killed"
                    ))
                });
            }
            Ok(Outcome::Canceled) => {
                return Err(Failure::canceled(format!(
                    "canceled while running `{command}`"
                )));
            }
            Ok(Outcome::Signaled(signal)) => {
                return Err(tail.failure(format!(
                    "build command `{command}` was killed by signal {signal}"
                )));
            }
            Err(err) => {
                return Err(Failure::failed(format!(
                    "could not start `{command}`: {err}"
                )));
            }
        }
    }
    let path = dir.join(&build.artifact);
    let meta = tokio::fs::symlink_metadata(&path).await.map_err(|err| {
        tail.failure(format!(
            "the build commands did not make the artifact {} ({err}); check [build] artifact",
            build.artifact
        ))
    })?;
    if !meta.is_file() {
        return Err(Failure::failed(format!(
            "the artifact {} is not a regular file; [build] artifact must name one file",
            build.artifact
        )));
    }
    let name = Path::new(&build.artifact)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "artifact".into());
    let details = BTreeMap::from([
        ("artifact".to_string(), name),
        ("artifact_path".to_string(), build.artifact.clone()),
    ]);
    Ok((path, details))
}

/// `dockerfile`: build the image, then save it to a file.
async fn image(
    agent: &Arc<Agent>,
    build: &BuildSpec,
    dir: &Path,
    tail: &Tail<'_>,
    deadline: tokio::time::Instant,
) -> Result<(PathBuf, BTreeMap<String, String>), Failure> {
    let host = &agent.identity.name;
    let docker = crate::stage::docker::connect(&agent.docker_host)
        .await
        .map_err(|err| Failure::failed(format!("host {host} cannot reach Docker at {err}; a Dockerfile build needs Docker on the build agent")))?;
    tail.inner.system(format!(
        "building image {} from {}{}",
        build.image_tag,
        build.dockerfile,
        if build.target.is_empty() {
            String::new()
        } else {
            format!(" (target {})", build.target)
        }
    ));
    let built = tokio::time::timeout_at(
        deadline,
        crate::stage::docker::build_image(&docker, dir, build, tail),
    )
    .await;
    let image_id = match built {
        Ok(Ok(id)) => id,
        Ok(Err(message)) => return Err(tail.failure(format!("docker build failed: {message}"))),
        Err(_) => {
            return Err(Failure {
                outcome: Ending::TimedOut,
                ..tail.failure("the image build timed out".into())
            });
        }
    };
    let archive = agent
        .files
        .bundles()
        .join(format!("build-{}.tar", ulid::Ulid::new()));
    tail.inner
        .system(format!("saving image {} for the hosts", build.image_tag));
    crate::stage::docker::save_image(&docker, &build.image_tag, &archive)
        .await
        .map_err(|err| {
            Failure::failed(format!(
                "host {host} could not save image {}: {err}",
                build.image_tag
            ))
        })?;
    let details = BTreeMap::from([
        ("image".to_string(), build.image_tag.clone()),
        ("image_id".to_string(), image_id),
    ]);
    Ok((archive, details))
}
