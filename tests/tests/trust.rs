//! Trust: who may talk to the controller, and how tokens and revocation
//! behave, through the real binaries.

use berth_proto::v1::WhoAmIRequest;
use berth_proto::v1::cli_client::CliClient;
use berth_shared::credentials::{Bundle, JoinToken};
use berth_shared::pki::{Authority, ClientKind, new_ca};
use berth_tests::{Agent, Controller, DEADLINE, eventually};
use std::time::Duration;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

fn controller_ca(controller: &Controller) -> String {
    std::fs::read_to_string(controller.dir.path().join("controller/pki/ca.pem")).expect("ca")
}

#[test]
fn a_client_without_a_certificate_is_refused() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let controller = Controller::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let status = runtime.block_on(async {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(controller_ca(&controller)))
            .domain_name(berth_proto::CONTROLLER_TLS_NAME);
        let channel = Endpoint::from_shared(controller.url.clone())
            .expect("url")
            .tls_config(tls)
            .expect("tls")
            .connect()
            .await
            .expect("TLS without a client certificate connects");
        CliClient::new(channel)
            .who_am_i(WhoAmIRequest {})
            .await
            .expect_err("must be refused")
    });
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains("no client certificate"),
        "{status:?}"
    );
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    let controller = Controller::start();
    let foreign = new_ca("someone else").expect("ca");
    let authority = Authority::load(&foreign.cert_pem, &foreign.key_pem).expect("load");
    let (cert, _) = authority
        .issue_client_with_key(ClientKind::User, "admin")
        .expect("issue");
    let bundle = Bundle {
        controller: controller.url.clone(),
        principal: "admin".into(),
        ca_pem: controller_ca(&controller),
        cert_pem: cert.cert_pem,
        key_pem: cert.key_pem,
    };
    let path = controller.dir.path().join("foreign.conf");
    bundle.save(&path).expect("save");
    let result = controller.berth_with(&path, &["whoami"]);
    assert_eq!(
        result.code, 3,
        "a foreign certificate must not get in: {result:?}"
    );
    assert!(result.stderr.contains("credential"), "{}", result.stderr);
    assert!(!result.stdout.contains("admin"), "{}", result.stdout);
    // The refusal leaves a trace in the controller's log, with the peer.
    let log = controller.log();
    assert!(
        log.lines()
            .any(|line| line.contains("TLS handshake refused") && line.contains("127.0.0.1")),
        "{log}"
    );
    // The real admin still gets in.
    assert!(controller.berth(&["whoami"]).ok().contains("admin (admin)"));
}

#[test]
fn the_cli_without_credentials_says_how_to_get_them() {
    let controller = Controller::start();
    let result = controller.berth_with(&controller.dir.path().join("missing.conf"), &["ls"]);
    assert_eq!(result.code, 3);
    assert!(
        result.stderr.contains("no credentials") && result.stderr.contains("berth-controller init"),
        "{}",
        result.stderr
    );
}

#[test]
fn tokens_are_refused_when_used_up_revoked_or_for_another_ca() {
    let controller = Controller::start();
    let token = controller.token(&["--uses", "1"]);
    Agent::join_with(&controller, "first", "", &token).expect("first join");
    let used = Agent::join_with(&controller, "second", "", &token)
        .err()
        .expect("token is used up");
    assert!(used.stderr.contains("used up"), "{}", used.stderr);

    let revoked = controller.token(&[]);
    let id = JoinToken::parse(&revoked).expect("token").id;
    controller.berth(&["token", "revoke", &id]).ok();
    let refused = Agent::join_with(&controller, "third", "", &revoked)
        .err()
        .expect("revoked token");
    assert!(refused.stderr.contains("revoked"), "{}", refused.stderr);

    // A token pinned to another CA: the agent must stop before sending it.
    let mut other = JoinToken::parse(&controller.token(&[])).expect("token");
    let foreign = new_ca("impostor").expect("ca");
    let der = berth_shared::pki::first_cert_der(&foreign.cert_pem).expect("der");
    other.ca_pin = berth_shared::pki::spki_pin(&der).expect("pin");
    let refused = Agent::join_with(&controller, "fourth", "", &other.encode())
        .err()
        .expect("pin mismatch");
    assert!(
        refused.stderr.contains("pinned") && refused.stderr.contains("NOT sent"),
        "{}",
        refused.stderr
    );
    let tokens = controller.berth(&["token", "ls", "-o", "json"]).json();
    let untouched = tokens
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["id"] == other.id.as_str())
        .expect("token listed");
    assert_eq!(untouched["uses"], 0, "the controller never saw the token");

    let agents = controller.berth(&["agents", "ls", "-o", "json"]).json();
    let names: Vec<&str> = agents
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["first"]);
}

#[test]
fn names_are_unique() {
    let controller = Controller::start();
    Agent::join_with(&controller, "dup", "", &controller.token(&[])).expect("first");
    let second = Agent::join_with(&controller, "dup", "", &controller.token(&[]))
        .err()
        .expect("taken name");
    assert!(
        second.stderr.contains("already enrolled"),
        "{}",
        second.stderr
    );
}

