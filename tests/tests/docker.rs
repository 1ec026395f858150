//! Container deployments against a real, private Docker daemon. One test
//! function owns the daemon and runs the scenarios in order, each with its
//! own controller and agents.

use berth_tests::docker::{Dockerd, HTTPD, IMAGE, checked_manifest, host_port, http_get};
use berth_tests::{Agent, Controller, id_of, write_bundle};
use std::path::Path;

/// A web app: setup copies the bundle's page to a host directory the
/// container serves with busybox httpd.
fn web_manifest(version: &str, www: &std::path::Path, command: &str) -> String {
    format!(
        r#"app = "web"
version = "{version}"
[target]
labels = {{ role = "web" }}
[setup]
run = ["cp index.html {www}/index.html"]
[container]
image = "{IMAGE}"
port = 8080
volumes = ["{www}:/www:ro"]
command = {command}
stop_timeout = "1s"
memory = "64m"
env = {{ GREETING = "hi" }}
"#,
        www = www.display()
    )
}

fn agent_with_docker(controller: &Controller, name: &str, dockerd: &Dockerd) -> Agent {
    Agent::join_with_args(
        controller,
        name,
        "role=web",
        &["--docker-host", &dockerd.host],
    )
}

#[test]
fn container_deployments_on_a_real_docker_daemon() {
    let Some(dockerd) = Dockerd::start("container_deployments_on_a_real_docker_daemon") else {
        return;
    };
    dockerd.import_busybox(IMAGE);
    serves_replaces_and_survives_a_failed_start(&dockerd);
    a_missing_image_is_named_with_its_host(&dockerd);
    an_image_archive_reaches_hosts_without_the_image(&dockerd);
    an_unhealthy_container_never_takes_over(&dockerd);
    canceling_a_container_deploy_removes_the_new_container(&dockerd);
    an_unreachable_caddy_is_named(&dockerd);
    proxied_apps_switch_without_dropping_requests(&dockerd);
    automatic_https_through_an_acme_server(&dockerd);
}

fn serves_replaces_and_survives_a_failed_start(dockerd: &Dockerd) {
    let controller = Controller::start();
    let mut agent = agent_with_docker(&controller, "box-1", dockerd);
    let www = controller.dir.path().join("www");
    std::fs::create_dir_all(&www).expect("www");

    // First version serves the bundle's page.
    let v1 = write_bundle(
        controller.dir.path(),
        "v1",
        &web_manifest("1", &www, HTTPD),
        &[("index.html", "version one\n")],
    );
    let (code, first, stderr) = controller.deploy(&v1);
    assert_eq!(code, 0, "{stderr}\n{first:#}");
    assert_eq!(first["status"], "deployed");
    let port = host_port(&first, 0);
    assert_eq!(http_get(&port, "/").as_deref(), Some("version one\n"));
    let inspect = controller.berth(&["inspect", "web", "-o", "json"]).json();
    let container = &inspect[0]["containers"][0];
    assert_eq!(container["state"], "running", "{inspect:#}");
    assert_eq!(container["version"], "1");
    assert_eq!(container["image"], IMAGE);
    let name = container["name"].as_str().expect("name");
    let limits = dockerd.docker_ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}} {{json .Config.Env}}",
        name,
    ]);
    assert!(
        limits.starts_with("67108864 unless-stopped") && limits.contains("GREETING=hi"),
        "{limits}"
    );
    assert!(
        stderr.contains("created container"),
        "the live view shows berth's progress:\n{stderr}"
    );

    // `berth logs -f` on the deployed app follows the container's output.
    let follow = controller.berth_spawn(&["logs", &id_of(&first), "-f"]);
    // The relay starts once the stored lines are out; ask until it carries
    // a request (each try waits up to 200 ms for the line).
    berth_tests::eventually(
        "the app's request log in berth logs -f",
        50,
        std::time::Duration::ZERO,
        || {
            let _ = http_get(&port, "/followed-request");
            follow
                .stdout
                .wait_for("followed-request", std::time::Duration::from_millis(200))
        },
    );
    drop(follow);

    // A new version replaces it: it serves, the old one is gone.
    let v2 = write_bundle(
        controller.dir.path(),
        "v2",
        &web_manifest("2", &www, HTTPD),
        &[("index.html", "version two\n")],
    );
    let (code, second, stderr) = controller.deploy(&v2);
    assert_eq!(code, 0, "{stderr}\n{second:#}");
    let port = host_port(&second, 0);
    assert_eq!(http_get(&port, "/").as_deref(), Some("version two\n"));
    assert_eq!(
        dockerd.containers_of("web").len(),
        1,
        "exactly one container: {:?}",
        dockerd.containers_of("web")
    );
    assert_eq!(controller.show(&id_of(&first))["status"], "superseded");

    // A container that exits at once fails the deploy; v2 keeps serving.
    let crash = r#"["sh", "-c", "echo starting v3; echo bad config >&2; exit 3"]"#;
    let v3 = write_bundle(
        controller.dir.path(),
        "v3",
        &web_manifest("3", &www, crash),
        &[("index.html", "version two\n")],
    );
    let (code, third, _) = controller.deploy(&v3);
    assert_eq!(code, 1);
    assert_eq!(third["status"], "failed", "{third:#}");
    assert_eq!(third["error_step"], "deploy");
    let message = third["error_message"].as_str().expect("message");
    assert!(
        message.contains("bad config") && message.contains("box-1"),
        "{message}"
    );
    let logs = controller.berth(&["logs", &id_of(&third)]).ok();
    assert!(
        logs.contains("starting v3"),
        "the container's output is in the logs:\n{logs}"
    );
    assert_previous_kept(dockerd, "web", &port, "version two\n");

    // Stop, then an agent restart: still one container, now stopped.
    let stopped = controller.berth(&["stop", "web", "-o", "json"]).json();
    assert_eq!(stopped["status"], "stopped", "{stopped:#}");
    let inspect = controller.berth(&["inspect", "web", "-o", "json"]).json();
    assert_eq!(
        inspect[0]["containers"][0]["state"], "exited",
        "{inspect:#}"
    );
    agent.kill9();
    let agent = agent.start();
    let inspect = controller.berth(&["inspect", "web", "-o", "json"]).json();
    assert_eq!(
        inspect[0]["containers"].as_array().map(Vec::len),
        Some(1),
        "{inspect:#}"
    );
    assert_eq!(
        dockerd.containers_of("web").len(),
        1,
        "no duplicate after an agent restart"
    );

    // Delete tears down what the deployment made on the host.
    let deleted = controller
        .berth(&["delete", &id_of(&second), "-o", "json"])
        .json();
    assert_eq!(deleted["status"], "deleted", "{deleted:#}");
    assert!(
        dockerd.containers_of("web").is_empty(),
        "{:?}",
        dockerd.containers_of("web")
    );
    assert!(
        !agent.dir.join("work").join(id_of(&second)).exists(),
        "its work directory is gone"
    );
    drop(agent);
}

