//! Runs assigned tasks: fetch and unpack the bundle into the deployment's
//! work directory, then run the stage's commands, reporting every step and
//! every output line through the outbox. Tasks keep running when the link
//! to the controller is down.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_proto::v1::task_event::Kind;
use berth_proto::v1::{
    ContainerSpec, LogLine, StageFinished, StageStarted, TaskFinished, TaskSpec,
};
use berth_shared::id::TaskId;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::Agent;
use crate::stage::docker;
use crate::stage::sandbox;

mod build;
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
            // A stopping agent starts nothing more; the controller sends a
            // task it never started again after the reconnect.
            let next = runner.waiting().pop_front();
            if let Some(next) = next
                && !runner.shutdown.is_cancelled()
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
        if failure.outcome == "canceled" && self.agent.shutdown.is_cancelled() {
            return self.interrupted();
        }
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

    /// The agent is stopping (`systemctl restart`, an upgrade), which
    /// stopped the stage: no user canceled it, so it does not end
    /// `canceled`. The task stays unfinished in the spool, and the next
    /// start reports it failed as interrupted by the restart
    /// (`Outbox::load`).
    fn interrupted(&self) {
        self.system(
            "the agent is stopping (a restart or an upgrade): this stage's processes were stopped; the task is reported when the agent is back"
                .into(),
        );
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
    let emitter = Emitter {
        agent,
        task_id,
        stage: std::sync::Mutex::new((spec.stage.clone(), Instant::now())),
    };
    let is_stop = spec.kind == berth_proto::v1::task_spec::Kind::Stop as i32;
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
        match delete(agent, spec, &emitter).await {
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
            stop_containers(agent, spec, container, &emitter).await
        } else {
            emitter.start_stage("deploy");
            deploy_container(agent, spec, container, &emitter, cancel).await
        };
        match result {
            Ok(details) => emitter.end_stage("succeeded", None, "", details),
            Err(failure) => return emitter.fail(failure),
        }
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

/// The deploy stage: image in place, new container up and steady, old
/// containers of the app retired. A failed start removes the new container
/// and leaves the old one serving.
async fn deploy_container(
    agent: &Arc<Agent>,
    spec: &TaskSpec,
    container: &ContainerSpec,
    emitter: &Emitter<'_>,
    cancel: &CancellationToken,
) -> Result<BTreeMap<String, String>, Failure> {
    let host = &agent.identity.name;
    let docker = docker::connect(&agent.docker_host)
        .await
        .map_err(|err| Failure::failed(format!("host {host} cannot reach Docker at {err}; start Docker or set berth-agent --docker-host")))?;
    if container.proxy.is_some() {
        // Fail before touching Docker when the route cannot be set.
        agent.caddy.ping().await.map_err(|err| {
            Failure::failed(format!(
                "host {host}: {err}; start Caddy or set berth-agent --caddy-admin"
            ))
        })?;
    }
    ensure_image(agent, &docker, container, emitter).await?;
    if cancel.is_cancelled() {
        return Err(Failure::canceled(
            "canceled before the new container started",
        ));
    }
    let name = docker::container_name(spec);
    let id = docker::start(&docker, spec, container, emitter)
        .await
        .map_err(Failure::failed)?;
    // With a check that reaches the app (http, run), staying up is watched
    // while it is checked (`check_health`); otherwise the container must
    // stay up a while first. A TCP connect is answered by Docker's port
    // proxy even when nothing listens inside, so it proves too little.
    let checked_at_once = container.health.as_ref().is_some_and(|health| !health.tcp);
    let watched = if checked_at_once {
        Ok(())
    } else {
        docker::watch_start(&docker, &name, emitter).await
    };
    if let Err(error) = watched {
        docker::remove(&docker, &name).await;
        emitter.system(format!(
            "removed the failed container {name}; the previous version keeps running"
        ));
        return Err(Failure::failed(error));
    }
    abandon_if_canceled(cancel, &docker, &name, emitter).await?;
    let host_port = if container.port > 0 {
        docker::host_port(&docker, &name, container.port).await
    } else {
        None
    };
    if let Some(port) = &host_port {
        emitter.system(format!(
            "container {name} is running; port {} is published on host port {port}",
            container.port
        ));
    }
    let mut details = docker::details(&id, &name, &container.image, host_port.clone(), &[]);
    if let Some(health) = &container.health {
        emitter.end_stage("succeeded", None, "", details);
        emitter.start_stage("health");
        details = check_health(
            agent,
            spec,
            health,
            &docker,
            &name,
            host_port.as_deref(),
            emitter,
            cancel,
        )
        .await
        .map_err(|failure| {
            if cancel.is_cancelled() {
                Failure::canceled("canceled during the health check; the new container was removed")
            } else {
                failure
            }
        })?;
    }
    abandon_if_canceled(cancel, &docker, &name, emitter).await?;
    if let (Some(proxy), Some(port)) = (&container.proxy, &host_port) {
        emitter.end_stage("succeeded", None, "", std::mem::take(&mut details));
        emitter.start_stage("proxy");
        let route = crate::stage::caddy::Route {
            id: crate::stage::caddy::route_id(&spec.app, &spec.environment),
            domain: proxy.domain.clone(),
            upstream: format!("127.0.0.1:{port}"),
            tls: proxy.tls.clone(),
            deployment_id: spec.deployment_id.clone(),
            app: spec.app.clone(),
        };
        reload_handover(emitter);
        if let Err(err) = agent.caddy.apply(&route).await {
            docker::remove(&docker, &name).await;
            emitter.system(format!(
                "removed the new container {name}; the previous version keeps serving"
            ));
            return Err(Failure::failed(format!(
                "host {host}: could not route {} to the new container: {err}",
                proxy.domain
            )));
        }
        agent.routes.set(route.clone());
        emitter.system(format!(
            "Caddy routes {} to {} (route {})",
            route.domain, route.upstream, route.id
        ));
        details = BTreeMap::from([
            ("route".to_string(), route.id),
            ("domain".to_string(), route.domain),
            ("upstream".to_string(), route.upstream),
        ]);
    }
    if let Some(health) = &container.health {
        use prost::Message;
        agent.monitor.watch(crate::stage::monitor::Watch {
            deployment_id: spec.deployment_id.clone(),
            app: spec.app.clone(),
            environment: spec.environment.clone(),
            host_port: host_port.clone(),
            work_dir: Some(agent.files.work().join(&spec.deployment_id)).filter(|dir| dir.exists()),
            spec: health.encode_to_vec(),
            healthy: Some(true),
            detail: details.get("health_probe").cloned().unwrap_or_default(),
            since_ms: berth_shared::time::now_ms(),
        });
    }
    let retired = docker::retire_others(&docker, spec, container, &name, emitter)
        .await
        .map_err(Failure::failed)?;
    if !retired.is_empty() {
        details.insert("replaced".to_string(), retired.join(","));
    }
    Ok(details)
}

/// The health stage: the new container must pass before it takes over. A
/// failure keeps the evidence (last probe, the container's last 100 lines)
/// with the stage, removes the new container and leaves the old one serving.
#[allow(clippy::too_many_arguments)]
async fn check_health(
    agent: &Arc<Agent>,
    spec: &TaskSpec,
    health: &berth_proto::v1::HealthSpec,
    docker: &bollard::Docker,
    name: &str,
    host_port: Option<&str>,
    emitter: &Emitter<'_>,
    cancel: &CancellationToken,
) -> Result<BTreeMap<String, String>, Failure> {
    let work_dir = if health.run.is_empty() {
        None
    } else {
        Some(
            prepare(agent, spec, emitter)
                .await
                .map_err(|err| Failure::failed(format!("{err:#}")))?,
        )
    };
    let mut env = environment(
        agent,
        spec,
        work_dir.as_deref().unwrap_or(std::path::Path::new("/")),
    );
    env.extend(host_port.map(|port| ("BERTH_HOST_PORT".to_string(), port.to_string())));
    let target = crate::stage::health::Target {
        host_port,
        work_dir: work_dir.as_deref(),
        env: &env,
    };
    let checked = tokio::select! {
        checked = crate::stage::health::check(health, &target, emitter, cancel) => checked,
        exited = docker::watch_while_checked(docker, name, emitter) => {
            let mut evidence = BTreeMap::new();
            evidence.insert("container_state".to_string(), "exited".to_string());
            Err((exited, evidence))
        }
    };
    match checked {
        Ok(details) => Ok(details),
        Err((message, mut evidence)) => {
            evidence.insert(
                "container_logs".to_string(),
                docker::tail(docker, name, 100).await,
            );
            docker::remove(docker, name).await;
            emitter.system(format!(
                "removed the unhealthy container {name}; the previous version keeps running"
            ));
            Err(Failure {
                details: evidence,
                ..Failure::failed(message)
            })
        }
    }
}

/// Makes sure the image is on the host: already there, else loaded from the
/// deployment's image archive, else pulled from its registry.
async fn ensure_image(
    agent: &Arc<Agent>,
    docker: &bollard::Docker,
    container: &ContainerSpec,
    emitter: &Emitter<'_>,
) -> Result<(), Failure> {
    let host = &agent.identity.name;
    let image = &container.image;
    let present = docker::image_id(docker, image).await;
    if !container.image_archive_digest.is_empty() {
        return ensure_from_archive(agent, docker, container, present, emitter).await;
    }
    match container.pull.as_str() {
        "always" => {
            emitter.system(format!("pulling image {image} (pull = \"always\")"));
            return docker::pull(docker, image, container.registry_auth.as_ref(), emitter)
                .await
                .map_err(|err| {
                    let instead = if present.is_some() {
                        format!("; host {host} has an image under that name: set pull = \"missing\" in [container] to use it")
                    } else {
                        String::new()
                    };
                    Failure::failed(format!(
                        "image {image} could not be pulled on host {host} (pull = \"always\", the default for a `latest` or missing tag): {err}{instead}"
                    ))
                });
        }
        "never" if present.is_none() => {
            return Err(Failure::failed(format!(
                "image {image} is not on host {host}, and pull = \"never\"; load it there, deploy with --image-archive, or allow a pull"
            )));
        }
        _ if present.is_some() => {
            emitter.system(format!("image {image} is already on this host"));
            return Ok(());
        }
        _ => {}
    }
    emitter.system(format!("pulling image {image}"));
    docker::pull(docker, image, container.registry_auth.as_ref(), emitter).await.map_err(|err| {
        Failure::failed(format!(
            "image {image} is not on host {host} and could not be pulled: {err}; load it there, push it to a registry the host can reach, or deploy with --image-archive"
        ))
    })?;
    Ok(())
}

/// With an image archive, the archive decides what the tag means: the
/// image `present` under it counts only if this archive loaded it (a
/// rebuild or a new archive under the same tag must replace it); otherwise
/// the archive is fetched and loaded, and what it loaded recorded.
async fn ensure_from_archive(
    agent: &Arc<Agent>,
    docker: &bollard::Docker,
    container: &ContainerSpec,
    present: Option<String>,
    emitter: &Emitter<'_>,
) -> Result<(), Failure> {
    let host = &agent.identity.name;
    let image = &container.image;
    let archive_digest = &container.image_archive_digest;
    let loaded = loaded_from_archive(agent, archive_digest);
    if loaded.is_some() && loaded == present {
        emitter.system(format!(
            "image {image} from archive {archive_digest} is already on this host"
        ));
        return Ok(());
    }
    if present.is_some() {
        emitter.system(format!(
            "image {image} is on this host, but not the one in archive {archive_digest}; loading the archive"
        ));
    }
    emitter.system(format!(
        "loading image {image} from archive {archive_digest} ({} bytes)",
        container.image_archive_size
    ));
    let archive = fetch_blob(agent, archive_digest, container.image_archive_size, emitter)
        .await
        .map_err(|err| {
            Failure::failed(format!(
                "host {host} could not fetch the image archive: {err:#}"
            ))
        })?;
    docker::load_archive(docker, &archive, emitter)
        .await
        .map_err(|err| {
            Failure::failed(format!(
                "host {host} could not load the image archive: {err}"
            ))
        })?;
    let Some(id) = docker::image_id(docker, image).await else {
        return Err(Failure::failed(format!(
            "the image archive loaded on host {host} does not contain {image}; check the tag the archive was saved with"
        )));
    };
    remember_loaded(agent, archive_digest, &id);
    Ok(())
}

/// The id of the image archive `digest` loaded on this host, as recorded
/// when it was loaded.
fn loaded_from_archive(agent: &Agent, digest: &str) -> Option<String> {
    let path = agent.files.loaded_images().join(archive_file_name(digest)?);
    std::fs::read_to_string(path)
        .ok()
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty())
}

