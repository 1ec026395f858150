//! Volume snapshots of a resource (`snapshot = true`): before a resource
//! is replaced, each of its named volumes is copied out of the stopped
//! container (Docker's archive of the mounted path) into a dated tar file
//! in the agent's data directory, 0600, the newest `snapshot_keep` kept;
//! a restore puts one back into a fresh volume.

use std::io::Write;
use std::path::{Path, PathBuf};

use bollard::Docker;
use bollard::query_parameters::{DownloadFromContainerOptions, UploadToContainerOptions};
use futures_util::StreamExt;

/// What one snapshot file holds, read from its name
/// (`VOLUME-YYYYMMDDTHHMMSSmmmZ.tar`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotFile {
    pub file: String,
    pub volume: String,
    pub taken_at: String,
    pub bytes: u64,
}

/// The directory of one resource's snapshots.
pub fn directory(root: &Path, app: &str, environment: &str, resource: &str) -> PathBuf {
    root.join(app).join(environment).join(resource)
}

/// UTC `YYYYMMDDTHHMMSSmmmZ` (sortable by name) for Unix milliseconds.
fn stamp(ms: i64) -> String {
    berth_shared::time::rfc3339(ms)
        .chars()
        .filter(|c| !matches!(c, '-' | ':' | '.'))
        .collect()
}

/// The Unix milliseconds of a stamp made by [`stamp`].
pub fn stamp_ms(stamp: &str) -> Option<i64> {
    let digits = stamp.get(..18)?;
    let text = format!(
        "{}-{}-{}T{}:{}:{}.{}Z",
        digits.get(..4)?,
        digits.get(4..6)?,
        digits.get(6..8)?,
        digits.get(9..11)?,
        digits.get(11..13)?,
        digits.get(13..15)?,
        digits.get(15..18)?
    );
    berth_shared::time::parse_rfc3339(&text).map(berth_shared::time::unix_ms)
}

/// Copies the volume mounted at `path` in the (stopped) container `name`
/// into `dir/VOLUME-STAMP.tar`, then keeps the newest `keep` of that
/// volume. Returns the new file.
pub async fn take(
    docker: &Docker,
    name: &str,
    volume: &str,
    path: &str,
    dir: &Path,
    keep: usize,
) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|err| format!("create {}: {err}", dir.display()))?;
    let file = dir.join(format!(
        "{volume}-{}.tar",
        stamp(berth_shared::time::now_ms())
    ));
    let partial = file.with_extension("tar.partial");
    let result = async {
        let mut out = open_private(&partial)?;
        let options = DownloadFromContainerOptions {
            path: path.to_string(),
        };
        let mut archive = docker.download_from_container(name, Some(options));
        while let Some(chunk) = archive.next().await {
            let chunk = chunk.map_err(|err| format!("copy {path} out of {name}: {err}"))?;
            out.write_all(&chunk)
                .map_err(|err| format!("write {}: {err}", partial.display()))?;
        }
        out.sync_all()
            .map_err(|err| format!("sync {}: {err}", partial.display()))?;
        std::fs::rename(&partial, &file).map_err(|err| format!("rename {}: {err}", file.display()))
    }
    .await;
    if let Err(err) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(err);
    }
    prune(dir, volume, keep);
    Ok(file)
}

fn open_private(path: &Path) -> Result<std::fs::File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|err| format!("create {}: {err}", path.display()))
}

/// Keeps the newest `keep` snapshots of `volume` in `dir`.
fn prune(dir: &Path, volume: &str, keep: usize) {
    let mut files: Vec<SnapshotFile> = list(dir)
        .into_iter()
        .filter(|snapshot| snapshot.volume == volume)
        .collect();
    files.sort_by(|a, b| b.file.cmp(&a.file));
    for old in files.into_iter().skip(keep.max(1)) {
        let _ = std::fs::remove_file(dir.join(&old.file));
    }
}

/// The snapshots in `dir`, oldest first.
pub fn list(dir: &Path) -> Vec<SnapshotFile> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<SnapshotFile> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let file = entry.file_name().to_str()?.to_string();
            let stem = file.strip_suffix(".tar")?;
            let (volume, taken_at) = stem.rsplit_once('-')?;
            let (volume, taken_at) = (volume.to_string(), taken_at.to_string());
            (taken_at.len() == 19 && taken_at.ends_with('Z')).then(|| SnapshotFile {
                volume,
                taken_at,
                bytes: entry.metadata().map(|meta| meta.len()).unwrap_or(0),
                file,
            })
        })
        .collect();
    files.sort_by(|a, b| a.taken_at.cmp(&b.taken_at));
    files
}

/// Puts a snapshot back: its archive is unpacked into the (stopped or
/// freshly created) container `name` at the parent of `path`, the
/// archive's top directory being the mounted directory itself.
pub async fn restore(docker: &Docker, name: &str, path: &str, file: &Path) -> Result<(), String> {
    let bytes = tokio::fs::read(file)
        .await
        .map_err(|err| format!("read {}: {err}", file.display()))?;
    let parent = Path::new(path)
        .parent()
        .map_or_else(|| "/".to_string(), |parent| parent.display().to_string());
    let options = UploadToContainerOptions {
        path: parent,
        ..Default::default()
    };
    docker
        .upload_to_container(name, Some(options), bollard::body_full(bytes.into()))
        .await
        .map_err(|err| format!("copy {} into {name}: {err}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_sort_by_time_and_read_back() {
        assert_eq!(stamp(0), "19700101T000000000Z");
        assert_eq!(stamp_ms(&stamp(1_796_602_645_123)), Some(1_796_602_645_123));
        assert_eq!(stamp_ms("nonsense"), None);
        assert_eq!(stamp(1_796_602_645_123), "20261207T001725123Z");
        let dir = tempfile::tempdir().expect("tempdir");
        for (volume, stamp) in [
            ("data", "20261207T001725123Z"),
            ("data", "20261208T001725123Z"),
            ("logs", "20261206T001725123Z"),
            ("data", "20261206T001725123Z"),
        ] {
            std::fs::write(dir.path().join(format!("{volume}-{stamp}.tar")), b"x").expect("write");
        }
        std::fs::write(dir.path().join("data-x.tar.partial"), b"x").expect("write");
        prune(dir.path(), "data", 2);
        let left: Vec<String> = list(dir.path()).into_iter().map(|file| file.file).collect();
        assert_eq!(
            left,
            [
                "logs-20261206T001725123Z.tar",
                "data-20261207T001725123Z.tar",
                "data-20261208T001725123Z.tar"
            ]
        );
    }
}
