//! Records about people: users and the API tokens they hold, as `berth
//! users ls` and `berth api-tokens ls` print them (never a password hash
//! or a token secret).

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// A user as shown to admins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserView {
    pub name: String,
    pub email: Option<String>,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    pub disabled: bool,
    pub created_at: Timestamp,
    pub created_by: String,
    /// Whether a web password is set (never the password or its hash).
    pub password_set: bool,
    /// API tokens the user holds that are not revoked.
    pub api_tokens: usize,
}

/// An API token as shown to its user and to admins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiTokenView {
    pub id: String,
    /// How the token starts (`bta_<id>_`), to recognise it in a CI config.
    pub prefix: String,
    pub user: String,
    pub name: String,
    /// The token never acts above this role.
    pub role_cap: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    /// `valid`, `expired` or `revoked`.
    pub state: String,
}

/// A token just made: the only time its secret is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedApiToken {
    /// The whole token (`bta_<id>_<secret>`), for `Authorization: Bearer`.
    pub token: String,
    #[serde(flatten)]
    pub view: ApiTokenView,
}
