//! Many enrolled agents, enrolled the way a real fleet joins.
//!
//! The controller limits failed joins per peer address
//! (`controller/src/grpc/enroll.rs`, `serve --join-failure-limit`); these
//! joins all succeed, so it never refuses them, and they are still made
//! from many addresses as a spread-out fleet does. Each join is the real
//! `Enroll.JoinAgent` call (a fresh key pair and CSR, a real token, the
//! controller's CA checked), made from its own loopback source address
//! (127.77.x.y, ten joins per address), so no controller setting is relaxed.
//! The identity is then written in the layout `berth-agent join` writes
//! (`agent.toml`, `key.pem`, `cert.pem`, `ca.pem`), for a real `berth-agent
//! run` process or for the in-process load generator ([`crate::loadgen`]).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::{Controller, DEADLINE, Running, bin};
use anyhow::{Context as _, Result};
use berth_proto::v1::JoinAgentRequest;
use berth_proto::v1::enroll_client::EnrollClient;
use berth_proto::{CONTROLLER_TLS_NAME, PROTOCOL_VERSION};
use berth_shared::credentials::JoinToken;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// Joins made from one source address, well under the limit of 20.
const JOINS_PER_ADDRESS: usize = 10;
/// Uses of one join token (a token lists the agents it enrolled, so one
/// token per ten thousand agents would make every join rewrite a long list).
const USES_PER_TOKEN: usize = 100;

/// An enrolled agent identity.
#[derive(Clone)]
pub struct Enrolled {
    pub name: String,
    pub agent_id: String,
    pub cert_pem: String,
    pub key_pem: String,
    /// The loopback address it joined from, and its simulated sessions
    /// dial from (the controller caps connections per source address).
    pub source: IpAddr,
}

/// The controller's CA certificate, as an agent trusts it after join.
pub fn ca_pem(controller: &Controller) -> Result<String> {
    let path = controller.dir.path().join("controller/pki/ca.pem");
    std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))
}

/// The loopback address the join of agent `index` comes from.
fn source_address(index: usize) -> IpAddr {
    let group = index / JOINS_PER_ADDRESS;
    let third = u8::try_from(group / 250).expect("at most 62,500 addresses");
    let fourth = u8::try_from(group % 250 + 1).expect("below 251");
    IpAddr::V4(Ipv4Addr::new(127, 77, third, fourth))
}

/// Enrolls `count` agents named `{prefix}-{index:05}` with `labels(index)`
/// (`k=v,...`), `workers` joins at a time, each worker on tokens of its own
/// so concurrent joins never contend for one token record.
pub fn enroll(
    runtime: &tokio::runtime::Runtime,
    controller: &Controller,
    prefix: &str,
    count: usize,
    labels: impl Fn(usize) -> String,
    workers: usize,
) -> Result<Vec<Enrolled>> {
    let ca = ca_pem(controller)?;
    let chunk = count
        .div_ceil(workers.max(1))
        .next_multiple_of(USES_PER_TOKEN);
    let mut plans = Vec::new();
    for start in (0..count).step_by(chunk) {
        let mut plan = Vec::new();
        for index in start..(start + chunk).min(count) {
            if (index - start) % USES_PER_TOKEN == 0 {
                let uses = USES_PER_TOKEN.to_string();
                let text = controller.token(&["--uses", &uses, "--ttl", "2h"]);
                plan.push((index, JoinToken::parse(&text).map_err(anyhow::Error::msg)?));
            } else {
                let token = plan
                    .last()
                    .map(|(_, token)| token.clone())
                    .expect("a token");
                plan.push((index, token));
            }
        }
        plans.push(plan);
    }
    let url = controller.url.clone();
    let names: Vec<(String, String)> = (0..count)
        .map(|index| (format!("{prefix}-{index:05}"), labels(index)))
        .collect();
    runtime.block_on(async move {
        let mut joins = tokio::task::JoinSet::new();
        for plan in plans {
            let (url, ca, names) = (url.clone(), ca.clone(), names.clone());
            joins.spawn(async move {
                let mut done = Vec::new();
                for (index, token) in plan {
                    let (name, labels) = &names[index];
                    let enrolled = join(&url, &ca, &token, name, labels, source_address(index))
                        .await
                        .with_context(|| format!("join {name}"))?;
                    done.push((index, enrolled));
                }
                anyhow::Ok(done)
            });
        }
        let mut all = Vec::with_capacity(count);
        while let Some(result) = joins.join_next().await {
            all.extend(result.context("join worker")??);
        }
        all.sort_by_key(|(index, _)| *index);
        Ok(all.into_iter().map(|(_, enrolled)| enrolled).collect())
    })
}

