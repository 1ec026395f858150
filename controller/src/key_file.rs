//! The secrets key's file, `keys/secrets.key` in the data directory: 32
//! random bytes, mode 0600 in a 0700 directory, written atomically
//! (`credentials::write_secret`). It lives outside `store/`, so a copy of
//! the store alone opens no secret.
//!
//! Which key a controller uses is decided against the store: the store's
//! sealed values name the key that sealed them ([`Store::sealing_key_ids`]).
//! [`load`] takes whichever of `secrets.key` and `secrets.key.new` (left
//! by an interrupted `rotate-key`) has that id, and finishes or undoes the
//! rotation; it makes a new key only while nothing is sealed, and refuses,
//! naming the file, when sealed values exist and no file holds their key.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use berth_shared::credentials::write_secret;
use tracing::{info, warn};

use crate::crypto::{KeyId, SecretKey};
use crate::paths::DataDir;
use crate::store::Store;

/// The key `serve` (or `rotate-key`) goes on with, and what loading it
/// did.
#[derive(Debug)]
pub struct Loaded {
    pub key: SecretKey,
    /// No key file existed and nothing was sealed: this key is new.
    pub made: bool,
    /// An interrupted rotation was finished (`secrets.key.new` renamed
    /// into place) or undone (it was removed).
    pub rotation: Option<&'static str>,
}

/// Makes the key of a new data directory (`init`); refuses to replace one.
pub fn create(dir: &DataDir) -> Result<SecretKey> {
    if dir.secrets_key().exists() {
        bail!(
            "{} exists already; berth never replaces a secrets key (`berth-controller rotate-key` changes it safely)",
            dir.secrets_key().display()
        );
    }
    let key = SecretKey::generate();
    write_key(dir, &dir.secrets_key(), &key)?;
    Ok(key)
}

/// Writes `key` to `path` (0600) in the keys directory (0700).
pub fn write_key(dir: &DataDir, path: &Path, key: &SecretKey) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let keys = dir.keys();
    if !keys.exists() {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&keys)
            .with_context(|| format!("create {}", keys.display()))?;
    }
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restrict {} to its owner", keys.display()))?;
    write_secret(path, key.bytes()).map_err(anyhow::Error::msg)
}

/// The key in `path`, or `None` when there is no such file.
fn read_key(path: &Path) -> Result<Option<SecretKey>> {
    use std::os::unix::fs::PermissionsExt;
    let bytes = match std::fs::read(path) {
        Ok(bytes) => zeroize::Zeroizing::new(bytes),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("read {}", path.display())),
    };
    let Some(key) = SecretKey::from_slice(&bytes) else {
        bail!(
            "{} is damaged: it holds {} bytes, a secrets key is 32; put back the key file from the backup of this data directory",
            path.display(),
            bytes.len()
        );
    };
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        warn!(path = %path.display(), "the secrets key file can be read by others than its owner; chmod 600 it");
    }
    Ok(Some(key))
}

/// The key that opens what `store` holds (see the module's doc).
pub fn load(dir: &DataDir, store: &Store) -> Result<Loaded> {
    let sealed_with = store
        .sealing_key_ids()
        .context("read which key sealed the store's secrets")?;
    let current = read_key(&dir.secrets_key())?;
    let next = read_key(&dir.secrets_key_new())?;
    let wanted = match sealed_with.len() {
        0 => None,
        1 => sealed_with.first(),
        _ => bail!(
            "the store in {} holds secrets sealed with several keys ({}), which berth never does; restore the data directory from a backup",
            dir.store().display(),
            ids_text(&sealed_with)
        ),
    };
    let matches = |key: &Option<SecretKey>| match (key, wanted) {
        (Some(key), Some(wanted)) => key.id() == wanted,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if matches(&current) {
        let rotation = remove_stale(dir, next.is_some())?;
        let key = current.expect("matches only a key that is there");
        return Ok(Loaded {
            key,
            made: false,
            rotation,
        });
    }
    if matches(&next) {
        // The store was resealed under the new key before a crash kept
        // the rename from happening: finish it.
        rename_into_place(dir)?;
        let key = next.expect("matches only a key that is there");
        return Ok(Loaded {
            key,
            made: false,
            rotation: Some("finished"),
        });
    }
    let Some(wanted) = wanted else {
        let key = SecretKey::generate();
        write_key(dir, &dir.secrets_key(), &key)?;
        return Ok(Loaded {
            key,
            made: true,
            rotation: None,
        });
    };
    Err(refusal(dir, wanted, current.as_ref()))
}

/// Loads the key for `serve`, hands it to the store, and seals the
/// registry passwords an older controller kept in clear. Logs what it
/// did, never the key.
pub fn open_for_serve(dir: &DataDir, store: &Store) -> Result<Arc<SecretKey>> {
    let loaded = load(dir, store)?;
    let key = Arc::new(loaded.key);
    let path = dir.secrets_key().display().to_string();
    if loaded.made {
        info!(key_id = %key.id(), %path, "made the secrets key: nothing was encrypted yet; keep it with the store's backups");
    }
    if let Some(rotation) = loaded.rotation {
        info!(key_id = %key.id(), rotation, "an interrupted key rotation was completed");
    }
    store.use_secret_key(key.clone());
    let sealed = store
        .seal_clear_registry_passwords(&key)
        .context("encrypt the registry passwords kept in clear")?;
    if sealed > 0 {
        info!(
            registries = sealed,
            "registry passwords kept in clear by an older controller are now encrypted"
        );
    }
    Ok(key)
}

/// Removes a `secrets.key.new` that the store does not use (a rotation
/// that stopped before resealing).
fn remove_stale(dir: &DataDir, exists: bool) -> Result<Option<&'static str>> {
    if !exists {
        return Ok(None);
    }
    let path = dir.secrets_key_new();
    std::fs::remove_file(&path).with_context(|| format!("remove {}", path.display()))?;
    Ok(Some("undone"))
}

fn rename_into_place(dir: &DataDir) -> Result<()> {
    let (from, to) = (dir.secrets_key_new(), dir.secrets_key());
    std::fs::rename(&from, &to)
        .with_context(|| format!("rename {} to {}", from.display(), to.display()))?;
    std::fs::File::open(dir.keys())
        .and_then(|keys| keys.sync_all())
        .with_context(|| format!("sync {}", dir.keys().display()))
}

fn refusal(dir: &DataDir, wanted: &KeyId, current: Option<&SecretKey>) -> anyhow::Error {
    let path = dir.secrets_key();
    let found = match current {
        None => format!("{} is missing", path.display()),
        Some(key) => format!("{} holds key {}", path.display(), key.id()),
    };
    anyhow::anyhow!(
        "the store in {} holds secrets encrypted with key {wanted}, but {found}; put back the key file that belongs with this store (from the same backup of the data directory); a new key would open none of them, so berth does not make one",
        dir.store().display()
    )
}

fn ids_text(ids: &BTreeSet<KeyId>) -> String {
    ids.iter()
        .map(KeyId::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
