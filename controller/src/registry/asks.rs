//! Questions the controller asks a connected agent and the answers that
//! come back on its stream: inspect, a fleet exec's output, and a
//! container's live output relayed to `berth logs -f`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use berth_proto::v1::controller_message::Kind as Outgoing;
use berth_proto::v1::{ControllerMessage, InspectReply, InspectRequest};
use berth_shared::id::AgentId;
use tokio::sync::mpsc;

use super::Registry;

impl Registry {
    /// Asks a connected agent what berth runs on it; `None` when it is not
    /// connected or does not answer within `timeout`.
    pub async fn inspect(
        &self,
        agent: AgentId,
        app: &str,
        timeout: Duration,
    ) -> Option<InspectReply> {
        let request_id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (answer, reply) = tokio::sync::oneshot::channel();
        self.inquiries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(request_id, answer);
        let request = ControllerMessage {
            kind: Some(Outgoing::Inspect(InspectRequest {
                request_id,
                app: app.to_string(),
            })),
        };
        let result = if self.deliver(agent, request, timeout).await {
            tokio::time::timeout(timeout, reply)
                .await
                .ok()
                .and_then(Result::ok)
        } else {
            None
        };
        self.inquiries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&request_id);
        result
    }

    /// Delivers an agent's answer to whoever asked.
    pub fn answer(&self, reply: InspectReply) {
        let waiting = self
            .inquiries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&reply.request_id);
        if let Some(waiting) = waiting {
            let _ = waiting.send(reply);
        }
    }
}

impl Registry {
    /// Asks a connected agent to run `argv`; its output arrives on the
    /// receiver, ending with a `finished` message. `None` when the agent is
    /// not connected or the request cannot be sent within `send_timeout`.
    pub async fn exec(
        &self,
        agent: AgentId,
        argv: &[String],
        timeout: Duration,
        send_timeout: Duration,
    ) -> Option<(u64, mpsc::UnboundedReceiver<berth_proto::v1::ExecOutput>)> {
        let request_id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = mpsc::unbounded_channel();
        self.lock_execs().insert(request_id, (agent, sender));
        let request = ControllerMessage {
            kind: Some(Outgoing::Exec(berth_proto::v1::ExecRequest {
                request_id,
                argv: argv.to_vec(),
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            })),
        };
        if self.deliver(agent, request, send_timeout).await {
            Some((request_id, receiver))
        } else {
            self.end_exec(request_id);
            None
        }
    }

    /// Delivers exec output, only from the agent that was asked.
    pub fn exec_output(&self, agent: AgentId, output: berth_proto::v1::ExecOutput) {
        let mut execs = self.lock_execs();
        let Some((asked, sender)) = execs.get(&output.request_id) else {
            return;
        };
        if *asked != agent {
            tracing::warn!(%agent, request_id = output.request_id, "exec output from an agent that was not asked; ignored");
            return;
        }
        let (request_id, finished) = (output.request_id, output.finished);
        let delivered = sender.send(output).is_ok();
        if finished || !delivered {
            execs.remove(&request_id);
        }
    }

    /// Forgets an exec (answered, or given up on).
    pub fn end_exec(&self, request_id: u64) {
        self.lock_execs().remove(&request_id);
    }

    fn lock_execs(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        HashMap<u64, (AgentId, mpsc::UnboundedSender<berth_proto::v1::ExecOutput>)>,
    > {
        self.execs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A live relay of one container's output from an agent.
pub struct Relay {
    pub request_id: u64,
    pub agent: AgentId,
    pub output: mpsc::Receiver<berth_proto::v1::ContainerOutput>,
}

impl Registry {
    /// Asks an agent to relay a deployment's container output.
    pub async fn follow_container(
        &self,
        agent: AgentId,
        mut request: berth_proto::v1::FollowContainer,
    ) -> Option<Relay> {
        request.request_id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (sender, output) = mpsc::channel(256);
        self.relays
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(request.request_id, sender);
        let request_id = request.request_id;
        let message = ControllerMessage {
            kind: Some(Outgoing::Follow(request)),
        };
        if !self.deliver(agent, message, Duration::from_secs(5)).await {
            self.relays
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&request_id);
            return None;
        }
        Some(Relay {
            request_id,
            agent,
            output,
        })
    }

    /// Ends a relay on the agent's side and forgets it.
    pub async fn unfollow(&self, relay: &Relay) {
        self.relays
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&relay.request_id);
        let stop = berth_proto::v1::FollowContainer {
            request_id: relay.request_id,
            stop: true,
            ..Default::default()
        };
        let message = ControllerMessage {
            kind: Some(Outgoing::Follow(stop)),
        };
        let _ = self
            .deliver(relay.agent, message, Duration::from_secs(5))
            .await;
    }

    /// Routes relayed output to whoever follows it; never blocks the
    /// agent's stream (a follower too slow to keep up loses lines).
    pub fn relay(&self, output: berth_proto::v1::ContainerOutput) {
        let relays = self
            .relays
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(sender) = relays.get(&output.request_id) {
            let _ = sender.try_send(output);
        }
    }
}
