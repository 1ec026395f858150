//! The agent's data directory: identity files written at join time, the
//! fencing state, the outbox spool and per-deployment work directories.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

/// Identity written by `berth-agent join` (`agent.toml`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub controller: String,
    pub agent_id: String,
    pub name: String,
}

/// Durable fencing state (`state.json`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FenceState {
    /// Highest assignment generation accepted.
    pub max_generation: u64,
}

/// Paths inside the data directory.
#[derive(Clone, Debug)]
pub struct Files {
    root: PathBuf,
}

impl Files {
    pub fn new(root: &Path) -> Files {
        Files {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn identity(&self) -> PathBuf {
        self.root.join("agent.toml")
    }

    /// Private key (mode 0600); made here and never sent anywhere.
    pub fn key(&self) -> PathBuf {
        self.root.join("key.pem")
    }

    pub fn cert(&self) -> PathBuf {
        self.root.join("cert.pem")
    }

    pub fn ca(&self) -> PathBuf {
        self.root.join("ca.pem")
    }

    pub fn state(&self) -> PathBuf {
        self.root.join("state.json")
    }

    pub fn lock(&self) -> PathBuf {
        self.root.join("agent.lock")
    }

    pub fn spool(&self) -> PathBuf {
        self.root.join("spool")
    }

    /// Downloaded bundles, named by digest.
    pub fn bundles(&self) -> PathBuf {
        self.root.join("bundles")
    }

    /// Image archives loaded into Docker: one file per archive digest
    /// holding the id of the image it loaded.
    pub fn loaded_images(&self) -> PathBuf {
        self.root.join("images")
    }

    /// Unpacked bundles, one directory per deployment.
    /// Volume snapshots of resources: `snapshots/APP/ENV/RESOURCE/`.
    pub fn snapshots(&self) -> PathBuf {
        self.root().join("snapshots")
    }

    pub fn work(&self) -> PathBuf {
        self.root.join("work")
    }

    fn next(path: PathBuf) -> PathBuf {
        path.with_extension("pem.next")
    }

    /// Installs a renewed key and certificate as a pair: both are written
    /// to `*.pem.next` first, then renamed key first, certificate last. A
    /// crash at any point leaves a usable pair, which
    /// [`Files::finish_renewal`] completes at the next start.
    pub fn install_renewed(&self, key_pem: &str, cert_pem: &str) -> Result<(), String> {
        use berth_shared::credentials::{write_file, write_secret};
        write_secret(&Self::next(self.key()), key_pem.as_bytes())?;
        write_file(&Self::next(self.cert()), cert_pem.as_bytes(), 0o644)?;
        self.finish_renewal()
    }

    /// Completes (or discards) a renewal a crash interrupted. The
    /// certificate is written last, so its `.next` file marks a complete
    /// pair; a lone key without it is discarded.
    pub fn finish_renewal(&self) -> Result<(), String> {
        let (key_next, cert_next) = (Self::next(self.key()), Self::next(self.cert()));
        let rename = |from: &Path, to: &Path| {
            std::fs::rename(from, to).map_err(|err| format!("install {}: {err}", to.display()))
        };
        if cert_next.exists() {
            if key_next.exists() {
                rename(&key_next, &self.key())?;
            }
            rename(&cert_next, &self.cert())?;
        } else if key_next.exists() {
            std::fs::remove_file(&key_next)
                .map_err(|err| format!("discard {}: {err}", key_next.display()))?;
        }
        Ok(())
    }

    pub fn load_identity(&self) -> Result<Identity> {
        let path = self.identity();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
                anyhow::bail!(berth_shared::ownership::permission_denied(
                    &path, &self.root
                ))
            }
            Err(err) => return Err(anyhow::Error::new(err).context(format!("read {}; has this agent joined? run `berth-agent join --controller URL --token TOKEN --data-dir {}`", path.display(), self.root.display()))),
        };
        toml::from_str(&text).with_context(|| format!("parse {}", path.display()))
    }

    pub fn load_fence(&self) -> FenceState {
        std::fs::read(self.state())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub fn save_fence(&self, state: &FenceState) -> Result<()> {
        let bytes = serde_json::to_vec(state).context("encode fencing state")?;
        berth_shared::credentials::write_file(&self.state(), &bytes, 0o600)
            .map_err(anyhow::Error::msg)
    }
}