fn a_missing_image_is_named_with_its_host(dockerd: &Dockerd) {
    let controller = Controller::start();
    let _agent = agent_with_docker(&controller, "box-2", dockerd);
    // A registry on a closed loopback port: the pull fails at once and no
    // traffic leaves this machine.
    let manifest = "app = \"ghost\"\n[target]\nhosts = [\"box-2\"]\n[container]\nimage = \"127.0.0.1:9/berth-test/missing:1\"\n";
    let bundle = write_bundle(controller.dir.path(), "ghost", manifest, &[]);
    let (code, deployment, stderr) = controller.deploy(&bundle);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(deployment["error_step"], "deploy");
    let message = deployment["error_message"].as_str().expect("message");
    assert!(
        message.contains("127.0.0.1:9/berth-test/missing:1")
            && message.contains("box-2")
            && message.contains("could not be pulled"),
        "{message}"
    );

    // A `latest` tag moves, so it is pulled on every deploy even when the
    // host has an image under that name; `pull = "missing"` uses that one.
    let moving = "127.0.0.1:9/berth-test/present:latest";
    dockerd.docker_ok(&["tag", IMAGE, moving]);
    let manifest = |version: &str, pull: &str| {
        format!(
            "app = \"moving\"\nversion = \"{version}\"\n[target]\nhosts = [\"box-2\"]\n[container]\nimage = \"{moving}\"\nport = 8080\ncommand = {HTTPD}\nstop_timeout = \"1s\"\n{pull}"
        )
    };
    let deploy = |version: &str, pull: &str| {
        let bundle = write_bundle(
            controller.dir.path(),
            "moving",
            &manifest(version, pull),
            &[],
        );
        controller.deploy(&bundle)
    };
    let (code, deployment, stderr) = deploy("1", "");
    assert_eq!(code, 1, "{stderr}");
    let message = deployment["error_message"].as_str().expect("message");
    assert!(
        message.contains(&format!("image {moving} could not be pulled on host box-2"))
            && message.contains("pull = \"always\"")
            && message.contains("set pull = \"missing\""),
        "{message}"
    );
    let (code, deployment, stderr) = deploy("2", "pull = \"missing\"\n");
    assert_eq!(code, 0, "{stderr}\n{deployment:#}");
    assert_eq!(
        http_get(&host_port(&deployment, 0), "/").as_deref(),
        Some("hello from the test image\n")
    );
    let (code, deployment, stderr) = deploy("3", "pull = \"never\"\n");
    assert_eq!(code, 0, "{stderr}\n{deployment:#}");

    // `never` with the image absent names the host and the ways out.
    dockerd.docker_ok(&["rmi", moving]);
    let (code, deployment, stderr) = deploy("4", "pull = \"never\"\n");
    assert_eq!(code, 1, "{stderr}");
    let message = deployment["error_message"].as_str().expect("message");
    assert!(
        message.contains(&format!(
            "image {moving} is not on host box-2, and pull = \"never\""
        )),
        "{message}"
    );
}

