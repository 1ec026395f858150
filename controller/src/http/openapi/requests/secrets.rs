//! What the secret routes' requests may carry (`berth secret`): a value,
//! the listing's parameters, and the paths naming one secret.

use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// `PUT .../secrets/{name}`: the secret's value, 4 bytes to 64 KiB of
/// text without NUL. It is in no answer, log line or error.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"value": "postgres://app:s3cret@db.internal/app"}))]
pub struct SecretBody {
    #[schema(min_length = 4, max_length = 65536)]
    pub value: String,
}

/// The parameters of `GET /api/v1/secrets`: `app` and `environment`
/// together, or `fleet`, or neither (every secret).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SecretsParams {
    /// Only this app's secrets in `environment`.
    pub app: Option<String>,
    pub environment: Option<String>,
    /// Only the fleet-wide secrets.
    pub fleet: Option<bool>,
}

/// The secret of an app in an environment a route's path names.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AppSecretPath {
    #[param(min_length = 1, max_length = 63, pattern = "^[a-z0-9-]+$")]
    pub app: String,
    /// The environment.
    #[param(min_length = 1, max_length = 63, pattern = "^[a-z0-9-]+$")]
    pub environment: String,
    /// The secret's name: a variable name, not starting with `BERTH_`.
    #[param(max_length = 128, pattern = "^[A-Za-z_][A-Za-z0-9_]*$")]
    pub name: String,
}

/// The fleet-wide secret a route's path names.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct FleetSecretPath {
    /// The secret's name: a variable name, not starting with `BERTH_`.
    #[param(max_length = 128, pattern = "^[A-Za-z_][A-Za-z0-9_]*$")]
    pub name: String,
}
