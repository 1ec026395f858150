//! Live views: `WatchDeployment` (a snapshot on every change, until the
//! deployment is quiet) and `GetLogs` (stored lines, then with `follow` new
//! lines as they become durable, until the deployment is quiet).
//!
//! Each subscribes to the hub before reading the store, so nothing falls in
//! between; a follower that lags behind the hub re-reads the store.
//! `GetLogs` applies the request's filters (module `filter`) to stored and
//! live lines alike, and first says so when the retention sweeper deleted
//! lines the filters could have matched.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use berth_proto::v1::{DeploymentReply, GetLogsRequest, LogRecord, LogsExpired};
use berth_shared::id::{DeploymentId, TaskId};
use berth_shared::record::Deployment;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::BoxStream;
use super::cli::parse_deployment_id;
use super::status::json;
use crate::hub::{Following, HubEvent};
use crate::progress::is_quiet;
use crate::server::Context;
use crate::store::{StoreError, StoredLine};

mod filter;
mod relay;

use filter::{LogFilter, is_failure};

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

fn record(task: TaskId, host: &str, seq: u64, line: StoredLine) -> LogRecord {
    LogRecord {
        host: host.to_string(),
        stage: line.stage,
        stream: line.stream,
        seq,
        ts_ms: line.ts_ms,
        line: line.line,
        task_id: task.to_string(),
        expired: None,
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
    let following = request.follow.then(|| context.hub.follow(id));
    let deployment = context.store.get_deployment(id)?;
    let filter = LogFilter::from_request(&request)?;
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
    // A live view resuming after a lost connection has these lines already.
    let resumed: HashMap<TaskId, u64> = request
        .after_seq
        .iter()
        .filter_map(|(task, seq)| Some((task.parse::<TaskId>().ok()?, *seq)))
        .collect();
    // Said only when the deleted lines could have passed the filters.
    let notice = context
        .store
        .expired_logs(id)?
        .filter(|expired| filter.admits_before(expired.before_ms))
        .map(|expired| LogRecord {
            expired: Some(LogsExpired {
                before_ms: expired.before_ms,
                retention_ms: expired.retention_ms,
            }),
            ..LogRecord::default()
        });
    let tasks = context.tasks.clone();
    tasks.spawn(async move {
        let mut follower = Follower {
            context: context.clone(),
            id,
            filter,
            sender,
            last: resumed,
            held: HashMap::new(),
            app_output: request.app_output,
        };
        if let Some(notice) = notice
            && follower.sender.send(Ok(notice)).await.is_err()
        {
            return;
        }
        let sent = if tail > 0 {
            let records = follower.tail(&deployment, tail);
            follower.emit(records).await
        } else {
            follower.send_stored(&deployment).await
        };
        if sent.is_err() {
            return;
        }
        if let Some((events, following)) = following {
            let _ = follower.follow(events, &following, deployment).await;
        }
    });
    Ok(Box::pin(ReceiverStream::new(receiver)))
}

struct Follower {
    context: Arc<Context>,
    id: DeploymentId,
    filter: LogFilter,
    sender: mpsc::Sender<Result<LogRecord, Status>>,
    /// Highest sequence number sent (or passed over) per task.
    last: HashMap<TaskId, u64>,
    /// Per task and stage, the newest `system` line the level filter could
    /// not judge yet because the stage may still fail with that message;
    /// sent or dropped once the record says. Only the newest can be the
    /// failure report, which is a stage's last line.
    held: HashMap<(TaskId, String), Held>,
    /// Relay the running containers' output once the deployment is quiet.
    app_output: bool,
}

/// The follower stopped: the client went away or the store failed.
struct Stopped;

/// A line waiting for the level filter's verdict.
struct Held {
    host: String,
    seq: u64,
    line: StoredLine,
}

impl Follower {
    /// Sends stored lines after what was already sent, ordered by time
    /// across hosts (and by sequence within one host). Lines are read in
    /// pages and merged as they stream, so memory stays bounded however
    /// long the logs are.
    async fn send_stored(&mut self, deployment: &Deployment) -> Result<(), Stopped> {
        let tasks: Vec<(TaskId, String)> = deployment
            .tasks
            .iter()
            .filter(|task| self.filter.wants_host(&task.host))
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
            self.offer(deployment, *task, host, seq, line).await?;
        }
    }

    /// Sends a line the filters want, holds one they cannot judge yet.
    async fn offer(
        &mut self,
        deployment: &Deployment,
        task: TaskId,
        host: &str,
        seq: u64,
        line: StoredLine,
    ) -> Result<(), Stopped> {
        match self
            .filter
            .wants(host, &line, || is_failure(deployment, task, &line))
        {
            Some(true) => self
                .sender
                .send(Ok(record(task, host, seq, line)))
                .await
                .map_err(|_| Stopped),
            Some(false) => Ok(()),
            None => {
                self.hold(task, host, seq, line);
                Ok(())
            }
        }
    }

    /// Keeps `line` for a later verdict unless a newer line of its stage is
    /// already held.
    fn hold(&mut self, task: TaskId, host: &str, seq: u64, line: StoredLine) {
        let key = (task, line.stage.clone());
        if self.held.get(&key).is_none_or(|held| held.seq < seq) {
            let host = host.to_string();
            self.held.insert(key, Held { host, seq, line });
        }
    }

    /// Sends or drops the held lines `deployment` can now judge, in time
    /// order.
    async fn release_held(&mut self, deployment: &Deployment) -> Result<(), Stopped> {
        let mut released = Vec::new();
        let keys: Vec<(TaskId, String)> = self.held.keys().cloned().collect();
        for key in keys {
            let held = &self.held[&key];
            let verdict = self.filter.wants(&held.host, &held.line, || {
                is_failure(deployment, key.0, &held.line)
            });
            let Some(wanted) = verdict else { continue };
            let held = self.held.remove(&key).expect("key listed above");
            if wanted {
                released.push(record(key.0, &held.host, held.seq, held.line));
            }
        }
        released.sort_by(|a, b| (a.ts_ms, &a.task_id, a.seq).cmp(&(b.ts_ms, &b.task_id, b.seq)));
        self.emit(Ok(released)).await
    }

    /// The last `tail` stored lines that pass the filters, across hosts, in
    /// time order. Each task is read newest first until it has given
    /// `tail` lines.
    fn tail(&mut self, deployment: &Deployment, tail: usize) -> Result<Vec<LogRecord>, StoreError> {
        let mut records = Vec::new();
        let context = self.context.clone();
        for task in &deployment.tasks {
            if !self.filter.wants_host(&task.host) {
                continue;
            }
            let mut kept = 0;
            for entry in context.store.task_lines_rev(self.id, task.id) {
                let (seq, line) = entry?;
                // The first line read is the task's newest.
                self.last.entry(task.id).or_insert(seq);
                match self
                    .filter
                    .wants(&task.host, &line, || is_failure(deployment, task.id, &line))
                {
                    Some(true) => {
                        records.push(record(task.id, &task.host, seq, line));
                        kept += 1;
                        if kept == tail {
                            break;
                        }
                    }
                    Some(false) => {}
                    None => self.hold(task.id, &task.host, seq, line),
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
        following: &Following,
        mut deployment: Deployment,
    ) -> Result<(), Stopped> {
        let mut task_hosts = hosts(&deployment);
        loop {
            if is_quiet(&deployment) {
                self.release_held(&deployment).await?;
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
                    if let Some(host) = task_hosts.get(&task).cloned() {
                        let after = self.last.get(&task).copied().unwrap_or(0);
                        for (seq, line) in lines.iter().filter(|(seq, _)| *seq > after) {
                            self.last.insert(task, *seq);
                            self.offer(&deployment, task, &host, *seq, line.clone())
                                .await?;
                        }
                    }
                    following.gauge.passed(lines.len() as u64);
                }
                // Another deployment's lines or change: nothing to do here.
                Ok(Ok(event)) if event.deployment() != self.id => {}
                Ok(Ok(_)) => {
                    deployment = self.reload()?;
                    task_hosts = hosts(&deployment);
                    self.release_held(&deployment).await?;
                }
                // Lagged behind the hub, or quiet for a while: catch up from the store.
                Ok(Err(_)) | Err(_) => {
                    following.gauge.reset();
                    deployment = self.reload()?;
                    task_hosts = hosts(&deployment);
                    self.release_held(&deployment).await?;
                    self.send_stored(&deployment).await?;
                }
            }
        }
    }

    fn reload(&self) -> Result<Deployment, Stopped> {
        self.context
            .store
            .get_deployment(self.id)
            .map_err(|_| Stopped)
    }
}
