//! The round trip of every `Cli` record: a fully populated record, through
//! these conversions, the protobuf encoding and the CLI's `wire` module,
//! comes back as the same record. Compared as the pretty JSON `berth -o
//! json` prints (field order included), so the CLI's output is what the
//! record's JSON was before the records became typed messages.

use std::collections::BTreeMap;

use berth_cli::Failure;
use berth_cli::wire;
use berth_shared::id::{AgentId, DeploymentId, TaskId};
use berth_shared::labels::Labels;
use berth_shared::manifest::Manifest;
use berth_shared::record::{
    AgentView, AppStatus, Approval, ApprovalAction, ApprovalOutcome, Approver, AuditEntry,
    BuildOutput, ContainerView, Deployment, Facts, FleetJob, HostInspect, HostRun, HostState,
    LoggedOut, Purged, RegistryView, RestoreSource, RunningTaskView, StageResult, Task, TaskKind,
    Timestamp, TokenView, Transition, Variable, VariableSource,
};
use berth_shared::state::{DEPLOYMENT_STATUSES, DeploymentStatus, TaskStatus};
use prost::Message;
use serde::Serialize;

/// A manifest with most sections (it travels as its JSON, whole).
const MANIFEST: &str = r#"
app = "web"
environment = "production"
version = "1.4.2"
timeout = "20m"
[target]
labels = { role = "web" }
max_parallel = 2
max_failures = 1
on_failure = "rollback"
[setup]
run = ["./install.sh"]
timeout = "2m"
[stop]
run = ["./drain.sh"]
[build]
labels = { role = "build" }
dockerfile = "Dockerfile"
[container]
port = 8080
command = ["httpd", "-f"]
env = { MODE = "prod" }
stop_timeout = "2s"
[health]
http = "/healthz"
interval = "500ms"
timeout = "30s"
[proxy]
domain = "web.example.com"
tls = "off"
"#;

/// Asserts a record survives the round trip and prints the same JSON.
pub(super) fn round_trip<R, M>(
    record: &R,
    to: impl FnOnce(R) -> M,
    from: impl FnOnce(M) -> Result<R, Failure>,
) where
    R: Clone + Serialize,
    M: Message + Default,
{
    let expected = serde_json::to_value(record).expect("json");
    assert_populated(&expected, "record");
    let bytes = to(record.clone()).encode_to_vec();
    let message = M::decode(bytes.as_slice()).expect("decode");
    let back = from(message).unwrap_or_else(|failure| panic!("{}", failure.message));
    assert_eq!(serde_json::to_value(&back).expect("json"), expected);
    assert_eq!(
        serde_json::to_string_pretty(&back).expect("json"),
        serde_json::to_string_pretty(record).expect("json")
    );
}

/// Fails on a `null`, an empty list or map, an empty string, a zero or a
/// `false` anywhere in a fixture's JSON (but inside the manifest, which
/// travels whole): each field must be set for the round trip to test it.
fn assert_populated(value: &serde_json::Value, path: &str) {
    use serde_json::Value;
    let empty = match value {
        Value::Null | Value::Bool(false) => true,
        Value::String(text) => text.is_empty(),
        Value::Number(number) => number.as_f64() == Some(0.0),
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.is_empty(),
        Value::Bool(true) => false,
    };
    assert!(!empty, "the fixture leaves {path} unset: {value}");
    match value {
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                assert_populated(item, &format!("{path}[{index}]"));
            }
        }
        Value::Object(fields) => {
            for (key, field) in fields.iter().filter(|(key, _)| *key != "manifest") {
                assert_populated(field, &format!("{path}.{key}"));
            }
        }
        _ => {}
    }
}

