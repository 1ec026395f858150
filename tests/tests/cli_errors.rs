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

/// With `-o json` an error is also a JSON object on stdout carrying the
/// controller's stable machine code, the message and the exit code.
#[test]
fn json_errors_carry_the_machine_code() {
    let controller = Controller::start();
    let cases: [(&[&str], &str, i32); 4] = [
        (
            &["show", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "-o", "json"],
            "deployment/not-found",
            4,
        ),
        (
            &["agents", "show", "nobody", "-o", "json"],
            "agent/not-found",
            4,
        ),
        (
            &["logs", "nosuchapp", "--env", "prod", "-o", "json"],
            "app/not-found",
            4,
        ),
        (
            &["registry", "logout", "r.example.com", "-o", "json"],
            "registry/not-found",
            4,
        ),
    ];
    for (args, code, exit) in cases {
        let out = controller.berth(args);
        assert_eq!(out.code, exit, "{args:?}: {}", out.stderr);
        let json: serde_json::Value = serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|err| panic!("{args:?}: stdout is not JSON ({err}): {}", out.stdout));
        assert_eq!(json["error"]["code"], code, "{args:?}: {json}");
        assert_eq!(json["error"]["exit_code"], exit, "{args:?}: {json}");
        let message = json["error"]["message"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty() && out.stderr.contains(message),
            "{args:?}: the same message goes to people on stderr: {json} / {}",
            out.stderr
        );
    }
}
