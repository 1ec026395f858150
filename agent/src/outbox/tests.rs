//! Tests of the outbox spool.
use super::*;
use berth_proto::v1::TaskFinished;

fn log(line: &str) -> Kind {
    Kind::Log(LogLine {
        stage: "setup".into(),
        stream: crate::stage::shell::Stream::Stdout.into(),
        line: line.into(),
    })
}

fn lines(batch: &TaskEvents) -> Vec<(u64, String)> {
    batch
        .events
        .iter()
        .filter_map(|event| match &event.kind {
            Some(Kind::Log(log)) => Some((event.seq, log.line.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn numbers_events_and_forgets_them_once_acked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (outbox, _) = Outbox::load(dir.path(), "a1").expect("load");
    let task = TaskId::new();
    outbox.open(task, "dep", 7).expect("open");
    outbox.push(task, log("one"));
    outbox.push(task, log("two"));
    let spooled = outbox.spooled();
    assert_eq!(spooled.events, 2, "two events wait for their ack");
    let file = dir.path().join(format!("{task}.spool"));
    assert_eq!(
        spooled.bytes,
        std::fs::metadata(&file).expect("spool").len()
    );
    let batch = outbox.batch(task, 0, 10, usize::MAX).expect("events");
    assert_eq!(batch.generation, 7);
    assert_eq!(
        lines(&batch),
        [(1, "one".to_string()), (2, "two".to_string())]
    );
    assert_eq!(
        lines(&outbox.batch(task, 1, 10, usize::MAX).expect("rest")),
        [(2, "two".to_string())]
    );
    outbox.push(
        task,
        Kind::Finished(TaskFinished {
            outcome: crate::runner::TaskOutcome::Done.into(),
            ..Default::default()
        }),
    );
    outbox.ack(task, 2);
    assert!(
        outbox.knows(task),
        "the final result is not acknowledged yet"
    );
    outbox.ack(task, 3);
    assert!(!outbox.knows(task));
    assert_eq!(outbox.spooled(), crate::outbox::Spooled::default());
    assert!(!dir.path().join(format!("{task}.spool")).exists());
}

#[test]
fn reloads_after_restart_and_marks_unfinished_tasks_interrupted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = TaskId::new();
    {
        let (outbox, _) = Outbox::load(dir.path(), "a1").expect("load");
        outbox.open(task, "dep", 3).expect("open");
        outbox.push(
            task,
            Kind::StageStarted(berth_proto::v1::StageStarted {
                stage: "setup".into(),
            }),
        );
        outbox.push(task, log("before the crash"));
    }
    // A torn record at the tail, as a crash mid-write leaves it.
    let path = dir.path().join(format!("{task}.spool"));
    let mut file = OpenOptions::new().append(true).open(&path).expect("spool");
    file.write_all(&[1, 0, 0, 0, 40, 1, 2]).expect("write");
    drop(file);

    let (outbox, interrupted) = Outbox::load(dir.path(), "a1").expect("reload");
    assert_eq!(interrupted, [task]);
    let batch = outbox.batch(task, 0, 100, usize::MAX).expect("events");
    assert_eq!(batch.deployment_id, "dep");
    let seqs: Vec<u64> = batch.events.iter().map(|event| event.seq).collect();
    assert_eq!(
        seqs,
        [1, 2, 3, 4, 5],
        "reloaded events then the interruption record"
    );
    match &batch.events.last().and_then(|event| event.kind.clone()) {
        Some(Kind::Finished(finished)) => {
            assert_eq!(finished.outcome(), berth_proto::v1::TaskOutcome::Failed);
            assert_eq!(finished.error_step, "setup");
            assert!(finished.error.contains("restarted"));
        }
        other => panic!("expected a final result, got {other:?}"),
    }
}

#[test]
fn reads_back_from_disk_past_the_memory_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (outbox, _) = Outbox::load(dir.path(), "a1").expect("load");
    let task = TaskId::new();
    outbox.open(task, "dep", 1).expect("open");
    for index in 0..(MEMORY_EVENTS + 10) {
        outbox.push(task, log(&format!("line {index}")));
    }
    let batch = outbox.batch(task, 0, 5, usize::MAX).expect("events");
    assert_eq!(lines(&batch)[0], (1, "line 0".to_string()));
    assert_eq!(batch.events.len(), 5);
}

#[test]
fn batches_stay_under_the_byte_budget_but_never_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (outbox, _) = Outbox::load(dir.path(), "a1").expect("load");
    let task = TaskId::new();
    outbox.open(task, "dep", 1).expect("open");
    let long = "x".repeat(10_000);
    for _ in 0..10 {
        outbox.push(task, log(&long));
    }
    let batch = outbox.batch(task, 0, 512, 25_000).expect("events");
    assert_eq!(
        batch.events.len(),
        2,
        "two 10 kB lines fit in 25 kB, three do not"
    );
    let alone = outbox.batch(task, 0, 512, 10).expect("events");
    assert_eq!(
        alone.events.len(),
        1,
        "an event larger than the budget still goes alone"
    );
}

#[test]
fn a_fully_acknowledged_spool_is_cut_back_and_numbering_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = TaskId::new();
    let path = dir.path().join(format!("{task}.spool"));
    {
        let (outbox, _) = Outbox::load(dir.path(), "a1").expect("load");
        outbox.open(task, "dep", 1).expect("open");
        let big = "y".repeat(1024 * 1024);
        for _ in 0..9 {
            outbox.push(task, log(&big));
        }
        assert!(fs::metadata(&path).expect("spool").len() > COMPACT_BYTES);
        outbox.ack(task, 9);
        assert!(
            fs::metadata(&path).expect("spool").len() < 1024,
            "cut back to its header"
        );
        outbox.push(task, log("after the cut"));
        let batch = outbox.batch(task, 9, 10, usize::MAX).expect("events");
        assert_eq!(lines(&batch), [(10, "after the cut".to_string())]);
    }
    // A restart reads the cut-back spool and keeps numbering from 11.
    let (outbox, interrupted) = Outbox::load(dir.path(), "a1").expect("reload");
    assert_eq!(interrupted, [task]);
    let batch = outbox.batch(task, 9, 10, usize::MAX).expect("events");
    let seqs: Vec<u64> = batch.events.iter().map(|event| event.seq).collect();
    assert_eq!(seqs[0], 10);
    assert!(seqs.iter().skip(1).all(|seq| *seq > 10), "{seqs:?}");
}

