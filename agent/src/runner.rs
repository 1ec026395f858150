//! Runs assigned tasks: fetch and unpack the bundle into the deployment's
//! work directory, then run the stage's commands, reporting every step and
//! every output line through the outbox. Tasks keep running when the link
//! to the controller is down.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_proto::v1::task_event::Kind;
use berth_proto::v1::{LogLine, StageFinished, StageStarted, TaskFinished, TaskSpec};
use berth_shared::id::TaskId;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::Agent;

mod build;
mod container;
mod image;
mod teardown;
use crate::stage::shell::{self, LineSink, Outcome};

/// Whether an assignment was taken.
pub enum Accepted {
    Started,
    /// Already running here (the controller re-sent it); adopted the new
    /// generation instead of starting a second copy.
    Adopted,
    /// Older than an assignment already accepted (fencing).
    Refused(String),
}

/// Takes an assignment.
pub fn accept(agent: &Arc<Agent>, spec: TaskSpec) -> Accepted {
    let Ok(task_id) = spec.task_id.parse::<TaskId>() else {
        return Accepted::Refused(format!("malformed task id `{}`", spec.task_id));
    };
    if let Some(current) = agent.outbox.generation(task_id) {
        // Already here: adopt a newer generation, never an older one, and
        // never start a second copy.
        if spec.generation < current {
            return Accepted::Refused(format!(
                "generation {} is older than this task's {current}",
                spec.generation
            ));
        }
        if spec.generation > current {
            agent.outbox.set_generation(task_id, spec.generation);
            raise_fence(agent, spec.generation);
        }
        return Accepted::Adopted;
    }
    {
        let fence = agent.fence();
        if spec.generation < fence.max_generation {
            return Accepted::Refused(format!(
                "generation {} is older than {} already accepted",
                spec.generation, fence.max_generation
            ));
        }
    }
    raise_fence(agent, spec.generation);
    if let Err(err) = agent
        .outbox
        .open(task_id, &spec.deployment_id, spec.generation)
    {
        return Accepted::Refused(format!("cannot open the task spool: {err}"));
    }
    let start_now = {
        let running = agent.running();
        running.len() < agent.slots as usize
    };
    if start_now {
        start(agent, task_id, spec);
    } else {
        // Over the slot count: wait here until a running task ends.
        info!(%task_id, "all slots busy; task waits on this host");
        agent.waiting().push_back(spec);
    }
    Accepted::Started
}

fn raise_fence(agent: &Agent, generation: u64) {
    let mut fence = agent.fence();
    if generation > fence.max_generation {
        fence.max_generation = generation;
        if let Err(err) = agent.files.save_fence(&fence) {
            warn!(error = %err, "could not persist the fencing generation");
        }
    }
}

fn start(agent: &Arc<Agent>, task_id: TaskId, spec: TaskSpec) {
    let cancel = agent.shutdown.child_token();
    agent.running().insert(task_id, cancel.clone());
    let span = info_span!("task", deployment_id = %spec.deployment_id, %task_id, agent = %agent.identity.name, stage = %spec.stage);
    let runner = agent.clone();
    agent.tasks.spawn(
        async move {
            info!(generation = spec.generation, "task started");
            run(&runner, task_id, &spec, &cancel).await;
            runner.running().remove(&task_id);
            info!("task finished");
            let next = runner.waiting().pop_front();
            if let Some(next) = next
                && let Ok(next_id) = next.task_id.parse::<TaskId>()
            {
                start(&runner, next_id, next);
            }
        }
        .instrument(span),
    );
}

/// Cancels a task: a running one stops its stage (processes killed, a
/// half-started container removed); one still waiting for a slot here ends
/// `canceled` without starting.
pub fn cancel(agent: &Arc<Agent>, task_id: &str) {
    let Ok(task_id) = task_id.parse::<TaskId>() else {
        return;
    };
    if let Some(token) = agent.running().get(&task_id) {
        token.cancel();
        return;
    }
    let waiting = {
        let mut waiting = agent.waiting();
        let position = waiting
            .iter()
            .position(|spec| spec.task_id == task_id.to_string());
        position.and_then(|position| waiting.remove(position))
    };
    if let Some(spec) = waiting {
        info!(%task_id, "task canceled before it started");
        let emitter = Emitter {
            agent,
            task_id,
            stage: std::sync::Mutex::new((spec.stage.clone(), Instant::now())),
        };
        emitter.fail(Failure::canceled(
            "canceled while waiting for a free slot on this host; nothing ran",
        ));
    }
}

