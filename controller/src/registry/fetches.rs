//! Git fetches asked of a build agent (`berth hook`): the request goes out
//! on the agent's stream, the agent uploads the bundle under the request's
//! id (allowed only while the fetch waits, and only for that agent) and
//! answers with a `FetchResult`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use berth_proto::v1::controller_message::Kind as Outgoing;
use berth_proto::v1::{ControllerMessage, FetchRequest, FetchResult};
use berth_shared::id::AgentId;

use super::Registry;
use super::awaited::Unanswered;

impl Registry {
    /// Asks `agent` to fetch; its answer, or why there is none.
    pub async fn fetch(
        &self,
        agent: AgentId,
        mut request: FetchRequest,
        timeout: Duration,
    ) -> Result<FetchResult, String> {
        request.request_id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        request.timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let request_id = request.request_id;
        let message = ControllerMessage {
            kind: Some(Outgoing::Fetch(request)),
        };
        let wait = timeout + Duration::from_secs(30);
        self.ask_awaited(&self.fetches, agent, request_id, message, wait)
            .await
            .map_err(|why| match why {
                Unanswered::NotSent => {
                    "the fetch could not be sent to the build agent (it went offline?)".to_string()
                }
                Unanswered::Lost => "the build agent's answer was lost".to_string(),
                Unanswered::TimedOut => format!(
                    "the build agent did not answer within {}s",
                    timeout.as_secs()
                ),
            })
    }

    /// True while `agent` owes an answer to fetch `request_id` (so it may
    /// upload that fetch's bundle).
    pub fn holds_fetch(&self, agent: AgentId, request_id: u64) -> bool {
        self.fetches.holds(agent, request_id)
    }

    /// Delivers a fetch's answer, only from the agent that was asked.
    pub fn fetched(&self, agent: AgentId, result: FetchResult) {
        let request_id = result.request_id;
        if !self.fetches.deliver(agent, request_id, result) {
            tracing::warn!(%agent, request_id, "a fetch answer from an agent that was not asked; ignored");
        }
    }
}
