//! Hand-made bundle archives with raw entry names, for the hostile-input
//! tests (the `tar` crate refuses to write such names through its API).

use std::fs::File;
use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

/// One raw archive entry.
pub struct RawEntry<'a> {
    pub name: &'a str,
    pub kind: tar::EntryType,
    pub link: &'a str,
    pub data: &'a [u8],
}

/// Writes a tar.gz with the entries exactly as given.
pub fn write_raw(path: &Path, entries: &[RawEntry<'_>]) {
    let file = File::create(path).expect("create archive");
    let mut builder = tar::Builder::new(GzEncoder::new(file, Compression::fast()));
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..entry.name.len()].copy_from_slice(entry.name.as_bytes());
        header.as_old_mut().linkname[..entry.link.len()].copy_from_slice(entry.link.as_bytes());
        header.set_entry_type(entry.kind);
        header.set_size(entry.data.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        builder.append(&header, entry.data).expect("append");
    }
    builder
        .into_inner()
        .expect("tar")
        .finish()
        .expect("gzip")
        .flush()
        .expect("flush");
}