/// Why a stage did not succeed: the outcome (`failed`, `timed_out`,
/// `canceled`), the message, and the exit code when there was one.
struct Failure {
    outcome: &'static str,
    error: String,
    exit_code: Option<i32>,
    /// Evidence kept with the failed stage (probe output, container logs).
    details: BTreeMap<String, String>,
}

impl Failure {
    fn canceled(error: impl Into<String>) -> Failure {
        Failure {
            outcome: "canceled",
            ..Failure::failed(error)
        }
    }

    fn failed(error: impl Into<String>) -> Failure {
        Failure {
            outcome: "failed",
            error: error.into(),
            exit_code: None,
            details: BTreeMap::new(),
        }
    }
}

/// Reports a task's stages through the outbox.
struct Emitter<'a> {
    agent: &'a Agent,
    task_id: TaskId,
    stage: std::sync::Mutex<(String, Instant)>,
}

impl Emitter<'_> {
    fn push(&self, kind: Kind) {
        self.agent.outbox.push(self.task_id, kind);
    }

    fn stage(&self) -> String {
        self.stage
            .lock()
            .map(|stage| stage.0.clone())
            .unwrap_or_default()
    }

    fn system(&self, line: String) {
        self.line("system", line);
    }

    fn start_stage(&self, name: &str) {
        if let Ok(mut stage) = self.stage.lock() {
            *stage = (name.to_string(), Instant::now());
        }
        self.push(Kind::StageStarted(StageStarted {
            stage: name.to_string(),
        }));
    }

    fn end_stage(
        &self,
        outcome: &str,
        exit_code: Option<i32>,
        error: &str,
        details: BTreeMap<String, String>,
    ) {
        let (stage, started) = self
            .stage
            .lock()
            .map(|stage| stage.clone())
            .unwrap_or_else(|_| (String::new(), Instant::now()));
        self.push(Kind::StageFinished(StageFinished {
            stage,
            outcome: outcome.to_string(),
            exit_code: exit_code.unwrap_or(0),
            has_exit_code: exit_code.is_some(),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            error: error.to_string(),
            details: details.into_iter().collect(),
        }));
    }

    /// Ends the current stage and the task with a failure.
    fn fail(&self, failure: Failure) {
        self.system(failure.error.clone());
        self.end_stage(
            failure.outcome,
            failure.exit_code,
            &failure.error,
            failure.details,
        );
        self.push(Kind::Finished(TaskFinished {
            outcome: failure.outcome.to_string(),
            error_step: self.stage(),
            error: failure.error,
        }));
    }

    fn done(&self) {
        self.push(Kind::Finished(TaskFinished {
            outcome: "done".into(),
            error_step: String::new(),
            error: String::new(),
        }));
    }
}

impl LineSink for Emitter<'_> {
    fn line(&self, stream: &str, line: String) {
        self.push(Kind::Log(LogLine {
            stage: self.stage(),
            stream: stream.to_string(),
            line,
        }));
    }

    fn lines(&self, stream: &str, lines: Vec<String>) {
        let stage = self.stage();
        self.agent.outbox.push_all(
            self.task_id,
            lines.into_iter().map(|line| {
                Kind::Log(LogLine {
                    stage: stage.clone(),
                    stream: stream.to_string(),
                    line,
                })
            }),
        );
    }

    fn room(&self) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>> {
        let outbox = &self.agent.outbox;
        outbox
            .backlogged(self.task_id)
            .then(|| Box::pin(outbox.room(self.task_id)) as _)
    }

    fn started(&self, pid: u32) {
        self.agent.record_pid(self.task_id, pid);
    }

    fn ended(&self) {
        self.agent.clear_pid(self.task_id);
    }
}

