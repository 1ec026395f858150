//! The DORA figures as a pure function of one app+environment's history
//! ([`report`]): no store, no clock. `docs/dora.md` states each definition;
//! this module is their one implementation, and its tests check it against
//! a history worked out by hand.

use berth_shared::record::{
    ChangeFailure, ChangeFailureRate, Deployment, DeploymentFrequency, DoraLevel, DoraReport,
    FailureKind, LeadTime, OpenFailure, TimeToRestore, Timestamp,
};
use berth_shared::state::DeploymentStatus;

const HOUR_MS: u64 = 3600 * 1000;
const DAY_MS: u64 = 24 * HOUR_MS;
const WEEK_MS: u64 = 7 * DAY_MS;
const MONTH_MS: u64 = 30 * DAY_MS;

/// The window the figures are of, and the fix window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Inclusive.
    pub from: Timestamp,
    /// Exclusive.
    pub to: Timestamp,
    pub fix_window_ms: u64,
}

impl Window {
    fn holds(&self, at: Timestamp) -> bool {
        self.from <= at && at < self.to
    }
}

/// How a deployment ended, for the figures: when it first reached
/// `deployed`, or when it failed or timed out without ever having been
/// deployed. Canceled ones, and ones still running, have no outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Deployed(Timestamp),
    Failed(Timestamp),
}

impl Outcome {
    fn of(deployment: &Deployment) -> Option<Outcome> {
        let first = |names: &[&str]| {
            deployment
                .transitions
                .iter()
                .find(|t| t.subject == "deployment" && names.contains(&t.to.as_str()))
                .map(|t| t.at)
        };
        let end = || deployment.finished_at.unwrap_or(deployment.updated_at);
        use DeploymentStatus::*;
        if let Some(at) = first(&["deployed"]) {
            return Some(Outcome::Deployed(at));
        }
        if matches!(deployment.status, Deployed | Superseded | Stopped) {
            return Some(Outcome::Deployed(end()));
        }
        if let Some(at) = first(&["failed", "timed_out"]) {
            return Some(Outcome::Failed(at));
        }
        matches!(deployment.status, Failed | TimedOut).then(|| Outcome::Failed(end()))
    }

    fn at(self) -> Timestamp {
        match self {
            Outcome::Deployed(at) | Outcome::Failed(at) => at,
        }
    }
}

/// A rollback restores an earlier version: a remedy, not a change.
fn is_rollback(deployment: &Deployment) -> bool {
    deployment.origin == "rollback" || deployment.trigger == "rollback"
}

/// Whether a deployment's message or ref names a fix: one of the words
/// `fix`, `hotfix` or `revert`, in any case, between non-alphanumerics.
pub fn marks_fix(deployment: &Deployment) -> bool {
    [&deployment.message, &deployment.source_ref]
        .into_iter()
        .flatten()
        .flat_map(|text| text.split(|c: char| !c.is_alphanumeric()))
        .any(|word| {
            ["fix", "hotfix", "revert"]
                .iter()
                .any(|fix| word.eq_ignore_ascii_case(fix))
        })
}

/// The figures of `history` (one app+environment's deployments, oldest
/// first) over `window`.
pub fn report(app: &str, environment: &str, history: &[Deployment], window: &Window) -> DoraReport {
    // Deployments that ended one way or the other, in history order.
    let ended: Vec<(&Deployment, Outcome)> = history
        .iter()
        .filter_map(|deployment| Outcome::of(deployment).map(|outcome| (deployment, outcome)))
        .collect();
    let deployed_times: Vec<(&Deployment, Timestamp)> = ended
        .iter()
        .filter_map(|(deployment, outcome)| match outcome {
            Outcome::Deployed(at) => Some((*deployment, *at)),
            Outcome::Failed(_) => None,
        })
        .collect();
    let failures = failures(&ended, &deployed_times, window);
    DoraReport {
        app: app.to_string(),
        environment: environment.to_string(),
        from: window.from,
        to: window.to,
        fix_window_ms: window.fix_window_ms,
        deployment_frequency: frequency(&deployed_times, window),
        lead_time: lead_time(&deployed_times, window),
        change_failure_rate: failure_rate(&ended, failures.clone(), window),
        time_to_restore: time_to_restore(&failures),
    }
}

fn frequency(deployed: &[(&Deployment, Timestamp)], window: &Window) -> DeploymentFrequency {
    let count = deployed.iter().filter(|(_, at)| window.holds(*at)).count() as u64;
    let length_ms = (window.to.0 - window.from.0).max(1) as f64;
    let per_day = count as f64 * DAY_MS as f64 / length_ms;
    let level = (count > 0).then_some(match per_day {
        day if day >= 1.0 => DoraLevel::Elite,
        day if day * 7.0 >= 1.0 => DoraLevel::High,
        day if day * 30.0 >= 1.0 => DoraLevel::Medium,
        _ => DoraLevel::Low,
    });
    DeploymentFrequency {
        count,
        per_day,
        per_week: per_day * 7.0,
        level,
    }
}