fn at(offset: i64) -> Timestamp {
    Timestamp(1_700_000_000_123 + offset)
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

fn text(value: &str) -> Option<String> {
    Some(value.to_string())
}

fn built(by: DeploymentId) -> BuildOutput {
    BuildOutput {
        digest: "sha256:abc".into(),
        size: 1234,
        image: text("berth/web:1.4.2"),
        image_id: text("sha256:def"),
        artifact: text("web.tar"),
        built_by: by,
        reused: true,
    }
}

fn task(kind: TaskKind, status: TaskStatus) -> Task {
    Task {
        id: TaskId::new(),
        kind,
        host: "web-1".into(),
        agent_id: AgentId::new(),
        status,
        generation: 3,
        stages: vec![StageResult {
            stage: "setup".into(),
            outcome: "failed".into(),
            started_at: at(1),
            finished_at: Some(at(2)),
            duration_ms: Some(1),
            exit_code: Some(-1),
            error: text("exit 1"),
            details: BTreeMap::from([("container".into(), "web-1-abc".into())]),
        }],
        error_step: text("setup"),
        error_message: text("exit 1"),
        created_at: at(0),
        assigned_at: Some(at(1)),
        finished_at: Some(at(3)),
        acked_seq: 17,
        stale_events: 2,
        with_resources: true,
        purge_volumes: true,
    }
}

fn deployment(status: DeploymentStatus) -> Deployment {
    let manifest = Manifest::parse(MANIFEST).expect("manifest");
    let parent = DeploymentId::new();
    let mut tasks = vec![
        task(TaskKind::Deploy, TaskStatus::Queued),
        task(TaskKind::Stop, TaskStatus::Assigned),
        task(TaskKind::Delete, TaskStatus::Setup),
        task(TaskKind::Build, TaskStatus::Build),
        task(TaskKind::Restore, TaskStatus::Deploy),
    ];
    for status in [
        TaskStatus::Proxy,
        TaskStatus::Health,
        TaskStatus::Stop,
        TaskStatus::Delete,
        TaskStatus::Done,
        TaskStatus::Failed,
        TaskStatus::Canceled,
        TaskStatus::TimedOut,
        TaskStatus::Lost,
    ] {
        tasks.push(task(TaskKind::Deploy, status));
    }
    let first_task = tasks[0].id;
    Deployment {
        id: DeploymentId::new(),
        app: "web".into(),
        environment: "production".into(),
        version: "1.4.2".into(),
        status,
        created_at: at(0),
        updated_at: at(9),
        triggered_by: "admin".into(),
        error_step: text("setup"),
        error_message: text("exit 1 on web-1"),
        bundle_digest: "sha256:bundle".into(),
        bundle_size: 4096,
        manifest: manifest.clone(),
        manifest_toml: MANIFEST.into(),
        idempotency_key: text("key-1"),
        image_archive_digest: text("sha256:archive"),
        image_archive_size: 8192,
        tasks,
        transitions: vec![Transition {
            at: at(4),
            subject: "web-1".into(),
            from: text("queued"),
            to: "assigned".into(),
            reason: text("agent connected"),
            seq: Some(5),
            task: Some(first_task),
        }],
        parent_id: Some(parent),
        retry_count: 2,
        origin: "retry".into(),
        queued: true,
        deadline_ms: Some(1_700_000_600_000),
        build_key: text("build-key"),
        built: Some(built(parent)),
        restore_to: Some(RestoreSource {
            deployment_id: parent,
            version: "1.4.1".into(),
            manifest,
            bundle_digest: "sha256:old".into(),
            bundle_size: 2048,
            image_archive_digest: text("sha256:old-archive"),
            image_archive_size: 512,
            built: Some(built(parent)),
            variables: vec![variable("OLD", "1", VariableSource::Manifest, None)],
        }),
        message: text("fix the login page"),
        source_ref: text("refs/tags/v1.4.2"),
        commit_sha: text("0123456789abcdef0123456789abcdef01234567"),
        commit_time: Some(Timestamp(1_700_000_000_000)),
        commit_author: Some("Ana Dev".into()),
        build_url: text("https://ci.example.com/runs/42"),
        trigger: "api".into(),
        started_at: Some(Timestamp(1_700_000_000_500)),
        finished_at: Some(Timestamp(1_700_000_060_500)),
        duration_ms: Some(60_000),
        extra_metadata: [("pipeline".to_string(), "7".to_string())].into(),
        variables: vec![
            variable("GREETING", "hi", VariableSource::Manifest, None),
            variable("PORT", "8080", VariableSource::Container, None),
            variable("REGION", "eu", VariableSource::Environment, None),
            variable("TOKEN", "***", VariableSource::Secret, Some(3)),
        ],
        approval: Some(Approval {
            action: ApprovalAction::Rollback,
            requested_by: "ana via token ci".into(),
            requested_at: at(1),
            expires_at: at(3601),
            approvals: 2,
            outcome: ApprovalOutcome::Approved,
            approved: Some(Approver {
                by: "carol".into(),
                at: at(60),
            }),
            ended_at: Some(at(60)),
            reason: text("approved before the change window closed"),
        }),
    }
}

fn variable(name: &str, value: &str, source: VariableSource, version: Option<u64>) -> Variable {
    Variable {
        name: name.into(),
        value: value.into(),
        source,
        secret_version: version,
        secret_scope: version.map(|_| "web/production".parse().expect("scope")),
    }
}

#[test]
fn deployments_round_trip_with_every_status() {
    for status in DEPLOYMENT_STATUSES {
        round_trip(
            &deployment(status),
            |record| super::deployment_reply(record).expect("encode"),
            wire::deployment,
        );
    }
    for (action, outcome) in ApprovalAction::ALL
        .into_iter()
        .zip(ApprovalOutcome::ALL.into_iter().cycle())
    {
        let mut record = deployment(DeploymentStatus::PendingApproval);
        if let Some(approval) = record.approval.as_mut() {
            approval.action = action;
            approval.outcome = outcome;
        }
        round_trip(
            &record,
            |record| super::deployment_reply(record).expect("encode"),
            wire::deployment,
        );
    }
    round_trip(
        &vec![deployment(DeploymentStatus::Failed); 2],
        |records| pb_list(super::deployments(records).expect("encode")),
        |list| wire::deployments(list.deployments),
    );
}

/// A list of deployments in a `DeploymentList` (as `StopSelected` sends).
fn pb_list(deployments: Vec<berth_proto::v1::Deployment>) -> berth_proto::v1::DeploymentList {
    berth_proto::v1::DeploymentList { deployments }
}

fn facts() -> Facts {
    Facts {
        hostname: "web-1".into(),
        os: "Debian GNU/Linux".into(),
        os_family: "linux".into(),
        os_version: "12".into(),
        kernel: "6.1.0".into(),
        arch: "x86_64".into(),
        cpus: 4,
        memory_total_bytes: 8 << 30,
        memory_used_bytes: 3 << 30,
        disk_total_bytes: 100 << 30,
        disk_free_bytes: 40 << 30,
        uptime_secs: 86_400,
        load_1m: 0.37,
        docker_version: "27.1".into(),
        docker_error: "none (a fixture)".into(),
    }
}

fn running() -> RunningTaskView {
    RunningTaskView {
        deployment_id: DeploymentId::new(),
        task_id: TaskId::new(),
        app: "web".into(),
        status: TaskStatus::Health,
    }
}

#[test]
fn agents_round_trip() {
    let agent = AgentView {
        id: AgentId::new(),
        name: "web-1".into(),
        online: true,
        status: "online".into(),
        labels: labels(&[("role", "web"), ("zone", "a")]),
        auto_labels: labels(&[("os", "linux")]),
        facts: Some(facts()),
        version: text("0.1.0"),
        enrolled_at: at(0),
        last_seen_at: Some(at(5)),
        cert_expires_at: at(1_000_000),
        valid_certificates: 2,
        running_tasks: vec![running()],
    };
    round_trip(&agent, super::agent, wire::agent);
    round_trip(&vec![agent.clone(), agent], super::agent_list, wire::agents);
}

#[test]
fn tokens_round_trip() {
    let token = TokenView {
        id: "tok-1".into(),
        labels: labels(&[("role", "web")]),
        created_at: at(0),
        expires_at: at(3_600_000),
        uses_allowed: 3,
        uses: 1,
        revoked: true,
        created_by: "admin".into(),
        state: "revoked".into(),
    };
    round_trip(&token, super::token, wire::token);
    round_trip(&vec![token], super::token_list, |list| {
        Ok(wire::tokens(list))
    });
}

#[test]
fn app_statuses_round_trip() {
    let row = AppStatus {
        app: "web".into(),
        environment: "production".into(),
        version: "1.4.2".into(),
        deployment_id: DeploymentId::new(),
        status: DeploymentStatus::Deployed,
        since: at(0),
        hosts: vec!["web-1".into(), "web-2".into()],
        in_progress: Some(DeploymentId::new()),
        queued: vec![DeploymentId::new(), DeploymentId::new()],
        build_state: text("building on build-1"),
        approval: text("deploy 01K by ana waits for approval by an admin until 14:05 UTC"),
        health: text("unhealthy: web-2"),
        host_states: vec![HostState {
            host: "web-1".into(),
            online: true,
            version: "1.4.2".into(),
            deployment_id: DeploymentId::new().to_string(),
            state: "running".into(),
            health: text("unhealthy: GET /healthz: HTTP 500"),
            since: Some(at(1)),
            last_repair: text("started the container again"),
            last_repair_at: Some(at(2)),
            secrets_changed: vec!["DB_PASSWORD (v1, now v2)".into()],
            resources: vec![berth_shared::record::ResourceState {
                name: "db".into(),
                image: "postgres:16".into(),
                state: "running".into(),
                health: "healthy".into(),
                volumes: vec!["berth-web-production-web-1-db-data:/data".into()],
            }],
        }],
    };
    round_trip(&vec![row], super::app_statuses, wire::app_statuses);
}

#[test]
fn inspect_answers_round_trip() {
    let host = HostInspect {
        host: "web-1".into(),
        online: true,
        answered: true,
        error: text("docker: slow"),
        containers: vec![ContainerView {
            name: "berth-web-production".into(),
            id: "c0ffee".into(),
            app: "web".into(),
            environment: "production".into(),
            deployment_id: DeploymentId::new().to_string(),
            version: "1.4.2".into(),
            image: "berth/web:1.4.2".into(),
            state: "running".into(),
            status: "Up 5 minutes".into(),
            ports: vec!["0.0.0.0:32768->8080/tcp".into()],
            restart_count: 1,
            recent_logs: vec!["GET / 200".into()],
            health: "healthy".into(),
            resource: "db".into(),
            volumes: vec!["berth-web-production-web-1-db-data:/data".into()],
        }],
        facts: Some(facts()),
        running_tasks: vec![running()],
        routes: vec!["web.example.com -> 127.0.0.1:32768 (berth-web)".into()],
    };
    round_trip(&host, super::host_inspect, wire::host_inspect);
}

#[test]
fn fleet_jobs_round_trip() {
    let job = FleetJob {
        id: "01KBQ4ZJ0AW8Y4ZWJ0PJ7WDT5F".into(),
        argv: vec!["uptime".into(), "-p".into()],
        selector: "role=web".into(),
        triggered_by: "admin".into(),
        timeout_ms: 60_000,
        started_at: at(0),
        finished_at: at(1_500),
        hosts: vec![HostRun {
            host: "web-1".into(),
            status: "failed".into(),
            exit_code: Some(2),
            output: vec!["stderr: no such option".into()],
            error: text("exit 2"),
            duration_ms: 12,
        }],
    };
    round_trip(&job, super::job, wire::job);
    round_trip(&job, super::fleet_job, |message| {
        Ok(wire::fleet_job(message))
    });
    round_trip(&vec![job], super::job_list, |list| Ok(wire::jobs(list)));
}

#[test]
fn administration_records_round_trip() {
    let entry = AuditEntry {
        at: at(0),
        who: "admin".into(),
        action: "purge".into(),
        target: "deployment 01KBQ4ZJ0AW8Y4ZWJ0PJ7WDT5F".into(),
        outcome: "purged".into(),
    };
    round_trip(&vec![entry], super::audit, |reply| Ok(wire::audit(reply)));
    let registry = RegistryView {
        server: "registry.example.com:5000".into(),
        username: "deploy".into(),
        created_at: at(0),
        created_by: "admin".into(),
    };
    round_trip(&registry, super::registry, wire::registry);
    round_trip(&vec![registry], super::registry_list, |list| {
        Ok(wire::registries(list))
    });
    let purged = Purged {
        id: DeploymentId::new(),
        app: "web".into(),
        environment: "production".into(),
        purged: true,
        log_lines_removed: 42,
    };
    round_trip(&purged, super::purged, wire::purged);
    let logged_out = LoggedOut {
        server: "registry.example.com".into(),
        removed: true,
    };
    round_trip(&logged_out, super::logged_out, |reply| {
        Ok(wire::logged_out(reply))
    });
}
