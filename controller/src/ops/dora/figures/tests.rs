//! The figures of a history worked out by hand: times are hours after
//! `T0`, the window is [10 h, 58 h) (two days), the fix window one hour.

use berth_shared::record::{Deployment, DoraLevel, FailureKind, Timestamp, Transition};
use berth_shared::state::DeploymentStatus;

use super::{Window, marks_fix, report};

const T0: i64 = 1_700_000_000_000;
const H: f64 = 3_600_000.0;

fn at(hours: f64) -> Timestamp {
    Timestamp(T0 + (hours * H) as i64)
}

fn hours(ms: u64) -> f64 {
    ms as f64 / H
}

/// A deployment made at `created` hours that ended `status` at `ended`.
fn made(version: &str, created: f64, status: DeploymentStatus, ended: f64) -> Deployment {
    let mut deployment = crate::testing::deployment(&[], 0);
    deployment.version = version.into();
    deployment.created_at = at(created);
    deployment.status = status;
    deployment.updated_at = at(ended);
    deployment.finished_at = Some(at(ended));
    deployment.transitions = vec![Transition {
        at: at(ended),
        subject: "deployment".into(),
        from: Some("deploying".into()),
        to: status.as_str().into(),
        reason: None,
        seq: None,
        task: None,
    }];
    deployment
}

fn deployed(version: &str, created: f64, ended: f64, commit: Option<f64>) -> Deployment {
    let mut deployment = made(version, created, DeploymentStatus::Deployed, ended);
    deployment.commit_time = commit.map(at);
    deployment
}

fn with_message(mut deployment: Deployment, message: &str) -> Deployment {
    deployment.message = Some(message.into());
    deployment
}

fn history() -> Vec<Deployment> {
    use DeploymentStatus::{Canceled, Failed, TimedOut};
    let mut rollback = deployed("d4", 14.5, 15.0, Some(8.0));
    rollback.origin = "rollback".into();
    rollback.trigger = "rollback".into();
    let mut d0 = deployed("d0", 8.0, 10.0, Some(7.0));
    // One millisecond before the window: outside it.
    d0.transitions[0].at = Timestamp(at(10.0).0 - 1);
    let mut d1 = deployed("d1", 9.5, 10.0, Some(8.0));
    // Later superseded: it was deployed all the same.
    d1.status = DeploymentStatus::Superseded;
    vec![
        d0,
        d1,
        made("d2", 12.0, Failed, 12.5),
        deployed("d3", 13.5, 14.0, Some(13.0)),
        rollback,
        deployed("d5", 20.0, 20.5, None),
        with_message(deployed("d6", 21.0, 21.25, Some(20.75)), "Hotfix: login"),
        with_message(deployed("d7", 30.0, 30.5, Some(24.0)), "fix typo"),
        made("d8", 31.0, Canceled, 31.1),
        made("d9", 40.0, TimedOut, 41.0),
        deployed("d10", 44.0, 45.0, Some(43.0)),
        with_message(made("d11", 45.5, Failed, 46.0), "Revert \"add cache\""),
        // Fails exactly at the window's end: outside it.
        made("d12", 57.0, Failed, 58.0),
    ]
}

fn window(fix_hours: f64) -> Window {
    Window {
        from: at(10.0),
        to: at(58.0),
        fix_window_ms: (fix_hours * H) as u64,
    }
}

#[test]
fn a_hand_checked_history_gives_the_figures_worked_out_by_hand() {
    let history = history();
    let report = report("shop", "production", &history, &window(1.0));

    // Deployed in [10 h, 58 h): d1 (10 h, the edge is in), d3, d4 (a
    // rollback deploys too), d5, d6, d7, d10 = 7; d0 (1 ms early) is out.
    // 7 over 2 days = 3.5 a day, 24.5 a week: at least daily, elite.
    let frequency = &report.deployment_frequency;
    assert_eq!(frequency.count, 7);
    assert_eq!(frequency.per_day, 3.5);
    assert_eq!(frequency.per_week, 24.5);
    assert_eq!(frequency.level, Some(DoraLevel::Elite));

    // Changes deployed: d1 d3 d5 d6 d7 d10 = 6 (not the rollback d4, whose
    // copied commit time would say 7 h). With a commit time (d5 has none):
    // d1 10-8 = 2, d3 14-13 = 1, d6 21.25-20.75 = 0.5, d7 30.5-24 = 6.5,
    // d10 45-43 = 2; sorted 0.5 1 2 2 6.5: median 2 h; p90 is rank
    // ⌈0.9·5⌉ = 5: 6.5 h. Under a day: elite.
    let lead = &report.lead_time;
    assert_eq!((lead.deployed, lead.with_commit_time), (6, 5));
    assert_eq!(lead.median_ms.map(hours), Some(2.0));
    assert_eq!(lead.p90_ms.map(hours), Some(6.5));
    assert_eq!(lead.level, Some(DoraLevel::Elite));

    // Changes ended in the window: d1 d2 d3 d5 d6 d7 d9 d10 d11 = 9 (d0
    // before, d4 a rollback, d8 canceled, d12 at the end). Failed: d2
    // (failed), d3 (the next one is the rollback d4), d5 (d6 "Hotfix" made
    // 0.5 h after d5 was deployed), d9 (timed out), d10 (d11 "Revert" made
    // 0.5 h after), d11 (failed) = 6; not d6 (d7 "fix typo" came 8.75 h
    // later). 6/9 = 0.667: above 15 %, low.
    let rate = &report.change_failure_rate;
    assert_eq!((rate.changes, rate.failed), (9, 6));
    assert_eq!(rate.rate, Some(6.0 / 9.0));
    assert_eq!(rate.level, Some(DoraLevel::Low));
    let kinds: Vec<(&str, FailureKind)> = rate
        .failures
        .iter()
        .map(|failure| (failure.version.as_str(), failure.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("d2", FailureKind::Failed),
            ("d3", FailureKind::RolledBack),
            ("d5", FailureKind::Fixed),
            ("d9", FailureKind::Failed),
            ("d10", FailureKind::Fixed),
            ("d11", FailureKind::Failed),
        ]
    );

    // Restored by the next deployment to reach deployed: d2 12.5 → d3 at
    // 14 = 1.5 h; d3 14 → d4 at 15 = 1 h; d5 20.5 → d6 at 21.25 = 0.75 h;
    // d9 41 → d10 at 45 = 4 h. Sorted 0.75 1 1.5 4: median (1 + 1.5) / 2 =
    // 1.25 h, p90 rank ⌈3.6⌉ = 4: 4 h. d10 (deployed at 45) and d11
    // (failed at 46) are open: nothing deployed after. Under a day: high.
    let restore = &report.time_to_restore;
    assert_eq!(restore.restored, 4);
    assert_eq!(restore.median_ms.map(hours), Some(1.25));
    assert_eq!(restore.p90_ms.map(hours), Some(4.0));
    assert_eq!(restore.level, Some(DoraLevel::High));
    let open: Vec<Timestamp> = restore.open.iter().map(|open| open.since).collect();
    assert_eq!(open, [at(45.0), at(46.0)]);
    assert_eq!(restore.open[0].deployment_id, history[10].id);
    assert_eq!(rate.failures[0].restored_by, Some(history[3].id));
}