/// Records that archive `digest` loaded image `id` (written whole or not
/// at all: a torn record would only cost a second load).
fn remember_loaded(agent: &Agent, digest: &str, id: &str) {
    let Some(name) = archive_file_name(digest) else {
        return;
    };
    let dir = agent.files.loaded_images();
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        // Its own temporary file: two tasks may load the same archive.
        let temporary = dir.join(format!("{name}.{}.tmp", TaskId::new()));
        std::fs::write(&temporary, id)?;
        std::fs::rename(&temporary, dir.join(name))
    });
    if let Err(err) = written {
        warn!(%digest, error = %err, "could not record the image an archive loaded; the next deploy loads it again");
    }
}

/// A file name for an archive digest (`sha256:HEX`), or `None` for
/// anything that is not one.
fn archive_file_name(digest: &str) -> Option<String> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|byte| byte.is_ascii_hexdigit()))
        .then(|| format!("sha256-{hex}"))
}

/// Removes what the deployment created on this host: its containers and
/// its work directory (`berth delete`).
async fn delete(
    agent: &Arc<Agent>,
    spec: &TaskSpec,
    emitter: &Emitter<'_>,
) -> Result<BTreeMap<String, String>, Failure> {
    let mut details = BTreeMap::new();
    if spec.container.is_some() {
        let host = &agent.identity.name;
        let docker = docker::connect(&agent.docker_host)
            .await
            .map_err(|err| Failure::failed(format!("host {host} cannot reach Docker at {err}")))?;
        agent
            .monitor
            .forget(&spec.app, &spec.environment, Some(&spec.deployment_id));
        let id = crate::stage::caddy::route_id(&spec.app, &spec.environment);
        // Only the route that still points to this deployment goes.
        if spec
            .container
            .as_ref()
            .is_some_and(|container| container.proxy.is_some())
            && agent.routes.forget(&id, Some(&spec.deployment_id))
        {
            reload_handover(emitter);
            agent.caddy.remove(&id).await.map_err(|err| {
                Failure::failed(format!("host {host}: could not remove route {id}: {err}"))
            })?;
            emitter.system(format!("removed Caddy route {id}"));
        }
        let removed = docker::remove_deployment(&docker, spec, emitter)
            .await
            .map_err(Failure::failed)?;
        details.insert("containers_removed".to_string(), removed.to_string());
    }
    let work = agent.files.work().join(&spec.deployment_id);
    if work.exists() {
        std::fs::remove_dir_all(&work)
            .map_err(|err| Failure::failed(format!("remove {}: {err}", work.display())))?;
        emitter.system(format!("removed {}", work.display()));
    }
    Ok(details)
}

