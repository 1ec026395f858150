//! `watch`: a deployment's snapshot on every change, until it is quiet.
//! Subscribes to the hub before reading the store, so no change falls in
//! between; without hub events it re-reads every few seconds.

use std::sync::Arc;
use std::time::Duration;

use berth_shared::id::DeploymentId;
use berth_shared::record::Deployment;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{Caller, Error, Result, Stream};
use crate::progress::is_quiet;
use crate::server::Context;
use crate::store::Role;

/// How often a watcher re-reads the store even without hub events.
const REFRESH: Duration = Duration::from_secs(2);

/// Streams deployment snapshots until the deployment is quiet.
pub fn watch(
    context: Arc<Context>,
    caller: &Caller,
    id: DeploymentId,
) -> Result<Stream<Deployment>> {
    caller.require(Role::Viewer)?;
    let mut events = context.hub.subscribe();
    let first = context.store.get_deployment(id)?;
    let (sender, receiver) = mpsc::channel(16);
    let shutdown = context.shutdown.clone();
    let tasks = context.tasks.clone();
    tasks.spawn(async move {
        let mut current = first;
        loop {
            if sender.send(Ok(current.clone())).await.is_err() || is_quiet(&current) {
                return;
            }
            let updated_at = (current.updated_at, current.transitions.len());
            while (current.updated_at, current.transitions.len()) == updated_at {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    event = tokio::time::timeout(REFRESH, events.recv()) => {
                        if let Ok(Ok(event)) = &event
                            && event.deployment() != id {
                                continue;
                            }
                    }
                }
                match context.store.get_deployment(id) {
                    Ok(next) => current = next,
                    Err(err) => {
                        let _ = sender.send(Err(Error::from(err))).await;
                        return;
                    }
                }
            }
        }
    });
    Ok(Box::pin(ReceiverStream::new(receiver)))
}
