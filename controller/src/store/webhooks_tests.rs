//! The webhook trees: events written with the change they describe, moved
//! into each endpoint's queue in order, and finished deliveries pruned.

use berth_shared::record::{DeliveryState, Timestamp, WebhookFormat};
use berth_shared::state::DeploymentStatus;

use super::{DeliveryRecord, Store, WebhookRecord, deployment_events};
use crate::crypto::{Place, SecretKey};

fn endpoint(store: &Store, key: &SecretKey) -> WebhookRecord {
    let id = ulid::Ulid::new().to_string();
    let record = WebhookRecord {
        sealed: key.seal(&Place::Webhook { id: &id }, b"{}"),
        id,
        display_url: "http://127.0.0.1:1".into(),
        events: Vec::new(),
        app: None,
        environment: None,
        format: WebhookFormat::Standard,
        enabled: true,
        disabled_reason: None,
        failing_since: None,
        created_at: Timestamp::now(),
        created_by: "admin".into(),
    };
    store.put_webhook(&record).expect("put webhook");
    record
}

fn pending(id: &str) -> DeliveryRecord {
    DeliveryRecord {
        id: id.into(),
        event: "deployment.created".into(),
        deployment: None,
        body: "{}".into(),
        state: DeliveryState::Pending,
        attempts: 0,
        created_at: Timestamp::now(),
        next_attempt_at: None,
        finished_at: None,
        last_status: None,
        last_error: None,
    }
}

#[test]
fn a_change_writes_its_event_only_while_an_endpoint_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let quiet = crate::testing::deployment(&["h1"], 0);
    store
        .create_deployment(&quiet, false, false)
        .expect("create");
    assert!(store.outbox(10).expect("outbox").is_empty());

    let key = SecretKey::generate();
    endpoint(&store, &key);
    let heard = crate::testing::deployment(&["h1"], 0);
    let heard = berth_shared::record::Deployment {
        environment: "other".into(),
        ..heard
    };
    store
        .create_deployment(&heard, false, false)
        .expect("create");
    store
        .update_deployment(heard.id, |deployment| {
            deployment.status = DeploymentStatus::Failed;
            Ok(())
        })
        .expect("fail");
    // A change that keeps the status says nothing.
    store
        .update_deployment(heard.id, |deployment| {
            deployment.error_message = Some("again".into());
            Ok(())
        })
        .expect("touch");
    let events: Vec<(String, String)> = store
        .outbox(10)
        .expect("outbox")
        .into_iter()
        .map(|(_, event)| {
            let status = event.data["deployment"]["status"]
                .as_str()
                .unwrap_or("")
                .to_string();
            (event.event, status)
        })
        .collect();
    assert_eq!(
        events,
        [
            ("deployment.created".to_string(), "pending".to_string()),
            ("deployment.failed".to_string(), "failed".to_string())
        ]
    );
}

