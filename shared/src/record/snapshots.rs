//! What a deployment keeps of another run: the earlier deployment a
//! failed rollout puts back (`RestoreSource`), and what a build made
//! (`BuildOutput`).

use serde::{Deserialize, Serialize};

use super::{Deployment, Variable};
use crate::id::DeploymentId;
use crate::manifest::Manifest;

/// The previous deployment a failed rollout puts back: enough of its
/// snapshot to run its stages again.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RestoreSource {
    pub deployment_id: DeploymentId,
    pub version: String,
    pub manifest: Manifest,
    pub bundle_digest: String,
    pub bundle_size: u64,
    #[serde(default)]
    pub image_archive_digest: Option<String>,
    #[serde(default)]
    pub image_archive_size: u64,
    #[serde(default)]
    pub built: Option<BuildOutput>,
    #[serde(default)]
    pub variables: Vec<Variable>,
}

impl RestoreSource {
    pub fn of(deployment: &Deployment) -> RestoreSource {
        RestoreSource {
            deployment_id: deployment.id,
            version: deployment.version.clone(),
            manifest: deployment.manifest.clone(),
            bundle_digest: deployment.bundle_digest.clone(),
            bundle_size: deployment.bundle_size,
            image_archive_digest: deployment.image_archive_digest.clone(),
            image_archive_size: deployment.image_archive_size,
            built: deployment.built.clone(),
            variables: deployment.variables.clone(),
        }
    }
}

/// What a build made: an image (shipped as a `docker save` archive) or an
/// artifact file, in the controller's blob store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BuildOutput {
    /// The blob holding the result.
    pub digest: String,
    pub size: u64,
    /// The image's tag (`berth/APP:VERSION`) and id, for an image build.
    pub image: Option<String>,
    pub image_id: Option<String>,
    /// The artifact's file name, for an artifact build.
    pub artifact: Option<String>,
    /// The deployment whose build made it.
    pub built_by: DeploymentId,
    /// True when this deployment reused an earlier build.
    #[serde(default)]
    pub reused: bool,
}
