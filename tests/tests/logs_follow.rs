//! `berth logs APP -f` on a deployed container app, against a private
//! Docker daemon: it follows the app's current deployment, and when a newer
//! deploy takes the app over (retiring the container it relays) it ends
//! saying so, with the command that follows the new deployment.

use berth_tests::docker::{Dockerd, IMAGE, http_get};
use berth_tests::{Agent, Controller, DEADLINE, id_of, write_bundle};

fn web_manifest(version: &str, www: &std::path::Path) -> String {
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
command = ["httpd", "-f", "-vv", "-p", "8080", "-h", "/www"]
stop_timeout = "1s"
"#,
        www = www.display()
    )
}

fn host_port(deployment: &serde_json::Value) -> String {
    deployment["tasks"][0]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|stage| stage["stage"] == "deploy")
        .and_then(|stage| stage["details"]["host_port"].as_str())
        .expect("host port")
        .to_string()
}

#[test]
fn logs_follow_says_when_a_newer_deploy_takes_over() {
    let test = "logs_follow_says_when_a_newer_deploy_takes_over";
    let Some(dockerd) = Dockerd::start(test) else {
        return;
    };
    dockerd.import_busybox(IMAGE);
    let controller = Controller::start();
    let _agent = Agent::join_with_args(
        &controller,
        "box-1",
        "role=web",
        &["--docker-host", &dockerd.host],
    );
    let www = controller.dir.path().join("www");
    std::fs::create_dir_all(&www).expect("www");
    let v1 = write_bundle(
        controller.dir.path(),
        "v1",
        &web_manifest("1", &www),
        &[("index.html", "one\n")],
    );
    let (code, first, stderr) = controller.deploy(&v1);
    assert_eq!(code, 0, "{stderr}");
    let port = host_port(&first);

    // By app name: the current deployment, relaying the container's output.
    let mut follow = controller.berth_spawn(&["logs", "web", "-f"]);
    berth_tests::eventually(
        "the app's request log in berth logs web -f",
        50,
        std::time::Duration::ZERO,
        || {
            let _ = http_get(&port, "/followed-request");
            follow
                .stdout
                .wait_for("followed-request", std::time::Duration::from_millis(200))
        },
    );
    assert!(
        follow.stderr.all().join("\n").contains(&id_of(&first)),
        "it names the deployment the app stands for: {:?}",
        follow.stderr.all()
    );

    let v2 = write_bundle(
        controller.dir.path(),
        "v2",
        &web_manifest("2", &www),
        &[("index.html", "two\n")],
    );
    let (code, second, stderr) = controller.deploy(&v2);
    assert_eq!(code, 0, "{stderr}");
    let newer = id_of(&second);
    assert_eq!(follow.wait_exit(DEADLINE), Some(0));
    let said = follow.stderr.all().join("\n");
    assert!(
        said.contains(&format!("by {newer}")) && said.contains(&format!("berth logs {newer} -f")),
        "{said}"
    );
}
