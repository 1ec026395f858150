//! One agent's stream: the session that reads its messages (hello,
//! heartbeats, task events, renewals) and the outbound stream that
//! carries assignments, cancels and acknowledgements back.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_proto::v1::agent_message::Kind as Incoming;
use berth_proto::v1::controller_message::Kind as Outgoing;
use berth_proto::v1::{AgentMessage, ControllerMessage, EventsAck, Hello, RenewRequest};
use berth_shared::id::{AgentId, TaskId};
use berth_shared::record::{Facts, Timestamp};
use tokio::sync::mpsc;
use tonic::{Status, Streaming};
use tracing::{debug, info, warn};

use crate::grpc::BoxStream;
use crate::ops::{Code, Error};
use crate::registry::Registration;
use crate::server::Context;
use crate::store::StoreError;

use super::{MAX_RUNNING, facts_from_wire, renew};

/// The latest acknowledgement per task, waiting to go out. The reader
/// never blocks on sending an ack: a newer ack for the same task replaces an
/// older one, so the agent's flood of events cannot stall the reader.
#[derive(Default)]
pub(super) struct Acks {
    pub(super) pending: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    pub(super) ready: tokio::sync::Notify,
}

impl Acks {
    pub(super) fn put(&self, ack: EventsAck) {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let upto = pending.entry(ack.task_id).or_default();
        *upto = (*upto).max(ack.upto);
        drop(pending);
        self.ready.notify_one();
    }

    pub(super) fn take(&self) -> Vec<ControllerMessage> {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pending
            .drain()
            .map(|(task_id, upto)| ControllerMessage {
                kind: Some(Outgoing::Ack(EventsAck { task_id, upto })),
            })
            .collect()
    }
}

/// State of one agent's response stream.
pub(super) struct Outflow {
    pub(super) receiver: mpsc::Receiver<Result<ControllerMessage, Status>>,
    pub(super) acks: Arc<Acks>,
    pub(super) ready: std::collections::VecDeque<ControllerMessage>,
    pub(super) registration: Registration,
    pub(super) shutdown: tokio_util::sync::CancellationToken,
    pub(super) done: bool,
}

/// The response stream: acks and messages from the channel until the
/// connection is cancelled (replaced or revoked) or the controller shuts down.
pub(super) fn outbound_stream(outflow: Outflow) -> BoxStream<ControllerMessage> {
    Box::pin(futures_util::stream::unfold(
        outflow,
        |mut flow| async move {
            if flow.done {
                return None;
            }
            loop {
                if let Some(message) = flow.ready.pop_front() {
                    return Some((Ok(message), flow));
                }
                tokio::select! {
                    message = flow.receiver.recv() => return message.map(|message| (message, flow)),
                    () = flow.acks.ready.notified() => flow.ready.extend(flow.acks.take()),
                    () = flow.registration.cancel.cancelled() => {
                        flow.done = true;
                        let err = Error::new(Code::AgentConnectionReplaced, "the controller closed this connection (replaced by a newer one, or the agent was revoked)");
                        return Some((Err(err.into()), flow));
                    }
                    () = flow.shutdown.cancelled() => {
                        flow.done = true;
                        let err = Error::new(Code::ControllerShuttingDown, "the controller is shutting down");
                        return Some((Err(err.into()), flow));
                    }
                }
            }
        },
    ))
}

pub(super) struct Session {
    pub(super) context: Arc<Context>,
    pub(super) acks: Arc<Acks>,
    pub(super) agent_id: AgentId,
    pub(super) name: String,
    pub(super) outbound: crate::registry::Outbound,
    pub(super) conn_id: u64,
    /// The certificate this connection was made with.
    pub(super) cert: berth_shared::pki::CertInfo,
    /// Counts this stream as connected while the session lasts.
    pub(super) _stream: crate::metrics::StreamGuard,
}

