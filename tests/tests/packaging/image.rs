//! The controller image's entrypoint (`packaging/docker-entrypoint.sh`),
//! run here without Docker against the built binaries: `init` on the first
//! start with an empty data directory only, then `serve`, and a health
//! check that follows the controller.

use std::process::Command;

use berth_tests::{DEADLINE, Running, bin_dir};

use super::{packaging, run};

#[test]
fn controller_image_entrypoint_initializes_once_and_checks_health() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("the empty volume");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
        .to_string();
    let path = format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let entrypoint = |args: &[&str]| {
        let mut command = Command::new("sh");
        command
            .arg(packaging().join("docker-entrypoint.sh"))
            .args(args)
            .env("PATH", &path)
            .env("BERTH_DATA_DIR", &data)
            .env("BERTH_PORT", &port)
            .env("BERTH_LISTEN_HOST", "127.0.0.1")
            .env("BERTH_CONTROLLER_NAME", "127.0.0.1");
        command
    };
    let healthy = || run(&mut entrypoint(&["healthcheck"])).code == 0;
    let start = |log: &str| {
        let controller = Running::spawn(entrypoint(&[]), &dir.path().join(log));
        assert!(
            controller
                .stdout
                .wait_for("listening on", DEADLINE)
                .is_some(),
            "{}",
            controller.log_tail()
        );
        controller
    };

    let mut first = start("first.log");
    assert!(
        first
            .log_tail()
            .contains("first start: berth-controller init")
    );
    assert!(data.join("pki/ca.pem").exists() && data.join("admin.conf").exists());
    assert!(healthy(), "health check with the admin credential");
    first.kill9();
    assert!(!healthy(), "health check with the controller down");

    let mut second = start("second.log");
    assert!(
        !second.log_tail().contains("first start"),
        "{}",
        second.log_tail()
    );
    std::fs::rename(data.join("admin.conf"), dir.path().join("admin.conf")).expect("move");
    assert!(healthy(), "health check over TCP");
    second.kill9();

    let other = dir.path().join("other");
    std::fs::create_dir_all(other.join("stray")).expect("a non-empty volume");
    let refused = run(entrypoint(&[]).env("BERTH_DATA_DIR", &other));
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("refusing to initialize"),
        "{}",
        refused.stderr
    );
}
