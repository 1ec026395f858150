//! `Agent.Connect` (the long-lived agent stream) and `Agent.GetBlob`.
//!
//! One task reads the agent's messages; the response stream drains a bounded
//! channel that the dispatcher and this task write to. The stream ends when
//! the agent goes away, a newer connection replaces it, the agent is
//! revoked, or the controller shuts down.

use std::sync::Arc;
use std::time::Duration;

mod renew;
mod session;
mod transfer;
use session::{Acks, Outflow, Session, outbound_stream};

use super::BoxStream;
use berth_proto::v1::agent_message::Kind as Incoming;
use berth_proto::v1::agent_server::Agent;
use berth_proto::v1::controller_message::Kind as Outgoing;
use berth_proto::v1::{
    AgentMessage, BlobChunk, ControllerMessage, GetBlobRequest, Hello, HostFacts, Welcome,
};
use berth_shared::id::AgentId;
use berth_shared::record::{Facts, Timestamp};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};
use tracing::{Instrument, info, info_span};

use super::auth::caller;
use super::enroll::check_protocol;
use crate::ops::{Code, Error};
use crate::server::Context;

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
        .map_err(|_| Error::new(Code::AuthUnauthenticated, "malformed agent identity").into())
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
            .map_err(|_| Error::new(Code::AgentNoHello, "no hello within 10s"))??;
        let Some(AgentMessage {
            kind: Some(Incoming::Hello(hello)),
        }) = first
        else {
            return Err(Error::new(
                Code::AgentNoHello,
                "the first message on the stream must be a hello",
            )
            .into());
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
        self.context
            .cluster
            .lease(&self.context.store, agent_id, registration.conn_id, true);
        // A revocation that landed between the hello check and the
        // registration would otherwise miss this stream.
        if self.context.store.get_agent(agent_id)?.is_revoked() {
            self.context.registry.disconnect(agent_id);
            return Err(Error::new(
                Code::AuthRevoked,
                "this agent was revoked; join again with a new token",
            )
            .into());
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
        let stream = self.context.metrics.stream_opened(registration.reconnect);
        let session = Session {
            _stream: stream,
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
        .ok_or_else(|| {
            Error::new(
                Code::AuthUnauthenticated,
                "the client certificate could not be read",
            )
            .into()
        })
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
    let (record, back_online) = context.store.update_agent(agent_id, |record| {
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
        Ok(record.offline_since.take().is_some())
    })?;
    if back_online {
        crate::webhooks::agent_event(&context.store, "agent.online", agent_id, &record.name)?;
    }
    context.store.flush().await?;
    let version = record.version.as_deref().unwrap_or_default();
    info!(%agent_id, name = %record.name, version, running = hello.running.len(), "agent connected");
    Ok(record.name)
}