fn an_image_archive_reaches_hosts_without_the_image(dockerd: &Dockerd) {
    let controller = Controller::start();
    let _a = agent_with_docker(&controller, "arch-1", dockerd);
    let _b = agent_with_docker(&controller, "arch-2", dockerd);
    let archived = "berth-test/archived:7";
    dockerd.docker_ok(&["tag", IMAGE, archived]);
    let archive = dockerd.path().join("archived.tar");
    dockerd.docker_ok(&["save", "-o", archive.to_str().expect("path"), archived]);
    dockerd.docker_ok(&["rmi", archived]);
    let deploy = |version: &str, archive: &Path| {
        let manifest = format!(
            "app = \"packed\"\nversion = \"{version}\"\n[target]\nlabels = {{ role = \"web\" }}\n[container]\nimage = \"{archived}\"\nport = 8080\ncommand = {HTTPD}\nstop_timeout = \"1s\"\n"
        );
        let bundle = write_bundle(controller.dir.path(), "packed", &manifest, &[]);
        controller.berth(&[
            "deploy",
            "--bundle",
            bundle.to_str().expect("path"),
            "--image-archive",
            archive.to_str().expect("path"),
            "-o",
            "json",
        ])
    };
    let result = deploy("1", &archive);
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert!(
        result.stderr.contains("image archive sha256:"),
        "{}",
        result.stderr
    );
    let deployment: serde_json::Value = serde_json::from_str(&result.stdout).expect("json");
    assert_eq!(deployment["status"], "deployed");
    assert_eq!(deployment["tasks"].as_array().map(Vec::len), Some(2));
    let logs = controller.berth(&["logs", &id_of(&deployment)]).ok();
    assert!(
        logs.contains(&format!("loading image {archived} from archive")),
        "{logs}"
    );
    for task in 0..2 {
        let port = host_port(&deployment, task);
        assert_eq!(
            http_get(&port, "/").as_deref(),
            Some("hello from the test image\n")
        );
    }

    // A new archive under the same tag (a rebuilt image) while the hosts
    // still hold the old image under that tag: the archive wins.
    let old_id = dockerd.docker_ok(&["image", "inspect", "--format", "{{.Id}}", archived]);
    let page = dockerd.path().join("rebuilt.html");
    std::fs::write(&page, "hello from the rebuilt image\n").expect("page");
    dockerd.docker_ok(&["create", "--name", "berth-test-rebuild", archived, "sh"]);
    dockerd.docker_ok(&[
        "cp",
        page.to_str().expect("path"),
        "berth-test-rebuild:/www/index.html",
    ]);
    dockerd.docker_ok(&["commit", "berth-test-rebuild", archived]);
    dockerd.docker_ok(&["rm", "berth-test-rebuild"]);
    let rebuilt = dockerd.path().join("rebuilt.tar");
    dockerd.docker_ok(&["save", "-o", rebuilt.to_str().expect("path"), archived]);
    dockerd.docker_ok(&["tag", old_id.trim(), archived]);
    let result = deploy("2", &rebuilt);
    assert_eq!(result.code, 0, "{}", result.stderr);
    let deployment: serde_json::Value = serde_json::from_str(&result.stdout).expect("json");
    let logs = controller.berth(&["logs", &id_of(&deployment)]).ok();
    assert!(
        logs.contains(&format!(
            "image {archived} is on this host, but not the one in archive"
        )),
        "{logs}"
    );
    for task in 0..2 {
        let port = host_port(&deployment, task);
        assert_eq!(
            http_get(&port, "/").as_deref(),
            Some("hello from the rebuilt image\n")
        );
    }

    // The same archive again: what it loaded is still there, nothing to load.
    let result = deploy("3", &rebuilt);
    assert_eq!(result.code, 0, "{}", result.stderr);
    let deployment: serde_json::Value = serde_json::from_str(&result.stdout).expect("json");
    let logs = controller.berth(&["logs", &id_of(&deployment)]).ok();
    assert!(
        logs.contains("is already on this host") && !logs.contains("loading image"),
        "{logs}"
    );
}

/// After a failed deploy of `app`: the previous version still answers on
/// `port` with `body`, and the new container is gone.
fn assert_previous_kept(dockerd: &Dockerd, app: &str, port: &str, body: &str) {
    assert_eq!(
        http_get(port, "/").as_deref(),
        Some(body),
        "the previous version of {app} still serves"
    );
    assert_eq!(
        dockerd.containers_of(app).len(),
        1,
        "the failed container of {app} was removed: {:?}",
        dockerd.containers_of(app)
    );
}

