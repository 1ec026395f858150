//! Several controllers serving from one PostgreSQL store at once.
//!
//! Each agent's stream is connected to one controller, its owner, which
//! alone assigns it tasks and tells it to cancel (`store/members.rs`
//! records the lease; `dispatcher/assign.rs` checks it). A change made on
//! one controller reaches the others as a [`Signal`] on the store's
//! LISTEN/NOTIFY channel (`store/kv/pg/bus.rs`), sent after the change is
//! committed: every change of a deployment (so its new tasks reach their
//! agents' owners, and its live views and log followers everywhere see
//! it), new log lines, agents coming and going, a question for an agent
//! connected elsewhere and its answers (`relay.rs`), a revocation. A
//! change's signal is a hint to read the store again; a controller whose
//! listening connection broke reads everything again (`receive.rs`). A
//! signal longer than one notification goes in parts. On sled there is
//! one controller and no signal.

mod parts;
mod receive;
pub mod relay;
mod reports;

pub use reports::Report;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use berth_shared::id::AgentId;
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::hub::{Hub, HubEvent};
use crate::server::Context;
use crate::store::kv::pg::BusSender;
use crate::store::{Lease, Member, Store};

pub use receive::run;

/// How long the list of live controllers is trusted before it is read
/// again.
const MEMBERS_FRESH: Duration = Duration::from_secs(1);
/// How soon the list is read again when it misses a controller.
const MEMBERS_AGAIN: Duration = Duration::from_millis(100);

/// What one controller tells the others.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Signal {
    /// A deployment's record changed.
    Changed { d: String },
    /// A task's lines `after + 1 ..= last` are stored.
    Lines {
        d: String,
        t: String,
        after: u64,
        last: u64,
    },
    /// `agent`'s stream opened on the sender (`owner` names it) or ended
    /// there (`owner` is `None`).
    Fleet {
        agent: String,
        owner: Option<String>,
    },
    /// A question for `agent`, whose owner sends it on: a
    /// `ControllerMessage`, protobuf in base64 (`relay.rs`).
    Forward { agent: String, msg: String },
    /// An answer of `agent` for controller `to`: an `AgentMessage`,
    /// protobuf in base64.
    Reply {
        to: String,
        agent: String,
        msg: String,
    },
    /// Part `n` of `of` of a signal too long for one notification.
    Part {
        id: u64,
        n: u32,
        of: u32,
        data: String,
    },
    /// `agent` was revoked: its owner cuts it off.
    Revoked { agent: String },
}

/// A signal and who sent it.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    from: String,
    #[serde(flatten)]
    signal: Signal,
}

/// This controller among the others.
pub struct Cluster {
    /// This controller (its id names it in leases and signals).
    pub me: Member,
    bus: Option<BusSender>,
    members: Mutex<Option<(Instant, Vec<Member>)>>,
    /// Ids of signals sent in parts.
    next_long: AtomicU64,
    /// Parts of long signals received, until whole.
    parts: parts::Parts,
    /// Which controller each agent connected elsewhere is on, as the
    /// leases said when read and the signals since (`owned_elsewhere`).
    remote: Mutex<HashMap<AgentId, String>>,
    /// The agents' reports this controller stored last (`reports.rs`).
    reports: reports::Shared,
}

impl Cluster {
    /// `bus` is `None` on sled: this controller is the only one.
    pub fn new(me: Member, bus: Option<BusSender>) -> Cluster {
        Cluster {
            me,
            bus,
            members: Mutex::new(None),
            next_long: AtomicU64::new(1),
            parts: parts::Parts::default(),
            remote: Mutex::new(HashMap::new()),
            reports: reports::Shared::default(),
        }
    }

    /// True when other controllers may serve from the same store.
    pub fn is_shared(&self) -> bool {
        self.bus.is_some()
    }

    /// Tells the other controllers.
    pub fn signal(&self, signal: Signal) {
        let Some(bus) = &self.bus else { return };
        let hint = matches!(signal, Signal::Changed { .. });
        let envelope = Envelope {
            from: self.me.id.clone(),
            signal,
        };
        let payload = match serde_json::to_string(&envelope) {
            Ok(payload) => payload,
            Err(err) => {
                warn!(error = %err, "could not encode a signal to the other controllers");
                return;
            }
        };
        if payload.len() <= parts::WHOLE {
            if hint {
                bus.send_coalesced(payload);
            } else {
                bus.send(payload);
            }
            return;
        }
        let id = self.next_long.fetch_add(1, Ordering::Relaxed);
        for part in parts::split(&self.me.id, id, &payload) {
            bus.send(part);
        }
    }

