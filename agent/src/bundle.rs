//! Unpacking bundles safely. Every entry of the archive is checked first
//! (berth_shared::bundle rules: no absolute paths, no `..`, no links out, no
//! devices or hard links, no writes through links, size and count limits);
//! only if all pass is anything written, into a fresh directory that is
//! renamed into place at the end.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_shared::bundle::{BundleError, EntryChecker, EntryKind};
use flate2::read::GzDecoder;
use tar::EntryType;

/// Why a bundle could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("the bundle was refused before anything was written: {0}")]
    Refused(#[from] BundleError),
    #[error("the bundle archive is damaged: {0}")]
    Damaged(io::Error),
    #[error("unpacking the bundle failed: {0}")]
    Io(io::Error),
}

fn kind_of(entry_type: EntryType) -> EntryKind {
    match entry_type {
        EntryType::Regular | EntryType::Continuous => EntryKind::File,
        EntryType::Directory => EntryKind::Directory,
        EntryType::Symlink => EntryKind::Symlink,
        _ => EntryKind::Other,
    }
}

fn archive(path: &Path) -> Result<tar::Archive<GzDecoder<File>>, UnpackError> {
    Ok(tar::Archive::new(GzDecoder::new(
        File::open(path).map_err(UnpackError::Io)?,
    )))
}

/// Checks every entry without writing anything.
pub fn check(path: &Path) -> Result<(), UnpackError> {
    let mut checker = EntryChecker::default();
    for entry in archive(path)?.entries().map_err(UnpackError::Damaged)? {
        let entry = entry.map_err(UnpackError::Damaged)?;
        let header = entry.header();
        let entry_path = entry.path().map_err(UnpackError::Damaged)?.into_owned();
        let target = entry
            .link_name()
            .map_err(UnpackError::Damaged)?
            .map(|target| target.into_owned());
        let size = header.size().map_err(UnpackError::Damaged)?;
        checker.check(
            &entry_path,
            kind_of(header.entry_type()),
            size,
            target.as_deref(),
        )?;
    }
    Ok(checker.finish()?)
}

/// Unpacks `archive_path` into `dest` (which must not exist yet).
pub fn unpack(archive_path: &Path, dest: &Path) -> Result<(), UnpackError> {
    check(archive_path)?;
    let parent = dest.parent().unwrap_or(Path::new("."));
    let name = dest
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = parent.join(format!(".{name}.unpacking"));
    if temp.exists() {
        fs::remove_dir_all(&temp).map_err(UnpackError::Io)?;
    }
    fs::create_dir_all(&temp).map_err(UnpackError::Io)?;
    let result = write_entries(archive_path, &temp)
        .and_then(|()| fs::rename(&temp, dest).map_err(UnpackError::Io));
    if result.is_err() {
        let _ = fs::remove_dir_all(&temp);
    }
    result
}

fn write_entries(archive_path: &Path, root: &Path) -> Result<(), UnpackError> {
    let mut checker = EntryChecker::default();
    for entry in archive(archive_path)?
        .entries()
        .map_err(UnpackError::Damaged)?
    {
        let mut entry = entry.map_err(UnpackError::Damaged)?;
        let entry_path = entry.path().map_err(UnpackError::Damaged)?.into_owned();
        let target = entry
            .link_name()
            .map_err(UnpackError::Damaged)?
            .map(|target| target.into_owned());
        let kind = kind_of(entry.header().entry_type());
        let size = entry.header().size().map_err(UnpackError::Damaged)?;
        // Checked again while writing: the archive is read a second time.
        let clean: PathBuf = checker.check(&entry_path, kind, size, target.as_deref())?;
        if clean.as_os_str().is_empty() {
            continue;
        }
        let full = root.join(&clean);
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent).map_err(UnpackError::Io)?;
        }
        let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
        match kind {
            EntryKind::Directory => {
                fs::create_dir_all(&full).map_err(UnpackError::Io)?;
                fs::set_permissions(&full, fs::Permissions::from_mode(mode | 0o700))
                    .map_err(UnpackError::Io)?;
            }
            EntryKind::File => {
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode | 0o600)
                    .open(&full)
                    .map_err(UnpackError::Io)?;
                let copied = io::copy(&mut (&mut entry).take(size), &mut file)
                    .map_err(UnpackError::Damaged)?;
                if copied != size {
                    return Err(UnpackError::Damaged(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("entry {} is truncated", clean.display()),
                    )));
                }
            }
            EntryKind::Symlink => {
                let target = target.unwrap_or_default();
                std::os::unix::fs::symlink(&target, &full).map_err(UnpackError::Io)?;
            }
            EntryKind::Other => unreachable!("refused by the checker"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