/// One real `Enroll.JoinAgent` call from `source`.
async fn join(
    url: &str,
    ca_pem: &str,
    token: &JoinToken,
    name: &str,
    labels: &str,
    source: IpAddr,
) -> Result<Enrolled> {
    let (csr_pem, key_pem) = berth_shared::pki::new_csr(name)?;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name(CONTROLLER_TLS_NAME);
    let channel = Endpoint::from_shared(url.to_string())?
        .tls_config(tls)?
        .local_address(Some(source))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .connect()
        .await
        .with_context(|| format!("connect from {source}"))?;
    let labels = berth_shared::labels::parse_labels(labels).map_err(anyhow::Error::msg)?;
    let request = JoinAgentRequest {
        token_id: token.id.clone(),
        token_secret: token.secret.clone(),
        csr_pem,
        name: name.to_string(),
        labels: labels.into_iter().collect(),
        agent_version: "bench".to_string(),
        protocol_version: PROTOCOL_VERSION,
    };
    let response = EnrollClient::new(channel)
        .join_agent(request)
        .await
        .map_err(|status| anyhow::anyhow!("refused: {}", status.message()))?
        .into_inner();
    Ok(Enrolled {
        name: response.name,
        agent_id: response.agent_id,
        cert_pem: response.cert_pem,
        key_pem,
        source,
    })
}

/// Writes an agent data directory as `berth-agent join` leaves it.
pub fn write_agent_dir(dir: &Path, url: &str, ca_pem: &str, agent: &Enrolled) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let write = |name: &str, text: &str, mode: u32| {
        berth_shared::credentials::write_file(&dir.join(name), text.as_bytes(), mode)
            .map_err(anyhow::Error::msg)
    };
    let identity = format!(
        "controller = {url:?}\nagent_id = {:?}\nname = {:?}\n",
        agent.agent_id, agent.name
    );
    write("key.pem", &agent.key_pem, 0o600)?;
    write("cert.pem", &agent.cert_pem, 0o644)?;
    write("ca.pem", ca_pem, 0o644)?;
    write("agent.toml", &identity, 0o600)
}

/// Starts `berth-agent run` on a data directory; the process is killed by
/// PID when the handle drops.
pub fn spawn_agent(dir: &Path, url: &str, extra: &[&str]) -> Running {
    let mut command = Command::new(bin("berth-agent"));
    command
        .args(["run", "--controller", url, "--data-dir"])
        .arg(dir)
        .args(extra);
    Running::spawn(command, &dir.with_extension("log"))
}

/// Waits until an agent says it is connected.
pub fn wait_connected(agent: &Running, name: &str) -> Result<()> {
    agent
        .stderr
        .wait_for("connected to the controller", DEADLINE)
        .map(|_| ())
        .ok_or_else(|| anyhow::anyhow!("agent {name} did not connect:\n{}", agent.log_tail()))
}

/// Enrolls and starts `count` real agent processes; returns them with
/// their data directories (under the controller's temporary directory).
pub fn start_agents(
    runtime: &tokio::runtime::Runtime,
    controller: &Controller,
    prefix: &str,
    count: usize,
    labels: impl Fn(usize) -> String,
) -> Result<Vec<(PathBuf, Running)>> {
    let ca = ca_pem(controller)?;
    let enrolled = enroll(runtime, controller, prefix, count, labels, 8)?;
    let mut agents = Vec::with_capacity(count);
    for agent in &enrolled {
        let dir = controller.dir.path().join(format!("agent-{}", agent.name));
        write_agent_dir(&dir, &controller.url, &ca, agent)?;
        let process = spawn_agent(&dir, &controller.url, &[]);
        agents.push((dir, process));
    }
    for ((_, process), agent) in agents.iter().zip(&enrolled) {
        wait_connected(process, &agent.name)?;
    }
    Ok(agents)
}

/// A tokio runtime for the harness's own clients (joins, simulated agents).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start a tokio runtime")
}
