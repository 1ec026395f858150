//! Build machines: a `[build]` with a Dockerfile runs once on a build agent
//! with its own Docker daemon, and the image reaches a web agent whose
//! daemon never had it, through the controller (no registry); the same
//! deploy again reuses the build; an artifact build places its file in the
//! hosts' work dirs; a failing build touches no host.

use berth_tests::docker::{Dockerd, http_get, static_busybox};
use berth_tests::{Agent, Controller, id_of, write_bundle};

const DOCKERFILE: &str = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nCMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n";

fn manifest(app: &str, version: &str) -> String {
    format!(
        "app = \"{app}\"\nversion = \"{version}\"\n[target]\nhosts = [\"web-1\"]\n[build]\nlabels = {{ role = \"build\" }}\ndockerfile = \"Dockerfile\"\n[container]\nport = 8080\nstop_timeout = \"1s\"\n[health]\nhttp = \"/index.html\"\ninterval = \"200ms\"\ntimeout = \"20s\"\n"
    )
}

fn web_bundle(
    controller: &Controller,
    name: &str,
    manifest: &str,
    page: &str,
) -> std::path::PathBuf {
    let bundle = write_bundle(
        controller.dir.path(),
        name,
        manifest,
        &[("Dockerfile", DOCKERFILE), ("www/index.html", page)],
    );
    let busybox = static_busybox().expect("static busybox");
    std::fs::copy(busybox, bundle.join("busybox")).expect("copy busybox into the bundle");
    bundle
}

