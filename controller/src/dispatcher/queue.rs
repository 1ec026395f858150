//! The per-app queue: the next waiting deployment of an app and
//! environment starts once the running one is done.

use berth_shared::state::DeploymentStatus;
use tracing::{info, warn};

use crate::hub::HubEvent;
use crate::progress;
use crate::store::StoreError;

use super::{Dispatcher, deadline};

impl Dispatcher {
    /// Starts the oldest deployment waiting (`--queue`) for this
    /// app+environment, if its running slot is free.
    pub async fn promote_next(&self, app: &str, environment: &str) {
        let next = match self.store.next_queued(app, environment) {
            Ok(Some(next)) => next,
            Ok(None) => return,
            Err(err) => {
                warn!(%app, %environment, error = %err, "could not read the deployment queue");
                return;
            }
        };
        let claimed = self
            .store
            .update_deployment_claiming(next, false, |deployment| {
                if !deployment.queued || !deployment.status.is_running() {
                    return Ok(false);
                }
                deployment.queued = false;
                // One still waiting for its approval gets its deadline
                // when it is approved.
                if deployment.status != DeploymentStatus::PendingApproval {
                    deployment.deadline_ms = Some(deadline(deployment));
                }
                progress::note(
                    deployment,
                    "deployment",
                    None,
                    "pending",
                    Some("its turn came: the app's previous deployment ended".into()),
                );
                Ok(true)
            });
        match claimed {
            Ok((deployment, true)) => {
                if let Err(err) = self.store.flush().await {
                    warn!(deployment_id = %next, error = %err, "could not flush the promotion");
                    return;
                }
                info!(deployment_id = %next, "queued deployment starts");
                self.hub.publish(HubEvent::Changed { deployment: next });
                self.track(&deployment);
            }
            Ok((_, false)) => {}
            // Another deployment holds the app; this one starts after it.
            Err(StoreError::Busy(_)) => {}
            Err(err) => {
                warn!(deployment_id = %next, error = %err, "could not start a queued deployment")
            }
        }
    }

    /// At start: starts the queued deployments whose turn came while the
    /// controller was down.
    pub async fn promote_waiting(&self) {
        let ids = match self.store.queued_ids() {
            Ok(ids) => ids,
            Err(err) => {
                warn!(error = %err, "could not read the deployment queue");
                return;
            }
        };
        let mut pairs: Vec<(String, String)> = Vec::new();
        for id in ids {
            if let Ok(deployment) = self.store.get_deployment(id) {
                let pair = (deployment.app, deployment.environment);
                if !pairs.contains(&pair) {
                    pairs.push(pair);
                }
            }
        }
        for (app, environment) in pairs {
            self.promote_next(&app, &environment).await;
        }
    }
}
