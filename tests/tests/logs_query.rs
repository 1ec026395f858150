//! `berth logs` filters (host, stage, stream, level, since, tail) through
//! the real CLI, and the notice when the retention sweeper deleted a
//! deployment's lines.

use berth_tests::{Agent, Cli, Controller, DEADLINE, eventually, id_of, write_bundle};
use serde_json::Value;

/// Both hosts run setup; web-2 fails it, which `max_failures = 1` allows,
/// so both tasks run to their end.
const MANIFEST: &str = r#"
app = "chatty"
[target]
labels = { role = "web" }
max_failures = 1
[setup]
run = ["./setup.sh"]
timeout = "1m"
"#;

/// web-2 fails only once the test releases it, so a live follower is
/// there when its failure report arrives.
const SETUP: &str = r#"#!/bin/sh
echo "out 1 from $BERTH_HOST"
echo "out 2 from $BERTH_HOST"
echo "out 3 from $BERTH_HOST"
# Apart in time, so a --since between them provably splits them.
sleep 0.2
echo "complaint 1 from $BERTH_HOST" >&2
echo "complaint 2 from $BERTH_HOST" >&2
if [ "$BERTH_HOST" = web-2 ]; then
  i=0
  while [ ! -e "$BERTH_WORK_DIR/release" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
  exit 3
fi
"#;

/// The JSON lines of `berth logs ID -o json ARGS...`.
fn logs(controller: &Controller, id: &str, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["logs", id, "-o", "json"];
    all.extend_from_slice(args);
    parse_lines(&controller.berth(&all).ok())
}

fn parse_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
        })
        .collect()
}

/// The entries of `all` that `keep` accepts, in order.
fn only(all: &[Value], keep: impl Fn(&Value) -> bool) -> Vec<Value> {
    all.iter().filter(|entry| keep(entry)).cloned().collect()
}

fn texts(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|entry| entry["line"].as_str().expect("line"))
        .collect()
}

