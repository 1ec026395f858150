//! Everything the store keeps sealed under the secrets key, across trees:
//! the versions of secrets (`secrets`) and registry passwords
//! (`registries`). Which keys sealed them (so `serve` can tell whether its
//! key file is the right one), sealing the clear passwords of an older
//! store, and resealing everything under a new key in one transaction
//! (`berth-controller rotate-key`).

use std::collections::BTreeSet;
use std::sync::Arc;

use super::kv::Transactional;
use super::kv::TxError;

use super::keys::secret_key as version_key;
use super::secrets::SecretVersion;
use super::{Store, StoreError, decode, encode};
use crate::crypto::{KeyId, Place, SecretKey};

/// What [`Store::reseal`] sealed again under the new key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resealed {
    /// Versions of secrets.
    pub secrets: usize,
    /// Registry passwords (clear ones of an older store included).
    pub registries: usize,
    /// Webhook endpoints' URLs and signing secrets, and git push hooks'
    /// secrets.
    pub webhooks: usize,
}

impl Store {
    /// Gives the store the secrets key, for the reads that open a sealed
    /// value themselves ([`Store::registry_credentials`]).
    pub fn use_secret_key(&self, key: Arc<SecretKey>) {
        *self
            .shared
            .secret_key
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(key);
    }

    /// The key [`Store::use_secret_key`] gave.
    pub(super) fn secret_key(&self) -> Result<Arc<SecretKey>, StoreError> {
        self.shared
            .secret_key
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                StoreError::Unsealed(
                    "the controller has not loaded its secrets key; this is a bug".into(),
                )
            })
    }

    /// The value of one version of a secret, opened under the key
    /// [`Store::use_secret_key`] gave; `None` when that version is no
    /// longer kept.
    pub fn open_secret(
        &self,
        scope: &berth_shared::record::SecretScope,
        name: &str,
        version: u64,
    ) -> Result<Option<zeroize::Zeroizing<String>>, StoreError> {
        let Some(stored) = self.secret_version(scope, name, version)? else {
            return Ok(None);
        };
        let place = Place::Secret {
            scope,
            name,
            version,
        };
        let value = self
            .secret_key()?
            .open_text(&place, &stored.sealed)
            .map_err(|err| {
                StoreError::Unsealed(format!(
                    "version {version} of secret `{name}` ({scope}) cannot be opened: {err}"
                ))
            })?;
        Ok(Some(value))
    }

    /// The ids of the keys that sealed what the store holds: none for a
    /// store without sealed values, one otherwise (rotation reseals
    /// everything at once).
    pub fn sealing_key_ids(&self) -> Result<BTreeSet<KeyId>, StoreError> {
        let t = self.t()?;
        let mut ids = BTreeSet::new();
        for value in t.secrets.iter().values() {
            let version: SecretVersion = decode("secrets", &value?)?;
            ids.insert(version.sealed.key_id);
        }
        for record in self.list_registries()? {
            ids.extend(record.sealed_password.map(|sealed| sealed.key_id));
        }
        for record in self.list_webhooks()? {
            ids.insert(record.sealed.key_id);
        }
        for record in self.list_hooks()? {
            ids.insert(record.sealed.key_id);
        }
        Ok(ids)
    }

    /// Seals the registry passwords an older controller stored in clear;
    /// returns how many. Running it again finds none.
    pub fn seal_clear_registry_passwords(&self, key: &SecretKey) -> Result<usize, StoreError> {
        let mut sealed = 0;
        for mut record in self.list_registries()? {
            let Some(clear) = record.clear_password.take() else {
                continue;
            };
            let clear = zeroize::Zeroizing::new(clear);
            let place = Place::Registry {
                server: &record.server,
            };
            record.sealed_password = Some(key.seal(&place, clear.as_bytes()));
            self.put_registry(&record)?;
            sealed += 1;
        }
        Ok(sealed)
    }

    /// Opens every sealed value with `old` and seals it again with `new`,
    /// all in one transaction: either everything is under `new` after it,
    /// or nothing changed. A value that does not open stops it with
    /// [`StoreError::Unsealed`] naming the value (never its content).
    pub fn reseal(&self, old: &SecretKey, new: &SecretKey) -> Result<Resealed, StoreError> {
        let t = self.t()?;
        let mut versions = Vec::new();
        for value in t.secrets.iter().values() {
            let mut version: SecretVersion = decode("secrets", &value?)?;
            let place = Place::Secret {
                scope: &version.scope,
                name: &version.name,
                version: version.version,
            };
            let opened = old.open(&place, &version.sealed).map_err(|err| {
                StoreError::Unsealed(format!(
                    "version {} of secret `{}` ({}) cannot be opened: {err}",
                    version.version, version.name, version.scope
                ))
            })?;
            let sealed = new.seal(&place, &opened);
            version.sealed = sealed;
            let key = version_key(&version.scope, &version.name, version.version);
            versions.push((key, encode(&version)));
        }
        let mut registries = Vec::new();
        for mut record in self.list_registries()? {
            let place = Place::Registry {
                server: &record.server,
            };
            let opened = match (&record.sealed_password, record.clear_password.take()) {
                (Some(sealed), _) => old.open(&place, sealed).map_err(|err| {
                    StoreError::Unsealed(format!(
                        "the password of registry `{}` cannot be opened: {err}",
                        record.server
                    ))
                })?,
                (None, Some(clear)) => zeroize::Zeroizing::new(clear.into_bytes()),
                (None, None) => continue,
            };
            record.sealed_password = Some(new.seal(&place, &opened));
            registries.push((record.server.clone(), encode(&record)));
        }
        let mut webhooks = Vec::new();
        for mut record in self.list_webhooks()? {
            let place = Place::Webhook { id: &record.id };
            let opened = old.open(&place, &record.sealed).map_err(|err| {
                StoreError::Unsealed(format!(
                    "the URL and secret of webhook `{}` cannot be opened: {err}",
                    record.id
                ))
            })?;
            record.sealed = new.seal(&place, &opened);
            webhooks.push((super::webhooks::endpoint_key(&record.id)?, encode(&record)));
        }
        let mut hooks = Vec::new();
        for mut record in self.list_hooks()? {
            let place = Place::Hook { id: &record.id };
            let opened = old.open(&place, &record.sealed).map_err(|err| {
                StoreError::Unsealed(format!(
                    "the secret of hook `{}` cannot be opened: {err}",
                    record.id
                ))
            })?;
            record.sealed = new.seal(&place, &opened);
            hooks.push((super::hooks::hook_key(&record.id)?, encode(&record)));
        }
        (&t.secrets, &t.registries, &t.webhooks, &t.hooks).transaction(
            |(secrets, registry_tree, webhook_tree, hook_tree)| {
                for (key, value) in &versions {
                    secrets.insert(key.as_slice(), value.as_slice())?;
                }
                for (server, value) in &registries {
                    registry_tree.insert(server.as_bytes(), value.as_slice())?;
                }
                for (key, value) in &webhooks {
                    webhook_tree.insert(key.as_slice(), value.as_slice())?;
                }
                for (key, value) in &hooks {
                    hook_tree.insert(key.as_slice(), value.as_slice())?;
                }
                Ok::<_, TxError>(())
            },
        )?;
        Ok(Resealed {
            secrets: versions.len(),
            registries: registries.len(),
            webhooks: webhooks.len() + hooks.len(),
        })
    }
}

