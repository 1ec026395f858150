//! Live views: `WatchDeployment` (a snapshot on every change, until the
//! deployment is quiet) and `GetLogs` (stored lines, then with `follow` new
//! lines as they become durable, until the deployment is quiet).
//!
//! Each subscribes to the hub before reading the store, so nothing falls in
//! between; a follower that lags behind the hub re-reads the store.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use berth_proto::v1::{DeploymentReply, GetLogsRequest, LogRecord};
use berth_shared::id::{DeploymentId, TaskId};
use berth_shared::record::{Deployment, TaskKind};
use berth_shared::state::{DeploymentStatus, TaskStatus};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::BoxStream;
use super::cli::parse_deployment_id;
use super::status::json;
use crate::hub::HubEvent;
use crate::progress::is_quiet;
use crate::server::Context;
use crate::store::{StoreError, StoredLine};

/// How often a follower re-reads the store even without hub events.
const REFRESH: Duration = Duration::from_secs(2);
/// Lines read from the store per host at a time.
const PAGE: usize = 1000;
/// Most lines `--tail` may ask for.
const MAX_TAIL: u32 = 100_000;

/// Streams deployment snapshots until the deployment is quiet.
pub fn watch(
    context: Arc<Context>,
    id: DeploymentId,
) -> Result<BoxStream<DeploymentReply>, Status> {
    let mut events = context.hub.subscribe();
    let first = context.store.get_deployment(id)?;
    let (sender, receiver) = mpsc::channel(16);
    let shutdown = context.shutdown.clone();
    let tasks = context.tasks.clone();
    tasks.spawn(async move {
        let mut current = first;
        loop {
            let Ok(text) = json(&current) else { return };
            if sender
                .send(Ok(DeploymentReply { json: text }))
                .await
                .is_err()
                || is_quiet(&current)
            {
                return;
            }
            let updated_at = (current.updated_at, current.transitions.len());
            while (current.updated_at, current.transitions.len()) == updated_at {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    event = tokio::time::timeout(REFRESH, events.recv()) => {
                        if let Ok(Ok(event)) = &event
                            && event.deployment() != id {
                                continue;
                            }
                    }
                }
                match context.store.get_deployment(id) {
                    Ok(next) => current = next,
                    Err(err) => {
                        let _ = sender.send(Err(err.into())).await;
                        return;
                    }
                }
            }
        }
    });
    Ok(Box::pin(ReceiverStream::new(receiver)))
}

struct LogFilter {
    host: Option<String>,
    stage: Option<String>,
}

impl LogFilter {
    fn wants(&self, host: &str, line: &StoredLine) -> bool {
        self.host.as_deref().is_none_or(|wanted| wanted == host)
            && self
                .stage
                .as_deref()
                .is_none_or(|wanted| wanted == line.stage)
    }
}

fn record(task: TaskId, host: &str, seq: u64, line: StoredLine) -> LogRecord {
    LogRecord {
        host: host.to_string(),
        stage: line.stage,
        stream: line.stream,
        seq,
        ts_ms: line.ts_ms,
        line: line.line,
        task_id: task.to_string(),
    }
}

fn hosts(deployment: &Deployment) -> HashMap<TaskId, String> {
    deployment
        .tasks
        .iter()
        .map(|task| (task.id, task.host.clone()))
        .collect()
}

/// Streams stored log lines and, with `follow`, live ones.
pub fn logs(
    context: Arc<Context>,
    request: GetLogsRequest,
) -> Result<BoxStream<LogRecord>, Status> {
    let id = parse_deployment_id(&request.deployment_id)?;
    let events = request.follow.then(|| context.hub.subscribe());
    let deployment = context.store.get_deployment(id)?;
    let filter = LogFilter {
        host: Some(request.host.clone()).filter(|host| !host.is_empty()),
        stage: Some(request.stage.clone()).filter(|stage| !stage.is_empty()),
    };
    if let Some(host) = &filter.host
        && !deployment.tasks.iter().any(|task| &task.host == host)
    {
        return Err(Status::not_found(format!(
            "deployment {id} has no task on host `{host}`"
        )));
    }
    let (sender, receiver) = mpsc::channel(1024);
    if request.tail > MAX_TAIL {
        return Err(Status::invalid_argument(format!(
            "--tail may be at most {MAX_TAIL}"
        )));
    }
    let tail = request.tail as usize;
    let tasks = context.tasks.clone();
    tasks.spawn(async move {
        let mut follower = Follower {
            context: context.clone(),
            id,
            filter,
            sender,
            last: HashMap::new(),
            app_output: request.app_output,
        };
        let sent = if tail > 0 {
            let records = follower.tail(&deployment, tail);
            follower.emit(records).await
        } else {
            follower.send_stored(&deployment).await
        };
        if sent.is_err() {
            return;
        }
        if let Some(events) = events {
            let _ = follower.follow(events, deployment).await;
        }
    });
    Ok(Box::pin(ReceiverStream::new(receiver)))
}