#[test]
fn logs_filters_by_host_stage_stream_level_since_and_tail() {
    let controller = Controller::start();
    let _web1 = Agent::join(&controller, "web-1", "role=web");
    let web2 = Agent::join(&controller, "web-2", "role=web");
    let bundle = write_bundle(
        controller.dir.path(),
        "chatty",
        MANIFEST,
        &[("setup.sh", SETUP)],
    );
    let bundle = bundle.to_str().expect("path");
    let created = controller
        .berth(&["deploy", "--bundle", bundle, "--detach", "-o", "json"])
        .json();
    let id = id_of(&created);

    // A live follower of warnings and errors: once it has web-2's last
    // complaint it is following, and web-2's failure is still to come.
    let mut live = controller.berth_spawn(&["logs", &id, "-f", "--level", "warn", "-o", "json"]);
    assert!(
        live.stdout
            .wait_for("complaint 2 from web-2", DEADLINE)
            .is_some(),
        "{:?}",
        live.stdout.all()
    );
    let release = web2.dir.join("work").join(&id).join("release");
    std::fs::write(release, b"").expect("release web-2");
    assert!(live.wait_exit(DEADLINE).is_some(), "logs -f did not end");
    let deployment = controller.wait_quiet(&id);
    let stderr = format!("{deployment:#}");
    let failed = deployment["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|task| task["host"] == "web-2")
        .expect("web-2's task");
    let failure = failed["stages"][0]["error"]
        .as_str()
        .unwrap_or_else(|| panic!("web-2's setup failed with a message: {failed:#}\n{stderr}"))
        .to_string();

    let all = logs(&controller, &id, &[]);
    for host in ["web-1", "web-2"] {
        for line in ["out 3", "complaint 2"] {
            let text = format!("{line} from {host}");
            assert!(texts(&all).contains(&text.as_str()), "{text}: {all:#?}");
        }
    }

    let web1 = logs(&controller, &id, &["--host", "web-1"]);
    assert_eq!(web1, only(&all, |entry| entry["host"] == "web-1"));
    assert!(!web1.is_empty());
    let setup = logs(&controller, &id, &["--stage", "setup"]);
    assert_eq!(setup, only(&all, |entry| entry["stage"] == "setup"));
    let stderr_lines = logs(&controller, &id, &["--stream", "stderr"]);
    assert_eq!(
        stderr_lines,
        only(&all, |entry| entry["stream"] == "stderr")
    );
    assert_eq!(stderr_lines.len(), 4, "{stderr_lines:#?}");
    let bad = controller.berth(&["logs", &id, "--stream", "stdin"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("--stream"), "{}", bad.stderr);

    // warn: the scripts' stderr and web-2's failure report, nothing else.
    let warn = logs(&controller, &id, &["--level", "warn"]);
    let expected = only(&all, |entry| {
        entry["stream"] == "stderr" || (entry["stream"] == "system" && entry["line"] == *failure)
    });
    assert_eq!(warn, expected);
    assert_eq!(warn.len(), 5, "{warn:#?}");
    let error = logs(&controller, &id, &["--level", "error"]);
    assert_eq!(texts(&error), [failure.as_str()]);
    assert_eq!(error[0]["host"], "web-2");
    // Live, the failure report arrived before the record said it was one.
    let mut live = parse_lines(&live.stdout.all().join("\n"));
    let mut stored = warn.clone();
    for entries in [&mut live, &mut stored] {
        entries.sort_by_key(|entry| (entry["host"].to_string(), entry["seq"].as_u64()));
    }
    assert_eq!(live, stored);

    // --since a line's own time keeps it and what came after, and drops
    // everything before; a duration ago that covers the run keeps all.
    let pivot = all
        .iter()
        .find(|entry| entry["line"] == "complaint 1 from web-1")
        .expect("pivot line");
    let pivot_ts = pivot["ts"].as_str().expect("ts");
    let since = logs(&controller, &id, &["--since", pivot_ts]);
    assert_eq!(
        since,
        only(&all, |entry| entry["ts"].as_str().expect("ts") >= pivot_ts)
    );
    assert!(since.contains(pivot));
    assert!(
        !texts(&since).contains(&"out 1 from web-1"),
        "earlier lines of the same host are dropped"
    );
    assert_eq!(logs(&controller, &id, &["--since", "1h"]), all);
    let bad = controller.berth(&["logs", &id, "--since", "yesterday"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("--since") && bad.stderr.contains("RFC 3339"),
        "{}",
        bad.stderr
    );

    // --tail counts after the other filters: web-1's stdout lines come
    // before its stderr lines, so a tail of the raw lines has none.
    let tail = logs(
        &controller,
        &id,
        &["--host", "web-1", "--stream", "stdout", "--tail", "2"],
    );
    assert_eq!(texts(&tail), ["out 2 from web-1", "out 3 from web-1"]);
    let tail = logs(&controller, &id, &["--level", "error", "--tail", "3"]);
    assert_eq!(texts(&tail), [failure.as_str()]);
}

#[test]
fn logs_says_when_retention_deleted_the_lines() {
    // The sweep runs every tenth of the retention, at least every second.
    let controller = Controller::start_with(&["--log-retention", "2s"]);
    let _agent = Agent::join(&controller, "solo", "role=web");
    let manifest =
        "app = \"brief\"\n[target]\nhosts = [\"solo\"]\n[setup]\nrun = [\"echo short-lived\"]\n";
    let bundle = write_bundle(controller.dir.path(), "brief", manifest, &[]);
    let (code, deployment, stderr) = controller.deploy(&bundle);
    assert_eq!(code, 0, "{stderr}");
    let id = id_of(&deployment);

    // The sweeper announces nothing a client can wait on, so poll the CLI
    // until the notice shows, within the harness deadline.
    let swept: Cli = eventually("the retention sweep", 120, DEADLINE / 120, || {
        let result = controller.berth(&["logs", &id, "-o", "json"]);
        result.stderr.contains("retention").then_some(result)
    });
    assert_eq!(swept.code, 0, "{}", swept.stderr);
    assert_eq!(
        swept.stdout, "",
        "every line is gone and stdout holds only JSON"
    );
    let notice = swept.stderr.trim();
    assert!(
        notice.starts_with("logs before ")
            && notice.ends_with(
                " were deleted by the retention policy (2s); see berth-controller serve --log-retention"
            ),
        "{notice}"
    );

    // The table output says it too; a --since after the deleted lines
    // could not have shown them, so it does not.
    let table = controller.berth(&["logs", &id]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(table.stderr.contains(notice), "{}", table.stderr);
    let before = notice
        .strip_prefix("logs before ")
        .and_then(|rest| rest.split(' ').next())
        .expect("the time in the notice");
    let later = controller.berth(&["logs", &id, "-o", "json", "--since", before]);
    assert_eq!(later.code, 0, "{}", later.stderr);
    assert!(!later.stderr.contains("retention"), "{}", later.stderr);
    assert_eq!(parse_lines(&later.stdout), Vec::<Value>::new());
}
