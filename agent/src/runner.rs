//! Runs assigned tasks: fetch and unpack the bundle into the deployment's
//! work directory, then run the stage's commands, reporting every step and
//! every output line through the outbox. Tasks keep running when the link
//! to the controller is down.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use berth_proto::v1::TaskSpec;
use berth_shared::id::TaskId;
use berth_shared::masking::Masker;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::Agent;

mod build;
mod container;
mod emit;
mod image;
mod resources;
mod script;
mod teardown;
use emit::{Emitter, Failure};
pub use emit::{Ending, StageOutcome, TaskOutcome};
use script::{environment, fetch_blob, prepare, prepare_in, run_script};

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
            mask: Masker::new(spec.secrets.iter().map(|secret| secret.value.as_str())),
        };
        emitter.fail(Failure::canceled(
            "canceled while waiting for a free slot on this host; nothing ran",
        ));
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
        mask: Masker::new(spec.secrets.iter().map(|secret| secret.value.as_str())),
    };
    let is_stop = spec.kind == berth_proto::v1::task_spec::Kind::Stop as i32;
    // While a task changes the app, the repair loop leaves it alone.
    let _busy = (spec.kind != berth_proto::v1::task_spec::Kind::Build as i32)
        .then(|| agent.current.claim(spec));
    if spec.kind == berth_proto::v1::task_spec::Kind::Build as i32 {
        emitter.start_stage("build");
        match build::run(agent, spec, &emitter, cancel).await {
            Ok(details) => emitter.end_stage(StageOutcome::Succeeded, None, "", details),
            Err(failure) => return emitter.fail(failure),
        }
        return emitter.done();
    }
    if spec.kind == berth_proto::v1::task_spec::Kind::Delete as i32 {
        emitter.start_stage("delete");
        match teardown::delete(agent, spec, &emitter).await {
            Ok(details) => emitter.end_stage(StageOutcome::Succeeded, None, "", details),
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
            emitter.end_stage(StageOutcome::Succeeded, Some(0), "", BTreeMap::new());
        }
    }
    let is_deploy = spec.kind == berth_proto::v1::task_spec::Kind::Deploy as i32;
    if is_deploy && !spec.resources.is_empty() {
        emitter.start_stage("resources");
        match resources::ensure(agent, spec, &emitter, cancel).await {
            Ok(details) => emitter.end_stage(StageOutcome::Succeeded, None, "", details),
            Err(failure) => return emitter.fail(failure),
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
            Ok(details) => emitter.end_stage(StageOutcome::Succeeded, None, "", details),
            Err(failure) => return emitter.fail(failure),
        }
    } else if is_stop {
        agent.current.forget(&spec.app, &spec.environment, None);
    } else {
        agent.current.deployed(spec, None, None);
    }
    if is_deploy
        && spec.restore_of.is_empty()
        && (spec.container.is_some() || !spec.resources.is_empty())
    {
        teardown::retire_unwanted(agent, spec, &emitter).await;
    }
    if is_stop && spec.with_resources {
        emitter.start_stage("resources");
        match teardown::stop_resources(agent, spec, &emitter).await {
            Ok(details) => emitter.end_stage(StageOutcome::Succeeded, None, "", details),
            Err(failure) => return emitter.fail(failure),
        }
    }
    emitter.done();
}
