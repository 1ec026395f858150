//! A test client that speaks to the controller with an enrolled agent's
//! real credentials (its data directory's `ca.pem`, `cert.pem` and
//! `key.pem`), to drive the `Agent` service the way a compromised or
//! misbehaving agent would.

use std::path::Path;
use std::time::Duration;

use berth_proto::v1::agent_client::AgentClient;
use berth_proto::v1::agent_message::Kind as Outgoing;
use berth_proto::v1::controller_message::Kind as Incoming;
use berth_proto::v1::{
    AgentMessage, ControllerMessage, Hello, RenewRequest, RenewResponse, Welcome,
};
use berth_proto::{CONTROLLER_TLS_NAME, MAX_MESSAGE_BYTES, PROTOCOL_VERSION};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::DEADLINE;

/// A certificate and its key.
#[derive(Clone)]
pub struct Credential {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Credential {
    /// The credential an agent's data directory holds now.
    pub fn of_agent(dir: &Path) -> Credential {
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("agent credential");
        Credential {
            cert_pem: read("cert.pem"),
            key_pem: read("key.pem"),
        }
    }

    /// Serial of the certificate.
    pub fn serial(&self) -> String {
        let der = berth_shared::pki::first_cert_der(&self.cert_pem).expect("certificate");
        berth_shared::pki::cert_info(&der).expect("readable").serial
    }
}

/// An `Agent` service client over mTLS with `credential`.
pub async fn client(url: &str, ca_pem: &str, credential: &Credential) -> AgentClient<Channel> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .identity(Identity::from_pem(
            &credential.cert_pem,
            &credential.key_pem,
        ))
        .domain_name(CONTROLLER_TLS_NAME);
    let channel = Endpoint::from_shared(url.to_string())
        .expect("controller url")
        .tls_config(tls)
        .expect("tls")
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("the TLS connection");
    AgentClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// An open agent stream.
pub struct Stream {
    pub sender: mpsc::Sender<AgentMessage>,
    pub inbound: Streaming<ControllerMessage>,
    pub welcome: Welcome,
}

/// Opens the agent stream with a hello that reports nothing running, and
/// waits for the welcome; the controller's refusal is the `Err`.
pub async fn open(client: &mut AgentClient<Channel>) -> Result<Stream, tonic::Status> {
    open_speaking(client, PROTOCOL_VERSION).await
}

/// [`open`], with a hello that claims agent protocol `protocol_version`
/// (an older or newer `berth-agent`).
pub async fn open_speaking(
    client: &mut AgentClient<Channel>,
    protocol_version: u32,
) -> Result<Stream, tonic::Status> {
    let (sender, receiver) = mpsc::channel(16);
    let hello = Hello {
        agent_version: "test".into(),
        protocol_version,
        ..Default::default()
    };
    sender
        .send(AgentMessage {
            kind: Some(Outgoing::Hello(hello)),
        })
        .await
        .expect("queue the hello");
    let mut inbound = client
        .open_stream(ReceiverStream::new(receiver))
        .await?
        .into_inner();
    match next(&mut inbound).await? {
        Incoming::Welcome(welcome) => Ok(Stream {
            sender,
            inbound,
            welcome,
        }),
        other => panic!("expected a welcome, got {other:?}"),
    }
}

async fn next(inbound: &mut Streaming<ControllerMessage>) -> Result<Incoming, tonic::Status> {
    loop {
        let message = tokio::time::timeout(DEADLINE, inbound.message())
            .await
            .expect("a message from the controller in time")?
            .ok_or_else(|| tonic::Status::aborted("the stream ended"))?;
        if let Some(kind) = message.kind {
            return Ok(kind);
        }
    }
}

impl Stream {
    /// Asks for a renewal with a fresh key, claiming `agent_now_ms` as the
    /// agent's clock; returns the answer and the key the CSR was for.
    pub async fn renew(&mut self, agent_now_ms: i64) -> (RenewResponse, String) {
        let (csr_pem, key_pem) = berth_shared::pki::new_csr("test").expect("csr");
        let request = RenewRequest {
            csr_pem,
            agent_now_ms,
        };
        self.sender
            .send(AgentMessage {
                kind: Some(Outgoing::Renew(request)),
            })
            .await
            .expect("send the renewal request");
        loop {
            match next(&mut self.inbound)
                .await
                .expect("the stream stays open")
            {
                Incoming::Renewed(answer) => return (answer, key_pem),
                _ => continue,
            }
        }
    }
}