#[test]
fn deliveries_queue_in_order_and_finished_ones_are_pruned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let key = SecretKey::generate();
    let (one, two) = (endpoint(&store, &key), endpoint(&store, &key));
    for n in 0..3 {
        store
            .enqueue_deliveries(None, &[(one.id.clone(), pending(&format!("msg_{n}")))])
            .expect("enqueue");
    }
    store
        .enqueue_deliveries(None, &[(two.id.clone(), pending("msg_other"))])
        .expect("enqueue");
    let (head, waiting) = store.queue_head(&one.id).expect("head");
    let (head_key, mut first) = head.expect("a head");
    assert_eq!((first.id.as_str(), waiting), ("msg_0", 3));
    first.state = DeliveryState::Delivered;
    store.put_delivery(&one.id, &head_key, &first).expect("put");
    let (head, waiting) = store.queue_head(&one.id).expect("head");
    assert_eq!((head.expect("next").1.id.as_str(), waiting), ("msg_1", 2));
    assert_eq!(store.queue_head(&two.id).expect("other").1, 1);

    // Past KEEP_FINISHED, the oldest finished deliveries go; pending stay.
    for n in 0..super::webhooks::KEEP_FINISHED + 5 {
        let mut done = pending(&format!("done_{n}"));
        done.state = DeliveryState::Delivered;
        store
            .enqueue_deliveries(None, &[(two.id.clone(), done.clone())])
            .expect("enqueue");
        let newest = store.deliveries(&two.id, 1).expect("list");
        assert_eq!(newest[0].id, done.id);
        let (head, _) = store.queue_head(&two.id).expect("head");
        let _ = head;
        // What put_delivery does after an attempt finishes one.
        let t = store.t().expect("trees");
        let last = t
            .webhook_deliveries
            .scan_prefix(super::webhooks::endpoint_key(&two.id).expect("key"))
            .next_back()
            .expect("row")
            .expect("read")
            .0;
        store.put_delivery(&two.id, &last, &done).expect("put");
    }
    let kept = store.deliveries(&two.id, 1000).expect("list");
    assert_eq!(
        kept.len(),
        super::webhooks::KEEP_FINISHED + 1,
        "finished kept plus the pending one"
    );
    assert!(kept.iter().any(|delivery| delivery.id == "msg_other"));

    store.remove_webhook(&one.id).expect("remove");
    assert!(store.webhook(&one.id).expect("read").is_none());
    assert_eq!(store.queue_head(&one.id).expect("head").1, 0);
}

#[test]
fn each_status_change_names_its_event() {
    use DeploymentStatus::*;
    let mut deployment = crate::testing::deployment(&["h1"], 0);
    assert_eq!(deployment_events(None, &deployment), ["deployment.created"]);
    deployment.status = PendingApproval;
    assert_eq!(
        deployment_events(None, &deployment),
        ["deployment.created", "deployment.pending_approval"]
    );
    let cases = [
        (Deploying, Deployed, "cli", Some("deployment.succeeded")),
        (
            Deploying,
            Deployed,
            "rollback",
            Some("deployment.rolled_back"),
        ),
        (Deploying, Failed, "cli", Some("deployment.failed")),
        (Deploying, TimedOut, "cli", Some("deployment.failed")),
        (Pending, Canceled, "cli", Some("deployment.canceled")),
        (Deployed, Stopped, "cli", Some("deployment.stopped")),
        (Pending, Deploying, "cli", None),
        (Deployed, Deployed, "cli", None),
    ];
    for (before, after, trigger, event) in cases {
        deployment.status = after;
        deployment.trigger = trigger.into();
        assert_eq!(
            deployment_events(Some(before), &deployment)
                .first()
                .copied(),
            event,
            "{before:?} -> {after:?} ({trigger})"
        );
    }
}

#[test]
fn rotating_the_key_reseals_webhooks_and_git_hooks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let old = SecretKey::generate();
    let webhook = endpoint(&store, &old);
    let id = ulid::Ulid::new().to_string();
    let hook = crate::store::HookRecord {
        sealed: old.seal(&Place::Hook { id: &id }, b"hook-secret"),
        id: id.clone(),
        app: "web".into(),
        environment: "prod".into(),
        git_ref: "main".into(),
        repo: "file:///repo.git".into(),
        path: None,
        provider: berth_shared::record::GitProvider::Github,
        credential: None,
        build_labels: String::new(),
        accepted: 0,
        refused: 0,
        created_at: Timestamp::now(),
        created_by: "ana".into(),
    };
    store.put_hook(&hook).expect("put hook");
    let new = SecretKey::generate();
    assert_eq!(store.reseal(&old, &new).expect("reseal").webhooks, 2);
    assert_eq!(
        store.sealing_key_ids().expect("ids"),
        std::collections::BTreeSet::from([new.id().clone()])
    );
    let webhook = store.webhook(&webhook.id).expect("read").expect("there");
    let opened = new.open(&Place::Webhook { id: &webhook.id }, &webhook.sealed);
    assert_eq!(opened.expect("opens").as_slice(), b"{}");
    let hook = store.hook(&id).expect("read").expect("there");
    let opened = new.open(&Place::Hook { id: &id }, &hook.sealed);
    assert_eq!(opened.expect("opens").as_slice(), b"hook-secret");
}
