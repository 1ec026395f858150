//! Rules for bundle archive entries, applied by the CLI when it packs a
//! directory and again by the agent before it writes anything: no absolute
//! paths, no `..`, no links that leave the bundle, no devices.

use std::path::{Component, Path, PathBuf};

/// Most entries one bundle may hold.
pub const MAX_ENTRIES: usize = 100_000;
/// Most bytes one bundle may unpack to.
pub const MAX_UNPACKED_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// The kind of an archive entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Directory,
    Symlink,
    /// Hard links, devices, FIFOs and anything else.
    Other,
}

/// Why an entry was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("entry `{0}` has an absolute path; bundle paths must be relative")]
    Absolute(String),
    #[error("entry `{0}` climbs out of the bundle with `..`")]
    Escapes(String),
    #[error("entry `{path}` is a link to `{target}`, which is outside the bundle")]
    LinkEscapes { path: String, target: String },
    #[error(
        "entry `{0}` is a hard link, device or other special file; bundles hold only files, directories and links inside the bundle"
    )]
    Special(String),
    #[error(
        "entry `{0}` is a link whose target passes through another link; bundles may not chain links"
    )]
    LinkThroughLink(String),
    #[error("entry `{0}` lies under a symbolic link; bundles may not write through links")]
    UnderLink(String),
    #[error("entry `{0}` appears twice in the bundle")]
    Duplicate(String),
    #[error("the bundle has more than {MAX_ENTRIES} entries")]
    TooManyEntries,
    #[error("the bundle unpacks to more than {MAX_UNPACKED_BYTES} bytes")]
    TooLarge,
}

/// Normalizes an entry path to plain components, refusing absolute paths
/// and `..`.
pub fn normal_path(path: &Path) -> Result<PathBuf, BundleError> {
    let shown = path.display().to_string();
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(BundleError::Escapes(shown)),
            Component::RootDir | Component::Prefix(_) => return Err(BundleError::Absolute(shown)),
        }
    }
    Ok(clean)
}

/// Checks that a symbolic link at `path` (relative to the bundle root)
/// pointing at `target` stays inside the bundle.
pub fn check_link(path: &Path, target: &Path) -> Result<(), BundleError> {
    let escapes = || BundleError::LinkEscapes {
        path: path.display().to_string(),
        target: target.display().to_string(),
    };
    if target.is_absolute() {
        return Err(escapes());
    }
    let mut depth: usize = path
        .parent()
        .map_or(0, |parent| parent.components().count());
    for component in target.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => depth = depth.checked_sub(1).ok_or_else(escapes)?,
            Component::RootDir | Component::Prefix(_) => return Err(escapes()),
        }
    }
    Ok(())
}

/// Checks a whole list of entries, in archive order, before anything is
/// written: paths, link targets, special files, writes through links, and
/// the entry and size limits.
#[derive(Default)]
pub struct EntryChecker {
    links: Vec<PathBuf>,
    /// Every link with its target, for [`EntryChecker::finish`].
    targets: Vec<(PathBuf, PathBuf)>,
    seen: std::collections::HashSet<PathBuf>,
    entries: usize,
    bytes: u64,
}

impl EntryChecker {
    /// Final checks once every entry was seen: no link's target may pass
    /// through another link of the bundle (for example `s -> .` and
    /// `t -> s/s/../..`), because text-only resolution cannot see where such
    /// a chain really leads.
    pub fn finish(&self) -> Result<(), BundleError> {
        for (link, target) in &self.targets {
            let mut current = link.parent().map(Path::to_path_buf).unwrap_or_default();
            let mut components = target.components().peekable();
            while let Some(component) = components.next() {
                match component {
                    Component::Normal(part) => current.push(part),
                    Component::ParentDir => {
                        current.pop();
                    }
                    _ => {}
                }
                let is_last = components.peek().is_none();
                if !is_last && self.links.contains(&current) {
                    return Err(BundleError::LinkThroughLink(link.display().to_string()));
                }
            }
        }
        Ok(())
    }

