//! What the CLI says when the controller goes away in the middle of a
//! call: the connection broke, not "your credential is refused" (TLS 1.3
//! checks a client certificate only after the request went out, so both
//! look alike on the wire; the CLI asks again to tell them apart).

use std::time::Duration;

use berth_tests::{Agent, Controller, DEADLINE};

#[test]
fn a_controller_that_dies_mid_call_is_named_as_such() {
    let mut controller = Controller::start();
    let _agent = Agent::join(&controller, "h1", "role=web");
    let mut exec = controller.berth_spawn(&[
        "exec",
        "--timeout",
        "60s",
        "--",
        "sh",
        "-c",
        "echo started; sleep 30",
    ]);
    assert!(
        exec.stdout.wait_for("started", DEADLINE).is_some(),
        "the command runs: {}",
        exec.log_tail()
    );
    controller.kill9();
    let code = exec.wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(1), "{}", exec.log_tail());
    let stderr = exec.stderr.all().join("\n");
    assert!(
        stderr.contains("broke during the call") && !stderr.contains("credential"),
        "the broken connection is named, not the credential:\n{stderr}"
    );
}