impl Session {
    pub(super) async fn run(
        self,
        mut inbound: Streaming<AgentMessage>,
        hello: Hello,
        cancel: tokio_util::sync::CancellationToken,
    ) {
        // Bounded: an agent runs a few tasks at a time, and each one
        // mentioned costs a look-up.
        if hello.running.len() > MAX_RUNNING {
            warn!(
                reported = hello.running.len(),
                "the hello lists more running tasks than any agent runs; only the first {MAX_RUNNING} are looked at"
            );
        }
        let running = &hello.running[..hello.running.len().min(MAX_RUNNING)];
        let known: HashSet<TaskId> = running
            .iter()
            .filter_map(|task| task.task_id.parse().ok())
            .collect();
        // Deployments the agent still has work of, active or not: a task
        // the controller gave up on (lost) must be stopped there too.
        let mentioned: HashSet<berth_shared::id::DeploymentId> = running
            .iter()
            .filter_map(|task| task.deployment_id.parse().ok())
            .collect();
        self.context
            .dispatcher
            .on_hello(
                self.agent_id,
                &self.name,
                &known,
                &mentioned,
                hello.free_slots,
            )
            .await;
        let idle = Duration::from_secs(u64::from(self.context.heartbeat_secs) * 4);
        // A link that died silently is noticed only a while later; the
        // agent has been away since it was last heard from.
        let mut last_heard = Instant::now();
        loop {
            let message = tokio::select! {
                () = cancel.cancelled() => break,
                () = self.context.shutdown.cancelled() => break,
                message = tokio::time::timeout(idle, inbound.message()) => message,
            };
            match message {
                Err(_) => {
                    warn!(
                        idle_secs = idle.as_secs(),
                        "agent silent too long; closing its stream"
                    );
                    break;
                }
                Ok(Ok(Some(message))) => {
                    last_heard = Instant::now();
                    self.handle(message).await;
                }
                Ok(Ok(None)) => break,
                Ok(Err(status)) => {
                    info!(code = ?status.code(), "agent stream ended: {}", status.message());
                    break;
                }
            }
        }
        self.context
            .registry
            .unregister(self.agent_id, self.conn_id, last_heard);
        self.context
            .cluster
            .lease(&self.context.store, self.agent_id, self.conn_id, false);
        let silent_ms = i64::try_from(last_heard.elapsed().as_millis()).unwrap_or(0);
        // Offline, unless it connected again meanwhile or the controller
        // is the one stopping.
        let offline = !self.context.shutdown.is_cancelled()
            && !self.context.registry.is_online(self.agent_id)
            && self
                .context
                .cluster
                .owned_elsewhere_now(&self.context.store, self.agent_id)
                .is_none();
        let seen = self.context.store.update_agent(self.agent_id, |record| {
            record.last_seen_at = Some(Timestamp(Timestamp::now().0 - silent_ms));
            if offline {
                record.offline_since = record.offline_since.or(record.last_seen_at);
            }
            Ok(())
        });
        if offline && seen.is_ok() {
            let noted = crate::webhooks::agent_event(
                &self.context.store,
                "agent.offline",
                self.agent_id,
                &self.name,
            );
            if let Err(err) = noted {
                warn!(error = %err, "the agent.offline webhook event could not be stored");
            }
        }
        if seen.is_ok() {
            let _ = self.context.store.flush().await;
        }
        info!("agent disconnected");
    }

    /// Stores the automatic labels when a heartbeat's facts change them (a
    /// renamed host), so selectors follow without waiting for a reconnect.
    pub(super) async fn refresh_auto_labels(&self, facts: &Facts) {
        let labels = berth_shared::labels::automatic_labels(facts);
        let known = self.context.registry.facts(self.agent_id);
        if known.is_some_and(|known| berth_shared::labels::automatic_labels(&known) == labels) {
            return;
        }
        let stored = self.context.store.update_agent(self.agent_id, |record| {
            record.record_facts(facts.clone());
            Ok(())
        });
        match stored {
            Ok(_) => {
                let _ = self.context.store.flush().await;
                self.context.registry.fleet_changed();
                info!(labels = %berth_shared::labels::format_labels(&labels), "automatic labels changed");
            }
            Err(err) => warn!(error = %err, "automatic labels not stored"),
        }
    }

