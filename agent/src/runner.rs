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

/// Cancels a running task if the command is not older than its assignment.
pub fn cancel(agent: &Agent, task_id: &str) {
    if let Ok(task_id) = task_id.parse::<TaskId>()
        && let Some(token) = agent.running().get(&task_id)
    {
        token.cancel();
    }
}

struct Emitter<'a> {
    agent: &'a Agent,
    task_id: TaskId,
    stage: String,
}

impl Emitter<'_> {
    fn push(&self, kind: Kind) {
        self.agent.outbox.push(self.task_id, kind);
    }

    fn system(&self, line: String) {
        self.push(Kind::Log(LogLine {
            stage: self.stage.clone(),
            stream: "system".into(),
            line,
        }));
    }

    fn finish(&self, outcome: &str, started: Instant, exit_code: Option<i32>, error: String) {
        self.push(Kind::StageFinished(StageFinished {
            stage: self.stage.clone(),
            outcome: outcome.to_string(),
            exit_code: exit_code.unwrap_or(0),
            has_exit_code: exit_code.is_some(),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            error: error.clone(),
        }));
        let task_outcome = if outcome == "succeeded" {
            "done"
        } else {
            outcome
        };
        let error_step = if outcome == "succeeded" {
            String::new()
        } else {
            self.stage.clone()
        };
        self.push(Kind::Finished(TaskFinished {
            outcome: task_outcome.to_string(),
            error_step,
            error,
        }));
    }
}

impl LineSink for Emitter<'_> {
    fn line(&self, stream: &str, line: String) {
        self.push(Kind::Log(LogLine {
            stage: self.stage.clone(),
            stream: stream.to_string(),
            line,
        }));
    }

    fn started(&self, pid: u32) {
        self.agent.record_pid(self.task_id, pid);
    }

    fn ended(&self) {
        self.agent.clear_pid(self.task_id);
    }
}

async fn run(agent: &Arc<Agent>, task_id: TaskId, spec: &TaskSpec, cancel: &CancellationToken) {
    let emitter = Emitter {
        agent,
        task_id,
        stage: spec.stage.clone(),
    };
    let started = Instant::now();
    emitter.push(Kind::StageStarted(StageStarted {
        stage: spec.stage.clone(),
    }));
    let dir = match prepare(agent, spec, &emitter).await {
        Ok(dir) => dir,
        Err(err) => {
            let message = format!("{err:#}");
            emitter.system(message.clone());
            return emitter.finish("failed", started, None, message);
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_millis(spec.timeout_ms.max(1));
    let env = environment(agent, spec, &dir);
    for command in &spec.commands {
        emitter.system(format!("$ {command}"));
        let outcome = shell::run(command, &dir, &env, deadline, cancel, &emitter).await;
        let (status, error) = match outcome {
            Ok(Outcome::Exited(0)) => continue,
            Ok(Outcome::Exited(code)) => {
                let error = format!("command `{command}` exited with code {code}");
                emitter.system(error.clone());
                return emitter.finish("failed", started, Some(code), error);
            }
            Ok(Outcome::Signaled(signal)) => (
                "failed",
                format!("command `{command}` was killed by signal {signal}"),
            ),
            Ok(Outcome::TimedOut) => {
                let limit =
                    berth_shared::time::format_duration(Duration::from_millis(spec.timeout_ms));
                (
                    "timed_out",
                    format!(
                        "{} stage timed out after {limit} while running `{command}`; its processes were killed",
                        spec.stage
                    ),
                )
            }
            Ok(Outcome::Canceled) => ("canceled", format!("canceled while running `{command}`")),
            Err(err) => ("failed", format!("could not start `{command}`: {err}")),
        };
        emitter.system(error.clone());
        return emitter.finish(status, started, None, error);
    }
    emitter.finish("succeeded", started, Some(0), String::new());
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
        ("BERTH_WORK_DIR".into(), dir.display().to_string()),
    ])
}

/// Makes sure the deployment's bundle is unpacked in its work directory.
async fn prepare(
    agent: &Arc<Agent>,
    spec: &TaskSpec,
    emitter: &Emitter<'_>,
) -> anyhow::Result<PathBuf> {
    let deployment: berth_shared::id::DeploymentId =
        spec.deployment_id.parse().map_err(anyhow::Error::msg)?;
    let dir = agent.files.work().join(deployment.to_string());
    if dir.exists() {
        return Ok(dir);
    }
    emitter.system(format!(
        "fetching bundle {} ({} bytes)",
        spec.bundle_digest, spec.bundle_size
    ));
    let mut channel = agent.channel.subscribe();
    let archive = crate::fetch::blob(
        &agent.files.bundles(),
        &spec.bundle_digest,
        spec.bundle_size,
        &mut channel,
        |line| emitter.system(line),
    )
    .await?;
    std::fs::create_dir_all(agent.files.work())?;
    let target = dir.clone();
    tokio::task::spawn_blocking(move || crate::bundle::unpack(&archive, &target)).await??;
    emitter.system(format!("bundle unpacked into {}", dir.display()));
    Ok(dir)
}
