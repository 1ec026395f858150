//! `failover` (issue 22): the store on a replicated PostgreSQL, a primary
//! and a synchronous standby under Patroni with etcd, and two controllers
//! serving from it, with a real agent given both addresses. Mid-deploy the
//! primary's machine is lost (Patroni and its PostgreSQL killed with
//! SIGKILL): Patroni promotes the standby, both controllers lose their
//! sessions and stop, their supervisor (this program, as systemd's
//! `Restart=` would) starts them again, they serve on the new primary, and
//! the agent reconnects to one of them. The
//! deployment must complete with every line once and in order, and every
//! deployment acknowledged before the loss must still be there as it was.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use berth_shared::record::{Deployment, is_quiet};
use berth_tests::patroni::{self, Cluster};
use berth_tests::{Agent, Controller, DEADLINE, id_of, write_bundle};

use crate::options::Options;
use crate::report::{Outcome, count};

/// A manifest of `app` whose setup is `setup.sh`.
fn manifest(app: &str) -> String {
    format!(
        "app = \"{app}\"\n[target]\nlabels = {{ role = \"db-failover\" }}\n[setup]\nrun = [\"./setup.sh\"]\n"
    )
}
/// Lines the deployment running through the failover prints, 100 a second.
const LINES: u32 = 1_500;
/// Deployments acknowledged before the primary is lost.
const BEFORE: usize = 3;
/// How long a controller may take to notice its lost session.
const STOP_WITHIN: Duration = Duration::from_secs(15);
/// How long the store may be away before the run gives up.
const GIVE_UP: Duration = Duration::from_secs(180);