    pub(super) async fn handle(&self, message: AgentMessage) {
        match message.kind {
            Some(Incoming::Heartbeat(beat)) => {
                let facts = beat.facts.map(|facts| facts_from_wire(Some(facts)));
                if let Some(facts) = &facts {
                    self.refresh_auto_labels(facts).await;
                }
                self.context
                    .registry
                    .heartbeat(self.agent_id, beat.free_slots, facts);
                // Bounded: an agent reports at most 1000 apps.
                let health: Vec<berth_proto::v1::AppHealth> =
                    beat.health.into_iter().take(1000).collect();
                let apps: Vec<berth_proto::v1::HostApp> =
                    beat.apps.into_iter().take(1000).collect();
                self.context.cluster.share_report(
                    &self.context.store,
                    self.agent_id,
                    &apps,
                    &health,
                );
                self.context.registry.report_health(self.agent_id, health);
                self.context
                    .dispatcher
                    .reconcile_reported(self.agent_id, &self.name, &apps)
                    .await;
                let repaired = self.context.registry.report_apps(self.agent_id, apps);
                for app in repaired {
                    self.context
                        .dispatcher
                        .record_repair(self.agent_id, &self.name, &app)
                        .await;
                }
                self.context.dispatcher.kick(self.agent_id).await;
            }
            Some(Incoming::Events(batch)) => {
                let task_id = batch.task_id.clone();
                match self
                    .context
                    .dispatcher
                    .on_events(self.agent_id, batch)
                    .await
                {
                    Ok(Some(ack)) => self.acks.put(ack),
                    Ok(None) => {}
                    // Not acknowledged: the agent keeps the events and sends them again.
                    // A full disk is reported once, by the store.
                    Err(err @ (StoreError::DiskFull(_) | StoreError::Reopening)) => {
                        debug!(%task_id, error = %err, "task events not stored");
                    }
                    Err(err) => warn!(%task_id, error = %err, "task events not stored"),
                }
            }
            Some(Incoming::Renew(renew)) => self.renew(renew).await,
            Some(Incoming::Refused(refused)) => {
                warn!(task_id = %refused.task_id, generation = refused.generation, reason = %refused.reason, "agent refused an assignment");
                let result = self
                    .context
                    .dispatcher
                    .on_refused(
                        self.agent_id,
                        &refused.task_id,
                        refused.generation,
                        &refused.reason,
                    )
                    .await;
                if let Err(err) = result {
                    warn!(error = %err, "could not record the refusal");
                }
            }
            // An answer to another controller's question goes back to it.
            Some(
                kind @ (Incoming::Inspected(_)
                | Incoming::Output(_)
                | Incoming::Fetched(_)
                | Incoming::ExecOutput(_)
                | Incoming::ResourceAnswer(_)),
            ) => {
                let Some(kind) = crate::cluster::relay::reply(&self.context, self.agent_id, kind)
                else {
                    return;
                };
                self.answered(kind);
            }
            Some(Incoming::Hello(_)) | None => warn!("unexpected message on an established stream"),
        }
    }

    /// Hands this agent's answer to whoever waits here.
    fn answered(&self, kind: Incoming) {
        match kind {
            Incoming::Inspected(reply) => self.context.registry.answer(reply),
            Incoming::Output(output) => self.context.registry.relay(output),
            Incoming::Fetched(result) => self.context.registry.fetched(self.agent_id, result),
            Incoming::ExecOutput(output) => {
                self.context.registry.exec_output(self.agent_id, output);
            }
            Incoming::ResourceAnswer(answer) => {
                self.context
                    .registry
                    .resource_answered(self.agent_id, answer);
            }
            _ => {}
        }
    }

    pub(super) async fn renew(&self, request: RenewRequest) {
        // An agent from before refusals were answered sends no clock and
        // would install an empty certificate from a refusal: it gets none.
        let understands_refusal = request.agent_now_ms != 0;
        let answer = renew::renew(
            &self.context,
            self.agent_id,
            &self.name,
            &self.cert,
            request,
        );
        let answer = answer.await;
        if answer.cert_pem.is_empty() && !understands_refusal {
            return;
        }
        self.send(Outgoing::Renewed(answer)).await;
    }

    pub(super) async fn send(&self, kind: Outgoing) {
        let _ = self
            .outbound
            .send(Ok(ControllerMessage { kind: Some(kind) }))
            .await;
    }
}
