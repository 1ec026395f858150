//! What an operator hits after the first container deploy, against a
//! real private Docker daemon and a real Caddy: redeploys on a fixed host
//! port (stop-first, and the old container back when the new one fails),
//! a published port that a NAT rule sends to another program (refused,
//! though the health check passed there),
//! a domain claimed by two environments, and a Docker restart or a removed
//! container repaired by the agent (route and health check moved to the
//! new port, the repair in the deployment's history and `berth status`).
//! One test function owns the daemon and runs the scenarios in order.

use std::time::Duration;

use berth_tests::caddy::{Caddy, free_port};
use berth_tests::docker::{Dockerd, HTTPD, IMAGE, http_get};
use berth_tests::{Agent, Controller, eventually, id_of, write_bundle};

/// Between two looks at state no process announces (the agent's next
/// repair round, its next heartbeat).
const PAUSE: Duration = Duration::from_millis(200);

/// A web app on `box-1` serving `index.html` from the bundle, copied by
/// setup into `www/VERSION`; `extra` goes into `[container]`, `tail` at
/// the end of the manifest.
fn web(app: &str, version: &str, www: &std::path::Path, extra: &str, tail: &str) -> String {
    format!(
        r#"app = "{app}"
version = "{version}"
[target]
hosts = ["box-1"]
[setup]
run = ["mkdir -p {www}/{version} && cp index.html {www}/{version}/index.html"]
[container]
image = "{IMAGE}"
port = 8080
volumes = ["{www}/{version}:/www:ro"]
command = {HTTPD}
stop_timeout = "1s"
{extra}
{tail}"#,
        www = www.display()
    )
}

fn deploy(
    controller: &Controller,
    name: &str,
    manifest: &str,
    page: &str,
) -> (i32, serde_json::Value, String) {
    let bundle = write_bundle(
        controller.dir.path(),
        name,
        manifest,
        &[("index.html", page)],
    );
    controller.deploy(&bundle)
}

#[test]
fn what_an_operator_hits_after_the_first_container_deploy() {
    let Some(mut dockerd) =
        Dockerd::start("what_an_operator_hits_after_the_first_container_deploy")
    else {
        return;
    };
    dockerd.import_busybox(IMAGE);
    redeploys_on_a_fixed_host_port(&dockerd);
    a_port_that_reaches_something_else_is_refused(&dockerd);
    let Some(caddy) = Caddy::start("what_an_operator_hits_after_the_first_container_deploy") else {
        return;
    };
    a_domain_belongs_to_one_app_and_environment(&dockerd, &caddy);
    a_docker_restart_and_a_removed_container_are_repaired(&mut dockerd, &caddy);
}

/// Agent `box-1` on the private daemon, without Caddy.
fn docker_agent(controller: &Controller, dockerd: &Dockerd) -> Agent {
    Agent::join_with_args(
        controller,
        "box-1",
        "role=web",
        &["--docker-host", &dockerd.host],
    )
}

fn redeploys_on_a_fixed_host_port(dockerd: &Dockerd) {
    let controller = Controller::start();
    let _agent = docker_agent(&controller, dockerd);
    let www = controller.dir.path().join("fixed-www");
    let port = free_port().to_string();
    let fixed = format!("host_port = {port}");

    // start-first cannot work with a fixed port: the check says why.
    let bundle = write_bundle(
        controller.dir.path(),
        "fixed-start-first",
        &web(
            "fixed",
            "0",
            &www,
            &format!("{fixed}\nupdate = \"start-first\""),
            "",
        ),
        &[("index.html", "zero\n")],
    );
    let refused = controller.berth(&["deploy", "--bundle", bundle.to_str().expect("path")]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("container.update") && refused.stderr.contains("stop-first"),
        "{}",
        refused.stderr
    );

    // The default with a fixed port is stop-first: deploy, redeploy, redeploy.
    for (version, page) in [("1", "one\n"), ("2", "two\n"), ("3", "three\n")] {
        let manifest = web("fixed", version, &www, &fixed, "");
        let (code, deployment, stderr) =
            deploy(&controller, &format!("fixed-{version}"), &manifest, page);
        assert_eq!(code, 0, "version {version}: {stderr}\n{deployment:#}");
        assert_eq!(http_get(&port, "/").as_deref(), Some(page));
        if version != "1" {
            assert!(
                stderr.contains("stop-first: stopped the previous container"),
                "{stderr}"
            );
        }
    }
    assert_eq!(dockerd.containers_of("fixed").len(), 1);

    // A new version that exits at once: the old container starts again.
    let broken = web("fixed", "4", &www, &fixed, "").replace(HTTPD, r#"["sh", "-c", "exit 3"]"#);
    let (code, failed, stderr) = deploy(&controller, "fixed-4", &broken, "four\n");
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(failed["status"], "failed", "{failed:#}");
    let error = failed["error_message"].as_str().unwrap_or_default();
    assert!(
        error.contains("during start-up") && error.contains("was started again"),
        "{error}"
    );
    assert_eq!(http_get(&port, "/").as_deref(), Some("three\n"));
    let containers = dockerd.containers_of("fixed");
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert!(containers[0].ends_with("running"), "{containers:?}");
}

/// A NAT rule sending `127.0.0.1:from` to `127.0.0.1:to`, as another
/// Docker daemon's port mapping would; removed when dropped.
struct Redirect(Vec<String>);

impl Redirect {
    fn new(from: u16, to: u16) -> Redirect {
        let rule: Vec<String> = [
            "OUTPUT",
            "-p",
            "tcp",
            "-d",
            "127.0.0.1",
            "--dport",
            &from.to_string(),
            "-j",
            "DNAT",
            "--to-destination",
            &format!("127.0.0.1:{to}"),
        ]
        .iter()
        .map(|part| part.to_string())
        .collect();
        let status = std::process::Command::new("iptables")
            .args(["-t", "nat", "-I"])
            .args(&rule)
            .status()
            .expect("run iptables");
        assert!(status.success(), "iptables could not add the redirect");
        Redirect(rule)
    }
}

impl Drop for Redirect {
    fn drop(&mut self) {
        let _ = std::process::Command::new("iptables")
            .args(["-t", "nat", "-D"])
            .args(&self.0)
            .status();
    }
}

/// An HTTP server that answers 200 to anything: the other program.
fn impostor() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(b"HTTP/1.0 200 OK\r\n\r\nimpostor\n");
        }
    });
    port
}

