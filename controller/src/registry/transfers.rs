//! Per-agent cancellation of transfers (`GetBlob` downloads and
//! `PutBuildResult` uploads), so a revocation cuts every stream of that
//! agent and not only its agent stream.

use std::collections::HashMap;
use std::sync::Mutex;

use berth_shared::id::AgentId;
use tokio_util::sync::CancellationToken;

/// One token per agent that has a transfer open, cancelled on revocation.
#[derive(Default)]
pub struct Transfers {
    tokens: Mutex<HashMap<AgentId, CancellationToken>>,
}

impl Transfers {
    /// The token a transfer of `agent` watches. The caller checks the agent
    /// is not revoked after taking it, so a revocation between its
    /// authentication and this call is not missed.
    pub fn token(&self, agent: AgentId) -> CancellationToken {
        self.lock().entry(agent).or_default().clone()
    }

    /// Cancels every transfer of `agent` in progress.
    pub fn cancel(&self, agent: AgentId) {
        if let Some(token) = self.lock().remove(&agent) {
            token.cancel();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AgentId, CancellationToken>> {
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_reaches_every_transfer_of_that_agent_only() {
        let transfers = Transfers::default();
        let (agent, other) = (AgentId::new(), AgentId::new());
        let (first, second, others) = (
            transfers.token(agent),
            transfers.token(agent),
            transfers.token(other),
        );
        transfers.cancel(agent);
        assert!(first.is_cancelled() && second.is_cancelled());
        assert!(!others.is_cancelled());
        // A transfer begun later (refused by the revocation check) gets a
        // fresh token.
        assert!(!transfers.token(agent).is_cancelled());
    }
}
