//! A fleet of hosts, each in its own network namespace (see
//! `berth_tests::netns`): a rolling deploy that stops at the failing host,
//! `berth exec` across the fleet with a host whose cable is cut, `berth
//! stop --selector`, and the harness leaving nothing behind when a test
//! fails.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_shared::record::{Deployment, Task, TaskKind};
use berth_shared::state::{DeploymentStatus, TaskStatus};
use berth_tests::netns::{Fleet, ip_binary};
use berth_tests::{Agent, Controller, DEADLINE, bin, eventually, id_of, write_bundle};

const WEB: [&str; 3] = ["web-1", "web-2", "web-3"];

/// A controller in one namespace and the three web agents in three more.
/// Fields drop in order: agents, then the controller, then the namespaces.
struct Web {
    /// Held so the agents run until the test ends.
    _agents: Vec<Agent>,
    controller: Controller,
    fleet: Fleet,
}

impl Web {
    /// Starts the fleet, or skips `test` when this machine cannot build
    /// namespaces. `run_args(host)` are that host's extra `berth-agent
    /// run` arguments.
    fn start(test: &str, run_args: impl Fn(&str) -> &'static [&'static str]) -> Option<Web> {
        let fleet = Fleet::start(test, &["controller", "web-1", "web-2", "web-3"])?;
        let controller =
            Controller::start_in(fleet.netns("controller"), fleet.ip("controller"), &[]);
        assert!(
            controller.url.contains(fleet.ip("controller")),
            "the controller listens on its namespace address: {}",
            controller.url
        );
        let agents = WEB
            .iter()
            .map(|host| {
                Agent::join_in(
                    &controller,
                    fleet.netns(host),
                    host,
                    "role=web",
                    run_args(host),
                )
            })
            .collect();
        Some(Web {
            _agents: agents,
            controller,
            fleet,
        })
    }

    /// A directory under the test's temporary directory that the hosts'
    /// scripts write into.
    fn shared_dir(&self, name: &str) -> PathBuf {
        let dir = self.controller.dir.path().join(name);
        std::fs::create_dir_all(&dir).expect("shared dir");
        dir
    }

    /// Deploys a bundle and returns the exit code and the deployment.
    fn deploy(&self, name: &str, manifest: &str) -> (i32, Deployment, String) {
        let bundle = write_bundle(self.controller.dir.path(), name, manifest, &[]);
        let (code, deployment, stderr) = self.controller.deploy(&bundle);
        let deployment = serde_json::from_value(deployment)
            .unwrap_or_else(|err| panic!("berth deploy printed no deployment ({err}): {stderr}"));
        (code, deployment, stderr)
    }

    /// `berth show ID`, as the record.
    fn show(&self, id: &str) -> Deployment {
        serde_json::from_value(self.controller.show(id)).expect("a deployment record")
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|text| text.trim().to_string())
}

fn task<'a>(deployment: &'a Deployment, kind: TaskKind, host: &str) -> &'a Task {
    deployment
        .tasks
        .iter()
        .find(|task| task.kind == kind && task.host == host)
        .unwrap_or_else(|| panic!("no {kind:?} task for {host}: {deployment:#?}"))
}

/// A script app on every `role=web` host; setup writes the version it
/// deploys into `versions/HOST.version` and, when `fail_on` names a host,
/// fails there first.
fn versioned_manifest(
    version: &str,
    versions: &Path,
    fail_on: Option<&str>,
    rollout: &str,
) -> String {
    let check = fail_on
        .map(|host| format!("\"test \\\"$BERTH_HOST\\\" != {host}\", "))
        .unwrap_or_default();
    format!(
        "app = \"site\"\nversion = \"{version}\"\n[target]\nlabels = {{ role = \"web\" }}\n{rollout}\n\
         [setup]\nrun = [{check}\"echo $BERTH_VERSION > '{}'/$BERTH_HOST.version\"]\n",
        versions.display()
    )
}

