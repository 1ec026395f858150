//! Where the controller keeps things inside its data directory.

use std::path::{Path, PathBuf};

/// The controller's data directory layout.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: &Path) -> DataDir {
        DataDir {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// CA certificate (PEM).
    pub fn ca_cert(&self) -> PathBuf {
        self.root.join("pki/ca.pem")
    }

    /// CA private key (PEM, mode 0600).
    pub fn ca_key(&self) -> PathBuf {
        self.root.join("pki/ca.key")
    }

    /// Server certificate chain: leaf then CA (PEM).
    pub fn server_cert(&self) -> PathBuf {
        self.root.join("pki/server.pem")
    }

    /// Server private key (PEM, mode 0600).
    pub fn server_key(&self) -> PathBuf {
        self.root.join("pki/server.key")
    }

    /// The directory of the secrets key (mode 0700), outside the store, so
    /// that a copy of the store alone reveals no secret.
    pub fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }

    /// The secrets key: 32 random bytes (mode 0600).
    pub fn secrets_key(&self) -> PathBuf {
        self.root.join("keys/secrets.key")
    }

    /// The new secrets key while `rotate-key` reseals the store with it;
    /// renamed over [`DataDir::secrets_key`] once the store is resealed.
    pub fn secrets_key_new(&self) -> PathBuf {
        self.root.join("keys/secrets.key.new")
    }

    /// The sled store.
    pub fn store(&self) -> PathBuf {
        self.root.join("store")
    }

    /// The record of a store kept elsewhere (PostgreSQL), written by
    /// `init --store` (see `store_choice.rs`); absent for the sled store.
    pub fn store_choice(&self) -> PathBuf {
        self.root.join("store.toml")
    }

    /// Blob files.
    pub fn blobs(&self) -> PathBuf {
        self.root.join("blobs")
    }

    /// The default place of the admin credential bundle.
    pub fn admin_bundle(&self) -> PathBuf {
        self.root.join("admin.conf")
    }
}
