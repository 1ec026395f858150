//! Network partitions between an agent and the controller, each on a host
//! of its own (a network namespace, see `berth_tests::netns`), made with
//! iptables DROP rules, so no side is told (no reset, the link stays up):
//! a partition shorter than the lost grace (T4), one longer (T5), and a
//! half-open link (T6). Both sides must notice a dead link by themselves,
//! within the keepalive bounds: the controller closes a stream silent for
//! four heartbeats (20 s), both ends' HTTP/2 keepalive pings every 15 s and
//! give up 10 s later.

use std::time::{Duration, Instant};

use berth_tests::netns::Fleet;
use berth_tests::{Agent, Controller, DEADLINE, id_of, write_bundle};

/// The longest either side may take to notice a dead link: a ping 15 s
/// after the last frame plus 10 s for its answer, with room for a loaded
/// machine.
const DETECTION: Duration = Duration::from_secs(35);

/// The controller and one agent, each on a host of its own.
/// Fields drop in order: the agent, the controller, then the namespaces.
struct Link {
    agent: Agent,
    controller: Controller,
    fleet: Fleet,
}

impl Link {
    /// Starts the hosts, or skips `test` when this machine cannot build
    /// namespaces or has no iptables.
    fn start(test: &str, lost_grace: &str) -> Option<Link> {
        let fleet = Fleet::start_filtered(test, &["controller", "island"])?;
        let controller = Controller::start_in(
            fleet.netns("controller"),
            fleet.ip("controller"),
            &["--lost-grace", lost_grace],
        );
        let agent = Agent::join_in(&controller, fleet.netns("island"), "island", "", &[]);
        Some(Link {
            agent,
            controller,
            fleet,
        })
    }

    /// Deploys `script` as the setup of app `app` on the agent and waits
    /// until it printed `line`; returns the deployment id.
    fn deploy_until(&self, app: &str, script: &str, line: &str) -> String {
        let manifest = format!(
            "app = \"{app}\"\n[target]\nhosts = [\"island\"]\n[setup]\nrun = [\"./setup.sh\"]\ntimeout = \"5m\"\n"
        );
        let bundle = write_bundle(
            self.controller.dir.path(),
            app,
            &manifest,
            &[("setup.sh", script)],
        );
        let id = id_of(&self.controller.deploy_detached(&bundle, &[]).json());
        let follow = self.controller.berth_spawn(&["logs", &id, "-f"]);
        assert!(
            follow.stdout.wait_for(line, DEADLINE).is_some(),
            "the script did not print {line:?}: {:?}",
            follow.stdout.all()
        );
        id
    }

    /// Lets the deployment's script go on past its wait.
    fn release(&self, id: &str) {
        let work = self.agent.dir.join("work").join(id);
        std::fs::write(work.join("release"), b"").expect("release the script");
    }

    /// Waits until the controller's log says the agent's stream ended for
    /// the `nth` time; returns how long after `since` that was seen.
    fn controller_noticed(&self, nth: usize, since: Instant) -> Duration {
        let process = self.controller.process();
        process.expect_logged("agent disconnected", nth, "the controller");
        since.elapsed()
    }

    /// Waits until the agent's log says it lost the controller for the
    /// `nth` time; returns how long after `since` that was seen.
    fn agent_noticed(&self, nth: usize, since: Instant) -> Duration {
        let process = self.agent.process();
        process.expect_logged("lost the controller", nth, "the agent");
        since.elapsed()
    }

    /// Waits until the agent is connected for the `nth` time.
    fn reconnected(&self, nth: usize) {
        let process = self.agent.process();
        process.expect_logged("connected to the controller", nth, "the agent");
    }

    /// `berth agents show island -o json`.
    fn shown(&self) -> serde_json::Value {
        self.controller
            .berth(&["agents", "show", "island", "-o", "json"])
            .json()
    }
}

/// Prints numbered lines, ten a second, until released; then the count.
const COUNTER: &str = r#"#!/bin/sh
i=0
while [ ! -e "$BERTH_WORK_DIR/release" ] && [ $i -lt 3000 ]; do
  i=$((i+1)); echo "line $i"; sleep 0.1
done
echo "printed $i"
"#;