#[test]
fn rolling_deploy_stops_at_the_failing_host() {
    let test = "fleet::rolling_deploy_stops_at_the_failing_host";
    // One slot on web-1, so that another app can keep it busy below. (An
    // agent's freed slots count again only from its next heartbeat; the
    // others keep spare ones so that their order stays the dispatcher's.)
    let one_slot_on_web_1 = |host: &str| match host {
        "web-1" => &["--slots", "1"][..],
        _ => &[],
    };
    let Some(web) = Web::start(test, one_slot_on_web_1) else {
        return;
    };
    let versions = web.shared_dir("versions");
    let (code, v1, stderr) = web.deploy("v1", &versioned_manifest("v1", &versions, None, ""));
    assert_eq!(code, 0, "v1 deploys everywhere: {stderr}");
    assert_eq!(v1.status, DeploymentStatus::Deployed);
    for host in WEB {
        let version = read_trimmed(&versions.join(format!("{host}.version")));
        assert_eq!(version.as_deref(), Some("v1"), "{host} runs v1");
    }

    // The dispatcher hands out tasks in an order the test cannot choose
    // (it walks agents in hash order), and web-2 may well come last. So
    // web-1's only slot is held by another app while v2 rolls out: whichever
    // of web-2 and web-3 goes first, web-1 is a host the rollout has not
    // started when web-2 fails.
    let gate = web.shared_dir("gate");
    let (busy, mut busy_follow) = hold_slot(&web, "web-1", &gate);

    // The hosts that switched keep v2 here (`leave`); putting them back
    // (the default, `rollback`) is fleet_rollback.rs's subject.
    let rollout = "max_parallel = 1\nmax_failures = 0\non_failure = \"leave\"";
    let manifest = versioned_manifest("v2", &versions, Some("web-2"), rollout);
    let (code, v2, stderr) = web.deploy("v2", &manifest);
    assert_eq!(code, 1, "a failed rollout exits 1: {stderr}");
    assert_eq!(v2.status, DeploymentStatus::Failed, "{v2:#?}");

    // Free web-1: its v2 task stays canceled, it never runs v2.
    std::fs::write(gate.join("release"), b"").expect("release web-1");
    assert!(
        busy_follow.wait_exit(DEADLINE).is_some(),
        "the busy app did not end"
    );
    assert_eq!(web.controller.wait_quiet(&busy)["status"], "deployed");

    let v2 = web.show(&v2.id.to_string());
    check_failure_is_named(&v2);
    check_rollout_stopped(&v2, &versions);
    check_one_host_at_a_time(&v2);
}

/// Deploys an app to `host` whose setup waits until `gate/release`
/// exists, and waits until it runs (holding the host's only slot).
/// Returns the deployment id and the `logs -f` follower, which ends with
/// the deployment.
fn hold_slot(web: &Web, host: &str, gate: &Path) -> (String, berth_tests::Running) {
    // The script's own bounded wait is how a test holds a script open.
    let manifest = format!(
        "app = \"busy\"\n[target]\nhosts = [\"{host}\"]\n[setup]\nrun = [\"echo busy on $BERTH_HOST\", \
         \"i=0; while [ ! -e '{}/release' ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\"]\n",
        gate.display()
    );
    let bundle = write_bundle(web.controller.dir.path(), "busy", &manifest, &[]);
    let created = web.controller.deploy_detached(&bundle, &[]).json();
    let id = id_of(&created);
    let follow = web.controller.berth_spawn(&["logs", &id, "-f"]);
    assert!(
        follow
            .stdout
            .wait_for(&format!("busy on {host}"), DEADLINE)
            .is_some(),
        "the busy app did not start on {host}: {:?}",
        follow.stdout.all()
    );
    (id, follow)
}

/// The deployment names web-2 and why it failed.
fn check_failure_is_named(v2: &Deployment) {
    assert_eq!(v2.error_step.as_deref(), Some("setup"), "{v2:#?}");
    let message = v2.error_message.as_deref().unwrap_or_default();
    assert!(
        message.contains("web-2") && message.contains("code 1"),
        "the error names the host and the exit code: {message}"
    );
    let failed = task(v2, TaskKind::Deploy, "web-2");
    assert_eq!(failed.status, TaskStatus::Failed, "{failed:#?}");
    assert_eq!(failed.error_step.as_deref(), Some("setup"));
    assert_eq!(failed.stages[0].exit_code, Some(1), "{failed:#?}");
}

