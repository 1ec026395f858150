//! Responses: a value as a JSON body with its status, and the reply
//! objects that wrap records (`{"agents": [...]}`, so fields can be added
//! beside them). Records are written as their serde form, the same JSON
//! `berth -o json` prints; the OpenAPI document describes these types.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use berth_shared::record::{
    AgentView, ApiTokenView, AppStatus, AppSummary, AuditEntry, Deployment, EnvironmentView,
    Timestamp, UserView,
};
use serde::Serialize;
use tracing::error;
use utoipa::ToSchema;

use crate::store::Role;

/// `value` as the JSON body of a `status` response.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(mut body) => {
            body.push(b'\n');
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(err) => {
            // Records serialize infallibly; this is a bug, said as JSON.
            error!(error = %err, "could not encode a reply");
            let mut response = Response::new(Body::from(
                "{\"error\":{\"code\":\"internal\",\"message\":\"the reply could not be encoded; see the controller's log\"}}\n",
            ));
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
    }
}

/// `value` as a `200 OK` JSON body.
pub fn ok<T: Serialize + ?Sized>(value: &T) -> Response {
    json(StatusCode::OK, value)
}

/// `GET /api/v1/agents`.
#[derive(Serialize, ToSchema)]
pub struct AgentList {
    pub agents: Vec<AgentView>,
}

/// `GET /api/v1/status`: one row per app and environment.
#[derive(Serialize, ToSchema)]
pub struct AppList {
    pub apps: Vec<AppStatus>,
}

/// `GET /api/v1/apps`: the app catalogue, by app name.
#[derive(Serialize, ToSchema)]
pub struct AppCatalogue {
    pub apps: Vec<AppSummary>,
}

/// `GET /api/v1/environments` and `GET /api/v1/apps/{app}/environments`:
/// by app, then name.
#[derive(Serialize, ToSchema)]
pub struct EnvironmentList {
    pub environments: Vec<EnvironmentView>,
}

/// `GET /api/v1/audit`, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditList {
    pub entries: Vec<AuditEntry>,
}

/// `GET /api/v1/users`.
#[derive(Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
}

/// `GET /api/v1/secrets`: names, scopes and versions, never a value.
#[derive(Serialize, ToSchema)]
pub struct SecretList {
    pub secrets: Vec<berth_shared::record::SecretView>,
}

/// `GET /api/v1/webhooks`: URLs cut to scheme and host, never a secret.
#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<berth_shared::record::WebhookView>,
}

/// `GET /api/v1/hooks`: each with its latest pushes, never its secret.
#[derive(Serialize, ToSchema)]
pub struct HookList {
    pub hooks: Vec<berth_shared::record::HookView>,
}

/// `GET /api/v1/webhooks/{id}/deliveries`: newest first.
#[derive(Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<berth_shared::record::DeliveryView>,
}

/// `GET /api/v1/api-tokens`: never a secret.
#[derive(Serialize, ToSchema)]
pub struct ApiTokenList {
    pub api_tokens: Vec<ApiTokenView>,
}

/// `GET /api/v1/deployments`: a page.
#[derive(Serialize, ToSchema)]
pub struct DeploymentPage {
    pub deployments: Vec<Deployment>,
    /// Where the next page starts when this one is full (the next may be
    /// empty), else `null`.
    pub next_offset: Option<u64>,
}

/// `GET /api/v1/whoami`.
#[derive(Serialize, ToSchema)]
pub struct WhoAmI {
    pub principal: String,
    /// `viewer`, `operator` or `admin`.
    #[schema(inline)]
    pub role: RoleName,
    /// The name of the API token the request came with.
    pub via_token: Option<String>,
    /// Why the store cannot be written now, and since when.
    pub store_problem: Option<String>,
    pub store_problem_since: Option<Timestamp>,
}

/// A role, as the API writes it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    Viewer,
    Operator,
    Admin,
}

impl From<Role> for RoleName {
    fn from(role: Role) -> RoleName {
        match role {
            Role::Viewer => RoleName::Viewer,
            Role::Operator => RoleName::Operator,
            Role::Admin => RoleName::Admin,
        }
    }
}

/// `PUT /api/v1/blobs/{digest}`: the blob now stored.
#[derive(Serialize, ToSchema)]
pub struct StoredBlob {
    /// `sha256:HEX`.
    pub digest: String,
    /// Bytes.
    pub size: u64,
}
