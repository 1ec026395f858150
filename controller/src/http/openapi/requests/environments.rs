//! What the environment routes' requests may carry (`berth env`): the
//! bodies of a create and a change, and the path naming one environment.

use std::collections::BTreeMap;

use berth_shared::record::EnvironmentKind;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// `POST /api/v1/apps/{app}/environments`: a new environment; not the
/// default, not protected, 1 approval and no variables unless given.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "prod", "type": "production", "default": true, "protected": true,
    "approvals": 2, "vars": {"LOG": "info"}
}))]
pub struct NewEnvironmentBody {
    #[schema(
        min_length = 1,
        max_length = 63,
        pattern = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
    )]
    pub name: String,
    #[serde(rename = "type")]
    pub kind: EnvironmentKind,
    /// Where a deploy of the app naming no environment goes; the app's
    /// earlier default stops being it.
    pub default: Option<bool>,
    /// Deploys, rollbacks and stops here need an approval.
    pub protected: Option<bool>,
    #[schema(minimum = 1, maximum = 2)]
    pub approvals: Option<u8>,
    /// When deploys are taken: `DAYS HH:MM-HH:MM [ZONE]`, several joined
    /// by `;` (e.g. `Mon-Fri 09:00-17:00 Europe/Berlin`).
    #[schema(max_length = 200)]
    pub window: Option<String>,
    /// Variables that override the manifest's `[env]` at the next deploy.
    pub vars: Option<BTreeMap<String, String>>,
}

/// `PATCH /api/v1/apps/{app}/environments/{environment}`: what to change;
/// what is left out stays. Unprotecting a protected environment or
/// changing its approvals needs an admin.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "staging", "vars": {"LOG": "debug"}, "unset_vars": ["OLD"]}))]
pub struct EnvironmentChangeBody {
    #[serde(rename = "type")]
    pub kind: Option<EnvironmentKind>,
    pub default: Option<bool>,
    pub protected: Option<bool>,
    #[schema(minimum = 1, maximum = 2)]
    pub approvals: Option<u8>,
    /// A new deploy window; empty removes it. Changing the window of a
    /// protected environment needs an admin.
    #[schema(max_length = 200)]
    pub window: Option<String>,
    /// Variables to add or give a new value.
    pub vars: Option<BTreeMap<String, String>>,
    /// Variables to remove.
    pub unset_vars: Option<Vec<String>>,
}

/// The environment a route's path names.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EnvironmentPath {
    /// The app's name.
    #[param(min_length = 1, max_length = 256)]
    pub app: String,
    /// The environment's name.
    #[param(min_length = 1, max_length = 256)]
    pub environment: String,
}
