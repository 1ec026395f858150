//! Registry credentials the controller holds for image pulls. They go only
//! into the assignments of tasks whose image comes from that registry, and
//! are never printed or logged.

pub use berth_shared::record::RegistryView;
use berth_shared::record::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, decode, encode};

/// Credentials for one registry, as stored.
#[derive(Clone, Serialize, Deserialize)]
pub struct RegistryRecord {
    pub server: String,
    pub username: String,
    pub password: String,
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
