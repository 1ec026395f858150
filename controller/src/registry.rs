//! The registry of live agent streams: who is connected, how to reach them,
//! how many free slots they advertise, and since when the others have been
//! away (for the `lost` grace period).

mod asks;
mod awaited;
mod elsewhere;
mod fetches;
mod resources;
mod transfers;

pub use asks::Relay;
pub use elsewhere::Elsewhere;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use berth_proto::v1::{ControllerMessage, InspectReply};
use berth_shared::id::AgentId;
use berth_shared::record::Facts;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::Status;

/// Sender half of one agent's outbound stream.
pub type Outbound = mpsc::Sender<Result<ControllerMessage, Status>>;

struct Connection {
    conn_id: u64,
    outbound: Outbound,
    cancel: CancellationToken,
    free_slots: u32,
    facts: Option<Facts>,
    /// The periodic health of the apps on this host, from its last heartbeat.
    health: Vec<berth_proto::v1::AppHealth>,
    /// What runs on this host, from its last heartbeat.
    apps: Vec<berth_proto::v1::HostApp>,
    /// When `apps` was reported (wall clock, to compare with task times).
    apps_at: Option<berth_shared::record::Timestamp>,
}

/// Live agent connections.
pub struct Registry {
    /// Fleet-wide questions waiting for an agent's answer, by request id.
    inquiries: Mutex<HashMap<u64, tokio::sync::oneshot::Sender<InspectReply>>>,
    /// Fleet execs waiting for output, by request id, with the agent asked.
    execs: Mutex<HashMap<u64, (AgentId, mpsc::UnboundedSender<berth_proto::v1::ExecOutput>)>>,
    /// Live container-output relays, by request id.
    relays: Mutex<HashMap<u64, mpsc::Sender<berth_proto::v1::ContainerOutput>>>,
    /// Git fetches waiting for their build agent's answer, by request id.
    fetches: awaited::Awaited<berth_proto::v1::FetchResult>,
    /// Resource questions (snapshots, restore) waiting for their answer.
    resource_asks: awaited::Awaited<berth_proto::v1::ResourceAnswer>,
    connections: Mutex<HashMap<AgentId, Connection>>,
    away_since: Mutex<HashMap<AgentId, Instant>>,
    started: Instant,
    next_conn: AtomicU64,
    /// Counts changes of who is online or what agents' labels are, for
    /// deploys waiting for their target's agents (`--wait-for-agents`).
    fleet: tokio::sync::watch::Sender<u64>,
    /// Downloads and uploads in progress, cut by a revocation.
    pub transfers: transfers::Transfers,
    /// Where questions for agents connected elsewhere go (`elsewhere.rs`).
    elsewhere: std::sync::OnceLock<Elsewhere>,
    /// Questions other controllers asked of this one's agents.
    relayed: elsewhere::Relayed,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            inquiries: Mutex::new(HashMap::new()),
            relays: Mutex::new(HashMap::new()),
            fetches: awaited::Awaited::default(),
            resource_asks: awaited::Awaited::default(),
            execs: Mutex::new(HashMap::new()),
            connections: Mutex::new(HashMap::new()),
            away_since: Mutex::new(HashMap::new()),
            started: Instant::now(),
            // A random start: request ids of two controllers never meet
            // on one agent's stream (`elsewhere.rs`).
            next_conn: AtomicU64::new((rand::random::<u64>() >> 16) | 1),
            fleet: tokio::sync::watch::channel(0).0,
            transfers: transfers::Transfers::default(),
            elsewhere: std::sync::OnceLock::new(),
            relayed: elsewhere::Relayed::default(),
        }
    }
}

/// A registered connection, handed to the stream that owns it.
pub struct Registration {
    pub conn_id: u64,
    pub cancel: CancellationToken,
    /// The agent had a stream before (since the controller started): this
    /// one replaces it or follows it after a break.
    pub reconnect: bool,
}

impl Registry {
    /// Registers a new stream for `agent`, replacing (and cancelling) an
    /// older one: the newest connection wins.
    pub fn register(
        &self,
        agent: AgentId,
        outbound: Outbound,
        free_slots: u32,
        facts: Facts,
    ) -> Registration {
        let conn_id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let cancel = CancellationToken::new();
        let connection = Connection {
            conn_id,
            outbound,
            cancel: cancel.clone(),
            free_slots,
            facts: Some(facts),
            health: Vec::new(),
            apps: Vec::new(),
            apps_at: None,
        };
        let old = self.lock().insert(agent, connection);
        let replaced = old.is_some();
        if let Some(old) = old {
            old.cancel.cancel();
        }
        let was_away = self.away().remove(&agent).is_some();
        self.fleet_changed();
        Registration {
            conn_id,
            cancel,
            reconnect: replaced || was_away,
        }
    }

    /// Removes a stream if it is still the current one for `agent`, which
    /// was last heard from at `last_heard`: a link that died silently is
    /// only noticed a while later, and the agent has been away since.
    pub fn unregister(&self, agent: AgentId, conn_id: u64, last_heard: Instant) {
        let mut connections = self.lock();
        if connections
            .get(&agent)
            .is_some_and(|conn| conn.conn_id == conn_id)
        {
            connections.remove(&agent);
            self.away().insert(agent, last_heard);
        }
    }

    /// Cuts an agent off at once (revocation): its stream and every
    /// download or upload it has in progress.
    pub fn disconnect(&self, agent: AgentId) {
        self.transfers.cancel(agent);
        if let Some(connection) = self.lock().remove(&agent) {
            connection.cancel.cancel();
            self.away().insert(agent, Instant::now());
        }
    }