/// Of 100 lines pushed and a result, some lines were dropped, a marker
/// saying `why` counts them, and the result is kept.
/// A hundred 60-byte log lines, then the task's result.
fn push_lines_then_done(outbox: &Outbox, task: TaskId) {
    for index in 0..100 {
        outbox.push(task, log(&format!("line {index:03} {}", "z".repeat(50))));
    }
    outbox.push(
        task,
        Kind::Finished(TaskFinished {
            outcome: crate::runner::TaskOutcome::Done.into(),
            ..Default::default()
        }),
    );
}

fn check_dropped(outbox: &Outbox, task: TaskId, why: &str) {
    let batch = outbox.batch(task, 0, 1000, usize::MAX).expect("events");
    let kept = lines(&batch);
    assert!(kept.len() < 100, "some lines were dropped");
    let (_, marker) = kept.last().expect("the marker");
    assert!(marker.contains(why), "{marker}");
    let dropped: usize = marker
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert_eq!(
        kept.len() - 1 + dropped,
        100,
        "kept plus dropped is every line"
    );
    assert_eq!(
        outbox.dropped_lines(),
        dropped as u64,
        "the metrics count every dropped line"
    );
    assert!(
        matches!(
            batch.events.last().and_then(|event| event.kind.clone()),
            Some(Kind::Finished(_))
        ),
        "the result is never dropped"
    );
}

#[test]
fn a_full_spool_drops_log_lines_but_never_results_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut outbox, _) = Outbox::load(dir.path(), "a1").expect("load");
    outbox.max_spool_bytes = 2000;
    let task = TaskId::new();
    outbox.open(task, "dep", 1).expect("open");
    push_lines_then_done(&outbox, task);
    check_dropped(&outbox, task, "log lines were dropped");
}

#[tokio::test]
async fn a_producer_far_ahead_of_the_acks_waits_only_while_linked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (outbox, _) = Outbox::load(dir.path(), "a1").expect("load");
    let outbox = std::sync::Arc::new(outbox);
    let task = TaskId::new();
    outbox.open(task, "dep", 1).expect("open");
    for index in 0..=MAX_BACKLOG {
        outbox.push(task, log(&format!("line {index}")));
    }
    assert!(
        !outbox.backlogged(task),
        "without a controller the lines go to the spool"
    );
    outbox.set_linked(true);
    assert!(outbox.backlogged(task));

    // An acknowledgement that makes room ends the wait.
    let waiter = tokio::spawn({
        let outbox = outbox.clone();
        async move { outbox.room(task).await }
    });
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished(), "waits while nothing is acknowledged");
    outbox.ack(task, 512);
    tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .expect("room after the ack")
        .expect("waiter");
    assert!(!outbox.backlogged(task));

    // Losing the controller ends the wait too.
    for index in 0..512 {
        outbox.push(task, log(&format!("more {index}")));
    }
    assert!(outbox.backlogged(task));
    let waiter = tokio::spawn({
        let outbox = outbox.clone();
        async move { outbox.room(task).await }
    });
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    outbox.set_linked(false);
    tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .expect("room once unlinked")
        .expect("waiter");
}

