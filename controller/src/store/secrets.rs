//! The secret store's trees. `secrets` holds each version of each secret,
//! sealed ([`SecretVersion`]: the key id, nonce and ciphertext, never the
//! value in clear); `secret_names` holds one [`SecretName`] per secret:
//! its newest version and who made it when. Keys are in `keys.rs`.
//!
//! Versions count up by one per set and the newest [`KEEP_VERSIONS`] are
//! kept, so a queued deployment or a retry can still open the version it
//! was made with. Removing a secret deletes every version but keeps its
//! name as a tombstone (`removed`), so that setting it again goes on from
//! the next version: a version number never names two values.

use super::kv::Transactional;
use super::kv::TxError;
use berth_shared::record::{SecretScope, SecretView, Timestamp};
use serde::{Deserialize, Serialize};

use super::keys::{secret_key, secret_name_key, secret_scope_prefix};
use super::{Store, StoreError, decode, encode};
use crate::crypto::Sealed;

/// How many versions of a secret are kept.
pub const KEEP_VERSIONS: u64 = 10;

const NAMES: &str = "secret_names";
const VERSIONS: &str = "secrets";

/// One secret: its newest version, and when and by whom it was made and
/// last changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretName {
    pub name: String,
    pub scope: SecretScope,
    /// The newest version; the versions kept are the last
    /// [`KEEP_VERSIONS`] up to it.
    pub latest: u64,
    pub created_at: Timestamp,
    pub created_by: String,
    pub updated_at: Timestamp,
    pub updated_by: String,
    /// Removed: no version is kept, and the next set makes `latest + 1`.
    #[serde(default)]
    pub removed: bool,
}

impl SecretName {
    pub fn view(&self) -> SecretView {
        SecretView {
            name: self.name.clone(),
            scope: self.scope.clone(),
            version: self.latest,
            updated_at: self.updated_at,
            updated_by: self.updated_by.clone(),
            created_at: self.created_at,
            created_by: self.created_by.clone(),
        }
    }
}

/// One version of a secret, sealed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretVersion {
    pub name: String,
    pub scope: SecretScope,
    pub version: u64,
    pub sealed: Sealed,
    pub created_at: Timestamp,
    pub created_by: String,
}

impl Store {
    /// Stores the next version of a secret, sealed by `seal` for that
    /// version, and deletes the version that falls out of the last
    /// [`KEEP_VERSIONS`]; returns the secret as it is now.
    pub fn put_secret(
        &self,
        scope: &SecretScope,
        name: &str,
        by: &str,
        seal: impl Fn(u64) -> Sealed,
    ) -> Result<SecretName, StoreError> {
        let t = self.t()?;
        let name_key = secret_name_key(scope, name);
        let now = Timestamp::now();
        let stored = (&t.secret_names, &t.secrets).transaction(|(names, versions)| {
            let abort = TxError::Abort;
            let earlier: Option<SecretName> = names
                .get(&name_key)?
                .map(|bytes| decode(NAMES, &bytes))
                .transpose()
                .map_err(abort)?;
            let next = match &earlier {
                Some(earlier) if !earlier.removed => SecretName {
                    latest: earlier.latest + 1,
                    updated_at: now,
                    updated_by: by.to_string(),
                    ..earlier.clone()
                },
                // A new secret, or one set again after removal: its
                // versions go on from the removed one's.
                _ => SecretName {
                    name: name.to_string(),
                    scope: scope.clone(),
                    latest: earlier.as_ref().map_or(0, |earlier| earlier.latest) + 1,
                    created_at: now,
                    created_by: by.to_string(),
                    updated_at: now,
                    updated_by: by.to_string(),
                    removed: false,
                },
            };
            let version = SecretVersion {
                name: name.to_string(),
                scope: scope.clone(),
                version: next.latest,
                sealed: seal(next.latest),
                created_at: now,
                created_by: by.to_string(),
            };
            versions.insert(secret_key(scope, name, next.latest), encode(&version))?;
            if let Some(old) = next.latest.checked_sub(KEEP_VERSIONS) {
                versions.remove(secret_key(scope, name, old))?;
            }
            names.insert(name_key.as_slice(), encode(&next))?;
            Ok(next)
        })?;
        Ok(stored)
    }

    /// The secret `name` in `scope`, unless there is none (or it was
    /// removed).
    pub fn secret_name(
        &self,
        scope: &SecretScope,
        name: &str,
    ) -> Result<Option<SecretName>, StoreError> {
        let bytes = self.t()?.secret_names.get(secret_name_key(scope, name))?;
        let secret = bytes
            .map(|bytes| decode::<SecretName>(NAMES, &bytes))
            .transpose()?;
        Ok(secret.filter(|secret| !secret.removed))
    }

    /// Every secret of `scope` (of every scope when `None`), by scope and
    /// name; removed ones are left out.
    pub fn secret_names(&self, scope: Option<&SecretScope>) -> Result<Vec<SecretName>, StoreError> {
        let prefix = scope.map(secret_scope_prefix).unwrap_or_default();
        let mut secrets = Vec::new();
        for value in self.t()?.secret_names.scan_prefix(prefix).values() {
            let secret: SecretName = decode(NAMES, &value?)?;
            if !secret.removed {
                secrets.push(secret);
            }
        }
        Ok(secrets)
    }

    /// One version of a secret, unless it is gone (pruned or removed).
    pub fn secret_version(
        &self,
        scope: &SecretScope,
        name: &str,
        version: u64,
    ) -> Result<Option<SecretVersion>, StoreError> {
        self.t()?
            .secrets
            .get(secret_key(scope, name, version))?
            .map(|bytes| decode(VERSIONS, &bytes))
            .transpose()
    }