pub fn run(_options: &Options) -> Result<Outcome> {
    let mut outcome = Outcome::new(
        "failover (issue 22)",
        format!(
            "PostgreSQL primary and synchronous standby under Patroni (etcd); two controllers serving from it; the primary's Patroni and PostgreSQL killed with SIGKILL while a deployment prints {LINES} numbered lines; a controller that exits is started again as systemd would"
        ),
    );
    if let Some(missing) = patroni::missing() {
        bail!("{missing}");
    }
    let started = Instant::now();
    let mut cluster = Cluster::start()?;
    eprintln!(
        "failover: primary and synchronous standby up in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let mut first = Controller::start_on_postgres(&cluster.url());
    let mut second = first.peer();
    second.wait_serving();
    let addresses = [first.address.clone(), second.address.clone()];
    first.url = format!("{},{}", first.url, second.url);
    let _agent = Agent::join(&first, "db-1", "role=db-failover");

    let mut acknowledged = Vec::new();
    for index in 0..BEFORE {
        let bundle = write_bundle(
            first.dir.path(),
            &format!("before-{index}"),
            &manifest(&format!("before-{index}")),
            &[("setup.sh", &numbered(20, index == 1))],
        );
        let created = id_of(&first.deploy_detached(&bundle, &[]).json());
        wait_quiet(&first, &created)?;
        acknowledged.push(created);
    }
    let before = statuses(&first.berth(&["ls", "-o", "json"]).json());

    let bundle = write_bundle(
        first.dir.path(),
        "through",
        &manifest("through"),
        &[("setup.sh", &numbered(LINES, false))],
    );
    let id = id_of(&first.deploy_detached(&bundle, &[]).json());
    let deadline = Instant::now() + DEADLINE;
    while !first.berth(&["logs", &id]).stdout.contains("line 200\n") {
        if Instant::now() >= deadline {
            bail!("the deployment's first 200 lines were not stored");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let killed = Instant::now();
    let lost = cluster.kill_leader()?;
    eprintln!("failover: killed the primary {lost}");

    // Both controllers must notice that their sessions went with the
    // primary and stop, since the others count their agents as gone.
    let stopped = loop {
        if !first.is_running() && !second.is_running() {
            break Some(killed.elapsed());
        }
        if killed.elapsed() > STOP_WITHIN {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    outcome.check(
        stopped.is_some(),
        &format!(
            "both controllers stopped within {}s of losing their database",
            STOP_WITHIN.as_secs()
        ),
        "one kept running".to_string(),
    );
    // The supervisor: a controller that exits is started again (after a
    // second, as `RestartSec=` would) until one serves.
    let mut restarts = 0;
    let mut controllers = [first, second];
    let serving = loop {
        if let Some(address) = addresses.iter().find(|address| listens(address)) {
            break address.clone();
        }
        if killed.elapsed() > GIVE_UP {
            bail!(
                "no controller served again within {}s of the primary's loss",
                GIVE_UP.as_secs()
            );
        }
        for controller in &mut controllers {
            if !controller.is_running() {
                controller.kill9();
                std::thread::sleep(Duration::from_secs(1));
                controller.respawn();
                restarts += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let [first, _second] = &controllers;
    let back = killed.elapsed();
    let promoted = cluster.leader().unwrap_or_default();
    eprintln!(
        "failover: {serving} serves {:.1}s after the loss; {promoted} is primary",
        back.as_secs_f64()
    );
    outcome.check(
        !promoted.is_empty() && promoted != lost,
        "Patroni promoted the synchronous standby",
        format!("the leader is `{promoted}`, the lost primary was `{lost}`"),
    );

    let done = wait_quiet(first, &id)?;
    outcome.check(
        done == "deployed",
        "the deployment running through the failover completed",
        format!("it ended {done}"),
    );
    let logs = first.berth(&["logs", &id]).stdout;
    let lines: Vec<&str> = logs.lines().filter(|line| line.contains("line ")).collect();
    let in_order = lines.len() == LINES as usize
        && lines
            .iter()
            .zip(1..=LINES)
            .all(|(line, number)| line.ends_with(&format!("line {number}")));
    outcome.check(
        in_order,
        &format!("every one of its {LINES} lines stored once and in order"),
        format!("{} lines read back", lines.len()),
    );
    let after = statuses(&first.berth(&["ls", "-o", "json"]).json());
    let kept = before.iter().all(|earlier| after.contains(earlier));
    outcome.check(
        kept && before.len() == BEFORE,
        &format!("all {BEFORE} deployments acknowledged before the loss kept as they were"),
        format!("before: {before:?}; after: {after:?}"),
    );
    let again = first
        .deploy_detached(&bundle, &["--wait-for-agents", "60s"])
        .json();
    let again = wait_quiet(first, &id_of(&again))?;
    outcome.check(
        again == "deployed",
        "a new deploy after the failover works",
        format!("it ended {again}"),
    );
    outcome.figure(
        "primary lost to a controller serving again",
        format!("{:.1} s", back.as_secs_f64()),
    );
    outcome.figure(
        "controller serving first",
        if serving == addresses[0] { "A" } else { "B" }.to_string(),
    );
    outcome.figure(
        "primary lost to both controllers stopping",
        stopped.map_or_else(
            || "-".into(),
            |after| format!("{:.1} s", after.as_secs_f64()),
        ),
    );
    outcome.figure(
        "controller restarts by the supervisor",
        restarts.to_string(),
    );
    outcome.figure("lines checked", count(lines.len() as u64));
    Ok(outcome)
}

/// A setup script printing `count` numbered lines, 100 a second; `fail`
/// makes it exit 1 after them.
fn numbered(count: u32, fail: bool) -> String {
    format!(
        "#!/bin/sh\nfor i in $(seq 1 {count}); do echo \"line $i\"; sleep 0.01; done\nexit {}\n",
        u8::from(fail)
    )
}

/// Each listed deployment's id and status.
fn statuses(listed: &serde_json::Value) -> Vec<(String, String)> {
    listed
        .as_array()
        .into_iter()
        .flatten()
        .map(|deployment| {
            (
                deployment["id"].as_str().unwrap_or_default().to_string(),
                deployment["status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

fn listens(address: &str) -> bool {
    TcpStream::connect(address).is_ok()
}

/// The deployment's status once it is quiet, through whichever controller
/// serves (polling `berth show`, which survives a failover).
fn wait_quiet(controller: &Controller, id: &str) -> Result<String> {
    let deadline = Instant::now() + GIVE_UP;
    loop {
        let shown = controller.berth(&["show", id, "-o", "json"]);
        if shown.code == 0
            && let Ok(deployment) = serde_json::from_str::<Deployment>(&shown.stdout)
            && is_quiet(&deployment)
        {
            return Ok(deployment.status.to_string());
        }
        if Instant::now() >= deadline {
            bail!(
                "deployment {id} was not quiet within {}s",
                GIVE_UP.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
