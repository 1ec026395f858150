//! What the routes of an app's resources may carry: the snapshots
//! listing's parameters, and a restore.

use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// The parameters of `GET /api/v1/apps/{app}/snapshots`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SnapshotParams {
    /// Default: the app's only environment, else its default one.
    pub environment: Option<String>,
    /// Only this resource's snapshots.
    pub resource: Option<String>,
}

/// The app and resource a route's path names.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ResourcePath {
    /// The app's name.
    #[param(min_length = 1, max_length = 256)]
    pub app: String,
    /// The resource's name (`[resources.NAME]`).
    #[param(min_length = 1, max_length = 32)]
    pub resource: String,
}

/// `POST /api/v1/apps/{app}/resources/{resource}/restore`: which snapshot,
/// on which host.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"environment": "production", "host": "web-1", "snapshot": "data-20261206T194500123Z.tar"}))]
pub struct RestoreBody {
    pub environment: Option<String>,
    /// The host that keeps the snapshot.
    pub host: String,
    /// The snapshot's name, as the listing gives it.
    pub snapshot: String,
}
