//! berth's agent: dials out to the controller over mTLS, keeps one
//! long-lived stream open, runs the stages it is assigned (script stages
//! today), and streams logs and results back through a durable outbox.
//!
//! Main types: [`Agent`] (shared state), [`outbox::Outbox`],
//! [`connection`] (dial, stream pump, reconnect), [`runner`] (tasks).
//!
//! Invariants: the agent only dials out; it never depends on
//! `berth-controller`; its private key never leaves its data directory.

pub mod bundle;
pub mod config;
pub mod connection;
pub mod exec;
pub mod facts;
pub mod fetch;
pub mod git;
pub mod join;
pub mod metrics;
pub mod outbox;
pub mod process;
pub mod repair;
pub mod resource_asks;
pub mod runner;
pub mod skew;
pub mod stage;
pub mod wire;

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, Result};
use berth_proto::v1::TaskSpec;
use berth_shared::id::TaskId;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::Channel;
use tracing::{info, warn};

use crate::config::{FenceState, Files, Identity};
use crate::outbox::Outbox;

/// How often the agent checks that Caddy still has its routes.
const ROUTE_CHECK: Duration = Duration::from_secs(2);

/// Settings of `berth-agent run`.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub data_dir: PathBuf,
    /// Tasks run at once.
    pub slots: u32,
    /// Overrides the controller address recorded at join time.
    pub controller: Option<String>,
    /// Docker's address (`unix:///path` or `tcp://host:port`).
    pub docker_host: String,
    /// Caddy's admin API and the ports berth's routes are served on.
    pub caddy: stage::caddy::Caddy,
    /// Where `GET /metrics` listens (`--metrics-listen`); `None` for off.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// State shared by the connection and the running tasks.
pub struct Agent {
    pub files: Files,
    pub identity: Identity,
    pub outbox: Outbox,
    /// The current connection to the controller, when there is one.
    pub channel: watch::Sender<Option<Channel>>,
    pub slots: u32,
    /// Docker's address for container stages.
    pub docker_host: String,
    /// Caddy's admin API, for `[proxy]` routes.
    pub caddy: stage::caddy::Caddy,
    /// The routes this agent keeps in Caddy.
    pub routes: Arc<stage::caddy::Desired>,
    /// Deployed apps checked periodically.
    pub monitor: Arc<stage::monitor::Monitor>,
    /// What this host runs now, per app (kept true by [`repair`]).
    pub current: Arc<stage::current::Apps>,
    /// The app's resources as last seen here (`berth status`).
    pub resources: stage::resource_watch::ResourceWatch,
    pub tasks: TaskTracker,
    pub shutdown: CancellationToken,
    fence: Mutex<FenceState>,
    running: Mutex<HashMap<TaskId, CancellationToken>>,
    /// Accepted tasks waiting for a free slot.
    waiting: Mutex<VecDeque<TaskSpec>>,
    /// Live container-output relays, by request id.
    relays: Mutex<HashMap<u64, CancellationToken>>,
    _lock: File,
}

impl Agent {
    fn fence(&self) -> MutexGuard<'_, FenceState> {
        self.fence.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn running(&self) -> MutexGuard<'_, HashMap<TaskId, CancellationToken>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn waiting(&self) -> MutexGuard<'_, VecDeque<TaskSpec>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tasks running now (not those waiting for a slot).
    pub fn running_tasks(&self) -> usize {
        self.running().len()
    }

    /// Free slots to advertise.
    pub fn free_slots(&self) -> u32 {
        let busy = self.running().len() + self.waiting().len();
        self.slots
            .saturating_sub(u32::try_from(busy).unwrap_or(u32::MAX))
    }

    /// Registers a relay and returns the token that ends it.
    pub fn start_relay(&self, request_id: u64) -> CancellationToken {
        let token = self.shutdown.child_token();
        self.relays
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(request_id, token.clone());
        token
    }

