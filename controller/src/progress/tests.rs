//! Tests of how task events move a deployment.
use berth_proto::v1::{
    LogLine, OutputStream, StageFinished, StageOutcome, StageStarted, TaskOutcome,
};

use super::*;

fn deployment(hosts: &[&str], max_failures: u32) -> Deployment {
    crate::testing::deployment(hosts, max_failures)
}

fn event(kind: EventKind) -> TaskEvent {
    TaskEvent {
        seq: 1,
        ts_ms: 1,
        kind: Some(kind),
    }
}

fn start(d: &mut Deployment, index: usize) {
    let id = d.tasks[index].id;
    apply_event(
        d,
        id,
        &event(EventKind::StageStarted(StageStarted {
            stage: "setup".into(),
        })),
    );
}

fn finish(d: &mut Deployment, index: usize, outcome: TaskOutcome, error: &str) {
    let id = d.tasks[index].id;
    apply_event(
        d,
        id,
        &event(EventKind::Finished(TaskFinished {
            outcome: outcome.into(),
            error_step: if error.is_empty() {
                String::new()
            } else {
                "setup".into()
            },
            error: error.into(),
        })),
    );
    settle(d);
}

#[test]
fn walks_to_deployed_when_all_hosts_finish() {
    let mut d = deployment(&["h1", "h2"], 0);
    start(&mut d, 0);
    assert_eq!(d.status, DeploymentStatus::SetupRunning);
    start(&mut d, 1);
    finish(&mut d, 0, TaskOutcome::Done, "");
    assert_eq!(d.status, DeploymentStatus::SetupRunning);
    finish(&mut d, 1, TaskOutcome::Done, "");
    assert_eq!(d.status, DeploymentStatus::Deployed);
    let walked: Vec<_> = d
        .transitions
        .iter()
        .filter(|t| t.subject == "deployment")
        .map(|t| t.to.as_str())
        .collect();
    assert_eq!(walked, ["setup_running", "setup_complete", "deployed"]);
}

#[test]
fn fails_with_step_and_message_once_hosts_are_quiet() {
    let mut d = deployment(&["h1", "h2"], 0);
    start(&mut d, 0);
    start(&mut d, 1);
    finish(
        &mut d,
        0,
        TaskOutcome::Failed,
        "command `exit 3` exited with code 3",
    );
    assert_eq!(
        d.status,
        DeploymentStatus::SetupRunning,
        "waits for running hosts"
    );
    finish(&mut d, 1, TaskOutcome::Done, "");
    assert_eq!(d.status, DeploymentStatus::Failed);
    assert_eq!(d.error_step.as_deref(), Some("setup"));
    assert_eq!(
        d.error_message.as_deref(),
        Some("h1: command `exit 3` exited with code 3")
    );
}

#[test]
fn timeouts_and_lost_hosts() {
    let mut d = deployment(&["h1"], 0);
    start(&mut d, 0);
    finish(&mut d, 0, TaskOutcome::TimedOut, "setup timed out after 1s");
    assert_eq!(d.status, DeploymentStatus::TimedOut);

    let mut d = deployment(&["h1"], 0);
    start(&mut d, 0);
    let id = d.tasks[0].id;
    assert!(lose_task(&mut d, id, "agent h1 lost".into()));
    settle(&mut d);
    assert_eq!(d.status, DeploymentStatus::Failed);
    assert_eq!(d.error_step.as_deref(), Some("setup"));
    assert!(
        d.error_message
            .as_deref()
            .is_some_and(|m| m.contains("agent h1 lost"))
    );
}

#[test]
fn tolerates_failures_within_budget_and_cancels_queued_past_it() {
    let mut d = deployment(&["h1", "h2"], 1);
    start(&mut d, 0);
    start(&mut d, 1);
    finish(&mut d, 0, TaskOutcome::Failed, "boom");
    finish(&mut d, 1, TaskOutcome::Done, "");
    assert_eq!(d.status, DeploymentStatus::Deployed);

    let mut d = deployment(&["h1", "h2"], 0);
    d.tasks[1].status = TaskStatus::Queued;
    start(&mut d, 0);
    finish(&mut d, 0, TaskOutcome::Failed, "boom");
    assert_eq!(d.tasks[1].status, TaskStatus::Canceled);
    assert_eq!(d.status, DeploymentStatus::Failed);
}

