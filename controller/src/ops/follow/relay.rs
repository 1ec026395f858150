//! `berth logs -f` on a deployed container app: once the deployment is
//! quiet, the follower goes on with the running containers' output, which
//! the agents relay live and the controller does not store (it masks the
//! deployment's secrets in them).

use berth_shared::record::{Deployment, TaskKind};
use berth_shared::state::{DeploymentStatus, TaskStatus};

use std::collections::HashMap;
use std::sync::Arc;

use super::filter::LogFilter;
use super::{Follower, LogItem, LogLine, LogsRequest, Stopped};
use crate::ops::{Code, Error, Result, Stream};
use crate::server::Context;
use crate::store::StoredLine;

/// Lines of a resource's output sent first when `--tail` names none.
const RESOURCE_TAIL: u32 = 100;

/// `berth logs APP --resource NAME`: the resource's output relayed from
/// every host the deployment reached (its last lines, then with `follow`
/// live), masked like the app's.
pub(super) fn resource_logs(
    context: Arc<Context>,
    deployment: Deployment,
    filter: LogFilter,
    request: LogsRequest,
) -> Result<Stream<LogItem>> {
    if !deployment
        .manifest
        .resources
        .contains_key(&request.resource)
    {
        let known: Vec<&str> = deployment
            .manifest
            .resources
            .keys()
            .map(String::as_str)
            .collect();
        return Err(Error::new(
            Code::ResourceNotFound,
            format!(
                "app `{}` in `{}` (deployment {}) has no resource `{}`; {}",
                deployment.app,
                deployment.environment,
                deployment.id,
                request.resource,
                if known.is_empty() {
                    "its manifest declares none".to_string()
                } else {
                    format!("it has {}", known.join(", "))
                }
            ),
        ));
    }
    let (sender, receiver) = tokio::sync::mpsc::channel(1024);
    let tasks = context.tasks.clone();
    tasks.spawn(async move {
        let follower = Follower {
            context: context.clone(),
            id: deployment.id,
            filter,
            sender,
            last: HashMap::new(),
            held: HashMap::new(),
            app_output: false,
        };
        let mut relays = Vec::new();
        let mut seen = Vec::new();
        for task in deployment
            .tasks
            .iter()
            .filter(|task| task.kind == TaskKind::Deploy)
        {
            if seen.contains(&task.agent_id) || !follower.filter.wants_host(&task.host) {
                continue;
            }
            seen.push(task.agent_id);
            let asked = berth_proto::v1::FollowContainer {
                deployment_id: deployment.id.to_string(),
                app: deployment.app.clone(),
                environment: deployment.environment.clone(),
                resource: request.resource.clone(),
                tail: if request.tail == 0 {
                    RESOURCE_TAIL
                } else {
                    request.tail
                },
                once: !request.follow,
                ..Default::default()
            };
            if let Some(relay) = context
                .registry
                .follow_container(task.agent_id, asked)
                .await
            {
                relays.push((task.host.clone(), relay));
            }
        }
        let stage = format!("resource {}", request.resource);
        let _ = follower
            .pump_relays(deployment.id, &mut relays, &stage)
            .await;
        for (_, relay) in &relays {
            context.registry.unfollow(relay).await;
        }
    });
    Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(
        receiver,
    )))
}

impl Follower {
    /// Relays the output of the deployment's running containers, live,
    /// until the client goes away, every container's output ends, or the
    /// controller shuts down. Only a deployed container app has any.
    pub(super) async fn relay_containers(
        &self,
        deployment: &Deployment,
    ) -> std::result::Result<(), Stopped> {
        if deployment.status != DeploymentStatus::Deployed
            || deployment.manifest.container.is_none()
        {
            return Ok(());
        }
        let mut relays = Vec::new();
        for task in deployment
            .tasks
            .iter()
            .filter(|task| task.kind == TaskKind::Deploy && task.status == TaskStatus::Done)
        {
            if !self.filter.wants_host(&task.host) {
                continue;
            }
            let request = berth_proto::v1::FollowContainer {
                request_id: 0,
                deployment_id: deployment.id.to_string(),
                app: deployment.app.clone(),
                environment: deployment.environment.clone(),
                stop: false,
                ..Default::default()
            };
            if let Some(relay) = self
                .context
                .registry
                .follow_container(task.agent_id, request)
                .await
            {
                relays.push((task.host.clone(), relay));
            }
        }
        let result = self.pump_relays(deployment.id, &mut relays, "app").await;
        for (_, relay) in &relays {
            self.context.registry.unfollow(relay).await;
        }
        result
    }

    async fn pump_relays(
        &self,
        deployment: berth_shared::id::DeploymentId,
        relays: &mut Vec<(String, crate::registry::Relay)>,
        stage: &str,
    ) -> std::result::Result<(), Stopped> {
        while !relays.is_empty() {
            let next = futures_util::future::select_all(
                relays
                    .iter_mut()
                    .map(|(_, relay)| Box::pin(relay.output.recv())),
            );
            let (output, index, _) = tokio::select! {
                () = self.context.shutdown.cancelled() => return Err(Stopped),
                () = self.sender.closed() => return Err(Stopped),
                next = next => next,
            };
            let Some(mut output) = output else {
                relays.remove(index);
                continue;
            };
            // The container prints what it likes: its secrets are masked
            // here, since these lines never pass the agent's emitter.
            self.context
                .dispatcher
                .mask_texts(deployment, output.lines.iter_mut());
            let host = relays[index].0.clone();
            for line in output.lines {
                let line = StoredLine {
                    stage: stage.into(),
                    stream: "container".into(),
                    ts_ms: berth_shared::time::now_ms(),
                    line,
                };
                if self.filter.wants(&host, &line, || Some(false)) != Some(true) {
                    continue;
                }
                let record = LogLine {
                    host: host.clone(),
                    task_id: None,
                    seq: 0,
                    stage: line.stage,
                    stream: line.stream,
                    ts_ms: line.ts_ms,
                    line: line.line,
                };
                self.sender
                    .send(Ok(LogItem::Line(record)))
                    .await
                    .map_err(|_| Stopped)?;
            }
            if output.ended {
                relays.remove(index);
            }
        }
        Ok(())
    }
}
