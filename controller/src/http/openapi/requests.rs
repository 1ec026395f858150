//! What the requests of the API may carry, as schemas for the OpenAPI
//! document: the JSON bodies and the query parameters. The handlers do not
//! decode through these types (`decode::Fields` and `query::Params` take
//! fields one by one so a refusal names the field); the tests below feed
//! these types' examples to the real decoders, so the two cannot drift.

#![allow(
    dead_code,
    reason = "these types describe requests for the document; the decoders read the requests"
)]

use std::collections::BTreeMap;

use berth_shared::state::DeploymentStatus;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

mod environments;
mod people;
mod resources;
mod secrets;
mod webhooks;

pub use environments::{EnvironmentChangeBody, EnvironmentPath, NewEnvironmentBody};
pub use people::{NewApiTokenBody, NewUserBody, SetupLinkBody, SignIn, UserChangeBody};
pub use resources::{ResourcePath, RestoreBody, SnapshotParams};
pub use secrets::{AppSecretPath, FleetSecretPath, SecretBody, SecretsParams};
pub use webhooks::{DeliveriesParams, HookPath, NewHookBody, NewWebhookBody, WebhookPath};

/// `POST /api/v1/deployments`: a deployment of an uploaded bundle.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "manifest": "app = \"hello\"\n[target]\nlabels = { role = \"web\" }\n[setup]\nrun = [\"./setup.sh\"]\n",
    "bundle_digest": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "bundle_size": 4096,
    "environment": "prod",
    "idempotency_key": "ci-run-812",
    "message": "fix the login page",
    "commit_sha": "4f2a9c1"
}))]
pub struct NewDeploymentBody {
    /// The `berth.toml` text.
    pub manifest: String,
    /// The uploaded bundle: `sha256:HEX`.
    pub bundle_digest: String,
    /// The bundle's size in bytes.
    pub bundle_size: u64,
    /// Overrides the manifest's environment.
    pub environment: Option<String>,
    /// Overrides the manifest's version.
    pub version: Option<String>,
    /// A second request with the same key returns the first deployment.
    pub idempotency_key: Option<String>,
    /// Start beside a running deployment of the app.
    pub force: Option<bool>,
    /// Start after the running deployment of the app ends.
    pub queue: Option<bool>,
    /// Build again even when an earlier build of the same inputs exists.
    pub rebuild: Option<bool>,
    /// A `docker save` archive uploaded as a blob, for `[container]`; goes
    /// with `image_archive_size`.
    pub image_archive_digest: Option<String>,
    pub image_archive_size: Option<u64>,
    /// How long to wait for offline target agents before refusing.
    #[schema(maximum = 3600)]
    pub wait_for_agents_secs: Option<u64>,
    /// Why: shown with the deployment.
    pub message: Option<String>,
    /// The branch or tag it came from.
    pub source_ref: Option<String>,
    /// The commit, 7 to 64 hex digits.
    pub commit_sha: Option<String>,
    /// When the commit was made, RFC 3339: where the lead time for
    /// changes starts.
    #[schema(format = DateTime)]
    pub commit_time: Option<String>,
    /// The CI run, an http(s) URL.
    pub build_url: Option<String>,
}

/// The state another tool reports for its deployment.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExternalStatus {
    Pending,
    Started,
    Success,
    Failed,
    Aborted,
}

/// `POST /api/v1/deployment-events`: a deployment another tool made.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "app": "billing",
    "version": "2.4.0",
    "environment": "prod",
    "status": "success",
    "deployed_by": "argo",
    "extra_metadata": {"cluster": "eu-1"}
}))]
pub struct ExternalEventBody {
    /// The app (or `product_name`; one of them is required).
    pub app: Option<String>,
    pub product_name: Option<String>,
    pub version: String,
    /// Default `default`.
    pub environment: Option<String>,
    pub status: ExternalStatus,
    pub deployed_by: Option<String>,
    pub scm_sha: Option<String>,
    pub scm_branch: Option<String>,
    pub build_url: Option<String>,
    pub message: Option<String>,
    /// Kept with the record as sent (numbers and flags as their JSON text).
    pub extra_metadata: Option<BTreeMap<String, String>>,
}

/// A retry or a redeploy: `{force, queue}`; no body is all false.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"force": true}))]
pub struct ClaimBody {
    /// Start beside a running deployment of the app.
    pub force: Option<bool>,
    /// Start after the running deployment of the app ends.
    pub queue: Option<bool>,
}

/// Stop or start of an app: the environment, here or in the query (not
/// both unless they agree); none means the app's only one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"environment": "prod"}))]
pub struct AppBody {
    pub environment: Option<String>,
}

/// `POST /api/v1/apps/{app}/stop`: the environment, and whether the
/// app's resources stop too.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"environment": "prod", "with_resources": false}))]
pub struct StopBody {
    pub environment: Option<String>,
    /// Stop the app's resources (`[resources.NAME]`) too.
    pub with_resources: Option<bool>,
}

/// `POST /api/v1/deployments/{id}/delete`: what goes besides the app's
/// containers.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"with_resources": true, "purge_volumes": true, "confirm": "web"}))]
pub struct DeleteBody {
    /// Remove the app's resource containers and its network too.
    pub with_resources: Option<bool>,
    /// Remove the resources' named volumes too (their data, for good);
    /// needs `confirm`.
    pub purge_volumes: Option<bool>,
    /// The app's name, given back to confirm `purge_volumes`.
    pub confirm: Option<String>,
}

