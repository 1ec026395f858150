//! The load generator: one tokio task per simulated agent, each with its
//! own TCP connection, its own client certificate (from a real join) and a
//! real `Agent.OpenStream` session: a hello with host facts, then a
//! heartbeat every `heartbeat_secs` the controller's welcome names, and an
//! `InspectReply` (no containers) to every `InspectRequest`, as an idle
//! `berth-agent` answers. A session that ends is dialed again after an
//! exponential backoff with full jitter, with the start and cap that
//! `berth-agent` uses (`agent/src/connection.rs`), so a controller restart
//! meets the reconnect storm a real fleet makes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use berth_proto::v1::agent_client::AgentClient;
use berth_proto::v1::agent_message::Kind as Outgoing;
use berth_proto::v1::controller_message::Kind as Incoming;
use berth_proto::v1::{AgentMessage, Heartbeat, Hello, HostFacts, InspectReply};
use berth_proto::{CONTROLLER_TLS_NAME, MAX_MESSAGE_BYTES, PROTOCOL_VERSION};
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::fleet::Enrolled;

/// The first reconnect waits up to this long, as `berth-agent`'s does.
const BACKOFF_START: Duration = Duration::from_millis(200);
/// Reconnect waits never exceed this, as `berth-agent`'s do.
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Counters shared by every simulated agent.
#[derive(Default)]
pub struct Counters {
    /// Sessions welcomed by the controller (reconnects count again).
    pub welcomed: AtomicU64,
    pub heartbeats: AtomicU64,
    pub inspects: AtomicU64,
    /// Sessions that ended or failed to start.
    pub failures: AtomicU64,
    pub last_error: Mutex<String>,
    /// Sessions welcomed and not ended yet.
    pub connected: AtomicU64,
    /// When each agent (by name) was last welcomed.
    pub last_welcome: Mutex<HashMap<String, Instant>>,
}

impl Counters {
    fn failed(&self, error: &anyhow::Error) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_error.lock() {
            *last = format!("{error:#}");
        }
    }

    pub fn welcomed(&self) -> u64 {
        self.welcomed.load(Ordering::Relaxed)
    }

    pub fn connected(&self) -> u64 {
        self.connected.load(Ordering::Relaxed)
    }

    /// The last session error, or empty.
    pub fn last_error(&self) -> String {
        self.last_error
            .lock()
            .map(|last| last.clone())
            .unwrap_or_default()
    }

    /// How long after `since` each agent was last welcomed; agents not
    /// welcomed since then are left out.
    pub fn welcomed_after(&self, since: Instant) -> Vec<Duration> {
        self.last_welcome
            .lock()
            .map(|last| {
                last.values()
                    .filter_map(|at| at.checked_duration_since(since))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn welcome(&self, name: &str) {
        self.welcomed.fetch_add(1, Ordering::Relaxed);
        self.connected.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_welcome.lock() {
            last.insert(name.to_string(), Instant::now());
        }
    }
}

/// What every simulated agent shares.
pub struct Shared {
    pub url: String,
    pub ca_pem: String,
    pub counters: Counters,
    /// Bounds TLS handshakes in flight while a fleet connects, as real
    /// agents spread over time would.
    pub connecting: Semaphore,
}

fn facts(name: &str, beat: u64) -> HostFacts {
    HostFacts {
        hostname: name.to_string(),
        os: "Debian GNU/Linux".into(),
        os_version: "12".into(),
        kernel: "6.1.0-28-amd64".into(),
        arch: "x86_64".into(),
        os_family: "linux".into(),
        cpus: 2,
        memory_total_bytes: 4 << 30,
        memory_used_bytes: (1 << 30) + (beat % 64) * 4096,
        disk_total_bytes: 80 << 30,
        disk_free_bytes: 60 << 30,
        uptime_secs: 86_400 + beat * 5,
        load_1m: 0.05,
        docker_version: "20.10.24".into(),
        docker_error: String::new(),
    }
}

/// Runs one simulated agent until the runtime shuts down, reconnecting
/// with backoff and full jitter when its session ends.
pub async fn agent(shared: Arc<Shared>, identity: Enrolled) {
    let mut attempt = 0u32;
    loop {
        let mut welcomed = false;
        if let Err(error) = session(&shared, &identity, &mut welcomed).await {
            shared.counters.failed(&error);
        }
        if welcomed {
            shared.counters.connected.fetch_sub(1, Ordering::Relaxed);
            attempt = 0;
        }
        tokio::time::sleep(backoff(attempt)).await;
        attempt = attempt.saturating_add(1);
    }
}

/// A delay in `[0, min(cap, start * 2^attempt)]` (full jitter).
fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_START
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_MAX);
    Duration::from_millis(rand_below(ceiling.as_millis() as u64 + 1))
}