#[test]
fn logs_become_stored_lines_and_late_finishes_change_nothing() {
    let mut d = deployment(&["h1"], 0);
    let id = d.tasks[0].id;
    let line = apply_event(
        &mut d,
        id,
        &event(EventKind::Log(LogLine {
            stage: "setup".into(),
            stream: OutputStream::Stdout.into(),
            line: "hi".into(),
        })),
    )
    .expect("a line");
    assert_eq!(line.line, "hi");
    start(&mut d, 0);
    finish(&mut d, 0, TaskOutcome::Done, "");
    finish(&mut d, 0, TaskOutcome::Failed, "late");
    assert_eq!(d.tasks[0].status, TaskStatus::Done);
    assert_eq!(d.status, DeploymentStatus::Deployed);
}

#[test]
fn no_successful_host_is_a_failure_even_within_budget() {
    let mut d = deployment(&["h1"], 1);
    start(&mut d, 0);
    finish(&mut d, 0, TaskOutcome::Failed, "boom");
    assert_eq!(d.status, DeploymentStatus::Failed);
    assert!(
        d.error_message
            .as_deref()
            .is_some_and(|m| m.contains("no host succeeded"))
    );
}

/// A redeploy adds a new round of tasks; only that round decides whether
/// the deployment ends deployed or failed.
#[test]
fn a_redeploy_is_decided_by_its_own_round() {
    for (outcome, expected) in [
        (TaskOutcome::Done, DeploymentStatus::Deployed),
        (TaskOutcome::Failed, DeploymentStatus::Failed),
    ] {
        let mut d = deployment(&["h1"], 0);
        start(&mut d, 0);
        finish(&mut d, 0, TaskOutcome::Done, "");
        assert_eq!(d.status, DeploymentStatus::Deployed);
        let first = d.tasks[0].clone();
        let later = Timestamp(first.created_at.0 + 1);
        d.tasks.push(Task::queued(
            TaskKind::Deploy,
            &first.host,
            first.agent_id,
            later,
        ));
        d.tasks[1].status = TaskStatus::Assigned;
        assert!(set_status(&mut d, DeploymentStatus::Deploying, None));
        settle(&mut d);
        assert_eq!(
            d.status,
            DeploymentStatus::Deploying,
            "the new round still runs; the old round's success does not count"
        );
        let error = if outcome == TaskOutcome::Failed {
            "boom"
        } else {
            ""
        };
        finish(&mut d, 1, outcome, error);
        assert_eq!(d.status, expected, "{outcome:?}");
    }
}

#[test]
fn illegal_status_changes_are_refused() {
    let mut d = deployment(&["h1"], 0);
    assert!(!set_status(&mut d, DeploymentStatus::Deployed, None));
    assert_eq!(d.status, DeploymentStatus::Pending);
    assert!(set_status(&mut d, DeploymentStatus::Canceled, None));
    assert!(!set_status(&mut d, DeploymentStatus::Deploying, None));
    assert_eq!(d.status, DeploymentStatus::Canceled);
}

#[test]
fn a_host_that_finished_before_the_cancel_reached_it_is_named() {
    let mut d = deployment(&["h1", "h2"], 0);
    start(&mut d, 0);
    start(&mut d, 1);
    set_status(
        &mut d,
        DeploymentStatus::Canceled,
        Some("canceled by admin".into()),
    );
    finish(&mut d, 0, TaskOutcome::Done, "");
    finish(&mut d, 1, TaskOutcome::Canceled, "canceled");
    assert_eq!(d.status, DeploymentStatus::Canceled);
    let notes: Vec<&str> = d
        .transitions
        .iter()
        .filter(|t| t.to == "finished_anyway")
        .filter_map(|t| t.reason.as_deref())
        .collect();
    assert_eq!(notes.len(), 1, "{:#?}", d.transitions);
    assert!(
        notes[0].starts_with(
            "host h1 had finished before the deployment was canceled: it runs version"
        ),
        "{}",
        notes[0]
    );
}