/// A registry record as a controller from before the secret store wrote
/// it, for the tests of its sealing.
#[cfg(test)]
pub(crate) fn clear_registry(server: &str, password: &str) -> super::RegistryRecord {
    super::RegistryRecord {
        server: server.into(),
        username: "deployer".into(),
        sealed_password: None,
        clear_password: Some(password.into()),
        created_at: berth_shared::record::Timestamp::now(),
        created_by: "admin".into(),
    }
}

#[cfg(test)]
mod tests {
    use berth_shared::record::SecretScope;

    use super::*;
    use crate::store::RegistryRecord;

    use crate::store::{open_sealed, put_sealed as put};

    #[test]
    fn an_older_stores_clear_passwords_are_sealed_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        // The JSON an older controller wrote: `password` in clear.
        let old = serde_json::json!({"server": "r.io", "username": "u", "password": "pw1",
            "created_at": "2025-01-01T00:00:00.000Z", "created_by": "admin"});
        let old: RegistryRecord = serde_json::from_value(old).expect("old record");
        store.put_registry(&old).expect("put");
        assert!(store.sealing_key_ids().expect("ids").is_empty());
        let key = Arc::new(SecretKey::generate());
        assert_eq!(store.seal_clear_registry_passwords(&key).expect("seal"), 1);
        assert_eq!(store.seal_clear_registry_passwords(&key).expect("again"), 0);
        let stored = store.registry("r.io").expect("read").expect("there");
        assert!(stored.clear_password.is_none());
        let bytes = serde_json::to_string(&stored).expect("json");
        assert!(!bytes.contains("pw1"), "{bytes}");
        store.use_secret_key(key.clone());
        let opened = store
            .registry_credentials("r.io")
            .expect("read")
            .expect("there");
        assert_eq!(opened.password.as_str(), "pw1");
        assert_eq!(
            store.sealing_key_ids().expect("ids"),
            BTreeSet::from([key.id().clone()])
        );
    }

    #[test]
    fn resealing_keeps_every_value_under_the_new_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let old = SecretKey::generate();
        let scope = SecretScope::app("web", "prod").expect("scope");
        put(&store, &old, &scope, "A", "s3cr3t-one");
        put(&store, &old, &scope, "A", "s3cr3t-two");
        put(&store, &old, &SecretScope::Fleet, "B", "fleet");
        store
            .put_registry(&clear_registry("r.io", "pw"))
            .expect("put");
        let new = Arc::new(SecretKey::generate());
        let resealed = store.reseal(&old, &new).expect("reseal");
        assert_eq!(
            resealed,
            Resealed {
                secrets: 3,
                registries: 1,
                webhooks: 0
            }
        );
        assert_eq!(
            store.sealing_key_ids().expect("ids"),
            BTreeSet::from([new.id().clone()])
        );
        let open = |scope: &SecretScope, name: &str, version| {
            open_sealed(&store, &new, scope, name, version)
        };
        assert_eq!(open(&scope, "A", 1), "s3cr3t-one");
        assert_eq!(open(&scope, "A", 2), "s3cr3t-two");
        assert_eq!(open(&SecretScope::Fleet, "B", 1), "fleet");
        store.use_secret_key(new.clone());
        let registry = store.registry_credentials("r.io").expect("read");
        assert_eq!(registry.expect("there").password.as_str(), "pw");
        // The old key opens nothing any more, and resealing with it fails
        // whole, naming what did not open.
        let err = store.reseal(&old, &new).expect_err("the old key is gone");
        assert!(err.to_string().contains("cannot be opened"), "{err}");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }
}
