//! The agent protocol version check: an agent of protocol version 1, from
//! before the typed wire (version 2 moved outcomes, statuses and streams to
//! enums on new field numbers), is refused at join and on its stream with a
//! message naming both versions and what to do, before anything it sends
//! could be misread; an agent of the current version is served.

use berth_proto::v1::JoinAgentRequest;
use berth_proto::v1::enroll_client::EnrollClient;
use berth_proto::{CONTROLLER_TLS_NAME, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
use berth_shared::credentials::JoinToken;
use berth_tests::agent_link::{Credential, client, open, open_speaking};
use berth_tests::{Agent, Controller, fleet};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// The version before the typed wire.
const BEFORE_TYPED_WIRE: u32 = 1;
// Version 1 messages carry outcomes in fields version 2 reserves.
const _: () = assert!(MIN_PROTOCOL_VERSION > BEFORE_TYPED_WIRE);

/// The refusal is the controller's clear one: the versions it serves, the
/// one the agent speaks, and what to do.
fn check_refusal(status: &tonic::Status, version: u32) {
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    let expected = format!(
        "this controller serves agent protocol version {PROTOCOL_VERSION}, the agent speaks {version}; install a matching berth-agent"
    );
    assert_eq!(status.message(), expected);
}

/// `Enroll.JoinAgent` for agent `name` claiming `protocol_version`.
async fn join(
    controller: &Controller,
    token: &JoinToken,
    name: &str,
    protocol_version: u32,
) -> Result<(), tonic::Status> {
    let ca_pem = fleet::ca_pem(controller).expect("the controller's CA");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name(CONTROLLER_TLS_NAME);
    let channel = Endpoint::from_shared(controller.url.clone())
        .expect("controller url")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("the TLS connection");
    let (csr_pem, _key_pem) = berth_shared::pki::new_csr(name).expect("csr");
    let request = JoinAgentRequest {
        token_id: token.id.clone(),
        token_secret: token.secret.clone(),
        csr_pem,
        name: name.to_string(),
        agent_version: "0.0.1-old".to_string(),
        protocol_version,
        ..Default::default()
    };
    EnrollClient::new(channel).join_agent(request).await?;
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn a_version_1_agent_is_refused_at_join_with_both_versions_named() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let controller = Controller::start();
    let token = JoinToken::parse(&controller.token(&["--uses", "1"])).expect("token");
    runtime().block_on(async {
        let refused = join(&controller, &token, "old", BEFORE_TYPED_WIRE)
            .await
            .expect_err("a version 1 agent is refused");
        check_refusal(&refused, BEFORE_TYPED_WIRE);
        let newer = PROTOCOL_VERSION + 1;
        let refused = join(&controller, &token, "newer", newer)
            .await
            .expect_err("a newer agent is refused too");
        check_refusal(&refused, newer);
        // The refusals did not use the token up.
        join(&controller, &token, "current", PROTOCOL_VERSION)
            .await
            .expect("an agent of this version joins");
    });
}

#[test]
fn a_version_1_agent_is_refused_on_its_stream_with_both_versions_named() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let controller = Controller::start();
    let mut agent = Agent::join(&controller, "upgraded", "role=web");
    // The agent's credentials, used as an agent left at version 1 while
    // the controller was upgraded would use them.
    agent.kill9();
    let ca_pem = std::fs::read_to_string(agent.dir.join("ca.pem")).expect("ca");
    let credential = Credential::of_agent(&agent.dir);
    runtime().block_on(async {
        let mut link = client(&controller.url, &ca_pem, &credential).await;
        let refused = match open_speaking(&mut link, BEFORE_TYPED_WIRE).await {
            Ok(_) => panic!("a version 1 hello must be refused"),
            Err(status) => status,
        };
        check_refusal(&refused, BEFORE_TYPED_WIRE);
        let stream = open(&mut link)
            .await
            .expect("the same agent speaking this version is welcomed");
        assert!(!stream.welcome.agent_id.is_empty());
    });
}