#[test]
fn a_revoked_agent_is_cut_off_and_cannot_reconnect() {
    let controller = Controller::start();
    let mut agent = Agent::join(&controller, "doomed", "role=web");
    controller.berth(&["agents", "revoke", "doomed"]).ok();
    let code = agent
        .process_mut()
        .wait_exit(DEADLINE)
        .expect("the agent process ends");
    // 3: refused for good, the status its systemd unit does not restart.
    assert_eq!(code, 3);
    assert!(
        agent
            .process()
            .stderr
            .wait_for("revoked", DEADLINE)
            .is_some(),
        "{}",
        agent.process().log_tail()
    );
    let shown = controller
        .berth(&["agents", "show", "doomed", "-o", "json"])
        .json();
    assert_eq!(shown["online"], false);
    assert_eq!(shown["status"], "revoked");

    agent.spawn();
    let code = agent
        .process_mut()
        .wait_exit(DEADLINE)
        .expect("the restarted agent gives up");
    assert_eq!(code, 3);
    assert!(
        agent
            .process()
            .stderr
            .wait_for("revoked", DEADLINE)
            .is_some()
    );
}

#[test]
fn agents_renew_their_certificate_on_the_stream_and_use_it() {
    let controller = Controller::start_with(&["--agent-cert-lifetime", "9s"]);
    let mut agent = Agent::join(&controller, "renewer", "role=web");
    let serial = |agent: &Agent| {
        let pem = std::fs::read_to_string(agent.dir.join("cert.pem")).expect("cert");
        let der = berth_shared::pki::first_cert_der(&pem).expect("der");
        berth_shared::pki::cert_info(&der).expect("info").serial
    };
    let key = |agent: &Agent| std::fs::read_to_string(agent.dir.join("key.pem")).expect("key");
    let (first_serial, first_key) = (serial(&agent), key(&agent));
    assert!(
        agent
            .process()
            .stderr
            .wait_for("certificate renewed", DEADLINE)
            .is_some(),
        "{}",
        agent.process().log_tail()
    );
    assert_ne!(serial(&agent), first_serial, "a new certificate");
    assert_ne!(key(&agent), first_key, "with a new key");
    // The agent compared clocks with the controller, and reconnects at once
    // with the renewed certificate, which retires the old one.
    assert!(
        agent
            .process()
            .stderr
            .wait_for("reconnecting with the renewed certificate", DEADLINE)
            .is_some()
    );
    assert!(
        agent
            .process()
            .log_tail()
            .contains("clock compared with the controller's")
    );
    // The controller names no event a test can subscribe to; its log says
    // when the reconnect retired the old certificate.
    eventually(
        "the old certificate retired",
        100,
        Duration::from_millis(100),
        || {
            controller
                .log()
                .contains("older agent certificates retired")
                .then_some(())
        },
    );
    // A fresh process connects with the renewed certificate.
    agent.kill9();
    let agent = agent.start();
    let shown = controller
        .berth(&["agents", "show", "renewer", "-o", "json"])
        .json();
    assert_eq!(shown["online"], true);
    drop(agent);
}

#[test]
fn registry_credentials_are_stored_but_never_shown() {
    let controller = Controller::start();
    let login = controller.berth_stdin(
        &[
            "registry",
            "login",
            "registry.example.com",
            "--username",
            "deployer",
            "--password-stdin",
        ],
        "hunter2-secret\n",
    );
    assert_eq!(login.code, 0, "{}", login.stderr);
    let listed = controller.berth(&["registry", "ls", "-o", "json"]);
    assert_eq!(listed.code, 0);
    assert!(
        listed.stdout.contains("registry.example.com") && listed.stdout.contains("deployer"),
        "{}",
        listed.stdout
    );
    assert!(
        !listed.stdout.contains("hunter2"),
        "the password is never shown"
    );
    assert!(!controller.log().contains("hunter2"), "nor logged");
    let empty = controller.berth_stdin(
        &[
            "registry",
            "login",
            "other.example.com",
            "--username",
            "x",
            "--password-stdin",
        ],
        "",
    );
    assert_eq!(empty.code, 2, "{}", empty.stderr);
    controller
        .berth(&["registry", "logout", "registry.example.com"])
        .ok();
    let again = controller.berth(&["registry", "logout", "registry.example.com"]);
    assert_eq!(again.code, 4, "{}", again.stderr);
}

#[test]
fn only_failed_joins_count_against_an_address() {
    let controller = Controller::start_with(&["--join-failure-limit", "3"]);
    // A fleet behind one address enrolls at any pace: successes are free.
    let token = controller.token(&["--uses", "30"]);
    for server in 0..30 {
        Agent::join_with(&controller, &format!("server-{server}"), "", &token)
            .unwrap_or_else(|failed| panic!("join {server} refused: {}", failed.stderr));
    }
    // Guessing is not: the fourth bad token within the minute is refused.
    let mut guess = JoinToken::parse(&controller.token(&[])).expect("token");
    guess.secret = "x".repeat(43);
    let mut refusals = Vec::new();
    for attempt in 0..4 {
        let refused = Agent::join_with(
            &controller,
            &format!("guess-{attempt}"),
            "",
            &guess.encode(),
        )
        .err()
        .expect("a wrong secret never joins");
        refusals.push(refused.stderr);
    }
    assert!(
        refusals[..3]
            .iter()
            .all(|stderr| stderr.contains("not known")),
        "{refusals:?}"
    );
    let limited = &refusals[3];
    assert!(
        limited.contains("too many failed join attempts from 127.0.0.1")
            && limited.contains("--join-failure-limit")
            && limited.contains("try again in"),
        "{limited}"
    );
    // A failed join leaves no key behind in its data directory.
    let leftovers: Vec<_> = std::fs::read_dir(controller.dir.path())
        .expect("controller dir")
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("agent-guess-")
        })
        .filter(|entry| entry.path().join("key.pem").exists())
        .map(|entry| entry.path())
        .collect();
    assert!(leftovers.is_empty(), "key.pem left behind in {leftovers:?}");
}
