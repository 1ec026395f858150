//! A domain belongs to one app and environment fleet-wide: a deploy whose
//! `[proxy] domain` another app or environment holds (deployed, or being
//! deployed) is refused before anything starts, naming the holder.

use super::{Code, Error, Result};
use berth_shared::manifest::Manifest;
use berth_shared::state::DeploymentStatus;

use crate::server::Context;
use crate::store::ListQuery;

/// The statuses in which a deployment holds its domain (one waiting for
/// its approval too: it is about to take it).
const HOLDING: [DeploymentStatus; 7] = [
    DeploymentStatus::PendingApproval,
    DeploymentStatus::Pending,
    DeploymentStatus::SetupRunning,
    DeploymentStatus::SetupComplete,
    DeploymentStatus::Building,
    DeploymentStatus::Deploying,
    DeploymentStatus::Deployed,
];

/// Refuses `manifest` when its domain is held by another app or
/// environment.
pub fn check_claim(context: &Context, manifest: &Manifest) -> Result<()> {
    let Some(proxy) = &manifest.proxy else {
        return Ok(());
    };
    let domain = proxy.domain.to_ascii_lowercase();
    for (app, environment) in context.store.app_environments()? {
        if app == manifest.app && environment == manifest.environment {
            continue;
        }
        let holders = context.store.list_deployments(&ListQuery {
            app: Some(app.clone()),
            environment: Some(environment.clone()),
            statuses: HOLDING.to_vec(),
            limit: 4,
            ..Default::default()
        })?;
        let holder = holders.iter().find(|deployment| {
            deployment
                .manifest
                .proxy
                .as_ref()
                .is_some_and(|held| held.domain.to_ascii_lowercase() == domain)
        });
        if let Some(holder) = holder {
            return Err(Error::new(
                Code::DomainTaken,
                format!(
                    "domain {} is routed to app `{app}` in environment `{environment}` (deployment {}, {}); a domain belongs to one app and environment: use another domain, or stop that one first (`berth stop {app} --env {environment}`)",
                    proxy.domain, holder.id, holder.status
                ),
            ));
        }
    }
    Ok(())
}
