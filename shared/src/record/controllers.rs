//! The controllers of one store: the one serving and those standing by
//! (`berth status --controllers`, `GET /api/v1/controllers`).

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// Whether a controller serves or waits to take over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ControllerRole {
    Serving,
    Standby,
}

impl ControllerRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ControllerRole::Serving => "serving",
            ControllerRole::Standby => "standby",
        }
    }
}

/// One controller of the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ControllerView {
    pub role: ControllerRole,
    /// The machine it runs on.
    pub host: String,
    pub pid: u32,
    /// The gRPC address it listens on (a standby: the one it will listen
    /// on once it takes over).
    pub listen: String,
    /// Since when it serves or stands by.
    pub since: Timestamp,
    /// Agents connected to it.
    pub agents: u32,
    /// The work one controller of a store does at a time, held by this one.
    pub holds: Vec<String>,
}

/// The controllers of one store, the serving one first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ControllerList {
    /// `sled` or `postgresql`.
    pub store: String,
    pub controllers: Vec<ControllerView>,
}
