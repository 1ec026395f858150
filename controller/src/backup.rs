//! `berth-controller backup` and `restore`: the store of a data directory
//! (sled or PostgreSQL) to one file and back (`store/backup.rs` has the
//! format). A PostgreSQL store is read in one snapshot while controllers
//! keep serving; a sled store can only be read with its controller
//! stopped, which makes that read one instant too.
//!
//! The file holds the store only. The CA (`pki/`) and the secrets key
//! (`keys/`) are files of the data directory: keep them with the backup,
//! or the restored secrets cannot be opened.

use std::path::Path;

use anyhow::{Context as _, Result, bail};

use crate::paths::DataDir;
use crate::store::Backup;
use crate::store_choice::{self, StoreArgs};

/// Writes the store of `data_dir` to `out` (mode 0600: it holds sealed
/// secrets and hashed tokens).
pub fn backup(data_dir: &Path, store: &StoreArgs, out: &Path) -> Result<Backup> {
    let dir = DataDir::new(data_dir);
    let store = store_choice::open(&dir, store).context(
        "a sled store is read with its controller stopped (systemctl stop berth-controller)",
    )?;
    let partial = out.with_extension("partial");
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .with_context(|| format!("create {}", partial.display()))?
    };
    let written = store.backup(&file);
    let written = match written {
        Ok(written) => written,
        Err(err) => {
            let _ = std::fs::remove_file(&partial);
            return Err(err).context("write the backup");
        }
    };
    file.sync_all()
        .with_context(|| format!("sync {}", partial.display()))?;
    std::fs::rename(&partial, out)
        .with_context(|| format!("rename {} to {}", partial.display(), out.display()))?;
    Ok(written)
}

/// Restores `from` into the store of `data_dir`, which must be empty: a
/// new data directory (its `pki/` and `keys/` copied from the old one,
/// no `store/` yet), or one whose `store.toml` names an empty database.
pub fn restore(data_dir: &Path, store: &StoreArgs, from: &Path) -> Result<Backup> {
    let dir = DataDir::new(data_dir);
    if !dir.ca_cert().exists() || !dir.secrets_key().exists() {
        bail!(
            "{} lacks pki/ca.pem or keys/secrets.key; copy pki/ and keys/ from the backed-up data directory first (the backup holds only the store)",
            data_dir.display()
        );
    }
    if let Some(url) = &store.url {
        store_choice::record(&dir, store).with_context(|| format!("record the store {url}"))?;
    }
    let target = store_choice::open(&dir, &StoreArgs::default())?;
    target
        .restore(|| std::fs::File::open(from))
        .with_context(|| format!("restore {}", from.display()))
}

/// What `backup` and `restore` print.
pub fn report(verb: &str, file: &Path, backup: &Backup) -> String {
    let entries: u64 = backup.trees.iter().map(|(_, count)| count).sum();
    format!(
        "{verb} {} ({} trees, {entries} entries, sha256 {})\n",
        file.display(),
        backup.trees.len(),
        backup.sha256
    )
}