    /// Deletes every version of a secret and marks its name removed;
    /// returns the secret as it was, or `None` when there was none.
    pub fn remove_secret(
        &self,
        scope: &SecretScope,
        name: &str,
    ) -> Result<Option<SecretName>, StoreError> {
        let t = self.t()?;
        let name_key = secret_name_key(scope, name);
        let now = Timestamp::now();
        let removed = (&t.secret_names, &t.secrets).transaction(|(names, versions)| {
            let abort = TxError::Abort;
            let Some(bytes) = names.get(&name_key)? else {
                return Ok(None);
            };
            let secret: SecretName = decode(NAMES, &bytes).map_err(abort)?;
            if secret.removed {
                return Ok(None);
            }
            let kept = secret.latest.saturating_sub(KEEP_VERSIONS - 1).max(1)..=secret.latest;
            for version in kept {
                versions.remove(secret_key(scope, name, version))?;
            }
            let tombstone = SecretName {
                removed: true,
                updated_at: now,
                ..secret.clone()
            };
            names.insert(name_key.as_slice(), encode(&tombstone))?;
            Ok(Some(secret))
        })?;
        Ok(removed)
    }
}

/// Stores `value` as the next version of a secret, sealed under `key` as
/// `ops::secrets::set` seals it (by `ana`); returns the version.
#[cfg(test)]
pub(crate) fn put_sealed(
    store: &Store,
    key: &crate::crypto::SecretKey,
    scope: &SecretScope,
    name: &str,
    value: &str,
) -> u64 {
    let seal = |version| {
        let place = crate::crypto::Place::Secret {
            scope,
            name,
            version,
        };
        key.seal(&place, value.as_bytes())
    };
    let stored = store.put_secret(scope, name, "ana", seal).expect("put");
    stored.latest
}

/// The value of one version of a secret opened with `key`; the test
/// fails when it is gone or does not open.
#[cfg(test)]
pub(crate) fn open_sealed(
    store: &Store,
    key: &crate::crypto::SecretKey,
    scope: &SecretScope,
    name: &str,
    version: u64,
) -> String {
    let stored = store
        .secret_version(scope, name, version)
        .expect("read")
        .expect("the version is kept");
    let place = crate::crypto::Place::Secret {
        scope,
        name,
        version,
    };
    let value = key.open_text(&place, &stored.sealed).expect("it opens");
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretKey;

    fn put(store: &Store, key: &SecretKey, scope: &SecretScope, name: &str, value: &str) -> u64 {
        put_sealed(store, key, scope, name, value)
    }

    #[test]
    fn versions_count_up_and_only_the_last_ten_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let key = SecretKey::generate();
        let scope = SecretScope::app("web", "prod").expect("scope");
        for n in 1..=12u64 {
            assert_eq!(put(&store, &key, &scope, "DB_URL", &format!("v{n}")), n);
        }
        let kept: Vec<u64> = (1..=12)
            .filter(|&version| {
                store
                    .secret_version(&scope, "DB_URL", version)
                    .expect("read")
                    .is_some()
            })
            .collect();
        assert_eq!(kept, (3..=12).collect::<Vec<_>>());
        assert_eq!(open_sealed(&store, &key, &scope, "DB_URL", 12), "v12");
        let name = store
            .secret_name(&scope, "DB_URL")
            .expect("read")
            .expect("there");
        assert_eq!((name.latest, name.created_by.as_str()), (12, "ana"));
    }

    #[test]
    fn removing_deletes_every_version_and_numbering_goes_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let key = SecretKey::generate();
        let scope = SecretScope::app("web", "prod").expect("scope");
        put(&store, &key, &scope, "A", "1");
        put(&store, &key, &scope, "A", "2");
        put(&store, &key, &SecretScope::Fleet, "A", "fleet");
        let removed = store.remove_secret(&scope, "A").expect("remove");
        assert_eq!(removed.map(|secret| secret.latest), Some(2));
        assert_eq!(store.remove_secret(&scope, "A").expect("again"), None);
        assert_eq!(store.secret_name(&scope, "A").expect("read"), None);
        for version in 1..=2 {
            assert!(
                store
                    .secret_version(&scope, "A", version)
                    .expect("read")
                    .is_none()
            );
        }
        assert!(store.secret_names(Some(&scope)).expect("list").is_empty());
        assert_eq!(put(&store, &key, &scope, "A", "3"), 3, "numbering goes on");
        let fleet = store.secret_names(Some(&SecretScope::Fleet)).expect("list");
        assert_eq!(fleet.len(), 1, "the fleet's A is another secret");
    }

    #[test]
    fn scopes_are_listed_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let key = SecretKey::generate();
        let prod = SecretScope::app("web", "prod").expect("scope");
        let web_prod2 = SecretScope::app("web", "prod2").expect("scope");
        let webp = SecretScope::app("webp", "rod").expect("scope");
        put(&store, &key, &prod, "B", "x");
        put(&store, &key, &prod, "A", "x");
        put(&store, &key, &web_prod2, "C", "x");
        put(&store, &key, &webp, "D", "x");
        put(&store, &key, &SecretScope::Fleet, "E", "x");
        let names = |scope: Option<&SecretScope>| -> Vec<String> {
            let secrets = store.secret_names(scope).expect("list");
            secrets.into_iter().map(|secret| secret.name).collect()
        };
        assert_eq!(names(Some(&prod)), ["A", "B"]);
        assert_eq!(names(Some(&web_prod2)), ["C"]);
        assert_eq!(names(Some(&SecretScope::Fleet)), ["E"]);
        assert_eq!(names(None), ["E", "A", "B", "C", "D"]);
    }
}