#[test]
fn a_tasks_transitions_carry_the_number_of_the_event_that_caused_them() {
    let mut d = deployment(&["h1"], 0);
    let id = d.tasks[0].id;
    apply_event(
        &mut d,
        id,
        &TaskEvent {
            seq: 7,
            ts_ms: 1,
            kind: Some(EventKind::StageStarted(StageStarted {
                stage: "setup".into(),
            })),
        },
    );
    settle(&mut d);
    let numbered: Vec<(&str, Option<u64>)> = d
        .transitions
        .iter()
        .map(|t| (t.subject.as_str(), t.seq))
        .collect();
    assert!(numbered.contains(&("h1", Some(7))), "{numbered:?}");
    assert!(
        d.transitions
            .iter()
            .filter(|t| t.seq.is_some())
            .all(|t| t.task == Some(id)),
        "numbered transitions name their task"
    );
    assert!(
        numbered
            .iter()
            .filter(|(subject, _)| *subject == "deployment")
            .all(|(_, seq)| seq.is_none()),
        "the deployment's own transitions have no number: {numbered:?}"
    );
}

fn finish_stage_with(d: &mut Deployment, outcome: i32, exit_code: Option<i32>, error: &str) {
    let id = d.tasks[0].id;
    apply_event(
        d,
        id,
        &event(EventKind::StageFinished(StageFinished {
            stage: "setup".into(),
            outcome,
            exit_code,
            duration_ms: 1200,
            error: error.into(),
            details: Default::default(),
        })),
    );
}

#[test]
fn a_stage_s_outcome_and_exit_code_are_kept_as_the_json_says_them() {
    for (outcome, exit_code, stored) in [
        (StageOutcome::Succeeded, Some(0), "succeeded"),
        (StageOutcome::Failed, Some(3), "failed"),
        (StageOutcome::TimedOut, None, "timed_out"),
        (StageOutcome::Canceled, None, "canceled"),
    ] {
        let mut d = deployment(&["h1"], 0);
        start(&mut d, 0);
        finish_stage_with(&mut d, outcome.into(), exit_code, "");
        let stage = &d.tasks[0].stages[0];
        assert_eq!(stage.outcome, stored);
        assert_eq!(stage.exit_code, exit_code, "{stored}");
        assert_eq!(stage.error, None);
        assert_eq!(stage.duration_ms, Some(1200));
    }
}

#[test]
fn an_unknown_outcome_counts_as_failed_and_says_so() {
    let mut d = deployment(&["h1"], 0);
    start(&mut d, 0);
    finish_stage_with(&mut d, 42, Some(1), "it broke");
    let stage = &d.tasks[0].stages[0];
    assert_eq!(stage.outcome, "failed");
    assert_eq!(
        stage.error.as_deref(),
        Some(
            "it broke (the agent reported stage outcome 42, which this controller does not know; counted as failed)"
        )
    );
    let id = d.tasks[0].id;
    apply_event(
        &mut d,
        id,
        &event(EventKind::Finished(TaskFinished {
            outcome: 42,
            error_step: "setup".into(),
            error: String::new(),
        })),
    );
    settle(&mut d);
    assert_eq!(d.tasks[0].status, TaskStatus::Failed);
    assert_eq!(
        d.tasks[0].error_message.as_deref(),
        Some(
            "the agent reported task outcome 42, which this controller does not know; counted as failed"
        )
    );
    assert_eq!(d.status, DeploymentStatus::Failed);
}

#[test]
fn a_line_keeps_its_stream_as_berth_logs_names_it() {
    let mut d = deployment(&["h1"], 0);
    let id = d.tasks[0].id;
    for (stream, stored) in [
        (OutputStream::Stdout, "stdout"),
        (OutputStream::Stderr, "stderr"),
        (OutputStream::System, "system"),
        (OutputStream::Container, "container"),
    ] {
        let line = apply_event(
            &mut d,
            id,
            &event(EventKind::Log(LogLine {
                stage: "setup".into(),
                stream: stream.into(),
                line: "x".into(),
            })),
        )
        .expect("a line");
        assert_eq!(line.stream, stored);
    }
}
