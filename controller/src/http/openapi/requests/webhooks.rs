//! What the webhook and git hook routes' requests may carry: a new
//! endpoint or hook, the paths naming one, and the deliveries listing's
//! parameters.

use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// `POST /api/v1/webhooks`: where to send which events, in which format.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://hooks.example.com/berth", "events": ["deployment.failed"], "app": "web", "environment": "production", "format": "standard"}))]
pub struct NewWebhookBody {
    /// `https://` (or `http://`) URL, at most 2048 bytes, no user or
    /// password in it.
    #[schema(max_length = 2048)]
    pub url: String,
    /// Events to send; none or missing for all.
    pub events: Option<Vec<String>>,
    /// Only this app's events.
    pub app: Option<String>,
    /// Only this environment's events.
    pub environment: Option<String>,
    /// `standard` (the default), `slack` or `discord`.
    pub format: Option<String>,
}

/// The webhook a route's path names.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WebhookPath {
    /// The endpoint's id (a ULID).
    #[param(min_length = 26, max_length = 26)]
    pub id: String,
}

/// The parameters of `GET /api/v1/webhooks/{id}/deliveries`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesParams {
    /// How many, newest first (default 50, at most 200).
    pub limit: Option<u32>,
}

/// `POST /api/v1/hooks`: which pushes deploy what.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"app": "web", "environment": "production", "ref": "main", "repo": "https://git.example.com/acme/web.git", "provider": "github"}))]
pub struct NewHookBody {
    pub app: String,
    pub environment: String,
    /// A branch (`main`), or a ref pattern with `*` (`refs/tags/v*`).
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The repository a build agent fetches the commit from.
    pub repo: String,
    /// The subdirectory holding `berth.toml`, if not the root.
    pub path: Option<String>,
    /// `github` (the default), `gitlab` or `gitea` (also Forgejo).
    pub provider: Option<String>,
    /// A secret of the app's environment (or the fleet's) with a token or
    /// a deploy key for the repository.
    pub credential: Option<String>,
    /// Labels the fetching build agent must have (`role=build`).
    pub build_labels: Option<String>,
}

/// The hook a route's path names.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct HookPath {
    /// The hook's id (a ULID).
    #[param(min_length = 26, max_length = 26)]
    pub id: String,
}