/// `PUT /api/v1/apps/{app}/rating`: the caller's stars for the app.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"stars": 4}))]
pub struct RatingBody {
    /// 1 to 5; anything else is refused with `rating/invalid`.
    #[schema(minimum = 1, maximum = 5)]
    pub stars: u8,
}

/// A rollback: to the deployment `to`, or the last one that was deployed
/// before the current one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"to": "01JD5ZQ4W0R8S1T2V3X4Y5Z6A7", "environment": "prod"}))]
pub struct RollbackBody {
    pub to: Option<berth_shared::id::DeploymentId>,
    pub environment: Option<String>,
    pub force: Option<bool>,
    pub queue: Option<bool>,
}

/// A body that must be empty or `{}` (cancel, delete, purge).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({}))]
pub struct EmptyBody {}

/// `sort` of a listing.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortName {
    Created,
    Status,
    App,
}

/// `order` of a listing.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    Desc,
    Asc,
}

/// The parameters of `GET /api/v1/deployments`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Any of these statuses; repeat the parameter for several.
    pub status: Option<Vec<DeploymentStatus>>,
    pub app: Option<String>,
    pub environment: Option<String>,
    /// A user (its deployments by any credential), or `me`.
    pub triggered_by: Option<String>,
    /// Part of the app name or of `triggered_by`, or the start of the id.
    #[param(max_length = 200)]
    pub search: Option<String>,
    /// Default `created`.
    #[param(inline)]
    pub sort: Option<SortName>,
    /// Default `desc`.
    #[param(inline)]
    pub order: Option<Order>,
    /// Default 50.
    #[param(maximum = 1000)]
    pub limit: Option<u32>,
    /// Where the page starts: a page's `next_offset`.
    #[param(maximum = 1_000_000)]
    pub offset: Option<u32>,
    /// Only deployments made up to this id (inclusive). Paging with the
    /// first page's newest id here holds the pages in place while new
    /// deployments arrive.
    pub until: Option<berth_shared::id::DeploymentId>,
}

/// The log stream a line came from.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StreamName {
    Stdout,
    Stderr,
    System,
    Container,
}

/// The lowest level of the lines a logs read shows.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LevelName {
    Info,
    Warn,
    Error,
}

/// The parameters of `GET /api/v1/deployments/{id}/logs`: the filters of
/// `berth logs`.
/// `GET /api/v1/apps/{app}/dora`: which environment, and which windows.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DoraParams {
    /// Default: the app's only environment, else its default one.
    pub environment: Option<String>,
    /// How far back from now, a duration like `7d` or `30d` (default
    /// `30d`, at most a year).
    pub since: Option<String>,
    /// How soon after a change a deployment marked as a fix blames it
    /// (default `1h`, at most a week).
    pub fix_window: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogsParams {
    /// Only this host's lines.
    pub host: Option<String>,
    /// Only this stage's lines.
    pub stage: Option<String>,
    #[param(inline)]
    pub stream: Option<StreamName>,
    /// Lines at this level and above.
    #[param(inline)]
    pub level: Option<LevelName>,
    /// Lines from then on: RFC 3339 (`Z` or an offset) or Unix milliseconds.
    pub since: Option<String>,
    /// Only the last lines; ignored when resuming with `Last-Event-ID`.
    #[param(maximum = 100_000)]
    pub tail: Option<u32>,
    /// The output of this resource of the app (`[resources.NAME]`),
    /// relayed from its hosts, instead of the stored lines: the last
    /// `tail` lines (100 when not given), then with `follow` live.
    pub resource: Option<String>,
    /// An event stream rather than one JSON object.
    pub follow: Option<bool>,
}

/// The parameters of `GET /api/v1/audit`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Only entries about this target (an app, a deployment id, a user).
    pub target: Option<String>,
    /// Default 50.
    #[param(maximum = 10_000)]
    pub limit: Option<u32>,
}

/// `environment` in the query of the status and app routes.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentParam {
    pub environment: Option<String>,
}

/// The deployment a route's path names.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DeploymentPath {
    /// The deployment's id.
    pub id: berth_shared::id::DeploymentId,
}

/// The app a route's path names.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AppPath {
    /// The app's name.
    #[param(min_length = 1, max_length = 256)]
    pub app: String,
}

/// The blob a route's path names.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DigestPath {
    /// `sha256:` and the 64 lowercase hex digits of the blob's SHA-256.
    #[param(pattern = "^sha256:[0-9a-f]{64}$")]
    pub digest: String,
}

/// A blob's bytes.
pub struct Blob;

impl utoipa::PartialSchema for Blob {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Binary,
            )))
            .into()
    }
}

impl ToSchema for Blob {}

/// The `Last-Event-ID` header of a logs stream.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct ResumeHeader {
    /// Resume after this id of a `line` event (`<task_id>:<seq>` pairs joined by commas): only the
    /// lines after it are sent, and `tail` is ignored.
    #[param(rename = "Last-Event-ID", nullable = false)]
    pub last_event_id: Option<String>,
}
