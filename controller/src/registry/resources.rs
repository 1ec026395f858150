//! Questions about an app's resources asked of one agent (`berth
//! resource snapshots`, `berth resource restore`), answered on its stream.

use std::sync::atomic::Ordering;
use std::time::Duration;

use berth_proto::v1::controller_message::Kind as Outgoing;
use berth_proto::v1::{ControllerMessage, ResourceAnswer, ResourceAsk};
use berth_shared::id::AgentId;

use super::Registry;
use super::awaited::Unanswered;

impl Registry {
    /// Asks `agent`; its answer, or why there is none within `timeout`.
    pub async fn ask_resource(
        &self,
        agent: AgentId,
        mut ask: ResourceAsk,
        timeout: Duration,
    ) -> Result<ResourceAnswer, String> {
        ask.request_id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let request_id = ask.request_id;
        let message = ControllerMessage {
            kind: Some(Outgoing::ResourceAsk(ask)),
        };
        self.ask_awaited(&self.resource_asks, agent, request_id, message, timeout)
            .await
            .map_err(|why| match why {
                Unanswered::NotSent => {
                    "the host is offline, or the question could not be sent to it".to_string()
                }
                Unanswered::Lost => "the host's answer was lost".to_string(),
                Unanswered::TimedOut => {
                    format!("the host did not answer within {}s", timeout.as_secs())
                }
            })
    }

    /// Delivers an answer, only from the agent that was asked.
    pub fn resource_answered(&self, agent: AgentId, answer: ResourceAnswer) {
        let request_id = answer.request_id;
        if !self.resource_asks.deliver(agent, request_id, answer) {
            tracing::warn!(%agent, request_id, "a resource answer from an agent that was not asked; ignored");
        }
    }
}
