//! What this controller does with the other controllers' signals.

use std::sync::Arc;

use berth_shared::id::{AgentId, DeploymentId, TaskId};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Envelope, Signal};
use crate::hub::HubEvent;
use crate::server::Context;
use crate::store::kv::pg::Heard;

/// Acts on the signals `heard` brings until `shutdown`.
pub async fn run(
    context: Arc<Context>,
    mut heard: UnboundedReceiver<Heard>,
    shutdown: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => return,
            next = heard.recv() => next,
        };
        match next {
            None => return,
            Some(Heard::Reconnected) => {
                info!(
                    "listening to the other controllers again; reading every unfinished deployment again"
                );
                resync(&context).await;
            }
            Some(Heard::Signal(payload)) => match serde_json::from_str::<Envelope>(&payload) {
                Ok(envelope) if envelope.from == context.cluster.me.id => {}
                Ok(envelope) => on_signal(&context, envelope).await,
                Err(err) => {
                    warn!(error = %err, "an unreadable signal from another controller; ignored")
                }
            },
        }
    }
}

async fn on_signal(context: &Arc<Context>, envelope: Envelope) {
    match envelope.signal {
        Signal::Changed { d } => {
            let Ok(deployment) = d.parse::<DeploymentId>() else {
                return;
            };
            context.hub.publish_here(HubEvent::Changed { deployment });
            // Sending to agents may wait on a slow one: not in this loop.
            let dispatcher = context.dispatcher.clone();
            context
                .tasks
                .spawn(async move { dispatcher.on_remote_change(deployment).await });
        }
        // In this loop, in order: a follower skips lines older than the
        // last it passed on.
        Signal::Lines { d, t, after, last } => {
            let (Ok(deployment), Ok(task)) = (d.parse::<DeploymentId>(), t.parse::<TaskId>())
            else {
                return;
            };
            // Nobody here follows it: nothing to read (a follower that
            // starts later reads the store first).
            if !context.hub.is_followed(deployment) {
                return;
            }
            let lines: Result<Vec<_>, _> = context
                .store
                .task_lines(deployment, task, after)
                .take_while(|line| line.as_ref().map_or(true, |(seq, _)| *seq <= last))
                .collect();
            match lines {
                Ok(lines) if !lines.is_empty() => context.hub.publish_here(HubEvent::Lines {
                    deployment,
                    task,
                    lines: Arc::new(lines),
                }),
                Ok(_) => {}
                Err(err) => {
                    warn!(%deployment, %task, error = %err, "could not read the lines another controller stored")
                }
            }
        }
        Signal::Fleet { agent, owner } => {
            if let Ok(agent) = agent.parse::<AgentId>() {
                context.cluster.note_lease(agent, owner, &envelope.from);
            }
            context.registry.fleet_changed();
        }
        Signal::Forward { agent, msg } => {
            super::relay::on_forward(context, envelope.from, &agent, &msg);
        }
        Signal::Reply { to, agent, msg } => {
            if to == context.cluster.me.id {
                super::relay::on_reply(context, &agent, &msg);
            }
        }
        Signal::Part { id, n, of, data } => {
            if let Some(whole) = context.cluster.parts.take(&envelope.from, id, n, of, data)
                && !matches!(whole.signal, Signal::Part { .. })
            {
                Box::pin(on_signal(context, whole)).await;
            }
        }
        Signal::Revoked { agent } => {
            if let Ok(agent) = agent.parse::<AgentId>() {
                context.registry.disconnect(agent);
            }
        }
    }
}

/// After a gap in the signals: every unfinished deployment read again, and
/// whoever waits for the fleet woken.
async fn resync(context: &Arc<Context>) {
    context.cluster.read_leases(&context.store);
    context.registry.fleet_changed();
    let ids = match context.store.running_deployment_ids() {
        Ok(ids) => ids,
        Err(err) => {
            warn!(error = %err, "could not read the unfinished deployments again");
            return;
        }
    };
    let ids: std::collections::BTreeSet<_> = ids
        .into_iter()
        .chain(context.dispatcher.active_ids())
        .collect();
    for deployment in ids {
        context.hub.publish_here(HubEvent::Changed { deployment });
        context.dispatcher.on_remote_change(deployment).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoredLine;

    fn line(text: &str) -> StoredLine {
        StoredLine {
            stage: "setup".into(),
            stream: "stdout".into(),
            ts_ms: 1,
            line: text.into(),
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn another_controller_s_lines_reach_this_one_s_followers_only_when_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let context = crate::testing::context(dir.path()).await;
        let deployment = crate::testing::deployment(&["h1"], 0);
        let task = deployment.tasks[0].id;
        context
            .store
            .create_deployment(&deployment, true, false)
            .expect("create");
        context
            .store
            .update_deployment_with_logs(deployment.id, |_| {
                Ok((
                    (),
                    (1..=5)
                        .map(|n| (task, n, line(&format!("line {n}"))))
                        .collect(),
                ))
            })
            .expect("lines");
        let signal = |after, last| Envelope {
            from: "elsewhere".into(),
            signal: Signal::Lines {
                d: deployment.id.to_string(),
                t: task.to_string(),
                after,
                last,
            },
        };
        let mut events = context.hub.subscribe();
        // Nobody follows it here: nothing is read or published.
        on_signal(&context, signal(0, 5)).await;
        assert!(events.try_recv().is_err());

        let (mut followed, _following) = context.hub.follow(deployment.id);
        on_signal(&context, signal(2, 4)).await;
        let Ok(HubEvent::Lines { lines, .. }) = followed.try_recv() else {
            panic!("no lines published");
        };
        let got: Vec<(u64, &str)> = lines.iter().map(|(n, l)| (*n, l.line.as_str())).collect();
        assert_eq!(got, [(3, "line 3"), (4, "line 4")]);
    }
}