/// Deploys a manifest expected to succeed; the deployment as JSON.
fn deploy_good(controller: &Controller, manifest: &str) -> serde_json::Value {
    let good = write_bundle(controller.dir.path(), "good", manifest, &[]);
    let (code, deployment, stderr) = controller.deploy(&good);
    assert_eq!(code, 0, "{stderr}\n{deployment:#}");
    deployment
}

/// `berth cancel` during the new container's health check: the new
/// container goes, the old one keeps running, status `canceled`.
fn canceling_a_container_deploy_removes_the_new_container(dockerd: &Dockerd) {
    let controller = Controller::start();
    let _agent = agent_with_docker(&controller, "box-cancel", dockerd);
    let manifest =
        |version: &str, check: &str| checked_manifest("halted", "box-cancel", version, check, "5m");
    let first = deploy_good(&controller, &manifest("1", "/index.html"));
    assert_eq!(first["status"], "deployed");
    let before = dockerd.containers_of("halted");
    assert_eq!(before.len(), 1, "{before:?}");

    let slow = write_bundle(controller.dir.path(), "slow", &manifest("2", "/never"), &[]);
    let created = controller
        .berth(&[
            "deploy",
            "--bundle",
            slow.to_str().expect("path"),
            "--detach",
            "-o",
            "json",
        ])
        .json();
    let id = id_of(&created);
    berth_tests::eventually(
        "the new container's health check running",
        400,
        std::time::Duration::from_millis(50),
        || (controller.show(&id)["tasks"][0]["status"] == "health").then_some(()),
    );
    assert_eq!(
        dockerd.containers_of("halted").len(),
        2,
        "old and new side by side"
    );
    let canceled = controller.berth(&["cancel", &id, "-o", "json"]).json();
    assert_eq!(canceled["status"], "canceled", "{canceled:#}");
    assert_eq!(canceled["tasks"][0]["status"], "canceled", "{canceled:#}");
    assert_eq!(
        dockerd.containers_of("halted"),
        before,
        "the new container is removed, the old one untouched"
    );
}

