//! A setup script refused by the packaged unit's sandbox: the failure that
//! `berth deploy` prints names the cause and the drop-in to use, not only
//! `exited with code 1`. The agent runs with `INVOCATION_ID` set, as
//! systemd sets it for a service, and the script prints what `touch`
//! prints under `ProtectSystem=strict` (the booted-systemd test makes the
//! real refusal).

use std::process::Command;

use berth_tests::{Agent, Controller, Running, bin, write_bundle};

use super::assert_holds;

#[test]
fn a_sandbox_refusal_is_named_in_the_deploy_error_with_the_drop_in() {
    let controller = Controller::start();
    let token = controller.token(&[]);
    let agent = Agent::join_with(&controller, "boxed", "", &token).expect("join");
    let mut command = Command::new(bin("berth-agent"));
    command
        .args(["run", "--controller", &controller.url, "--data-dir"])
        .arg(&agent.dir)
        .env("INVOCATION_ID", "0123456789abcdef0123456789abcdef");
    let running = Running::spawn(command, &agent.dir.with_extension("boxed.log"));
    running.expect_connected("the agent with INVOCATION_ID");

    let manifest =
        "app = \"boxed\"\n[target]\nhosts = [\"boxed\"]\n[setup]\nrun = [\"./setup.sh\"]\n";
    let script = "#!/bin/sh\necho \"touch: cannot touch '/srv/shop/current': Read-only file system\" >&2\nexit 1\n";
    let bundle = write_bundle(
        controller.dir.path(),
        "boxed",
        manifest,
        &[("setup.sh", script)],
    );
    let deploy = controller.berth(&["deploy", "--bundle", bundle.to_str().expect("path")]);
    assert_eq!(deploy.code, 1, "{}\n{}", deploy.stdout, deploy.stderr);
    let said = format!("{}\n{}", deploy.stdout, deploy.stderr);
    assert_holds(
        &said,
        &[
            "command `./setup.sh` exited with code 1; the agent's systemd sandbox refused a write",
            "writable-paths.conf",
            "ReadWritePaths=/srv/shop",
        ],
    );
}