/// Connects to the first controller of `shared.url` (an address, or a
/// comma-separated list as `berth-agent` takes) that answers.
async fn dial(shared: &Shared, identity: &Enrolled) -> Result<Channel> {
    let mut failure = None;
    for url in berth_shared::credentials::controller_addresses(&shared.url) {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&shared.ca_pem))
            .identity(Identity::from_pem(&identity.cert_pem, &identity.key_pem))
            .domain_name(CONTROLLER_TLS_NAME);
        let connected = Endpoint::from_shared(url.to_string())?
            .tls_config(tls)?
            .connect_timeout(Duration::from_secs(30))
            .http2_keep_alive_interval(Duration::from_secs(15))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true)
            .tcp_keepalive(Some(Duration::from_secs(30)))
            .local_address(Some(identity.source))
            .connect()
            .await;
        match connected {
            Ok(channel) => return Ok(channel),
            Err(err) => failure = Some(err),
        }
    }
    Err(anyhow::Error::from(failure.context("no controller address")?).context("connect"))
}

async fn session(shared: &Shared, identity: &Enrolled, welcomed: &mut bool) -> Result<()> {
    let channel = {
        let _permit = shared.connecting.acquire().await?;
        dial(shared, identity).await?
    };
    let (sender, receiver) = mpsc::channel::<AgentMessage>(16);
    let hello = Hello {
        agent_version: "bench".into(),
        protocol_version: PROTOCOL_VERSION,
        facts: Some(facts(&identity.name, 0)),
        free_slots: 4,
        ..Default::default()
    };
    sender
        .send(AgentMessage {
            kind: Some(Outgoing::Hello(hello)),
        })
        .await?;
    let mut client = AgentClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let mut inbound = client
        .open_stream(ReceiverStream::new(receiver))
        .await
        .map_err(|status| anyhow::anyhow!("open stream: {}", status.message()))?
        .into_inner();
    let interval = match inbound.message().await?.and_then(|message| message.kind) {
        Some(Incoming::Welcome(welcome)) => {
            Duration::from_secs(welcome.heartbeat_secs.max(1).into())
        }
        _ => anyhow::bail!("no welcome"),
    };
    shared.counters.welcome(&identity.name);
    *welcomed = true;
    // Agents that connected together do not beat together.
    let offset = Duration::from_millis(rand_below(interval.as_millis() as u64));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + offset, interval);
    let mut beat = 0u64;
    loop {
        tokio::select! {
            message = inbound.message() => {
                let Some(message) = message? else { anyhow::bail!("the controller closed the stream") };
                if let Some(Incoming::Inspect(request)) = message.kind {
                    let reply = InspectReply { request_id: request.request_id, json: "[]".into(), ..Default::default() };
                    sender.send(AgentMessage { kind: Some(Outgoing::Inspected(reply)) }).await?;
                    shared.counters.inspects.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ = ticker.tick() => {
                beat += 1;
                let heartbeat = Heartbeat { facts: Some(facts(&identity.name, beat)), free_slots: 4, health: Vec::new(), apps: Vec::new() };
                sender.send(AgentMessage { kind: Some(Outgoing::Heartbeat(heartbeat)) }).await?;
                shared.counters.heartbeats.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A cheap pseudo-random number below `bound` (jitter and random pauses,
/// not security).
pub fn rand_below(bound: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(bound);
    hasher.finish() % bound.max(1)
}