fn a_port_that_reaches_something_else_is_refused(dockerd: &Dockerd) {
    let controller = Controller::start();
    let _agent = docker_agent(&controller, dockerd);
    let www = controller.dir.path().join("twin-www");
    let port = free_port();
    let _redirect = Redirect::new(port, impostor());
    let manifest = web(
        "twin",
        "1",
        &www,
        &format!("host_port = {port}"),
        "[health]\nhttp = \"/index.html\"\ninterval = \"200ms\"\ntimeout = \"10s\"\n",
    );
    let (code, failed, stderr) = deploy(&controller, "twin-1", &manifest, "twin\n");
    assert_eq!(
        code, 1,
        "the impostor's answer must not count: {stderr}\n{failed:#}"
    );
    let error = failed["error_message"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!(
            "host port {port} does not reach the new container"
        )) && error.contains("NAT rule"),
        "{error}"
    );
    assert!(
        dockerd.containers_of("twin").is_empty(),
        "the new container was removed"
    );
}

fn a_domain_belongs_to_one_app_and_environment(dockerd: &Dockerd, caddy: &Caddy) {
    let controller = Controller::start();
    let _agent = proxied_agent(&controller, dockerd, caddy);
    let www = controller.dir.path().join("shop-www");
    let shop = |environment: &str, domain: &str| {
        web(
            "shop",
            "1",
            &www,
            "",
            &format!("[proxy]\ndomain = \"{domain}\"\ntls = \"off\"\n"),
        )
        .replace(
            "version = \"1\"",
            &format!("version = \"1\"\nenvironment = \"{environment}\""),
        )
    };
    let (code, production, stderr) = deploy(
        &controller,
        "shop-production",
        &shop("production", "shop.localhost"),
        "shop\n",
    );
    assert_eq!(code, 0, "{stderr}\n{production:#}");
    let bundle = write_bundle(
        controller.dir.path(),
        "shop-staging",
        &shop("staging", "Shop.Localhost"),
        &[("index.html", "staging\n")],
    );
    let refused = controller.berth(&["deploy", "--bundle", bundle.to_str().expect("path")]);
    assert_eq!(refused.code, 5, "{}", refused.stderr);
    let holder = id_of(&production);
    for part in ["shop.localhost", "`shop`", "`production`", holder.as_str()] {
        assert!(
            refused.stderr.contains(part),
            "names {part}: {}",
            refused.stderr
        );
    }
    let staged = controller
        .berth(&["ls", "--env", "staging", "-o", "json"])
        .json();
    assert_eq!(staged, serde_json::json!([]), "nothing was created");
    assert_eq!(
        caddy
            .get("shop.localhost", "/")
            .map(|(_, body)| body)
            .as_deref(),
        Some("shop\n"),
        "production keeps answering"
    );
    let deleted = controller.berth(&["delete", &holder, "-o", "json"]).json();
    assert_eq!(deleted["status"], "deleted", "{deleted:#}");
}