fn an_unhealthy_container_never_takes_over(dockerd: &Dockerd) {
    let controller = Controller::start();
    let agent = agent_with_docker(&controller, "box-3", dockerd);
    let manifest =
        |version: &str, check: &str| checked_manifest("checked", "box-3", version, check, "3s");
    let first = deploy_good(&controller, &manifest("1", "/index.html"));
    let stages: Vec<&str> = first["tasks"][0]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .filter_map(|s| s["stage"].as_str())
        .collect();
    assert_eq!(stages, ["deploy", "health"], "health is its own stage");
    let health = &first["tasks"][0]["stages"][1];
    assert_eq!(health["details"]["health"], "passed");
    assert!(
        health["details"]["health_probe"]
            .as_str()
            .is_some_and(|probe| probe.contains("HTTP 200")),
        "{health:#}"
    );
    let port = host_port(&first, 0);
    let status = controller.berth(&["status", "-o", "json"]).json();
    assert!(
        status[0]["health"]
            .as_str()
            .is_some_and(|health| health == "healthy" || health.starts_with("unknown")),
        "{status:#}"
    );
    let bad = write_bundle(
        controller.dir.path(),
        "bad",
        &manifest("2", "/missing"),
        &[],
    );
    let (code, second, _) = controller.deploy(&bad);
    assert_eq!(code, 1);
    assert_eq!(second["status"], "failed", "{second:#}");
    assert_eq!(second["error_step"], "health");
    let stage = second["tasks"][0]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["stage"] == "health")
        .expect("health stage")
        .clone();
    assert!(
        stage["details"]["health_probe"]
            .as_str()
            .is_some_and(|probe| probe.contains("HTTP 404")),
        "{stage:#}"
    );
    assert!(
        stage["details"]["health_output"]
            .as_str()
            .is_some_and(|body| !body.is_empty()),
        "the probe's body is kept: {stage:#}"
    );
    assert!(
        stage["details"].get("container_logs").is_some(),
        "the container's last lines are kept: {stage:#}"
    );
    let shown = controller.berth(&["show", &id_of(&second)]).ok();
    assert!(
        shown.contains("HTTP 404") && shown.contains("container_logs"),
        "berth show tells why:\n{shown}"
    );
    assert_previous_kept(dockerd, "checked", &port, "hello from the test image\n");

    // A version whose container dies at once, with a health `probe`; the
    // failed deployment.
    let deploy_dying = |version: &str, probe: &str| {
        let manifest = format!(
            "app = \"checked\"\nversion = \"{version}\"\n[target]\nhosts = [\"box-3\"]\n[container]\nimage = \"{IMAGE}\"\nport = 8080\ncommand = [\"sh\", \"-c\", \"echo dying now; exit 7\"]\nstop_timeout = \"1s\"\n[health]\n{probe}\ninterval = \"200ms\"\ntimeout = \"10m\"\n"
        );
        let bundle = write_bundle(
            controller.dir.path(),
            &format!("dying-{version}"),
            &manifest,
            &[],
        );
        let (code, deployment, stderr) = controller.deploy(&bundle);
        assert_eq!(code, 1, "{stderr}");
        deployment
    };

    // A container that dies while its health is checked fails the check
    // at once, saying so with its last lines, not at the check's timeout.
    let third = deploy_dying("3", "http = \"/index.html\"");
    assert_eq!(third["error_step"], "health", "{third:#}");
    let message = third["error_message"].as_str().unwrap_or_default();
    assert!(
        // Docker's restart policy may have started it again already.
        (message.contains("exited with code 7 while its health was checked")
            || message.contains("kept exiting while its health was checked"))
            && message.contains("dying now"),
        "{third:#}"
    );
    assert_previous_kept(dockerd, "checked", &port, "hello from the test image\n");

    // A TCP check proves too little (Docker's port proxy accepts while
    // nothing listens inside): the new container must first stay up.
    let fourth = deploy_dying("4", "tcp = true");
    assert_eq!(fourth["error_step"], "deploy", "{fourth:#}");
    assert!(
        fourth["error_message"]
            .as_str()
            .is_some_and(|message| message.contains("during start-up")),
        "{fourth:#}"
    );
    assert_previous_kept(dockerd, "checked", &port, "hello from the test image\n");

    // Version 1 keeps being checked: once it fails, status and inspect say so.
    let running = dockerd.containers_of("checked")[0]
        .split_whitespace()
        .next()
        .expect("name")
        .to_string();
    dockerd.docker_ok(&["exec", &running, "rm", "/www/index.html"]);
    assert!(
        agent
            .process()
            .stderr
            .wait_for("now unhealthy", berth_tests::DEADLINE)
            .is_some(),
        "{}",
        agent.process().log_tail()
    );
    // The verdict reaches the controller with the agent's next heartbeat.
    let status = berth_tests::eventually(
        "status showing unhealthy",
        40,
        std::time::Duration::from_millis(250),
        || {
            let status = controller.berth(&["status", "-o", "json"]).json();
            status[0]["health"]
                .as_str()
                .is_some_and(|health| health.starts_with("unhealthy"))
                .then_some(status)
        },
    );
    let health = status[0]["health"].as_str().unwrap_or_default();
    assert!(
        health.starts_with("unhealthy") && health.contains("box-3") && health.contains("404"),
        "{status:#}"
    );
    let inspect = controller
        .berth(&["inspect", "checked", "-o", "json"])
        .json();
    assert!(
        inspect[0]["containers"][0]["health"]
            .as_str()
            .is_some_and(|health| health.starts_with("unhealthy")),
        "{inspect:#}"
    );
}

