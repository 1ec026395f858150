//! Answers the controller waits for from one agent, by request id: only
//! the agent asked may answer, and an answer nobody waits for is dropped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use berth_proto::v1::ControllerMessage;
use berth_shared::id::AgentId;
use tokio::sync::oneshot;

use super::Registry;

/// How long a question may take to go out to its agent.
const SEND_WITHIN: Duration = Duration::from_secs(10);

/// Why an awaited answer did not come.
pub enum Unanswered {
    /// The agent is connected nowhere, or the question did not go out.
    NotSent,
    /// The answer's channel closed without it.
    Lost,
    /// No answer within the wait.
    TimedOut,
}

pub struct Awaited<T> {
    waiting: Mutex<HashMap<u64, (AgentId, oneshot::Sender<T>)>>,
}

impl<T> Default for Awaited<T> {
    fn default() -> Self {
        Awaited {
            waiting: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> Awaited<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (AgentId, oneshot::Sender<T>)>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for `agent`'s answer to `request_id`.
    pub fn expect(&self, request_id: u64, agent: AgentId) -> oneshot::Receiver<T> {
        let (answer, reply) = oneshot::channel();
        self.lock().insert(request_id, (agent, answer));
        reply
    }

    /// Stops waiting (answered, or given up on).
    pub fn forget(&self, request_id: u64) {
        self.lock().remove(&request_id);
    }

    /// True while `agent` owes the answer to `request_id`.
    pub fn holds(&self, agent: AgentId, request_id: u64) -> bool {
        self.lock()
            .get(&request_id)
            .is_some_and(|(asked, _)| *asked == agent)
    }

    /// Hands an answer to whoever waits; false when `agent` was not asked.
    pub fn deliver(&self, agent: AgentId, request_id: u64, value: T) -> bool {
        let mut waiting = self.lock();
        if waiting
            .get(&request_id)
            .is_none_or(|(asked, _)| *asked != agent)
        {
            return false;
        }
        if let Some((_, sender)) = waiting.remove(&request_id) {
            let _ = sender.send(value);
        }
        true
    }
}

impl Registry {
    /// Sends `message` (asking `request_id`) to `agent` and waits up to
    /// `wait` for its answer in `awaited`; the question is forgotten
    /// either way.
    pub(super) async fn ask_awaited<T>(
        &self,
        awaited: &Awaited<T>,
        agent: AgentId,
        request_id: u64,
        message: ControllerMessage,
        wait: Duration,
    ) -> Result<T, Unanswered> {
        let reply = awaited.expect(request_id, agent);
        let result = if self.deliver(agent, message, SEND_WITHIN).await {
            match tokio::time::timeout(wait, reply).await {
                Ok(Ok(answer)) => Ok(answer),
                Ok(Err(_)) => Err(Unanswered::Lost),
                Err(_) => Err(Unanswered::TimedOut),
            }
        } else {
            Err(Unanswered::NotSent)
        };
        awaited.forget(request_id);
        result
    }
}
