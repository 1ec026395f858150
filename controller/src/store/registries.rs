//! Registry credentials the controller holds for image pulls. The password
//! is sealed under the secrets key like a secret (`crypto.rs`, its place
//! the registry's host); a password an older controller stored in clear
//! is sealed when the store is opened with the key (`sealed.rs`). They go
//! only into the assignments of tasks whose image comes from that
//! registry, and are never printed or logged.

pub use berth_shared::record::RegistryView;
use berth_shared::record::Timestamp;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{Store, StoreError, decode, encode};
use crate::crypto::{Place, Sealed};

/// Credentials for one registry, as stored.
#[derive(Clone, Serialize, Deserialize)]
pub struct RegistryRecord {
    pub server: String,
    pub username: String,
    /// The password, sealed for [`Place::Registry`] of `server`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_password: Option<Sealed>,
    /// The password as a controller from before the secret store kept it,
    /// in clear; sealed and cleared at the next start.
    #[serde(default, rename = "password", skip_serializing_if = "Option::is_none")]
    pub clear_password: Option<String>,
    pub created_at: Timestamp,
    pub created_by: String,
}

impl std::fmt::Debug for RegistryRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryRecord")
            .field("server", &self.server)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl RegistryRecord {
    pub fn view(&self) -> RegistryView {
        RegistryView {
            server: self.server.clone(),
            username: self.username.clone(),
            created_at: self.created_at,
            created_by: self.created_by.clone(),
        }
    }
}

/// A registry's credentials opened for an assignment.
pub struct RegistryCredentials {
    pub server: String,
    pub username: String,
    pub password: Zeroizing<String>,
}

impl std::fmt::Debug for RegistryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryCredentials")
            .field("server", &self.server)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Store {
    pub fn put_registry(&self, record: &RegistryRecord) -> Result<(), StoreError> {
        self.t()?
            .registries
            .insert(record.server.as_bytes(), encode(record))?;
        Ok(())
    }

    pub fn registry(&self, server: &str) -> Result<Option<RegistryRecord>, StoreError> {
        self.t()?
            .registries
            .get(server.as_bytes())?
            .map(|bytes| decode("registries", &bytes))
            .transpose()
    }

    /// The credentials of `server` with the password opened under the
    /// secrets key the store was given ([`Store::use_secret_key`]).
    pub fn registry_credentials(
        &self,
        server: &str,
    ) -> Result<Option<RegistryCredentials>, StoreError> {
        let Some(record) = self.registry(server)? else {
            return Ok(None);
        };
        let password = match (&record.sealed_password, &record.clear_password) {
            (Some(sealed), _) => {
                let key = self.secret_key()?;
                let place = Place::Registry { server };
                key.open_text(&place, sealed).map_err(|err| {
                    StoreError::Unsealed(format!(
                        "the password of registry `{server}` cannot be opened: {err}"
                    ))
                })?
            }
            (None, Some(clear)) => Zeroizing::new(clear.clone()),
            (None, None) => {
                return Err(StoreError::Corrupt {
                    tree: "registries",
                    reason: format!("the record of `{server}` holds no password"),
                });
            }
        };
        Ok(Some(RegistryCredentials {
            server: record.server,
            username: record.username,
            password,
        }))
    }

    pub fn list_registries(&self) -> Result<Vec<RegistryRecord>, StoreError> {
        self.t()?
            .registries
            .iter()
            .values()
            .map(|value| decode("registries", &value?))
            .collect()
    }

    /// Forgets a registry's credentials; false when there were none.
    pub fn remove_registry(&self, server: &str) -> Result<bool, StoreError> {
        Ok(self.t()?.registries.remove(server.as_bytes())?.is_some())
    }
}
