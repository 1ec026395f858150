//! `watch`: a deployment's snapshot on every change, until it is quiet;
//! `all`: every deployment's snapshot on every change, for as long as the
//! caller listens. Both subscribe to the hub before reading the store, so
//! no change falls in between; `watch` without hub events re-reads every
//! few seconds, and `all` re-reads the newest deployments when it fell
//! behind the hub.

use std::sync::Arc;
use std::time::Duration;

use berth_shared::id::DeploymentId;
use berth_shared::record::{Deployment, Timestamp};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{Caller, Code, Error, Result, Stream};
use crate::hub::HubEvent;
use crate::progress::is_quiet;
use crate::server::Context;
use crate::store::{ListQuery, Role, StoreError};

/// How often a watcher re-reads the store even without hub events.
const REFRESH: Duration = Duration::from_secs(2);
/// How many of the newest deployments [`all`] re-reads after falling
/// behind the hub: a change to an older one in that moment is not sent.
const RESYNC: usize = 200;

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

/// Streams a snapshot of every deployment that changes from now on (each
/// change the hub announces, which is durable by then), until the caller
/// goes away or the controller stops. A purged deployment is left out.
pub fn all(context: Arc<Context>, caller: &Caller) -> Result<Stream<Deployment>> {
    caller.require(Role::Viewer)?;
    let mut events = context.hub.subscribe();
    let (sender, receiver) = mpsc::channel(64);
    let shutdown = context.shutdown.clone();
    let tasks = context.tasks.clone();
    tasks.spawn(async move {
        // The newest change sent: after falling behind, everything newer
        // is read again.
        let mut since = Timestamp::now();
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => return,
                () = sender.closed() => return,
                event = events.recv() => event,
            };
            let changed = match event {
                Ok(HubEvent::Changed { deployment }) => {
                    match context.store.get_deployment(deployment) {
                        Ok(deployment) => Ok(vec![deployment]),
                        Err(StoreError::NotFound(..)) => continue,
                        Err(err) => Err(Error::from(err)),
                    }
                }
                Ok(HubEvent::Lines { .. }) => continue,
                Err(RecvError::Lagged(_)) => changed_since(&context, since).await,
                Err(RecvError::Closed) => return,
            };
            let changed = match changed {
                Ok(changed) => changed,
                Err(err) => {
                    let _ = sender.send(Err(err)).await;
                    return;
                }
            };
            for deployment in changed {
                since = since.max(deployment.updated_at);
                if sender.send(Ok(deployment)).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(Box::pin(ReceiverStream::new(receiver)))
}

/// The newest [`RESYNC`] deployments changed at or after `since`, oldest
/// change first.
async fn changed_since(context: &Context, since: Timestamp) -> Result<Vec<Deployment>> {
    let store = context.store.clone();
    let query = ListQuery {
        limit: RESYNC,
        ..Default::default()
    };
    let newest = tokio::task::spawn_blocking(move || store.list_deployments(&query))
        .await
        .map_err(|err| Error::new(Code::Internal, format!("re-read deployments: {err}")))??;
    let mut changed: Vec<Deployment> = newest
        .into_iter()
        .filter(|deployment| deployment.updated_at >= since)
        .collect();
    changed.sort_by_key(|deployment| deployment.updated_at);
    Ok(changed)
}