#[test]
fn a_short_partition_loses_and_doubles_no_line() {
    let test = "partition::a_short_partition_loses_and_doubles_no_line";
    let Some(link) = Link::start(test, "5m") else {
        return;
    };
    let id = link.deploy_until("counter", COUNTER, "line 5");
    let cut = Instant::now();
    link.fleet.partition("island", "controller");
    let controller_took = link.controller_noticed(1, cut);
    let agent_took = link.agent_noticed(1, cut);
    eprintln!(
        "dead link noticed by the controller after {controller_took:?}, by the agent after {agent_took:?}"
    );
    assert!(controller_took < DETECTION && agent_took < DETECTION);
    link.fleet.heal("island");
    link.reconnected(2);
    link.release(&id);

    let done = link.controller.wait_quiet(&id);
    assert_eq!(done["status"], "deployed", "{done:#}");
    assert_eq!(done["tasks"][0]["status"], "done", "{done:#}");
    let lines = link.controller.stdout_lines(&id, None);
    let printed: usize = lines
        .last()
        .and_then(|last| last.strip_prefix("printed "))
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("the script's last line is missing: {lines:?}"));
    let mut expected: Vec<String> = (1..=printed).map(|i| format!("line {i}")).collect();
    expected.push(format!("printed {printed}"));
    assert_eq!(lines, expected, "every line exactly once, in order");
    // Ten lines a second: most of them were printed while the link was down.
    assert!(
        printed as f64 > controller_took.as_secs_f64() * 5.0,
        "only {printed} lines in a partition of {controller_took:?}"
    );
}

/// Prints a line, waits until released, prints another.
const WAITER: &str = r#"#!/bin/sh
echo "before"
i=0
while [ ! -e "$BERTH_WORK_DIR/release" ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done
echo "after"
"#;

#[test]
fn a_long_partition_fails_the_deployment_and_the_late_result_is_ignored() {
    let test = "partition::a_long_partition_fails_the_deployment_and_the_late_result_is_ignored";
    let Some(link) = Link::start(test, "3s") else {
        return;
    };
    let id = link.deploy_until("waiter", WAITER, "before");
    link.fleet.partition("island", "controller");

    let failed = link.controller.wait_quiet(&id);
    assert_eq!(failed["status"], "failed", "{failed:#}");
    assert_eq!(failed["tasks"][0]["status"], "lost", "{failed:#}");
    assert_eq!(failed["error_step"], "setup", "{failed:#}");
    let message = failed["error_message"].as_str().unwrap_or_default();
    assert!(
        message.contains("agent island lost") && message.contains("grace period 3s"),
        "{message}"
    );
    // Away since it was last heard from, not since the controller noticed
    // the dead link (four heartbeats, 20 s, later).
    let away = message
        .split_once("no contact for ")
        .and_then(|(_, rest)| rest.split_once(" (grace"))
        .and_then(|(away, _)| berth_shared::time::parse_duration(away).ok())
        .unwrap_or_else(|| panic!("no time without contact in: {message}"));
    assert!(away >= Duration::from_secs(15), "{message}");

    // The script finishes while the agent is still cut off; its result
    // reaches the controller only after the link is back.
    link.release(&id);
    link.agent_noticed(1, Instant::now());
    link.fleet.heal("island");
    link.reconnected(2);
    link.controller.process().expect_logged(
        "stale task events recorded and ignored",
        1,
        "the controller",
    );
    let after = link.controller.show(&id);
    assert_eq!(after["status"], "failed", "{after:#}");
    assert_eq!(after["tasks"][0]["status"], "lost", "{after:#}");
    assert_eq!(after["error_message"], failed["error_message"]);
    assert!(
        after["tasks"][0]["stale_events"].as_u64() > Some(0),
        "{after:#}"
    );
    assert!(
        after["transitions"]
            .as_array()
            .expect("transitions")
            .iter()
            .any(|step| step["to"] == "stale"),
        "the history notes the late events: {after:#}"
    );
    assert_eq!(
        link.controller.stdout_lines(&id, None),
        ["before"],
        "late lines are not applied"
    );

    // The agent is usable again.
    link.controller.deploy_ok(
        "again",
        "app = \"again\"\n[target]\nhosts = [\"island\"]\n[setup]\nrun = [\"echo back\"]\n",
    );
}

#[test]
fn a_half_open_link_takes_the_agent_offline_then_back() {
    let test = "partition::a_half_open_link_takes_the_agent_offline_then_back";
    let Some(link) = Link::start(test, "5m") else {
        return;
    };
    assert_eq!(link.shown()["online"], true);
    // The controller no longer hears the agent, which still hears it.
    let cut = Instant::now();
    link.fleet.drop_from("controller", "island");
    let took = link.controller_noticed(1, cut);
    eprintln!("half-open link noticed by the controller after {took:?}");
    assert!(took < DETECTION, "noticed only after {took:?}");
    assert_eq!(link.shown()["online"], false, "the agent is shown offline");

    link.fleet.heal("controller");
    link.reconnected(2);
    assert_eq!(link.shown()["online"], true, "the agent is back");
}
