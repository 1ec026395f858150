//! `Agent.Connect` (the long-lived agent stream) and `Agent.GetBlob`.
//!
//! One task reads the agent's messages; the response stream drains a bounded
//! channel that the dispatcher and this task write to. The stream ends when
//! the agent goes away, a newer connection replaces it, the agent is
//! revoked, or the controller shuts down.

use std::collections::HashSet;

use std::sync::Arc;
use std::time::{Duration, Instant};

mod renew;
mod transfer;

use super::BoxStream;
use berth_proto::v1::agent_message::Kind as Incoming;
use berth_proto::v1::agent_server::Agent;
use berth_proto::v1::controller_message::Kind as Outgoing;
use berth_proto::v1::{
    AgentMessage, BlobChunk, ControllerMessage, EventsAck, GetBlobRequest, Hello, HostFacts,
    RenewRequest, Welcome,
};
use berth_shared::id::{AgentId, TaskId};
use berth_shared::record::{Facts, Timestamp};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};
use tracing::{Instrument, debug, info, info_span, warn};

use super::auth::caller;
use super::enroll::check_protocol;
use crate::registry::Registration;
use crate::server::Context;
use crate::store::StoreError;

/// Capacity of one agent's outbound queue.
const OUTBOUND_CAPACITY: usize = 256;

pub struct AgentApi {
    context: Arc<Context>,
}

impl AgentApi {
    pub fn new(context: Arc<Context>) -> AgentApi {
        AgentApi { context }
    }
}

/// Converts wire facts to the stored form.
/// Agents are not trusted to send sane facts: strings are cut and numbers
/// that JSON cannot hold (NaN, infinities) become 0.
pub fn facts_from_wire(facts: Option<HostFacts>) -> Facts {
    const MAX_FACT: usize = 256;
    let cut = |mut text: String| {
        if text.len() > MAX_FACT {
            let mut end = MAX_FACT;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        text
    };
    let facts = facts.unwrap_or_default();
    Facts {
        hostname: cut(facts.hostname),
        os: cut(facts.os),
        os_family: cut(facts.os_family),
        os_version: cut(facts.os_version),
        kernel: cut(facts.kernel),
        arch: cut(facts.arch),
        cpus: facts.cpus,
        memory_total_bytes: facts.memory_total_bytes,
        memory_used_bytes: facts.memory_used_bytes,
        disk_total_bytes: facts.disk_total_bytes,
        disk_free_bytes: facts.disk_free_bytes,
        uptime_secs: facts.uptime_secs,
        docker_version: cut(facts.docker_version),
        docker_error: cut(facts.docker_error),
        load_1m: if facts.load_1m.is_finite() {
            facts.load_1m
        } else {
            0.0
        },
    }
}

/// The agent id of an authenticated agent caller.
fn agent_of(caller: &super::auth::Caller) -> Result<AgentId, Status> {
    caller
        .principal
        .id
        .parse()
        .map_err(|_| Status::unauthenticated("malformed agent identity"))
}

#[tonic::async_trait]
impl Agent for AgentApi {
    type OpenStreamStream = BoxStream<ControllerMessage>;
    type GetBlobStream = BoxStream<BlobChunk>;

    async fn open_stream(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::OpenStreamStream>, Status> {
        let caller = caller(&request)?;
        let agent_id = agent_of(&caller)?;
        let cert = peer_cert(&request)?;
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(Duration::from_secs(10), inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no hello within 10s"))??;
        let Some(AgentMessage {
            kind: Some(Incoming::Hello(hello)),
        }) = first
        else {
            return Err(Status::invalid_argument(
                "the first message on the stream must be a hello",
            ));
        };
        check_protocol(hello.protocol_version)?;
        let facts = facts_from_wire(hello.facts.clone());
        let name = record_hello(&self.context, agent_id, &hello, &facts).await?;
        retire_replaced(&self.context, agent_id, &cert.serial).await?;

        let (outbound, receiver) = mpsc::channel(OUTBOUND_CAPACITY);
        // No free slots until the hello is reconciled, so nothing is
        // assigned to this connection before the controller knows what the
        // agent already runs.
        let registration = self
            .context
            .registry
            .register(agent_id, outbound.clone(), 0, facts);
        // A revocation that landed between the hello check and the
        // registration would otherwise miss this stream.
        if self.context.store.get_agent(agent_id)?.is_revoked() {
            self.context.registry.disconnect(agent_id);
            return Err(Status::permission_denied(
                "this agent was revoked; join again with a new token",
            ));
        }
        let welcome = Outgoing::Welcome(Welcome {
            agent_id: agent_id.to_string(),
            name: name.clone(),
            heartbeat_secs: self.context.heartbeat_secs,
            now_ms: berth_shared::time::now_ms(),
        });
        let _ = outbound
            .send(Ok(ControllerMessage {
                kind: Some(welcome),
            }))
            .await;

        let span = info_span!("agent_stream", %agent_id, agent = %name);
        let acks = Arc::new(Acks::default());
        let session = Session {
            context: self.context.clone(),
            acks: acks.clone(),
            agent_id,
            name,
            outbound,
            conn_id: registration.conn_id,
            cert,
        };
        let cancel = registration.cancel.clone();
        self.context
            .tasks
            .spawn(session.run(inbound, hello, cancel).instrument(span));
        Ok(Response::new(outbound_stream(Outflow {
            receiver,
            acks,
            ready: std::collections::VecDeque::new(),
            registration,
            shutdown: self.context.shutdown.clone(),
            done: false,
        })))
    }

    async fn put_build_result(
        &self,
        request: Request<Streaming<berth_proto::v1::PutBlobChunk>>,
    ) -> Result<Response<berth_proto::v1::PutBlobResponse>, Status> {
        let agent_id = agent_of(&caller(&request)?)?;
        let stored = transfer::put_build_result(&self.context, agent_id, request.into_inner());
        Ok(Response::new(stored.await?))
    }

    async fn get_blob(
        &self,
        request: Request<GetBlobRequest>,
    ) -> Result<Response<Self::GetBlobStream>, Status> {
        let agent_id = agent_of(&caller(&request)?)?;
        let stream = transfer::get_blob(&self.context, agent_id, request.into_inner());
        Ok(Response::new(stream.await?))
    }
}

/// Most running tasks of a hello that are looked at.
const MAX_RUNNING: usize = 1024;

/// Longest agent version stored and logged.
const MAX_VERSION: usize = 64;

/// Serial and validity of the certificate a connection was made with.
fn peer_cert<T>(request: &Request<T>) -> Result<berth_shared::pki::CertInfo, Status> {
    request
        .peer_certs()
        .and_then(|certs| certs.first().cloned())
        .and_then(|leaf| berth_shared::pki::cert_info(&leaf).ok())
        .ok_or_else(|| Status::unauthenticated("the client certificate could not be read"))
}

/// Once a connection uses an agent's newest certificate, the older one is
/// retired: it is refused from now on.
async fn retire_replaced(context: &Context, agent_id: AgentId, serial: &str) -> Result<(), Status> {
    let retired = context.store.retire_older_serials(agent_id, serial)?;
    if !retired.is_empty() {
        context.store.flush().await?;
        info!(%agent_id, serial, retired = ?retired, "older agent certificates retired");
    }
    Ok(())
}

/// Stores what the hello says and returns the agent's name.
async fn record_hello(
    context: &Context,
    agent_id: AgentId,
    hello: &Hello,
    facts: &Facts,
) -> Result<String, Status> {
    let (record, ()) = context.store.update_agent(agent_id, |record| {
        if record.is_revoked() {
            return Err(crate::store::StoreError::Refused(format!(
                "agent {} was revoked; join again with a new token",
                record.name
            )));
        }
        // Every hello field is bounded: a 100 KB version is not stored.
        record.version = Some(berth_shared::text::clip(&hello.agent_version, MAX_VERSION));
        record.record_facts(facts.clone());
        record.last_seen_at = Some(Timestamp::now());
        Ok(())
    })?;
    context.store.flush().await?;
    let version = record.version.as_deref().unwrap_or_default();
    info!(%agent_id, name = %record.name, version, running = hello.running.len(), "agent connected");
    Ok(record.name)
}

/// The latest acknowledgement per task, waiting to go out. The reader
/// never blocks on sending an ack: a newer ack for the same task replaces an
/// older one, so the agent's flood of events cannot stall the reader.
#[derive(Default)]
struct Acks {
    pending: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    ready: tokio::sync::Notify,
}

impl Acks {
    fn put(&self, ack: EventsAck) {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let upto = pending.entry(ack.task_id).or_default();
        *upto = (*upto).max(ack.upto);
        drop(pending);
        self.ready.notify_one();
    }

    fn take(&self) -> Vec<ControllerMessage> {
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
struct Outflow {
    receiver: mpsc::Receiver<Result<ControllerMessage, Status>>,
    acks: Arc<Acks>,
    ready: std::collections::VecDeque<ControllerMessage>,
    registration: Registration,
    shutdown: tokio_util::sync::CancellationToken,
    done: bool,
}

/// The response stream: acks and messages from the channel until the
/// connection is cancelled (replaced or revoked) or the controller shuts down.
fn outbound_stream(outflow: Outflow) -> BoxStream<ControllerMessage> {
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
                        let status = Status::aborted("the controller closed this connection (replaced by a newer one, or the agent was revoked)");
                        return Some((Err(status), flow));
                    }
                    () = flow.shutdown.cancelled() => {
                        flow.done = true;
                        return Some((Err(Status::unavailable("the controller is shutting down")), flow));
                    }
                }
            }
        },
    ))
}

