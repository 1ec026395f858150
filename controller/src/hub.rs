//! In-process fan-out of changes to live followers (`berth deploy`'s live
//! view, `berth logs -f`). Events are published only after the change they
//! describe is durable. A follower that falls behind re-reads the store.

use std::sync::Arc;

use berth_shared::id::{DeploymentId, TaskId};
use tokio::sync::broadcast;

use crate::store::StoredLine;

/// Capacity of the broadcast ring; a follower lagging further re-reads.
const CAPACITY: usize = 8192;

/// One published change.
#[derive(Clone, Debug)]
pub enum HubEvent {
    /// New durable log lines of one task.
    Lines {
        deployment: DeploymentId,
        task: TaskId,
        lines: Arc<Vec<(u64, StoredLine)>>,
    },
    /// The deployment record changed.
    Changed { deployment: DeploymentId },
}

impl HubEvent {
    pub fn deployment(&self) -> DeploymentId {
        match self {
            HubEvent::Lines { deployment, .. } | HubEvent::Changed { deployment } => *deployment,
        }
    }
}

/// The broadcast hub.
#[derive(Clone)]
pub struct Hub {
    sender: broadcast::Sender<HubEvent>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            sender: broadcast::channel(CAPACITY).0,
        }
    }
}

impl Hub {
    pub fn publish(&self, event: HubEvent) {
        // No receivers is normal: nobody is following.
        let _ = self.sender.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<HubEvent> {
        self.sender.subscribe()
    }
}