/// Hosts done before web-2 failed run v2; the rest were never started,
/// are `canceled` and still run v1; web-2 itself still has v1.
fn check_rollout_stopped(v2: &Deployment, versions: &Path) {
    let failed_at = task(v2, TaskKind::Deploy, "web-2")
        .assigned_at
        .expect("web-2 was assigned");
    let mut never_started = Vec::new();
    for host in WEB {
        let task = task(v2, TaskKind::Deploy, host);
        let version = read_trimmed(&versions.join(format!("{host}.version")));
        match task.status {
            TaskStatus::Failed => assert_eq!(host, "web-2", "only web-2 fails: {task:#?}"),
            TaskStatus::Done => {
                assert_eq!(version.as_deref(), Some("v2"), "{host} finished v2");
                assert!(
                    task.finished_at.is_some_and(|at| at <= failed_at),
                    "{host} ran before web-2 failed: {v2:#?}"
                );
            }
            TaskStatus::Canceled => {
                assert_eq!(
                    task.assigned_at, None,
                    "{host} was never started: {task:#?}"
                );
                assert_eq!(version.as_deref(), Some("v1"), "{host} keeps v1");
                never_started.push(host);
            }
            other => panic!("{host}'s task ended {other}: {v2:#?}"),
        }
    }
    let mut ran: Vec<&Task> = v2
        .tasks
        .iter()
        .filter(|t| t.assigned_at.is_some())
        .collect();
    ran.sort_by_key(|task| task.assigned_at);
    let ran: Vec<&str> = ran.iter().map(|task| task.host.as_str()).collect();
    eprintln!("v2 ran on {ran:?} in that order; never started: {never_started:?}");
    assert!(
        never_started.contains(&"web-1"),
        "web-1 was busy, so the rollout never reached it: {v2:#?}"
    );
    let web2 = read_trimmed(&versions.join("web-2.version"));
    assert_eq!(web2.as_deref(), Some("v1"), "web-2's failed setup left v1");
}

/// With `max_parallel = 1`, each started task finished before the next
/// one was assigned.
fn check_one_host_at_a_time(v2: &Deployment) {
    let mut started: Vec<&Task> = v2
        .tasks
        .iter()
        .filter(|task| task.kind == TaskKind::Deploy && task.assigned_at.is_some())
        .collect();
    started.sort_by_key(|task| task.assigned_at);
    for pair in started.windows(2) {
        let (earlier, later) = (pair[0], pair[1]);
        assert!(
            earlier
                .finished_at
                .is_some_and(|done| Some(done) <= later.assigned_at),
            "{} was assigned before {} finished: {v2:#?}",
            later.host,
            earlier.host
        );
    }
}

/// Fails the test with a clear message when this build's `berth` lacks
/// `subcommand` (or `flag` in its help).
fn require_cli(web: &Web, subcommand: &[&str], flag: &str) {
    let mut args = subcommand.to_vec();
    args.push("--help");
    let help = web.controller.berth(&args);
    assert!(
        help.code == 0 && help.stdout.contains(flag),
        "`berth {}` with {flag} is not available in this build (exit {}): {}",
        subcommand.join(" "),
        help.code,
        help.stderr.trim()
    );
}

/// Runs `berth exec ARGS` (split on spaces) with a deadline: its exit
/// code, stdout, stderr and how long it took.
fn exec_text(web: &Web, args: &str) -> (i32, String, String, Duration) {
    let all: Vec<&str> = ["exec"].into_iter().chain(args.split(' ')).collect();
    let started = Instant::now();
    let mut run = web.controller.berth_spawn(&all);
    let code = run
        .wait_exit(DEADLINE)
        .unwrap_or_else(|| panic!("berth exec {args} did not return"));
    let elapsed = started.elapsed();
    let stdout = run.stdout.all().join("\n");
    (code, stdout, run.stderr.all().join("\n"), elapsed)
}