/// Two apps behind Caddy on one host. The site is redeployed three times
/// (the third fails its health check) while clients keep asking both apps:
/// not one request may fail, the site's answers move from v1 to v2 to v3,
/// the other app is never disturbed. Then Caddy restarts empty and gets
/// the routes back, an HTTPS route with Caddy's internal CA answers, and
/// stop removes the site's route.
fn proxied_apps_switch_without_dropping_requests(dockerd: &Dockerd) {
    let Some(mut caddy) =
        berth_tests::caddy::Caddy::start("proxied_apps_switch_without_dropping_requests")
    else {
        return;
    };
    // Start from a host where Caddy's reloads reset waiting connections;
    // the agent must turn the kernel's handover on before its first route.
    let _handover = MigrateReq::off();
    let controller = Controller::start();
    let (http_port, https_port) = (
        caddy.http_port.to_string(),
        berth_tests::caddy::free_port().to_string(),
    );
    let args = [
        "--docker-host",
        &dockerd.host,
        "--caddy-admin",
        &caddy.admin,
        "--proxy-http-port",
        &http_port,
        "--proxy-https-port",
        &https_port,
    ];
    let agent = Agent::join_with_args(&controller, "edge-1", "role=web", &args);
    let www = controller.dir.path().join("proxied-www");
    let manifest = |app: &str, version: &str, check: &str, tls: &str| {
        format!(
            "app = \"{app}\"\nversion = \"{version}\"\n[target]\nhosts = [\"edge-1\"]\n[setup]\nrun = [\"mkdir -p {www}/{app}-{version} && cp index.html {www}/{app}-{version}/index.html\"]\n[container]\nimage = \"{IMAGE}\"\nport = 8080\nvolumes = [\"{www}/{app}-{version}:/www:ro\"]\ncommand = {HTTPD}\nstop_timeout = \"1s\"\n[health]\nhttp = \"{check}\"\ninterval = \"200ms\"\ntimeout = \"3s\"\n[proxy]\ndomain = \"{app}.test\"\ntls = \"{tls}\"\n",
            www = www.display()
        )
    };
    let deploy_version = |app: &str, version: &str, check: &str, tls: &str| {
        let bundle = write_bundle(
            controller.dir.path(),
            &format!("{app}-{version}"),
            &manifest(app, version, check, tls),
            &[("index.html", &format!("{app} {version}\n"))],
        );
        controller.deploy(&bundle)
    };
    let (code, other, stderr) = deploy_version("other", "o1", "/index.html", "off");
    assert_eq!(code, 0, "{stderr}\n{other:#}");
    let logs = controller.berth(&["logs", &id_of(&other)]).ok();
    assert!(
        logs.contains("set net.ipv4.tcp_migrate_req = 1"),
        "the proxy stage turns the reload handover on:\n{logs}"
    );
    let (code, first, stderr) = deploy_version("site", "v1", "/index.html", "off");
    assert_eq!(code, 0, "{stderr}\n{first:#}");
    let stages: Vec<&str> = first["tasks"][0]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .filter_map(|s| s["stage"].as_str())
        .collect();
    assert_eq!(stages, ["setup", "deploy", "health", "proxy"]);
    assert_eq!(
        caddy.get("site.test", "/"),
        Some((200, "site v1\n".to_string()))
    );
    let published = dockerd.docker_ok(&[
        "ps",
        "--filter",
        "label=berth.app=site",
        "--format",
        "{{.Ports}}",
    ]);
    assert!(
        published.starts_with("127.0.0.1:"),
        "behind a proxy the app is published on loopback only: {published}"
    );

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammer = |domain: &'static str| {
        let (stop, port) = (stop.clone(), caddy.http_port);
        std::thread::spawn(move || {
            let (mut answers, mut handshake_resets) = (Vec::new(), 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut answer = get_via(port, domain);
                // The one reset a reload can still cause: the kernel
                // resets a handshake that completes just as Caddy closes
                // the old listener, before any byte was sent. Counted,
                // bounded below, and retried once as the client would.
                if answer.as_ref().is_err_and(|err| err == HANDSHAKE_RESET) {
                    handshake_resets += 1;
                    answer = get_via(port, domain);
                }
                answers.push(answer);
            }
            (answers, handshake_resets)
        })
    };
    let (site_client, other_client) = (hammer("site.test"), hammer("other.test"));
    for version in ["v2", "v3"] {
        let (code, deployment, stderr) = deploy_version("site", version, "/index.html", "off");
        assert_eq!(code, 0, "{stderr}\n{deployment:#}");
    }
    let (code, failed, _) = deploy_version("site", "v4", "/missing", "off");
    assert_eq!(
        (code, failed["error_step"].as_str()),
        (1, Some("health")),
        "{failed:#}"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let ((site_answers, site_resets), (other_answers, other_resets)) = (
        site_client.join().expect("site client"),
        other_client.join().expect("other client"),
    );
    eprintln!(
        "requests during the switches: site {}, other {}; handshakes reset by a reload: {}",
        site_answers.len(),
        other_answers.len(),
        site_resets + other_resets,
    );
    assert!(
        site_resets <= 2 && other_resets <= 2,
        "at most one handshake reset per client and route switch (two switches), saw {site_resets} and {other_resets}"
    );

    let site_failures: Vec<_> = site_answers
        .iter()
        .filter(|answer| !matches!(answer, Ok((200, _))))
        .collect();
    assert!(
        site_failures.is_empty(),
        "{} of {} site requests failed: {:?}",
        site_failures.len(),
        site_answers.len(),
        &site_failures[..site_failures.len().min(5)]
    );
    let mut seen: Vec<String> = Vec::new();
    for answer in &site_answers {
        let body = answer
            .as_ref()
            .map(|(_, body)| body.trim().to_string())
            .unwrap_or_default();
        if seen.last() != Some(&body) {
            seen.push(body);
        }
    }
    assert_eq!(
        seen,
        ["site v1", "site v2", "site v3"],
        "answers move forward one version at a time"
    );
    let other_failures: Vec<_> = other_answers
        .iter()
        .filter(|answer| !matches!(answer, Ok((200, body)) if body == "other o1\n"))
        .collect();
    assert!(
        other_answers.len() > 10 && other_failures.is_empty(),
        "the other app was disturbed: {:?}",
        &other_failures[..other_failures.len().min(5)]
    );

    // Fleet-wide inspect lists the routes the host's agent keeps.
    let inspected = controller.berth(&["inspect", "site", "-o", "json"]).json();
    let routes = inspected[0]["routes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        routes.len() == 1
            && routes[0]
                .as_str()
                .is_some_and(|route| route.starts_with("site.test -> 127.0.0.1:")),
        "{inspected:#}"
    );

    // Caddy restarts and forgets everything: the agent puts the routes back.
    caddy.restart_without_config();
    assert!(
        agent
            .process()
            .stderr
            .wait_for("route put back into Caddy", berth_tests::DEADLINE)
            .is_some(),
        "{}",
        agent.process().log_tail()
    );
    berth_tests::eventually(
        "both routes back in Caddy",
        40,
        std::time::Duration::from_millis(250),
        || {
            (caddy.get("site.test", "/") == Some((200, "site v3\n".to_string()))
                && caddy.get("other.test", "/") == Some((200, "other o1\n".to_string())))
            .then_some(())
        },
    );

    // The agent restarts while Caddy also lost its config: the restarted
    // agent puts the routes back from what it remembers.
    let mut agent = agent;
    agent.kill9();
    caddy.restart_without_config();
    agent.spawn();
    berth_tests::eventually(
        "the restarted agent restoring the routes",
        80,
        std::time::Duration::from_millis(250),
        || {
            (caddy.get("site.test", "/") == Some((200, "site v3\n".to_string()))
                && caddy.get("other.test", "/") == Some((200, "other o1\n".to_string())))
            .then_some(())
        },
    );

    // An HTTPS route with Caddy's internal CA.
    let (code, secure, stderr) = deploy_version("secure", "s1", "/index.html", "internal");
    assert_eq!(code, 0, "{stderr}\n{secure:#}");
    let resolve = format!("secure.test:{https_port}:127.0.0.1");
    let url = format!("https://secure.test:{https_port}/");
    let body = berth_tests::eventually(
        "the HTTPS route answering",
        40,
        std::time::Duration::from_millis(250),
        || {
            let out = std::process::Command::new("curl")
                .args(["-sk", "--max-time", "5", "--resolve", &resolve, &url])
                .output()
                .ok()?;
            let body = String::from_utf8_lossy(&out.stdout).into_owned();
            (body == "secure s1\n").then_some(body)
        },
    );
    assert_eq!(body, "secure s1\n");

    // Stop removes the site's route and leaves the other one.
    let stopped = controller.berth(&["stop", "site", "-o", "json"]).json();
    assert_eq!(stopped["status"], "stopped", "{stopped:#}");
    let after = caddy.get("site.test", "/");
    assert!(
        !after
            .as_ref()
            .is_some_and(|(_, body)| body.contains("site v")),
        "no route after stop: {after:?}"
    );
    assert_eq!(
        caddy.get("other.test", "/"),
        Some((200, "other o1\n".to_string()))
    );

    // Deleting an old deployment of the other app leaves its route;
    // deleting the current one removes it.
    let (code, newer, stderr) = deploy_version("other", "o2", "/index.html", "off");
    assert_eq!(code, 0, "{stderr}\n{newer:#}");
    assert_eq!(
        controller
            .berth(&["delete", &id_of(&other), "-o", "json"])
            .json()["status"],
        "deleted"
    );
    assert_eq!(
        caddy.get("other.test", "/"),
        Some((200, "other o2\n".to_string())),
        "the current route stays"
    );
    assert_eq!(
        controller
            .berth(&["delete", &id_of(&newer), "-o", "json"])
            .json()["status"],
        "deleted"
    );
    let gone = caddy.get("other.test", "/");
    assert!(
        !gone
            .as_ref()
            .is_some_and(|(_, body)| body.contains("other o")),
        "no route after deleting the current deployment: {gone:?}"
    );
    drop(agent);
}

