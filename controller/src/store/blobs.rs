//! Metadata of blobs in the content-addressed blob store (the bytes live in
//! files; see `crate::blob`).

use berth_shared::record::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, decode, encode};

/// What the store knows of one blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobMeta {
    pub size: u64,
    pub created_at: Timestamp,
    /// When a deployment, a build or a download last used it (Unix ms).
    #[serde(default)]
    pub last_used_ms: i64,
}

/// How recent a blob's last use may be and still not be written again.
const TOUCH_EVERY_MS: i64 = 60_000;

impl Store {
    /// Records a complete, verified blob.
    pub fn put_blob_meta(&self, digest: &str, size: u64) -> Result<(), StoreError> {
        let meta = BlobMeta {
            size,
            created_at: Timestamp::now(),
            last_used_ms: berth_shared::time::now_ms(),
        };
        self.t()?.blobs.insert(digest.as_bytes(), encode(&meta))?;
        Ok(())
    }

    /// The size of a complete blob, if the store has it.
    pub fn blob_size(&self, digest: &str) -> Result<Option<u64>, StoreError> {
        self.t()?
            .blobs
            .get(digest.as_bytes())?
            .map(|bytes| decode::<BlobMeta>("blobs", &bytes).map(|meta| meta.size))
            .transpose()
    }

    /// Notes that a blob was used now (for least-recently-used eviction),
    /// unless it was within the last [`TOUCH_EVERY_MS`]: the order of
    /// eviction needs no finer time, and a bundle fetched by its agents
    /// right after its upload costs no write then.
    pub fn touch_blob(&self, digest: &str) -> Result<(), StoreError> {
        if let Some(bytes) = self.t()?.blobs.get(digest.as_bytes())? {
            let mut meta: BlobMeta = decode("blobs", &bytes)?;
            let now = berth_shared::time::now_ms();
            if now.saturating_sub(meta.last_used_ms) < TOUCH_EVERY_MS {
                return Ok(());
            }
            meta.last_used_ms = now;
            self.t()?.blobs.insert(digest.as_bytes(), encode(&meta))?;
        }
        Ok(())
    }

    /// The blobs to delete so the store fits in `budget` bytes: the least
    /// recently used first, never one a live deployment (running, deployed
    /// or stopped, so it can start again) still needs. May leave the store
    /// over budget when everything left is needed.
    pub fn blobs_to_evict(&self, budget: u64) -> Result<Vec<String>, StoreError> {
        let mut blobs: Vec<(String, BlobMeta)> = Vec::new();
        for entry in self.t()?.blobs.iter() {
            let (key, value) = entry?;
            blobs.push((
                String::from_utf8_lossy(&key).into_owned(),
                decode("blobs", &value)?,
            ));
        }
        let mut total: u64 = blobs.iter().map(|(_, meta)| meta.size).sum();
        if total <= budget {
            return Ok(Vec::new());
        }
        let needed = self.live_blobs()?;
        blobs.sort_by_key(|(_, meta)| meta.last_used_ms.max(meta.created_at.0));
        let mut evict = Vec::new();
        for (digest, meta) in blobs {
            if total <= budget {
                break;
            }
            if needed.contains(&digest) {
                continue;
            }
            total -= meta.size;
            evict.push(digest);
        }
        Ok(evict)
    }

    /// Digests that deployments which may still run need.
    fn live_blobs(&self) -> Result<std::collections::HashSet<String>, StoreError> {
        use berth_shared::state::{DEPLOYMENT_STATUSES, DeploymentStatus};
        let live = DEPLOYMENT_STATUSES.into_iter().filter(|status| {
            status.is_running()
                || matches!(
                    status,
                    DeploymentStatus::Deployed | DeploymentStatus::Stopped
                )
        });
        let mut needed = std::collections::HashSet::new();
        for status in live {
            for deployment in self.list_deployments(&super::ListQuery {
                statuses: vec![status],
                limit: usize::MAX,
                ..Default::default()
            })? {
                needed.insert(deployment.bundle_digest.clone());
                needed.extend(deployment.image_archive_digest.clone());
                needed.extend(deployment.built.as_ref().map(|built| built.digest.clone()));
            }
        }
        Ok(needed)
    }

    /// Forgets an evicted blob: its metadata and any build result in it.
    pub fn forget_blob(&self, digest: &str) -> Result<(), StoreError> {
        self.t()?.blobs.remove(digest.as_bytes())?;
        self.forget_builds_of(digest)
    }
}

#[cfg(test)]
mod tests {
    use berth_shared::state::DeploymentStatus;

    use super::*;

    fn blob(store: &Store, digest: &str, size: u64, last_used_ms: i64) {
        let meta = BlobMeta {
            size,
            created_at: Timestamp(0),
            last_used_ms,
        };
        store
            .t()
            .expect("open")
            .blobs
            .insert(digest.as_bytes(), encode(&meta))
            .expect("insert");
    }

    #[test]
    fn eviction_takes_the_least_recently_used_blobs_no_live_deployment_needs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        blob(&store, "sha256:old-unneeded", 100, 1);
        blob(&store, "sha256:old-needed", 100, 2);
        blob(&store, "sha256:newer-unneeded", 100, 3);
        blob(&store, "sha256:newest", 100, 4);
        let mut live = crate::testing::deployment(&["h1"], 0);
        live.status = DeploymentStatus::Deployed;
        live.bundle_digest = "sha256:old-needed".into();
        store.create_deployment(&live, true, false).expect("create");
        let mut gone = crate::testing::deployment(&["h1"], 0);
        gone.status = DeploymentStatus::Superseded;
        gone.bundle_digest = "sha256:old-unneeded".into();
        store.create_deployment(&gone, true, false).expect("create");

        assert!(store.blobs_to_evict(400).expect("within").is_empty());
        assert_eq!(
            store.blobs_to_evict(200).expect("over"),
            ["sha256:old-unneeded", "sha256:newer-unneeded"],
            "oldest first, the needed one skipped"
        );
        assert_eq!(
            store.blobs_to_evict(0).expect("all"),
            [
                "sha256:old-unneeded",
                "sha256:newer-unneeded",
                "sha256:newest"
            ],
            "what a live deployment needs stays even over budget"
        );
        store.touch_blob("sha256:old-unneeded").expect("touch");
        assert_eq!(
            store.blobs_to_evict(300).expect("touched"),
            ["sha256:newer-unneeded"],
            "a blob used just now goes last"
        );
        store.forget_blob("sha256:newer-unneeded").expect("forget");
        assert_eq!(
            store.blob_size("sha256:newer-unneeded").expect("size"),
            None
        );
    }
}
