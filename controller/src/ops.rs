//! The application layer: one function per operation a person or a script
//! asks of the controller (create, list, get, watch, logs, cancel, retry,
//! redeploy, rollback, stop, delete, purge, audit, exec, inspect, agents,
//! tokens, registries, secrets, users, the app catalogue and its ratings,
//! environments, approvals).
//!
//! Each takes an authenticated [`Caller`] and a plain request, checks the
//! caller's role, does the work, writes the audit entry, and returns plain
//! records (from `berth-shared`) or one [`Error`]. It is the only place
//! that talks to the store, dispatcher, registry and hub for these
//! operations; the transports (`grpc/cli.rs` today, HTTP next) only decode,
//! call, encode and map the error.

use std::pin::Pin;

use berth_shared::id::DeploymentId;

use crate::store::{Principal, PrincipalKind, Role};

pub mod agents;
pub mod api_tokens;
pub mod approvals;
#[cfg(test)]
mod approvals_tests;
pub mod apps;
#[cfg(test)]
mod apps_tests;
pub mod auth;
pub mod blobs;
mod build;
pub mod controllers;
pub mod create;
pub mod credential;
pub mod deployments;
mod domain;
pub mod dora;
pub mod environments;
#[cfg(test)]
mod environments_rules_tests;
#[cfg(test)]
mod environments_tests;
mod error;
pub mod exec;
pub mod external;
pub mod follow;
pub mod hooks;
mod hosts;
pub mod provenance;
pub mod ratings;
pub mod registries;
pub mod rerun;
mod resolve;
pub mod resources;
pub mod secrets;
#[cfg(test)]
mod secrets_tests;
pub mod sessions;
pub mod setup_links;
pub mod status;
pub mod stop;
pub mod target;
#[cfg(test)]
mod tests;
pub mod tokens;
pub mod users;
mod variables;
pub mod watch;
pub mod webhooks;
pub mod windows;

pub use error::{Code, Error, Kind, Result};

/// A stream of results an operation yields over time (watch, logs, exec).
pub type Stream<T> = Pin<Box<dyn futures_util::Stream<Item = Result<T>> + Send>>;

/// Who asks: a principal the transport authenticated (a user's or an
/// agent's certificate today; a token or a web session next).
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
    /// The credential it used: a certificate serial, or `token:<id>`.
    pub serial: String,
    /// The name of the API token it came with, if any.
    pub via_token: Option<String>,
}

impl Caller {
    /// A short name for audit entries and `triggered_by`.
    pub fn who(&self) -> String {
        match self.principal.kind {
            PrincipalKind::User => match &self.via_token {
                None => self.principal.name.clone(),
                Some(token) => format!("{} via token {token}", self.principal.name),
            },
            PrincipalKind::Agent => format!("agent:{}", self.principal.name),
        }
    }

    /// Refuses a caller whose role is below `role`.
    pub fn require(&self, role: Role) -> Result<()> {
        if self.principal.role < role {
            return Err(Error::new(
                Code::AuthPermissionDenied,
                format!(
                    "{} has role {}; this needs {}",
                    self.principal.name,
                    self.principal.role.as_str(),
                    role.as_str()
                ),
            ));
        }
        Ok(())
    }
}

/// Parses a deployment id a request names.
pub fn parse_deployment_id(text: &str) -> Result<DeploymentId> {
    text.parse().map_err(|err: String| Error::invalid(err))
}

#[cfg(test)]
mod caller_tests {
    use super::*;

    fn caller(role: Role) -> Caller {
        Caller {
            principal: Principal {
                id: "ana".into(),
                name: "ana".into(),
                kind: PrincipalKind::User,
                role,
                revoked: false,
            },
            serial: "01".into(),
            via_token: None,
        }
    }

    #[test]
    fn roles_are_ordered_viewer_operator_admin() {
        assert!(caller(Role::Admin).require(Role::Operator).is_ok());
        assert!(caller(Role::Operator).require(Role::Operator).is_ok());
        let Err(refused) = caller(Role::Viewer).require(Role::Operator) else {
            panic!("a viewer may not deploy");
        };
        assert_eq!(refused.code, Code::AuthPermissionDenied);
        assert_eq!(refused.message, "ana has role viewer; this needs operator");
    }
}