#[test]
fn a_shorter_fix_window_blames_no_fix() {
    // The fixes came 0.5 h after d5 and d10: outside a 15 min window, so
    // only d2, d3, d9 and d11 failed: 4/9.
    let report = report("shop", "production", &history(), &window(0.25));
    let rate = &report.change_failure_rate;
    assert_eq!((rate.changes, rate.failed), (9, 4));
    // d11 failed at 46 h and nothing was deployed after: one open failure.
    assert_eq!(report.time_to_restore.open.len(), 1);
}

#[test]
fn an_empty_window_has_no_figures_and_no_levels() {
    let report = report(
        "shop",
        "production",
        &history(),
        &Window {
            from: at(100.0),
            to: at(200.0),
            fix_window_ms: 3_600_000,
        },
    );
    assert_eq!(report.deployment_frequency.count, 0);
    assert_eq!(report.deployment_frequency.level, None);
    assert_eq!(report.lead_time.median_ms, None);
    assert_eq!(report.change_failure_rate.rate, None);
    assert_eq!(report.time_to_restore.median_ms, None);
    assert!(report.time_to_restore.open.is_empty());
}

#[test]
fn a_fix_is_a_word_of_the_message_or_ref() {
    let check = |message: Option<&str>, source_ref: Option<&str>| {
        let mut deployment = crate::testing::deployment(&[], 0);
        deployment.message = message.map(str::to_string);
        deployment.source_ref = source_ref.map(str::to_string);
        marks_fix(&deployment)
    };
    assert!(check(Some("FIX: login"), None));
    assert!(check(Some("Revert \"x\""), None));
    assert!(check(None, Some("hotfix/login")));
    assert!(!check(Some("prefix the names"), None));
    assert!(!check(Some("fixed it"), Some("fixture")));
    assert!(!check(None, None));
}

#[test]
fn levels_change_at_the_bounds_of_docs_dora_md() {
    use super::{DAY_MS, HOUR_MS, MONTH_MS, WEEK_MS, level_by};
    use DoraLevel::{Elite, High, Low, Medium};
    let lead = |ms| level_by(ms, [DAY_MS, WEEK_MS, MONTH_MS]);
    assert_eq!(
        [
            lead(DAY_MS - 1),
            lead(DAY_MS),
            lead(WEEK_MS),
            lead(MONTH_MS)
        ],
        [Elite, High, Medium, Low]
    );
    let restore = |ms| level_by(ms, [HOUR_MS, DAY_MS, WEEK_MS]);
    assert_eq!(
        [
            restore(HOUR_MS - 1),
            restore(HOUR_MS),
            restore(DAY_MS),
            restore(WEEK_MS)
        ],
        [Elite, High, Medium, Low]
    );
    // Frequency: n deployments over a 30-day window.
    let frequency = |count: usize| {
        let history: Vec<Deployment> = (0..count)
            .map(|n| deployed("d", 10.0, 10.0 + n as f64, None))
            .collect();
        let window = Window {
            from: at(0.0),
            to: at(30.0 * 24.0),
            fix_window_ms: 0,
        };
        report("a", "e", &history, &window)
            .deployment_frequency
            .level
    };
    assert_eq!(
        [
            frequency(30),
            frequency(29),
            frequency(5),
            frequency(4),
            frequency(1)
        ],
        [
            Some(Elite),
            Some(High),
            Some(High),
            Some(Medium),
            Some(Medium)
        ]
    );
    assert_eq!(frequency(0), None);
    // Failure rate: at most 5 %, 10 %, 15 %.
    let rate = |failed: usize| {
        let mut history: Vec<Deployment> = (0..20 - failed)
            .map(|n| deployed("d", 10.0 + n as f64, 10.5 + n as f64, None))
            .collect();
        history.extend((0..failed).map(|n| {
            made(
                "f",
                40.0 + n as f64,
                DeploymentStatus::Failed,
                40.5 + n as f64,
            )
        }));
        report("a", "e", &history, &window(0.0))
            .change_failure_rate
            .level
    };
    assert_eq!(
        [rate(1), rate(2), rate(3), rate(4)],
        [Some(Elite), Some(High), Some(Medium), Some(Low)]
    );
}
