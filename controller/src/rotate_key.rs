//! `berth-controller rotate-key`: a new secrets key, with every secret
//! version and registry password sealed again under it. Offline: it opens
//! the store itself, so it refuses (sled's file lock) while `serve` runs.
//!
//! A crash at any point leaves a data directory `serve` loads: the new key
//! is written to `keys/secrets.key.new` first; the store is resealed in one
//! transaction and flushed; then the new file is renamed over
//! `keys/secrets.key`. Until the reseal is durable the store names the old
//! key, after it the new one, and `key_file::load` takes whichever file
//! matches (finishing the rename, or removing the unused new file).

use std::path::Path;

use anyhow::{Context as _, Result};
use berth_shared::ownership::hand_over;

use crate::crypto::{KeyId, SecretKey};
use crate::key_file;
use crate::paths::DataDir;
use crate::store::Resealed;

/// What `rotate-key` did.
#[derive(Debug)]
pub struct Rotated {
    pub old: KeyId,
    pub new: KeyId,
    pub resealed: Resealed,
}

/// Replaces the secrets key of the data directory `data_dir`.
pub async fn rotate_key(data_dir: &Path) -> Result<Rotated> {
    let dir = DataDir::new(data_dir);
    if !dir.ca_cert().exists() {
        anyhow::bail!(
            "{} is not a data directory made by `berth-controller init` (it has no pki/ca.pem)",
            data_dir.display()
        );
    }
    let store = crate::store_choice::open(&dir, &Default::default()).context(
        "is the controller running? Stop it first (systemctl stop berth-controller), run rotate-key, then start it again",
    )?;
    let _offline = store.refuse_while_served()?;
    let old = key_file::load(&dir, &store)?.key;
    let new = SecretKey::generate();
    key_file::write_key(&dir, &dir.secrets_key_new(), &new)?;
    let resealed = store
        .reseal(&old, &new)
        .context("encrypt the secrets again under the new key")?;
    store.flush().await.context("flush the store")?;
    drop(store);
    // The store now names the new key: from here on only the new file
    // opens it, and the rename makes it the one file.
    let (from, to) = (dir.secrets_key_new(), dir.secrets_key());
    std::fs::rename(&from, &to)
        .with_context(|| format!("rename {} to {}", from.display(), to.display()))?;
    std::fs::File::open(dir.keys())
        .and_then(|keys| keys.sync_all())
        .with_context(|| format!("sync {}", dir.keys().display()))?;
    // Run as root into a directory the package gave to the service user,
    // the new file goes to that user, or the service could not read it.
    if let Some(owner) = hand_over(dir.root()).map_err(anyhow::Error::msg)? {
        eprintln!(
            "gave the files in {} to {owner}, the directory's owner",
            dir.root().display()
        );
    }
    Ok(Rotated {
        old: old.id().clone(),
        new: new.id().clone(),
        resealed,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use crate::store::Store;

    use berth_shared::record::SecretScope;

    use super::*;

    #[tokio::test]
    async fn rotation_reseals_every_value_and_replaces_the_key_file() {
        let temp = tempfile::tempdir().expect("tempdir");
        let dir = DataDir::new(temp.path());
        std::fs::create_dir_all(dir.root().join("pki")).expect("mkdir");
        std::fs::write(dir.ca_cert(), "ca").expect("write");
        let old = key_file::create(&dir).expect("create");
        let scope = SecretScope::app("web", "prod").expect("scope");
        {
            let store = Store::open(&dir.store()).expect("store");
            let value = "kept across the rotation";
            crate::store::put_sealed(&store, &old, &scope, "K", value);
            store.flush().await.expect("flush");
        }
        let held = crate::store::reopen(&dir.store());
        let refused = rotate_key(temp.path())
            .await
            .expect_err("the store is in use");
        assert!(
            format!("{refused:#}").contains("Stop it first"),
            "{refused:#}"
        );
        drop(held);

        // sled may hold the lock a moment after the last handle went.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let rotated = loop {
            match rotate_key(temp.path()).await {
                Ok(rotated) => break rotated,
                Err(err) if std::time::Instant::now() < deadline => {
                    assert!(!dir.secrets_key_new().exists(), "{err:#}");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(err) => panic!("rotate: {err:#}"),
            }
        };
        assert_eq!(rotated.old, *old.id());
        assert_eq!(rotated.resealed.secrets, 1);
        assert!(!dir.secrets_key_new().exists());
        let mode = std::fs::metadata(dir.secrets_key())
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let store = crate::store::reopen(&dir.store());
        let loaded = key_file::load(&dir, &store).expect("load");
        assert_eq!(*loaded.key.id(), rotated.new);
        let value = crate::store::open_sealed(&store, &loaded.key, &scope, "K", 1);
        assert_eq!(value, "kept across the rotation");
    }
}
