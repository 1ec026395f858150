//! The `berth` CLI's output through pipes: a reader that has gone away
//! (`berth ls -o json | missing-command`, `| head -c 10`) ends the command
//! quietly with success, never with a panic.

use std::process::Stdio;

use berth_tests::{Controller, bin};

/// Runs `berth args` with stdout a pipe whose reading end is already
/// closed, so its first write fails with `EPIPE`; returns the exit code
/// and stderr.
fn berth_into_closed_pipe(controller: &Controller, args: &[&str]) -> (i32, String) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let output = std::process::Command::new(bin("berth"))
        .args(args)
        .env("BERTH_CONFIG", controller.admin())
        .env("BERTH_CONTROLLER", &controller.url)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run berth");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let controller = Controller::start();
    for args in [
        &["ls", "-o", "json"][..],
        &["ls"],
        &["agents", "ls", "-o", "json"],
        &["token", "create"],
        &["whoami"],
    ] {
        let (code, stderr) = berth_into_closed_pipe(&controller, args);
        assert_eq!(code, 0, "berth {args:?} into a closed pipe: {stderr}");
        assert!(
            !stderr.contains("panicked"),
            "berth {args:?} panicked on a broken pipe: {stderr}"
        );
    }
}