struct Follower {
    context: Arc<Context>,
    id: DeploymentId,
    filter: LogFilter,
    sender: mpsc::Sender<Result<LogRecord, Status>>,
    /// Highest sequence number sent per task.
    last: HashMap<TaskId, u64>,
    /// Relay the running containers' output once the deployment is quiet.
    app_output: bool,
}

/// The follower stopped: the client went away or the store failed.
struct Stopped;

impl Follower {
    /// Sends stored lines after what was already sent, ordered by time
    /// across hosts (and by sequence within one host). Lines are read in
    /// pages and merged as they stream, so memory stays bounded however
    /// long the logs are.
    async fn send_stored(&mut self, deployment: &Deployment) -> Result<(), Stopped> {
        let tasks: Vec<(TaskId, String)> = deployment
            .tasks
            .iter()
            .filter(|task| {
                self.filter
                    .host
                    .as_deref()
                    .is_none_or(|host| host == task.host)
            })
            .map(|task| (task.id, task.host.clone()))
            .collect();
        let mut buffers: Vec<VecDeque<(u64, StoredLine)>> = vec![VecDeque::new(); tasks.len()];
        let mut exhausted = vec![false; tasks.len()];
        loop {
            for (index, (task, _)) in tasks.iter().enumerate() {
                if buffers[index].is_empty() && !exhausted[index] {
                    let after = self.last.get(task).copied().unwrap_or(0);
                    let page: Result<Vec<_>, _> = self
                        .context
                        .store
                        .task_lines(self.id, *task, after)
                        .take(PAGE)
                        .collect();
                    let page = self.or_stop(page).await?;
                    exhausted[index] = page.len() < PAGE;
                    buffers[index].extend(page);
                }
            }
            let next = (0..tasks.len())
                .filter(|index| !buffers[*index].is_empty())
                .min_by_key(|index| (buffers[*index][0].1.ts_ms, *index));
            let Some(index) = next else { return Ok(()) };
            let Some((seq, line)) = buffers[index].pop_front() else {
                return Ok(());
            };
            let (task, host) = &tasks[index];
            self.last.insert(*task, seq);
            if self.filter.wants(host, &line) {
                self.sender
                    .send(Ok(record(*task, host, seq, line)))
                    .await
                    .map_err(|_| Stopped)?;
            }
        }
    }

    /// The last `tail` stored lines across hosts, in time order.
    fn tail(&mut self, deployment: &Deployment, tail: usize) -> Result<Vec<LogRecord>, StoreError> {
        let mut records = Vec::new();
        for task in &deployment.tasks {
            if self
                .filter
                .host
                .as_deref()
                .is_some_and(|host| host != task.host)
            {
                continue;
            }
            for (seq, line) in self.context.store.task_tail(self.id, task.id, tail)? {
                self.last.insert(task.id, seq);
                if self.filter.wants(&task.host, &line) {
                    records.push(record(task.id, &task.host, seq, line));
                }
            }
        }
        records.sort_by(|a, b| (a.ts_ms, &a.task_id, a.seq).cmp(&(b.ts_ms, &b.task_id, b.seq)));
        if records.len() > tail {
            records.drain(..records.len() - tail);
        }
        Ok(records)
    }

    /// Passes a value on, or reports a store failure to the client and stops.
    async fn or_stop<T>(&self, result: Result<T, StoreError>) -> Result<T, Stopped> {
        match result {
            Ok(value) => Ok(value),
            Err(err) => {
                let _ = self.sender.send(Err(err.into())).await;
                Err(Stopped)
            }
        }
    }

    async fn emit(&self, records: Result<Vec<LogRecord>, StoreError>) -> Result<(), Stopped> {
        match records {
            Ok(records) => {
                for record in records {
                    self.sender.send(Ok(record)).await.map_err(|_| Stopped)?;
                }
                Ok(())
            }
            Err(err) => {
                let _ = self.sender.send(Err(err.into())).await;
                Err(Stopped)
            }
        }
    }