/// A cancel that arrived while the new container was coming up: it is
/// removed and the previous version keeps serving.
async fn abandon_if_canceled(
    cancel: &CancellationToken,
    docker: &bollard::Docker,
    name: &str,
    emitter: &Emitter<'_>,
) -> Result<(), Failure> {
    if !cancel.is_cancelled() {
        return Ok(());
    }
    docker::remove(docker, name).await;
    emitter.system(format!(
        "canceled: removed the new container {name}; the previous version keeps running"
    ));
    Err(Failure::canceled(
        "canceled while the new container was starting; it was removed",
    ))
}

/// Every route change reloads Caddy; see [`crate::stage::caddy::ensure_reload_handover`].
fn reload_handover(emitter: &Emitter<'_>) {
    let setting = std::path::Path::new(crate::stage::caddy::MIGRATE_REQ);
    if let Some(line) = crate::stage::caddy::ensure_reload_handover(setting) {
        emitter.system(line);
    }
}

/// Stops the app's containers on this host (`berth stop`).
async fn stop_containers(
    agent: &Arc<Agent>,
    spec: &TaskSpec,
    container: &ContainerSpec,
    emitter: &Emitter<'_>,
) -> Result<BTreeMap<String, String>, Failure> {
    let host = &agent.identity.name;
    let docker = docker::connect(&agent.docker_host)
        .await
        .map_err(|err| Failure::failed(format!("host {host} cannot reach Docker at {err}")))?;
    agent.monitor.forget(&spec.app, &spec.environment, None);
    if container.proxy.is_some() {
        let id = crate::stage::caddy::route_id(&spec.app, &spec.environment);
        agent.routes.forget(&id, None);
        reload_handover(emitter);
        agent.caddy.remove(&id).await.map_err(|err| {
            Failure::failed(format!("host {host}: could not remove route {id}: {err}"))
        })?;
        emitter.system(format!("removed Caddy route {id}"));
    }
    let stopped = docker::stop_app(&docker, spec, container, emitter)
        .await
        .map_err(Failure::failed)?;
    Ok(BTreeMap::from([(
        "containers_stopped".to_string(),
        stopped.to_string(),
    )]))
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
