//! The controller's questions about an app's resources on this host
//! (`berth resource snapshots`, `berth resource restore`), each answered
//! from its own task with a `ResourceAnswer`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_proto::v1::agent_message::Kind as Outgoing;
use berth_proto::v1::{AgentMessage, ResourceAnswer, ResourceAsk, SnapshotFile, TaskSpec};
use tokio::sync::mpsc;

use crate::Agent;
use crate::stage::docker::{self, resource, snapshot};

/// How long a restored resource has to pass its health check.
const RESTORED_HEALTH: Duration = Duration::from_secs(120);

/// Answers one question.
pub async fn run(agent: &Arc<Agent>, ask: ResourceAsk, sender: mpsc::Sender<AgentMessage>) {
    let request_id = ask.request_id;
    let mut answer = match ask.action.as_str() {
        "snapshots" => ResourceAnswer {
            snapshots: snapshots(agent, &ask),
            ..Default::default()
        },
        "restore" => {
            let mut lines = Vec::new();
            let error = restore(agent, &ask, &mut lines)
                .await
                .err()
                .unwrap_or_default();
            ResourceAnswer {
                error,
                lines,
                ..Default::default()
            }
        }
        other => ResourceAnswer {
            error: format!("this agent does not know the resource action `{other}`; upgrade it"),
            ..Default::default()
        },
    };
    answer.request_id = request_id;
    let _ = sender
        .send(AgentMessage {
            kind: Some(Outgoing::ResourceAnswer(answer)),
        })
        .await;
}

/// Only plain names reach the file system.
fn plain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn snapshots(agent: &Agent, ask: &ResourceAsk) -> Vec<SnapshotFile> {
    let root = agent.files.snapshots().join(&ask.app);
    if !plain(&ask.app) {
        return Vec::new();
    }
    let mut found = Vec::new();
    for environment in children(&root) {
        if !ask.environment.is_empty() && ask.environment != environment {
            continue;
        }
        for resource in children(&root.join(&environment)) {
            if !ask.resource.is_empty() && ask.resource != resource {
                continue;
            }
            let dir = root.join(&environment).join(&resource);
            found.extend(snapshot::list(&dir).into_iter().map(|file| SnapshotFile {
                environment: environment.clone(),
                resource: resource.clone(),
                taken_at_ms: snapshot::stamp_ms(&file.taken_at).unwrap_or(0),
                volume: file.volume,
                file: file.file,
                bytes: file.bytes,
            }));
        }
    }
    found
}

fn children(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.path().is_dir())
                .filter_map(|entry| entry.file_name().to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn restore(agent: &Agent, ask: &ResourceAsk, lines: &mut Vec<String>) -> Result<(), String> {
    if ![&ask.app, &ask.environment, &ask.resource, &ask.snapshot]
        .iter()
        .all(|part| plain(part))
    {
        return Err("no snapshot by that name".into());
    }
    let dir = snapshot::directory(
        &agent.files.snapshots(),
        &ask.app,
        &ask.environment,
        &ask.resource,
    );
    let Some(file) = snapshot::list(&dir)
        .into_iter()
        .find(|file| file.file == ask.snapshot)
    else {
        return Err(format!(
            "no snapshot {} of resource {} here; `berth resource snapshots {}` lists them",
            ask.snapshot, ask.resource, ask.app
        ));
    };
    let docker = docker::connect(&agent.docker_host)
        .await
        .map_err(|err| format!("cannot reach Docker at {err}"))?;
    let scope = TaskSpec {
        app: ask.app.clone(),
        environment: ask.environment.clone(),
        host: agent.identity.name.clone(),
        ..Default::default()
    };
    // The repair loop leaves the app alone meanwhile.
    let _busy = agent.current.claim(&scope);
    tracing::info!(app = %ask.app, environment = %ask.environment, resource = %ask.resource, snapshot = %ask.snapshot, "restoring a resource snapshot");
    let path = dir.join(&file.file);
    let container =
        docker::restore::restore(&docker, &scope, &ask.resource, &file.volume, &path, lines)
            .await?;
    healthy(&docker, &scope, &ask.resource, &container, lines).await
}

/// Waits for the restored resource's health check to pass (or, without
/// one, for it to stay up a moment).
async fn healthy(
    docker: &bollard::Docker,
    scope: &TaskSpec,
    name: &str,
    container: &str,
    lines: &mut Vec<String>,
) -> Result<(), String> {
    struct Quiet;
    impl crate::stage::shell::LineSink for Quiet {
        fn line(&self, _stream: crate::stage::shell::Stream, _line: String) {}
    }
    docker::watch_start(docker, container, &Quiet).await?;
    let started = Instant::now();
    loop {
        let listed = resource::containers(docker, scope, Some(name)).await?;
        let Some(summary) = listed
            .iter()
            .find(|summary| crate::stage::docker::name_of(summary) == container)
        else {
            return Err(format!("container {container} went away after the restore"));
        };
        let health = resource::health_now(docker, summary, container).await;
        if health.is_empty() || health == "healthy" {
            lines.push(format!(
                "resource {name} is {}",
                if health.is_empty() {
                    "running (it has no health check)"
                } else {
                    "healthy"
                }
            ));
            return Ok(());
        }
        if started.elapsed() > RESTORED_HEALTH {
            return Err(format!(
                "resource {name} was restored but is not healthy after {}s: {health}; see `berth logs APP --resource {name}`",
                RESTORED_HEALTH.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
