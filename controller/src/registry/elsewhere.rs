//! Questions for agents connected to another controller of the store
//! (`cluster.rs`): a question this controller asks goes to the agent's
//! owner, which sends it on the agent's stream and sends the agent's
//! answers back; questions other controllers ask of this one's agents are
//! remembered by request id until answered, so their answers go back to
//! whoever asked. Request ids start at a random point in every
//! controller, so two controllers' ids never meet on one agent's stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use berth_proto::v1::ControllerMessage;
use berth_shared::id::{AgentId, DeploymentId};

use super::Registry;

/// Sends a message to an agent connected to another controller; false
/// when no controller serving now holds it.
pub type Elsewhere = Arc<dyn Fn(AgentId, ControllerMessage) -> bool + Send + Sync>;

/// How long a relayed question with no final answer is remembered (a
/// container's output followed for hours).
const REMEMBER: Duration = Duration::from_secs(24 * 3600);

/// Who asked a relayed question: the agent asked, the controller that
/// asked, the deployment it is about (a container relay's), and when.
struct Asked {
    agent: AgentId,
    from: String,
    deployment: Option<DeploymentId>,
    at: Instant,
}

/// Questions other controllers asked of this one's agents.
#[derive(Default)]
pub(super) struct Relayed {
    asked: Mutex<HashMap<u64, Asked>>,
}

impl Relayed {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Asked>> {
        self.asked.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Registry {
    /// Where messages for agents connected elsewhere go.
    pub fn send_elsewhere_with(&self, elsewhere: Elsewhere) {
        let _ = self.elsewhere.set(elsewhere);
    }

    /// Sends a question to `agent`, on its stream here or through the
    /// controller it is connected to; false when it is connected nowhere
    /// or the send did not go out within `timeout`.
    pub(super) async fn deliver(
        &self,
        agent: AgentId,
        message: ControllerMessage,
        timeout: Duration,
    ) -> bool {
        if let Some(outbound) = self.outbound(agent) {
            return matches!(
                tokio::time::timeout(timeout, outbound.send(Ok(message))).await,
                Ok(Ok(()))
            );
        }
        self.elsewhere
            .get()
            .is_some_and(|elsewhere| elsewhere(agent, message))
    }

    /// Controller `from` asked `request_id` of this controller's `agent`
    /// (about `deployment`, for a container relay).
    pub fn note_relayed(
        &self,
        agent: AgentId,
        request_id: u64,
        from: String,
        deployment: Option<DeploymentId>,
    ) {
        let mut asked = self.relayed.lock();
        asked.retain(|_, asked| asked.at.elapsed() < REMEMBER);
        asked.insert(
            request_id,
            Asked {
                agent,
                from,
                deployment,
                at: Instant::now(),
            },
        );
    }

    /// The controller that asked `agent` `request_id`, when another did,
    /// and the deployment the question is about; `last` forgets the
    /// question (its final answer).
    pub fn relayed_to(
        &self,
        agent: AgentId,
        request_id: u64,
        last: bool,
    ) -> Option<(String, Option<DeploymentId>)> {
        let mut asked = self.relayed.lock();
        let found = asked
            .get(&request_id)
            .filter(|asked| asked.agent == agent)
            .map(|asked| (asked.from.clone(), asked.deployment))?;
        if last {
            asked.remove(&request_id);
        }
        Some(found)
    }

    /// A relayed question was withdrawn (a relay stopped).
    pub fn forget_relayed(&self, request_id: u64) {
        self.relayed.lock().remove(&request_id);
    }
}
