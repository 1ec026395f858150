//! The controllers serving from one store, each with its agents, and the
//! holder of the once-per-store work (`berth status --controllers`, `GET
//! /api/v1/controllers`).

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// Whether a controller serves or waits to take over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ControllerRole {
    /// Every controller of a store serves agents and people at once.
    Serving,
}

impl ControllerRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ControllerRole::Serving => "serving",
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
    /// The gRPC address it listens on.
    pub listen: String,
    /// Since when it serves.
    pub since: Timestamp,
    /// Agents connected to it.
    pub agents: u32,
    /// The work one controller of a store does at a time, held by this one.
    pub holds: Vec<String>,
    /// The fencing token of that work while this one holds it (one above
    /// the previous holder's), else 0.
    #[serde(default)]
    pub token: u64,
}

/// The controllers of one store, longest serving first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ControllerList {
    /// `sled` or `postgresql`.
    pub store: String,
    pub controllers: Vec<ControllerView>,
}