#[tokio::test(start_paused = true)]
async fn a_paused_producer_resumes_when_the_controller_stalls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (outbox, _) = Outbox::load(dir.path(), "a1").expect("load");
    let task = TaskId::new();
    outbox.open(task, "dep", 1).expect("open");
    for index in 0..=MAX_BACKLOG {
        outbox.push(task, log(&format!("line {index}")));
    }
    outbox.set_linked(true);
    // The clock is paused: the wait is the real `STALL`, and it only
    // moves forward when nothing else can happen.
    let started = tokio::time::Instant::now();
    outbox.room(task).await;
    let waited = started.elapsed();
    assert!(
        waited >= STALL && waited < STALL + std::time::Duration::from_millis(20),
        "waited out the stall, no more: {waited:?}"
    );
    assert!(
        !outbox.backlogged(task),
        "not paused again while the controller acknowledges nothing"
    );
    outbox.push(task, log("more"));
    assert!(!outbox.backlogged(task));
    // Acknowledgements resume, so pausing does too.
    outbox.ack(task, 1);
    assert!(outbox.backlogged(task), "still far ahead of the acks");
}

#[tokio::test(start_paused = true)]
async fn another_tasks_acks_do_not_keep_a_stalled_task_paused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (outbox, _) = Outbox::load(dir.path(), "a1").expect("load");
    let outbox = std::sync::Arc::new(outbox);
    let (stalled, busy) = (TaskId::new(), TaskId::new());
    for task in [stalled, busy] {
        outbox.open(task, "dep", 1).expect("open");
        for index in 0..=MAX_BACKLOG * 2 {
            outbox.push(task, log(&format!("line {index}")));
        }
    }
    outbox.set_linked(true);
    // The other task is acknowledged bit by bit the whole time (every
    // 10 ms of the paused clock, for four times the stall).
    let acker = tokio::spawn({
        let outbox = outbox.clone();
        async move {
            for upto in 1.. {
                outbox.ack(busy, upto);
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    });
    let started = tokio::time::Instant::now();
    tokio::time::timeout(STALL * 4, outbox.room(stalled))
        .await
        .expect("the stalled task resumes after its own stall, whatever else is acknowledged");
    let waited = started.elapsed();
    assert!(
        waited >= STALL && waited < STALL + std::time::Duration::from_millis(20),
        "after its own stall, no later: {waited:?}"
    );
    acker.abort();
}

#[test]
fn an_unwritable_spool_keeps_a_bounded_memory_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut outbox, _) = Outbox::load(dir.path(), "a1").expect("load");
    outbox.max_memory_only_bytes = 2000;
    let task = TaskId::new();
    outbox.open(task, "dep", 1).expect("open");
    // What a failed spool write leaves: the task kept in memory only.
    outbox.lock().get_mut(&task).expect("task").file = None;
    push_lines_then_done(&outbox, task);
    let held = outbox.lock().get(&task).expect("task").memory_bytes;
    assert!(
        held < 2000 + 1000,
        "memory stays near its cap: {held} bytes"
    );
    check_dropped(&outbox, task, "spool cannot be written");
}

/// A spool as an agent of protocol version 1 left it: its header, then
/// `events` as kind 1 records in version 1's layout.
fn write_version_1_spool(dir: &std::path::Path, task: TaskId, events: &[legacy::TaskEventV1]) {
    let header = RunningTask {
        task_id: task.to_string(),
        deployment_id: "dep".into(),
        generation: 2,
        next_seq: 1,
    };
    let mut bytes = record(HEADER, &header.encode_to_vec());
    for event in events {
        bytes.extend(record(EVENT_V1, &event.encode_to_vec()));
    }
    fs::write(dir.join(format!("{task}.spool")), bytes).expect("spool");
}

fn version_1_log(seq: u64, stream: &str, line: &str) -> legacy::TaskEventV1 {
    legacy::TaskEventV1 {
        seq,
        ts_ms: 1_700_000_000_000 + seq as i64,
        kind: Some(legacy::KindV1::Log(legacy::LogLineV1 {
            stage: "setup".into(),
            stream: stream.into(),
            line: line.into(),
        })),
    }
}

