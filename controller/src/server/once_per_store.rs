//! The work done once per store (`store/serving.rs`): the controller
//! holding the store's once-per-store lock runs the lost-task sweeper,
//! blob eviction, log retention, the webhook worker and the git push
//! worker; the others wait for the lock.

use std::sync::Arc;

use tracing::info;

use super::{Context, ServeConfig};
use crate::store::ServingController;

/// Resolves when this controller's own session on the store is gone;
/// never on sled.
pub(super) async fn lost(membership: &mut Option<crate::store::kv::pg::HeldLock>) -> String {
    match membership {
        Some(lock) => lock.lost().await,
        None => std::future::pending().await,
    }
}

/// Runs the work done once per store (see `store/serving.rs`): waits for
/// its lock, then runs it until shutdown; tells `lost` when the lock's
/// session is gone.
pub(super) async fn once_per_store(
    context: Arc<Context>,
    config: ServeConfig,
    lost: tokio::sync::oneshot::Sender<String>,
) {
    let (store, shutdown) = (context.store.clone(), context.shutdown.clone());
    let me = &context.cluster.me;
    let mut serving = tokio::select! {
        taken = store.take_serving() => match taken {
            Ok(serving) => serving,
            Err(err) => {
                let _ = lost.send(format!("could not take it: {err}"));
                return;
            }
        },
        () = shutdown.cancelled() => return,
    };
    let token = match store.record_serving(&ServingController {
        host: me.host.clone(),
        pid: me.pid,
        listen: me.listen.clone(),
        since_ms: 0,
        token: 0,
    }) {
        Ok(token) => token,
        Err(err) => {
            let _ = lost.send(format!("could not record it: {err}"));
            return;
        }
    };
    if context.cluster.is_shared() {
        info!(
            token,
            "this controller runs the store's once-per-store work now"
        );
    }
    let dispatcher = context.dispatcher.clone();
    context
        .tasks
        .spawn(dispatcher.clone().run_lost_sweeper(shutdown.clone()));
    context.tasks.spawn(crate::sweepers::evict_blobs(
        store.clone(),
        context.blobs.clone(),
        config.blob_budget,
        shutdown.clone(),
    ));
    context.tasks.spawn(crate::sweepers::sweep_logs(
        store.clone(),
        config.log_retention,
        shutdown.clone(),
    ));
    let webhooks = crate::webhooks::Worker::new(
        store.clone(),
        context.secret_key.clone(),
        crate::webhooks::Settings {
            give_up: config.webhook_give_up,
        },
        context.tasks.clone(),
        context.metrics.clone(),
    );
    context.tasks.spawn(webhooks.run(shutdown.clone()));
    context
        .tasks
        .spawn(crate::hooks::run(context.clone(), shutdown.clone()));
    dispatcher.promote_waiting().await;
    dispatcher.kick_all().await;
    tokio::select! {
        reason = serving.lost() => { let _ = lost.send(reason); }
        () = shutdown.cancelled() => {}
    }
}
