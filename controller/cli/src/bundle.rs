//! Packing a bundle directory into a deterministic tar.gz (sorted entries,
//! zero times and owners, so the same content gives the same digest) and
//! uploading it to the controller's blob store in chunks.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use berth_proto::BLOB_CHUNK_BYTES;
use berth_proto::v1::{PutBlobChunk, StatBlobRequest};
use berth_shared::bundle::{EntryChecker, EntryKind};
use berth_shared::exit;
use flate2::Compression;
use flate2::write::GzEncoder;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::{Failure, Session};

/// A packed bundle on local disk.
pub struct Packed {
    pub file: tempfile::NamedTempFile,
    pub digest: String,
    pub size: u64,
}

fn walk(root: &Path, dir: &Path, entries: &mut Vec<PathBuf>) -> Result<(), Failure> {
    let mut children: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|err| {
            Failure::usage(format!(
                "cannot read bundle directory {}: {err}",
                dir.display()
            ))
        })?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    children.sort();
    for child in children {
        let relative = child.strip_prefix(root).unwrap_or(&child).to_path_buf();
        let meta = fs::symlink_metadata(&child)
            .map_err(|err| Failure::usage(format!("cannot read {}: {err}", child.display())))?;
        entries.push(relative);
        if meta.is_dir() {
            walk(root, &child, entries)?;
        }
    }
    Ok(())
}

/// Packs `dir`, refusing links that point outside it and special files.
pub fn pack(dir: &Path) -> Result<Packed, Failure> {
    if !dir.is_dir() {
        return Err(Failure::usage(format!(
            "bundle directory {} does not exist or is not a directory",
            dir.display()
        )));
    }
    let mut entries = Vec::new();
    walk(dir, dir, &mut entries)?;
    let temp = tempfile::NamedTempFile::new()
        .map_err(|err| Failure::new(exit::FAILED, format!("create a temporary file: {err}")))?;
    let writer = BufWriter::new(
        temp.reopen()
            .map_err(|err| Failure::new(exit::FAILED, err.to_string()))?,
    );
    let mut builder = tar::Builder::new(GzEncoder::new(writer, Compression::default()));
    builder.follow_symlinks(false);
    let mut checker = EntryChecker::default();
    for relative in &entries {
        append(&mut builder, &mut checker, dir, relative)?;
    }
    checker
        .finish()
        .map_err(|err| Failure::usage(format!("bundle {} is refused: {err}", dir.display())))?;
    let io = |err: std::io::Error| {
        Failure::new(exit::FAILED, format!("write the bundle archive: {err}"))
    };
    let mut writer = builder.into_inner().map_err(io)?.finish().map_err(io)?;
    writer.flush().map_err(io)?;
    drop(writer);
    let (digest, size) = hash_file(temp.path()).map_err(io)?;
    Ok(Packed {
        file: temp,
        digest,
        size,
    })
}

fn append<W: Write>(
    builder: &mut tar::Builder<W>,
    checker: &mut EntryChecker,
    root: &Path,
    relative: &Path,
) -> Result<(), Failure> {
    let full = root.join(relative);
    let meta = fs::symlink_metadata(&full)
        .map_err(|err| Failure::usage(format!("cannot read {}: {err}", full.display())))?;
    let refuse = |err: berth_shared::bundle::BundleError| {
        Failure::usage(format!("bundle {} is refused: {err}", root.display()))
    };
    let mut header = tar::Header::new_gnu();
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    let io = |err: std::io::Error| {
        Failure::new(
            exit::FAILED,
            format!("add {} to the bundle: {err}", relative.display()),
        )
    };
    if meta.file_type().is_symlink() {
        let target = fs::read_link(&full).map_err(io)?;
        checker
            .check(relative, EntryKind::Symlink, 0, Some(&target))
            .map_err(refuse)?;
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_mode(0o777);
        header.set_size(0);
        builder
            .append_link(&mut header, relative, &target)
            .map_err(io)
    } else if meta.is_dir() {
        checker
            .check(relative, EntryKind::Directory, 0, None)
            .map_err(refuse)?;
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(mode(&meta));
        header.set_size(0);
        builder
            .append_data(&mut header, relative, std::io::empty())
            .map_err(io)
    } else if meta.is_file() {
        checker
            .check(relative, EntryKind::File, meta.len(), None)
            .map_err(refuse)?;
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(mode(&meta));
        header.set_size(meta.len());
        let file = File::open(&full).map_err(io)?;
        builder.append_data(&mut header, relative, file).map_err(io)
    } else {
        checker
            .check(relative, EntryKind::Other, 0, None)
            .map_err(refuse)
            .map(|_| ())
    }
}

fn mode(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o777
}

/// SHA-256 digest (`sha256:HEX`) and size of a file.
pub fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        size += read as u64;
        hasher.update(&buffer[..read]);
    }
    Ok((format!("sha256:{}", hex::encode(hasher.finalize())), size))
}

/// Uploads a file to the blob store unless the controller already has it.
pub async fn upload(
    session: &mut Session,
    path: &Path,
    digest: &str,
    size: u64,
) -> Result<bool, Failure> {
    let stat = session
        .client
        .stat_blob(StatBlobRequest {
            digest: digest.to_string(),
        })
        .await?
        .into_inner();
    if stat.present && stat.size == size {
        return Ok(false);
    }
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|err| Failure::new(exit::FAILED, format!("read {}: {err}", path.display())))?;
    let header = PutBlobChunk {
        task_id: String::new(),
        fetch_request_id: 0,
        digest: digest.to_string(),
        size,
        data: Vec::new(),
    };
    // Read lazily, one chunk at a time, so a large bundle is never held in memory.
    let body = futures_util::stream::unfold(Some(file), |file| async move {
        use tokio::io::AsyncReadExt;
        let mut file = file?;
        let mut buffer = vec![0u8; BLOB_CHUNK_BYTES];
        match file.read(&mut buffer).await {
            Ok(0) | Err(_) => None,
            Ok(read) => {
                buffer.truncate(read);
                Some((
                    PutBlobChunk {
                        task_id: String::new(),
                        fetch_request_id: 0,
                        digest: String::new(),
                        size: 0,
                        data: buffer,
                    },
                    Some(file),
                ))
            }
        }
    });
    let chunks = futures_util::stream::once(async { header }).chain(body);
    session.client.put_blob(chunks).await?;
    Ok(true)
}