struct Session {
    context: Arc<Context>,
    acks: Arc<Acks>,
    agent_id: AgentId,
    name: String,
    outbound: crate::registry::Outbound,
    conn_id: u64,
    /// The certificate this connection was made with.
    cert: berth_shared::pki::CertInfo,
}

impl Session {
    async fn run(
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
        let silent_ms = i64::try_from(last_heard.elapsed().as_millis()).unwrap_or(0);
        let seen = self.context.store.update_agent(self.agent_id, |record| {
            record.last_seen_at = Some(Timestamp(Timestamp::now().0 - silent_ms));
            Ok(())
        });
        if seen.is_ok() {
            let _ = self.context.store.flush().await;
        }
        info!("agent disconnected");
    }

    /// Stores the automatic labels when a heartbeat's facts change them (a
    /// renamed host), so selectors follow without waiting for a reconnect.
    async fn refresh_auto_labels(&self, facts: &Facts) {
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

    async fn handle(&self, message: AgentMessage) {
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
                let health = beat.health.into_iter().take(1000).collect();
                self.context.registry.report_health(self.agent_id, health);
                let apps: Vec<berth_proto::v1::HostApp> =
                    beat.apps.into_iter().take(1000).collect();
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
            Some(Incoming::Inspected(reply)) => self.context.registry.answer(reply),
            Some(Incoming::Output(output)) => self.context.registry.relay(output),
            Some(Incoming::ExecOutput(output)) => {
                self.context.registry.exec_output(self.agent_id, output);
            }
            Some(Incoming::Hello(_)) | None => warn!("unexpected message on an established stream"),
        }
    }

    async fn renew(&self, request: RenewRequest) {
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

    async fn send(&self, kind: Outgoing) {
        let _ = self
            .outbound
            .send(Ok(ControllerMessage { kind: Some(kind) }))
            .await;
    }
}