    /// How many agents have a live stream now.
    pub fn online(&self) -> usize {
        self.lock().len()
    }

    pub fn is_online(&self, agent: AgentId) -> bool {
        self.lock().contains_key(&agent)
    }

    /// The current outbound sender of an agent, if connected.
    pub fn outbound(&self, agent: AgentId) -> Option<Outbound> {
        self.lock().get(&agent).map(|conn| conn.outbound.clone())
    }

    /// Updates what an agent advertised in a heartbeat.
    pub fn heartbeat(&self, agent: AgentId, free_slots: u32, facts: Option<Facts>) {
        if let Some(conn) = self.lock().get_mut(&agent) {
            conn.free_slots = free_slots;
            if facts.is_some() {
                conn.facts = facts;
            }
        }
    }

    /// Records the app health an agent reported.
    pub fn report_health(&self, agent: AgentId, health: Vec<berth_proto::v1::AppHealth>) {
        if let Some(conn) = self.lock().get_mut(&agent) {
            conn.health = health;
        }
    }

    /// Records what an agent reported running; returns the apps whose
    /// last repair is new since its previous report (all of them with a
    /// repair on the first report of a connection).
    pub fn report_apps(
        &self,
        agent: AgentId,
        apps: Vec<berth_proto::v1::HostApp>,
    ) -> Vec<berth_proto::v1::HostApp> {
        let mut connections = self.lock();
        let Some(conn) = connections.get_mut(&agent) else {
            return Vec::new();
        };
        let repaired = apps
            .iter()
            .filter(|app| {
                app.last_repair_ms > 0
                    && !conn.apps.iter().any(|old| {
                        old.deployment_id == app.deployment_id
                            && old.last_repair_ms == app.last_repair_ms
                    })
            })
            .cloned()
            .collect();
        conn.apps = apps;
        conn.apps_at = Some(berth_shared::record::Timestamp::now());
        repaired
    }

    /// When a connected agent last reported what runs on it.
    pub fn apps_reported_at(&self, agent: AgentId) -> Option<berth_shared::record::Timestamp> {
        self.lock().get(&agent).and_then(|conn| conn.apps_at)
    }

    /// What each connected agent runs of `app` in `environment`.
    pub fn apps_of(
        &self,
        app: &str,
        environment: &str,
    ) -> Vec<(AgentId, berth_proto::v1::HostApp)> {
        self.lock()
            .iter()
            .flat_map(|(agent, conn)| {
                conn.apps
                    .iter()
                    .filter(|host_app| host_app.app == app && host_app.environment == environment)
                    .map(|host_app| (*agent, host_app.clone()))
            })
            .collect()
    }

    /// What connected agents last reported about one deployment's health.
    pub fn health_of(&self, deployment_id: &str) -> Vec<(AgentId, berth_proto::v1::AppHealth)> {
        self.lock()
            .iter()
            .flat_map(|(agent, conn)| {
                conn.health
                    .iter()
                    .filter(|health| health.deployment_id == deployment_id)
                    .map(|health| (*agent, health.clone()))
            })
            .collect()
    }

    /// Takes one free slot of a connected agent, if it has one.
    pub fn take_slot(&self, agent: AgentId) -> bool {
        match self.lock().get_mut(&agent) {
            Some(conn) if conn.free_slots > 0 => {
                conn.free_slots -= 1;
                true
            }
            _ => false,
        }
    }

    /// Live facts of a connected agent.
    pub fn facts(&self, agent: AgentId) -> Option<Facts> {
        self.lock().get(&agent).and_then(|conn| conn.facts.clone())
    }

    /// How long an agent has been away; `None` when connected. Agents never
    /// seen since this controller started count from its start.
    pub fn away_for(&self, agent: AgentId) -> Option<Duration> {
        if self.is_online(agent) {
            return None;
        }
        let since = self.away().get(&agent).copied().unwrap_or(self.started);
        Some(since.elapsed())
    }

    /// `agent`'s stream is open on another controller of the store: if it
    /// goes away there, its grace period starts no earlier than now.
    pub fn heard_elsewhere(&self, agent: AgentId) {
        if !self.is_online(agent) {
            self.away().insert(agent, Instant::now());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AgentId, Connection>> {
        self.connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn away(&self) -> std::sync::MutexGuard<'_, HashMap<AgentId, Instant>> {
        self.away_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Registry {
    /// A receiver that sees every later fleet change (an agent connecting,
    /// labels changing, a revocation). Subscribe before looking at the
    /// fleet, so no change slips in between.
    pub fn watch_fleet(&self) -> tokio::sync::watch::Receiver<u64> {
        self.fleet.subscribe()
    }

    /// Wakes whoever waits for the fleet to change.
    pub fn fleet_changed(&self) {
        self.fleet
            .send_modify(|changes| *changes = changes.wrapping_add(1));
    }
}

impl Registry {
    /// Gives back a slot taken by [`Registry::take_slot`] that went unused.
    /// The agent's free slots as last counted; 0 when it is not connected.
    pub fn free_slots(&self, agent: AgentId) -> u32 {
        self.lock().get(&agent).map_or(0, |conn| conn.free_slots)
    }

    pub fn release_slot(&self, agent: AgentId) {
        if let Some(conn) = self.lock().get_mut(&agent) {
            conn.free_slots += 1;
        }
    }
}
