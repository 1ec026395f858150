//! Questions for an agent connected to another controller (inspect, a
//! fleet `exec`, a container's live output, a git fetch, a resource
//! snapshot or restore): the asking controller's registry hands the
//! message to [`forward`], the agent's owner sends it on the agent's
//! stream ([`on_forward`]) and sends each answer back ([`reply`]), which
//! the asker's registry takes as if its own agent had answered
//! ([`on_reply`]). Assignments and cancels never go this way: only an
//! agent's owner sends those.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use berth_proto::v1::agent_message::Kind as Incoming;
use berth_proto::v1::controller_message::Kind as Outgoing;
use berth_proto::v1::{AgentMessage, ControllerMessage};
use berth_shared::id::AgentId;
use tracing::warn;

use super::{Cluster, Signal};
use crate::registry::Registry;
use crate::server::Context;
use crate::store::Store;

/// How long the owner waits to hand a question to its agent.
const SEND_WITHIN: Duration = Duration::from_secs(10);

fn encode(message: &impl prost::Message) -> String {
    base64::engine::general_purpose::STANDARD.encode(message.encode_to_vec())
}

fn decode<M: prost::Message + Default>(text: &str) -> Option<M> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    M::decode(bytes.as_slice()).ok()
}

/// Lets `registry` reach agents connected to the other controllers.
pub fn connect(cluster: &Arc<Cluster>, store: Store, registry: &Registry) {
    if !cluster.is_shared() {
        return;
    }
    let cluster = cluster.clone();
    registry.send_elsewhere_with(Arc::new(move |agent, message| {
        forward(&cluster, &store, agent, &message)
    }));
}

/// Sends `message` to `agent`'s owner; false when none serves now.
fn forward(cluster: &Cluster, store: &Store, agent: AgentId, message: &ControllerMessage) -> bool {
    if cluster.owned_elsewhere(store, agent).is_none() {
        return false;
    }
    cluster.signal(Signal::Forward {
        agent: agent.to_string(),
        msg: encode(message),
    });
    true
}

/// The request id of a question, and whether it withdraws one (a relay
/// stopped); `None` for what may not be forwarded.
fn question(message: &ControllerMessage) -> Option<(u64, bool)> {
    match message.kind.as_ref()? {
        Outgoing::Inspect(ask) => Some((ask.request_id, false)),
        Outgoing::Exec(ask) => Some((ask.request_id, false)),
        Outgoing::Follow(ask) => Some((ask.request_id, ask.stop)),
        Outgoing::Fetch(ask) => Some((ask.request_id, false)),
        Outgoing::ResourceAsk(ask) => Some((ask.request_id, false)),
        _ => None,
    }
}

/// The owner's side: sends another controller's question to this
/// controller's `agent`.
pub(super) fn on_forward(context: &Arc<Context>, from: String, agent: &str, msg: &str) {
    let (Ok(agent), Some(message)) = (agent.parse::<AgentId>(), decode::<ControllerMessage>(msg))
    else {
        warn!("an unreadable question from another controller; ignored");
        return;
    };
    let Some((request_id, withdraws)) = question(&message) else {
        warn!(%agent, "another controller sent a message that only an agent's owner may send; ignored");
        return;
    };
    let Some(outbound) = context.registry.outbound(agent) else {
        return;
    };
    if withdraws {
        context.registry.forget_relayed(request_id);
    } else {
        context.registry.note_relayed(agent, request_id, from);
    }
    context.tasks.spawn(async move {
        if !matches!(
            tokio::time::timeout(SEND_WITHIN, outbound.send(Ok(message))).await,
            Ok(Ok(()))
        ) {
            warn!(%agent, request_id, "a question from another controller could not be sent to the agent");
        }
    });
}

/// The request id of an answer, and whether it is the last one.
fn answer(kind: &Incoming) -> Option<(u64, bool)> {
    match kind {
        Incoming::Inspected(reply) => Some((reply.request_id, true)),
        Incoming::Output(output) => Some((output.request_id, false)),
        Incoming::Fetched(result) => Some((result.request_id, true)),
        Incoming::ExecOutput(output) => Some((output.request_id, output.finished)),
        Incoming::ResourceAnswer(answer) => Some((answer.request_id, true)),
        _ => None,
    }
}

/// The owner's side: an answer of this controller's `agent` goes back to
/// the controller that asked, if another did; the answer is handed back
/// when this controller asked.
pub fn reply(context: &Context, agent: AgentId, kind: Incoming) -> Option<Incoming> {
    let Some((request_id, last)) = answer(&kind) else {
        return Some(kind);
    };
    let Some(to) = context.registry.relayed_to(agent, request_id, last) else {
        return Some(kind);
    };
    context.cluster.signal(Signal::Reply {
        to,
        agent: agent.to_string(),
        msg: encode(&AgentMessage { kind: Some(kind) }),
    });
    None
}

/// The asker's side: an answer another controller's agent sent back.
pub(super) fn on_reply(context: &Context, agent: &str, msg: &str) {
    let (Ok(agent), Some(AgentMessage { kind: Some(kind) })) =
        (agent.parse::<AgentId>(), decode::<AgentMessage>(msg))
    else {
        warn!("an unreadable answer from another controller; ignored");
        return;
    };
    let registry = &context.registry;
    match kind {
        Incoming::Inspected(reply) => registry.answer(reply),
        Incoming::Output(output) => registry.relay(output),
        Incoming::Fetched(result) => registry.fetched(agent, result),
        Incoming::ExecOutput(output) => registry.exec_output(agent, output),
        Incoming::ResourceAnswer(answer) => registry.resource_answered(agent, answer),
        _ => warn!(%agent, "another controller sent back a message that is no answer; ignored"),
    }
}
