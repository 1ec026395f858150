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
use berth_shared::id::{AgentId, DeploymentId};
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

/// A question's request id, whether it withdraws one (a relay stopped),
/// and the deployment it is about (a relay's); `None` for what may not be
/// forwarded.
fn question(message: &ControllerMessage) -> Option<(u64, bool, Option<DeploymentId>)> {
    match message.kind.as_ref()? {
        Outgoing::Inspect(ask) => Some((ask.request_id, false, None)),
        Outgoing::Exec(ask) => Some((ask.request_id, false, None)),
        Outgoing::Follow(ask) => Some((ask.request_id, ask.stop, ask.deployment_id.parse().ok())),
        Outgoing::Fetch(ask) => Some((ask.request_id, false, None)),
        Outgoing::ResourceAsk(ask) => Some((ask.request_id, false, None)),
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
    let Some((request_id, withdraws, deployment)) = question(&message) else {
        warn!(%agent, "another controller sent a message that only an agent's owner may send; ignored");
        return;
    };
    let Some(outbound) = context.registry.outbound(agent) else {
        return;
    };
    if withdraws {
        context.registry.forget_relayed(request_id);
    } else {
        context
            .registry
            .note_relayed(agent, request_id, from, deployment);
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
/// the controller that asked, if another did, with its deployments'
/// secret values masked here (they never pass through the database in
/// clear); the answer is handed back when this controller asked.
pub fn reply(context: &Context, agent: AgentId, kind: Incoming) -> Option<Incoming> {
    let Some((request_id, last)) = answer(&kind) else {
        return Some(kind);
    };
    let Some((to, deployment)) = context.registry.relayed_to(agent, request_id, last) else {
        return Some(kind);
    };
    let kind = masked(context, deployment, kind);
    context.cluster.signal(Signal::Reply {
        to,
        agent: agent.to_string(),
        msg: encode(&AgentMessage { kind: Some(kind) }),
    });
    None
}

/// An answer with the secret values of its deployments masked: a
/// container relay's lines by the relay's deployment (dropped when it is
/// unknown), an inspect's containers each by its own.
fn masked(context: &Context, deployment: Option<DeploymentId>, mut kind: Incoming) -> Incoming {
    match &mut kind {
        Incoming::Output(output) => match deployment {
            Some(id) => context.dispatcher.mask_texts(id, output.lines.iter_mut()),
            None => output.lines.clear(),
        },
        Incoming::Inspected(reply) => {
            reply.json = crate::ops::agents::masked_json(context, &reply.json).unwrap_or_default();
        }
        _ => {}
    }
    kind
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

#[cfg(test)]
mod tests {
    use berth_proto::v1::ContainerOutput;
    use berth_shared::record::{SecretRef, SecretScope, with_secrets};
    use zeroize::Zeroizing;

    use super::*;

    /// A container's output relayed to another controller leaves this one
    /// with its deployment's secret values masked; one this controller
    /// asked for itself comes back untouched.
    #[tokio::test(flavor = "multi_thread")]
    async fn relayed_container_output_is_masked_before_it_leaves_the_owner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let context = crate::testing::context(dir.path()).await;
        let scope = SecretScope::app("a", "default").expect("scope");
        let admin = crate::testing::user("root", crate::store::Role::Admin);
        let set = crate::ops::secrets::set(
            &context,
            &admin,
            &scope,
            "TOKEN",
            Zeroizing::new("hunter2-very-secret".to_string()),
        )
        .await
        .expect("set");
        let mut deployment = crate::testing::deployment(&["h1"], 0);
        deployment.variables = with_secrets(
            Vec::new(),
            &[SecretRef {
                name: "TOKEN".into(),
                scope,
                version: set.version,
            }],
        );
        context
            .store
            .create_deployment(&deployment, true, false)
            .expect("create");
        let agent = deployment.tasks[0].agent_id;
        context
            .registry
            .note_relayed(agent, 77, "elsewhere".into(), Some(deployment.id));
        let output = |request_id| {
            Incoming::Output(ContainerOutput {
                request_id,
                lines: vec!["token is hunter2-very-secret".into()],
                ended: false,
            })
        };
        // Asked by another controller: signalled away, nothing handed back.
        assert!(reply(&context, agent, output(77)).is_none());
        // This controller's own relay is handed back as the agent sent it.
        let Some(Incoming::Output(mine)) = reply(&context, agent, output(78)) else {
            panic!("this controller's own relay is handed back");
        };
        assert_eq!(mine.lines, ["token is hunter2-very-secret"]);
        // What goes to the other controller is masked.
        let Incoming::Output(sent) = masked(&context, Some(deployment.id), output(77)) else {
            panic!("an output");
        };
        assert_eq!(sent.lines, ["token is ***"]);
        let Incoming::Output(unknown) = masked(&context, None, output(77)) else {
            panic!("an output");
        };
        assert!(unknown.lines.is_empty(), "{:?}", unknown.lines);
    }
}
