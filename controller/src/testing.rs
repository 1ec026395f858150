//! Builders shared by the controller's unit tests.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::blob::BlobStore;
use crate::dispatcher::Dispatcher;
use crate::hub::Hub;
use crate::registry::Registry;
use crate::server::Context;
use crate::store::Store;
use berth_shared::id::{AgentId, DeploymentId};
use berth_shared::manifest::Manifest;
use berth_shared::record::{Deployment, Task, TaskKind, Timestamp};
use berth_shared::state::{DeploymentStatus, TaskStatus};

/// A user `name` with `role`, as a transport would hand it to an operation
/// (a certificate's caller).
pub fn user(name: &str, role: crate::store::Role) -> crate::ops::Caller {
    crate::ops::Caller {
        principal: crate::store::Principal {
            kind: crate::store::PrincipalKind::User,
            id: name.into(),
            name: name.into(),
            role,
            revoked: false,
        },
        serial: format!("cert-{name}"),
        via_token: None,
    }
}

/// A pending deployment of app `a` with one assigned task per host.
pub fn deployment(hosts: &[&str], max_failures: u32) -> Deployment {
    let mut manifest =
        Manifest::parse("app = \"a\"\n[target]\nhosts = [\"x\"]\n[setup]\nrun = [\"true\"]\n")
            .expect("manifest");
    manifest.target.max_failures = max_failures;
    Deployment {
        id: DeploymentId::new(),
        app: "a".into(),
        environment: "default".into(),
        version: "1".into(),
        status: DeploymentStatus::Pending,
        created_at: Timestamp::now(),
        updated_at: Timestamp::now(),
        triggered_by: "admin".into(),
        error_step: None,
        error_message: None,
        bundle_digest: String::new(),
        bundle_size: 0,
        manifest,
        manifest_toml: String::new(),
        idempotency_key: None,
        image_archive_digest: None,
        image_archive_size: 0,
        tasks: hosts
            .iter()
            .map(|host| Task {
                status: TaskStatus::Assigned,
                generation: 1,
                ..Task::queued(TaskKind::Deploy, host, AgentId::new(), Timestamp::now())
            })
            .collect(),
        transitions: Vec::new(),
        parent_id: None,
        retry_count: 0,
        origin: "deploy".into(),
        queued: false,
        deadline_ms: None,
        build_key: None,
        built: None,
        restore_to: None,
        message: None,
        source_ref: None,
        commit_sha: None,
        commit_time: None,
        commit_author: None,
        build_url: None,
        trigger: "cli".into(),
        started_at: None,
        finished_at: None,
        duration_ms: None,
        extra_metadata: Default::default(),
        variables: Vec::new(),
        approval: None,
    }
}

/// A controller context on a real store and blob store in `dir`, with a
/// fresh CA, no agents and no trigger limit.
pub async fn context(dir: &std::path::Path) -> Arc<Context> {
    let ca = berth_shared::pki::new_ca("test").expect("ca");
    let store = Store::open(&dir.join("store")).expect("store");
    let secret_key = Arc::new(crate::crypto::SecretKey::generate());
    store.use_secret_key(secret_key.clone());
    let registry = Arc::new(Registry::default());
    let metrics = Arc::new(crate::metrics::Metrics::new(registry.clone()));
    store.observe(metrics.clone());
    let hub = Hub::default();
    let dispatcher = Arc::new(
        Dispatcher::new(
            store.clone(),
            registry.clone(),
            hub.clone(),
            std::time::Duration::from_secs(60),
        )
        .expect("dispatcher"),
    );
    Arc::new(Context {
        store,
        authority: berth_shared::pki::Authority::load(&ca.cert_pem, &ca.key_pem).expect("ca"),
        registry,
        hub,
        blobs: BlobStore::open(&dir.join("blobs")).await.expect("blobs"),
        dispatcher,
        tasks: TaskTracker::new(),
        shutdown: CancellationToken::new(),
        ca_pem: ca.cert_pem,
        heartbeat_secs: 5,
        triggers: None,
        web: crate::ops::sessions::Web::new(
            crate::ops::sessions::DEFAULT_SESSION_TTL,
            Some("http://127.0.0.1:7080".into()),
        ),
        secret_key,
        approval_ttl: crate::ops::approvals::DEFAULT_APPROVAL_TTL,
        metrics,
        cluster: Arc::new(crate::cluster::Cluster::new(
            crate::store::Member {
                id: "test".into(),
                host: "test".into(),
                pid: std::process::id(),
                listen: "127.0.0.1:7443".into(),
                since_ms: 0,
            },
            None,
        )),
    })
}
