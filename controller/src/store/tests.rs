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
    let store = Store::open(dir.path()).expect("reopen");
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