    /// Checks one entry; `link_target` is set for symbolic links.
    pub fn check(
        &mut self,
        path: &Path,
        kind: EntryKind,
        size: u64,
        link_target: Option<&Path>,
    ) -> Result<PathBuf, BundleError> {
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(BundleError::TooManyEntries);
        }
        self.bytes = self.bytes.saturating_add(size);
        if self.bytes > MAX_UNPACKED_BYTES {
            return Err(BundleError::TooLarge);
        }
        let clean = normal_path(path)?;
        if clean.as_os_str().is_empty() && kind == EntryKind::Directory {
            return Ok(clean);
        }
        if !self.seen.insert(clean.clone()) {
            return Err(BundleError::Duplicate(path.display().to_string()));
        }
        if self
            .links
            .iter()
            .any(|link| clean.starts_with(link) && &clean != link)
        {
            return Err(BundleError::UnderLink(path.display().to_string()));
        }
        match kind {
            EntryKind::File | EntryKind::Directory => {}
            EntryKind::Symlink => {
                let target = link_target.unwrap_or(Path::new(""));
                check_link(&clean, target)?;
                self.links.push(clean.clone());
                self.targets.push((clean.clone(), target.to_path_buf()));
            }
            EntryKind::Other => return Err(BundleError::Special(path.display().to_string())),
        }
        Ok(clean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_one(
        path: &str,
        kind: EntryKind,
        target: Option<&str>,
    ) -> Result<PathBuf, BundleError> {
        EntryChecker::default().check(Path::new(path), kind, 0, target.map(Path::new))
    }

    #[test]
    fn accepts_plain_entries() {
        assert_eq!(
            check_one("./a/b.sh", EntryKind::File, None),
            Ok(PathBuf::from("a/b.sh"))
        );
        assert!(check_one("lib/current", EntryKind::Symlink, Some("../lib/v1")).is_ok());
        assert!(check_one("a/link", EntryKind::Symlink, Some("../b")).is_ok());
    }

    #[test]
    fn refuses_escapes() {
        assert!(matches!(
            check_one("../x", EntryKind::File, None),
            Err(BundleError::Escapes(_))
        ));
        assert!(matches!(
            check_one("a/../../x", EntryKind::File, None),
            Err(BundleError::Escapes(_))
        ));
        assert!(matches!(
            check_one("/etc/passwd", EntryKind::File, None),
            Err(BundleError::Absolute(_))
        ));
        assert!(matches!(
            check_one("s", EntryKind::Symlink, Some("..")),
            Err(BundleError::LinkEscapes { .. })
        ));
        assert!(matches!(
            check_one("a/s", EntryKind::Symlink, Some("../../etc")),
            Err(BundleError::LinkEscapes { .. })
        ));
        assert!(matches!(
            check_one("s", EntryKind::Symlink, Some("/etc")),
            Err(BundleError::LinkEscapes { .. })
        ));
        assert!(matches!(
            check_one("dev", EntryKind::Other, None),
            Err(BundleError::Special(_))
        ));
    }

    #[test]
    fn refuses_writes_through_links() {
        let mut checker = EntryChecker::default();
        checker
            .check(Path::new("s"), EntryKind::Symlink, 0, Some(Path::new("d")))
            .expect("link inside");
        assert!(matches!(
            checker.check(Path::new("s/evil"), EntryKind::File, 0, None),
            Err(BundleError::UnderLink(_))
        ));
    }

    #[test]
    fn refuses_link_chains_that_escape() {
        let mut checker = EntryChecker::default();
        checker
            .check(Path::new("s"), EntryKind::Symlink, 0, Some(Path::new(".")))
            .expect("s -> .");
        checker
            .check(
                Path::new("t"),
                EntryKind::Symlink,
                0,
                Some(Path::new("s/s/s/s/../../../../etc")),
            )
            .expect("text-only check passes");
        assert!(matches!(
            checker.finish(),
            Err(BundleError::LinkThroughLink(_))
        ));
        let mut fine = EntryChecker::default();
        fine.check(Path::new("a"), EntryKind::Symlink, 0, Some(Path::new("b")))
            .expect("a -> b");
        fine.check(Path::new("c"), EntryKind::Symlink, 0, Some(Path::new("a")))
            .expect("c -> a");
        assert!(
            fine.finish().is_ok(),
            "a link may name another link as its target"
        );
    }

    #[test]
    fn refuses_duplicates() {
        let mut checker = EntryChecker::default();
        checker
            .check(Path::new("a"), EntryKind::File, 0, None)
            .expect("first");
        assert!(matches!(
            checker.check(Path::new("./a"), EntryKind::Directory, 0, None),
            Err(BundleError::Duplicate(_))
        ));
        assert!(
            checker
                .check(Path::new("."), EntryKind::Directory, 0, None)
                .is_ok()
        );
    }

    #[test]
    fn enforces_size_limit() {
        let mut checker = EntryChecker::default();
        assert_eq!(
            checker.check(
                Path::new("big"),
                EntryKind::File,
                MAX_UNPACKED_BYTES + 1,
                None
            ),
            Err(BundleError::TooLarge)
        );
    }
}
