//! The log flood both follow scenarios share (`logs` with `berth logs -f`,
//! `api` with the HTTP event stream): M real agents labelled `role=logs`
//! each run a script whose program (`berth-bench emit`) prints stamped
//! lines, as fast as it can or at a rate; a follower turns each line it
//! shows into a printed-to-shown latency; once the deployment has settled,
//! stored throughput is lines over the time from the first stage starting
//! (agent clock) to the deployment becoming `deployed` (controller clock,
//! after the last batch was stored).

use anyhow::{Context as _, Result, bail};
use berth_shared::record::Deployment;
use berth_shared::state::DeploymentStatus;
use berth_tests::{Agent, Controller, id_of, write_bundle};

use crate::emit::{now_us, stamp_of};

/// The agents a flood runs on.
pub fn agents(controller: &Controller, count: usize) -> Vec<Agent> {
    (0..count)
        .map(|index| Agent::join(controller, &format!("log-{index}"), "role=logs"))
        .collect()
}

/// One flood deployment under way.
pub struct Flood {
    pub id: String,
    pub app: String,
    /// Lines it prints in all.
    pub expected: u64,
}

/// Deploys app `app` to the `agents` agents, each printing `lines` lines
/// (`rate` per second, or as fast as it can when 0), without waiting.
pub fn start(
    controller: &Controller,
    app: &str,
    agents: usize,
    lines: u64,
    rate: u64,
) -> Result<Flood> {
    let exe = std::env::current_exe().context("the bench's own path")?;
    let manifest = format!(
        "app = \"{app}\"\nversion = \"1\"\n[target]\nlabels = {{ role = \"logs\" }}\nmax_parallel = {agents}\n[setup]\nrun = [\"exec '{}' emit --lines {lines} --rate {rate} --tag {app}\"]\ntimeout = \"30m\"\n",
        exe.display()
    );
    let bundle = write_bundle(controller.dir.path(), app, &manifest, &[]);
    let created = controller.deploy_detached(&bundle, &[]);
    if created.code != 0 {
        bail!("deploy {app} failed: {}", created.stderr);
    }
    let id = id_of(&serde_json::from_str(&created.stdout).context("deployment JSON")?);
    Ok(Flood {
        id,
        app: app.to_string(),
        expected: lines * agents as u64,
    })
}

/// What a follower saw: one latency per stamped line, and the first and
/// last stamps (the scripts' own pace).
#[derive(Default)]
pub struct Seen {
    pub latencies_ms: Vec<f64>,
    first: u64,
    last: u64,
}

impl Seen {
    pub fn with_capacity(lines: u64) -> Seen {
        Seen {
            latencies_ms: Vec::with_capacity(usize::try_from(lines).unwrap_or(0)),
            first: u64::MAX,
            last: 0,
        }
    }

    /// Notes a line shown now; false when it carries no stamp.
    pub fn line(&mut self, line: &str) -> bool {
        let seen = now_us();
        let Some(stamp) = stamp_of(line) else {
            return false;
        };
        self.latencies_ms
            .push(seen.saturating_sub(stamp) as f64 / 1000.0);
        self.first = self.first.min(stamp);
        self.last = self.last.max(stamp);
        true
    }

    pub fn lines(&self) -> u64 {
        self.latencies_ms.len() as u64
    }

    /// First to last stamp printed, in seconds.
    pub fn produced_secs(&self) -> f64 {
        self.last.saturating_sub(self.first) as f64 / 1e6
    }
}

/// CPU seconds process `pid` has used so far (NaN when it is gone).
pub fn cpu_secs(pid: u32) -> f64 {
    berth_tests::procfs::cpu_time(pid).map_or(f64::NAN, |used| used.as_secs_f64())
}

/// The settled flood: checks it ended `deployed` and returns the seconds
/// from its first stage starting to it becoming `deployed`.
pub fn stored_secs(controller: &Controller, flood: &Flood) -> Result<f64> {
    let deployment: Deployment = serde_json::from_value(controller.show(&flood.id))?;
    if deployment.status != DeploymentStatus::Deployed {
        bail!("deployment {} ended {:?}", flood.app, deployment.status);
    }
    let deployed_at = deployment
        .transitions
        .iter()
        .find(|step| step.subject == "deployment" && step.to == "deployed")
        .context("the deployed transition")?
        .at
        .0;
    let started_at = deployment
        .tasks
        .iter()
        .filter_map(|task| task.stages.first())
        .map(|stage| stage.started_at.0)
        .min()
        .context("a started stage")?;
    Ok((deployed_at - started_at) as f64 / 1000.0)
}