fn lead_time(deployed: &[(&Deployment, Timestamp)], window: &Window) -> LeadTime {
    let changes: Vec<_> = deployed
        .iter()
        .filter(|(deployment, at)| window.holds(*at) && !is_rollback(deployment))
        .collect();
    let mut lead_times: Vec<u64> = changes
        .iter()
        .filter_map(|(deployment, at)| {
            // A commit "after" its deployment is clock skew: no wait.
            let commit = deployment.commit_time?;
            Some(u64::try_from(at.0 - commit.0).unwrap_or(0))
        })
        .collect();
    lead_times.sort_unstable();
    let median_ms = median(&lead_times);
    LeadTime {
        deployed: changes.len() as u64,
        with_commit_time: lead_times.len() as u64,
        median_ms,
        p90_ms: p90(&lead_times),
        level: median_ms.map(|ms| level_by(ms, [DAY_MS, WEEK_MS, MONTH_MS])),
    }
}

/// The failed changes that ended in the window, oldest first, each with
/// what restored it.
fn failures(
    ended: &[(&Deployment, Outcome)],
    deployed: &[(&Deployment, Timestamp)],
    window: &Window,
) -> Vec<ChangeFailure> {
    let mut failures = Vec::new();
    for (index, (deployment, outcome)) in ended.iter().enumerate() {
        if is_rollback(deployment) || !window.holds(outcome.at()) {
            continue;
        }
        let next = ended.get(index + 1).map(|(next, _)| *next);
        let kind = match (outcome, next) {
            (Outcome::Failed(_), _) => FailureKind::Failed,
            (Outcome::Deployed(_), Some(next)) if is_rollback(next) => FailureKind::RolledBack,
            (Outcome::Deployed(at), Some(next))
                if marks_fix(next)
                    && next.created_at >= *at
                    && (next.created_at.0 - at.0) as u64 <= window.fix_window_ms =>
            {
                FailureKind::Fixed
            }
            _ => continue,
        };
        let at = outcome.at();
        let restore = deployed.iter().find(|(_, deployed_at)| *deployed_at > at);
        failures.push(ChangeFailure {
            deployment_id: deployment.id,
            version: deployment.version.clone(),
            kind,
            at,
            restored_by: restore.map(|(deployment, _)| deployment.id),
            restored_at: restore.map(|(_, at)| *at),
        });
    }
    failures
}

fn failure_rate(
    ended: &[(&Deployment, Outcome)],
    failures: Vec<ChangeFailure>,
    window: &Window,
) -> ChangeFailureRate {
    let changes = ended
        .iter()
        .filter(|(deployment, outcome)| !is_rollback(deployment) && window.holds(outcome.at()))
        .count() as u64;
    let failed = failures.len() as u64;
    let rate = (changes > 0).then(|| failed as f64 / changes as f64);
    ChangeFailureRate {
        changes,
        failed,
        rate,
        level: rate.map(|rate| match rate {
            rate if rate <= 0.05 => DoraLevel::Elite,
            rate if rate <= 0.10 => DoraLevel::High,
            rate if rate <= 0.15 => DoraLevel::Medium,
            _ => DoraLevel::Low,
        }),
        failures,
    }
}

fn time_to_restore(failures: &[ChangeFailure]) -> TimeToRestore {
    let mut restore_times: Vec<u64> = failures
        .iter()
        .filter_map(|failure| Some((failure.restored_at?.0 - failure.at.0) as u64))
        .collect();
    restore_times.sort_unstable();
    let median_ms = median(&restore_times);
    TimeToRestore {
        restored: restore_times.len() as u64,
        median_ms,
        p90_ms: p90(&restore_times),
        open: failures
            .iter()
            .filter(|failure| failure.restored_at.is_none())
            .map(|failure| OpenFailure {
                deployment_id: failure.deployment_id,
                since: failure.at,
            })
            .collect(),
        level: median_ms.map(|ms| level_by(ms, [HOUR_MS, DAY_MS, WEEK_MS])),
    }
}

/// Elite below the first bound, high below the second, medium below the
/// third, low from there.
fn level_by(ms: u64, bounds: [u64; 3]) -> DoraLevel {
    match ms {
        ms if ms < bounds[0] => DoraLevel::Elite,
        ms if ms < bounds[1] => DoraLevel::High,
        ms if ms < bounds[2] => DoraLevel::Medium,
        _ => DoraLevel::Low,
    }
}

/// The middle of sorted values; of an even count, the mean of the two
/// middle ones, rounded down to the millisecond.
fn median(sorted: &[u64]) -> Option<u64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2),
    }
}

/// The 90th percentile of sorted values by nearest rank: the value at rank
/// ⌈0.9 n⌉ (1-based).
fn p90(sorted: &[u64]) -> Option<u64> {
    let rank = (sorted.len() * 9).div_ceil(10);
    rank.checked_sub(1).map(|index| sorted[index])
}

#[cfg(test)]
mod tests;
