//! What this CLI does with a reply it cannot read: a clear failure naming
//! what, never a panic. (The round trip of every record, through the
//! controller's conversions and these, is tested in the controller's
//! `grpc/cli/records/tests.rs`.)

use berth_proto::v1 as pb;
use berth_shared::exit;
use berth_shared::manifest::Manifest;

use super::*;

const ID: &str = "01KBQ4ZJ0AW8Y4ZWJ0PJ7WDT5F";

fn manifest_json() -> String {
    let manifest = Manifest::parse("app = \"a\"\n[target]\nhosts = [\"h1\"]\n").expect("manifest");
    serde_json::to_string(&manifest).expect("json")
}

/// A deployment this CLI reads, with one task.
fn message() -> pb::Deployment {
    pb::Deployment {
        id: ID.into(),
        app: "a".into(),
        environment: "default".into(),
        status: pb::DeploymentStatus::Deployed.into(),
        manifest_json: manifest_json(),
        origin: "deploy".into(),
        tasks: vec![pb::Task {
            id: ID.into(),
            agent_id: ID.into(),
            kind: pb::TaskKind::Deploy.into(),
            status: pb::TaskStatus::Done.into(),
            ..pb::Task::default()
        }],
        ..pb::Deployment::default()
    }
}

/// The failure reading `message` gives; asserts it is the clear one.
fn failure(message: pb::Deployment, names: &str) -> String {
    let failure = deployment_message(message).expect_err("unreadable");
    assert_eq!(failure.code, exit::FAILED);
    assert!(
        failure.message.starts_with("the controller sent ")
            && failure.message.contains(names)
            && failure
                .message
                .ends_with("which this CLI cannot read; install a matching berth CLI"),
        "{}",
        failure.message
    );
    failure.message
}

#[test]
fn a_well_formed_deployment_reads() {
    let deployment = deployment_message(message()).expect("readable");
    assert_eq!(deployment.id.to_string(), ID);
    assert_eq!(deployment.status, DeploymentStatus::Deployed);
    assert_eq!(deployment.tasks[0].status, TaskStatus::Done);
    assert_eq!(deployment.manifest.app, "a");
}

#[test]
fn unknown_enum_values_are_refused_by_name() {
    let mut unknown = message();
    unknown.status = 99;
    failure(unknown, "a deployment status (99)");
    let mut unspecified = message();
    unspecified.status = pb::DeploymentStatus::Unspecified.into();
    failure(unspecified, "a deployment status (0)");
    let mut task = message();
    task.tasks[0].status = 42;
    failure(task, "a task status (42)");
    let mut kind = message();
    kind.tasks[0].kind = -1;
    failure(kind, "a task kind (-1)");
    let running = pb::StatusReply {
        apps: vec![pb::AppStatus {
            deployment_id: ID.into(),
            status: 14,
            ..pb::AppStatus::default()
        }],
    };
    let err = app_statuses(running).expect_err("unknown status");
    assert!(
        err.message.contains("a deployment status (14)"),
        "{}",
        err.message
    );
}

#[test]
fn a_manifest_that_does_not_parse_is_refused() {
    let mut broken = message();
    broken.manifest_json = "{\"app\": 3}".into();
    failure(broken, "a manifest (");
    let mut empty = message();
    empty.manifest_json.clear();
    failure(empty, "a manifest (");
}

#[test]
fn ids_that_are_not_ids_are_refused() {
    let mut bad = message();
    bad.id = "nope".into();
    failure(bad, "a deployment id `nope`");
    let mut task = message();
    task.tasks[0].agent_id = String::new();
    failure(task, "an agent id ``");
}

#[test]
fn replies_without_their_record_are_refused() {
    for message in [
        deployment(pb::DeploymentReply::default())
            .expect_err("no deployment")
            .message,
        agent(pb::AgentReply::default())
            .expect_err("no agent")
            .message,
        token(pb::TokenReply::default())
            .expect_err("no token")
            .message,
        job(pb::JobReply::default()).expect_err("no job").message,
        registry(pb::RegistryReply::default())
            .expect_err("no registry")
            .message,
    ] {
        assert!(
            message.starts_with("the controller sent a reply without its ")
                && message.ends_with("install a matching berth CLI"),
            "{message}"
        );
    }
}
