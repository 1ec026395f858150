//! The connection loop: dial the controller with mTLS, open the stream, say
//! hello, then pump: heartbeats, outbox events (resending everything not yet
//! acknowledged), assignments and acks. On any failure it reconnects with
//! exponential backoff and full jitter; tasks keep running meanwhile.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use berth_proto::v1::agent_client::AgentClient;
use berth_proto::v1::agent_message::Kind as Outgoing;
use berth_proto::v1::controller_message::Kind as Incoming;
use berth_proto::v1::{AgentMessage, AssignRefused, Heartbeat, Hello};
use berth_proto::{CONTROLLER_TLS_NAME, MAX_MESSAGE_BYTES, PROTOCOL_VERSION};
use berth_shared::id::TaskId;
use rand::Rng;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Streaming};
use tracing::{info, warn};

mod answers;
mod batches;
mod renewal;

use crate::Agent;
use crate::runner::{self, Accepted};
use answers::{inspect, relay};
use renewal::Renewal;

/// First and largest reconnect delay.
const BACKOFF_START: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Why a session ended.
enum Ended {
    /// The link broke or the controller went away: reconnect.
    Retry(anyhow::Error),
    /// The controller refuses this agent for good.
    Refused(String),
    /// A renewed certificate was installed: reconnect at once with it, so
    /// the controller retires the old one.
    Renewed,
    Shutdown,
}

/// The controller refuses this agent for good: it was revoked, or it speaks
/// a protocol version the controller does not serve. `berth-agent run`
/// exits with [`Refused::EXIT_CODE`] then, which its systemd unit does not
/// restart (`RestartPreventExitStatus=`).
#[derive(Debug, thiserror::Error)]
#[error("the controller refused this agent: {0}")]
pub struct Refused(pub String);

impl Refused {
    /// Exit status of `berth-agent run` when refused (berth's "not
    /// authenticated or not allowed").
    pub const EXIT_CODE: u8 = 3;
}

/// A delay in `[0, min(cap, start * 2^attempt))` (full jitter).
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_START
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_MAX);
    let millis = u64::try_from(ceiling.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_millis(rand::rng().random_range(0..=millis))
}

