//! Who owns a data directory's files. `berth-controller init` and
//! `berth-agent join` run as root into a directory the package gave to a
//! service user must leave files that user owns ([`hand_over`]), and a
//! daemon that may not read one of its files says exactly that
//! ([`permission_denied`]) instead of guessing at the cause.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The effective uid of this process (from `/proc/self/status`, so no
/// `unsafe` call is needed).
pub fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    // "Uid: real effective saved filesystem"
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The name of user `uid` in `/etc/passwd`, else `uid N`.
pub fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let id: u32 = fields.nth(1)?.parse().ok()?;
                (id == uid).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// When this process runs as root and `dir` belongs to another user (the
/// package's service user), gives every file and directory under `dir` to
/// that user and its group, and returns the user's name; otherwise changes
/// nothing and returns `None`.
pub fn hand_over(dir: &Path) -> Result<Option<String>, String> {
    if effective_uid() != Some(0) {
        return Ok(None);
    }
    let meta = std::fs::metadata(dir)
        .map_err(|err| format!("read the owner of {}: {err}", dir.display()))?;
    if meta.uid() == 0 {
        return Ok(None);
    }
    give(dir, meta.uid(), meta.gid())?;
    Ok(Some(user_name(meta.uid())))
}

fn give(path: &Path, uid: u32, gid: u32) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|err| format!("read the owner of {}: {err}", path.display()))?;
    if meta.uid() != uid || meta.gid() != gid {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(|err| {
            format!(
                "give {} to {} (the data directory's owner): {err}",
                path.display(),
                user_name(uid)
            )
        })?;
    }
    if meta.is_dir() {
        let entries =
            std::fs::read_dir(path).map_err(|err| format!("list {}: {err}", path.display()))?;
        for entry in entries {
            let entry = entry.map_err(|err| format!("list {}: {err}", path.display()))?;
            give(&entry.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// The message for `path` (in data directory `data_dir`) that this
/// process may not read: which user, which file, who owns it, and the fix.
pub fn permission_denied(path: &Path, data_dir: &Path) -> String {
    let user = effective_uid().map_or_else(|| "this user".to_string(), user_name);
    let owner = match std::fs::symlink_metadata(path) {
        Ok(meta) => format!(
            "owned by {}, mode {:o}",
            user_name(meta.uid()),
            meta.mode() & 0o7777
        ),
        Err(_) => "its directory cannot be searched".to_string(),
    };
    format!(
        "permission denied for user {user} on {} ({owner}); give the data directory to the user that runs the daemon (`chown -R {user}: {}`), or run the command that wrote it as that user (`runuser -u {user} -- ...`)",
        path.display(),
        data_dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_named() {
        assert_eq!(user_name(0), "root");
    }

    #[test]
    fn an_unknown_uid_is_a_number() {
        assert_eq!(user_name(4_000_000_000), "uid 4000000000");
    }

    #[test]
    fn hand_over_leaves_a_directory_of_this_user_alone() {
        let dir = std::env::temp_dir().join(format!("berth-ownership-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        // Made by this process, so owned by it: nothing to hand over.
        assert_eq!(hand_over(&dir), Ok(None));
        std::fs::remove_dir_all(&dir).expect("remove");
    }
}
