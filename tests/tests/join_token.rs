//! Where `berth-agent join` takes its token from: the environment (quiet),
//! a file, stdin (`--token -`), or the command line, which works but warns
//! that every user of the host can read it in the process list. And a
//! hostile value is not repeated back in full in an error.

use std::io::Write;
use std::process::{Command, Stdio};

use berth_tests::{Controller, bin};

/// Runs `berth-agent join` for agent `name` with `how` deciding where the
/// token goes; returns the exit code and stderr.
fn join(controller: &Controller, name: &str, how: &str) -> (i32, String) {
    let token = controller.token(&[]);
    let dir = controller.dir.path().join(format!("agent-{name}"));
    let mut command = Command::new(bin("berth-agent"));
    command
        .args(["join", "--controller", &controller.url, "--name", name])
        .arg("--data-dir")
        .arg(&dir)
        .env_remove("BERTH_JOIN_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match how {
        "env" => {
            command.env("BERTH_JOIN_TOKEN", &token);
        }
        "file" => {
            let file = controller.dir.path().join(format!("{name}.token"));
            std::fs::write(&file, format!("{token}\n")).expect("token file");
            command.arg("--token-file").arg(&file);
        }
        "stdin" => {
            command.args(["--token", "-"]);
        }
        _ => {
            command.args(["--token", &token]);
        }
    }
    let mut child = command.spawn().expect("run berth-agent join");
    if let Some(mut stdin) = child.stdin.take()
        && how == "stdin"
    {
        writeln!(stdin, "{token}").expect("write the token");
    }
    let output = child.wait_with_output().expect("wait for join");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_join_token_comes_from_the_environment_a_file_or_stdin_and_argv_warns() {
    let controller = Controller::start();
    for (name, how) in [
        ("by-env", "env"),
        ("by-file", "file"),
        ("by-stdin", "stdin"),
    ] {
        let (code, stderr) = join(&controller, name, how);
        assert_eq!(code, 0, "{how}: {stderr}");
        assert!(!stderr.contains("warning"), "{how} is quiet: {stderr}");
    }
    let (code, stderr) = join(&controller, "by-argv", "argv");
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("warning: --token on the command line is visible"),
        "{stderr}"
    );
    let agents = controller.berth(&["agents", "ls", "-o", "json"]).json();
    assert_eq!(agents.as_array().map(Vec::len), Some(4), "{agents:#}");
}

#[test]
fn an_error_repeats_only_the_start_of_a_huge_value() {
    let controller = Controller::start();
    let _agent = berth_tests::Agent::join(&controller, "h1", "role=web");
    let huge = format!("{}=v", "k".repeat(100_000));
    let refused = controller.berth(&["agents", "label", "h1", &huge]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.len() < 1_000 && refused.stderr.contains("(100002 bytes)"),
        "the error names the value's start and its size only: {} bytes",
        refused.stderr.len()
    );
}

/// `berth token create` writes the controllers it uses into the token, so
/// `berth-agent join` needs no `--controller`; a token without them (the
/// HTTP API's, an older berth's) asks for one.
#[test]
fn an_agent_joins_the_controllers_the_token_names() {
    let controller = Controller::start();
    let join = |name: &str, token: &str| {
        let dir = controller.dir.path().join(format!("agent-{name}"));
        let output = Command::new(bin("berth-agent"))
            .args(["join", "--name", name, "--data-dir"])
            .arg(&dir)
            .env("BERTH_JOIN_TOKEN", token)
            .stdin(Stdio::null())
            .output()
            .expect("run berth-agent join");
        let identity = std::fs::read_to_string(dir.join("agent.toml")).unwrap_or_default();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stderr).into_owned(),
            identity,
        )
    };
    let token = controller.token(&[]);
    assert_eq!(
        token.split('.').count(),
        5,
        "the token names its controller"
    );
    let (code, stderr, identity) = join("by-token", &token);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        identity.contains(&format!("controller = \"{}\"", controller.url)),
        "{identity}"
    );

    let another = controller.token(&[]);
    let bare = another.split('.').take(4).collect::<Vec<_>>().join(".");
    let (code, stderr, _) = join("bare", &bare);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("names no controller") && stderr.contains("--controller"),
        "{stderr}"
    );
}
