//! What agents connected to another controller last reported (the apps
//! each host runs and their health, `berth status`): each owner writes an
//! agent's report to the store when it changes, and the others read it
//! there.

use std::collections::HashMap;
use std::hash::{Hash as _, Hasher as _};
use std::sync::{Mutex, PoisonError};

use berth_proto::v1::{AppHealth, Heartbeat, HostApp};
use berth_shared::id::AgentId;
use berth_shared::record::Timestamp;
use prost::Message as _;
use tracing::warn;

use super::Cluster;
use crate::server::Context;
use crate::store::Store;

/// One agent's last report.
pub struct Report {
    pub apps: Vec<HostApp>,
    pub health: Vec<AppHealth>,
    /// When its owner stored it.
    pub at: Timestamp,
}

/// The reports this controller stored last, by agent (a hash of each), so
/// an unchanged heartbeat writes nothing.
#[derive(Default)]
pub(super) struct Shared {
    written: Mutex<HashMap<AgentId, u64>>,
}

impl Cluster {
    /// Stores what this controller's `agent` reports when it changed, for
    /// the other controllers.
    pub fn share_report(
        &self,
        store: &Store,
        agent: AgentId,
        apps: &[HostApp],
        health: &[AppHealth],
    ) {
        if !self.is_shared() {
            return;
        }
        let bytes = Heartbeat {
            facts: None,
            free_slots: 0,
            health: health.to_vec(),
            apps: apps.to_vec(),
        }
        .encode_to_vec();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut hasher);
        let hash = hasher.finish();
        let mut written = self
            .reports
            .written
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if written.get(&agent) == Some(&hash) {
            return;
        }
        match store.put_report(agent, &bytes) {
            Ok(()) => {
                written.insert(agent, hash);
            }
            Err(err) => {
                warn!(%agent, error = %err, "could not store the agent's report for the other controllers")
            }
        }
    }
}

impl Context {
    /// What `agent` last reported, when another controller serving now
    /// holds its stream.
    pub fn report_elsewhere(&self, agent: AgentId) -> Option<Report> {
        self.cluster.owned_elsewhere(&self.store, agent)?;
        let (at_ms, bytes) = self.store.report(agent).ok().flatten()?;
        let beat = Heartbeat::decode(bytes.as_slice()).ok()?;
        Some(Report {
            apps: beat.apps,
            health: beat.health,
            at: Timestamp(at_ms),
        })
    }
}