    /// Sends every change published on `hub` here to the other
    /// controllers too.
    pub fn forward(self: &Arc<Self>, hub: &Hub) {
        if !self.is_shared() {
            return;
        }
        let cluster = self.clone();
        hub.forward_to(Arc::new(move |event: &HubEvent| {
            cluster.signal(match event {
                HubEvent::Changed { deployment } => Signal::Changed {
                    d: deployment.to_string(),
                },
                HubEvent::Lines {
                    deployment,
                    task,
                    lines,
                } => {
                    let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
                        return;
                    };
                    Signal::Lines {
                        d: deployment.to_string(),
                        t: task.to_string(),
                        after: first.0.saturating_sub(1),
                        last: last.0,
                    }
                }
            });
        }));
    }

    /// The controllers serving now (read again at most every second, or
    /// when `stale` says what was read is).
    pub fn members(&self, store: &Store, stale: impl Fn(&[Member]) -> bool) -> Vec<Member> {
        let mut cached = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, members)) = cached.as_ref()
            && at.elapsed() < MEMBERS_FRESH
            && (at.elapsed() < MEMBERS_AGAIN || !stale(members))
        {
            return members.clone();
        }
        match store.members() {
            Ok(members) => {
                *cached = Some((Instant::now(), members.clone()));
                members
            }
            Err(err) => {
                warn!(error = %err, "could not read which controllers serve");
                cached.as_ref().map(|(_, m)| m.clone()).unwrap_or_default()
            }
        }
    }

    /// The id of the controller serving now that holds `agent`'s stream,
    /// when it is another one, as the leases and signals say (no read of
    /// the store but, at most every second, of who serves).
    pub fn owned_elsewhere(&self, store: &Store, agent: AgentId) -> Option<String> {
        if !self.is_shared() {
            return None;
        }
        let owner = self.lock_remote().get(&agent).cloned()?;
        self.serves_now(store, &owner).then_some(owner)
    }

    /// Like [`Cluster::owned_elsewhere`], from the lease in the store (for
    /// decisions that must not lag a signal).
    pub fn owned_elsewhere_now(&self, store: &Store, agent: AgentId) -> Option<String> {
        if !self.is_shared() {
            return None;
        }
        let owner = store.lease(agent).ok().flatten()?.controller;
        self.serves_now(store, &owner).then_some(owner)
    }

    /// True when `owner` is another controller serving now.
    fn serves_now(&self, store: &Store, owner: &str) -> bool {
        let named = |members: &[Member]| members.iter().any(|m| m.id == owner);
        // A controller that started within the second is read again.
        owner != self.me.id && named(&self.members(store, |m| !named(m)))
    }

    fn lock_remote(&self) -> std::sync::MutexGuard<'_, HashMap<AgentId, String>> {
        self.remote.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads every lease again (at start, and after a gap in the signals).
    pub fn read_leases(&self, store: &Store) {
        if !self.is_shared() {
            return;
        }
        match store.leases() {
            Ok(leases) => {
                *self.lock_remote() = leases
                    .into_iter()
                    .filter(|(_, lease)| lease.controller != self.me.id)
                    .map(|(agent, lease)| (agent, lease.controller))
                    .collect();
            }
            Err(err) => warn!(error = %err, "could not read the agents' leases"),
        }
    }

    /// Controller `from` said `agent`'s stream opened on `owner`, or
    /// (`None`) ended on `from`.
    pub(crate) fn note_lease(&self, agent: AgentId, owner: Option<String>, from: &str) {
        let mut remote = self.lock_remote();
        match owner {
            Some(owner) => {
                remote.insert(agent, owner);
            }
            None => {
                if remote.get(&agent).is_some_and(|on| on == from) {
                    remote.remove(&agent);
                }
            }
        }
    }

    /// Records that `agent`'s stream (connection `conn`) is here, or with
    /// `opened` false that it ended here, and tells the other controllers.
    pub fn lease(&self, store: &Store, agent: AgentId, conn: u64, opened: bool) {
        if !self.is_shared() {
            return;
        }
        let lease = Lease {
            controller: self.me.id.clone(),
            conn,
        };
        let written = if opened {
            store.put_lease(agent, &lease)
        } else {
            store.drop_lease(agent, &lease)
        };
        if let Err(err) = written {
            warn!(%agent, opened, error = %err, "could not write the agent's lease");
        }
        self.signal(Signal::Fleet {
            agent: agent.to_string(),
            owner: opened.then(|| self.me.id.clone()),
        });
    }
}

impl Context {
    /// True when `agent` has a stream open to this controller or to
    /// another one serving from the same store.
    pub fn is_online(&self, agent: AgentId) -> bool {
        self.registry.is_online(agent) || self.cluster.owned_elsewhere(&self.store, agent).is_some()
    }

    /// How many agents each controller has, by its id (this one's own
    /// from its registry).
    pub fn agents_by_controller(&self) -> HashMap<String, u32> {
        let mut counts = if self.cluster.is_shared() {
            self.store.leases_by_controller().unwrap_or_default()
        } else {
            HashMap::new()
        };
        counts.insert(
            self.cluster.me.id.clone(),
            u32::try_from(self.registry.online()).unwrap_or(u32::MAX),
        );
        counts
    }
}