/// The first `stage` of a task of `kind`.
fn stage(deployment: &serde_json::Value, kind: &str, stage: &str) -> serde_json::Value {
    deployment["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter(|task| task["kind"] == kind)
        .flat_map(|task| task["stages"].as_array().cloned().unwrap_or_default())
        .find(|found| found["stage"] == stage)
        .unwrap_or_else(|| panic!("no {kind} task with a {stage} stage: {deployment:#}"))
}

#[test]
fn a_build_agent_builds_once_and_hosts_run_the_image_without_a_registry() {
    let test = "a_build_agent_builds_once_and_hosts_run_the_image_without_a_registry";
    // The build daemon has no bridge of its own (`--bridge=none`: a
    // `FROM scratch` build runs no container), and it starts first because
    // a daemon started that way removes a `docker0` it finds; the web
    // daemon then makes its own.
    let Some(build_docker) = Dockerd::start_with(test, &["--bridge=none", "--iptables=false"])
    else {
        return;
    };
    let Some(web_docker) = Dockerd::start(test) else {
        return;
    };
    let controller = Controller::start();
    let _builder = Agent::join_with_args(
        &controller,
        "builder",
        "role=build",
        &["--docker-host", &build_docker.host],
    );
    let _web = Agent::join_with_args(
        &controller,
        "web-1",
        "role=web",
        &["--docker-host", &web_docker.host],
    );
    assert!(
        !web_docker
            .docker_ok(&["images", "--format", "{{.Repository}}"])
            .contains("berth/"),
        "the web daemon starts without the image"
    );

    let bundle = web_bundle(
        &controller,
        "site",
        &manifest("site", "1"),
        "built and shipped\n",
    );
    let started = std::time::Instant::now();
    let (code, first, stderr) = controller.deploy(&bundle);
    let first_took = started.elapsed();
    assert_eq!(code, 0, "{stderr}\n{first:#}");
    let transitions: Vec<&str> = first["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .filter(|t| t["subject"] == "deployment")
        .filter_map(|t| t["to"].as_str())
        .collect();
    assert!(transitions.contains(&"building"), "{transitions:?}");
    let build = stage(&first, "build", "build");
    assert_eq!(build["outcome"], "succeeded", "{build:#}");
    assert_eq!(build["details"]["image"], "berth/site:1", "{build:#}");
    let build_task = first["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|task| task["kind"] == "build")
        .expect("a build task");
    assert_eq!(build_task["host"], "builder");
    let id = id_of(&first);
    let build_logs = controller.berth(&["logs", &id, "--stage", "build"]).ok();
    assert!(
        build_logs.contains("COPY busybox"),
        "the builder's output is in the logs:\n{build_logs}"
    );
    assert!(
        web_docker
            .docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .contains("berth/site:1"),
        "the web daemon loaded the shipped image"
    );
    let port = stage(&first, "deploy", "deploy")["details"]["host_port"]
        .as_str()
        .expect("host port")
        .to_string();
    assert_eq!(
        http_get(&port, "/index.html").as_deref(),
        Some("built and shipped\n")
    );

    // The same deploy again: the build is reused, not repeated.
    let started = std::time::Instant::now();
    let (code, second, stderr) = controller.deploy(&bundle);
    let second_took = started.elapsed();
    assert_eq!(code, 0, "{stderr}\n{second:#}");
    let reused = stage(&second, "build", "build");
    assert_eq!(reused["details"]["reused_from"], id.as_str(), "{reused:#}");
    assert_eq!(reused["duration_ms"], 0);
    let logs = controller
        .berth(&["logs", &id_of(&second), "--stage", "build"])
        .ok();
    assert!(logs.contains("build reused from deployment"), "{logs}");
    assert!(
        !logs.contains("COPY busybox"),
        "nothing was built again:\n{logs}"
    );
    eprintln!(
        "first deploy with build {first_took:?}, second with the build reused {second_took:?}"
    );

    // A build that fails touches no host.
    let broken = write_bundle(
        controller.dir.path(),
        "broken",
        &manifest("broken", "1"),
        &[("Dockerfile", "FROM scratch\nCOPY missing-file /x\n")],
    );
    let (code, failed, _) = controller.deploy(&broken);
    assert_eq!(code, 1);
    assert_eq!(failed["status"], "failed", "{failed:#}");
    assert_eq!(failed["error_step"], "build", "{failed:#}");
    assert!(
        failed["error_message"]
            .as_str()
            .is_some_and(|message| message.contains("builder") && message.contains("missing-file")),
        "{failed:#}"
    );
    let web_task = failed["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|task| task["kind"] == "deploy")
        .expect("the host's task");
    assert_eq!(web_task["status"], "canceled", "{failed:#}");
    assert!(
        web_docker.containers_of("broken").is_empty(),
        "no container on the host"
    );
}

#[test]
fn an_artifact_build_reaches_every_host_before_setup() {
    let controller = Controller::start();
    let _builder = Agent::join(&controller, "builder", "role=build");
    let _web = Agent::join(&controller, "web-1", "role=web");
    let _web2 = Agent::join(&controller, "web-2", "role=web");
    let manifest = "app = \"tool\"\nversion = \"7\"\n[target]\nlabels = { role = \"web\" }\n[build]\nlabels = { role = \"build\" }\nrun = [\"mkdir -p dist\", \"echo made on $BERTH_HOST > dist/tool.txt\"]\nartifact = \"dist/tool.txt\"\n[setup]\nrun = [\"cat $BERTH_ARTIFACT\", \"test -f tool.txt\"]\n";
    let bundle = write_bundle(controller.dir.path(), "tool", manifest, &[]);
    let (code, deployment, stderr) = controller.deploy(&bundle);
    assert_eq!(code, 0, "{stderr}\n{deployment:#}");
    let id = id_of(&deployment);
    for host in ["web-1", "web-2"] {
        let lines = controller.stdout_lines(&id, Some(host));
        assert_eq!(
            lines,
            ["made on builder"],
            "{host} read the artifact in setup"
        );
    }
    let build = stage(&deployment, "build", "build");
    assert_eq!(build["details"]["artifact"], "tool.txt", "{build:#}");

    // The same inputs reuse the artifact; --rebuild builds it again.
    let (code, again, stderr) = controller.deploy(&bundle);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stage(&again, "build", "build")["details"]["reused_from"],
        id.as_str()
    );
    let rebuilt = controller
        .berth(&[
            "deploy",
            "--bundle",
            bundle.to_str().expect("path"),
            "--rebuild",
            "-o",
            "json",
        ])
        .json();
    let build = stage(&rebuilt, "build", "build");
    assert!(build["details"].get("reused_from").is_none(), "{build:#}");
    let builder_task = rebuilt["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|task| task["kind"] == "build")
        .expect("build task");
    assert_eq!(builder_task["host"], "builder", "{rebuilt:#}");
}

#[test]
fn a_build_agent_that_goes_away_fails_the_build_as_lost() {
    let controller = Controller::start_with_grace("2s");
    let mut builder = Agent::join(&controller, "builder", "role=build");
    let _web = Agent::join(&controller, "web-1", "role=web");
    let marker = controller.dir.path().join("building");
    let manifest = format!(
        "app = \"slow\"\n[target]\nhosts = [\"web-1\"]\n[build]\nlabels = {{ role = \"build\" }}\nrun = [\"touch {}\", \"sleep 60\"]\nartifact = \"out\"\n",
        marker.display()
    );
    let bundle = write_bundle(controller.dir.path(), "slow", &manifest, &[]);
    let id = id_of(&controller.deploy_detached(&bundle, &[]).json());
    berth_tests::eventually(
        "the build to start",
        400,
        std::time::Duration::from_millis(50),
        || marker.exists().then_some(()),
    );
    // The fleet view says which agent builds what.
    let agents = controller.berth(&["agents", "ls", "-o", "json"]).json();
    let building = agents
        .as_array()
        .expect("agents")
        .iter()
        .find(|agent| agent["name"] == "builder")
        .expect("the builder");
    assert_eq!(
        building["running_tasks"][0]["status"], "build",
        "{building:#}"
    );
    assert_eq!(building["running_tasks"][0]["app"], "slow", "{building:#}");
    let status = controller.berth(&["status", "-o", "json"]).json();
    assert_eq!(
        status[0]["build_state"], "building on builder",
        "{status:#}"
    );

    builder.kill9();
    let ended = controller.wait_quiet(&id);
    assert_eq!(ended["status"], "failed", "{ended:#}");
    assert_eq!(ended["error_step"], "build", "{ended:#}");
    let task = ended["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|task| task["kind"] == "build")
        .expect("build task");
    assert_eq!(task["status"], "lost", "{ended:#}");
    let host_task = ended["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|task| task["kind"] == "deploy")
        .expect("deploy task");
    assert_eq!(
        host_task["status"], "canceled",
        "no host was touched: {ended:#}"
    );
    berth_tests::kill_processes_in(&builder.dir.join("work").join(format!("{id}.build")));
}
