//! The content-addressed blob store: bundles (and later images and build
//! artifacts) as files named by their SHA-256, written through a temporary
//! file, verified, fsynced and renamed before they are recorded.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::fs;
use tokio::io::AsyncWriteExt;

/// Largest blob accepted, in bytes.
pub const MAX_BLOB_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// A blob operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("`{0}` is not a sha256 digest; expected sha256:<64 hex digits>")]
    BadDigest(String),
    #[error("the upload's content hashes to {actual}, not the declared {declared}")]
    DigestMismatch { declared: String, actual: String },
    #[error("the upload sent {actual} bytes, not the declared {declared}")]
    SizeMismatch { declared: u64, actual: u64 },
    #[error("the blob is {0} bytes; the limit is {MAX_BLOB_BYTES}")]
    TooLarge(u64),
}

/// Checks `sha256:<64 hex>` and returns the hex part.
pub fn digest_hex(digest: &str) -> Result<&str, BlobError> {
    digest
        .strip_prefix("sha256:")
        .filter(|hex| {
            hex.len() == 64
                && hex
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        })
        .ok_or_else(|| BlobError::BadDigest(digest.chars().take(80).collect()))
}

/// Blob files under one directory.
#[derive(Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

/// An upload in progress.
pub struct Upload {
    temp: PathBuf,
    file: fs::File,
    hasher: Sha256,
    written: u64,
    declared_digest: String,
    declared_size: u64,
}

impl BlobStore {
    pub async fn open(dir: &Path) -> Result<BlobStore, BlobError> {
        fs::create_dir_all(dir.join("tmp")).await?;
        // Leftovers of uploads cut off by a crash.
        let mut entries = fs::read_dir(dir.join("tmp")).await?;
        while let Some(entry) = entries.next_entry().await? {
            let _ = fs::remove_file(entry.path()).await;
        }
        Ok(BlobStore {
            dir: dir.to_path_buf(),
        })
    }

    /// Path of a complete blob.
    pub fn path(&self, digest: &str) -> Result<PathBuf, BlobError> {
        Ok(self.dir.join(digest_hex(digest)?))
    }

    /// Starts an upload of a blob with the declared digest and size.
    /// Deletes a blob's file (a missing one is fine).
    pub async fn remove(&self, digest: &str) -> Result<(), BlobError> {
        match fs::remove_file(self.path(digest)?).await {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err.into()),
            _ => Ok(()),
        }
    }

    pub async fn begin(&self, digest: &str, size: u64) -> Result<Upload, BlobError> {
        digest_hex(digest)?;
        if size > MAX_BLOB_BYTES {
            return Err(BlobError::TooLarge(size));
        }
        let temp = self.dir.join("tmp").join(ulid::Ulid::new().to_string());
        let file = fs::File::create(&temp).await?;
        Ok(Upload {
            temp,
            file,
            hasher: Sha256::new(),
            written: 0,
            declared_digest: digest.to_string(),
            declared_size: size,
        })
    }

    /// Verifies a finished upload and moves it into place.
    pub async fn commit(&self, mut upload: Upload) -> Result<(String, u64), BlobError> {
        let result = async {
            upload.file.flush().await?;
            upload.file.sync_all().await?;
            let actual = format!("sha256:{}", hex::encode(upload.hasher.clone().finalize()));
            if upload.written != upload.declared_size {
                return Err(BlobError::SizeMismatch {
                    declared: upload.declared_size,
                    actual: upload.written,
                });
            }
            if actual != upload.declared_digest {
                return Err(BlobError::DigestMismatch {
                    declared: upload.declared_digest.clone(),
                    actual,
                });
            }
            let target = self.path(&actual)?;
            fs::rename(&upload.temp, &target).await?;
            fs::File::open(&self.dir).await?.sync_all().await?;
            Ok((actual, upload.written))
        }
        .await;
        if result.is_err() {
            let _ = fs::remove_file(&upload.temp).await;
        }
        result
    }

    /// Discards an unfinished upload.
    pub async fn abort(&self, upload: Upload) {
        let _ = fs::remove_file(&upload.temp).await;
    }
}

impl Upload {
    /// Appends a chunk, refusing to go past the declared size.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), BlobError> {
        let after = self.written + data.len() as u64;
        if after > self.declared_size {
            return Err(BlobError::SizeMismatch {
                declared: self.declared_size,
                actual: after,
            });
        }
        self.hasher.update(data);
        self.file.write_all(data).await?;
        self.written = after;
        Ok(())
    }
}
