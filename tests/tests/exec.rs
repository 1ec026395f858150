//! `berth exec` on two local agents: output prefixed by host, exit codes,
//! arguments passed without a shell, timeouts killing the command, and the
//! stored job in `-o json`.

use berth_tests::{Agent, Controller};

#[test]
fn exec_runs_on_every_matching_host_and_reports_each() {
    let controller = Controller::start();
    let _a = Agent::join(&controller, "e1", "role=web");
    let _b = Agent::join(&controller, "e2", "role=db");

    let out = controller.berth(&[
        "exec",
        "--selector",
        "role=web",
        "--",
        "echo",
        "hi $HOME",
        "it's",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout.lines().next(),
        Some("e1 | hi $HOME it's"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("e2"),
        "only the matching host: {}",
        out.stdout
    );

    let job = controller
        .berth(&[
            "exec",
            "-o",
            "json",
            "--",
            "sh",
            "-c",
            "echo $BERTH_HOST; echo oops >&2; exit 3",
        ])
        .stdout;
    let job: serde_json::Value = serde_json::from_str(&job).expect("job JSON");
    let hosts = job["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 2, "{job:#}");
    for host in hosts {
        let name = host["host"].as_str().expect("host");
        assert_eq!(host["status"], "failed", "{host:#}");
        assert_eq!(host["exit_code"], 3, "{host:#}");
        // stdout and stderr are separate pipes: their order may differ.
        let mut output: Vec<&str> = host["output"]
            .as_array()
            .expect("output")
            .iter()
            .filter_map(|line| line.as_str())
            .collect();
        output.sort_unstable();
        assert_eq!(output, [name, "stderr: oops"], "{host:#}");
    }
    let failing = controller.berth(&["exec", "--", "false"]);
    assert_eq!(failing.code, 1, "{}", failing.stderr);

    let started = std::time::Instant::now();
    let slow = controller.berth(&["exec", "-o", "json", "--timeout", "1s", "--", "sleep", "30"]);
    assert_eq!(slow.code, 1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "no hang"
    );
    let job: serde_json::Value = serde_json::from_str(&slow.stdout).expect("job JSON");
    assert!(
        job["hosts"]
            .as_array()
            .expect("hosts")
            .iter()
            .all(|host| host["status"] == "timed_out"),
        "{job:#}"
    );
    let missing = controller.berth(&["exec", "--", "no-such-program-here"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stdout.contains("was not found"),
        "{}",
        missing.stdout
    );

    let none = controller.berth(&["exec", "--selector", "role=nothing", "--", "true"]);
    assert_eq!(none.code, 1, "{}", none.stderr);
    assert!(none.stderr.contains("no agent matches"), "{}", none.stderr);
    let audit = controller.berth(&["audit", "-o", "json"]).json();
    assert!(
        audit
            .as_array()
            .expect("entries")
            .iter()
            .any(|entry| entry["action"] == "exec"),
        "{audit:#}"
    );
}

/// A controller stopped while a fleet command runs still stores and
/// audits the job, each host's run saying why it ended.
#[test]
fn a_controller_stopped_mid_exec_stores_the_job() {
    let mut controller = Controller::start();
    let _agent = Agent::join(&controller, "e1", "role=web");
    let exec = controller.berth_spawn(&[
        "exec",
        "--timeout",
        "60s",
        "--",
        "sh",
        "-c",
        "echo started; sleep 60",
    ]);
    assert!(
        exec.stdout
            .wait_for("started", berth_tests::DEADLINE)
            .is_some(),
        "{}",
        exec.log_tail()
    );
    controller.restart_gracefully();
    let jobs = controller.berth(&["jobs", "ls", "-o", "json"]).json();
    let job = jobs[0]["id"].as_str().expect("the job was stored");
    let shown = controller
        .berth(&["jobs", "show", job, "-o", "json"])
        .json();
    let host = &shown["hosts"][0];
    assert_eq!(host["host"], "e1", "{shown:#}");
    assert_eq!(host["status"], "no_answer", "{shown:#}");
    assert!(
        host["error"]
            .as_str()
            .is_some_and(|error| error.contains("controller was stopped")),
        "{shown:#}"
    );
    assert_eq!(host["output"][0], "started", "{shown:#}");
    let audit = controller.berth(&["audit", "-o", "json"]).ok();
    assert!(audit.contains(&format!("job {job}")), "{audit}");
}