/// Keeps a session with the controller open until shutdown or refusal.
pub async fn run(agent: Arc<Agent>) -> Result<()> {
    let mut attempt = 0u32;
    let mut connected_before = false;
    let mut preferred = 0usize;
    loop {
        let ended = session(&agent, &mut attempt, &mut connected_before, &mut preferred).await;
        agent.channel.send_replace(None);
        agent.outbox.set_linked(false);
        match ended {
            Ended::Shutdown => return Ok(()),
            Ended::Refused(message) => return Err(Refused(message).into()),
            Ended::Renewed => info!("reconnecting with the renewed certificate"),
            Ended::Retry(err) => {
                if connected_before || attempt == 0 {
                    match crate::skew::clock_hint(&err) {
                        Some(hint) => warn!(
                            error = %format!("{err:#}"),
                            "cannot verify the controller's certificate: {hint}; reconnecting"
                        ),
                        None => {
                            warn!(error = %format!("{err:#}"), "lost the controller; reconnecting")
                        }
                    }
                }
                connected_before = false;
                let delay = backoff(attempt);
                attempt = attempt.saturating_add(1);
                tokio::select! {
                    () = agent.shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// Dials the controllers' addresses (`--controller a,b,c`) in turn,
/// starting with the one that answered last (`preferred`), until one
/// answers; one that is down refuses the connection at once, so failing
/// over costs no backoff.
async fn dial(agent: &Agent, preferred: &mut usize) -> Result<(Channel, String)> {
    let addresses = crate::join::addresses(&agent.identity.controller);
    let mut failures = Vec::new();
    for offset in 0..addresses.len() {
        let index = (*preferred + offset) % addresses.len();
        let address = addresses[index];
        match dial_one(agent, address).await {
            Ok(channel) => {
                *preferred = index;
                return Ok((channel, address.to_string()));
            }
            Err(err) if addresses.len() == 1 => return Err(err),
            Err(err) => failures.push(format!("{err:#}")),
        }
    }
    anyhow::bail!("no controller answered: {}", failures.join("; "))
}

async fn dial_one(agent: &Agent, address: &str) -> Result<Channel> {
    let read = |path: std::path::PathBuf| {
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(agent.files.ca())?))
        .identity(Identity::from_pem(
            read(agent.files.cert())?,
            read(agent.files.key())?,
        ))
        .domain_name(CONTROLLER_TLS_NAME);
    let channel = Endpoint::from_shared(address.to_string())
        .context("controller address")?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(10))
        .http2_keep_alive_interval(Duration::from_secs(15))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true)
        .tcp_keepalive(Some(Duration::from_secs(30)))
        .connect()
        .await
        .with_context(|| format!("connect to {address}"))?;
    Ok(channel)
}

async fn hello(agent: &Agent) -> Hello {
    let facts = Some(crate::facts::collect(agent.files.root(), &agent.docker_host).await);
    Hello {
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        protocol_version: PROTOCOL_VERSION,
        labels: HashMap::new(),
        facts,
        running: agent.outbox.tasks(),
        free_slots: agent.free_slots(),
        max_generation: agent.fence().max_generation,
    }
}

fn refusal(status: &tonic::Status) -> Option<String> {
    matches!(
        status.code(),
        Code::PermissionDenied | Code::Unauthenticated | Code::FailedPrecondition
    )
    .then(|| status.message().to_string())
}

async fn session(
    agent: &Arc<Agent>,
    attempt: &mut u32,
    connected_before: &mut bool,
    preferred: &mut usize,
) -> Ended {
    let (channel, address) = match dial(agent, preferred).await {
        Ok(dialed) => dialed,
        Err(err) => return Ended::Retry(err),
    };
    let (sender, receiver) = mpsc::channel::<AgentMessage>(64);
    let hello = hello(agent).await;
    let _ = sender
        .send(AgentMessage {
            kind: Some(Outgoing::Hello(hello)),
        })
        .await;
    let mut client = AgentClient::new(channel.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let mut inbound = match client.open_stream(ReceiverStream::new(receiver)).await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            return match refusal(&status) {
                Some(message) => Ended::Refused(message),
                None => Ended::Retry(anyhow::anyhow!("open stream: {}", status.message())),
            };
        }
    };
    let mut renewal = Renewal::default();
    let heartbeat = match inbound.message().await {
        Ok(Some(message)) => match message.kind {
            Some(Incoming::Welcome(welcome)) => {
                renewal.compare_clocks(welcome.now_ms);
                Duration::from_secs(u64::from(welcome.heartbeat_secs.max(1)))
            }
            _ => return Ended::Retry(anyhow::anyhow!("the controller did not welcome us")),
        },
        Ok(None) => return Ended::Retry(anyhow::anyhow!("the controller closed the stream")),
        Err(status) => {
            return match refusal(&status) {
                Some(message) => Ended::Refused(message),
                None => Ended::Retry(anyhow::anyhow!("stream: {}", status.message())),
            };
        }
    };
    info!(controller = %address, "connected to the controller");
    *attempt = 0;
    *connected_before = true;
    agent.channel.send_replace(Some(channel));
    agent.outbox.set_linked(true);
    let mut pump = Pump {
        agent: agent.clone(),
        sender,
        sent: HashMap::new(),
        in_flight: HashMap::new(),
        renewal,
    };
    pump.run(&mut inbound, heartbeat).await
}

struct Pump {
    agent: Arc<Agent>,
    sender: mpsc::Sender<AgentMessage>,
    /// Highest sequence number sent on this connection, per task.
    sent: HashMap<TaskId, u64>,
    /// Per task, the last sequence number and send time of each batch sent
    /// and not yet acknowledged, oldest first.
    in_flight: HashMap<TaskId, VecDeque<(u64, Instant)>>,
    renewal: Renewal,
}

impl Pump {
    async fn run(
        &mut self,
        inbound: &mut Streaming<berth_proto::v1::ControllerMessage>,
        heartbeat: Duration,
    ) -> Ended {
        let mut ticker = tokio::time::interval(heartbeat);
        ticker.tick().await;
        self.maybe_renew().await;
        loop {
            if self.renewal.is_installed() {
                return Ended::Renewed;
            }
            let more = match self.flush_outbox().await {
                Ok(more) => more,
                Err(ended) => return ended,
            };
            // Incoming messages (acks, assignments) come first, so a flood
            // of output never starves them; then heartbeats; then more output.
            tokio::select! {
                biased;
                () = self.agent.shutdown.cancelled() => return Ended::Shutdown,
                message = inbound.message() => match message {
                    Ok(Some(message)) => self.handle(message).await,
                    Ok(None) => return Ended::Retry(anyhow::anyhow!("the controller closed the stream")),
                    Err(status) => return match refusal(&status) {
                        Some(message) => Ended::Refused(message),
                        None => Ended::Retry(anyhow::anyhow!("stream: {}", status.message())),
                    },
                },
                _ = ticker.tick() => {
                    self.maybe_renew().await;
                    let facts = Some(crate::facts::collect(self.agent.files.root(), &self.agent.docker_host).await);
                    let beat = Heartbeat { facts, free_slots: self.agent.free_slots(), health: self.agent.monitor.report(), apps: self.agent.resources.fill(self.agent.current.report()) };
                    if self.send(Outgoing::Heartbeat(beat)).await.is_err() {
                        return Ended::Retry(anyhow::anyhow!("stream closed"));
                    }
                }
                // What runs here changed (a deploy, stop or repair): tell
                // the controller now, so `berth status` is true at once.
                () = self.agent.current.changed() => {
                    let beat = Heartbeat { facts: None, free_slots: self.agent.free_slots(), health: self.agent.monitor.report(), apps: self.agent.resources.fill(self.agent.current.report()) };
                    if self.send(Outgoing::Heartbeat(beat)).await.is_err() {
                        return Ended::Retry(anyhow::anyhow!("stream closed"));
                    }
                }
                () = std::future::ready(()), if more => {}
                () = self.agent.outbox.changed(), if !more => {}
            }
        }
    }

    async fn send(&self, kind: Outgoing) -> Result<(), Ended> {
        self.sender
            .send(AgentMessage { kind: Some(kind) })
            .await
            .map_err(|_| Ended::Retry(anyhow::anyhow!("stream closed")))
    }

    async fn handle(&mut self, message: berth_proto::v1::ControllerMessage) {
        match message.kind {
            Some(Incoming::Assign(assign)) => {
                let Some(spec) = assign.task else { return };
                let (task_id, generation) = (spec.task_id.clone(), spec.generation);
                if let Accepted::Refused(reason) = runner::accept(&self.agent, spec) {
                    warn!(%task_id, generation, %reason, "assignment refused");
                    let _ = self
                        .send(Outgoing::Refused(AssignRefused {
                            task_id,
                            generation,
                            reason,
                        }))
                        .await;
                }
            }
            Some(Incoming::Cancel(cancel)) => runner::cancel(&self.agent, &cancel.task_id),
            Some(Incoming::Follow(request)) if request.stop => {
                self.agent.stop_relay(request.request_id)
            }
            Some(Incoming::Follow(request)) => {
                let cancel = self.agent.start_relay(request.request_id);
                let (agent, sender) = (self.agent.clone(), self.sender.clone());
                self.agent
                    .tasks
                    .spawn(relay(agent, request, sender, cancel));
            }
            Some(Incoming::Fetch(request)) => {
                let (agent, sender) = (self.agent.clone(), self.sender.clone());
                self.agent
                    .tasks
                    .spawn(async move { crate::git::run(&agent, request, sender).await });
            }
            Some(Incoming::ResourceAsk(ask)) => {
                let (agent, sender) = (self.agent.clone(), self.sender.clone());
                self.agent
                    .tasks
                    .spawn(async move { crate::resource_asks::run(&agent, ask, sender).await });
            }
            Some(Incoming::Exec(request)) => {
                let (agent, sender) = (self.agent.clone(), self.sender.clone());
                self.agent
                    .tasks
                    .spawn(async move { crate::exec::run(&agent, request, sender).await });
            }
            Some(Incoming::Inspect(request)) => {
                // Answered from its own task, so a slow Docker never holds up the stream.
                let (agent, sender) = (self.agent.clone(), self.sender.clone());
                self.agent.tasks.spawn(async move {
                    let reply = inspect(&agent, request).await;
                    let _ = sender
                        .send(AgentMessage {
                            kind: Some(Outgoing::Inspected(reply)),
                        })
                        .await;
                });
            }
            Some(Incoming::Ack(ack)) => {
                if let Ok(task_id) = ack.task_id.parse::<TaskId>() {
                    self.agent.outbox.ack(task_id, ack.upto);
                }
            }
            Some(Incoming::Renewed(renewed)) => self.renewal.answer(&self.agent.files, renewed),
            Some(Incoming::Welcome(_)) | None => {}
        }
    }

    /// Asks for a new certificate when one is due (see [`Renewal`]).
    async fn maybe_renew(&mut self) {
        let name = self.agent.identity.name.clone();
        if let Some(request) = self.renewal.request(&self.agent.files, &name) {
            let _ = self.send(Outgoing::Renew(request)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::batches::{ACK_TIMEOUT, prune_in_flight};
    use super::*;

    #[test]
    fn acks_open_the_in_flight_window_and_silence_resends() {
        let start = Instant::now();
        let mut window: VecDeque<(u64, Instant)> = [(10, start), (20, start), (30, start)]
            .into_iter()
            .collect();
        assert!(!prune_in_flight(&mut window, 20, start));
        assert_eq!(window, [(30, start)], "batches up to the ack leave");
        assert!(!prune_in_flight(&mut window, 20, start + ACK_TIMEOUT));
        assert_eq!(window.len(), 1, "not yet past the timeout");
        let late = start + ACK_TIMEOUT + Duration::from_millis(1);
        assert!(
            prune_in_flight(&mut window, 20, late),
            "resend after silence"
        );
        assert!(window.is_empty());
    }

    #[test]
    fn backoff_is_jittered_and_capped() {
        for attempt in 0..40 {
            assert!(backoff(attempt) <= BACKOFF_MAX);
        }
        let early: Vec<Duration> = (0..50).map(|_| backoff(0)).collect();
        assert!(early.iter().all(|delay| *delay <= BACKOFF_START));
    }

    #[test]
    fn a_refusal_exits_with_the_not_allowed_status() {
        assert_eq!(i32::from(Refused::EXIT_CODE), berth_shared::exit::AUTH);
        let refused = anyhow::Error::from(Refused("revoked".into()));
        assert!(refused.downcast_ref::<Refused>().is_some());
        assert_eq!(
            refused.to_string(),
            "the controller refused this agent: revoked"
        );
    }
}