    async fn follow(
        &mut self,
        mut events: broadcast::Receiver<HubEvent>,
        mut deployment: Deployment,
    ) -> Result<(), Stopped> {
        let mut task_hosts = hosts(&deployment);
        loop {
            if is_quiet(&deployment) {
                self.send_stored(&deployment).await?;
                if self.app_output {
                    return self.relay_containers(&deployment).await;
                }
                return Ok(());
            }
            let event = tokio::select! {
                () = self.context.shutdown.cancelled() => return Err(Stopped),
                event = tokio::time::timeout(REFRESH, events.recv()) => event,
            };
            match event {
                Ok(Ok(HubEvent::Lines {
                    deployment: id,
                    task,
                    lines,
                })) if id == self.id => {
                    let Some(host) = task_hosts.get(&task).cloned() else {
                        continue;
                    };
                    let after = self.last.get(&task).copied().unwrap_or(0);
                    for (seq, line) in lines.iter().filter(|(seq, _)| *seq > after) {
                        self.last.insert(task, *seq);
                        if self.filter.wants(&host, line) {
                            self.sender
                                .send(Ok(record(task, &host, *seq, line.clone())))
                                .await
                                .map_err(|_| Stopped)?;
                        }
                    }
                }
                Ok(Ok(_)) => {
                    deployment = self.reload()?;
                    task_hosts = hosts(&deployment);
                }
                // Lagged behind the hub, or quiet for a while: catch up from the store.
                Ok(Err(_)) | Err(_) => {
                    deployment = self.reload()?;
                    task_hosts = hosts(&deployment);
                    self.send_stored(&deployment).await?;
                }
            }
        }
    }

    /// Relays the output of the deployment's running containers, live,
    /// until the client goes away, every container's output ends, or the
    /// controller shuts down. Only a deployed container app has any.
    async fn relay_containers(&self, deployment: &Deployment) -> Result<(), Stopped> {
        if deployment.status != DeploymentStatus::Deployed
            || deployment.manifest.container.is_none()
        {
            return Ok(());
        }
        let mut relays = Vec::new();
        for task in deployment
            .tasks
            .iter()
            .filter(|task| task.kind == TaskKind::Deploy && task.status == TaskStatus::Done)
        {
            if self
                .filter
                .host
                .as_deref()
                .is_some_and(|host| host != task.host)
            {
                continue;
            }
            let request = berth_proto::v1::FollowContainer {
                request_id: 0,
                deployment_id: deployment.id.to_string(),
                app: deployment.app.clone(),
                environment: deployment.environment.clone(),
                stop: false,
            };
            if let Some(relay) = self
                .context
                .registry
                .follow_container(task.agent_id, request)
                .await
            {
                relays.push((task.host.clone(), relay));
            }
        }
        let result = self.pump_relays(&mut relays).await;
        for (_, relay) in &relays {
            self.context.registry.unfollow(relay).await;
        }
        result
    }

    async fn pump_relays(
        &self,
        relays: &mut Vec<(String, crate::registry::Relay)>,
    ) -> Result<(), Stopped> {
        while !relays.is_empty() {
            let next = futures_util::future::select_all(
                relays
                    .iter_mut()
                    .map(|(_, relay)| Box::pin(relay.output.recv())),
            );
            let (output, index, _) = tokio::select! {
                () = self.context.shutdown.cancelled() => return Err(Stopped),
                () = self.sender.closed() => return Err(Stopped),
                next = next => next,
            };
            let Some(output) = output else {
                relays.remove(index);
                continue;
            };
            let host = relays[index].0.clone();
            for line in output.lines {
                let record = LogRecord {
                    host: host.clone(),
                    stage: "app".into(),
                    stream: "container".into(),
                    seq: 0,
                    ts_ms: berth_shared::time::now_ms(),
                    line,
                    task_id: String::new(),
                };
                self.sender.send(Ok(record)).await.map_err(|_| Stopped)?;
            }
            if output.ended {
                relays.remove(index);
            }
        }
        Ok(())
    }

    fn reload(&self) -> Result<Deployment, Stopped> {
        self.context
            .store
            .get_deployment(self.id)
            .map_err(|_| Stopped)
    }
}