#[test]
fn a_version_1_spool_is_read_with_its_layout_and_sent_as_version_2() {
    use berth_proto::v1::{OutputStream, StageOutcome, TaskOutcome};
    let dir = tempfile::tempdir().expect("tempdir");
    let task = TaskId::new();
    write_version_1_spool(
        dir.path(),
        task,
        &[
            legacy::TaskEventV1 {
                seq: 1,
                ts_ms: 1,
                kind: Some(legacy::KindV1::StageStarted(
                    berth_proto::v1::StageStarted {
                        stage: "setup".into(),
                    },
                )),
            },
            version_1_log(2, "stderr", "warning"),
            version_1_log(3, "system", "$ ./setup.sh"),
            legacy::TaskEventV1 {
                seq: 4,
                ts_ms: 4,
                kind: Some(legacy::KindV1::StageFinished(legacy::StageFinishedV1 {
                    stage: "setup".into(),
                    outcome: "timed_out".into(),
                    exit_code: 0,
                    has_exit_code: true,
                    duration_ms: 1500,
                    error: "too slow".into(),
                    details: [("k".to_string(), "v".to_string())].into(),
                })),
            },
            legacy::TaskEventV1 {
                seq: 5,
                ts_ms: 5,
                kind: Some(legacy::KindV1::Finished(legacy::TaskFinishedV1 {
                    outcome: "done".into(),
                    error_step: String::new(),
                    error: String::new(),
                })),
            },
        ],
    );
    let (outbox, interrupted) = Outbox::load(dir.path(), "a1").expect("load");
    assert!(
        interrupted.is_empty(),
        "its result was read: {interrupted:?}"
    );
    let batch = outbox.batch(task, 0, 100, usize::MAX).expect("events");
    assert_eq!((batch.deployment_id.as_str(), batch.generation), ("dep", 2));
    let kinds: Vec<Kind> = batch
        .events
        .iter()
        .filter_map(|event| event.kind.clone())
        .collect();
    assert_eq!(kinds.len(), 5, "{kinds:?}");
    let Kind::Log(stderr) = &kinds[1] else {
        panic!("{kinds:?}")
    };
    assert_eq!(
        (stderr.stream(), stderr.line.as_str()),
        (OutputStream::Stderr, "warning")
    );
    let Kind::Log(system) = &kinds[2] else {
        panic!("{kinds:?}")
    };
    assert_eq!(system.stream(), OutputStream::System);
    let Kind::StageFinished(stage) = &kinds[3] else {
        panic!("{kinds:?}")
    };
    assert_eq!(stage.outcome(), StageOutcome::TimedOut);
    assert_eq!(stage.exit_code, Some(0), "has_exit_code with 0 is exit 0");
    assert_eq!(
        (stage.duration_ms, stage.error.as_str()),
        (1500, "too slow")
    );
    assert_eq!(stage.details.get("k").map(String::as_str), Some("v"));
    let Kind::Finished(finished) = &kinds[4] else {
        panic!("{kinds:?}")
    };
    assert_eq!(finished.outcome(), TaskOutcome::Done);
    outbox.ack(task, 5);
    assert!(!outbox.knows(task), "done and acknowledged: forgotten");
}

#[test]
fn an_interrupted_version_1_task_goes_on_in_version_2_records() {
    use berth_proto::v1::{OutputStream, TaskOutcome};
    let dir = tempfile::tempdir().expect("tempdir");
    let task = TaskId::new();
    // More lines than are kept in memory, so the oldest are read back
    // from the spool file when sent.
    let events: Vec<legacy::TaskEventV1> = (1..=MEMORY_EVENTS as u64 + 10)
        .map(|seq| version_1_log(seq, "stdout", &format!("line {seq}")))
        .collect();
    write_version_1_spool(dir.path(), task, &events);
    // A record of a kind this agent does not know is skipped.
    let path = dir.path().join(format!("{task}.spool"));
    let mut file = OpenOptions::new().append(true).open(&path).expect("spool");
    file.write_all(&record(9, b"from a newer agent"))
        .expect("write");
    drop(file);
    {
        let (_outbox, interrupted) = Outbox::load(dir.path(), "a1").expect("load");
        assert_eq!(interrupted, [task]);
    }
    // Reloaded again: the old records and the new ones the first load
    // appended (the interruption) read back alike.
    let (outbox, interrupted) = Outbox::load(dir.path(), "a1").expect("reload");
    assert!(interrupted.is_empty(), "the first load finished it");
    let first = outbox.batch(task, 0, 3, usize::MAX).expect("from the file");
    assert_eq!(
        lines(&first),
        [
            (1, "line 1".to_string()),
            (2, "line 2".to_string()),
            (3, "line 3".to_string())
        ]
    );
    assert!(first.events.iter().all(|event| matches!(
        &event.kind,
        Some(Kind::Log(log)) if log.stream() == OutputStream::Stdout
    )));
    let last_seq = MEMORY_EVENTS as u64 + 10;
    let rest = outbox
        .batch(task, last_seq, 10, usize::MAX)
        .expect("the interruption");
    match rest.events.last().and_then(|event| event.kind.clone()) {
        Some(Kind::Finished(finished)) => {
            assert_eq!(finished.outcome(), TaskOutcome::Failed);
            assert!(finished.error.contains("restarted"), "{finished:?}");
        }
        other => panic!("expected the interruption's result, got {other:?}"),
    }
}
