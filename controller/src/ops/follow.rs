//! `logs`: a deployment's stored lines, then with `follow` new lines as
//! they become durable, until the deployment is quiet.
//!
//! It subscribes to the hub before reading the store, so nothing falls in
//! between; a follower that lags behind the hub re-reads the store. It
//! applies the request's filters (module `filter`) to stored and
//! live lines alike, and first says so when the retention sweeper deleted
//! lines the filters could have matched.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_shared::id::{DeploymentId, TaskId};
use berth_shared::record::Deployment;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::{Caller, Code, Error, Result, Stream};
use crate::hub::{Following, HubEvent};
use crate::progress::is_quiet;
use crate::server::Context;
use crate::store::{Role, StoreError, StoredLine};

mod filter;
mod relay;
mod stored;

pub use filter::LogFilters;
use filter::{LogFilter, is_failure};

/// `berth logs`: which lines of a deployment, and whether to follow it.
#[derive(Clone, Debug)]
pub struct LogsRequest {
    pub deployment_id: DeploymentId,
    pub filters: LogFilters,
    /// Go on with new lines until the deployment is quiet.
    pub follow: bool,
    /// Only the last `tail` lines (0: all).
    pub tail: u32,
    /// Once quiet, go on with the running containers' output.
    pub app_output: bool,
    /// A live view resuming after a lost connection has these lines
    /// already: per task, the highest sequence number it holds.
    pub after_seq: HashMap<TaskId, u64>,
    /// The output of this resource of the deployment's app instead of the
    /// stored lines (`berth logs APP --resource NAME`).
    pub resource: String,
}

/// One log line of a deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub host: String,
    /// None for a container's live output, which is not stored.
    pub task_id: Option<TaskId>,
    /// The line's number within its task (0 for live container output).
    pub seq: u64,
    pub stage: String,
    pub stream: String,
    pub ts_ms: i64,
    pub line: String,
}

/// What a log stream yields: lines, and first (when the filters could
/// have matched them) a notice that retention deleted older lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogItem {
    Line(LogLine),
    Expired { before_ms: i64, retention_ms: u64 },
}

/// How often a follower re-reads the store even without hub events.
const REFRESH: Duration = Duration::from_secs(2);
/// Lines read from the store per host at a time.
const PAGE: usize = 1000;
/// Most lines `--tail` may ask for.
const MAX_TAIL: u32 = 100_000;

fn record(task: TaskId, host: &str, seq: u64, line: StoredLine) -> LogLine {
    LogLine {
        host: host.to_string(),
        task_id: Some(task),
        seq,
        stage: line.stage,
        stream: line.stream,
        ts_ms: line.ts_ms,
        line: line.line,
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
    caller: &Caller,
    request: LogsRequest,
) -> Result<Stream<LogItem>> {
    caller.require(Role::Viewer)?;
    let id = request.deployment_id;
    let following = request.follow.then(|| context.hub.follow(id));
    let deployment = context.store.get_deployment(id)?;
    let filter = LogFilter::new(&request.filters)?;
    if let Some(host) = &filter.host
        && !deployment.tasks.iter().any(|task| &task.host == host)
    {
        return Err(Error::new(
            Code::HostNotFound,
            format!("deployment {id} has no task on host `{host}`"),
        ));
    }
    let (sender, receiver) = mpsc::channel(1024);
    if request.tail > MAX_TAIL {
        return Err(Error::invalid(format!(
            "tail may be at most {MAX_TAIL} lines"
        )));
    }
    if !request.resource.is_empty() {
        return relay::resource_logs(context, deployment, filter, request);
    }
    let tail = request.tail as usize;
    // A live view resuming after a lost connection has these lines already.
    let resumed = request.after_seq.clone();
    // Said only when the deleted lines could have passed the filters.
    let notice = context
        .store
        .expired_logs(id)?
        .filter(|expired| filter.admits_before(expired.before_ms))
        .map(|expired| LogItem::Expired {
            before_ms: expired.before_ms,
            retention_ms: expired.retention_ms,
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
    sender: mpsc::Sender<Result<LogItem>>,
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
                .send(Ok(LogItem::Line(record(task, host, seq, line))))
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

    /// Passes a value on, or reports a store failure to the client and stops.
    async fn or_stop<T>(&self, result: Result<T, StoreError>) -> Result<T, Stopped> {
        match result {
            Ok(value) => Ok(value),
            Err(err) => {
                let _ = self.sender.send(Err(Error::from(err))).await;
                Err(Stopped)
            }
        }
    }

    async fn emit(&self, records: Result<Vec<LogLine>, StoreError>) -> Result<(), Stopped> {
        match records {
            Ok(records) => {
                for record in records {
                    self.sender
                        .send(Ok(LogItem::Line(record)))
                        .await
                        .map_err(|_| Stopped)?;
                }
                Ok(())
            }
            Err(err) => {
                let _ = self.sender.send(Err(Error::from(err))).await;
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