fn proxied_agent(controller: &Controller, dockerd: &Dockerd, caddy: &Caddy) -> Agent {
    let http_port = caddy.http_port.to_string();
    let https_port = free_port().to_string();
    Agent::join_with_args(
        controller,
        "box-1",
        "role=web",
        &[
            "--docker-host",
            &dockerd.host,
            "--caddy-admin",
            &caddy.admin,
            "--proxy-http-port",
            &http_port,
            "--proxy-https-port",
            &https_port,
        ],
    )
}

/// The one host row of `app` in `berth status -o json`.
fn host_state(controller: &Controller, app: &str) -> serde_json::Value {
    let status = controller.berth(&["status", "-o", "json"]).json();
    status
        .as_array()
        .expect("rows")
        .iter()
        .find(|row| row["app"] == app)
        .and_then(|row| row["host_states"].get(0).cloned())
        .unwrap_or(serde_json::Value::Null)
}

fn a_docker_restart_and_a_removed_container_are_repaired(dockerd: &mut Dockerd, caddy: &Caddy) {
    let controller = Controller::start();
    let _agent = proxied_agent(&controller, dockerd, caddy);
    let www = controller.dir.path().join("mend-www");
    let manifest = web(
        "mend",
        "1",
        &www,
        "",
        "[health]\nhttp = \"/index.html\"\ninterval = \"1s\"\ntimeout = \"10s\"\n[proxy]\ndomain = \"mend.localhost\"\ntls = \"off\"\n",
    );
    let (code, deployed, stderr) = deploy(&controller, "mend-1", &manifest, "mended\n");
    assert_eq!(code, 0, "{stderr}\n{deployed:#}");
    let id = id_of(&deployed);
    let through_caddy = || caddy.get("mend.localhost", "/").map(|(_, body)| body);
    assert_eq!(through_caddy().as_deref(), Some("mended\n"));
    let before = eventually("the agent's report of the app", 300, PAUSE, || {
        let state = host_state(&controller, "mend");
        (state["state"] == "running").then_some(state)
    });
    assert_eq!(before["version"], "1", "{before:#}");
    assert_eq!(before["deployment_id"], id.as_str(), "{before:#}");
    let old_port = before_port(dockerd);

    // Docker restarts while the old port is taken by someone else: the
    // container comes back on another port.
    dockerd.stop_daemon();
    let squatter = std::net::TcpListener::bind(("127.0.0.1", old_port)).expect("take the old port");
    dockerd.start_daemon();
    eventually(
        "the app answering through Caddy after the Docker restart",
        300,
        PAUSE,
        || (through_caddy().as_deref() == Some("mended\n")).then_some(()),
    );
    let repaired = eventually("the repair in berth status", 300, PAUSE, || {
        let state = host_state(&controller, "mend");
        let repair = state["last_repair"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (repair.contains("publishes host port") && state["health"] == "healthy").then_some(state)
    });
    let repair = repaired["last_repair"].as_str().unwrap_or_default();
    assert!(
        repair.contains("moved Caddy route") && repair.contains("moved the health check"),
        "{repaired:#}"
    );
    let shown = eventually("the repair in the deployment's history", 300, PAUSE, || {
        let deployment = controller.show(&id);
        let noted = deployment["transitions"].as_array().is_some_and(|all| {
            all.iter()
                .any(|t| t["to"] == "repaired" && t["subject"] == "box-1")
        });
        noted.then_some(deployment)
    });
    assert_eq!(shown["status"], "deployed");
    let logs = controller.berth(&["logs", &id, "--stage", "repair"]).ok();
    assert!(
        logs.contains("repaired: container") && logs.contains("moved Caddy route"),
        "the repair is a line in the deployment's log: {logs}"
    );
    drop(squatter);

    // A container removed behind berth's back is started again.
    for name in dockerd.containers_of("mend") {
        let name = name
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        dockerd.docker_ok(&["rm", "-f", &name]);
    }
    eventually("the removed container started again", 300, PAUSE, || {
        let state = host_state(&controller, "mend");
        let repair = state["last_repair"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (repair.contains("was gone; started it again")
            && through_caddy().as_deref() == Some("mended\n"))
        .then_some(())
    });
    let status = controller.berth(&["status"]).ok();
    assert!(
        status.contains("box-1") && status.contains("started it again"),
        "{status}"
    );
}

/// The host port the one running container publishes.
fn before_port(dockerd: &Dockerd) -> u16 {
    let out = dockerd.docker_ok(&[
        "ps",
        "--filter",
        "label=berth.app=mend",
        "--format",
        "{{.Ports}}",
    ]);
    // e.g. "127.0.0.1:32768->8080/tcp"
    out.split(':')
        .nth(1)
        .and_then(|rest| rest.split("->").next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("a published port in {out:?}"))
}