/// One request through Caddy; the answer, or why there was none.
/// What `get_via` answers when the connection was reset before a byte of
/// the request was written.
const HANDSHAKE_RESET: &str = "connect: reset";

fn get_via(port: u16, domain: &str) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|err| {
        if err.kind() == std::io::ErrorKind::ConnectionReset {
            HANDSHAKE_RESET.to_string()
        } else {
            format!("connect: {err}")
        }
    })?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .map_err(|err| err.to_string())?;
    write!(stream, "GET / HTTP/1.0\r\nHost: {domain}\r\n\r\n")
        .map_err(|err| format!("write: {err}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|err| format!("read: {err} after {response:?}"))?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not HTTP: {response:?}"))?;
    Ok((
        status,
        response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or_default(),
    ))
}

fn an_unreachable_caddy_is_named(dockerd: &Dockerd) {
    let controller = Controller::start();
    let closed = format!("http://127.0.0.1:{}", berth_tests::caddy::free_port());
    let _agent = Agent::join_with_args(
        &controller,
        "edge-2",
        "role=web",
        &["--docker-host", &dockerd.host, "--caddy-admin", &closed],
    );
    let manifest = format!(
        "app = \"lonely\"\n[target]\nhosts = [\"edge-2\"]\n[container]\nimage = \"{IMAGE}\"\nport = 8080\ncommand = {HTTPD}\n[proxy]\ndomain = \"lonely.test\"\ntls = \"off\"\n"
    );
    let bundle = write_bundle(controller.dir.path(), "lonely", &manifest, &[]);
    let (code, deployment, _) = controller.deploy(&bundle);
    assert_eq!(code, 1);
    let message = deployment["error_message"].as_str().expect("message");
    assert!(
        message.contains("edge-2") && message.contains(&closed),
        "names the host and the address: {message}"
    );
    assert!(
        dockerd.containers_of("lonely").is_empty(),
        "nothing was started"
    );
}

