//! Tests of the store's codec, counters and retention.
use super::*;

#[test]
fn codec_detects_corruption() {
    let mut bytes = encode(&vec![1, 2, 3]);
    assert_eq!(
        decode::<Vec<i32>>("t", &bytes).expect("decode"),
        vec![1, 2, 3]
    );
    let last = bytes.len() - 2;
    bytes[last] ^= 0x01;
    assert!(matches!(
        decode::<Vec<i32>>("t", &bytes),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        decode::<Vec<i32>>("t", &[0, 1]),
        Err(StoreError::Corrupt { .. })
    ));
    let mut future = encode(&1);
    future[1] = 9;
    assert!(matches!(
        decode::<i32>("t", &future),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn generations_increase_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = {
        let store = Store::open(dir.path()).expect("open");
        let one = store.next_generation().expect("gen");
        let two = store.next_generation().expect("gen");
        assert!(two > one);
        two
    };
    // sled may hold the file lock a moment after the last handle goes.
    let store = super::reopen(dir.path());
    assert!(store.next_generation().expect("gen") > first);
}

#[test]
fn expires_logs_of_old_settled_deployments_only() {
    use berth_shared::state::DeploymentStatus;

    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let line = |text: &str| StoredLine {
        stage: "setup".into(),
        stream: "stdout".into(),
        ts_ms: 1,
        line: text.into(),
    };
    let mut ids = Vec::new();
    for (created_ms, status) in [
        (1_000, DeploymentStatus::Deployed),
        (2_000, DeploymentStatus::Failed),
    ] {
        let mut deployment = crate::testing::deployment(&["h1"], 0);
        deployment.id = berth_shared::id::DeploymentId(ulid::Ulid::from_parts(created_ms, 7));
        deployment.status = status;
        let task = deployment.tasks[0].id;
        store
            .create_deployment(&deployment, true, false)
            .expect("create");
        store
            .update_deployment_with_logs(deployment.id, |_| {
                Ok(((), vec![(task, 1, line("one")), (task, 2, line("two"))]))
            })
            .expect("logs");
        ids.push((deployment.id, task));
    }
    let cutoff = 1_500;
    assert_eq!(
        store
            .expire_logs(cutoff, std::time::Duration::from_secs(60))
            .expect("sweep"),
        2,
        "only the first is older than the cutoff"
    );
    assert_eq!(store.task_lines(ids[0].0, ids[0].1, 0).count(), 0);
    assert_eq!(store.task_lines(ids[1].0, ids[1].1, 0).count(), 2);
    assert!(
        store.get_deployment(ids[0].0).is_ok(),
        "the record itself stays"
    );
    assert_eq!(
        store
            .expire_logs(cutoff, std::time::Duration::from_secs(60))
            .expect("again"),
        0,
        "each deployment is swept once"
    );
    assert_eq!(
        store
            .expire_logs(i64::MAX, std::time::Duration::from_secs(60))
            .expect("all"),
        2
    );
}

/// sled 0.34's `flush_async`, called by hundreds of tasks at once after a
/// transaction, deadlocks the store (spacejam/sled#1308); `Store::flush`
/// must not. The runtime runs on its own thread: a deadlock blocks its
/// workers, so only a watchdog outside it can notice.
#[test]
fn hundreds_of_concurrent_flushes_all_finish() {
    use super::kv::Transactional;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let mut flushes = tokio::task::JoinSet::new();
            for index in 0..300u32 {
                let store = store.clone();
                flushes.spawn(async move {
                    let trees = store.t().expect("open");
                    trees.meta.transaction(|meta| {
                        meta.insert(format!("probe{index}").as_bytes(), &index.to_be_bytes())?;
                        Ok(())
                    })?;
                    store.flush().await
                });
            }
            while let Some(result) = flushes.join_next().await {
                result.expect("flush task").expect("flush");
            }
        });
        let _ = done.send(());
    });
    assert!(
        finished
            .recv_timeout(std::time::Duration::from_secs(60))
            .is_ok(),
        "concurrent flushes did not finish within 60 s (deadlock)"
    );
}

#[test]
fn full_disk_errors_are_told_apart() {
    // sled keeps only the text of the OS error.
    let sled_full = std::io::Error::other(
        "Os { code: 28, kind: StorageFull, message: \"No space left on device\" }",
    );
    assert!(health::is_disk_full(&sled_full));
    assert!(health::is_disk_full(&std::io::Error::from_raw_os_error(
        122
    )));
    assert_eq!(
        health::disk_full_reason(&std::io::Error::from_raw_os_error(122)),
        "Disk quota exceeded"
    );
    assert!(!health::is_disk_full(&std::io::Error::from_raw_os_error(5)));
    let err: StoreError = sled::Error::Io(sled_full).into();
    assert!(
        matches!(&err, StoreError::DiskFull(reason) if reason == "No space left on device"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unwritable_store_is_reopened_in_place_with_what_was_durable() {
    tokio::time::pause();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    // Another holder, as every service holds a clone.
    let service = store.clone();
    let durable = store.next_generation().expect("gen");
    store.flush().await.expect("flush");
    assert_eq!(store.health(), StoreHealth::default());

    let full = sled::Error::Io(std::io::Error::from_raw_os_error(28));
    let err = store.failed(full.into());
    assert!(matches!(err, StoreError::DiskFull(_)), "{err}");
    let health = service.health();
    assert_eq!(health.problem.as_deref(), Some("No space left on device"));
    assert!(health.since_ms.is_some());

    // Not before the next check is due.
    store.check().await;
    assert!(store.health().problem.is_some());
    tokio::time::advance(CHECK_EVERY).await;
    store.check().await;
    assert_eq!(service.health(), StoreHealth::default(), "healthy again");
    // The clone uses the reopened database, which kept what was durable.
    assert!(service.next_generation().expect("gen after reopen") > durable);
    service.flush().await.expect("flush after reopen");
}
