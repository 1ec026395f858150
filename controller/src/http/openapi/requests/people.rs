//! What the routes of people may carry: a web sign-in, a new or changed
//! user, a setup link's life and a new API token.

use serde::Deserialize;
use utoipa::ToSchema;

/// `POST /api/v1/session`: a web sign-in.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "olga", "password": "correct horse battery"}))]
pub struct SignIn {
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    #[schema(max_length = 1024)]
    pub password: String,
}

/// `POST /api/v1/users`: a new user (`role` is `viewer` when left out).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "olga", "role": "operator", "email": "olga@example.com"}))]
pub struct NewUserBody {
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    pub role: Option<RoleName>,
    pub email: Option<String>,
}

/// `PATCH /api/v1/users/{name}`: a new role, disabled or enabled, or both.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "viewer", "disabled": false}))]
pub struct UserChangeBody {
    pub role: Option<RoleName>,
    pub disabled: Option<bool>,
}

/// A role's name.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    Viewer,
    Operator,
    Admin,
}

/// `POST /api/v1/users/{name}/setup-link`: how long it works (24h when
/// left out, at most 7d).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"expires": "24h"}))]
pub struct SetupLinkBody {
    pub expires: Option<String>,
}

/// `POST /api/v1/api-tokens`: a token for the caller; it never expires
/// when `expires` is left out, and acts with the caller's role unless
/// `role_cap` lowers it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "ci", "expires": "90d", "role_cap": "operator"}))]
pub struct NewApiTokenBody {
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    pub expires: Option<String>,
    pub role_cap: Option<RoleName>,
}
