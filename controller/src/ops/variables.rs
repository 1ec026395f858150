//! The variables a new deployment runs with: the manifest's `[env]` and
//! `[container] env`, then its environment's own (`berth env set --var`),
//! taken as a snapshot into the record (`Deployment::variables`). A retry,
//! redeploy or rollback runs with the snapshot of the deployment it
//! repeats, so a later change to an environment never rewrites history.

use std::collections::BTreeMap;

use berth_shared::manifest::Manifest;
use berth_shared::record::{Variable, variables_snapshot};

use super::Result;
use crate::server::Context;

/// The snapshot for a new deployment of `manifest`, with its
/// environment's variables as they are now.
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
    Ok(variables_snapshot(&manifest.env, &container, &environment))
}