/// One `berth exec -o json ARGS` run: its exit code, its report and how
/// long it took.
fn exec(web: &Web, args: &str) -> (i32, serde_json::Value, Duration) {
    let (code, stdout, stderr, elapsed) = exec_text(web, &format!("-o json {args}"));
    let report = serde_json::from_str(&stdout).unwrap_or_else(|err| {
        panic!(
            "berth exec -o json {args} printed no JSON report ({err}), exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        )
    });
    (code, report, elapsed)
}

/// The report's entry for each host, checking that exactly the web hosts
/// are listed.
fn by_host(report: &serde_json::Value) -> std::collections::BTreeMap<String, serde_json::Value> {
    let hosts = report["hosts"]
        .as_array()
        .unwrap_or_else(|| panic!("no hosts in {report:#}"));
    let entries: std::collections::BTreeMap<String, serde_json::Value> = hosts
        .iter()
        .map(|entry| {
            (
                entry["host"].as_str().unwrap_or_default().to_string(),
                entry.clone(),
            )
        })
        .collect();
    let names: Vec<&str> = entries.keys().map(String::as_str).collect();
    assert_eq!(names, WEB, "every matching host, once: {report:#}");
    assert!(
        report["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{report:#}"
    );
    entries
}

#[test]
fn fleet_exec_runs_everywhere_and_names_silent_hosts() {
    let test = "fleet::fleet_exec_runs_everywhere_and_names_silent_hosts";
    let Some(web) = Web::start(test, |_| &[]) else {
        return;
    };
    require_cli(&web, &["exec"], "--selector");

    let everywhere = "--selector role=web --timeout 3s --";
    let (code, plain, stderr, _) = exec_text(&web, &format!("{everywhere} echo ok"));
    assert_eq!(code, 0, "every host exited 0:\n{plain}\n{stderr}");
    for host in WEB {
        assert!(
            plain
                .lines()
                .any(|line| line.starts_with(host) && line.ends_with("ok")),
            "{host}'s output is prefixed with its name:\n{plain}"
        );
    }

    let (code, report, _) = exec(&web, &format!("{everywhere} echo ok"));
    assert_eq!(code, 0, "every host exited 0: {report:#}");
    for (host, entry) in by_host(&report) {
        assert_eq!(entry["status"], "ok", "{host}: {entry:#}");
        assert_eq!(entry["exit_code"], 0, "{host}: {entry:#}");
        assert_eq!(
            entry["output"],
            serde_json::json!(["ok"]),
            "{host}: {entry:#}"
        );
    }

    let (code, report, _) = exec(&web, &format!("{everywhere} false"));
    assert_eq!(code, 1, "a failing command exits 1: {report:#}");
    for (host, entry) in by_host(&report) {
        assert_eq!(entry["status"], "failed", "{host}: {entry:#}");
        assert_eq!(entry["exit_code"], 1, "{host}: {entry:#}");
    }

    web.fleet.cut("web-3");
    let (code, report, elapsed) = exec(&web, "--selector role=web --timeout 2s -- echo ok");
    web.fleet.restore("web-3");
    assert_ne!(code, 0, "a silent host makes exec fail: {report:#}");
    assert!(
        elapsed < Duration::from_secs(20),
        "exec --timeout 2s took {elapsed:?} with a silent host"
    );
    let entries = by_host(&report);
    let status = entries["web-3"]["status"].as_str().unwrap_or_default();
    eprintln!("with its cable cut, web-3 was {status}; exec took {elapsed:?}");
    assert!(
        ["no_answer", "offline", "timed_out"].contains(&status),
        "web-3 is named as silent: {report:#}"
    );
    for host in ["web-1", "web-2"] {
        assert_eq!(entries[host]["status"], "ok", "{host}: {report:#}");
    }

    // Nothing announces that web-3's stream carries traffic again (the
    // connection may survive the cut, or reconnect after a backoff), so
    // ask until it answers.
    eventually(
        "web-3 answering again",
        20,
        Duration::from_millis(500),
        || {
            let (code, _, _) = exec(&web, &format!("{everywhere} echo ok"));
            (code == 0).then_some(())
        },
    );
}

#[test]
fn stop_by_selector_stops_apps_on_matching_hosts() {
    let test = "fleet::stop_by_selector_stops_apps_on_matching_hosts";
    let Some(web) = Web::start(test, |_| &[]) else {
        return;
    };
    require_cli(&web, &["agents", "label"], "Usage");
    require_cli(&web, &["stop"], "--selector");

    let stopped = web.shared_dir("stopped");
    let manifest = format!(
        "app = \"edge\"\n[target]\nlabels = {{ role = \"web\" }}\n[setup]\nrun = [\"echo up\"]\n\
         [stop]\nrun = [\"echo stopped > '{}'/$BERTH_HOST.stopped\"]\n",
        stopped.display()
    );
    let (code, deployment, stderr) = web.deploy("edge", &manifest);
    assert_eq!(code, 0, "{stderr}");
    let id = deployment.id.to_string();

    web.controller
        .berth(&["agents", "label", "web-3", "tier=edge"])
        .ok();
    let affected = web
        .controller
        .berth(&["stop", "--selector", "tier=edge", "-o", "json"])
        .json();
    let affected = affected
        .as_array()
        .unwrap_or_else(|| panic!("stop --selector prints an array: {affected:#}"));
    let ids: Vec<&str> = affected.iter().filter_map(|d| d["id"].as_str()).collect();
    assert_eq!(
        ids,
        [id.as_str()],
        "the one deployment on web-3: {affected:#?}"
    );

    web.controller.wait_quiet(&id);
    let deployment = web.show(&id);
    let stops: Vec<&Task> = deployment
        .tasks
        .iter()
        .filter(|task| task.kind == TaskKind::Stop)
        .collect();
    assert_eq!(stops.len(), 1, "one stop task: {deployment:#?}");
    assert_eq!(stops[0].host, "web-3");
    assert_eq!(stops[0].status, TaskStatus::Done, "{deployment:#?}");
    let marker = read_trimmed(&stopped.join("web-3.stopped"));
    assert_eq!(
        marker.as_deref(),
        Some("stopped"),
        "web-3 ran its stop commands"
    );
    for host in ["web-1", "web-2"] {
        assert!(
            !stopped.join(format!("{host}.stopped")).exists(),
            "{host} does not match tier=edge and keeps running"
        );
    }
}

/// What a failing fleet test left: its namespaces, and the agent and a
/// stray process it started in them.
#[derive(Default)]
struct Traces {
    namespaces: Vec<String>,
    agent_pid: Option<u32>,
    stray: Option<std::process::Child>,
}

fn namespace_list() -> String {
    let output = std::process::Command::new(ip_binary())
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether process `pid` is gone or a zombie waiting to be reaped.
fn is_dead(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // "PID (COMM) STATE ...": the state follows the last ')'.
    stat.rsplit(')')
        .next()
        .is_some_and(|rest| rest.trim_start().starts_with('Z'))
}

/// Builds a fleet, runs an agent and a stray process in it, and fails.
fn fail_inside_a_fleet(test: &str, traces: &mut Traces) {
    let Some(fleet) = Fleet::start(test, &["controller", "host"]) else {
        return;
    };
    // A namespace left by a killed run: named for a process that is gone.
    let mut gone = std::process::Command::new("true")
        .spawn()
        .expect("run true");
    gone.wait().expect("wait for true");
    let leftover = format!("berth-t{}-0-sw", gone.id());
    let added = std::process::Command::new(ip_binary())
        .args(["netns", "add", &leftover])
        .status()
        .is_ok_and(|status| status.success());
    assert!(added, "create the leftover namespace {leftover}");
    let second = Fleet::start(test, &["other"]).expect("a second fleet");
    assert!(
        !namespace_list()
            .lines()
            .any(|line| line.starts_with(&format!("{leftover} ")) || line == leftover),
        "a new fleet removes the leftover {leftover}"
    );
    traces.namespaces = [fleet.namespaces(), second.namespaces()].concat();

    let controller = Controller::start_in(fleet.netns("controller"), fleet.ip("controller"), &[]);
    let agent = Agent::join_in(&controller, fleet.netns("host"), "host", "role=web", &[]);
    let pid = agent.process().pid();
    traces.agent_pid = Some(pid);
    // `ip netns exec` execs the binary: the PID the harness holds is the
    // agent's own, in the host's namespace.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("agent exe");
    assert_eq!(exe, bin("berth-agent"));
    let identify = std::process::Command::new(ip_binary())
        .args(["netns", "identify", &pid.to_string()])
        .output()
        .expect("ip netns identify");
    assert_eq!(
        String::from_utf8_lossy(&identify.stdout).trim(),
        fleet.netns("host")
    );
    let stray = berth_tests::netns::command_in(Some(fleet.netns("host")), Path::new("sleep"))
        .arg("600")
        .spawn()
        .expect("start a stray process");
    traces.stray = Some(stray);
    panic!("deliberate failure inside a fleet, to check its cleanup");
}

#[test]
fn a_failed_fleet_test_leaves_nothing_behind() {
    let test = "fleet::a_failed_fleet_test_leaves_nothing_behind";
    let mut traces = Traces::default();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        fail_inside_a_fleet(test, &mut traces)
    }));
    if outcome.is_ok() {
        return; // Skipped: this machine cannot build namespaces.
    }
    assert!(
        traces.agent_pid.is_some(),
        "the test failed before its agent ran"
    );
    let list = namespace_list();
    for netns in &traces.namespaces {
        assert!(
            !list
                .lines()
                .any(|line| line.split_whitespace().next() == Some(netns.as_str())),
            "{netns} is left behind:\n{list}"
        );
    }
    // The agent's handle killed it while unwinding; the stray process had
    // no handle, so only the fleet could.
    assert!(
        traces.agent_pid.is_some_and(is_dead),
        "the agent is still running"
    );
    let mut stray = traces.stray.take().expect("the stray process started");
    assert!(is_dead(stray.id()), "the stray process is still running");
    let status = stray.wait().expect("reap the stray process");
    assert!(!status.success(), "the stray process was killed: {status}");
}
