//! Deployment metrics, counted from committed changes: the store hands
//! [`Deployments::changed`] what a deployment was before a transaction
//! ([`Before`], taken inside the run of the transaction that committed) and
//! what it is after, once per commit. So a run that ends is counted
//! exactly once, whatever retries sled makes or how often an agent sends
//! the same events again: only a change from a running status to a
//! settled one counts, and a deployment that is settled already cannot
//! make one without running again first (`berth redeploy`, `start`), which
//! is a new run and counted as such.
//!
//! - `berth_deployments_total{app,environment,status}`: runs ended, by the
//!   status they ended in (`deployed`, `failed`, `canceled`, `timed_out`).
//! - `berth_deployment_duration_seconds{app,environment}`: each ended
//!   run's time, from when its work left `pending` (or, for a run that
//!   never started, its creation) to when it settled: the record's own
//!   `duration_ms`.
//! - `berth_stage_duration_seconds{stage}`: each stage a host finished.
//! - `berth_queue_wait_seconds`: each task's wait from when it could run
//!   (created, or its deployment approved) to its first assignment.

use berth_shared::id::TaskId;
use berth_shared::record::Deployment;
use berth_shared::state::DeploymentStatus;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// What counts of a deployment before a change.
#[derive(Clone, Debug, Default)]
pub struct Before {
    /// `None` for a deployment the change creates.
    status: Option<DeploymentStatus>,
    /// Stages running: their task and place in its stages.
    open_stages: Vec<(TaskId, usize)>,
    /// Tasks never assigned yet.
    unassigned: Vec<TaskId>,
}

impl Before {
    /// What `deployment` is now, before the change.
    pub fn of(deployment: &Deployment) -> Before {
        let mut before = Before {
            status: Some(deployment.status),
            ..Before::default()
        };
        for task in &deployment.tasks {
            if task.assigned_at.is_none() {
                before.unassigned.push(task.id);
            }
            for (index, stage) in task.stages.iter().enumerate() {
                if stage.finished_at.is_none() {
                    before.open_stages.push((task.id, index));
                }
            }
        }
        before
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Ended {
    app: String,
    environment: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppEnvironment {
    app: String,
    environment: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Stage {
    stage: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Seconds from 0.1 s to about 3.6 h, doubling.
fn long_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.1, 2.0, 18))
}

pub(super) struct Deployments {
    ended: Family<Ended, Counter>,
    duration: Histograms<AppEnvironment>,
    stages: Histograms<Stage>,
    queue_wait: Histogram,
}

impl Deployments {
    pub(super) fn register(registry: &mut Registry) -> Deployments {
        let ended = Family::default();
        registry.register(
            "deployments",
            "Deployment runs ended, by app, environment and the status they ended in",
            ended.clone(),
        );
        let duration: Histograms<AppEnvironment> = Family::new_with_constructor(long_buckets);
        registry.register_with_unit(
            "deployment_duration",
            "Time of each ended deployment run, from leaving pending to settling",
            Unit::Seconds,
            duration.clone(),
        );
        let stages: Histograms<Stage> = Family::new_with_constructor(long_buckets);
        registry.register_with_unit(
            "stage_duration",
            "Time of each stage a host finished",
            Unit::Seconds,
            stages.clone(),
        );
        let queue_wait = long_buckets();
        registry.register_with_unit(
            "queue_wait",
            "Time from a task could run (created, or its deployment approved) to its first assignment to an agent",
            Unit::Seconds,
            queue_wait.clone(),
        );
        Deployments {
            ended,
            duration,
            stages,
            queue_wait,
        }
    }

    pub(super) fn changed(&self, before: &Before, after: &Deployment) {
        let was_running = before.status.is_none_or(DeploymentStatus::is_running);
        if was_running && after.status.is_settled() {
            let labels = AppEnvironment {
                app: after.app.clone(),
                environment: after.environment.clone(),
            };
            self.ended
                .get_or_create(&Ended {
                    app: labels.app.clone(),
                    environment: labels.environment.clone(),
                    status: after.status.as_str(),
                })
                .inc();
            if let Some(ms) = after.duration_ms {
                self.duration.get_or_create(&labels).observe(seconds(ms));
            }
        }
        for (task_id, index) in &before.open_stages {
            let finished = after
                .tasks
                .iter()
                .find(|task| task.id == *task_id)
                .and_then(|task| task.stages.get(*index))
                .filter(|stage| stage.finished_at.is_some());
            if let Some(stage) = finished {
                let ms = stage.duration_ms.unwrap_or(0);
                self.stages
                    .get_or_create(&Stage {
                        stage: stage.stage.clone(),
                    })
                    .observe(seconds(ms));
            }
        }
        let ready = ready_at(after);
        for task in &after.tasks {
            let newly = before.status.is_none() || before.unassigned.contains(&task.id);
            if let Some(assigned) = task.assigned_at.filter(|_| newly) {
                let from = task.created_at.0.max(ready);
                let ms = u64::try_from(assigned.0 - from).unwrap_or(0);
                self.queue_wait.observe(seconds(ms));
            }
        }
    }
}

/// When the deployment was last approved (Unix ms), or 0.
fn ready_at(deployment: &Deployment) -> i64 {
    deployment
        .transitions
        .iter()
        .rev()
        .find(|transition| {
            transition.subject == "deployment"
                && transition.from.as_deref() == Some(DeploymentStatus::PendingApproval.as_str())
                && transition.to == DeploymentStatus::Pending.as_str()
        })
        .map_or(0, |transition| transition.at.0)
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}
