//! Tests of safe bundle unpacking.
use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::*;

/// One raw entry: name, type, link target, data.
type Raw<'a> = (&'a str, EntryType, &'a str, &'a [u8]);

/// Writes a tar.gz whose entries are raw (name, type, target, data), with
/// names put straight into the header so hostile paths survive.
fn archive_of(dir: &Path, entries: &[Raw<'_>]) -> PathBuf {
    let path = dir.join("bundle.tar.gz");
    let mut builder = tar::Builder::new(GzEncoder::new(
        File::create(&path).expect("create"),
        Compression::fast(),
    ));
    for (name, entry_type, target, data) in entries {
        let mut header = tar::Header::new_gnu();
        let raw = &mut header.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        if !target.is_empty() {
            let link = &mut header.as_old_mut().linkname;
            link[..target.len()].copy_from_slice(target.as_bytes());
        }
        header.set_entry_type(*entry_type);
        header.set_size(data.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        builder.append(&header, *data).expect("append");
    }
    builder
        .into_inner()
        .expect("finish")
        .finish()
        .expect("gzip")
        .flush()
        .expect("flush");
    path
}

#[test]
fn unpacks_files_dirs_modes_and_inner_links() {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = archive_of(
        dir.path(),
        &[
            ("app/", EntryType::Directory, "", b""),
            (
                "app/run.sh",
                EntryType::Regular,
                "",
                b"#!/bin/sh\necho hi\n",
            ),
            ("current", EntryType::Symlink, "app", b""),
        ],
    );
    let dest = dir.path().join("work");
    unpack(&archive, &dest).expect("unpack");
    assert_eq!(
        fs::read_to_string(dest.join("app/run.sh")).expect("file"),
        "#!/bin/sh\necho hi\n"
    );
    let mode = fs::metadata(dest.join("app/run.sh"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "executable bits survive");
    assert_eq!(
        fs::read_link(dest.join("current")).expect("link"),
        PathBuf::from("app")
    );
}

fn refused(entries: &[Raw<'_>]) -> UnpackError {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = archive_of(dir.path(), entries);
    let dest = dir.path().join("work");
    let err = unpack(&archive, &dest).expect_err("must be refused");
    let written: Vec<_> = fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        written,
        [std::ffi::OsString::from("bundle.tar.gz")],
        "nothing may be written"
    );
    err
}

#[test]
fn refuses_hostile_archives_before_writing() {
    let cases: [&[Raw<'_>]; 6] = [
        &[
            ("ok", EntryType::Regular, "", b"x"),
            ("../../etc/cron.d/x", EntryType::Regular, "", b"x"),
        ],
        &[("/etc/passwd", EntryType::Regular, "", b"x")],
        &[
            ("s", EntryType::Symlink, "..", b""),
            ("s/evil", EntryType::Regular, "", b"x"),
        ],
        &[
            ("d", EntryType::Symlink, "inner", b""),
            ("d/x", EntryType::Regular, "", b"x"),
        ],
        &[("h", EntryType::Link, "/etc/passwd", b"")],
        &[("dev", EntryType::Char, "", b"")],
    ];
    for entries in cases {
        assert!(
            matches!(refused(entries), UnpackError::Refused(_)),
            "{entries:?}"
        );
    }
}