    /// Ends a relay.
    pub fn stop_relay(&self, request_id: u64) {
        if let Some(token) = self
            .relays
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&request_id)
        {
            token.cancel();
        }
    }

    fn pid_file(&self, task_id: TaskId) -> PathBuf {
        self.files.spool().join(format!("{task_id}.pid"))
    }

    /// Remembers a running command's process group, so a restarted agent
    /// can stop what its predecessor left running.
    fn record_pid(&self, task_id: TaskId, pid: u32) {
        let start = process::start_time(pid).unwrap_or(0);
        if let Err(err) = std::fs::write(self.pid_file(task_id), format!("{pid} {start}")) {
            warn!(%task_id, error = %err, "could not record the command's pid");
        }
    }

    fn clear_pid(&self, task_id: TaskId) {
        let _ = std::fs::remove_file(self.pid_file(task_id));
    }

    /// Stops the process group an interrupted task left behind, if the
    /// recorded process is still the same one.
    fn stop_orphan(&self, task_id: TaskId) {
        let path = self.pid_file(task_id);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return;
        };
        let mut parts = text.split_whitespace().map(str::parse::<u64>);
        if let (Some(Ok(pid)), Some(Ok(start))) = (parts.next(), parts.next()) {
            let pid = u32::try_from(pid).unwrap_or(0);
            if start != 0 && process::start_time(pid) == Some(start) {
                process::signal_group(pid, process::KILL);
                info!(%task_id, pid, "stopped the processes an interrupted task left running");
            }
        }
        let _ = std::fs::remove_file(path);
    }
}

/// Runs the agent until `shutdown` is cancelled or the controller refuses it
/// for good (revoked).
pub async fn run(config: RunConfig, shutdown: CancellationToken) -> Result<()> {
    let files = Files::new(&config.data_dir);
    let mut identity = files.load_identity()?;
    if let Some(controller) = config.controller {
        identity.controller = controller;
    }
    let lock =
        File::create(files.lock()).with_context(|| format!("create {}", files.lock().display()))?;
    lock.try_lock().map_err(|_| {
        anyhow::anyhow!(
            "another berth-agent is already running on {}",
            files.root().display()
        )
    })?;
    files.finish_renewal().map_err(anyhow::Error::msg)?;
    let (outbox, interrupted) =
        Outbox::load(&files.spool(), &identity.name).context("load the outbox spool")?;
    let fence = files.load_fence();
    let agent = Arc::new(Agent {
        files,
        identity,
        outbox,
        channel: watch::channel(None).0,
        slots: config.slots.max(1),
        docker_host: config.docker_host,
        caddy: config.caddy,
        routes: Arc::new(stage::caddy::Desired::load(&config.data_dir)),
        monitor: Arc::new(stage::monitor::Monitor::load(&config.data_dir)),
        current: Arc::new(stage::current::Apps::load(&config.data_dir)),
        resources: Default::default(),
        tasks: TaskTracker::new(),
        shutdown: shutdown.clone(),
        fence: Mutex::new(fence),
        running: Mutex::new(HashMap::new()),
        waiting: Mutex::new(VecDeque::new()),
        relays: Mutex::new(HashMap::new()),
        _lock: lock,
    });
    for task_id in &interrupted {
        agent.stop_orphan(*task_id);
        warn!(%task_id, "task was interrupted by an agent restart; reporting it failed");
    }
    repair::finish_interrupted(&agent, &interrupted).await;
    if let Some(address) = config.metrics_listen {
        metrics::spawn(agent.clone(), address).await?;
    }
    info!(agent = %agent.identity.name, controller = %agent.identity.controller, "agent starting");
    // Routes Caddy lost (a restart without its saved config) are put back.
    agent
        .tasks
        .spawn(stage::monitor::run(agent.monitor.clone(), shutdown.clone()));
    agent
        .tasks
        .spawn(repair::run(agent.clone(), shutdown.clone()));
    agent.tasks.spawn(stage::caddy::keep_routes(
        agent.caddy.clone(),
        agent.routes.clone(),
        ROUTE_CHECK,
        shutdown.clone(),
    ));
    let result = connection::run(agent.clone()).await;
    shutdown.cancel();
    agent.tasks.close();
    if tokio::time::timeout(Duration::from_secs(10), agent.tasks.wait())
        .await
        .is_err()
    {
        warn!("running tasks did not stop within 10s");
    }
    result
}
