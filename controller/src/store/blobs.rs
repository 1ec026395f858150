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
}

impl Store {
    /// Records a complete, verified blob.
    pub fn put_blob_meta(&self, digest: &str, size: u64) -> Result<(), StoreError> {
        let meta = BlobMeta {
            size,
            created_at: Timestamp::now(),
        };
        self.blobs.insert(digest.as_bytes(), encode(&meta))?;
        Ok(())
    }

    /// The size of a complete blob, if the store has it.
    pub fn blob_size(&self, digest: &str) -> Result<Option<u64>, StoreError> {
        self.blobs
            .get(digest.as_bytes())?
            .map(|bytes| decode::<BlobMeta>("blobs", &bytes).map(|meta| meta.size))
            .transpose()
    }
}