/// `tls = "auto"` gets a certificate through ACME from the issuer the
/// operator set as Caddy's default (here Pebble), verified against that
/// issuer's root; `tls = "internal"` beside it still gets Caddy's own CA,
/// although the operator's default policy matches every name.
fn automatic_https_through_an_acme_server(dockerd: &Dockerd) {
    let test = "automatic_https_through_an_acme_server";
    let Some(pebble) = berth_tests::pebble::Pebble::start(test) else {
        return;
    };
    let default_issuer = serde_json::json!({ "tls": { "automation": { "policies": [{
        "issuers": [{
            "module": "acme",
            "ca": pebble.directory,
            "trusted_roots_pem_files": [pebble.api_cert],
        }]
    }]}}});
    let Some(caddy) =
        berth_tests::caddy::Caddy::start_with_apps(test, Some(default_issuer.to_string()))
    else {
        return;
    };
    let controller = Controller::start();
    let https_port = berth_tests::caddy::free_port().to_string();
    let args = [
        "--docker-host",
        &dockerd.host,
        "--caddy-admin",
        &caddy.admin,
        "--proxy-http-port",
        &caddy.http_port.to_string(),
        "--proxy-https-port",
        &https_port,
    ];
    let _agent = Agent::join_with_args(&controller, "edge-tls", "role=web", &args);
    let www = controller.dir.path().join("tls-www");
    for (app, tls) in [("public", None), ("inhouse", Some("internal"))] {
        let tls = tls
            .map(|tls| format!("tls = \"{tls}\"\n"))
            .unwrap_or_default();
        let manifest = format!(
            "app = \"{app}\"\nversion = \"1\"\n[target]\nhosts = [\"edge-tls\"]\n[setup]\nrun = [\"mkdir -p {www}/{app} && cp index.html {www}/{app}/index.html\"]\n[container]\nimage = \"{IMAGE}\"\nport = 8080\nvolumes = [\"{www}/{app}:/www:ro\"]\ncommand = {HTTPD}\nstop_timeout = \"1s\"\n[proxy]\ndomain = \"{app}.test\"\n{tls}",
            www = www.display()
        );
        let bundle = write_bundle(
            controller.dir.path(),
            app,
            &manifest,
            &[("index.html", &format!("{app} over https\n"))],
        );
        let (code, deployment, stderr) = controller.deploy(&bundle);
        assert_eq!(code, 0, "{stderr}\n{deployment:#}");
    }
    let verified_get = |app: &str, root: &std::path::Path| {
        let resolve = format!("{app}.test:{https_port}:127.0.0.1");
        let url = format!("https://{app}.test:{https_port}/");
        let last = std::cell::RefCell::new(String::new());
        let answered = (0..120).any(|_| {
            let out = std::process::Command::new("curl")
                .args(["-sS", "--max-time", "5", "--resolve", &resolve, "--cacert"])
                .arg(root)
                .arg(&url)
                .output()
                .expect("curl");
            if String::from_utf8_lossy(&out.stdout) == format!("{app} over https\n") {
                return true;
            }
            *last.borrow_mut() = String::from_utf8_lossy(&out.stderr).into_owned();
            std::thread::sleep(std::time::Duration::from_millis(250));
            false
        });
        assert!(
            answered,
            "{app}.test over HTTPS verified by {}: {}\ncaddy's tls app: {}",
            root.display(),
            last.borrow(),
            caddy.config("/config/apps/tls")
        );
    };
    verified_get("public", &pebble.issuing_root());
    let caddy_root = caddy
        .dir
        .path()
        .join("data/caddy/pki/authorities/local/root.crt");
    verified_get("inhouse", &caddy_root);
}

/// Sets `net.ipv4.tcp_migrate_req` to 0 for the test and puts the host's
/// own value back when dropped.
struct MigrateReq(Option<String>);

impl MigrateReq {
    const PATH: &str = "/proc/sys/net/ipv4/tcp_migrate_req";

    fn off() -> MigrateReq {
        let before = std::fs::read_to_string(Self::PATH).ok();
        if before.is_some() {
            std::fs::write(Self::PATH, "0\n").expect("set net.ipv4.tcp_migrate_req (needs root)");
        }
        MigrateReq(before)
    }
}

impl Drop for MigrateReq {
    fn drop(&mut self) {
        if let Some(before) = &self.0 {
            let _ = std::fs::write(Self::PATH, before);
        }
    }
}
