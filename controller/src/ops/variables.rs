//! The variables a new deployment runs with: the manifest's `[env]` and
//! `[container] env`, then its environment's own (`berth env set --var`),
//! then its secrets (every one of its app and environment, and the
//! fleet-wide ones its `[secrets]` names, each at its newest version),
//! taken as a snapshot into the record (`Deployment::variables`). A retry,
//! redeploy or rollback runs with the snapshot of the deployment it
//! repeats, so a later change to an environment never rewrites history.

use std::collections::BTreeMap;

use berth_shared::manifest::Manifest;
use berth_shared::record::{Variable, variables_snapshot, with_secrets};

use super::Result;
use crate::server::Context;

/// The snapshot for a new deployment of `manifest`, with its
/// environment's variables and secrets as they are now; a fleet-wide
/// secret `[secrets]` names that does not exist is `secret/not-found`.
pub fn for_new(context: &Context, manifest: &Manifest) -> Result<Vec<Variable>> {
    let container = manifest
        .container
        .as_ref()
        .map(|container| container.env.clone())
        .unwrap_or_default();
    let environment: BTreeMap<String, String> = context
        .store
        .get_environment(&manifest.app, &manifest.environment)?
        .map(|record| record.vars)
        .unwrap_or_default();
    let named: Vec<String> = manifest.secrets.keys().cloned().collect();
    let secrets = super::secrets::current(context, &manifest.app, &manifest.environment, &named)?;
    Ok(with_secrets(
        variables_snapshot(&manifest.env, &container, &environment),
        &secrets,
    ))
}