/// Runs a task's stages in order: the script stage (`setup` or `stop`)
/// when it has commands or there is no container, then for a container the
/// `deploy` stage (or, for a stop, the containers are stopped within `stop`).
async fn run(agent: &Arc<Agent>, task_id: TaskId, spec: &TaskSpec, cancel: &CancellationToken) {
    // A restore runs the stages of the deployment it puts back: its
    // container, labels, work dir and route are that deployment's.
    let restored;
    let spec = if spec.restore_of.is_empty() {
        spec
    } else {
        restored = TaskSpec {
            deployment_id: spec.restore_of.clone(),
            ..spec.clone()
        };
        &restored
    };
    let emitter = Emitter {
        agent,
        task_id,
        stage: std::sync::Mutex::new((spec.stage.clone(), Instant::now())),
    };
    let is_stop = spec.kind == berth_proto::v1::task_spec::Kind::Stop as i32;
    // While a task changes the app, the repair loop leaves it alone.
    let _busy = (spec.kind != berth_proto::v1::task_spec::Kind::Build as i32)
        .then(|| agent.current.claim(spec));
    if spec.kind == berth_proto::v1::task_spec::Kind::Build as i32 {
        emitter.start_stage("build");
        match build::run(agent, spec, &emitter, cancel).await {
            Ok(details) => emitter.end_stage("succeeded", None, "", details),
            Err(failure) => return emitter.fail(failure),
        }
        return emitter.done();
    }
    if spec.kind == berth_proto::v1::task_spec::Kind::Delete as i32 {
        emitter.start_stage("delete");
        match teardown::delete(agent, spec, &emitter).await {
            Ok(details) => emitter.end_stage("succeeded", None, "", details),
            Err(failure) => return emitter.fail(failure),
        }
        return emitter.done();
    }
    if !spec.commands.is_empty() || spec.container.is_none() {
        emitter.start_stage(&spec.stage);
        if let Err(failure) = run_script(agent, spec, &emitter, cancel).await {
            return emitter.fail(failure);
        }
        if !(is_stop && spec.container.is_some()) {
            emitter.end_stage("succeeded", Some(0), "", BTreeMap::new());
        }
    }
    if let Some(container) = &spec.container {
        let result = if is_stop {
            if spec.commands.is_empty() {
                emitter.start_stage(&spec.stage);
            }
            teardown::stop_containers(agent, spec, container, &emitter).await
        } else {
            emitter.start_stage("deploy");
            container::deploy_container(agent, spec, container, &emitter, cancel).await
        };
        match result {
            Ok(details) => emitter.end_stage("succeeded", None, "", details),
            Err(failure) => return emitter.fail(failure),
        }
    } else if is_stop {
        agent.current.forget(&spec.app, &spec.environment, None);
    } else {
        agent.current.deployed(spec, None, None);
    }
    emitter.done();
}

/// The script stage: fetch and unpack the bundle, run the commands.
async fn run_script(
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
        let outcome = shell::run(command, &dir, &env, deadline, cancel, emitter).await;
        let failure = match outcome {
            Ok(Outcome::Exited(0)) => continue,
            Ok(Outcome::Exited(code)) => Failure {
                exit_code: Some(code),
                ..Failure::failed(format!("command `{command}` exited with code {code}"))
            },
            Ok(Outcome::Signaled(signal)) => {
                Failure::failed(format!("command `{command}` was killed by signal {signal}"))
            }
            Ok(Outcome::TimedOut) => {
                let limit =
                    berth_shared::time::format_duration(Duration::from_millis(spec.timeout_ms));
                Failure {
                    outcome: "timed_out",
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

fn environment(agent: &Agent, spec: &TaskSpec, dir: &std::path::Path) -> BTreeMap<String, String> {
    BTreeMap::from([
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
    ])
}

/// Makes sure the deployment's bundle is unpacked in its work directory.
async fn prepare(
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
async fn prepare_in(
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
async fn fetch_blob(
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
async fn place_artifact(
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
