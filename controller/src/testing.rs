//! Builders shared by the controller's unit tests.

use berth_shared::id::{AgentId, DeploymentId, TaskId};
use berth_shared::manifest::Manifest;
use berth_shared::record::{Deployment, Task, TaskKind, Timestamp};
use berth_shared::state::{DeploymentStatus, TaskStatus};

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
        tasks: hosts
            .iter()
            .map(|host| Task {
                id: TaskId::new(),
                kind: TaskKind::Deploy,
                host: (*host).to_string(),
                agent_id: AgentId::new(),
                status: TaskStatus::Assigned,
                generation: 1,
                stages: Vec::new(),
                error_step: None,
                error_message: None,
                created_at: Timestamp::now(),
                assigned_at: None,
                finished_at: None,
                acked_seq: 0,
                stale_events: 0,
            })
            .collect(),
        transitions: Vec::new(),
    }
}
